//! Events for the UI (serialized as `{"type": "...", ...}`). Nothing here is secret.

use serde::Serialize;
use uuid::Uuid;

use crate::outbox::OutboxItem;
use crate::transport::Utf8Bytes;

/// A chat message as the UI shows it.
///
/// Its four strings (room, author, name, text) live in one shared, immutable buffer. An entry
/// the relay reads from the socket uses **the frame it arrived in** (a slice of the
/// connection's read buffer), so decoding a publication copies and allocates nothing;
/// [`ChatEntry::new`] makes one allocation for all four. Cloning only counts a reference.
///
/// The flip side: an entry keeps its buffer alive, and a frame's buffer is the read buffer it
/// was cut from (up to 128 KiB, shared by the frames read with it). Showing an entry and
/// dropping it is what the buffer is made for; to keep entries for long, keep
/// [`ChatEntry::detached`] copies. The relay itself detaches the entries it holds back (while
/// a room loads, and once the UI lags: see `outlet.rs`), so a slow UI cannot make it hold
/// read buffers without limit.
///
/// Serialized as `{"room", "offset", "id", "author", "name"?, "text", "ts"}`: `author` is the
/// sender's subject and `name` their display name, both written by the server (`name` is left
/// out when the server gave none).
#[derive(Clone)]
pub struct ChatEntry {
    /// Position in the room's stream (unique per room, increasing).
    pub offset: u64,
    /// Client message id.
    pub id: Uuid,
    /// Sender's timestamp, Unix milliseconds.
    pub ts: i64,
    strings: Strings,
}

/// The strings of a [`ChatEntry`]: byte ranges of one shared buffer, each on `str` boundaries.
#[derive(Clone)]
struct Strings {
    buf: Utf8Bytes,
    room: Span,
    author: Span,
    name: Span,
    text: Span,
}

#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl Strings {
    /// One buffer of exactly the four strings' length (one allocation).
    fn owned(room: &str, author: &str, name: &str, text: &str) -> Self {
        let mut buf = String::with_capacity(room.len() + author.len() + name.len() + text.len());
        let mut span = |s: &str| {
            let start = buf.len();
            buf.push_str(s);
            (start, buf.len())
        };
        let (room, author, name, text) = (span(room), span(author), span(name), span(text));
        let spans = [room, author, name, text].map(|(start, end)| {
            // Within u32: a chat message is far smaller (the server caps texts at 4,000 chars).
            Span {
                start: u32::try_from(start).unwrap_or(u32::MAX),
                end: u32::try_from(end).unwrap_or(u32::MAX),
            }
        });
        Self {
            // `String` → `Bytes` keeps the allocation when its length is its capacity.
            buf: buf.into(),
            room: spans[0],
            author: spans[1],
            name: spans[2],
            text: spans[3],
        }
    }

    /// Spans of `frame` for the four strings if each is a slice of it, else `None`.
    fn within(frame: &Utf8Bytes, room: &str, author: &str, name: &str, text: &str) -> Option<Self> {
        let base = frame.as_str().as_ptr() as usize;
        let span = |s: &str| {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(s.len())?;
            if end > frame.len() {
                return None;
            }
            Some(Span {
                start: u32::try_from(start).ok()?,
                end: u32::try_from(end).ok()?,
            })
        };
        // An empty string need not lie in the frame (a name that was absent).
        let name = if name.is_empty() {
            Span { start: 0, end: 0 }
        } else {
            span(name)?
        };
        Some(Self {
            room: span(room)?,
            author: span(author)?,
            name,
            text: span(text)?,
            buf: frame.clone(),
        })
    }

    fn get(&self, span: Span) -> &str {
        // Spans are made on `str` boundaries of this buffer (`owned`, `within`), so this
        // slice cannot fail; `get` keeps even a broken invariant from panicking.
        self.buf.as_str().get(span.range()).unwrap_or_default()
    }
}

impl ChatEntry {
    /// An entry with its own buffer (one allocation for the four strings); `name` is `""`
    /// when the server gave none.
    pub fn new(
        room: &str,
        offset: u64,
        id: Uuid,
        author: &str,
        name: &str,
        text: &str,
        ts: i64,
    ) -> Self {
        Self {
            offset,
            id,
            ts,
            strings: Strings::owned(room, author, name, text),
        }
    }

