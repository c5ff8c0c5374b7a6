//! Where the refresh token lives between runs: [`RefreshTokenStore`].

use std::sync::Mutex;

use futures_util::future::BoxFuture;

use crate::secret::Secret;

/// Durable storage of one account's refresh token (a slot in the vault).
///
/// Contract: when `save` or `delete` returns `Ok`, the change survives a crash of this process
/// (atomic replace plus fsync, or equivalent). The manager relies on it for rotation safety.
pub trait RefreshTokenStore: Send + Sync + 'static {
    /// The stored refresh token, `None` if there is none.
    fn load(&self) -> BoxFuture<'_, Result<Option<Secret>, String>>;
    /// Replaces the stored refresh token, durably.
    fn save<'a>(&'a self, token: &'a Secret) -> BoxFuture<'a, Result<(), String>>;
    /// Removes the stored refresh token, durably.
    fn delete(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A [`RefreshTokenStore`] in memory only (tests, or a session that must not persist).
#[derive(Default)]
pub struct MemoryTokenStore {
    slot: Mutex<Option<Secret>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that already holds `token`.
    pub fn with_token(token: Secret) -> Self {
        Self {
            slot: Mutex::new(Some(token)),
        }
    }

    fn with_slot<T>(&self, f: impl FnOnce(&mut Option<Secret>) -> T) -> Result<T, String> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| "memory store lock poisoned".to_owned())?;
        Ok(f(&mut slot))
    }
}

impl std::fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryTokenStore([redacted])")
    }
}

impl RefreshTokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Secret>, String>> {
        let result = self.with_slot(|s| s.clone());
        Box::pin(async move { result })
    }

    fn save<'a>(&'a self, token: &'a Secret) -> BoxFuture<'a, Result<(), String>> {
        let result = self.with_slot(|s| *s = Some(token.clone()));
        Box::pin(async move { result })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        let result = self.with_slot(|s| *s = None);
        Box::pin(async move { result })
    }
}
