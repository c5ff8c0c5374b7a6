//! What the core needs from the operating system, as small traits the shell implements.
//!
//! The Tauri shell serves them with tauri-plugin-opener, tauri-plugin-notification and
//! tauri-plugin-store; tests serve them with [`MemoryStore`] and recording fakes. Nothing that
//! crosses these traits is secret: URLs carry only public request parameters, notifications
//! carry what the user would see, and the stores hold non-secret UI state only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use url::Url;

/// The operating system, as far as the core is concerned.
pub trait Platform: Send + Sync + 'static {
    /// Opens `url` in the system browser (never in the app's webview).
    fn open_url(&self, url: &Url) -> Result<(), String>;
    /// Shows a desktop notification. Failures are the platform's to log.
    fn notify(&self, title: &str, body: &str);
    /// Opens (loads, or starts empty) the key-value store kept in the file at `path`.
    fn open_store(&self, path: &Path) -> Result<Arc<dyn KeyValueStore>, String>;
}

/// An in-memory map of JSON values backed by one file, in the format of tauri-plugin-store
/// (a JSON object). The core writes the file itself ([`crate::prefs::Prefs::persist`]), so a
/// store only has to load it and keep the entries.
pub trait KeyValueStore: Send + Sync {
    /// The value at `key`.
    fn get(&self, key: &str) -> Option<Value>;
    /// Sets `key` in memory.
    fn set(&self, key: &str, value: Value);
    /// Every entry, for writing the file.
    fn entries(&self) -> Vec<(String, Value)>;
}

/// `text` for a notification body on a server that reads markup (the freedesktop
/// notification spec's body markup: `<b>`, `<i>`, `<a href>`, `<img>`): `&`, `<` and `>` as
/// entities, so a message shows as the text it is and cannot link or load anything.
pub fn escape_notification_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Where the core keeps its files.
#[derive(Debug, Clone)]
pub struct AppPaths {
    /// Data dir (vault, remembered account, per-account chat state, settings).
    pub data_dir: PathBuf,
    /// Log dir (auth event log).
    pub log_dir: PathBuf,
}

/// A [`KeyValueStore`] that loads its file once (a missing or unreadable file starts empty)
/// and then lives in memory: what tests and headless runs use instead of tauri-plugin-store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<String, Value>>,
}

impl MemoryStore {
    /// A store with the entries of the JSON object in the file at `path`, if there is one.
    pub fn load(path: &Path) -> Self {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, Value>>(&bytes).ok())
            .unwrap_or_default();
        Self {
            entries: Mutex::new(entries),
        }
    }
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &str) -> Option<Value> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn set(&self, key: &str, value: Value) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), value);
    }

    fn entries(&self) -> Vec<(String, Value)> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_bodies_cannot_carry_markup() {
        assert_eq!(
            escape_notification_markup(r#"<a href="https://evil.example">click</a> & <img src=x>"#),
            r#"&lt;a href="https://evil.example"&gt;click&lt;/a&gt; &amp; &lt;img src=x&gt;"#
        );
        assert_eq!(escape_notification_markup("plain 😀 text"), "plain 😀 text");
    }
}
