//! What the chat channel carries to the UI (see docs/ui-contract.md). Nothing secret: messages,
//! room views, send states and connection states.

use confab_relay::{ChatEntry, ConnectionState, OutboxItem, SendState};
use serde::Serialize;
use uuid::Uuid;

use super::rooms::RoomView;
use crate::error::Code;

/// A message as the UI gets it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// The message.
    #[serde(flatten)]
    pub entry: ChatEntry,
    /// Written by the signed-in user.
    pub own: bool,
    /// When the core received it (Unix µs; the UI latency benchmark reads it).
    pub at_us: u64,
}

/// What the UI gets on the chat channel (see docs/ui-contract.md).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChatEvent {
    /// Chat is available for `me`.
    Session {
        /// The user's id (the `author` of their messages).
        me: String,
        /// The room to open, if any.
        last_room: Option<String>,
        /// Desktop notifications on.
        notifications: bool,
    },
    /// The room list changed.
    Rooms {
        /// Member rooms first, then the others.
        rooms: Vec<RoomView>,
    },
    /// A new message.
    Message(MessageView),
    /// A sent message changed state.
    MessageState {
        /// Client message id.
        id: Uuid,
        /// Room id.
        room: String,
        /// The new state.
        #[serde(flatten)]
        state: SendState,
    },
    /// Replace the view of a room.
    RoomReset {
        /// Room id.
        room: String,
        /// Latest page, oldest first.
        messages: Vec<MessageView>,
        /// Older messages exist.
        has_older: bool,
        /// The room's unsent outbox items, oldest first.
        unsent: Vec<OutboxItem>,
    },
    /// The latest page of `room` could not be loaded: its view is out of date. The core tries
    /// again by itself in `retry_in_secs`; `open_room` tries at once (the UI's Retry).
    RoomFailed {
        /// Room id.
        room: String,
        /// Why, in plain words.
        message: String,
        /// Seconds until the core tries again by itself.
        retry_in_secs: u64,
    },
    /// The user no longer belongs to `room` (left, removed): close it if open. A `rooms`
    /// event with the new list follows.
    RoomClosed {
        /// Room id.
        room: String,
        /// Why, in the server's words.
        reason: String,
    },
    /// For the connection line.
    ConnectionState(ConnectionState),
    /// Something the user may want to know.
    Error {
        /// What kind of failure, from the one vocabulary of codes (docs/ui-contract.md).
        code: Code,
        /// Plain words.
        message: String,
    },
}

/// What `members` returns.
#[derive(Debug, Clone, Serialize)]
pub struct MembersView {
    /// Room id.
    pub room: String,
    /// Member user ids in order.
    pub members: Vec<String>,
    /// The owner's user id (empty for the server's default rooms).
    pub owner: String,
    /// The signed-in user owns the room (may remove members).
    pub you_own: bool,
}

/// What `open_room` returns.
#[derive(Debug, Clone, Serialize)]
pub struct OpenedRoom {
    /// Room id.
    pub room: String,
    /// The saved draft ("" when none).
    pub draft: String,
    /// Offset of the last message the user has read (0 when none).
    pub read_offset: u64,
}

/// A page of older messages.
#[derive(Debug, Clone, Serialize)]
pub struct OlderPage {
    /// Room id.
    pub room: String,
    /// Oldest first.
    pub messages: Vec<MessageView>,
    /// Even older messages exist.
    pub has_older: bool,
}
