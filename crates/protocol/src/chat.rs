//! The Confab chat message: the `data` of a publication in a `room:<id>` channel.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Prefix of room channels: `room:<id>`.
pub const ROOM_CHANNEL_PREFIX: &str = "room:";

/// A chat message as published into a room channel.
///
/// `id` is chosen by the sending client and is the idempotency key: publishing the same id
/// twice stores and broadcasts it once. `author` is the sender's user id (the token's `sub`);
/// confab-server overwrites it with the authenticated user so it cannot be spoofed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Client message id (UUID), the idempotency key.
    pub id: Uuid,
    /// Sender's user id.
    #[serde(default)]
    pub author: String,
    /// Message text.
    pub text: String,
    /// Client timestamp, Unix milliseconds.
    pub ts: i64,
}

/// The room id of a `room:<id>` channel, if the name is one. Ids are 1–64 characters of
/// ASCII letters, digits, `-` and `_`.
pub fn room_id(channel: &str) -> Option<&str> {
    let id = channel.strip_prefix(ROOM_CHANNEL_PREFIX)?;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(id)
}

/// The channel name of a room.
pub fn room_channel(room_id: &str) -> String {
    format!("{ROOM_CHANNEL_PREFIX}{room_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_validated() {
        assert_eq!(
            room_id("room:general"),
            Some("general"),
            "plain room id accepted"
        );
        assert_eq!(room_id("room:"), None, "empty room id rejected");
        assert_eq!(room_id("news:x"), None, "other namespaces are not rooms");
        assert_eq!(
            room_id("room:a b"),
            None,
            "spaces are not allowed in room ids"
        );
        assert_eq!(
            room_id(&format!("room:{}", "x".repeat(65))),
            None,
            "room ids are capped at 64"
        );
    }

    #[test]
    fn chat_message_round_trips_with_wire_names() {
        let m = ChatMessage {
            id: Uuid::nil(),
            author: "alice".into(),
            text: "hi".into(),
            ts: 5,
        };
        let v = serde_json::to_value(&m).expect("serializing a plain struct cannot fail");
        assert_eq!(
            v,
            serde_json::json!({"id":"00000000-0000-0000-0000-000000000000","author":"alice","text":"hi","ts":5}),
            "chat message uses the documented field names"
        );
    }
}
