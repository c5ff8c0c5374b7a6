//! Events for the UI (serialized as `{"type": "...", ...}`). Nothing here is secret.

use serde::Serialize;
use uuid::Uuid;

use crate::outbox::OutboxItem;

/// A chat message as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatEntry {
    /// Room id.
    pub room: String,
    /// Position in the room's stream (unique per room, increasing).
    pub offset: u64,
    /// Client message id.
    pub id: Uuid,
    /// Author's user id (set by the server).
    pub author: String,
    /// Text.
    pub text: String,
    /// Sender's timestamp, Unix milliseconds.
    pub ts: i64,
}

/// State of a message the user sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SendState {
    /// Stored in the outbox, waiting for the server.
    Pending,
    /// The server stored it at `offset`.
    Sent {
        /// Offset in the room stream.
        offset: u64,
    },
    /// The server refused it; `retry` can try again.
    Failed {
        /// Why (the server's message).
        reason: String,
    },
}

/// Connection state for the status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Dialing / authenticating.
    Connecting,
    /// Connected and authenticated.
    Connected,
    /// Waiting before the next attempt.
    Reconnecting {
        /// Seconds until the next attempt (rounded up).
        in_secs: u64,
    },
    /// Not connecting: the server said not to reconnect, or the relay was stopped.
    Offline {
        /// Why, for the status line.
        reason: String,
    },
    /// The session ended; sign in again.
    SignedOut,
}

/// What the relay tells the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new message in an open room (never the same room+offset twice).
    Message(ChatEntry),
    /// A sent message changed state.
    MessageState {
        /// Client message id.
        id: Uuid,
        /// Room id.
        room: String,
        /// New state.
        #[serde(flatten)]
        state: SendState,
    },
    /// Replace the whole view of a room with these messages (oldest first): after `open_room`,
    /// when missed messages could not be recovered, or after events were dropped for a slow UI.
    RoomReset {
        /// Room id.
        room: String,
        /// The most recent page, oldest first.
        messages: Vec<ChatEntry>,
        /// Whether older messages exist (load them with `load_older`).
        has_older: bool,
        /// This room's messages still in the outbox (pending or failed), oldest first.
        unsent: Vec<OutboxItem>,
    },
    /// Connection state changed.
    ConnectionState(ConnectionState),
    /// Something went wrong that the user may want to know (no secrets in the text).
    Error {
        /// Short machine-readable kind (`protocol`, `transport`, `server`, `outbox`, `token`).
        kind: String,
        /// Human-readable text.
        message: String,
    },
}

/// A page of a room's history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomPage {
    /// Room id.
    pub room: String,
    /// Messages, oldest first.
    pub messages: Vec<ChatEntry>,
    /// Whether older messages exist.
    pub has_older: bool,
}

/// A room in the room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomInfo {
    /// Room id (the channel is `room:<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the user is a member (may open it).
    #[serde(default)]
    pub member: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_serialize_in_the_shape_the_ui_reads() {
        let id = Uuid::nil();
        let v = serde_json::to_value(Event::MessageState {
            id,
            room: "r".into(),
            state: SendState::Sent { offset: 7 },
        })
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "message_state", "id": id, "room": "r", "state": "sent", "offset": 7}),
            "message states are flat objects tagged by type and state"
        );
        let v = serde_json::to_value(Event::ConnectionState(ConnectionState::Reconnecting {
            in_secs: 3,
        }))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "connection_state", "state": "reconnecting", "in_secs": 3}),
            "connection states carry the seconds until the next try"
        );
        let v = serde_json::to_value(Event::Message(ChatEntry {
            room: "r".into(),
            offset: 1,
            id,
            author: "alice".into(),
            text: "hi".into(),
            ts: 5,
        }))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "message", "room": "r", "offset": 1, "id": id, "author": "alice", "text": "hi", "ts": 5}),
            "messages carry only what the UI shows"
        );
    }
}
