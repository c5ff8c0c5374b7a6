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

/// Why a chat message's text cannot be sent ([`crate::chat::check_text`]). The wording is
/// shown to the sender and returned by the server with error 107.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty, or only whitespace.
    #[error("the message is empty")]
    Empty,
    /// More characters than [`crate::chat::MAX_TEXT_CHARS`].
    #[error("the message is longer than {max} characters", max = crate::chat::MAX_TEXT_CHARS)]
    TooManyChars,
    /// More UTF-8 bytes than [`crate::chat::MAX_TEXT_BYTES`].
    #[error("the message is larger than {max} bytes", max = crate::chat::MAX_TEXT_BYTES)]
    TooManyBytes,
    /// A control character other than newline and tab (C0, DEL or C1).
    #[error("the message contains an invisible control character (U+{code_point:04X})")]
    ControlCharacter {
        /// The first one found.
        code_point: u32,
    },
}

/// Why a room name cannot be used ([`crate::chat::check_room_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    /// Empty, or only whitespace.
    #[error("a room name must not be empty")]
    Empty,
    /// More than [`crate::chat::MAX_ROOM_NAME_CHARS`] characters or
    /// [`crate::chat::MAX_ROOM_NAME_BYTES`] bytes.
    #[error("a room name must be at most {max} characters", max = crate::chat::MAX_ROOM_NAME_CHARS)]
    TooLong,
    /// A control character (line breaks included).
    #[error("a room name must not contain control characters or line breaks")]
    ControlCharacter,
    /// A bidirectional formatting character, which can make a name read as another.
    #[error("a room name must not contain bidirectional formatting characters")]
    Bidi,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
