//! Confab app: the Tauri shell. It wires the plugins, serves the core's [`Platform`] traits
//! with them, forwards every command in one line to the core (`confab-client`) and bridges the
//! core's events to the UI. No logic of its own.
//!
//! Plugin order matters: single-instance first (desktop), so a second process started by a
//! deep link hands its URL to this one and exits before anything else initializes.

mod commands;
#[cfg(desktop)]
mod desktop;
pub mod error;
#[cfg(mobile)]
mod mobile;
mod platform;
#[cfg(debug_assertions)]
mod test_hooks;

use std::sync::Arc;

use confab_client::{AppPaths, Core, Platform, RedirectPlan};
use confab_config::AppConfig;
use tauri::{AppHandle, Manager, WindowEvent};
use tauri_plugin_deep_link::DeepLinkExt;

#[cfg(desktop)]
use desktop as platform_redirect;
#[cfg(mobile)]
use mobile as platform_redirect;

use crate::error::{Error, Result};
use crate::platform::TauriPlatform;

/// File name of the Stronghold password salt in the data dir (used by the vault layer).
const STRONGHOLD_SALT_FILE: &str = "stronghold-salt.txt";
/// Label of the main window (its settings are in tauri.conf.json, with `"create": false`).
const MAIN_WINDOW: &str = "main";

/// Starts the app.
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    init_tracing();
    let builder = tauri::Builder::default();
    #[cfg(desktop)]
    let builder = builder.plugin(desktop::single_instance());
    let result = builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_store::Builder::new().build())
        .plugin(tauri_plugin_notification::init())
        .setup(|app| Ok(setup(app.handle())?))
        .on_window_event(|window, event| {
            if let Some(core) = window.try_state::<Arc<Core>>() {
                match event {
                    WindowEvent::Focused(focused) => core.window_focused(*focused),
                    WindowEvent::Resized(size) => {
                        if let Ok(scale) = window.scale_factor() {
                            let logical = size.to_logical::<f64>(scale);
                            core.chat
                                .remember_window_size(logical.width, logical.height);
                        }
                    }
                    _ => {}
                }
            }
            #[cfg(mobile)]
            mobile::on_window_event(window, event);
        })
        .invoke_handler(tauri::generate_handler![
            commands::subscribe_events,
            commands::sign_in,
            commands::cancel_sign_in,
            commands::open_browser_again,
            commands::current_user,
            commands::unlock_vault,
            commands::sign_in_password,
            commands::reset_vault,
            commands::sign_out,
            commands::subscribe_chat,
            commands::list_rooms,
            commands::create_room,
            commands::join_room,
            commands::invite,
            commands::leave_room,
            commands::remove_member,
            commands::room_members,
            commands::open_room,
            commands::load_older,
            commands::send_message,
            commands::retry_message,
            commands::save_draft,
            commands::mark_read,
            commands::set_notifications,
            commands::open_link,
        ])
        .run(tauri::generate_context!("tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("confab: {e}");
        std::process::exit(1);
    }
}

fn init_tracing() {
    // CONFAB_LOG, with the targets that would log tokens (WebSocket frames) capped.
    let spec = std::env::var("CONFAB_LOG").ok();
    let filter = confab_client::logging::log_filter(spec.as_deref());
    // Err only if a subscriber is already set (e.g. by an embedding test): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn setup(app: &AppHandle) -> Result<()> {
    let data_dir = confab_config::data_dir(app.path().app_data_dir()?);
    std::fs::create_dir_all(&data_dir).map_err(|source| Error::Io {
        what: "the data dir",
        source,
    })?;
    // Registered for the Rust vault layer; the webview has no stronghold permission.
    app.plugin(
        tauri_plugin_stronghold::Builder::with_argon2(&data_dir.join(STRONGHOLD_SALT_FILE)).build(),
    )?;
    let config = AppConfig::load(&app.path().app_config_dir()?).map_err(|e| {
        tracing::error!("configuration error: {e}");
        e.to_string()
    });
    let plan = decide_redirect_plan(app, config.clone());
    let paths = AppPaths {
        data_dir,
        log_dir: app.path().app_log_dir()?,
    };
    let platform: Arc<dyn Platform> = Arc::new(TauriPlatform::new(app.clone()));
    let tauri::async_runtime::RuntimeHandle::Tokio(rt) = tauri::async_runtime::handle();
    let core = Arc::new(Core::new(config, paths, plan, platform, rt));
    create_main_window(app, &core)?;
    app.manage(core.clone());
    core.start();
    app.deep_link().on_open_url({
        let core = core.clone();
        move |event| {
            event
                .urls()
                .into_iter()
                .for_each(|url| core.deliver_redirect(url))
        }
    });
    // A redirect that launched this process (no instance was running).
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        urls.into_iter().for_each(|url| core.deliver_redirect(url));
    }
    Ok(())
}

