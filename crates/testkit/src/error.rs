//! Errors of this crate: [`Error`] of the IdP and login helpers (feature `idp`), [`DesktopError`]
//! of the desktop harness (feature `desktop`), [`ClusterError`] of the cluster harness (feature
//! `cluster`), [`DjangoError`] of the Django test backend (feature `django`).

#[cfg(any(feature = "idp", feature = "django"))]
use std::path::PathBuf;

/// Everything that can go wrong while running the test IdP or driving a login.
///
/// Messages never contain token values or authorization codes.
#[cfg(feature = "idp")]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `node` could not be run.
    #[error("cannot run `{program}` ({source}); install Node.js 20 or newer (`cargo xtask test` installs the test prerequisites) or set CONFAB_NODE to the node binary")]
    NodeNotFound {
        /// Program that was tried.
        program: String,
        /// Why it could not be run.
        source: std::io::Error,
    },

    /// `node` runs but is too old for oidc-provider 9.
    #[error("`{program} --version` reports {version:?}; the test IdP needs Node.js 20 or newer")]
    NodeTooOld {
        /// Program that was tried.
        program: String,
        /// What it reported.
        version: String,
    },

    /// `npm ci` has not been run in `tests/idp`.
    #[error("{dir} has no node_modules/oidc-provider: run `cargo xtask test` (it runs npm ci in tests/idp), or `npm ci` in that directory")]
    NodeModulesMissing {
        /// The tests/idp directory.
        dir: PathBuf,
    },

    /// The IdP process did not print its ready line before the deadline.
    #[error("the test IdP did not become ready within {seconds} s; its log is {log}:\n{tail}")]
    ReadyTimeout {
        /// Deadline in seconds.
        seconds: u64,
        /// Path of the captured stderr.
        log: PathBuf,
        /// Last lines of the log.
        tail: String,
    },

    /// The IdP process exited (or closed stdout) before it was ready.
    #[error("the test IdP exited before it was ready ({status}); its log is {log}:\n{tail}")]
    ExitedBeforeReady {
        /// Exit status, as text.
        status: String,
        /// Path of the captured stderr.
        log: PathBuf,
        /// Last lines of the log.
        tail: String,
    },

    /// The ready line did not carry a usable issuer URL.
    #[error("the test IdP printed an unusable ready line {line:?}")]
    BadReadyLine {
        /// The line as printed.
        line: String,
    },

    /// Local I/O (spawning, temp files, pipes).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// An HTTP request to the IdP failed at the transport level.
    #[error("http request to the test IdP failed: {0}")]
    Http(#[from] reqwest::Error),

    /// An admin route (`/__test/...`) answered with an error.
    #[error("admin route {route} answered {status}: {body}")]
    Admin {
        /// Route path.
        route: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },

    /// The token endpoint rejected a request (OAuth error response).
    #[error("token endpoint answered {status}: {error} ({description})")]
    TokenEndpoint {
        /// HTTP status.
        status: u16,
        /// OAuth `error` code, e.g. `invalid_grant`.
        error: String,
        /// OAuth `error_description`, possibly empty.
        description: String,
    },

    /// A response could not be understood.
    #[error("unexpected response: {0}")]
    Unexpected(String),

    /// The headless login could not reach the redirect URI.
    #[error("headless login failed after {hops} hop(s) at {at}: {reason}")]
    Login {
        /// Redirects followed so far.
        hops: usize,
        /// Path of the URL being processed (no query string, which may carry a code).
        at: String,
        /// What went wrong.
        reason: String,
    },

    /// The headless login took longer than its deadline.
    #[error("headless login did not finish within {seconds} s")]
    LoginTimeout {
        /// Deadline in seconds.
        seconds: u64,
    },
}

/// Result with this crate's [`Error`].
#[cfg(feature = "idp")]
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the desktop harness can fail with. Each message says what was being done or waited for
/// and, where there is one, ends with the tail of the log that tells why.
///
/// Written out by hand rather than derived with `thiserror`: `cargo xtask` builds this module
/// on every call, and thiserror's derive would add a second `syn` to its build. No `source()`:
/// the message already carries the cause, and anyhow's `{:#}` would print it twice.
#[cfg(feature = "desktop")]
#[derive(Debug)]
pub enum DesktopError {
    /// A program the harness needs is missing.
    Missing {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        path: String,
        /// How to get it.
        hint: &'static str,
    },
    /// Starting or talking to a process, or preparing its files, failed.
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A process did not become ready before its deadline.
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline, in seconds.
        seconds: u64,
        /// The tail of the process's log, or empty.
        details: String,
    },
    /// A process exited (closed its stdout) before printing its ready line.
    Exited {
        /// The process.
        what: String,
        /// The tail of the process's log, or empty.
        details: String,
    },
    /// Anything else, in words.
    Other(String),
}

