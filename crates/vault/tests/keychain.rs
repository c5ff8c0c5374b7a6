//! The keychain key source against a real Secret Service: a private `dbus-daemon` session bus and
//! `gnome-keyring-daemon` (secrets component, a throwaway login keyring unlocked with a test password), both
//! started by this test in temporary directories so the developer's own keyring is never touched.
//!
//! This file holds a single test on purpose: it points `DBUS_SESSION_BUS_ADDRESS` (process-wide)
//! at the private bus, which is only safe while no other test runs in the same process.
//! Needs the Debian packages `dbus` and `gnome-keyring` (installed by `cargo xtask test`); without
//! them the test fails with a message saying so.

#![cfg(all(unix, not(target_os = "macos")))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_vault::{
    AccountId, Error, KeySource, KeychainKey, SecretStore, SecretString, StrongholdStore,
    KEYCHAIN_ACCOUNT, KEYCHAIN_SERVICE,
};

/// Kills and reaps a daemon we started when the test ends, however it ends.
struct Daemon {
    name: &'static str,
    child: Child,
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

fn read(store: &StrongholdStore, account: &AccountId) -> Option<String> {
    store
        .get(account, "refresh_token")
        .expect("get")
        .map(|s| s.expose_secret().to_owned())
}

#[test]
fn keychain_key_source_against_a_real_secret_service() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut bus_daemon, bus) = start_session_bus(tmp.path());
    let mut keyring_daemon = start_gnome_keyring(&bus, tmp.path());
    // Only this test runs in this binary, so changing the process environment is race-free.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &bus);

    // Wait (with a deadline) until the Secret Service answers: the first keychain read then
    // reports "no entry" instead of "unavailable".
    let probe = KeychainKey::new("dev.confab.chat.test-probe", "probe");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe.delete() {
            Ok(()) => break,
            Err(e) => {
                for d in [&mut bus_daemon, &mut keyring_daemon] {
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

    let path = tmp.path().join("vault").join("vault.stronghold");
    let account = AccountId::new("https://idp.example", "alice");
    let token = "rt-keychain-canary-93f1";

    // First use: the key is created in the keychain (default service/account names).
    {
        let store = StrongholdStore::open_or_create(&path, &KeySource::keychain())
            .expect("create a keychain-protected vault");
        store
            .put(&account, "refresh_token", &SecretString::from(token))
            .expect("put");
    }
    let entry = keyring::Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT).expect("entry");
    let stored = entry
        .get_password()
        .expect("the vault key is in the keychain");
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .expect("the keychain holds base64");
    assert_eq!(key.len(), 32, "the keychain holds 32 random key bytes");

    // Restart: the same key opens the vault.
    let store = StrongholdStore::open(&path, &KeySource::keychain()).expect("reopen");
    assert_eq!(
        read(&store, &account).as_deref(),
        Some(token),
        "the keychain key reopens the vault"
    );
    drop(store);

    // Neither the key nor the secret is on disk in plain text.
    for entry in std::fs::read_dir(path.parent().expect("dir")).expect("read dir") {
        let file = entry.expect("entry").path();
        let bytes = std::fs::read(&file).expect("read");
        for needle in [token.as_bytes(), key.as_slice(), stored.trim().as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{file:?} must contain neither the secret nor the vault key"
            );
        }
    }

    // A replaced keychain key is a wrong key; the vault stays as it is.
    entry
        .set_password("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .expect("replace key");
    let err = StrongholdStore::open(&path, &KeySource::keychain()).expect_err("wrong key");
    assert!(
        matches!(err, Error::WrongKey),
        "a foreign keychain key is WrongKey, got {err:?}"
    );
    entry.set_password(&stored).expect("restore key");

    // A deleted keychain entry is reported as such, never answered with a fresh key.
    KeychainKey::default().delete().expect("delete the key");
    let err = StrongholdStore::open_or_create(&path, &KeySource::keychain()).expect_err("no key");
    assert!(
        matches!(err, Error::KeyMissing),
        "a missing keychain key is KeyMissing, got {err:?}"
    );
    assert!(
        matches!(entry.get_password(), Err(keyring::Error::NoEntry)),
        "opening an existing vault never creates a new keychain key"
    );
    entry.set_password(&stored).expect("restore key");
    let store = StrongholdStore::open(&path, &KeySource::keychain()).expect("reopen");
    assert_eq!(
        read(&store, &account).as_deref(),
        Some(token),
        "with the key restored the vault opens"
    );
    drop(store);

    // No Secret Service reachable: a typed error the app turns into the passphrase unlock screen.
    drop(keyring_daemon);
    drop(bus_daemon);
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", tmp.path().join("no-bus-here").display()),
    );
    let err = StrongholdStore::open(&path, &KeySource::keychain()).expect_err("no keychain");
    assert!(
        matches!(err, Error::KeychainUnavailable(_)),
        "an unreachable keychain is KeychainUnavailable, got {err:?}"
    );
    assert!(
        path.exists(),
        "an unreachable keychain leaves the vault in place"
    );
}
