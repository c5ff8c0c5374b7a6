//! Errors of this crate.

use crate::codec::FrameError;
use crate::messages::CommandError;

/// Everything that can go wrong when decoding protocol messages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A frame could not be split or parsed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A command is not a valid request.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
