//! Confab app: wires the Tauri plugins and forwards commands to the core.
//!
//! Plugin order matters: single-instance first (desktop), so a second process started by a
//! deep link hands its URL to this one and exits before anything else initializes.

pub mod account;
pub mod chat;
mod commands;
#[cfg(desktop)]
mod desktop;
pub mod error;
pub mod events;
#[cfg(mobile)]
mod mobile;
pub mod prefs;
pub mod rooms;
pub mod signin;
#[cfg(debug_assertions)]
mod test_hooks;

use std::sync::Arc;

use confab_config::AppConfig;
use tauri::{AppHandle, Manager, Runtime, WindowEvent};
use tauri_plugin_deep_link::DeepLinkExt;
use tauri_plugin_opener::OpenerExt;
use url::Url;

#[cfg(desktop)]
use desktop as platform;
#[cfg(mobile)]
use mobile as platform;

use crate::chat::ChatHub;
use crate::signin::{AppPaths, BrowserOpener, RedirectPlan, SignInFlow};

/// File name of the Stronghold password salt in the data dir (used by the vault layer).
const STRONGHOLD_SALT_FILE: &str = "stronghold-salt.txt";

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
        .setup(|app| {
            setup(app.handle())?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Back in focus (often after resume from sleep): the session re-checks its refresh
            // schedule against the wall clock at once (cheap when nothing is due).
            if let WindowEvent::Focused(true) = event {
                if let Some(flow) = window.try_state::<Arc<SignInFlow>>() {
                    flow.notify_resume();
                }
            }
            if let Some(hub) = window.try_state::<Arc<ChatHub>>() {
                match event {
                    WindowEvent::Focused(focused) => hub.set_focused(*focused),
                    WindowEvent::Resized(size) => {
                        if let Ok(scale) = window.scale_factor() {
                            let logical = size.to_logical::<f64>(scale);
                            hub.remember_window_size(logical.width, logical.height);
                        }
                    }
                    _ => {}
                }
            }
            // Mobile: resume from the background (see mobile.rs).
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
            commands::reset_vault,
            commands::sign_out,
            chat::subscribe_chat,
            chat::list_rooms,
            chat::create_room,
            chat::join_room,
            chat::open_room,
            chat::load_older,
            chat::send_message,
            chat::retry_message,
            chat::save_draft,
            chat::mark_read,
            chat::set_notifications,
            chat::open_link,
        ])
        .run(tauri::generate_context!("tauri.conf.json"));
    if let Err(e) = result {
        eprintln!("confab: {e}");
        std::process::exit(1);
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONFAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Err only if a subscriber is already set (e.g. by an embedding test): keep that one.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn setup(app: &AppHandle) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = confab_config::data_dir(app.path().app_data_dir()?);
    std::fs::create_dir_all(&data_dir)?;
    // Registered for the Rust vault layer; the webview has no stronghold permission.
    app.plugin(
        tauri_plugin_stronghold::Builder::with_argon2(&data_dir.join(STRONGHOLD_SALT_FILE)).build(),
    )?;

    let config = AppConfig::load(&app.path().app_config_dir()?).map_err(|e| {
        tracing::error!("configuration error: {e}");
        e.to_string()
    });
    // Registering the redirect scheme runs OS tools (Linux: xdg-mime, update-desktop-database):
    // off the start-up path, so the window is not kept waiting. Sign-in waits for the plan.
    let (plan_tx, plan) = tokio::sync::watch::channel(None);
    let registering = (app.clone(), config.clone());
    tauri::async_runtime::spawn_blocking(move || {
        let (app, config) = registering;
        let started = std::time::Instant::now();
        let plan = match &config {
            Ok(c) => platform::redirect_plan(&app, c),
            Err(_) => RedirectPlan::Scheme,
        };
        tracing::info!(
            ?plan,
            elapsed_ms = started.elapsed().as_millis(),
            "redirect plan"
        );
        let _ = plan_tx.send(Some(plan));
    });
    let log_dir = app.path().app_log_dir()?;
    let paths = AppPaths { data_dir, log_dir };
    let chat_url = config
        .as_ref()
        .map(|c| c.chat_url.to_string())
        .map_err(Clone::clone);
    let hub = ChatHub::new(
        app.clone(),
        paths.data_dir.clone(),
        chat_url,
        browser_opener(app),
    );
    let flow = SignInFlow::new(config, paths, plan, browser_opener(app));
    // When the first screen is "Sign in" (no remembered account), the page is told at creation,
    // so it shows that screen as soon as it is parsed instead of after its first round trip to
    // the core; the core's status says the same from here on.
    let sign_in_first = flow.show_sign_in_first();
    create_main_window(app, &hub, sign_in_first)?;
    flow.set_observer(hub.clone());
    app.manage(hub);
    app.manage(flow.clone());
    // Vault open (keychain or passphrase prompt), then silent restore, off the main thread.
    let starting = flow.clone();
    tauri::async_runtime::spawn(async move { starting.open_vault().await });

    let on_url = flow.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            deliver(&on_url, url);
        }
    });
    // A redirect that launched this process (no instance was running).
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        for url in urls {
            deliver(&flow, url);
        }
    }
    Ok(())
}

/// Label of the main window (its settings are in tauri.conf.json, with `"create": false`).
const MAIN_WINDOW: &str = "main";

/// Creates the main window from its tauri.conf.json settings, with the size it had when the app
/// last ran and, when the first screen is known to be "Sign in", a page script saying so
/// (`window.__CONFAB_FIRST_SCREEN__`, read by ui/first-screen.js and ui/app.js; nothing else,
/// nothing secret).
fn create_main_window(
    app: &AppHandle,
    hub: &ChatHub,
    sign_in_first: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .ok_or("tauri.conf.json has no main window")?
        .clone();
    let mut builder = tauri::WebviewWindowBuilder::from_config(app, &config)?;
    if let Some((width, height)) = hub.saved_window_size() {
        builder = builder.inner_size(width, height);
    }
    if sign_in_first {
        builder = builder.initialization_script(
            "Object.defineProperty(window, '__CONFAB_FIRST_SCREEN__', { value: 'sign-in' });",
        );
    }
    builder.build()?;
    Ok(())
}

/// Hands a redirect URL to the flow. The URL carries an authorization code: never log it.
/// The provider's return from RP-initiated logout (`<scheme>:/oauth/logout`) needs nothing.
fn deliver(flow: &Arc<SignInFlow>, url: Url) {
    if url.path() == "/oauth/logout" {
        tracing::info!("back from the provider's logout page");
        return;
    }
    let flow = flow.clone();
    tauri::async_runtime::spawn(async move { flow.complete(url.as_str()).await });
}

fn browser_opener<R: Runtime>(app: &AppHandle<R>) -> BrowserOpener {
    #[cfg(debug_assertions)]
    if let Some(hook) = test_hooks::browser_opener_from_env() {
        return hook;
    }
    let app = app.clone();
    Arc::new(move |url: &Url| {
        app.opener()
            .open_url(url.as_str(), None::<&str>)
            .map_err(|e| e.to_string())
    })
}
