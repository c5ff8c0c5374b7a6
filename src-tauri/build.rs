fn main() {
    // The Tauri config lives at the repository root (product requirement); point the build
    // script and codegen at it. `frontendDist` and icon paths in it are relative to the root.
    let attrs = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build script failed: {e:#}");
    }
}
