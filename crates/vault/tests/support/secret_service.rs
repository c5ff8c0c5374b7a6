//! A private Secret Service for tests and benchmarks: a `dbus-daemon` session bus without
//! D-Bus activation and a `gnome-keyring-daemon` (secrets component) with a throwaway login
//! keyring, both in a temporary directory so the developer's own keyring is never touched.
//! Needs the Debian packages `dbus` and `gnome-keyring`; without them it panics saying so.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_vault::KeychainKey;

/// Kills and reaps a daemon we started when the test ends, however it ends.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found on PATH: the keychain test needs a real Secret Service. \
                 Install the Debian packages `dbus gnome-keyring` (cargo xtask test does)."
            )
        })
}

/// Starts a private session bus and returns it with its address. Its configuration lists no
/// service directories, so nothing is D-Bus-activated behind our back (the system's activation
/// file would start a second gnome-keyring-daemon with the real HOME).
fn start_session_bus(dir: &Path) -> (Daemon, String) {
    let program = require_program("dbus-daemon");
    let config = dir.join("session-bus.conf");
    let socket_dir = dir.join("bus");
    std::fs::create_dir_all(&socket_dir).expect("bus socket dir");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket_dir.display()
        ),
    )
    .expect("write bus config");
    let mut child = Command::new(program)
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address=1"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    let stdout = child.stdout.take().expect("piped stdout");
    let daemon = Daemon {
        name: "dbus-daemon",
        child,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let address = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{} printed no bus address in time: {e}", daemon.name));
    let address = address.trim().to_owned();
    assert!(
        address.starts_with("unix:"),
        "dbus-daemon prints a unix bus address, got {address:?}"
    );
    (daemon, address)
}

/// Starts gnome-keyring-daemon's Secret Service on `bus`, with its state in `home`.
fn start_gnome_keyring(bus: &str, home: &Path) -> Daemon {
    let program = require_program("gnome-keyring-daemon");
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            .expect("chmod runtime dir");
    }
    let mut child = Command::new(program)
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gnome-keyring-daemon");
    // --unlock reads the login keyring password from stdin until EOF and creates the login
    // keyring (the default collection) with it. An empty password creates nothing, so this
    // throwaway keyring in a temp dir gets a fixed test password.
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(b"confab-test-keyring")
        .expect("write keyring password");
    drop(stdin);
    Daemon {
        name: "gnome-keyring-daemon",
        child,
    }
}

/// A running private Secret Service. Dropping it stops both daemons.
pub struct PrivateSecretService {
    // field order: the keyring daemon is stopped before its bus
    _keyring: Daemon,
    _bus: Daemon,
}

impl PrivateSecretService {
    /// Starts the daemons under `dir`, points this process's `DBUS_SESSION_BUS_ADDRESS` at the
    /// private bus (callers must not run other D-Bus users concurrently in this process) and
    /// waits, with a deadline, until the Secret Service answers.
    pub fn start(dir: &Path) -> Self {
        let (mut bus, address) = start_session_bus(dir);
        let mut keyring = start_gnome_keyring(&address, dir);
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);
        let probe = KeychainKey::new("dev.confab.chat.test-probe", "probe");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match probe.delete() {
                Ok(()) => break,
                Err(e) => {
                    for d in [&mut bus, &mut keyring] {
                        if let Ok(Some(status)) = d.child.try_wait() {
                            panic!(
                                "{} exited early ({status}); last keychain error: {e}",
                                d.name
                            );
                        }
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the Secret Service did not come up in time: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Self {
            _keyring: keyring,
            _bus: bus,
        }
    }
}
