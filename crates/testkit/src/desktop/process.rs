//! Child processes of a harness: each started as the leader of its own process group and
//! killed with that whole group on drop; waits for a ready line or a listening port with a
//! deadline; a free port; a program on `PATH`; the tail of a log for failure messages.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::error::{DesktopError, DesktopResult};

/// How often a port is tried while waiting for a server to listen.
const PORT_POLL: Duration = Duration::from_millis(20);
/// How long a dropped [`ProcessGroup`] may take to be gone. SIGKILL cannot be caught, so this
/// is only the kernel tearing down WebKit's processes; the wait lets the caller remove the
/// directories they had open right after the drop.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// Lines of a log put into failure messages.
const TAIL_LINES: usize = 25;

/// A point in time that a start-up wait must not pass, with the duration it was set for (for
/// the "timed out after N s" messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// `total` from now.
    pub fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }

    /// Whether the deadline has come.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The time left (zero once passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The whole duration it was set for.
    pub fn total(&self) -> Duration {
        self.total
    }

    /// The timeout error for `what`, with `details` (e.g. a [`log_tail`]) appended.
    pub fn timed_out(&self, what: impl Into<String>, details: String) -> DesktopError {
        DesktopError::Timeout {
            what: what.into(),
            seconds: self.total.as_secs(),
            details,
        }
    }
}

/// A child started as the leader of its own process group. On drop the whole group gets
/// SIGKILL (tauri-driver takes WebKitWebDriver, the app and WebKit's helpers with it; the
/// chat server dies as in a crash), and the drop waits until no member is left.
pub struct ProcessGroup {
    child: Child,
    what: String,
}

impl ProcessGroup {
    /// Starts `cmd` in a new process group; `what` names it in errors ("dbus-daemon").
    pub fn spawn(mut cmd: Command, what: &str) -> DesktopResult<Self> {
        cmd.process_group(0);
        let child = cmd.spawn().map_err(|source| DesktopError::Io {
            what: format!("starting {what}"),
            source,
        })?;
        Ok(Self {
            child,
            what: what.to_owned(),
        })
    }

    /// The leader's pid (also the group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What this process is, as given to [`ProcessGroup::spawn`].
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The leader's stdin, if it was piped and not taken yet.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Whether the leader is still running (a leader that exited is reaped here).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until the leader prints a line (trimmed) starting with `prefix` on its piped stdout
    /// and returns the rest of that line, trimmed; empty lines are skipped, so `""` takes the
    /// first non-empty line. The rest of stdout is read and dropped by a thread until the
    /// process ends, so it never blocks on a full pipe or dies of EPIPE. `log` (its stderr,
    /// say) is quoted in the error when it exits first or `deadline` passes.
    pub fn wait_for_line(
        &mut self,
        prefix: &str,
        deadline: &Deadline,
        log: Option<&Path>,
    ) -> DesktopResult<String> {
        let stdout = self.child.stdout.take().ok_or_else(|| {
            DesktopError::Other(format!(
                "{}: stdout is not piped (or already read)",
                self.what
            ))
        })?;
        let (tx, rx) = mpsc::channel();
        let wanted = prefix.to_owned();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim();
                if sent || line.is_empty() {
                    continue;
                }
                if let Some(rest) = line.strip_prefix(&wanted) {
                    // The receiver may have given up (deadline); nothing to do about it then.
                    let _ = tx.send(rest.trim().to_owned());
                    sent = true;
                }
            }
        });
        let details = || log.map(log_tail).unwrap_or_default();
        match rx.recv_timeout(deadline.left()) {
            Ok(rest) => Ok(rest),
            Err(RecvTimeoutError::Disconnected) => Err(DesktopError::Exited {
                what: self.what.clone(),
                details: details(),
            }),
            Err(RecvTimeoutError::Timeout) => {
                Err(deadline.timed_out(format!("{} to print {prefix:?}", self.what), details()))
            }
        }
    }

    fn signal_group(&self, signal: &str) -> bool {
        // Negative pid: the process group this child leads (it was started with pgid 0).
        std::process::Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal_group("-KILL");
        let deadline = Instant::now() + EXIT_WAIT;
        loop {
            let _ = self.child.try_wait(); // reap the leader, or it stays a zombie member
            if !self.signal_group("-0") {
                return;
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "warning: {} (process group {}) did not exit within {} s",
                    self.what,
                    self.child.id(),
                    EXIT_WAIT.as_secs()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> DesktopResult<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| DesktopError::Io {
            what: "finding a free port".into(),
            source,
        })
}

/// Waits until something accepts connections on 127.0.0.1:`port`; `what` ("tauri-driver to
/// listen") and `log` go into the timeout error.
pub fn wait_for_port(
    port: u16,
    what: &str,
    deadline: &Deadline,
    log: Option<&Path>,
) -> DesktopResult<()> {
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if deadline.passed() {
            return Err(deadline.timed_out(what, log.map(log_tail).unwrap_or_default()));
        }
        std::thread::sleep(PORT_POLL.min(deadline.left()));
    }
}

