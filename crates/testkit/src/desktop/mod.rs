//! The desktop harness (feature `desktop`) shared by the E2E tests (`tests/`, crate
//! `confab-e2e`) and `cargo xtask bench-ui`: what it takes to run the real app isolated on a
//! Linux desktop.
//!
//! - [`Desktop`]: a HOME with its XDG dirs, a private session bus ([`SessionBus`]) and a
//!   Secret Service on it ([`SecretService`]), the environment of a program in that session.
//! - [`Driver`]: `tauri-driver` or `WebKitWebDriver` on free ports ([`tauri_driver`] and
//!   [`webkit_webdriver`] find them).
//! - [`ProcessGroup`]: every process above runs in its own process group, killed as a whole on
//!   drop; [`ProcessGroup::wait_for_line`], [`wait_for_port`] wait for readiness with a
//!   [`Deadline`].
//!
//! Blocking and standard library only: `cargo xtask` builds this on each call and has no async
//! runtime; the async E2E harness runs these calls on tokio's blocking threads.

mod bus;
mod driver;
mod keyring;
mod process;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use crate::error::{DesktopError, DesktopResult};
pub use bus::{SessionBus, SESSION_BUS_CONFIG};
pub use driver::{tauri_driver, webkit_webdriver, Driver, DriverEnv};
pub use keyring::SecretService;
pub use process::{find_on_path, free_port, log_tail, wait_for_port, Deadline, ProcessGroup};

/// The repository root (this crate lives in `crates/testkit`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the repository root) or
/// `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// A throwaway desktop session in a HOME: its session bus and its Secret Service with a login
/// keyring in that HOME. Dropping it stops the keyring, then the bus; the HOME is the caller's
/// (kept, so the app can start again in it with the same files).
pub struct Desktop {
    // Field order is drop order: the keyring leaves the bus it is registered on first.
    keyring: SecretService,
    bus: SessionBus,
    home: PathBuf,
}

impl Desktop {
    /// Starts the bus and the Secret Service in `home` (created if missing), with
    /// `keyring_password` for the login keyring; both must be up by `deadline`.
    pub fn start(home: &Path, keyring_password: &str, deadline: &Deadline) -> DesktopResult<Self> {
        let runtime = runtime_dir(home);
        std::fs::create_dir_all(&runtime)
            .and_then(|()| {
                use std::os::unix::fs::PermissionsExt;
                // The XDG Base Directory spec has the runtime dir private to its user; the
                // keyring daemon puts its control socket there.
                std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))
            })
            .map_err(|source| DesktopError::Io {
                what: format!("creating {}", runtime.display()),
                source,
            })?;
        let bus = SessionBus::start(home, deadline)?;
        let keyring =
            SecretService::start(home, &runtime, bus.address(), keyring_password, deadline)?;
        Ok(Self {
            keyring,
            bus,
            home: home.to_path_buf(),
        })
    }

    /// The environment of a desktop program in this session: `HOME`, the XDG config, data,
    /// cache and state dirs inside it, `DBUS_SESSION_BUS_ADDRESS`, and `NO_AT_BRIDGE=1` (the
    /// accessibility bus would otherwise be activated on the private bus). `XDG_RUNTIME_DIR` is
    /// not in it: see [`Desktop::runtime_dir`].
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let h = &self.home;
        vec![
            ("HOME".into(), h.into()),
            ("XDG_CONFIG_HOME".into(), h.join(".config").into()),
            ("XDG_DATA_HOME".into(), h.join(".local/share").into()),
            ("XDG_CACHE_HOME".into(), h.join(".cache").into()),
            ("XDG_STATE_HOME".into(), h.join(".local/state").into()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.address().into()),
            ("NO_AT_BRIDGE".into(), "1".into()),
        ]
    }

    /// The keyring daemon's `XDG_RUNTIME_DIR` (`<home>/run`, mode 0700). Programs get it only if
    /// the caller adds it to [`Desktop::env`]: the E2E app runs with the caller's, as it always
    /// has, the benchmark's with this one.
    pub fn runtime_dir(&self) -> PathBuf {
        runtime_dir(&self.home)
    }

    /// The HOME.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The session bus address.
    pub fn bus_address(&self) -> &str {
        self.bus.address()
    }

    /// The pids of the bus and the keyring daemon.
    pub fn pids(&self) -> [u32; 2] {
        [self.bus.pid(), self.keyring.pid()]
    }
}

fn runtime_dir(home: &Path) -> PathBuf {
    home.join("run")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    fn alive(pid: u32) -> bool {
        Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn paths_are_found_from_the_manifest() {
        assert!(
            repo_root().join("crates/testkit/Cargo.toml").is_file(),
            "the repository root is two levels above this crate"
        );
    }

    /// Needs `dbus-daemon`, `dbus-send` and `gnome-keyring-daemon` (Debian `dbus gnome-keyring`,
    /// which `cargo xtask setup` installs); without them it fails saying which is missing.
    #[test]
    fn a_desktop_comes_up_answers_on_its_bus_and_goes_away() {
        let home = std::env::temp_dir().join(format!("confab-testkit-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let desktop = Desktop::start(
            &home,
            "testkit-keyring",
            &Deadline::after(Duration::from_secs(60)),
        )
        .expect("the bus and the keyring start");
        let env = desktop.env();
        let address = env
            .iter()
            .find(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS")
            .map(|(_, v)| v.clone());
        assert_eq!(
            address.as_deref(),
            Some(std::ffi::OsStr::new(desktop.bus_address())),
            "programs get the private bus"
        );
        assert!(
            desktop.bus_address().starts_with("unix:"),
            "the bus printed a unix address: {}",
            desktop.bus_address()
        );
        let pids = desktop.pids();
        drop(desktop);
        assert!(
            pids.iter().all(|pid| !alive(*pid)),
            "the bus and the keyring are gone once the desktop is dropped"
        );
        let kept = home.join(".local/share/keyrings").is_dir();
        let _ = std::fs::remove_dir_all(&home);
        assert!(
            kept,
            "the login keyring is a file in the HOME, kept after the drop"
        );
    }
}
