//! The first, hand-written fast path for the line type that dominates a busy room: a publication
//! push in the exact shape the chat server writes it,
//!
//! ```text
//! {"push":{"channel":"room:…","pub":{"data":{"author":…,"id":…,"name":…,"text":…,"ts":…},"info":{"user":…,"client":…},"offset":…,"time":…}}}
//! ```
//!
//! (`data`'s keys in any order, `author` and `name` optional; `info`, `offset` and `time` optional but
//! in this order; no whitespace, no escapes in strings). It reads that shape about four times
//! faster than serde_json does (docs/benchmarks.md, Chat relay) and gives up, returning `None`,
//! on anything else: an escape sequence, another key or key order, whitespace, a number that is
//! not a plain integer of the field's range, a missing required field. The caller then decodes
//! the line with serde_json as before, so serde_json stays the decoder of record and this path
//! only ever accepts a subset of what it accepts, with the same meaning. The tests check that
//! property against serde_json line by line, over a corpus and every one-byte change of a real
//! line.

use std::borrow::Cow;

use uuid::Uuid;

/// A publication push reduced to what the relay uses. Made by [`parse`] here or from the
/// serde_json fast path (`task::fast`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PubLine<'a> {
    pub(crate) channel: Cow<'a, str>,
    pub(crate) publication: PubData<'a>,
}

/// The publication of a [`PubLine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PubData<'a> {
    /// 0 when absent (the relay reports such a publication as a protocol error).
    pub(crate) offset: u64,
    pub(crate) id: Uuid,
    /// `""` when absent.
    pub(crate) author: Cow<'a, str>,
    /// The author's display name; `""` when absent.
    pub(crate) name: Cow<'a, str>,
    pub(crate) text: Cow<'a, str>,
    pub(crate) ts: i64,
}

