//! What the test peers run as child processes share (the IdP, the Django backend): waiting for
//! the one ready line a peer prints on stdout, its log's tail for error messages, and whole
//! seconds for their lifetimes.

use std::path::Path;
use std::time::Duration;

use tokio::io::{BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// How long a peer that closed its stdout gets to report its exit status.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// How the wait for a peer's ready line ended.
pub(crate) enum Ready {
    /// The ready line (`line`) and what follows its prefix, trimmed (`value`).
    Line { line: String, value: String },
    /// stdout closed first; the peer's exit status in words.
    Exited(String),
    /// Reading stdout failed.
    Io(std::io::Error),
    /// Nothing within the deadline (the peer is left running: the caller kills it).
    TimedOut,
}

/// Reads `lines` until one starts with `prefix`, for `deadline` at most.
pub(crate) async fn wait_ready(
    lines: &mut Lines<BufReader<ChildStdout>>,
    child: &mut Child,
    prefix: &str,
    deadline: Duration,
) -> Ready {
    let found = tokio::time::timeout(deadline, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(value) = line.strip_prefix(prefix) {
                return Ok(Some((line.clone(), value.trim().to_owned())));
            }
        }
        Ok::<_, std::io::Error>(None)
    })
    .await;
    match found {
        Ok(Ok(Some((line, value)))) => Ready::Line { line, value },
        Ok(Ok(None)) => Ready::Exited(match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            _ => "closed stdout, still running".to_owned(),
        }),
        Ok(Err(e)) => Ready::Io(e),
        Err(_) => Ready::TimedOut,
    }
}

/// The last 30 lines of the log at `path` (empty when it cannot be read).
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(30);
    lines[start..].join("\n")
}

/// Whole seconds of a lifetime, at least one.
pub(crate) fn secs(duration: Duration) -> u64 {
    duration.as_secs().max(1)
}
