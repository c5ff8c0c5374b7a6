//! The keyring stand-in: `gnome-keyring-daemon`'s Secret Service on a private bus, with a
//! throwaway login keyring. Confab's default vault key source is the OS keychain, so without it
//! the app could not open its vault the default way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{find_on_path, Deadline, ProcessGroup};
use crate::error::{DesktopError, DesktopResult};

/// How often the Secret Service is asked whether it is up.
const PROBE_POLL: Duration = Duration::from_millis(50);

/// A running Secret Service; stopped on drop (the keyring file stays in the HOME).
pub struct SecretService {
    daemon: ProcessGroup,
}

impl SecretService {
    /// Starts `gnome-keyring-daemon --foreground --unlock --components=secrets` on the bus at
    /// `bus_address` with `HOME`, `XDG_RUNTIME_DIR` (`runtime_dir`, which must exist with mode
    /// 0700) and the XDG dirs of `home`, so its login keyring is a file in `home`. `password`
    /// creates that keyring on the first start and unlocks it on later ones in the same HOME.
    /// Waits (until `deadline`) for the default collection to answer on the bus.
    pub fn start(
        home: &Path,
        runtime_dir: &Path,
        bus_address: &str,
        password: &str,
        deadline: &Deadline,
    ) -> DesktopResult<Self> {
        let program = program()?;
        let mut cmd = Command::new(program);
        cmd.args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", runtime_dir)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut daemon = ProcessGroup::spawn(cmd, "gnome-keyring-daemon")?;
        // --unlock reads the login keyring's password from stdin until EOF: the handle is
        // dropped right after the write.
        if let Some(mut stdin) = daemon.take_stdin() {
            stdin
                .write_all(password.as_bytes())
                .map_err(|source| DesktopError::Io {
                    what: "unlocking the test keyring".into(),
                    source,
                })?;
        }
        let service = Self { daemon };
        service.wait_until_up(bus_address, deadline)?;
        Ok(service)
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Polls `ReadAlias("default")` until it names a collection: only then does a store into the
    /// keychain succeed.
    fn wait_until_up(&self, bus_address: &str, deadline: &Deadline) -> DesktopResult<()> {
        loop {
            let probe = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.secrets",
                    "/org/freedesktop/secrets",
                    "org.freedesktop.Secret.Service.ReadAlias",
                    "string:default",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", bus_address)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            if let Ok(out) = probe {
                if String::from_utf8_lossy(&out.stdout).contains("/collection/") {
                    return Ok(());
                }
            }
            if deadline.passed() {
                return Err(deadline.timed_out(
                    "gnome-keyring-daemon's Secret Service on the private bus",
                    String::new(),
                ));
            }
            std::thread::sleep(PROBE_POLL.min(deadline.left()));
        }
    }
}

fn program() -> DesktopResult<PathBuf> {
    find_on_path("gnome-keyring-daemon").ok_or_else(|| DesktopError::Missing {
        what: "gnome-keyring-daemon",
        path: "PATH".into(),
        hint: "install the Debian package gnome-keyring (cargo xtask setup does this)",
    })
}
