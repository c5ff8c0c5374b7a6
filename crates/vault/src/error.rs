//! Errors of this crate.
//!
//! Every variant is safe to show: none carries a secret, a key or a passphrase.

use std::path::PathBuf;

/// Everything that can go wrong when storing or reading secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No vault exists at this path yet (first start, or after a reset). Create one.
    #[error("no vault yet at {path}")]
    NotFound {
        /// The snapshot path that was looked for.
        path: PathBuf,
    },

    /// `create` was asked for a vault that already exists; it is never overwritten.
    #[error("a vault already exists at {path}")]
    AlreadyExists {
        /// The existing snapshot.
        path: PathBuf,
    },

    /// The key does not open this vault: a wrong passphrase, or a keychain key that belongs to
    /// another vault. Nothing was changed; the user may retry (passphrase) or reset the vault.
    #[error("wrong key: this key does not open the vault")]
    WrongKey,

    /// The vault files are damaged (truncated, bit flips, missing key info). The file is left
    /// untouched; the way forward is [`crate::StrongholdStore::reset`] after asking the user.
    #[error("the vault at {path} is corrupt: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What was found wrong (no secret content).
        reason: String,
    },

    /// The vault was created with another kind of key source than the one offered.
    #[error("this vault is protected by {expected}, not by {offered}")]
    KeySourceMismatch {
        /// Key source recorded in the vault's key info.
        expected: &'static str,
        /// Key source that was offered.
        offered: &'static str,
    },

    /// The OS keychain (Secret Service, Keychain, Credential Manager) cannot be reached.
    /// The app should offer the passphrase unlock screen.
    #[error("the OS keychain is unavailable: {0}")]
    KeychainUnavailable(String),

    /// The vault exists but the keychain holds no key for it (deleted or another user/profile).
    #[error("the OS keychain holds no key for this vault")]
    KeyMissing,

    /// The keychain entry exists but is not a valid vault key.
    #[error("the OS keychain entry for the vault key is malformed")]
    KeyMalformed,

    /// A passphrase was empty.
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,

    /// Key derivation (Argon2id) failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),

    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The Stronghold engine reported an unexpected failure.
    #[error("stronghold: {0}")]
    Stronghold(String),

    /// A stored value is not valid UTF-8 (the vault only stores text secrets).
    #[error("a stored secret is not valid UTF-8")]
    NotUtf8,

    /// An internal lock was poisoned by a panic in another thread.
    #[error("vault lock poisoned")]
    Poisoned,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
