//! Refresh tokens whose revocation is still owed: a failed revocation (provider unreachable,
//! timeout, 5xx, 429) is retried at the next start instead of leaving a live token behind.
//!
//! The list lives in the vault only (one record, [`RECORD_NAME`] of the reserved account
//! [`record_account`]), like every secret: never in a file of its own, the store plugin, logs
//! or UI events. Each entry keeps the issuer the token belongs to (it is only ever sent there)
//! and when it was added. An entry is dropped once the token is revoked, once the provider
//! refused the revocation for good (RFC 7009 answers 200 for an unknown token too, so only a
//! transient failure keeps it), or when it is older than [`MAX_AGE`] (the token's plausible
//! life). At most [`MAX_PENDING`] entries are kept: a new one pushes out the oldest.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confab_session::EndpointError;
use confab_types::constant_time_eq;
use confab_vault::{AccountId, SecretStore, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Most revocations kept pending; a new one pushes out the oldest.
pub const MAX_PENDING: usize = 32;
/// How long a revocation stays pending: beyond that the refresh token has most likely expired
/// at the provider (or will soon), and retrying is pointless.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Name of the vault record holding the list.
pub const RECORD_NAME: &str = "pending_revocations";

/// The reserved vault account the list is stored under. Its issuer is not a URL, so no real
/// account (whose issuer is the provider's https URL) can ever collide with it.
pub fn record_account() -> AccountId {
    AccountId::new("confab:internal", "pending-revocations")
}

/// Whether two issuer identifiers name the same provider (a lone trailing `/` aside, which
/// `url::Url` adds to an empty path).
pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// One entry as stored (JSON inside the vault record); zeroized when dropped.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Entry {
    issuer: String,
    token: String,
    /// When it was added, in seconds since the Unix epoch.
    since: u64,
}