    /// An entry whose strings are slices of `frame` (no copy, no allocation) when they are;
    /// otherwise (a string that had escapes and was unescaped, say) one with its own buffer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn in_frame(
        frame: &Utf8Bytes,
        room: &str,
        offset: u64,
        id: Uuid,
        author: &str,
        name: &str,
        text: &str,
        ts: i64,
    ) -> Self {
        match Strings::within(frame, room, author, name, text) {
            Some(strings) => Self {
                offset,
                id,
                ts,
                strings,
            },
            None => Self::new(room, offset, id, author, name, text, ts),
        }
    }

    /// A copy with its own buffer, of just its strings: it keeps no frame alive.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self::new(
            self.room(),
            self.offset,
            self.id,
            self.author(),
            self.name(),
            self.text(),
            self.ts,
        )
    }

    /// True when the entry's buffer is more than its strings (a frame it was read from).
    pub fn shares_a_frame(&self) -> bool {
        let used = self.strings.room.range().len()
            + self.strings.author.range().len()
            + self.strings.name.range().len()
            + self.strings.text.range().len();
        self.strings.buf.len() > used
    }

    /// Room id.
    pub fn room(&self) -> &str {
        self.strings.get(self.strings.room)
    }

    /// Author's user id (set by the server).
    pub fn author(&self) -> &str {
        self.strings.get(self.strings.author)
    }

    /// Author's display name (set by the server; `""` when it gave none).
    pub fn name(&self) -> &str {
        self.strings.get(self.strings.name)
    }

    /// Text.
    pub fn text(&self) -> &str {
        self.strings.get(self.strings.text)
    }
}

impl PartialEq for ChatEntry {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && self.id == other.id
            && self.ts == other.ts
            && self.room() == other.room()
            && self.author() == other.author()
            && self.name() == other.name()
            && self.text() == other.text()
    }
}

impl Eq for ChatEntry {}

impl std::fmt::Debug for ChatEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEntry")
            .field("room", &self.room())
            .field("offset", &self.offset)
            .field("id", &self.id)
            .field("author", &self.author())
            .field("name", &self.name())
            .field("text", &self.text())
            .field("ts", &self.ts)
            .finish()
    }
}

impl Serialize for ChatEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("ChatEntry", 7)?;
        s.serialize_field("room", self.room())?;
        s.serialize_field("offset", &self.offset)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("author", self.author())?;
        if self.name().is_empty() {
            s.skip_field("name")?;
        } else {
            s.serialize_field("name", self.name())?;
        }
        s.serialize_field("text", self.text())?;
        s.serialize_field("ts", &self.ts)?;
        s.end()
    }
}

/// State of a message the user sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
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
#[serde(tag = "state", rename_all = "kebab-case")]
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
#[serde(tag = "type", rename_all = "kebab-case")]
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
        /// The room's stream epoch after the reload (a new epoch: older positions are void).
        epoch: String,
        /// The room's stream offset after the reload: with `epoch`, where a later
        /// [`RelayHandle::follow_room`](crate::RelayHandle::follow_room) recovers from.
        offset: u64,
    },
    /// A room's latest page could not be loaded (after `open_room`, a failed recovery or a
    /// reset): its view is out of date. The relay tries again by itself after `retry_in`
    /// (growing while it keeps failing); `open_room` tries at once.
    RoomFailed {
        /// Room id.
        room: String,
        /// Why, in plain words.
        message: String,
        /// When the relay tries again by itself.
        retry_in: std::time::Duration,
    },
    /// The user no longer belongs to `room` (they left, were removed, or the room is gone):
    /// the relay stopped following it.
    RoomClosed {
        /// Room id.
        room: String,
        /// The server's words (`left the room`, `removed from the room`, …).
        reason: String,
    },
    /// Connection state changed.
    ConnectionState(ConnectionState),
    /// Something went wrong that the user may want to know (no secrets in the text).
    Error {
        /// Short machine-readable kind (`protocol`, `transport`, `tls`, `server`, `outbox`,
        /// `token`). `tls`: the server's certificate or TLS setup was refused (told once per
        /// cause while the relay keeps retrying).
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
    /// Private: only members and invited users see it; joining needs an invitation.
    #[serde(default)]
    pub private: bool,
    /// The user is invited (may join it).
    #[serde(default)]
    pub invited: bool,
}

