//! The one reading of an HTTP `Retry-After` value, for every client in Confab (the identity
//! provider's token endpoint, chat token endpoints, the credential backends).
//!
//! RFC 9110 §10.2.3 allows delta-seconds or an HTTP-date. Backends in the wild also send an
//! absolute epoch timestamp (seed 002's rate limiter sends epoch **milliseconds**); read as
//! delta-seconds, such a value would mean decades and be cut to the caller's cap, so a client
//! would wait its longest wait instead of the few seconds asked for. Integers are therefore
//! read by size:
//!
//! | value | read as |
//! |---|---|
//! | below 10⁹ | delta-seconds (10⁹ s is 31 years: no real wait is that long) |
//! | 10⁹ up to 10¹² | an epoch timestamp in seconds (from 2001-09-09 on) |
//! | 10¹² and above | an epoch timestamp in milliseconds |
//!
//! A timestamp or date in the past means no wait. The caller caps the result.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Integers from here on are epoch seconds, not delta-seconds.
const EPOCH_SECONDS_FROM: u64 = 1_000_000_000;
/// Integers from here on are epoch milliseconds.
const EPOCH_MILLIS_FROM: u64 = 1_000_000_000_000;

/// How long to wait for a `Retry-After` value read at `now`; `None` when it is neither a
/// number nor an HTTP-date.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use confab_types::retry_after::parse;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// assert_eq!(parse("7", now), Some(Duration::from_secs(7)));
/// assert_eq!(parse("1800000030", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse("1800000002500", now), Some(Duration::from_millis(2500)));
/// assert_eq!(parse("Fri, 15 Jan 2027 08:00:10 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse("soon", now), None);
/// ```
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(n) = value.parse::<u64>() {
        let at = match n {
            n if n >= EPOCH_MILLIS_FROM => UNIX_EPOCH + Duration::from_millis(n),
            n if n >= EPOCH_SECONDS_FROM => UNIX_EPOCH + Duration::from_secs(n),
            n => return Some(Duration::from_secs(n)),
        };
        return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds_are_waits() {
        let now = at(1_800_000_000);
        assert_eq!(parse("0", now), Some(Duration::ZERO));
        assert_eq!(parse(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse("999999999", now),
            Some(Duration::from_secs(999_999_999)),
            "the largest delta-seconds value stays a delta"
        );
    }

    #[test]
    fn epoch_timestamps_are_told_apart_by_size() {
        let now = at(1_800_000_000);
        assert_eq!(
            parse("1800000005", now),
            Some(Duration::from_secs(5)),
            "epoch seconds"
        );
        assert_eq!(
            parse("1800000005000", now),
            Some(Duration::from_secs(5)),
            "epoch milliseconds (seed 002's rate limiter) wait 5 s, not the cap"
        );
        assert_eq!(
            parse("1799999990000", now),
            Some(Duration::ZERO),
            "a timestamp in the past means no wait"
        );
    }

    #[test]
    fn http_dates_are_read_in_all_three_forms() {
        // 2027-01-15T08:00:00Z
        let now = at(1_799_999_990);
        let ten = Some(Duration::from_secs(10));
        assert_eq!(parse("Fri, 15 Jan 2027 08:00:00 GMT", now), ten);
        assert_eq!(parse("Friday, 15-Jan-27 08:00:00 GMT", now), ten);
        assert_eq!(parse("Fri Jan 15 08:00:00 2027", now), ten);
        assert_eq!(
            parse("Thu, 01 Jan 2026 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_unreadable() {
        let now = at(1_800_000_000);
        for bad in ["", "soon", "-5", "1.5", "12 s", "Fri, 15 Jan 2027"] {
            assert_eq!(parse(bad, now), None, "{bad:?}");
        }
    }
}
