//! A bare Tauri 2 hello-world: one window showing a static page, no commands, no plugins.
//! It is the baseline of `cargo xtask bench-ui` (start time and memory next to Confab).

// No console window on Windows in release builds, like the Tauri app template.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("hello-tauri: {e}");
        std::process::exit(1);
    }
}
