//! Server frames to typed lines: publication pushes by the hand-written reader or serde_json's
//! typed fast path, everything else as a generic `Reply`.

use confab_protocol::{room_id, ChatMessage, FrameError, Publication, Reply};
use serde::Deserialize;

use super::fast;
use crate::events::ChatEntry;
use crate::push_line::{self, PubData, PubLine};
use crate::transport::Utf8Bytes;

/// One decoded line of a server frame.
pub(super) enum Line<'a> {
    Publication(PubLine<'a>),
    Reply(Box<Reply>),
    /// A reply to command `id` larger than the client accepts: not decoded, the request fails.
    TooLarge {
        id: u32,
        size: usize,
    },
}

/// The command id a reply line starts with (`{"id":N,` as the server and Centrifugo write
/// replies), read without decoding the line; `None` for pushes and anything else.
fn leading_reply_id(line: &str) -> Option<u32> {
    let rest = line.strip_prefix(r#"{"id":"#)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if rest.as_bytes().get(digits) != Some(&b',') {
        return None;
    }
    rest[..digits].parse().ok().filter(|&id| id != 0)
}

/// A line over `max_bytes`: a reply to a command fails just that command; anything else
/// (a push, say) fails the frame.
fn oversized(line: &str, max_bytes: usize) -> std::result::Result<Line<'_>, FrameError> {
    match leading_reply_id(line) {
        Some(id) => Ok(Line::TooLarge {
            id,
            size: line.len(),
        }),
        None => Err(FrameError::TooLarge {
            size: line.len(),
            max: max_bytes,
        }),
    }
}

/// One non-blank line: the hand-written reader, then serde_json's typed fast path, then the
/// generic `Reply`. `number` is the line's 1-based position, for the error.
fn decode_line(line: &str, number: usize) -> std::result::Result<Line<'_>, FrameError> {
    if let Some(p) = push_line::parse(line) {
        return Ok(Line::Publication(p));
    }
    decode_line_with_serde(line, number)
}

/// [`decode_line`] after the hand-written reader gave up on `line`.
fn decode_line_with_serde(line: &str, number: usize) -> std::result::Result<Line<'_>, FrameError> {
    if let Ok(p) = serde_json::from_str::<fast::PushLine<'_>>(line) {
        return Ok(Line::Publication(p.push.into()));
    }
    let reply = serde_json::from_str::<Reply>(line).map_err(|source| FrameError::InvalidJson {
        line: number,
        source,
    })?;
    Ok(Line::Reply(Box::new(reply)))
}

/// The decoded lines of one frame, in order. The first is held inline: most frames are one
/// push, and their decode then allocates nothing for the list.
#[derive(Default)]
pub(super) struct Lines<'a> {
    first: Option<Line<'a>>,
    rest: std::collections::VecDeque<Line<'a>>,
}

impl<'a> Lines<'a> {
    fn push(&mut self, line: Line<'a>) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(line);
        } else {
            self.rest.push_back(line);
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        self.first.take().or_else(|| self.rest.pop_front())
    }
}

/// Like `decode_replies`, with the fast path for publication pushes: the whole frame is decoded
/// before anything is applied, and any invalid line fails the frame, as before. `max_bytes`
/// bounds each line: a longer reply to a command becomes [`Line::TooLarge`] (that request
/// fails), any other longer line fails the frame.
pub(super) fn decode_lines(
    text: &str,
    max_bytes: usize,
) -> std::result::Result<Lines<'_>, FrameError> {
    let mut out = Lines::default();
    if text.len() > max_bytes && memchr::memchr(b'\n', text.as_bytes()).is_none() {
        out.push(oversized(text.trim(), max_bytes)?);
        return Ok(out);
    }
    // Most frames are one publication push: the hand-written reader takes the whole frame at
    // once. It accepts no newline and no surrounding whitespace, so this reads such a frame
    // exactly as the split below would, without the scan for newlines.
    if let Some(p) = push_line::parse(text) {
        out.push(Line::Publication(p));
        return Ok(out);
    }
    // Lines split with memchr's SIMD search (std's `split` scans a one-line frame bytewise).
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        let line = text[start..end].trim();
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        if line.len() > max_bytes {
            out.push(oversized(line, max_bytes)?);
            continue;
        }
        // A frame that is this one line was already offered to the hand-written reader above.
        let decoded = if line.len() == text.len() {
            decode_line_with_serde(line, i + 1)
        } else {
            decode_line(line, i + 1)
        };
        out.push(decoded?);
    }
    if out.first.is_none() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// For the throughput bench only: decodes one server frame the way the connection loop does
/// (lines, the publication fast path, the generic path otherwise) and builds the chat entries
/// it would emit, without a connection. Returns how many entries that made.
#[doc(hidden)]
pub fn decode_frame_for_bench(frame: &Utf8Bytes) -> usize {
    let Ok(lines) = decode_lines(frame, usize::MAX) else {
        return 0;
    };
    lines
        .into_iter()
        .filter_map(|line| match line {
            Line::Publication(p) => Some(fast_entry(frame, room_id(&p.channel)?, p.publication)),
            Line::Reply(_) | Line::TooLarge { .. } => None,
        })
        .count()
}

/// The chat entry of a publication decoded by a fast path from `frame`: its strings are slices
/// of the frame when they were read without unescaping (no copy, no allocation).
pub(super) fn fast_entry(frame: &Utf8Bytes, room: &str, p: PubData<'_>) -> ChatEntry {
    ChatEntry::in_frame(
        frame, room, p.offset, p.id, &p.author, &p.name, &p.text, p.ts,
    )
}

