//! A private D-Bus session bus per app instance: Tauri's single-instance plugin needs a session
//! bus on Linux, and two instances must not find each other, so each gets its own.

use std::path::Path;
use std::process::{Command, Stdio};

use super::process::{find_on_path, Deadline, ProcessGroup};
use crate::error::{DesktopError, DesktopResult};

/// The bus configuration: a session bus without service activation, so nothing (document
/// portal, accessibility bus, the system's gnome-keyring activation file with the real HOME) is
/// started behind the harness's back, outlives it or mounts into its HOME.
pub const SESSION_BUS_CONFIG: &str = include_str!("session-bus.conf");

/// A running `dbus-daemon --session` and its address; stopped on drop.
pub struct SessionBus {
    daemon: ProcessGroup,
    address: String,
}

impl SessionBus {
    /// Writes the configuration to `home/session-bus.conf` and starts the daemon with `HOME` set
    /// to `home`; waits (until `deadline`) for the address it prints.
    pub fn start(home: &Path, deadline: &Deadline) -> DesktopResult<Self> {
        let program = find_on_path("dbus-daemon").ok_or_else(|| DesktopError::Missing {
            what: "dbus-daemon",
            path: "PATH".into(),
            hint: "install the Debian package dbus (cargo xtask setup does this)",
        })?;
        let config = home.join("session-bus.conf");
        std::fs::write(&config, SESSION_BUS_CONFIG).map_err(|source| DesktopError::Io {
            what: format!("writing {}", config.display()),
            source,
        })?;
        let mut cmd = Command::new(program);
        cmd.arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut daemon = ProcessGroup::spawn(cmd, "dbus-daemon")?;
        let address = daemon.wait_for_line("", deadline, None)?;
        Ok(Self { daemon, address })
    }

    /// The address for `DBUS_SESSION_BUS_ADDRESS` (`unix:path=...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_activates_no_services() {
        assert!(
            SESSION_BUS_CONFIG.contains("<type>session</type>")
                && !SESSION_BUS_CONFIG.contains("servicedir"),
            "a session bus with no service directories, so nothing is D-Bus-activated"
        );
    }
}
