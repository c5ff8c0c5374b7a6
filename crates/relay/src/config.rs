//! Relay configuration and its builder.

use std::path::PathBuf;
use std::time::Duration;

use confab_types::SecretString;
use rand::Rng;

/// Tunables of the relay. Build with [`RelayConfig::builder`].
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// WebSocket URL of the chat server (`ws://host:port/connection/websocket`).
    pub url: String,
    /// SQLite file of the outbox (in the app data dir).
    pub outbox_path: PathBuf,
    /// The SQLCipher key of the outbox file (`x'<hex>'`, as `PRAGMA key` reads it) when the
    /// outbox lives in an encrypted store; `None`: a plain SQLite file.
    pub outbox_key: Option<SecretString>,
    /// Shortest reconnect delay (and the base of the exponential backoff).
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Time allowed for dialing plus the `connect` reply.
    pub connect_timeout: Duration,
    /// How long a request (RPC, history, open room) may wait, including while offline.
    pub request_timeout: Duration,
    /// Extra time after the server's ping interval before the connection counts as dead.
    pub ping_grace: Duration,
    /// Capacity of the event channel to the UI (bounded memory; see `Outlet`).
    pub event_capacity: usize,
    /// Publications per room loaded by `open_room`, a room reset and each older page.
    pub page_size: u32,
    /// Publishes in flight at once (pipelined on one connection).
    pub max_in_flight: usize,
    /// Largest server reply line accepted, in bytes (default 1 MiB): a larger reply to a
    /// request fails that request with `Error::ReplyTooLarge` (the connection stays up); a
    /// larger push ends the connection.
    pub max_frame_bytes: usize,
    /// Largest WebSocket message read at all (default 16 MiB); a larger one ends the
    /// connection. At least `max_frame_bytes`.
    pub max_read_bytes: usize,
    /// Client name sent in `connect`.
    pub client_name: String,
    /// How long a connection must stay up to count as healthy and reset the reconnect backoff
    /// (default 30 s). One that dies sooner (a server that accepts and then drops every
    /// connection, a reply too large to read) keeps the backoff growing.
    pub healthy_after: Duration,
}

impl RelayConfig {
    /// A builder with defaults for `url` and `outbox_path`.
    pub fn builder(url: impl Into<String>, outbox_path: impl Into<PathBuf>) -> RelayConfigBuilder {
        RelayConfigBuilder {
            config: RelayConfig {
                url: url.into(),
                outbox_path: outbox_path.into(),
                outbox_key: None,
                backoff_min: Duration::from_millis(500),
                backoff_max: Duration::from_secs(20),
                connect_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(15),
                ping_grace: Duration::from_secs(10),
                event_capacity: 1024,
                page_size: 50,
                max_in_flight: 32,
                max_frame_bytes: 1024 * 1024,
                max_read_bytes: 16 * 1024 * 1024,
                client_name: "confab-relay".to_owned(),
                healthy_after: Duration::from_secs(30),
            },
        }
    }

    /// The backoff attempt after a connection that was up for `lived`, made at `attempt`:
    /// back to 0 only if it stayed up [`RelayConfig::healthy_after`], else unchanged, so the
    /// next delay keeps growing.
    pub fn attempt_after_connection(&self, attempt: u32, lived: Duration) -> u32 {
        if lived >= self.healthy_after {
            0
        } else {
            attempt
        }
    }

    /// Reconnect delay before attempt `attempt` (0-based): full jitter,
    /// `uniform(0, min(max, min·2^attempt))`, never shorter than `backoff_min`.
    pub fn backoff_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(20));
        let cap = self
            .backoff_min
            .saturating_mul(factor)
            .min(self.backoff_max);
        let jittered = rand::thread_rng().gen_range(Duration::ZERO..=cap);
        jittered.max(self.backoff_min)
    }
}

/// Builder for [`RelayConfig`].
#[derive(Debug, Clone)]
pub struct RelayConfigBuilder {
    config: RelayConfig,
}

impl RelayConfigBuilder {
    /// Opens the outbox file with this SQLCipher key (`x'<hex>'`): the file is an encrypted
    /// store (confab-store's account store) that also holds other tables.
    pub fn outbox_key(mut self, key: SecretString) -> Self {
        self.config.outbox_key = Some(key);
        self
    }
    /// Reconnect delay bounds (default 0.5 s – 20 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }
    /// How long a connection must stay up to reset the backoff (default 30 s).
    pub fn healthy_after(mut self, d: Duration) -> Self {
        self.config.healthy_after = d;
        self
    }
    /// Dial + connect reply timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Request timeout (default 15 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }
    /// Grace after the server ping interval (default 10 s).
    pub fn ping_grace(mut self, d: Duration) -> Self {
        self.config.ping_grace = d;
        self
    }
    /// Event channel capacity (default 1024, at least 8).
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.config.event_capacity = n.max(8);
        self
    }
    /// History page size (default 50).
    pub fn page_size(mut self, n: u32) -> Self {
        self.config.page_size = n.max(1);
        self
    }
    /// Publishes in flight (default 32).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n.max(1);
        self
    }
    /// Largest server reply line (default 1 MiB); also raises the read limit to it if lower.
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.config.max_frame_bytes = n;
        self.config.max_read_bytes = self.config.max_read_bytes.max(n);
        self
    }
    /// Largest WebSocket message read at all (default 16 MiB, at least `max_frame_bytes`).
    pub fn max_read_bytes(mut self, n: usize) -> Self {
        self.config.max_read_bytes = n.max(self.config.max_frame_bytes);
        self
    }
    /// Client name in `connect`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.config.client_name = name.into();
        self
    }
    /// The configuration.
    pub fn build(self) -> RelayConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_connection_that_stayed_up_resets_the_backoff() {
        let c = RelayConfig::builder("ws://x", "o.db").build();
        // A server that accepts and drops at once: the attempt is kept, the delay keeps growing.
        let mut attempt = 0;
        for _ in 0..6 {
            attempt = c.attempt_after_connection(attempt, Duration::from_millis(200));
            attempt += 1; // the reconnect delay was taken
        }
        assert_eq!(attempt, 6, "six quick deaths: six growing delays");
        assert_eq!(
            c.backoff_min.saturating_mul(1 << 6).min(c.backoff_max),
            c.backoff_max,
            "and the cap is reached"
        );
        assert_eq!(
            c.attempt_after_connection(attempt, Duration::from_secs(29)),
            6
        );
        assert_eq!(
            c.attempt_after_connection(attempt, Duration::from_secs(30)),
            0
        );
    }

    #[test]
    fn backoff_stays_within_bounds_and_grows() {
        let c = RelayConfig::builder("ws://x", "o.db").build();
        for attempt in 0..40 {
            let d = c.backoff_delay(attempt);
            assert!(
                d >= c.backoff_min && d <= c.backoff_max,
                "reconnect delay is between the configured bounds, got {d:?}"
            );
        }
        let late: Duration = (0..200)
            .map(|_| c.backoff_delay(10))
            .max()
            .unwrap_or_default();
        assert!(
            late > Duration::from_secs(5),
            "after many failures the delay can grow towards the cap"
        );
    }
}
