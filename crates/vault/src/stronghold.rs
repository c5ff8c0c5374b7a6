//! [`StrongholdStore`]: secrets in an IOTA Stronghold snapshot file (the engine that
//! tauri-plugin-stronghold wraps; same snapshot format), saved atomically after every change.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use iota_stronghold::{Client, KeyProvider, SnapshotPath, Stronghold};
use zeroize::Zeroizing;

use crate::fsutil::{
    fsync_file, owner_only, parent_dir, remove_stray_temps, rename_durable, temp_path, write_atomic,
};
use crate::key::{KeyInfo, KEY_INFO_FORMAT};
use crate::record::{record_key, record_prefix};
use crate::{AccountId, Error, KeySource, Result, SecretStore, SecretString};

/// Suffix of the key-info file that sits beside the snapshot: `<snapshot>.keyinfo`.
pub const KEY_INFO_SUFFIX: &str = ".keyinfo";

/// Stronghold client (namespace inside the snapshot) holding Confab's secrets.
const CLIENT_PATH: &[u8] = b"confab-vault";

/// scrypt work factor (log2 N) of the snapshot's age encryption, for snapshots we write.
///
/// Stronghold stretches the snapshot key with scrypt as if it were a human password; its default
/// (19: 512 MiB, > 1 s per open even in release) exists for weak passwords. Our snapshot key is
/// never a password: it is derived from 256 random bits (keychain) or from an Argon2id output
/// (passphrase, which already carries the brute-force cost). Stretching it again adds no security,
/// only latency. 10 (N = 1024, r = 8: 1 MiB, about a millisecond) keeps the file a normal,
/// valid Stronghold/age snapshot at negligible cost.
pub const SNAPSHOT_WORK_FACTOR: u8 = 10;

/// The work factor is a process-wide setting of the engine; set it before every write so another
/// Stronghold user in the process cannot make our saves slow (or theirs fast by accident: it only
/// affects writes, and reads accept any factor up to the engine's maximum).
fn set_work_factor() -> Result<()> {
    iota_stronghold::engine::snapshot::try_set_encrypt_work_factor(SNAPSHOT_WORK_FACTOR)
        .map_err(|e| Error::Stronghold(format!("setting work factor: {e}")))
}

/// A [`SecretStore`] persisted in a Stronghold snapshot.
///
/// Files, for a snapshot path `vault.stronghold`:
/// - `vault.stronghold`: the Stronghold snapshot (encrypted; secrets live in its store).
/// - `vault.stronghold.keyinfo`: JSON, not secret: key source kind, Argon2 parameters and salt
///   (passphrase), and a key check value.
/// - `*.tmp-*`: in-flight saves; removed on open, never read.
/// - `*.corrupt-<unix seconds>`: files moved aside by [`StrongholdStore::reset`].
pub struct StrongholdStore {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    stronghold: Stronghold,
    client: Client,
    key: KeyProvider,
}

impl std::fmt::Debug for StrongholdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrongholdStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Path of the key-info file of the snapshot at `path`.
pub fn key_info_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(KEY_INFO_SUFFIX);
    PathBuf::from(s)
}

impl StrongholdStore {
    /// Whether a vault snapshot exists at `path`.
    pub fn exists(path: &Path) -> bool {
        path.is_file()
    }

    /// Opens the existing vault at `path` (snapshot file path).
    ///
    /// Errors: [`Error::NotFound`] if there is none; [`Error::WrongKey`]; [`Error::Corrupt`];
    /// [`Error::KeySourceMismatch`]; key source errors (keychain unavailable, key missing). On every
    /// error the vault files are left untouched (only stray temp files are removed).
    pub fn open(path: impl AsRef<Path>, source: &KeySource) -> Result<Self> {
        let path = path.as_ref().to_owned();
        set_work_factor()?;
        remove_stray_temps(&path)?;
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(Error::Corrupt {
                    path,
                    reason: "not a regular file".into(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound { path })
            }
            Err(e) => return Err(Error::io(path, e)),
        }

        let info_path = key_info_path(&path);
        let info = read_key_info(&info_path)?;
        if info.key_source != source.kind() {
            return Err(Error::KeySourceMismatch {
                expected: kind_name(&info.key_source),
                offered: source.kind(),
            });
        }
        let check = B64.decode(&info.key_check).map_err(|_| Error::Corrupt {
            path: info_path.clone(),
            reason: "key check is not base64".into(),
        })?;
        let key = source.existing_key(&info, &info_path)?;
        if !key.matches(&check) {
            return Err(Error::WrongKey);
        }

        // Surface plain I/O problems (permissions, EIO) as such, not as corruption.
        fs::File::open(&path).map_err(|e| Error::io(&path, e))?;

        let key = key_provider(key.snapshot_key())?;
        let stronghold = Stronghold::default();
        let client = stronghold
            .load_client_from_snapshot(CLIENT_PATH, &key, &SnapshotPath::from_path(&path))
            .map_err(|e| Error::Corrupt {
                path: path.clone(),
                reason: format!("snapshot cannot be decrypted or parsed ({e})"),
            })?;
        Ok(Self {
            path,
            inner: Mutex::new(Inner {
                stronghold,
                client,
                key,
            }),
        })
    }

