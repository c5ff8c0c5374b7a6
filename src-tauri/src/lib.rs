//! Confab app: wires plugins and forwards commands to the core crates.

pub mod error;

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    if let Err(e) = tauri::Builder::default()
        .run(tauri::generate_context!("../tauri.conf.json"))
    {
        eprintln!("confab: {e}");
        std::process::exit(1);
    }
}