/// Registering the redirect scheme runs OS tools (Linux: xdg-mime, update-desktop-database):
/// off the start-up path, so the window is not kept waiting. Sign-in waits for the plan.
fn decide_redirect_plan(
    app: &AppHandle,
    config: std::result::Result<AppConfig, String>,
) -> tokio::sync::watch::Receiver<Option<RedirectPlan>> {
    let (plan_tx, plan) = tokio::sync::watch::channel(None);
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let plan = match &config {
            Ok(c) => platform_redirect::redirect_plan(&app, c),
            Err(_) => RedirectPlan::Scheme,
        };
        let elapsed_ms = started.elapsed().as_millis();
        tracing::info!(?plan, elapsed_ms, "redirect plan");
        let _ = plan_tx.send(Some(plan));
    });
    plan
}

/// Whether `url` is one of the app's own pages: `tauri://localhost/…` (Linux, macOS, iOS) or
/// `http(s)://tauri.localhost/…` (Windows, Android).
fn is_app_page(url: &url::Url) -> bool {
    match url.scheme() {
        "tauri" => url.host_str() == Some("localhost"),
        "http" | "https" => url.host_str() == Some("tauri.localhost") && url.port().is_none(),
        _ => false,
    }
}

/// Creates the main window from its tauri.conf.json settings, with the size it had when the app
/// last ran and page scripts saying what is known before the first frame: that the first
/// screen is "Sign in" (`window.__CONFAB_FIRST_SCREEN__`) and that the workspace signs in with
/// a password form (`window.__CONFAB_SIGN_IN__`), read by ui/first-screen.js and ui/app.js;
/// nothing else, nothing secret.
fn create_main_window(app: &AppHandle, core: &Core) -> Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .ok_or(Error::NoMainWindow)?
        .clone();
    // The window only ever shows the app's own pages: a navigation elsewhere or a new window
    // (a link the UI failed to route through `open_link`, injected markup) is refused here,
    // not only by the UI's click handlers.
    let mut builder =
        tauri::WebviewWindowBuilder::from_config(app, &config)?.on_navigation(|url| {
            let ours = is_app_page(url);
            if !ours {
                tracing::warn!(
                    scheme = url.scheme(),
                    "refused a navigation away from the app"
                );
            }
            ours
        });
    #[cfg(desktop)]
    {
        builder = builder.on_new_window(|url, _| {
            tracing::warn!(scheme = url.scheme(), "refused a new window");
            tauri::webview::NewWindowResponse::Deny
        });
    }
    if let Some((width, height)) = core.chat.saved_window_size() {
        builder = builder.inner_size(width, height);
    }
    if core.sign_in_first() {
        builder = builder.initialization_script(
            "Object.defineProperty(window, '__CONFAB_FIRST_SCREEN__', { value: 'sign-in' });",
        );
    }
    if core.flow.sign_in_method() == "password" {
        builder = builder.initialization_script(
            "Object.defineProperty(window, '__CONFAB_SIGN_IN__', { value: 'password' });",
        );
    }
    builder.build()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_app_page;

    #[test]
    fn only_the_apps_own_pages_may_load_in_the_window() {
        for (url, ours) in [
            ("tauri://localhost/index.html", true),
            ("http://tauri.localhost/index.html", true),
            ("https://tauri.localhost/chat.js", true),
            ("https://evil.example/", false),
            ("http://tauri.localhost.evil.example/", false),
            ("http://tauri.localhost:8080/", false),
            ("tauri://evil.example/", false),
            ("javascript:alert(1)", false),
            ("file:///etc/passwd", false),
            ("data:text/html,<b>x</b>", false),
        ] {
            let parsed = url::Url::parse(url).expect("test URLs parse");
            assert_eq!(is_app_page(&parsed), ours, "{url}");
        }
    }
}
