//! The log filter of the app: what `CONFAB_LOG` asks for, with the targets that would write a
//! secret capped.
//!
//! At `trace`, tungstenite logs every WebSocket frame (the `connect` and `refresh` commands carry
//! the access token) and the HTTP stack logs request details; those targets never go below
//! `info`, whatever the setting asks.

use tracing_subscriber::filter::{Directive, EnvFilter};

/// Targets whose `debug`/`trace` output can contain a token, a cookie or a request body.
pub const CAPPED_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

/// The filter for `spec` (an `EnvFilter` directive list such as `trace` or
/// `confab_relay=debug`; `None` or an invalid one means `info`), with [`CAPPED_TARGETS`] at
/// `info` at most.
pub fn log_filter(spec: Option<&str>) -> EnvFilter {
    let mut filter = spec
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for target in CAPPED_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_is_capped_for_the_targets_that_log_frames_and_requests() {
        let text = log_filter(Some("trace")).to_string();
        for target in CAPPED_TARGETS {
            assert!(text.contains(&format!("{target}=info")), "{target}: {text}");
        }
        assert!(text.contains("trace"), "the rest stays at trace: {text}");
        assert!(log_filter(Some("not a [filter"))
            .to_string()
            .contains("info"));
    }
}
