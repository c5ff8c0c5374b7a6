//! The core's [`Platform`] served by Tauri plugins: opener (system browser), notification, store.

use std::path::Path;
use std::sync::Arc;

use confab_client::{KeyValueStore, Platform};
use serde_json::Value;
use tauri::{AppHandle, Runtime};
use tauri_plugin_notification::NotificationExt;
use tauri_plugin_opener::OpenerExt;
use tauri_plugin_store::{Store, StoreExt};
use url::Url;

/// The app's platform: Tauri's plugins (and, in debug builds, the E2E test hooks).
pub struct TauriPlatform<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> TauriPlatform<R> {
    /// The platform of `app`.
    pub fn new(app: AppHandle<R>) -> Self {
        Self { app }
    }
}

impl<R: Runtime> Platform for TauriPlatform<R> {
    fn open_url(&self, url: &Url) -> Result<(), String> {
        #[cfg(debug_assertions)]
        if let Some(result) = crate::test_hooks::open_url(url) {
            return result;
        }
        self.app
            .opener()
            .open_url(url.as_str(), None::<&str>)
            .map_err(|e| e.to_string())
    }

    fn notify(&self, title: &str, body: &str) {
        #[cfg(debug_assertions)]
        if crate::test_hooks::record_notification(title, body) {
            return;
        }
        // Freedesktop notification servers read a markup subset in the body (<b>, <a>, <img>):
        // a message is text, so it is escaped there. Other platforms show the body as is.
        #[cfg(target_os = "linux")]
        let body = confab_client::platform::escape_notification_markup(body);
        let shown = self
            .app
            .notification()
            .builder()
            .title(title)
            .body(body)
            .show();
        if let Err(e) = shown {
            tracing::warn!("could not show a notification: {e}");
        }
    }

    fn open_store(&self, path: &Path) -> Result<Arc<dyn KeyValueStore>, String> {
        // The core writes the file itself (atomically): the plugin only loads and holds it.
        let store = self
            .app
            .store_builder(path)
            .disable_auto_save()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(PluginStore(store)))
    }
}

/// A tauri-plugin-store store as the core's key-value store.
struct PluginStore<R: Runtime>(Arc<Store<R>>);

impl<R: Runtime> KeyValueStore for PluginStore<R> {
    fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key)
    }

    fn set(&self, key: &str, value: Value) {
        self.0.set(key, value);
    }

    fn entries(&self) -> Vec<(String, Value)> {
        self.0.entries()
    }
}
