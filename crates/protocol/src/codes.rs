//! Error codes (replies) and disconnect codes (close frames) of the Centrifugo client protocol.
//!
//! Values and wording follow the reference implementation (centrifugal/centrifuge `errors.go`
//! and `disconnect.go`). Clients act on the numbers, so they must never change.

use serde::{Deserialize, Serialize};

/// An error carried in a reply: `{"id":1,"error":{"code":103,"message":"permission denied"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ErrorReply {
    /// Numeric code, one of the `ERROR_*` values of [`ErrorCode`].
    pub code: u32,
    /// Short human-readable text.
    pub message: String,
    /// True when retrying the same command later may succeed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

/// Reply error codes (100–113).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode;

impl ErrorCode {
    /// Internal server error (temporary).
    pub const INTERNAL: u32 = 100;
    /// Request is unauthorized.
    pub const UNAUTHORIZED: u32 = 101;
    /// Channel does not exist / channel name not allowed.
    pub const UNKNOWN_CHANNEL: u32 = 102;
    /// Access to the resource is not allowed.
    pub const PERMISSION_DENIED: u32 = 103;
    /// RPC method does not exist.
    pub const METHOD_NOT_FOUND: u32 = 104;
    /// Client is already subscribed to the channel.
    pub const ALREADY_SUBSCRIBED: u32 = 105;
    /// Some limit was exceeded.
    pub const LIMIT_EXCEEDED: u32 = 106;
    /// The server cannot process the request.
    pub const BAD_REQUEST: u32 = 107;
    /// The feature is not enabled.
    pub const NOT_AVAILABLE: u32 = 108;
    /// The connection or subscription token expired.
    pub const TOKEN_EXPIRED: u32 = 109;
    /// The connection expired (no token involved).
    pub const EXPIRED: u32 = 110;
    /// Rejected due to rate limiting (temporary).
    pub const TOO_MANY_REQUESTS: u32 = 111;
    /// The stream does not contain the requested position.
    pub const UNRECOVERABLE_POSITION: u32 = 112;
}

impl ErrorReply {
    /// Builds the canonical error for `code` with its reference message.
    pub fn from_code(code: u32) -> Self {
        let (message, temporary) = match code {
            ErrorCode::INTERNAL => ("internal server error", true),
            ErrorCode::UNAUTHORIZED => ("unauthorized", false),
            ErrorCode::UNKNOWN_CHANNEL => ("unknown channel", false),
            ErrorCode::PERMISSION_DENIED => ("permission denied", false),
            ErrorCode::METHOD_NOT_FOUND => ("method not found", false),
            ErrorCode::ALREADY_SUBSCRIBED => ("already subscribed", false),
            ErrorCode::LIMIT_EXCEEDED => ("limit exceeded", false),
            ErrorCode::BAD_REQUEST => ("bad request", false),
            ErrorCode::NOT_AVAILABLE => ("not available", false),
            ErrorCode::TOKEN_EXPIRED => ("token expired", false),
            ErrorCode::EXPIRED => ("expired", false),
            ErrorCode::TOO_MANY_REQUESTS => ("too many requests", true),
            ErrorCode::UNRECOVERABLE_POSITION => ("unrecoverable position", false),
            _ => ("error", false),
        };
        Self {
            code,
            message: message.to_owned(),
            temporary,
        }
    }

    /// Same code, a more specific message (e.g. which limit was exceeded).
    pub fn with_message(code: u32, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::from_code(code)
        }
    }
}

/// A disconnect: sent as the WebSocket close frame's code and reason (reason is plain text,
/// at most 123 bytes).
///
/// Codes 3000–3499 ask the client to reconnect; 3500–3999 are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Disconnect {
    /// Close code.
    pub code: u16,
    /// Reason text.
    pub reason: &'static str,
}

impl Disconnect {
    /// Connection closed without server advice.
    pub const CONNECTION_CLOSED: Self = Self::new(3000, "connection closed");
    /// The server is shutting down; reconnect (to another node or later).
    pub const SHUTDOWN: Self = Self::new(3001, "shutdown");
    /// Internal server error.
    pub const SERVER_ERROR: Self = Self::new(3004, "internal server error");
    /// The connection's token expired and was not refreshed; reconnect with a new token.
    pub const EXPIRED: Self = Self::new(3005, "connection expired");
    /// The client does not read fast enough.
    pub const SLOW: Self = Self::new(3008, "slow");
    /// Writing to the connection failed.
    pub const WRITE_ERROR: Self = Self::new(3009, "write error");
    /// The server detected a gap in the client's stream position.
    pub const INSUFFICIENT_STATE: Self = Self::new(3010, "insufficient state");
    /// Server asked the client to reconnect.
    pub const FORCE_RECONNECT: Self = Self::new(3011, "force reconnect");
    /// No pong received in time for a server ping.
    pub const NO_PONG: Self = Self::new(3012, "no pong");
    /// The client sent too many commands.
    pub const TOO_MANY_REQUESTS: Self = Self::new(3013, "too many requests");
    /// Invalid token (terminal).
    pub const INVALID_TOKEN: Self = Self::new(3500, "invalid token");
    /// Malformed protocol frame (terminal).
    pub const BAD_REQUEST: Self = Self::new(3501, "bad request");
    /// Did not authenticate in time after dialing (terminal).
    pub const STALE: Self = Self::new(3502, "stale");
    /// Server disconnected the client and asks it not to reconnect (terminal).
    pub const FORCE_NO_RECONNECT: Self = Self::new(3503, "force disconnect");
    /// Connection limit reached (per user or total) (terminal).
    pub const CONNECTION_LIMIT: Self = Self::new(3504, "connection limit");
    /// Channel limit reached (terminal).
    pub const CHANNEL_LIMIT: Self = Self::new(3505, "channel limit");
    /// Frame format cannot be handled (terminal).
    pub const INAPPROPRIATE_PROTOCOL: Self = Self::new(3506, "inappropriate protocol");
    /// Not allowed (terminal).
    pub const PERMISSION_DENIED: Self = Self::new(3507, "permission denied");
    /// Feature not available (terminal).
    pub const NOT_AVAILABLE: Self = Self::new(3508, "not available");
    /// Too many errors (terminal).
    pub const TOO_MANY_ERRORS: Self = Self::new(3509, "too many errors");

    /// A disconnect with a code and reason.
    pub const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// Whether a client should reconnect after this disconnect.
    pub fn reconnect(&self) -> bool {
        !(3500..=3999).contains(&self.code) && !(4500..=4999).contains(&self.code)
    }
}
