//! Errors of this crate.

/// Everything that can go wrong here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the crate grows real failure modes.
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
