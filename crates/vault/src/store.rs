//! The [`SecretStore`] trait and the in-memory implementation.

use std::collections::BTreeMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::record::{record_key, record_prefix};
use crate::{AccountId, Error, Result, SecretString};

/// Named secrets, namespaced per account. Implementations are synchronous and may block on disk
/// or keychain I/O; async callers use `spawn_blocking`.
///
/// Durability: when `put` or `delete` returns `Ok`, the change is on disk (for persistent stores),
/// so a refresh token can be rotated safely: write the new one, then use it.
pub trait SecretStore: Send + Sync {
    /// Stores `value` under `name` for `account`, replacing any previous value.
    fn put(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<()>;

    /// Reads the secret `name` of `account`, `None` if absent.
    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>>;

    /// Deletes the secret `name` of `account`; returns whether it existed.
    fn delete(&self, account: &AccountId, name: &str) -> Result<bool>;

    /// Deletes every secret of `account` (sign-out); returns how many were removed.
    fn delete_account(&self, account: &AccountId) -> Result<usize>;
}

/// A [`SecretStore`] that lives in memory only: for unit tests and for callers that must not
/// persist anything. Values are zeroized when replaced, deleted or dropped.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<BTreeMap<Vec<u8>, Zeroizing<String>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore([redacted])")
    }
}

impl SecretStore for MemoryStore {
    fn put(&self, account: &AccountId, name: &str, value: &SecretString) -> Result<()> {
        let mut entries = self.entries.lock().map_err(|_| Error::Poisoned)?;
        entries.insert(
            record_key(account, name),
            Zeroizing::new(value.expose_secret().to_owned()),
        );
        Ok(())
    }

    fn get(&self, account: &AccountId, name: &str) -> Result<Option<SecretString>> {
        let entries = self.entries.lock().map_err(|_| Error::Poisoned)?;
        Ok(entries
            .get(&record_key(account, name))
            .map(|v| SecretString::new(v.as_str().to_owned())))
    }

    fn delete(&self, account: &AccountId, name: &str) -> Result<bool> {
        let mut entries = self.entries.lock().map_err(|_| Error::Poisoned)?;
        Ok(entries.remove(&record_key(account, name)).is_some())
    }

    fn delete_account(&self, account: &AccountId) -> Result<usize> {
        let mut entries = self.entries.lock().map_err(|_| Error::Poisoned)?;
        let prefix = record_prefix(account);
        let before = entries.len();
        entries.retain(|k, _| !k.starts_with(&prefix));
        Ok(before - entries.len())
    }
}
