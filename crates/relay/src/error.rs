//! Errors of this crate.

/// Everything that can go wrong in the relay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The outbox database could not be opened or written.
    #[error("outbox storage: {0}")]
    Outbox(#[from] rusqlite::Error),
    /// The background task has stopped (the relay was shut down).
    #[error("the chat relay is not running")]
    Stopped,
    /// A request did not get an answer in time (e.g. the server is unreachable).
    #[error("the chat server did not answer in time")]
    Timeout,
    /// The server answered a request with an error.
    #[error("chat server error {code}: {message}")]
    Server {
        /// Protocol error code (100–112).
        code: u32,
        /// Server's message.
        message: String,
    },
    /// The server's answer could not be understood.
    #[error("unexpected answer from the chat server: {0}")]
    Protocol(String),
    /// The room id is not valid (1–64 of `[A-Za-z0-9_-]`).
    #[error("invalid room id")]
    InvalidRoom,
    /// No outbox message with that id (already sent, or never queued).
    #[error("no such message in the outbox")]
    UnknownMessage,
    /// The message text cannot be sent (empty, too long, a control character): the same rule
    /// the server enforces, `confab_protocol::check_text`.
    #[error(transparent)]
    InvalidText(#[from] confab_protocol::TextError),
    /// The connection dropped before the server answered.
    #[error("the connection to the chat server was lost")]
    ConnectionLost,
    /// The room has not been opened (older pages need its stream position).
    #[error("open the room first")]
    RoomNotOpen,
    /// The server's answer to a request is larger than this client accepts
    /// (`RelayConfig::max_frame_bytes`): that request fails, the connection stays up.
    #[error("the chat server's answer was too large to load ({size} bytes; the limit is {max})")]
    ReplyTooLarge {
        /// Size of the reply line in bytes.
        size: usize,
        /// The client's limit.
        max: usize,
    },
    /// A blocking storage task failed to run.
    #[error("storage task failed: {0}")]
    Join(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
