//! The Confab chat message: the `data` of a publication in a `room:<id>` channel.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Prefix of room channels: `room:<id>`.
pub const ROOM_CHANNEL_PREFIX: &str = "room:";

/// Longest message text, in characters (Unicode scalar values).
pub const MAX_TEXT_CHARS: usize = 4000;

/// Largest message text, in UTF-8 bytes: [`MAX_TEXT_CHARS`] characters of up to four bytes.
/// With control characters refused, a text's JSON encoding is at most twice its ASCII length
/// (`"` and `\` are escaped), so one message stays under 16 KB on the wire and a page of 50
/// under a client's 1 MiB message limit.
pub const MAX_TEXT_BYTES: usize = 4 * MAX_TEXT_CHARS;

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 100;

/// Largest room name, in UTF-8 bytes.
pub const MAX_ROOM_NAME_BYTES: usize = 4 * MAX_ROOM_NAME_CHARS;

/// Checks a room name (already trimmed) the way the server enforces it: 1 to
/// [`MAX_ROOM_NAME_CHARS`] characters and [`MAX_ROOM_NAME_BYTES`] bytes, no control character
/// and no bidirectional formatting character (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069), which could make one room's name read as another's.
pub fn check_room_name(name: &str) -> Result<(), crate::error::RoomNameError> {
    use crate::error::RoomNameError;
    if name.trim().is_empty() {
        return Err(RoomNameError::Empty);
    }
    if name.len() > MAX_ROOM_NAME_BYTES || name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(RoomNameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(RoomNameError::ControlCharacter);
    }
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if name.chars().any(bidi) {
        return Err(RoomNameError::Bidi);
    }
    Ok(())
}

/// Checks a message text the way the server enforces it: not empty or only whitespace, at most
/// [`MAX_TEXT_CHARS`] characters and [`MAX_TEXT_BYTES`] bytes, and no control character other
/// than newline and tab (C0 controls, DEL and C1 controls are invisible, and each one is six
/// bytes in JSON: 4,000 of them made one message 24 KB).
pub fn check_text(text: &str) -> Result<(), crate::error::TextError> {
    use crate::error::TextError;
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(TextError::TooManyBytes);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(TextError::TooManyChars);
    }
    match text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        Some(c) => Err(TextError::ControlCharacter {
            code_point: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// A chat message as published into a room channel.
///
/// `id` is chosen by the sending client and is the idempotency key: publishing the same id
/// twice stores and broadcasts it once. `author` is the sender's user id (the token's `sub`)
/// and `name` their display name: both are written by the server (confab-server overwrites
/// what a client sent; its backend role builds the message itself), so neither can be spoofed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Client message id (UUID), the idempotency key.
    pub id: Uuid,
    /// Sender's user id.
    #[serde(default)]
    pub author: String,
    /// The author's display name from the identity provider (absent when it gave none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Message text.
    pub text: String,
    /// Client timestamp, Unix milliseconds.
    pub ts: i64,
}

/// The RPC method that sends a chat message ([`SendMessage`] → [`Sent`]). The server checks
/// membership and the text, stores the message durably (deduplicated by its id), then
/// publishes it; the reply names its place in the room's stream. Sending is an RPC rather than
/// a client `publish` so that the same client works against confab-server and against a
/// Centrifugo deployment, where only the backend may publish (through the server API).
pub const SEND_METHOD: &str = "messages.send";

/// Arguments of [`SEND_METHOD`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// Room id (not the channel name).
    pub room: String,
    /// Client message id, the idempotency key.
    pub id: Uuid,
    /// Message text.
    pub text: String,
    /// Client timestamp, Unix milliseconds.
    pub ts: i64,
}

/// Result of [`SEND_METHOD`]: the publication's place in the room's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Offset of the publication.
    pub offset: u64,
    /// Epoch of the stream.
    #[serde(default)]
    pub epoch: String,
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
    use crate::error::TextError;

    #[test]
    fn room_names_are_checked_for_length_controls_and_bidi() {
        use crate::error::RoomNameError;
        assert_eq!(check_room_name("Team 😀"), Ok(()));
        assert_eq!(check_room_name("  "), Err(RoomNameError::Empty));
        assert_eq!(check_room_name(&"x".repeat(100)), Ok(()));
        assert_eq!(
            check_room_name(&"x".repeat(101)),
            Err(RoomNameError::TooLong)
        );
        assert_eq!(
            check_room_name("a\nb"),
            Err(RoomNameError::ControlCharacter)
        );
        assert_eq!(
            check_room_name("a\u{7}b"),
            Err(RoomNameError::ControlCharacter)
        );
        for c in ['\u{202E}', '\u{2066}', '\u{200F}', '\u{061C}'] {
            assert_eq!(
                check_room_name(&format!("general{c}lareneg")),
                Err(RoomNameError::Bidi),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn message_text_is_limited_in_characters_and_bytes_without_controls() {
        assert_eq!(
            check_text("hello\n\tworld"),
            Ok(()),
            "newline and tab are text"
        );
        assert_eq!(check_text(" \n\t "), Err(TextError::Empty));
        assert_eq!(check_text(&"a".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(
            check_text(&"a".repeat(MAX_TEXT_CHARS + 1)),
            Err(TextError::TooManyChars)
        );
        // 4,000 four-byte characters are allowed: 16,000 bytes.
        assert_eq!(check_text(&"😀".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert_eq!(
            check_text(&"😀".repeat(MAX_TEXT_CHARS + 1)),
            Err(TextError::TooManyBytes)
        );
        for c in [
            '\u{1}', '\u{0}', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            assert_eq!(
                check_text(&format!("a{c}b")),
                Err(TextError::ControlCharacter {
                    code_point: u32::from(c)
                }),
                "U+{:04X} is refused",
                u32::from(c)
            );
        }
        assert_eq!(
            check_text(&"\u{1}".repeat(MAX_TEXT_CHARS)),
            Err(TextError::ControlCharacter { code_point: 1 }),
            "the reproduced attack: 4,000 × U+0001"
        );
        assert_eq!(
            TextError::ControlCharacter { code_point: 1 }.to_string(),
            "the message contains an invisible control character (U+0001)"
        );
    }

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
            name: None,
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
