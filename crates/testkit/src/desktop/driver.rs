//! WebDriver servers for the app: `tauri-driver` (which starts `WebKitWebDriver` under itself,
//! what the E2E tests talk to) or `WebKitWebDriver` alone (what the UI benchmark talks to, so
//! the app is a direct descendant whose memory it can sum). Each runs in its own process group
//! on free loopback ports, writing to a log; the WebDriver client is the caller's.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{find_on_path, free_port, wait_for_port, Deadline, ProcessGroup};
use super::target_dir;
use crate::error::{DesktopError, DesktopResult};

/// `tauri-driver`: `TAURI_DRIVER`, else `$CONFAB_TOOLS_DIR/bin/tauri-driver` (`cargo xtask
/// setup` installs it there; default `target/tools`), else on `PATH`.
pub fn tauri_driver() -> DesktopResult<PathBuf> {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(DesktopError::Missing {
                what: "tauri-driver (from TAURI_DRIVER)",
                path: p.display().to_string(),
                hint: "point TAURI_DRIVER at the tauri-driver binary",
            })
        };
    }
    let tools = std::env::var_os("CONFAB_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("tools"));
    let local = tools.join("bin").join("tauri-driver");
    if local.is_file() {
        return Ok(local);
    }
    find_on_path("tauri-driver").ok_or_else(|| DesktopError::Missing {
        what: "tauri-driver",
        path: local.display().to_string(),
        hint: "install it with `cargo install tauri-driver --version ^2 --locked --root target/tools` (cargo xtask setup does this)",
    })
}

/// `WebKitWebDriver`: `WEBKIT_WEBDRIVER`, else on `PATH`, else `/usr/bin/WebKitWebDriver`
/// (Debian's webkit2gtk-driver puts it there).
pub fn webkit_webdriver() -> DesktopResult<PathBuf> {
    let p = std::env::var_os("WEBKIT_WEBDRIVER")
        .map(PathBuf::from)
        .or_else(|| find_on_path("WebKitWebDriver"))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/WebKitWebDriver"));
    if p.is_file() {
        Ok(p)
    } else {
        Err(DesktopError::Missing {
            what: "WebKitWebDriver",
            path: p.display().to_string(),
            hint: "install the Debian package webkit2gtk-driver (cargo xtask setup does this)",
        })
    }
}

/// The environment of a driver, which the app it starts inherits.
#[derive(Debug, Clone, Copy)]
pub struct DriverEnv<'a> {
    /// Variables removed first (the caller's shell must not leak into the app).
    pub clear: &'a [&'a str],
    /// Variables set then (the desktop session's, the app's configuration).
    pub set: &'a [(OsString, OsString)],
}

/// A running WebDriver server; stopped with everything it started on drop.
pub struct Driver {
    group: ProcessGroup,
    port: u16,
}

impl Driver {
    /// Starts `tauri_driver` on a free port with `native` (`WebKitWebDriver`) on another, both
    /// writing to `log` (created afresh); waits (until `deadline`) until both listen.
    pub fn start_tauri_driver(
        tauri_driver: &Path,
        native: &Path,
        env: DriverEnv<'_>,
        log: &Path,
        deadline: &Deadline,
    ) -> DesktopResult<Self> {
        let port = free_port()?;
        let native_port = free_port()?;
        let mut cmd = Command::new(tauri_driver);
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(native);
        let group = spawn(cmd, "tauri-driver", env, log)?;
        wait_for_port(port, "tauri-driver to listen", deadline, Some(log))?;
        wait_for_port(
            native_port,
            "WebKitWebDriver to listen",
            deadline,
            Some(log),
        )?;
        Ok(Self { group, port })
    }

    /// Starts `webkit_webdriver` alone on a free loopback port, with
    /// `TAURI_WEBVIEW_AUTOMATION=true` (what tauri-driver sets: a Tauri app's webview accepts
    /// automation only then), writing to `log` (created afresh); waits (until `deadline`) until
    /// it listens. A new session's `webkitgtk:browserOptions.binary` is the app it starts.
    pub fn start_webkit(
        webkit_webdriver: &Path,
        env: DriverEnv<'_>,
        log: &Path,
        deadline: &Deadline,
    ) -> DesktopResult<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(webkit_webdriver);
        cmd.arg(format!("--port={port}"))
            .arg("--host=127.0.0.1")
            .env("TAURI_WEBVIEW_AUTOMATION", "true");
        let group = spawn(cmd, "WebKitWebDriver", env, log)?;
        wait_for_port(port, "WebKitWebDriver to listen", deadline, Some(log))?;
        Ok(Self { group, port })
    }

    /// The port WebDriver clients connect to on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The driver's pid (the app is among its descendants).
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }
}

fn spawn(
    mut cmd: Command,
    what: &str,
    env: DriverEnv<'_>,
    log: &Path,
) -> DesktopResult<ProcessGroup> {
    let io = |source| DesktopError::Io {
        what: format!("creating {}", log.display()),
        source,
    };
    let out = File::create(log).map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    for var in env.clear {
        cmd.env_remove(var);
    }
    cmd.envs(env.set.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    ProcessGroup::spawn(cmd, what)
}
