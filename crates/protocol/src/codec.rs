//! Frames: one WebSocket text message holds one or more JSON objects separated by `\n`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::messages::{Command, Reply};

/// Default maximum frame size (64 KiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Default cap on the encoded publications or rooms of one server reply (256 KiB): a history
/// page, a recovering subscribe or a room list page is cut to fit, and the client pages on.
/// Clients must accept messages at least this large plus one frame's worth of other lines.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 256 * 1024;

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame is larger than allowed.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Actual size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The frame holds no object.
    #[error("empty frame")]
    Empty,
    /// The frame is not UTF-8.
    #[error("frame is not UTF-8")]
    NotUtf8,
    /// A line is not a valid object of the expected type.
    #[error("line {line} is not a valid message: {source}")]
    InvalidJson {
        /// 1-based line number.
        line: usize,
        /// Parser error.
        #[source]
        source: serde_json::Error,
    },
    /// Serialization failed (only with non-JSON-representable data).
    #[error("cannot encode message: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Splits a frame into messages. Blank lines (e.g. a trailing newline) are skipped.
pub fn decode_frame<T: DeserializeOwned>(
    frame: &[u8],
    max_bytes: usize,
) -> Result<Vec<T>, FrameError> {
    if frame.len() > max_bytes {
        return Err(FrameError::TooLarge {
            size: frame.len(),
            max: max_bytes,
        });
    }
    let text = std::str::from_utf8(frame).map_err(|_| FrameError::NotUtf8)?;
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|source| FrameError::InvalidJson {
            line: i + 1,
            source,
        })?;
        out.push(item);
    }
    if out.is_empty() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// Decodes a client frame into commands. Commands and their requests must be JSON objects
/// (see [`crate::strict`]): the positional array form serde would otherwise accept is invalid.
pub fn decode_commands(frame: &[u8], max_bytes: usize) -> Result<Vec<Command>, FrameError> {
    let commands: Vec<crate::strict::Object<Command>> = decode_frame(frame, max_bytes)?;
    Ok(commands.into_iter().map(|c| c.0).collect())
}

/// Decodes a server frame into replies (pushes and pings included).
pub fn decode_replies(frame: &[u8], max_bytes: usize) -> Result<Vec<Reply>, FrameError> {
    decode_frame(frame, max_bytes)
}

/// Joins messages into one frame, `\n`-separated, no trailing newline.
pub fn encode_frame<T: Serialize>(items: &[T]) -> Result<String, FrameError> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(item).map_err(FrameError::Encode)?);
    }
    Ok(out)
}

/// Joins messages into frames of at most `max_bytes` each (a single message larger than the
/// limit gets a frame of its own).
pub fn encode_batches<T: Serialize>(
    items: &[T],
    max_bytes: usize,
) -> Result<Vec<String>, FrameError> {
    let mut frames = Vec::new();
    let mut current = String::new();
    for item in items {
        let line = serde_json::to_string(item).map_err(FrameError::Encode)?;
        if !current.is_empty() && current.len() + 1 + line.len() > max_bytes {
            frames.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        frames.push(current);
    }
    Ok(frames)
}
