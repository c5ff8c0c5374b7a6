//! Errors of this crate.

use std::path::PathBuf;

/// Everything that can go wrong with an account's local store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store file cannot be read with this key, or is damaged. [`crate::AccountStore::open`]
    /// handles it itself (the file is kept aside, a fresh store made); callers see it only from
    /// [`crate::AccountStore::open_existing`].
    #[error("the local store {path} cannot be read (wrong key or damaged file)")]
    Unreadable {
        /// The store file.
        path: PathBuf,
    },
    /// The database refused an operation.
    #[error("local store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or directory operation failed.
    #[error("local store file {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key kept in the vault is not a store key (64 hexadecimal digits).
    #[error("the local store key in the vault is malformed")]
    BadKey,
    /// An old plaintext file could not be moved into the store (it is left in place; nothing
    /// it held is lost).
    #[error("cannot move {path} into the encrypted store: {reason}")]
    Migration {
        /// The old file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
