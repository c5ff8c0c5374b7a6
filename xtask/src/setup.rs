//! Installs what the demo and the test suite need, or says exactly what to run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{root, run_cmd};

/// What the setup is for: the demo needs less than the test suite.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Demo,
    Test,
}

/// Debian packages that build and run the Tauri 2 app (WebKitGTK 4.1) and its tests.
const APT_BUILD: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libssl-dev",
    "libwebkit2gtk-4.1-dev",
    "libjavascriptcoregtk-4.1-dev",
    "libgtk-3-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "libsoup-3.0-dev",
    // Secret Service client (keyring crate) and the D-Bus session bus single-instance needs.
    "libdbus-1-dev",
    "libsecret-1-dev",
    "dbus",
    "dbus-x11",
    // deep-link registration on Linux writes a .desktop file and mimeapps.list.
    "desktop-file-utils",
    "xdg-utils",
];

/// Extra Debian packages for the test suite: virtual display, WebDriver, a real Secret Service,
/// Redis and nginx for the Centrifugo cluster.
const APT_TEST: &[&str] = &[
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "gnome-keyring",
    "python3",
    "python3-venv",
    // `gio open` delivers links in the package install test (xdg-open's fallback on GNOME).
    "libglib2.0-bin",
    // The Centrifugo cluster tests: Redis as the nodes' engine, nginx as their load balancer
    // (the tests start their own on free ports; the packages' services are not used).
    "redis-server",
    "nginx",
];

/// Oldest Node.js major version the test identity provider (oidc-provider 9) runs on here.
const NODE_MIN_MAJOR: u32 = 20;

/// tauri-driver version, pinned to Tauri 2 (crates.io also carries 3.0 alphas).
const TAURI_DRIVER_VERSION: &str = "2.1.0";

/// Centrifugo, built from its Go module (the tests run the scale-out path against it).
const CENTRIFUGO_MODULE: &str = "github.com/centrifugal/centrifugo/v6";
/// The Centrifugo release the project is tested with.
const CENTRIFUGO_VERSION: &str = "v6.9.1";

/// Where project-local tools (tauri-driver, centrifugo) are installed.
pub(crate) fn tools_dir() -> PathBuf {
    root().join("target").join("tools")
}

pub(crate) fn run(purpose: Purpose) -> Result<()> {
    apt(purpose)?;
    node()?;
    npm_ci("tests/idp", NpmMode::Ci)?;
    if purpose == Purpose::Test {
        npm_ci("tests/peers", NpmMode::Ci)?;
        python_venv("tests/peers")?;
        python_venv("tests/backends/django")?;
        tauri_driver()?;
        centrifugo()?;
        tauri_cli()?;
    }
    Ok(())
}

/// The Tauri CLI pinned in `xtask/package.json` (npm ships the prebuilt binary), for bundling.
pub(crate) fn tauri_cli() -> Result<()> {
    // `npm install`, not `npm ci`: npm records only this platform's prebuilt CLI package in the
    // lockfile and `npm ci` then calls the lockfile out of sync; `npm install` honours the pinned
    // versions in the lockfile as they are (and leaves it unchanged).
    npm_ci("xtask", NpmMode::Install).context(
        "installing the pinned Tauri CLI (npm install in xtask/; needs Node.js and npm)",
    )?;
    let cli = tauri_cli_path();
    if !cli.exists() {
        bail!(
            "npm ci in xtask/ did not install the Tauri CLI at {}",
            cli.display()
        );
    }
    Ok(())
}

/// Where `npm ci` in `xtask/` puts the Tauri CLI.
pub(crate) fn tauri_cli_path() -> PathBuf {
    root()
        .join("xtask")
        .join("node_modules")
        .join(".bin")
        .join("tauri")
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn apt(purpose: Purpose) -> Result<()> {
    if !std::path::Path::new("/usr/bin/dpkg-query").exists() {
        eprintln!(
            "xtask: not a Debian/Ubuntu system; install the equivalents of: {} {}",
            APT_BUILD.join(" "),
            APT_TEST.join(" ")
        );
        return Ok(());
    }
    let mut wanted: Vec<&str> = APT_BUILD.to_vec();
    if purpose == Purpose::Test {
        wanted.extend_from_slice(APT_TEST);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages. Install them, then run this command again:\n\n    \
             sudo apt-get update && sudo apt-get install -y {}\n",
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    run_cmd(Command::new("apt-get").arg("update").arg("-qq"))?;
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing),
    )
}