/// The first file called `name` in a directory of `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The last lines of a log, headed by its path, to append to a failure message; empty when the
/// log is missing or empty.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of {} ---\n{tail}", log.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    }

    fn group_exists(pgid: u32) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn a_dropped_group_takes_its_grandchildren_along() {
        // The background sleep is what tauri-driver's WebKitWebDriver and app are to it.
        let mut group =
            ProcessGroup::spawn(sh("sleep 60 & echo ready; wait"), "a shell").expect("sh starts");
        let rest = group
            .wait_for_line("ready", &Deadline::after(Duration::from_secs(10)), None)
            .expect("the ready line comes");
        assert_eq!(rest, "", "nothing follows the prefix");
        let pgid = group.pid();
        assert!(group_exists(pgid), "the group runs while the handle lives");
        drop(group);
        assert!(
            !group_exists(pgid),
            "no member of the group is left once the drop returns"
        );
    }

    #[test]
    fn the_ready_line_is_found_among_others() {
        let mut group = ProcessGroup::spawn(
            sh("echo starting; echo; echo '  SERVER_READY url=ws://x:1/  '; echo more; sleep 60"),
            "a server",
        )
        .expect("sh starts");
        let rest = group
            .wait_for_line(
                "SERVER_READY url=",
                &Deadline::after(Duration::from_secs(10)),
                None,
            )
            .expect("the ready line comes");
        assert_eq!(rest, "ws://x:1/", "the rest of the line, trimmed");
        assert!(group.is_running(), "later output does not end the process");
    }

    #[test]
    fn an_exit_before_the_ready_line_quotes_the_log() {
        let dir = std::env::temp_dir().join(format!("confab-testkit-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("server.log");
        std::fs::write(&log, "first\nport taken\n").expect("log written");
        let mut group = ProcessGroup::spawn(sh("echo other"), "the server").expect("sh starts");
        let err = group
            .wait_for_line(
                "READY",
                &Deadline::after(Duration::from_secs(10)),
                Some(&log),
            )
            .expect_err("the process exits without the line");
        let message = err.to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(err, DesktopError::Exited { .. })
                && message.starts_with("the server exited before it was ready")
                && message.ends_with("port taken"),
            "the error says so and quotes the log: {message}"
        );
    }

    #[test]
    fn a_silent_process_times_out() {
        let mut group = ProcessGroup::spawn(sh("sleep 60"), "a sleeper").expect("sh starts");
        let started = Instant::now();
        let err = group
            .wait_for_line("READY", &Deadline::after(Duration::from_millis(300)), None)
            .expect_err("no line comes");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the wait ends at the deadline"
        );
        assert!(
            matches!(err, DesktopError::Timeout { .. })
                && err.to_string().contains("a sleeper to print \"READY\""),
            "the error names the process and the line: {err}"
        );
    }

    #[test]
    fn a_port_is_awaited_until_the_deadline() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        wait_for_port(
            port,
            "the listener",
            &Deadline::after(Duration::from_secs(5)),
            None,
        )
        .expect("a listening port is found at once");
        drop(listener);
        let free = free_port().expect("a free port");
        let err = wait_for_port(
            free,
            "nobody to listen",
            &Deadline::after(Duration::from_millis(200)),
            None,
        )
        .expect_err("nothing listens there");
        assert_eq!(
            err.to_string(),
            "timed out after 0 s waiting for nobody to listen",
            "the timeout names what was awaited"
        );
    }

    #[test]
    fn log_tail_keeps_the_last_lines_with_the_path() {
        let dir = std::env::temp_dir().join(format!("confab-testkit-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("a.log");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).expect("log written");
        let tail = log_tail(&log);
        let missing = log_tail(&dir.join("missing.log"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            tail.starts_with(&format!(
                "\n--- last lines of {} ---\nline 16\n",
                log.display()
            )) && tail.ends_with("line 40"),
            "the last 25 lines under a header naming the file: {tail}"
        );
        assert_eq!(missing, "", "a missing log adds nothing");
    }

    #[test]
    fn programs_are_found_on_path() {
        assert!(find_on_path("sh").is_some(), "sh is on PATH");
        assert!(
            find_on_path("confab-no-such-program").is_none(),
            "a missing program is None"
        );
    }
}