/// A room's members, as `RelayHandle::members` returns them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Members {
    /// Member user ids in order.
    pub members: Vec<String>,
    /// The owner's user id (empty for the server's default rooms): may remove members.
    #[serde(default)]
    pub owner: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_read_from_a_frame_shares_it_and_a_detached_copy_does_not() {
        let frame =
            Utf8Bytes::from(r#"{"room:général","author":"zoë","name":"Zoë","text":"a ☕ b"}"#);
        let f = frame.as_str();
        let slice = |s: &str| {
            let i = f.find(s).expect("in the frame");
            &f[i..i + s.len()]
        };
        let id = Uuid::from_u128(9);
        let e = ChatEntry::in_frame(
            &frame,
            slice("général"),
            3,
            id,
            slice("zoë"),
            slice("Zoë"),
            slice("a ☕ b"),
            4,
        );
        assert_eq!(
            (
                e.room(),
                e.author(),
                e.name(),
                e.text(),
                e.offset,
                e.id,
                e.ts
            ),
            ("général", "zoë", "Zoë", "a ☕ b", 3, id, 4),
            "the strings read back from the frame, multi-byte characters included"
        );
        assert!(e.shares_a_frame(), "slices of the frame are not copied");
        let d = e.detached();
        assert_eq!(d, e, "a detached copy is the same message");
        assert!(
            !d.shares_a_frame(),
            "a detached copy holds only its own strings"
        );
        drop(frame);
        assert_eq!(
            e.text(),
            "a ☕ b",
            "the entry keeps its frame alive on its own"
        );

        // A string that is not a slice of the frame (unescaped, say): the entry copies.
        let owned_text = String::from("hi \"there\"");
        let frame = Utf8Bytes::from(r#"{"room:r","author":"bob"}"#);
        let f = frame.as_str();
        let e = ChatEntry::in_frame(&frame, &f[2..8], 1, id, &f[20..23], "", &owned_text, 2);
        assert!(
            !e.shares_a_frame(),
            "an entry that cannot share copies all four"
        );
        assert_eq!(
            (e.room(), e.author(), e.text()),
            ("room:r", "bob", "hi \"there\""),
            "and reads the same"
        );
    }

    #[test]
    fn entries_compare_and_print_by_their_fields_not_their_buffers() {
        let frame = Utf8Bytes::from("xx r alice hi");
        let f = frame.as_str();
        let shared =
            ChatEntry::in_frame(&frame, &f[3..4], 1, Uuid::nil(), &f[5..10], "", &f[11..], 7);
        assert!(shared.shares_a_frame(), "an absent name needs no copy");
        let own = ChatEntry::new("r", 1, Uuid::nil(), "alice", "", "hi", 7);
        assert_eq!(shared, own, "same message, different buffers: equal");
        assert_ne!(
            own,
            ChatEntry::new("r", 1, Uuid::nil(), "alice", "", "hi!", 7),
            "another text is another message"
        );
        assert_eq!(
            format!("{shared:?}"),
            format!("{own:?}"),
            "Debug shows the message, not the buffer"
        );
        assert!(format!("{own:?}").contains(r#"author: "alice""#), "{own:?}");
    }

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
            json!({"type": "message-state", "id": id, "room": "r", "state": "sent", "offset": 7}),
            "message states are flat objects tagged by type and state"
        );
        let v = serde_json::to_value(Event::ConnectionState(ConnectionState::Reconnecting {
            in_secs: 3,
        }))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "connection-state", "state": "reconnecting", "in_secs": 3}),
            "connection states carry the seconds until the next try"
        );
        let v = serde_json::to_value(Event::Message(ChatEntry::new(
            "r", 1, id, "alice", "", "hi", 5,
        )))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "message", "room": "r", "offset": 1, "id": id, "author": "alice", "text": "hi", "ts": 5}),
            "messages carry only what the UI shows"
        );
        let v = serde_json::to_value(Event::Message(ChatEntry::new(
            "r",
            1,
            id,
            "u-5c1f",
            "Alice Example",
            "hi",
            5,
        )))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "message", "room": "r", "offset": 1, "id": id, "author": "u-5c1f", "name": "Alice Example", "text": "hi", "ts": 5}),
            "the display name when the server gave one"
        );
    }
}
