//! Errors of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading the configuration. Every message names where the
/// bad value came from (file, line and key, or environment variable) so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file exists (or was named explicitly) but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("{path}:{line}:{column}: {}{message}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Parse {
        /// The file with the problem.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The key the problem is about, when known.
        key: Option<String>,
        /// What is wrong, in the parser's words.
        message: String,
    },
    /// A value (from the file or the environment) parsed but is not acceptable.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where the value came from: `<file>: key `k`` or `environment variable NAME`.
        origin: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