pub(super) fn entry(room: &str, p: &Publication) -> Option<ChatEntry> {
    let m = ChatMessage::deserialize(&p.data).ok()?;
    Some(ChatEntry::new(
        room,
        p.offset,
        m.id,
        &m.author,
        m.name.as_deref().unwrap_or(""),
        &m.text,
        m.ts,
    ))
}

#[cfg(test)]
mod decode_tests {
    use confab_protocol::decode_replies;

    use super::*;

    const PUSH: &str = r#"{"push":{"channel":"room:r","pub":{"data":{"id":"00000000-0000-0000-0000-000000000001","author":"alice","text":"hi \"there\"","ts":5},"info":{"user":"alice","client":"c"},"offset":7,"time":9}}}"#;

    #[test]
    fn publication_pushes_take_the_fast_path_with_the_generic_meaning() {
        let lines = decode_lines(PUSH, 1 << 16)
            .expect("a valid push decodes")
            .collect::<Vec<_>>();
        let [Line::Publication(p)] = lines.as_slice() else {
            panic!("a plain publication push takes the typed fast path");
        };
        let generic = decode_replies(PUSH.as_bytes(), 1 << 16).expect("generic decode");
        let gp = generic[0]
            .push
            .as_ref()
            .and_then(|p| p.publication.as_ref())
            .expect("generic publication");
        let expected = entry("r", gp).expect("generic chat message");
        assert_eq!(
            (
                p.publication.offset,
                p.publication.id,
                &*p.publication.author
            ),
            (expected.offset, expected.id, expected.author()),
            "the fast path reads the same offset, id and author as the generic path"
        );
        assert_eq!(
            p.publication.text,
            expected.text(),
            "escaped text is unescaped the same way"
        );
    }

    #[test]
    fn anything_unusual_goes_the_generic_way_or_fails_the_frame_as_before() {
        let extra_key = PUSH.replacen(r#"{"push""#, r#"{"id":0,"push""#, 1);
        let lines = decode_lines(&extra_key, 1 << 16)
            .expect("still a valid reply")
            .collect::<Vec<_>>();
        assert!(
            matches!(lines.as_slice(), [Line::Reply(_)]),
            "a line with other keys is decoded generically"
        );
        let not_chat = PUSH.replace(r#""ts":5"#, r#""ts":"five""#);
        assert!(
            matches!(
                decode_lines(&not_chat, 1 << 16)
                    .expect("valid reply")
                    .collect::<Vec<_>>()
                    .as_slice(),
                [Line::Reply(_)]
            ),
            "data that is not a chat message goes the generic way (undecodable-message error)"
        );
        let bad_info = PUSH.replace(r#""info":{"user":"alice","client":"c"}"#, r#""info":5"#);
        assert!(
            decode_lines(&bad_info, 1 << 16).is_err(),
            "a publication the generic decoder rejects still fails the whole frame"
        );
        let mixed = format!("{PUSH}\nnot json");
        assert!(
            decode_lines(&mixed, 1 << 16).is_err(),
            "one invalid line fails the frame before anything in it is applied"
        );
        assert!(
            matches!(decode_lines(PUSH, 10), Err(FrameError::TooLarge { .. })),
            "a push over the line limit fails the frame"
        );
        let big_reply = format!(
            r#"{{"id":42,"history":{{"publications":[],"epoch":"{}"}}}}"#,
            "e".repeat(400)
        );
        let lines = decode_lines(&big_reply, 50)
            .expect("an oversized reply is not a frame error")
            .collect::<Vec<_>>();
        assert!(
            matches!(lines.as_slice(), [Line::TooLarge { id: 42, size }] if *size == big_reply.len()),
            "a reply over the limit fails only its request"
        );
        let framed = format!("{PUSH}\n{big_reply}");
        let lines = decode_lines(&framed, PUSH.len())
            .expect("lines under the limit still decode")
            .collect::<Vec<_>>();
        assert!(
            matches!(
                lines.as_slice(),
                [Line::Publication(_), Line::TooLarge { id: 42, .. }]
            ),
            "the limit is per line"
        );
        for not_a_reply in [
            r#"{"id":0,"x":1}"#,
            r#"{"id":"7","x":1}"#,
            r#"{"push":{"id":7}}"#,
        ] {
            assert!(
                matches!(
                    decode_lines(not_a_reply, 5),
                    Err(FrameError::TooLarge { .. })
                ),
                "{not_a_reply}: only a reply with a command id fails alone"
            );
        }
    }

    #[test]
    fn a_frame_splits_into_lines_at_newlines_skipping_blank_ones() {
        let frame = format!("{PUSH}\n\n  {{}}\r\n{PUSH}\n");
        let lines = decode_lines(&frame, 1 << 16)
            .expect("three lines and blanks")
            .collect::<Vec<_>>();
        assert!(
            matches!(
                lines.as_slice(),
                [Line::Publication(_), Line::Reply(_), Line::Publication(_)]
            ),
            "every non-blank line is decoded, in order, with surrounding whitespace trimmed"
        );
        let bad = format!("{PUSH}\n\nnot json\n{PUSH}");
        assert!(
            matches!(
                decode_lines(&bad, 1 << 16),
                Err(FrameError::InvalidJson { line: 3, .. })
            ),
            "the error names the invalid line, counting blank ones"
        );
        assert!(
            matches!(decode_lines("\n \n", 1 << 16), Err(FrameError::Empty)),
            "a frame of blank lines is empty"
        );
    }
}
