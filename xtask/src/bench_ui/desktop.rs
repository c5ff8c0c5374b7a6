//! One app start's desktop session, on the harness the E2E tests use
//! (`confab_testkit::desktop`): a fresh HOME with its own session bus and Secret Service, and
//! `WebKitWebDriver` in it, which starts the app. What is the benchmark's own: the keyring
//! password, the app's `XDG_RUNTIME_DIR` inside the HOME, and the HOME removed once the
//! session is over.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use confab_testkit::desktop::{self as harness, Deadline, Driver, DriverEnv};

/// The password of each run's throwaway login keyring.
const KEYRING_PASSWORD: &str = "confab-bench-keyring";
/// How long the bus and the keyring may take to come up.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// HOME, bus and keyring of one run; the processes are stopped and the HOME removed on drop.
pub(crate) struct Desktop {
    // Field order is drop order: the keyring and the bus stop before the HOME goes.
    session: harness::Desktop,
    _home: RemoveOnDrop,
}

impl Desktop {
    /// Creates `home` (which must not exist) and starts the bus and the keyring in it.
    pub(crate) fn start(home: &Path) -> Result<Self> {
        // Made first, so a failed start removes what it left in the HOME as well.
        let remove = RemoveOnDrop(home.to_path_buf());
        let session =
            harness::Desktop::start(home, KEYRING_PASSWORD, &Deadline::after(SESSION_TIMEOUT))?;
        Ok(Self {
            session,
            _home: remove,
        })
    }

    /// The environment of a desktop program in this session, with `XDG_RUNTIME_DIR` (the
    /// keyring daemon's, inside the HOME).
    pub(crate) fn env(&self) -> Vec<(OsString, OsString)> {
        let mut env = self.session.env();
        env.push(("XDG_RUNTIME_DIR".into(), self.session.runtime_dir().into()));
        env
    }

    /// The HOME.
    pub(crate) fn home(&self) -> &Path {
        self.session.home()
    }
}

/// Starts `WebKitWebDriver` (`program`) with the environment `set` (after removing `clear`),
/// writing to `log`; returns once it listens. A new session on it starts the app.
pub(crate) fn start_webdriver(
    program: &Path,
    set: &[(OsString, OsString)],
    clear: &[&str],
    log: &Path,
) -> Result<Driver> {
    Ok(Driver::start_webkit(
        program,
        DriverEnv { clear, set },
        log,
        &Deadline::after(super::START_TIMEOUT),
    )?)
}

/// Removes a directory tree on drop.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