/// A revocation owed to `issuer`.
pub struct Pending {
    /// The issuer the token belongs to (revoked there, nowhere else).
    pub issuer: String,
    /// The refresh token.
    pub token: SecretString,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The pending-revocation list of one vault. Clones share one lock, so concurrent changes
/// (a sign-out adding, the start-up retry removing) never lose each other's.
#[derive(Clone)]
pub struct PendingRevocations {
    store: Arc<dyn SecretStore>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for PendingRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRevocations").finish_non_exhaustive()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load(store: &dyn SecretStore) -> Result<Vec<Entry>, String> {
    let Some(record) = store
        .get(&record_account(), RECORD_NAME)
        .map_err(|e| e.to_string())?
    else {
        return Ok(Vec::new());
    };
    match serde_json::from_str(record.expose_secret()) {
        Ok(entries) => Ok(entries),
        Err(_) => {
            // Never quote the record: it holds tokens.
            tracing::warn!("the pending revocations record is unreadable; it is dropped");
            Ok(Vec::new())
        }
    }
}

fn save(store: &dyn SecretStore, entries: &[Entry]) -> Result<(), String> {
    if entries.is_empty() {
        return store
            .delete(&record_account(), RECORD_NAME)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let json = serde_json::to_string(entries).map_err(|e| e.to_string())?;
    store
        .put(&record_account(), RECORD_NAME, &SecretString::new(json))
        .map_err(|e| e.to_string())
}

impl PendingRevocations {
    /// The list kept in `store` (the app's open vault).
    pub fn new(store: Arc<dyn SecretStore>) -> Self {
        Self {
            store,
            lock: Arc::default(),
        }
    }

    /// Whether `other` is this very list (the same vault, not one opened or reset since).
    pub fn same_list(&self, other: &PendingRevocations) -> bool {
        Arc::ptr_eq(&self.lock, &other.lock)
    }

    /// Reads the list, lets `change` edit it, and writes it back if it returned `true`; all
    /// under the lock, on tokio's blocking pool (the vault blocks on disk).
    async fn update<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut Vec<Entry>) -> (bool, T) + Send + 'static,
    ) -> Result<T, String> {
        let _guard = self.lock.lock().await;
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut entries = load(store.as_ref())?;
            let (changed, out) = change(&mut entries);
            if changed {
                save(store.as_ref(), &entries)?;
            }
            Ok(out)
        })
        .await
        .map_err(|e| format!("vault task failed: {e}"))?
    }

    /// Notes that `token` of `issuer` is to be revoked (before trying, so an app quit or a
    /// timeout meanwhile leaves it noted). The same token is noted once.
    pub async fn add(&self, issuer: &str, token: &SecretString) -> Result<(), String> {
        self.add_at(issuer, token, SystemTime::now()).await
    }

    async fn add_at(
        &self,
        issuer: &str,
        token: &SecretString,
        now: SystemTime,
    ) -> Result<(), String> {
        let entry = Entry {
            issuer: issuer.trim_end_matches('/').to_owned(),
            token: token.expose_secret().to_owned(),
            since: unix_secs(now),
        };
        let dropped = self
            .update(move |entries| {
                if entries
                    .iter()
                    .any(|e| constant_time_eq(&e.token, &entry.token))
                {
                    return (false, 0);
                }
                let mut dropped = 0;
                while entries.len() >= MAX_PENDING {
                    entries.remove(0);
                    dropped += 1;
                }
                entries.push(entry);
                (true, dropped)
            })
            .await?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "too many pending revocations: the oldest was given up"
            );
        }
        Ok(())
    }

    /// Forgets `token` (revoked, or refused for good).
    pub async fn remove(&self, token: &SecretString) -> Result<(), String> {
        let token = token.clone();
        self.update(move |entries| {
            let before = entries.len();
            entries.retain(|e| !constant_time_eq(&e.token, token.expose_secret()));
            (entries.len() != before, ())
        })
        .await
    }

    /// After an attempt to revoke `token` (at an identity provider or a credential backend,
    /// classified as the session classifies them): forgets it unless the failure was transient
    /// (network, timeout, 5xx, 429), which keeps it for the next start.
    pub async fn settle(&self, token: &SecretString, outcome: &Result<(), EndpointError>) {
        match outcome {
            Err(e @ EndpointError::Transient { .. }) => {
                tracing::warn!(
                    "revoking a refresh token failed ({e}); it stays in the vault to be revoked at the next start"
                );
            }
            _ => {
                if let Err(e) = self.remove(token).await {
                    tracing::warn!("could not update the pending revocations: {e}");
                }
            }
        }
    }

    /// The revocations still owed, after dropping those older than [`MAX_AGE`].
    pub async fn due(&self) -> Result<Vec<Pending>, String> {
        self.due_at(SystemTime::now()).await
    }

    async fn due_at(&self, now: SystemTime) -> Result<Vec<Pending>, String> {
        let oldest = unix_secs(now).saturating_sub(MAX_AGE.as_secs());
        let (expired, due) = self
            .update(move |entries| {
                let before = entries.len();
                entries.retain(|e| e.since >= oldest);
                let expired = before - entries.len();
                let due: Vec<Pending> = entries
                    .iter()
                    .map(|e| Pending {
                        issuer: e.issuer.clone(),
                        token: SecretString::new(e.token.clone()),
                    })
                    .collect();
                (expired > 0, (expired, due))
            })
            .await?;
        if expired > 0 {
            tracing::info!(
                expired,
                "pending revocations older than 30 days given up (the tokens have expired by now)"
            );
        }
        Ok(due)
    }

    /// How many revocations are owed.
    pub async fn len(&self) -> Result<usize, String> {
        self.update(|entries| (false, entries.len())).await
    }

    /// Whether no revocation is owed.
    pub async fn is_empty(&self) -> Result<bool, String> {
        Ok(self.len().await? == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_vault::MemoryStore;

    fn token(n: usize) -> SecretString {
        SecretString::new(format!("refresh-token-{n}"))
    }

    #[tokio::test]
    async fn a_token_is_noted_once_and_forgotten_when_settled() {
        let list = PendingRevocations::new(Arc::new(MemoryStore::new()));
        list.add("https://id.example/", &token(1)).await.unwrap();
        list.add("https://id.example", &token(1)).await.unwrap();
        assert_eq!(list.len().await.unwrap(), 1, "the same token is noted once");
        let due = list.due().await.unwrap();
        assert_eq!(
            due[0].issuer, "https://id.example",
            "issuer kept, normalized"
        );
        assert_eq!(due[0].token.expose_secret(), "refresh-token-1");

        let transient = Err(EndpointError::Transient {
            retry_after: None,
            reason: "unreachable".into(),
        });
        list.settle(&token(1), &transient).await;
        assert_eq!(list.len().await.unwrap(), 1, "a transient failure keeps it");
        let refused = Err(EndpointError::Fatal("token revocation".into()));
        list.settle(&token(1), &refused).await;
        assert!(list.is_empty().await.unwrap(), "a final answer forgets it");
        list.add("https://id.example", &token(2)).await.unwrap();
        list.settle(&token(2), &Ok(())).await;
        assert!(
            list.is_empty().await.unwrap(),
            "a revoked token is forgotten"
        );
    }

    #[tokio::test]
    async fn the_list_is_bounded_and_old_entries_age_out() {
        let list = PendingRevocations::new(Arc::new(MemoryStore::new()));
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for n in 0..MAX_PENDING + 3 {
            let at = start + Duration::from_secs(n as u64);
            list.add_at("https://id.example", &token(n), at)
                .await
                .unwrap();
        }
        let due = list.due_at(start).await.unwrap();
        assert_eq!(due.len(), MAX_PENDING, "bounded");
        assert_eq!(
            due[0].token.expose_secret(),
            "refresh-token-3",
            "the oldest were given up first"
        );
        // Tokens 3..=34 were added at start + 3 s .. start + 34 s; 30 days after start + 10 s,
        // those added before start + 10 s (3..=9, seven of them) are too old.
        let later = start + MAX_AGE + Duration::from_secs(10);
        let due = list.due_at(later).await.unwrap();
        assert_eq!(
            due.len(),
            MAX_PENDING - 7,
            "entries older than 30 days are dropped"
        );
        assert_eq!(
            list.len().await.unwrap(),
            MAX_PENDING - 7,
            "and stay dropped"
        );
    }

    #[tokio::test]
    async fn the_record_is_a_vault_secret_under_a_reserved_account() {
        let store = Arc::new(MemoryStore::new());
        let list = PendingRevocations::new(store.clone());
        list.add("https://id.example", &token(7)).await.unwrap();
        let record = store
            .get(&record_account(), RECORD_NAME)
            .unwrap()
            .expect("stored in the vault");
        assert!(record.expose_secret().contains("refresh-token-7"));
        assert!(
            !format!("{:?}", list.due().await.unwrap()).contains("refresh-token"),
            "Debug never shows a token"
        );
        list.remove(&token(7)).await.unwrap();
        assert!(
            store.get(&record_account(), RECORD_NAME).unwrap().is_none(),
            "an empty list leaves no record"
        );
    }
}
