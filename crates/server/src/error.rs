//! Errors of this crate.

/// Everything that can go wrong in the server outside a single connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SQLite store failed.
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A blocking storage task panicked or was cancelled.
    #[error("storage task failed: {0}")]
    StorageTask(String),
    /// Stored data is not what this server wrote.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Binding or serving failed.
    #[error("server I/O error: {0}")]
    Serve(#[source] std::io::Error),
    /// Fetching the issuer's discovery document or JWKS failed.
    #[error("identity provider discovery failed: {0}")]
    Discovery(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