fn node() -> Result<()> {
    let out = Command::new("node").arg("--version").output();
    let version = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => bail!(
            "Node.js {NODE_MIN_MAJOR} or newer is needed for the local identity provider \
             (tests/idp, oidc-provider) and was not found. Install Node.js {NODE_MIN_MAJOR}+ \
             (with npm) and run this command again"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < NODE_MIN_MAJOR {
        bail!(
            "Node.js {version} found, but the local identity provider needs Node.js \
             {NODE_MIN_MAJOR} or newer (Debian's own nodejs package is older). Install Node.js \
             {NODE_MIN_MAJOR}+ and run this command again"
        );
    }
    Ok(())
}

/// How to install a folder's npm packages.
#[derive(Clone, Copy)]
enum NpmMode {
    /// `npm ci`: exactly the lockfile.
    Ci,
    /// `npm install`: the lockfile's pinned versions, tolerating platform-only entries.
    Install,
}

/// Installs with `npm` when the lockfile is newer than the installed tree (or nothing is installed).
fn npm_ci(dir: &str, mode: NpmMode) -> Result<()> {
    let dir = root().join(dir);
    let lock = dir.join("package-lock.json");
    if !lock.exists() {
        return Ok(());
    }
    let marker = dir.join("node_modules").join(".package-lock.json");
    let fresh = match (marker.metadata(), lock.metadata()) {
        (Ok(m), Ok(l)) => match (m.modified(), l.modified()) {
            (Ok(m), Ok(l)) => m >= l,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    let verb = match mode {
        NpmMode::Ci => "ci",
        NpmMode::Install => "install",
    };
    run_cmd(Command::new("npm").current_dir(&dir).args([
        verb,
        "--no-audit",
        "--no-fund",
        "--engine-strict=false",
    ]))
}

/// A virtualenv at `<dir>/.venv` with `<dir>/requirements.txt` installed (`dir` relative to the
/// repository root): centrifuge-python for the protocol conformance tests (`tests/peers`), and
/// Django, DRF, SimpleJWT and gunicorn for the Django test backend (`tests/backends/django`).
/// A stamp file holding the installed requirements makes a second run free until they change.
fn python_venv(dir: &str) -> Result<()> {
    let dir = root().join(dir);
    let req = dir.join("requirements.txt");
    if !req.exists() {
        return Ok(());
    }
    let venv = dir.join(".venv");
    let py = venv.join("bin").join("python");
    let stamp = venv.join(".requirements-installed");
    let up_to_date = std::fs::read(&stamp).ok() == std::fs::read(&req).ok();
    if py.exists() && up_to_date {
        return Ok(());
    }
    if !py.exists() {
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv)).with_context(|| {
            format!(
                "creating the Python venv {} (Debian: python3-venv)",
                venv.display()
            )
        })?;
    }
    run_cmd(
        Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&req),
    )
    .with_context(|| format!("installing {} into its venv", req.display()))?;
    std::fs::copy(&req, &stamp).context("recording installed requirements")?;
    Ok(())
}

/// Whether `bin` is the Centrifugo build of [`CENTRIFUGO_VERSION`] (`go version -m` names the
/// module version a binary was built from; `centrifugo version` says v0.0.0 for a `go install`).
fn centrifugo_is_current(bin: &std::path::Path) -> bool {
    Command::new("go")
        .arg("version")
        .arg("-m")
        .arg(bin)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                let mut f = l.split_whitespace();
                f.next() == Some("mod")
                    && f.next() == Some(CENTRIFUGO_MODULE)
                    && f.next() == Some(CENTRIFUGO_VERSION)
            })
        })
        .unwrap_or(false)
}

/// Centrifugo [`CENTRIFUGO_VERSION`], built with `go install` into target/tools/bin (from the
/// Go module proxy; nothing else is downloaded). Kept when the binary there is that version.
pub(crate) fn centrifugo() -> Result<()> {
    let bin_dir = tools_dir().join("bin");
    let bin = bin_dir.join("centrifugo");
    if Command::new("go").arg("version").output().is_err() {
        bail!(
            "the Go toolchain (go 1.26) is needed to build Centrifugo {CENTRIFUGO_VERSION}: \
             install Go, then run this command again"
        );
    }
    if bin.exists() && centrifugo_is_current(&bin) {
        return Ok(());
    }
    run_cmd(
        Command::new("go")
            .arg("install")
            .arg(format!("{CENTRIFUGO_MODULE}@{CENTRIFUGO_VERSION}"))
            .env("GOBIN", &bin_dir),
    )?;
    if !centrifugo_is_current(&bin) {
        bail!(
            "go install did not leave Centrifugo {CENTRIFUGO_VERSION} at {}",
            bin.display()
        );
    }
    Ok(())
}

/// tauri-driver (WebDriver proxy for Tauri apps), built from crates.io into target/tools.
fn tauri_driver() -> Result<()> {
    let bin = tools_dir().join("bin").join("tauri-driver");
    if bin.exists() {
        return Ok(());
    }
    run_cmd(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                "--locked",
                "--quiet",
                "tauri-driver",
                "--version",
            ])
            .arg(format!("={TAURI_DRIVER_VERSION}"))
            .arg("--root")
            .arg(tools_dir()),
    )
}
