//! Wire types of the Centrifugo client protocol v2 (JSON encoding), shared by the Confab
//! client (confab-relay) and the reference server (confab-server).
//!
//! - [`messages`]: `Command`, `Reply`, `Push` and every request/result used.
//! - [`codes`]: reply error codes (100–112) and disconnect codes (3000–3999).
//! - [`codec`]: newline-delimited frames with a size limit and typed errors.
//! - [`chat`]: the Confab chat message carried in publication data.
//! - [`token`]: [`Token`], the redacted, zeroized token of `connect`/`refresh`/`subscribe`/
//!   `sub_refresh` (a confab-types secret type that serializes as a plain JSON string).

pub mod chat;
pub mod codec;
pub mod codes;
pub mod error;
pub mod messages;
pub mod strict;
pub mod token;

pub use chat::{
    check_room_name, check_text, room_channel, room_id, ChatMessage, SendMessage, Sent,
    MAX_ROOM_NAME_BYTES, MAX_ROOM_NAME_CHARS, MAX_TEXT_BYTES, MAX_TEXT_CHARS, ROOM_CHANNEL_PREFIX,
    SEND_METHOD,
};
pub use codec::{
    decode_commands, decode_replies, encode_batches, encode_frame, FrameError,
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_REPLY_BYTES,
};
pub use codes::{Disconnect, ErrorCode, ErrorReply};
pub use error::{Error, Result, RoomNameError, TextError};
pub use messages::*;
pub use token::Token;