    /// Creates a new, empty vault at `path` and saves it. The parent directory is created if
    /// needed. Never overwrites: [`Error::AlreadyExists`] if a snapshot is there.
    pub fn create(path: impl AsRef<Path>, source: &KeySource) -> Result<Self> {
        let path = path.as_ref().to_owned();
        set_work_factor()?;
        let dir = parent_dir(&path);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        remove_stray_temps(&path)?;
        if fs::symlink_metadata(&path).is_ok() {
            return Err(Error::AlreadyExists { path });
        }
        let (key, info) = source.new_key()?;
        let info_json = serde_json::to_vec_pretty(&info)
            .map_err(|e| Error::Stronghold(format!("encoding key info: {e}")))?;
        // Key info first: a crash before the snapshot exists leaves "no vault yet", and the
        // next create simply replaces the key info.
        write_atomic(&key_info_path(&path), &info_json)?;

        let key = key_provider(key.snapshot_key())?;
        let stronghold = Stronghold::default();
        let client = stronghold
            .create_client(CLIENT_PATH)
            .map_err(|e| Error::Stronghold(format!("creating client: {e}")))?;
        let store = Self {
            path,
            inner: Mutex::new(Inner {
                stronghold,
                client,
                key,
            }),
        };
        {
            let inner = store.inner.lock().map_err(|_| Error::Poisoned)?;
            store.save(&inner)?;
        }
        Ok(store)
    }

    /// Opens the vault at `path`, or creates it if (and only if) there is none.
    /// Wrong key or corruption is reported, never answered by creating a fresh vault.
    pub fn open_or_create(path: impl AsRef<Path>, source: &KeySource) -> Result<Self> {
        match Self::open(path.as_ref(), source) {
            Err(Error::NotFound { .. }) => Self::create(path, source),
            other => other,
        }
    }

    /// "Reset vault and sign in again": moves the snapshot and its key-info file aside as
    /// `<name>.corrupt-<unix seconds>` (nothing is deleted, so a support case can still look at
    /// them), after which [`StrongholdStore::create`] starts afresh. Call only after the user
    /// agreed. Returns the new path of the snapshot, `None` if there was no snapshot.
    /// The keychain key is kept (a new vault reuses it).
    pub fn reset(path: impl AsRef<Path>) -> Result<Option<PathBuf>> {
        let path = path.as_ref();
        remove_stray_temps(path)?;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let aside = |p: &Path| -> PathBuf {
            let mut n = 0u32;
            loop {
                let mut s = p.as_os_str().to_owned();
                s.push(format!(".corrupt-{ts}"));
                if n > 0 {
                    s.push(format!("-{n}"));
                }
                let candidate = PathBuf::from(s);
                if fs::symlink_metadata(&candidate).is_err() {
                    return candidate;
                }
                n += 1;
            }
        };
        let info = key_info_path(path);
        if fs::symlink_metadata(&info).is_ok() {
            rename_durable(&info, &aside(&info))?;
        }
        if fs::symlink_metadata(path).is_ok() {
            let target = aside(path);
            rename_durable(path, &target)?;
            return Ok(Some(target));
        }
        Ok(None)
    }

