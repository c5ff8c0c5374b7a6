//! Non-secret UI state: the last open room, per-room drafts and read positions (one file per
//! account), the notification setting and the window size (one file for the app). No token,
//! verifier or key is ever put here.
//!
//! The values live in a [`KeyValueStore`] the platform provides (the app: tauri-plugin-store).
//! That plugin's own `save` is a plain `fs::write` (truncate, then write): a crash in the middle
//! would leave a torn file, which the plugin then silently ignores — every draft would be lost.
//! [`Prefs::persist`] therefore writes the store's entries itself, in the plugin's format (pretty
//! JSON object), to a temporary file that is synced and renamed over the old one, so a crash
//! leaves either the old or the new file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::platform::{KeyValueStore, Platform};

/// One store file.
pub struct Prefs {
    store: Arc<dyn KeyValueStore>,
    path: PathBuf,
    /// Serializes writers of the file (two saves must not share the temporary file).
    write: Mutex<()>,
}

impl Prefs {
    /// Opens (loads, or starts empty) the store file at the absolute `path`.
    pub fn open(platform: &dyn Platform, path: PathBuf) -> Result<Self> {
        let store = platform
            .open_store(&path)
            .map_err(|e| Error::Storage(format!("{}: {e}", path.display())))?;
        Ok(Self {
            store,
            path,
            write: Mutex::new(()),
        })
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.store.get(key)
    }

    /// A string at `key`.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(|v| v.as_str().map(str::to_owned))
    }

    /// The entry `field` of the object at `key`.
    pub fn get_in(&self, key: &str, field: &str) -> Option<Value> {
        self.get(key).and_then(|v| v.get(field).cloned())
    }

    /// Sets `key` (in memory; call [`Prefs::persist`] to write).
    pub fn set(&self, key: &str, value: Value) {
        self.store.set(key, value);
    }

    /// Sets `field` of the object at `key` (`None` removes it).
    pub fn set_in(&self, key: &str, field: &str, value: Option<Value>) {
        let mut map = match self.get(key) {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        match value {
            Some(v) => {
                map.insert(field.to_owned(), v);
            }
            None => {
                map.remove(field);
            }
        }
        self.store.set(key, Value::Object(map));
    }

    /// Writes the current entries to disk (atomically; blocking: call off the async threads).
    pub fn persist(&self) -> Result<()> {
        let _guard = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let entries: BTreeMap<String, Value> = self.store.entries().into_iter().collect();
        let bytes =
            serde_json::to_vec_pretty(&entries).map_err(|e| Error::Storage(e.to_string()))?;
        write_atomically(&self.path, &bytes)
            .map_err(|e| Error::Storage(format!("{}: {e}", self.path.display())))
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, then syncs the
/// directory (so the rename itself survives a power cut).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.json");
        write_atomically(&path, b"{\"a\": 1, \"long\": \"xxxxxxxxxxxxxxxx\"}").unwrap();
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{}",
            "the new content replaces the old one entirely (no tail of the longer old file)"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["chat.json"], "no temporary file is left behind");
    }
}
