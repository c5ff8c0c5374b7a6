//! Errors of the shell itself (start-up). Command errors are the core's
//! (`confab_client::Error`), which serialize as `{code, message}`.

/// What can stop the app from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tauri failed (a plugin, a path, the window).
    #[error(transparent)]
    Tauri(#[from] tauri::Error),
    /// The data dir could not be created.
    #[error("could not create {what}: {source}")]
    Io {
        /// Which directory.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// tauri.conf.json has no window labelled `main`.
    #[error("tauri.conf.json has no main window")]
    NoMainWindow,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
