//! Errors of the E2E harness. Each message says what to do about it.

/// Everything the harness can fail with. `Debug` prints the same words as `Display`, so a
/// test's `.expect()` shows the advice (and the log tail) instead of a struct dump.
#[derive(thiserror::Error)]
pub enum Error {
    /// No X display: the app needs one.
    #[error("DISPLAY is not set: the E2E tests drive the real app window; run under xvfb-run (cargo xtask test does this), e.g. `xvfb-run -a cargo test -p confab-e2e`")]
    NoDisplay,
    /// A program the tests need is missing.
    #[error("{what} not found at {path}: {hint}")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// Where it was looked for.
        path: String,
        /// How to get it.
        hint: &'static str,
    },
    /// The app binary is older than its sources.
    #[error("the app binary {binary} is older than {source_file}: rebuild it with `cargo build -p confab-app`")]
    StaleApp {
        /// The binary.
        binary: String,
        /// A newer source file.
        source_file: String,
    },
    /// Starting or talking to a child process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A condition was not reached before its deadline.
    #[error("timed out after {seconds} s waiting for {what}{details}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
        /// Extra context (e.g. the tail of the driver log).
        details: String,
    },
    /// The WebDriver session could not be created.
    #[error("could not start a WebDriver session: {0}")]
    Session(#[from] fantoccini::error::NewSessionError),
    /// A WebDriver command failed.
    #[error("WebDriver command failed: {0}")]
    Command(#[from] fantoccini::error::CmdError),
    /// The desktop harness (session bus, keyring, driver, server process) failed; its message
    /// says what was being done and ends with the log tail, if any.
    #[error(transparent)]
    Desktop(#[from] confab_testkit::DesktopError),
    /// The identity provider helper failed.
    #[error("test identity provider: {0}")]
    Idp(#[from] confab_testkit::Error),
    /// The Django test backend failed to start or answer.
    #[error("Django test backend: {0}")]
    Django(#[from] confab_testkit::DjangoError),
    /// Anything else that went wrong, in words.
    #[error("{0}")]
    Other(String),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
