//! [`SessionConfig`]: timing parameters of the token lifecycle.

use std::time::Duration;

/// Timing parameters. `Default` is what the app uses; tests shorten them.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Refresh this long before expiry, at most half the token lifetime. Default 5 min.
    pub refresh_buffer: Duration,
    /// Re-check the schedule against the wall clock at least this often (monotonic timers stop
    /// while the machine sleeps). Default 30 s.
    pub recheck_interval: Duration,
    /// A token is handed out only while at least this much lifetime is left (at most a quarter
    /// of the lifetime), covering clock skew and the time the caller needs to use it. Default 2 s.
    pub expiry_margin: Duration,
    /// How long `access_token()` waits for an in-flight refresh when the token has expired,
    /// before returning [`crate::Error::Refreshing`]. Default 10 s.
    pub wait_timeout: Duration,
    /// Bound on one token request; a request that takes longer counts as a transient failure.
    /// Default 30 s.
    pub request_timeout: Duration,
    /// First retry delay bound; doubles per attempt (full jitter). Default 500 ms.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay (a server's Retry-After may exceed it). Default 5 min.
    pub backoff_cap: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            refresh_buffer: Duration::from_secs(300),
            recheck_interval: Duration::from_secs(30),
            expiry_margin: Duration::from_secs(2),
            wait_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(300),
        }
    }
}

impl SessionConfig {
    /// Delay before retry number `attempt` (1-based): uniformly random in
    /// `[0, min(cap, base * 2^(attempt-1))]` ("full jitter"), but never shorter than the
    /// server's `Retry-After`.
    pub fn backoff_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let shift = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << shift)
            .min(self.backoff_cap);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            0..=ceiling_ms,
        ));
        jittered.max(retry_after.unwrap_or_default())
    }

    /// When to refresh a token that expires at `expires_at` after `lifetime`.
    pub(crate) fn refresh_point(&self, lifetime: Duration) -> Duration {
        self.refresh_buffer.min(lifetime / 2)
    }

    /// How much lifetime must remain for a token to be handed out.
    pub(crate) fn margin(&self, lifetime: Duration) -> Duration {
        self.expiry_margin.min(lifetime / 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_capped_and_honours_retry_after() {
        let cfg = SessionConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            ..SessionConfig::default()
        };
        for attempt in 1..40 {
            let ceiling = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20)))
                .min(Duration::from_secs(1));
            for _ in 0..50 {
                let d = cfg.backoff_delay(attempt, None);
                assert!(
                    d <= ceiling,
                    "delay of attempt {attempt} must not exceed min(cap, base*2^n)"
                );
            }
        }
        let d = cfg.backoff_delay(1, Some(Duration::from_secs(7)));
        assert!(
            d >= Duration::from_secs(7),
            "a Retry-After longer than the cap must still be honoured"
        );
        let spread: std::collections::HashSet<_> =
            (0..200).map(|_| cfg.backoff_delay(5, None)).collect();
        assert!(spread.len() > 20, "delays must be jittered, not fixed");
    }

    #[test]
    fn refresh_point_is_buffer_or_half_lifetime() {
        let cfg = SessionConfig::default();
        assert_eq!(
            cfg.refresh_point(Duration::from_secs(3600)),
            Duration::from_secs(300),
            "long tokens refresh one buffer before expiry"
        );
        assert_eq!(
            cfg.refresh_point(Duration::from_secs(10)),
            Duration::from_secs(5),
            "short tokens refresh at half their lifetime"
        );
    }
}
