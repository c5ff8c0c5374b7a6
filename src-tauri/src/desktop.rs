//! Desktop (Linux, Windows, macOS): single instance, runtime scheme registration, loopback fallback.

use confab_config::{AppConfig, RedirectMode};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use confab_client::RedirectPlan;

/// The single-instance plugin. It must be registered before every other plugin; with its
/// `deep-link` feature it hands a second process's URL argument to the deep-link plugin of the
/// running instance (that is how a redirect reaches us on Linux and Windows).
pub fn single_instance<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri_plugin_single_instance::init(|app, _argv, _cwd| {
        if let Some(window) = app.get_webview_window("main") {
            // Best effort: bringing the window forward is cosmetic.
            let _ = window.unminimize();
            let _ = window.set_focus();
        }
    })
}

/// Decides how the redirect reaches this app and registers the private-use scheme if needed.
///
/// `auto`: the scheme when it is declared for the deep-link plugin (tauri.conf.json) and could be
/// registered with the OS, else the loopback fallback. `scheme`: always the scheme (registration
/// problems are logged). `loopback`: always loopback.
pub fn redirect_plan<R: Runtime>(app: &AppHandle<R>, config: &AppConfig) -> RedirectPlan {
    if config.redirect_mode == RedirectMode::Loopback {
        return RedirectPlan::Loopback;
    }
    let declared = scheme_declared(app, &config.redirect_scheme);
    if !declared {
        tracing::warn!(
            scheme = %config.redirect_scheme,
            "redirect scheme is not listed under plugins.deep-link.desktop.schemes in tauri.conf.json"
        );
    }
    let registered = register_scheme(app, &config.redirect_scheme);
    match config.redirect_mode {
        RedirectMode::Scheme => RedirectPlan::Scheme,
        _ if declared && registered => RedirectPlan::Scheme,
        _ => RedirectPlan::Loopback,
    }
}

/// Registers the configured deep-link schemes with the OS (Linux: a .desktop file and
/// `xdg-mime default`; Windows: the registry). macOS declares them in the bundle's Info.plist.
fn register_scheme<R: Runtime>(app: &AppHandle<R>, scheme: &str) -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    // An installed package already routes the scheme to this very binary: registering again
    // would make a per-user entry with a quoted Exec path the default, which some xdg-open
    // versions cannot run.
    if installed_entry_handles(scheme) {
        tracing::info!("redirect scheme handled by the installed desktop entry");
        return true;
    }
    match app.deep_link().register_all() {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("could not register the redirect scheme: {e}");
            false
        }
    }
}

fn scheme_declared<R: Runtime>(app: &AppHandle<R>, scheme: &str) -> bool {
    app.config()
        .plugins
        .0
        .get("deep-link")
        .and_then(|c| c.get("desktop"))
        .map(|d| d.to_string().contains(&format!("\"{scheme}\"")))
        .unwrap_or(false)
}

/// Whether a system-wide desktop entry (XDG_DATA_DIRS) declares `x-scheme-handler/<scheme>` and
/// runs this same executable.
#[cfg(target_os = "linux")]
fn installed_entry_handles(scheme: &str) -> bool {
    use std::path::{Path, PathBuf};
    let Some(exe) = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
    else {
        return false;
    };
    let mime = format!("x-scheme-handler/{scheme}");
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/local/share:/usr/share".to_owned());
    let resolve = |prog: &str| -> Option<PathBuf> {
        let candidate = if prog.contains('/') {
            Some(PathBuf::from(prog))
        } else {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(prog))
                    .find(|p| p.is_file())
            })
        };
        candidate.and_then(|p| p.canonicalize().ok())
    };
    data_dirs
        .split(':')
        .filter(|d| !d.is_empty())
        .filter_map(|dir| std::fs::read_dir(Path::new(dir).join("applications")).ok())
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "desktop"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|text| {
            let handles = text.lines().any(|l| {
                l.strip_prefix("MimeType=")
                    .is_some_and(|v| v.split(';').any(|m| m.trim() == mime))
            });
            let runs_us = text
                .lines()
                .find_map(|l| l.strip_prefix("Exec="))
                .and_then(|cmd| cmd.split_whitespace().next())
                .map(|prog| prog.trim_matches('"'))
                .and_then(resolve)
                .is_some_and(|p| p == exe);
            handles && runs_us
        })
}

#[cfg(not(target_os = "linux"))]
fn installed_entry_handles(_scheme: &str) -> bool {
    false
}