    /// The snapshot path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the whole vault: Stronghold writes the snapshot to a fresh temp path (its own
    /// writer is not atomic towards our path), we fsync it, rename it over the snapshot and fsync
    /// the directory.
    fn save(&self, inner: &Inner) -> Result<()> {
        set_work_factor()?;
        let tmp = temp_path(&self.path);
        let result = (|| {
            // Claim the temp path first: an unwritable directory or a full disk then surfaces
            // as `Io { path }` instead of an opaque engine message. The engine renames its own
            // salted temp file over this placeholder.
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            inner
                .stronghold
                .commit_with_keyprovider(&SnapshotPath::from_path(&tmp), &inner.key)
                .map_err(|e| Error::Stronghold(format!("writing {}: {e}", tmp.display())))?;
            // The engine wrote its own file with the default mode: owner-only before it
            // becomes the vault.
            owner_only(&tmp)?;
            fsync_file(&tmp)?;
            rename_durable(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            let _ = remove_stray_temps(&self.path);
        }
        result
    }
}

impl SecretStore for StrongholdStore {
    fn put(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<()> {
        let inner = self.inner.lock().map_err(|_| Error::Poisoned)?;
        let store = inner.client.store();
        let key = record_key(account, name);
        let previous = store
            .insert(key.clone(), value.expose_secret().as_bytes().to_vec(), None)
            .map_err(stronghold_err)?
            .map(Zeroizing::new);
        if let Err(e) = self.save(&inner) {
            // keep memory equal to disk: the caller must not believe a failed write happened
            let _ = match previous {
                Some(old) => store.insert(key, old.to_vec(), None).map(|_| ()),
                None => store.delete(&key).map(|_| ()),
            };
            return Err(e);
        }
        Ok(())
    }

    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>> {
        let inner = self.inner.lock().map_err(|_| Error::Poisoned)?;
        let value = inner
            .client
            .store()
            .get(&record_key(account, name))
            .map_err(stronghold_err)?;
        match value {
            None => Ok(None),
            Some(bytes) => {
                let text = String::from_utf8(bytes).map_err(|e| {
                    drop(Zeroizing::new(e.into_bytes()));
                    Error::NotUtf8
                })?;
                Ok(Some(SecretString::new(text)))
            }
        }
    }

    fn delete(&self, account: &AccountId, name: &str) -> Result<bool> {
        let inner = self.inner.lock().map_err(|_| Error::Poisoned)?;
        let store = inner.client.store();
        let key = record_key(account, name);
        let Some(previous) = store.delete(&key).map_err(stronghold_err)? else {
            return Ok(false);
        };
        let previous = Zeroizing::new(previous);
        if let Err(e) = self.save(&inner) {
            let _ = store.insert(key, previous.to_vec(), None);
            return Err(e);
        }
        Ok(true)
    }

    fn delete_account(&self, account: &AccountId) -> Result<usize> {
        let inner = self.inner.lock().map_err(|_| Error::Poisoned)?;
        let store = inner.client.store();
        let prefix = record_prefix(account);
        let mut removed = Vec::new();
        for key in store.keys().map_err(stronghold_err)? {
            if key.starts_with(&prefix) {
                if let Some(v) = store.delete(&key).map_err(stronghold_err)? {
                    removed.push((key, Zeroizing::new(v)));
                }
            }
        }
        if removed.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.save(&inner) {
            for (key, v) in &removed {
                let _ = store.insert(key.clone(), v.to_vec(), None);
            }
            return Err(e);
        }
        Ok(removed.len())
    }
}

fn stronghold_err(e: impl std::fmt::Display) -> Error {
    Error::Stronghold(e.to_string())
}

fn key_provider(key: Zeroizing<Vec<u8>>) -> Result<KeyProvider> {
    KeyProvider::try_from(key).map_err(|e| Error::Stronghold(format!("key provider: {e:?}")))
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "keychain" => "keychain",
        "passphrase" => "passphrase",
        "raw" => "raw",
        _ => "an unknown key source",
    }
}

fn read_key_info(info_path: &Path) -> Result<KeyInfo> {
    let bytes = match fs::read(info_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Corrupt {
                path: info_path.to_owned(),
                reason: "key info file is missing".into(),
            })
        }
        Err(e) => return Err(Error::io(info_path, e)),
    };
    let info: KeyInfo = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path: info_path.to_owned(),
        reason: format!("key info is not valid: {e}"),
    })?;
    if info.format != KEY_INFO_FORMAT {
        return Err(Error::Corrupt {
            path: info_path.to_owned(),
            reason: format!("unknown key info format {:?}", info.format),
        });
    }
    Ok(info)
}