/// Reads `line` if it has the server's shape (see the module docs); `None` otherwise.
pub(crate) fn parse(line: &str) -> Option<PubLine<'_>> {
    let mut c = Cursor { s: line, i: 0 };
    c.lit(r#"{"push":{"channel":"#)?;
    let channel = c.string()?;
    c.lit(r#","pub":{"data":{"#)?;
    let (mut id, mut author, mut name, mut text, mut ts) = (None, None, None, None, None);
    // The server's own key order first (serde_json writes a map's keys sorted), matched as
    // literals; any other order goes through the loop, which reads the same keys the same way.
    let start = c.i;
    if let Some((a, i, n, t, s)) = in_server_order(&mut c) {
        (author, id, name, text, ts) = (Some(a), Some(i), n, Some(t), Some(s));
    } else {
        c.i = start;
        loop {
            let key = c.string()?;
            c.lit(":")?;
            // A repeated key gives up (serde_json's derive refuses duplicates).
            match key {
                "id" if id.is_none() => id = Some(Uuid::try_parse(c.string()?).ok()?),
                "author" if author.is_none() => author = Some(c.string()?),
                "name" if name.is_none() => name = Some(c.string()?),
                "text" if text.is_none() => text = Some(c.string()?),
                "ts" if ts.is_none() => ts = Some(c.int()?),
                _ => return None,
            }
            if c.eat("}") {
                break;
            }
            c.lit(",")?;
        }
    }
    if c.eat(r#","info":{"user":"#) {
        c.string()?;
        c.lit(r#","client":"#)?;
        c.string()?;
        c.lit("}")?;
    }
    let offset = if c.eat(r#","offset":"#) { c.uint()? } else { 0 };
    if c.eat(r#","time":"#) {
        c.int()?;
    }
    c.lit("}}}")?;
    if c.i != line.len() {
        return None;
    }
    Some(PubLine {
        channel: Cow::Borrowed(channel),
        publication: PubData {
            offset,
            id: id?,
            author: Cow::Borrowed(author.unwrap_or("")),
            name: Cow::Borrowed(name.unwrap_or("")),
            text: Cow::Borrowed(text?),
            ts: ts?,
        },
    })
}

/// `data`'s keys in the order the servers write them (sorted): author, id, name (when there is
/// one), text, ts (and the `}`).
#[allow(clippy::type_complexity)]
fn in_server_order<'a>(
    c: &mut Cursor<'a>,
) -> Option<(&'a str, Uuid, Option<&'a str>, &'a str, i64)> {
    c.lit(r#""author":"#)?;
    let author = c.string()?;
    c.lit(r#","id":"#)?;
    let id = Uuid::try_parse(c.string()?).ok()?;
    let name = if c.eat(r#","name":"#) {
        Some(c.string()?)
    } else {
        None
    };
    c.lit(r#","text":"#)?;
    let text = c.string()?;
    c.lit(r#","ts":"#)?;
    let ts = c.int()?;
    c.lit("}")?;
    Some((author, id, name, text, ts))
}

/// A position in the line; every method consumes what it read, or returns `None`.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.s.as_bytes().get(self.i..).unwrap_or_default()
    }

    /// Consumes `l` if the line continues with it.
    fn eat(&mut self, l: &str) -> bool {
        if self.rest().starts_with(l.as_bytes()) {
            self.i += l.len();
            true
        } else {
            false
        }
    }

    fn lit(&mut self, l: &str) -> Option<()> {
        self.eat(l).then_some(())
    }

    /// A JSON string without escapes (those give up: serde_json unescapes them).
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if rest.first() != Some(&b'"') {
            return None;
        }
        let body = &rest[1..];
        let len = special(body)?;
        if body[len] != b'"' {
            return None; // an escape, or a control character (not JSON)
        }
        let start = self.i + 1;
        self.i = start + len + 1;
        // Both ends are at ASCII quotes, so at character boundaries of the valid `&str`.
        self.s.get(start..start + len)
    }

    /// A JSON integer ≥ 0 that fits a u64 (no fraction, no exponent, no leading zero).
    fn uint(&mut self) -> Option<u64> {
        let rest = self.rest();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        if matches!(rest.get(digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut v: u64 = 0;
        if digits < 20 {
            // At most 19 digits: below 10^19, which a u64 holds, so no step can overflow.
            for &b in &rest[..digits] {
                v = v * 10 + u64::from(b - b'0');
            }
        } else {
            for &b in &rest[..digits] {
                v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            }
        }
        self.i += digits;
        Some(v)
    }

    /// A JSON integer that fits an i64 (`-0` gives up).
    fn int(&mut self) -> Option<i64> {
        if self.eat("-") {
            let v = self.uint()?;
            if v == 0 {
                return None;
            }
            0i64.checked_sub_unsigned(v)
        } else {
            i64::try_from(self.uint()?).ok()
        }
    }
}

/// Bytes scanned eight at a time before [`special`] hands a long string to memchr.
const SHORT: usize = 64;

/// The position of the first byte of `s` that ends or breaks a plain JSON string: `"`, `\\` or
/// a control character (below 0x20). Most strings in a push are short (keys, ids, names), and
/// for those a word-at-a-time scan is quicker than setting up memchr's SIMD search; past
/// [`SHORT`] bytes, memchr finds the quote or backslash and one pass checks for controls.
fn special(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let short = &s[..s.len().min(SHORT)];
    let mut words = short.chunks_exact(8);
    for (n, w) in words.by_ref().enumerate() {
        let mut b = [0; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b);
        // Per byte, the high bit is set where the byte is 0 (in `q ^ x`) or below 0x20: the
        // classic "has zero / has less" tests. A flag can also appear above a real hit (a borrow
        // carries up), never below the first one, so the lowest flag is the first hit.
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let flags = flags & HIGHS;
        if flags != 0 {
            return Some(n * 8 + flags.trailing_zeros() as usize / 8);
        }
    }
    let tail = words.remainder();
    let done = short.len() - tail.len();
    if let Some(i) = tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        return Some(done + i);
    }
    if short.len() == s.len() {
        return None;
    }
    let long = &s[short.len()..];
    let len = memchr::memchr2(b'"', b'\\', long);
    // Then one pass for control characters before it (a loop the compiler vectorizes).
    let control = long[..len.unwrap_or(long.len())]
        .iter()
        .position(|&b| b < 0x20);
    control.or(len).map(|i| short.len() + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as confab-server writes it (taken from a bench run).
    const LINE: &str = r#"{"push":{"channel":"room:bench","pub":{"data":{"author":"alice","id":"6e394c82-a685-452b-bb40-3c392943ea47","text":"lat 0","ts":1795362515272},"info":{"user":"alice","client":"bfd4ba5e-3b52-433d-b788-e0e47693f678"},"offset":1,"time":1795362515273}}}"#;

    /// The same with the author's display name, as the servers write it (keys sorted).
    const NAMED: &str = r#"{"push":{"channel":"room:bench","pub":{"data":{"author":"alice","id":"6e394c82-a685-452b-bb40-3c392943ea47","name":"Alice Example","text":"lat 0","ts":1795362515272},"offset":1}}}"#;

    /// What serde_json's fast path (`task::fast`) makes of `line`, if it accepts it.
    fn serde(line: &str) -> Option<PubLine<'_>> {
        serde_json::from_str::<crate::task::fast::PushLine<'_>>(line)
            .ok()
            .map(|p| p.push.into())
    }

    /// The property: whatever this path accepts, serde_json accepts with the same meaning.
    fn agrees(line: &str) -> bool {
        match parse(line) {
            None => true,
            Some(fast) => {
                let slow = serde(line);
                assert_eq!(
                    slow.as_ref(),
                    Some(&fast),
                    "the hand-written path read {line:?} differently from serde_json"
                );
                true
            }
        }
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control_character() {
        let naive = |s: &[u8]| s.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        let fillers = [
            b'a', b' ', b'~', 0x7f, 0x80, 0xe2, 0xff, b'!', b'#', b'[', b']',
        ];
        let hits = [b'"', b'\\', 0x00, 0x0a, 0x1f];
        for len in 0..(SHORT + 40) {
            for &fill in &fillers {
                let plain = vec![fill; len];
                assert_eq!(special(&plain), naive(&plain), "{len} x {fill:#x}");
                for at in 0..len {
                    for &hit in &hits {
                        let mut s = plain.clone();
                        s[at] = hit;
                        // A second hit later, and bytes around it that stress the borrows.
                        if at + 3 < len {
                            s[at + 1] = 0x01;
                            s[at + 3] = b'"';
                        }
                        assert_eq!(special(&s), Some(at), "{len} x {fill:#x}, {hit:#x} at {at}");
                        assert_eq!(special(&s), naive(&s));
                    }
                }
            }
        }
    }

    #[test]
    fn the_servers_lines_are_read_as_serde_json_reads_them() {
        let accepted = [
            LINE.to_owned(),
            // data's keys in another order, author missing, info/offset/time missing
            LINE.replace(
                r#"{"author":"alice","id":"6e394c82-a685-452b-bb40-3c392943ea47","text":"lat 0","ts":1795362515272}"#,
                r#"{"ts":-9223372036854775808,"text":"ünïcødé ✓","id":"6e394c82a685452bbb403c392943ea47"}"#,
            ),
            LINE.replace(r#","info":{"user":"alice","client":"bfd4ba5e-3b52-433d-b788-e0e47693f678"}"#, ""),
            LINE.replace(r#","offset":1"#, r#","offset":18446744073709551615"#),
            // the longest numbers read without overflow checks (19 digits)
            LINE.replace(r#","offset":1"#, r#","offset":9999999999999999999"#),
            LINE.replace(r#""ts":1795362515272"#, r#""ts":-999999999999999999"#),
            LINE.replace(r#","time":1795362515273"#, ""),
            LINE.replace(r#","offset":1"#, ""),
            LINE.replace(r#""text":"lat 0""#, r#""text":"""#),
            NAMED.to_owned(),
            NAMED.replace(r#""name":"Alice Example","#, r#""name":"","#),
            // the name in another place
            NAMED.replace(
                r#""author":"alice","id":"6e394c82-a685-452b-bb40-3c392943ea47","name":"Alice Example","#,
                r#""name":"Alice Example","id":"6e394c82-a685-452b-bb40-3c392943ea47","#,
            ),
        ];
        for line in &accepted {
            let fast = parse(line).unwrap_or_else(|| panic!("the server's shape is read: {line}"));
            assert_eq!(
                serde(line),
                Some(fast),
                "same meaning as serde_json: {line}"
            );
        }
        let read = parse(LINE).expect("read");
        let p = &read.publication;
        assert_eq!(
            (&*read.channel, p.offset, &*p.author, &*p.text, p.ts),
            ("room:bench", 1, "alice", "lat 0", 1_795_362_515_272)
        );
        assert_eq!(p.id.to_string(), "6e394c82-a685-452b-bb40-3c392943ea47");
        assert_eq!(&*p.name, "", "no name in the line");
        let named = parse(NAMED).expect("read");
        assert_eq!(
            (&*named.publication.author, &*named.publication.name),
            ("alice", "Alice Example")
        );
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        let given_up = [
            LINE.replace("lat 0", r#"say \"hi\""#),           // escapes
            LINE.replace(r#""offset":1"#, r#""offset": 1"#),  // whitespace
            LINE.replace(r#""offset":1"#, r#""offset":01"#),  // leading zero (not JSON)
            LINE.replace(r#""offset":1"#, r#""offset":1.0"#), // not an integer
            LINE.replace(r#""offset":1"#, r#""offset":18446744073709551616"#), // > u64
            LINE.replace(r#""offset":1"#, r#""offset":99999999999999999999"#), // 20 digits > u64
            LINE.replace(r#""offset":1"#, r#""offset":100000000000000000000"#), // 21 digits
            LINE.replace(r#""ts":1795362515272"#, r#""ts":-0"#),
            LINE.replace(r#""ts":1795362515272"#, r#""ts":9223372036854775808"#), // > i64
            LINE.replace(r#""text":"lat 0","#, r#""text":"lat 0","text":"again","#), // duplicate
            LINE.replace(r#""text":"lat 0","#, r#""text":"lat 0","extra":1,"#),   // unknown key
            LINE.replace(r#""text":"lat 0","#, ""),                               // text missing
            LINE.replace(r#","time":1795362515273"#, r#","tags":{"a":"b"},"time":1"#),
            LINE.replace(r#"{"push":"#, r#"{"id":0,"push":"#),
            LINE.replace("6e394c82-a685", "6e394c82-x685"), // not a UUID
            format!("{LINE} "),
            LINE.replace("lat 0", "lat\u{1}0"), // a raw control character (not JSON)
            LINE.replace("lat 0", "\tlat 0"),   // a raw tab first
            LINE.replace("lat 0", "lat 0\u{1f}"), // the last control character, last
            NAMED.replace(r#""name":"Alice Example","#, r#""name":null,"#), // null name
            NAMED.replace(r#""name":"Alice Example","#, r#""name":"A","name":"B","#), // twice
        ];
        for line in &given_up {
            assert!(parse(line).is_none(), "left to serde_json: {line}");
            assert!(agrees(line));
        }
    }

    #[test]
    fn every_one_byte_change_of_a_real_line_is_read_as_serde_json_reads_it_or_left_to_it() {
        one_byte_changes(LINE);
        one_byte_changes(NAMED);
    }

    fn one_byte_changes(line: &str) {
        let bytes = line.as_bytes();
        let mut tried = 0;
        let mut still_read = 0;
        for i in 0..bytes.len() {
            // The line cut short here, and without this byte.
            for variant in [bytes[..i].to_vec(), [&bytes[..i], &bytes[i + 1..]].concat()] {
                if let Ok(line) = std::str::from_utf8(&variant) {
                    tried += 1;
                    assert!(agrees(line));
                }
            }
            for b in *br#"" \{}[],:0159-.eEaA"# {
                let mut v = bytes.to_vec();
                v[i] = b;
                if let Ok(line) = std::str::from_utf8(&v) {
                    tried += 1;
                    still_read += usize::from(parse(line).is_some());
                    assert!(agrees(line));
                }
            }
            let mut v = bytes.to_vec();
            v[i] = 0x1f;
            tried += 1;
            assert!(agrees(std::str::from_utf8(&v).expect("ASCII")));
        }
        assert!(tried > 15 * bytes.len(), "{tried} variants");
        // Many changes keep the shape (other digits, other letters in strings): those are read
        // here, so the comparison above is not vacuous.
        assert!(
            still_read > 2 * bytes.len(),
            "{still_read} variants read by the fast path"
        );
    }
}
