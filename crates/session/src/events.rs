//! Events for the UI and the local auth event log. Nothing here ever carries a token.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use confab_types::AccountId;
use serde::{Serialize, Serializer};

/// The signed-in user, as the UI shows it. Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Issuer URL (`iss`).
    pub issuer: String,
    /// Subject at that issuer (`sub`).
    pub subject: String,
    /// Display name, if the provider sent one.
    pub name: Option<String>,
    /// E-mail, if the provider sent one.
    pub email: Option<String>,
}

impl User {
    /// A user known only by issuer and subject.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            name: None,
            email: None,
        }
    }

    /// The account this user is (issuer and subject; name and e-mail are not part of it).
    pub fn account_id(&self) -> AccountId {
        AccountId::new(self.issuer.clone(), self.subject.clone())
    }
}

/// Why the session ended. `Display` is the sentence the UI shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignOutReason {
    /// The user signed out.
    UserRequested,
    /// The identity provider rejected the refresh token (revoked, expired, reused).
    SessionEnded,
    /// No session was stored on this device.
    NoStoredSession,
}

impl SignOutReason {
    /// Stable code for the UI.
    pub fn code(&self) -> &'static str {
        match self {
            SignOutReason::UserRequested => "user_requested",
            SignOutReason::SessionEnded => "session_ended",
            SignOutReason::NoStoredSession => "no_stored_session",
        }
    }

    /// The sentence the UI shows.
    pub fn message(&self) -> &'static str {
        match self {
            SignOutReason::UserRequested => "You signed out.",
            SignOutReason::SessionEnded => "Your session ended, please sign in again",
            SignOutReason::NoStoredSession => "Please sign in.",
        }
    }
}

impl std::fmt::Display for SignOutReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Session events for the UI (serialize as `{"type": "...", ...}`); never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// A session started (sign-in handoff or silent restore).
    SignedIn {
        /// Who.
        user: User,
    },
    /// A new access token is in use.
    Refreshed {
        /// Its expiry.
        #[serde(serialize_with = "rfc3339")]
        expires_at: SystemTime,
    },
    /// A refresh failed temporarily and will be retried.
    Retrying {
        /// 1 for the first retry.
        attempt: u32,
        /// When the next attempt happens.
        #[serde(serialize_with = "rfc3339")]
        next_try: SystemTime,
    },
    /// The session ended.
    SignedOut {
        /// Why; `reason.message()` is what the UI shows.
        reason: SignOutReason,
    },
}

fn rfc3339<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*time))
}

/// RFC 3339 UTC with milliseconds.
pub(crate) fn format_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The local auth event log: one JSON object per line, appended, never a secret.
///
/// Each line has `ts` (RFC 3339 UTC) and `event`, plus event fields. Write failures are
/// reported through `tracing` and otherwise ignored: the log must never break the session.
pub struct AuthLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl std::fmt::Debug for AuthLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLog").field("path", &self.path).finish()
    }
}

impl AuthLog {
    /// Opens (creating if needed) the log file for appending; creates parent directories.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        #[cfg(unix)]
        {
            // A log written by an earlier version with the default mode becomes owner-only.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(Self {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file this log appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. `fields` must be a JSON object without secrets.
    pub(crate) fn record(&self, now: SystemTime, event: &str, fields: serde_json::Value) {
        let mut line = serde_json::Map::new();
        line.insert("ts".into(), format_time(now).into());
        line.insert("event".into(), event.into());
        if let serde_json::Value::Object(map) = fields {
            line.extend(map);
        }
        let mut text = serde_json::Value::Object(line).to_string();
        text.push('\n');
        let result = match self.file.lock() {
            Ok(mut file) => file.write_all(text.as_bytes()),
            Err(_) => Err(std::io::Error::other("auth log lock poisoned")),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not write the auth event log");
        }
    }
}
