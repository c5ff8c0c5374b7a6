//! Injectable wall clock.
//!
//! Token expiry is wall-clock time (`exp` is a Unix timestamp), while tokio's timers are
//! monotonic and do not advance while the machine sleeps. The manager therefore sleeps with
//! tokio (monotonic, never longer than the re-check interval) and decides with this clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

/// Source of wall-clock time ([`SystemTime`]), which token expiry is measured in. Unlike
/// monotonic time it jumps: when the system clock is set, and across a suspend (wall time keeps
/// running while tokio's timers stand still). (Login deadlines are monotonic time:
/// confab-auth's `MonotonicClock`.)
pub trait WallClock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock ([`SystemTime::now`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A wall clock for tests: the system clock shifted by an adjustable offset, so a test can jump
/// the wall clock (as after a suspend) while monotonic timers keep running normally.
#[derive(Debug, Default)]
pub struct ShiftedWallClock {
    offset_ms: AtomicI64,
}

impl ShiftedWallClock {
    /// A clock that starts at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock forward by `by` (cumulative).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl WallClock for ShiftedWallClock {
    fn now(&self) -> SystemTime {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + Duration::from_millis(offset.unsigned_abs())
        } else {
            now - Duration::from_millis(offset.unsigned_abs())
        }
    }
}
