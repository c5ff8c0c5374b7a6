//! tauri-build for the hello-world: generates the context from `tauri.conf.json` beside this file.

fn main() {
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new()) {
        panic!("tauri build script failed: {e:#}");
    }
}