#[cfg(feature = "desktop")]
impl std::fmt::Display for DesktopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { what, path, hint } => write!(f, "{what} not found at {path}: {hint}"),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::Timeout {
                what,
                seconds,
                details,
            } => write!(f, "timed out after {seconds} s waiting for {what}{details}"),
            Self::Exited { what, details } => {
                write!(f, "{what} exited before it was ready{details}")
            }
            Self::Other(text) => f.write_str(text),
        }
    }
}

#[cfg(feature = "desktop")]
impl std::error::Error for DesktopError {}

/// Result with [`DesktopError`].
#[cfg(feature = "desktop")]
pub type DesktopResult<T> = std::result::Result<T, DesktopError>;

/// What the cluster harness ([`crate::cluster`]: Redis, Centrifugo nodes, nginx) can fail with.
/// A process that did not start carries the tail of its log in the message.
#[cfg(feature = "cluster")]
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Starting a process, waiting for it, or preparing its files failed (the message names
    /// the process and ends with its log's last lines where there is one).
    #[error("{0}")]
    Process(#[from] DesktopError),

    /// An HTTP request to a process failed at the transport level.
    #[error("{what}: {source}")]
    Http {
        /// What was being asked, of whom.
        what: String,
        /// The transport error.
        source: reqwest::Error,
    },

    /// Centrifugo's server API refused a call or answered something unexpected.
    #[error("Centrifugo's server API, {method}: {detail}")]
    Api {
        /// The API method (`publish`, `history`).
        method: String,
        /// The HTTP status or the error object it answered.
        detail: String,
    },

    /// A configuration template does not fit what it is rendered with.
    #[error("{0}")]
    Template(String),

    /// A process answered something the harness cannot use, or nothing in time.
    #[error("{0}")]
    Unexpected(String),
}

/// Result with [`ClusterError`].
#[cfg(feature = "cluster")]
pub type ClusterResult<T> = std::result::Result<T, ClusterError>;

/// What running the Django test backend ([`crate::django`]) can fail with. A start that failed
/// carries the last lines of the backend's log in the message; no message contains a token.
#[cfg(feature = "django")]
#[derive(Debug, thiserror::Error)]
pub enum DjangoError {
    /// The backend's virtualenv has not been created.
    #[error("{} not found: run `cargo xtask setup` (it creates tests/backends/django/.venv from tests/backends/django/requirements.txt), or set CONFAB_DJANGO_PYTHON to a Python that has those packages", python.display())]
    VenvMissing {
        /// The Python interpreter that was looked for.
        python: PathBuf,
    },

    /// The interpreter could not be run.
    #[error("cannot run {} ({source}); run `cargo xtask setup` to recreate tests/backends/django/.venv", program.display())]
    Spawn {
        /// Program that was tried.
        program: PathBuf,
        /// Why it could not be run.
        source: std::io::Error,
    },

    /// The backend did not print its ready line before the deadline.
    #[error("the Django test backend did not become ready within {seconds} s; its log is {}:\n{tail}", log.display())]
    ReadyTimeout {
        /// Deadline in seconds.
        seconds: u64,
        /// Path of the captured stderr.
        log: PathBuf,
        /// Last lines of the log.
        tail: String,
    },

    /// The backend exited (or closed stdout) before it was ready. A `ModuleNotFoundError` in
    /// the tail means the virtualenv is out of date (`cargo xtask setup`).
    #[error("the Django test backend exited before it was ready ({status}); its log is {}:\n{tail}", log.display())]
    ExitedBeforeReady {
        /// Exit status, as text.
        status: String,
        /// Path of the captured stderr.
        log: PathBuf,
        /// Last lines of the log.
        tail: String,
    },

    /// The ready line did not carry a usable base URL.
    #[error("the Django test backend printed an unusable ready line {line:?}")]
    BadReadyLine {
        /// The line as printed.
        line: String,
    },

    /// Local I/O (spawning, temp files, pipes).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// An HTTP request to the backend failed at the transport level.
    #[error("http request to the Django test backend failed: {0}")]
    Http(#[from] reqwest::Error),

    /// A test route (`/__test/...`) or the discovery document answered with an error.
    #[error("{route} answered {status}: {body}")]
    Admin {
        /// Route path.
        route: &'static str,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },

    /// A response could not be understood.
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

/// Result with [`DjangoError`].
#[cfg(feature = "django")]
pub type DjangoResult<T> = std::result::Result<T, DjangoError>;
