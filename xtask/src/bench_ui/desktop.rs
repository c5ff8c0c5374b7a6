//! A throwaway desktop session for one app start: a fresh HOME with XDG dirs, a private D-Bus
//! session bus and a `gnome-keyring-daemon` Secret Service on it (Confab's default vault key
//! source is the OS keychain), like the E2E harness in tests/src/lib.rs.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::procs::Group;

/// A session bus without service activation: nothing is started behind the benchmark's back.
/// The same file as the E2E harness uses.
const SESSION_BUS_CONFIG: &str = include_str!("../../../tests/session-bus.conf");

/// How long the bus and the keyring may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// HOME, bus and keyring of one run; everything is stopped and removed on drop.
pub(crate) struct Desktop {
    // Drop order: keyring before bus, the directory last (see Drop).
    keyring: Option<Group>,
    bus: Option<Group>,
    home: PathBuf,
    address: String,
}

impl Desktop {
    /// Creates `home` (which must not exist) and starts the bus and the keyring in it.
    pub(crate) fn start(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home.join("run"))
            .with_context(|| format!("creating {}", home.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(home.join("run"), std::fs::Permissions::from_mode(0o700))?;
        }
        let mut desktop = Self {
            keyring: None,
            bus: None,
            home: home.to_path_buf(),
            address: String::new(),
        };
        let config = home.join("session-bus.conf");
        std::fs::write(&config, SESSION_BUS_CONFIG)?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut bus = Group::spawn(cmd, "dbus-daemon (Debian package dbus)")?;
        let out = bus.child.stdout.take().context("dbus-daemon: no stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        desktop.bus = Some(bus);
        desktop.address = line.trim().to_owned();
        if desktop.address.is_empty() {
            bail!("dbus-daemon did not print its address");
        }

        let mut cmd = Command::new("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &desktop.address)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut keyring = Group::spawn(cmd, "gnome-keyring-daemon (Debian package gnome-keyring)")?;
        // --unlock reads the login keyring's password from stdin until EOF (and creates it).
        if let Some(mut stdin) = keyring.child.stdin.take() {
            stdin.write_all(b"confab-bench-keyring")?;
        }
        desktop.keyring = Some(keyring);
        desktop.wait_for_secret_service()?;
        Ok(desktop)
    }

    fn wait_for_secret_service(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
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
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            if let Ok(out) = probe {
                if String::from_utf8_lossy(&out.stdout).contains("/collection/") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!("gnome-keyring-daemon's Secret Service did not come up on the private bus");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment of a desktop program in this session.
    pub(crate) fn env(&self) -> Vec<(String, PathBuf)> {
        let h = &self.home;
        vec![
            ("HOME".into(), h.clone()),
            ("XDG_CONFIG_HOME".into(), h.join(".config")),
            ("XDG_DATA_HOME".into(), h.join(".local/share")),
            ("XDG_CACHE_HOME".into(), h.join(".cache")),
            ("XDG_STATE_HOME".into(), h.join(".local/state")),
            ("XDG_RUNTIME_DIR".into(), h.join("run")),
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                PathBuf::from(&self.address),
            ),
            // No accessibility bus (it would be activated on the private bus otherwise).
            ("NO_AT_BRIDGE".into(), PathBuf::from("1")),
        ]
    }

    pub(crate) fn home(&self) -> &Path {
        &self.home
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        drop(self.keyring.take());
        drop(self.bus.take());
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
