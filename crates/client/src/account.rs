//! The last signed-in account, remembered so the next start can restore the session silently.
//!
//! `account.json` in the data dir holds only what identifies and names the account (issuer,
//! subject, name, email) — never a token. The refresh token is in the vault.

use std::path::{Path, PathBuf};

use confab_vault::AccountId;
use serde::{Deserialize, Serialize};

/// File name of the remembered account in the data dir.
pub const ACCOUNT_FILE: &str = "account.json";

/// Non-secret identity of the last account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAccount {
    /// Issuer (`iss`).
    pub issuer: String,
    /// Subject at that issuer (`sub`).
    pub subject: String,
    /// Display name, if known.
    pub name: Option<String>,
    /// E-mail, if known.
    pub email: Option<String>,
}

impl LastAccount {
    /// The account this is (issuer and subject): its vault entries and chat directory.
    pub fn account_id(&self) -> AccountId {
        AccountId::new(self.issuer.clone(), self.subject.clone())
    }
}

impl From<&confab_session::User> for LastAccount {
    fn from(u: &confab_session::User) -> Self {
        Self {
            issuer: u.issuer.clone(),
            subject: u.subject.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
        }
    }
}

impl From<&LastAccount> for confab_session::User {
    fn from(a: &LastAccount) -> Self {
        Self {
            issuer: a.issuer.clone(),
            subject: a.subject.clone(),
            name: a.name.clone(),
            email: a.email.clone(),
        }
    }
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(ACCOUNT_FILE)
}

/// The remembered account, if there is a readable one (an unreadable file means "none").
pub fn load(data_dir: &Path) -> Option<LastAccount> {
    let text = std::fs::read(path(data_dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!("ignoring an unreadable {ACCOUNT_FILE}: {e}");
            None
        }
    }
}

/// Remembers `account` (synced temp file + rename, so a crash leaves the old or the new file).
pub fn save(data_dir: &Path, account: &LastAccount) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(account).map_err(std::io::Error::other)?;
    crate::prefs::write_atomically(&path(data_dir), &json)
}

/// Forgets the remembered account (sign-out, session ended, vault reset).
pub fn forget(data_dir: &Path) {
    match std::fs::remove_file(path(data_dir)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("could not remove {ACCOUNT_FILE}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None, "no file means no account");
        let a = LastAccount {
            issuer: "http://127.0.0.1:8400".into(),
            subject: "alice".into(),
            name: Some("Alice Example".into()),
            email: None,
        };
        save(dir.path(), &a).unwrap();
        assert_eq!(load(dir.path()), Some(a), "the saved account is read back");
        forget(dir.path());
        assert_eq!(load(dir.path()), None, "a forgotten account is gone");
        std::fs::write(dir.path().join(ACCOUNT_FILE), b"{not json").unwrap();
        assert_eq!(
            load(dir.path()),
            None,
            "a broken file is treated as no account"
        );
    }
}
