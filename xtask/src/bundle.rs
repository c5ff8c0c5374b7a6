//! `cargo xtask bundle [--debug]`: the app and its Debian package, built with the Tauri CLI.
//!
//! The CLI is the npm package `@tauri-apps/cli`, pinned in `xtask/package.json` and its lockfile
//! (the registry package carries the prebuilt CLI binary; `cargo install tauri-cli` works too
//! but compiles for about ten minutes). The app package's manifest is the root `Cargo.toml`,
//! beside the root `tauri.conf.json`, which is what lets the CLI bundle from the repository root.
//!
//! - release (default): `tauri build --bundles deb` — a size-optimized ([`SIZE_PROFILE`]),
//!   stripped binary with the `custom-protocol` feature, and
//!   `target/release/bundle/deb/Confab_<version>_<arch>.deb`.
//! - `--debug`: `cargo build -p confab-app`, then `tauri bundle --debug --bundles deb`, which
//!   packages that very binary. This is the package the install test uses: only debug builds
//!   carry the `CONFAB_TEST_OPEN_URL_FILE` hook through which the test learns the authorization
//!   URL, and packaging the binary the other E2E tests already built costs seconds, not a second
//!   compile of Tauri with another feature set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use crate::{cargo, root, run_cmd, setup};

/// File name prefix of the package (`productName` in tauri.conf.json).
const PRODUCT_NAME: &str = "Confab";
/// The app's binary (`mainBinaryName` in tauri.conf.json).
const BINARY_NAME: &str = "confab";

/// What `bundle` produced.
pub(crate) struct Bundle {
    /// The app binary that was packaged.
    pub(crate) binary: PathBuf,
    /// The `.deb`.
    pub(crate) deb: PathBuf,
}

/// Builds the app and its `.deb` (release unless `debug`), prints paths and sizes.
pub(crate) fn run(debug: bool) -> Result<Bundle> {
    if debug {
        run_cmd(cargo().args(["build", "-p", "confab-app", "--bin", BINARY_NAME]))?;
        return package_debug_build();
    }
    setup::tauri_cli()?;
    let started = SystemTime::now();
    let mut build = tauri();
    build.args(["build", "--bundles", "deb", "--ci"]);
    for (key, value) in SIZE_PROFILE {
        // An explicit setting in the caller's environment wins.
        if std::env::var_os(key).is_none() {
            build.env(key, value);
        }
    }
    run_cmd(&mut build)?;
    finish("release", started)
}

/// Release settings for the shipped binary, on top of the root `[profile.release]` (which
/// `cargo bench` inherits, so it stays as it is): optimize for size, whole-program LTO, one
/// codegen unit. Measured here: 19.7 MB -> 11.9 MB stripped, .deb 7.7 MB -> 5.2 MB
/// (docs/benchmarks.md); the price is a longer final link.
pub(crate) const SIZE_PROFILE: &[(&str, &str)] = &[
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s"),
    ("CARGO_PROFILE_RELEASE_LTO", "fat"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
];

/// Packages the debug binary that is already built (`cargo xtask test` has just built it with
/// the other binaries; building it alone again could unify features differently and recompile).
pub(crate) fn package_debug_build() -> Result<Bundle> {
    setup::tauri_cli()?;
    let started = SystemTime::now();
    run_cmd(tauri().args(["bundle", "--debug", "--bundles", "deb", "--ci"]))?;
    finish("debug", started)
}

/// Checks that the CLI wrote the binary and the package now; prints paths and sizes.
fn finish(profile: &str, started: SystemTime) -> Result<Bundle> {
    let target = root().join("target").join(profile);
    let bundle = Bundle {
        binary: target.join(BINARY_NAME),
        deb: target.join("bundle").join("deb").join(format!(
            "{PRODUCT_NAME}_{}_{}.deb",
            version(),
            deb_arch()?
        )),
    };
    if !bundle.binary.is_file() {
        bail!("the app binary {} is missing", bundle.binary.display());
    }
    let written = bundle
        .deb
        .metadata()
        .and_then(|m| m.modified())
        .with_context(|| format!("the Tauri CLI did not produce {}", bundle.deb.display()))?;
    if written < started {
        bail!(
            "{} is older than this run: the Tauri CLI wrote its package somewhere else",
            bundle.deb.display()
        );
    }
    eprintln!("xtask: {profile} build of Confab:");
    eprintln!("    binary   {}", describe(&bundle.binary)?);
    eprintln!("    package  {}", describe(&bundle.deb)?);
    Ok(bundle)
}

/// The pinned Tauri CLI, run from the repository root (where tauri.conf.json is).
fn tauri() -> Command {
    let mut c = Command::new(setup::tauri_cli_path());
    c.current_dir(root());
    c
}

/// The workspace version, which is the app's (`version.workspace = true`; tauri.conf.json has
/// no version of its own, so the CLI takes it from Cargo too).
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Debian's name for this machine's architecture, as the CLI puts it into the file name.
fn deb_arch() -> Result<&'static str> {
    Ok(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "riscv64" => "riscv64",
        other => bail!("no Debian architecture name known for {other}"),
    })
}

/// `path (N bytes, x.y MB = z.w MiB)`.
fn describe(path: &Path) -> Result<String> {
    let bytes = path
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    // Sizes are for people: the precision of f64 is plenty.
    let mb = bytes as f64 / 1e6;
    let mib = bytes as f64 / (1024.0 * 1024.0);
    Ok(format!(
        "{} ({bytes} bytes, {mb:.1} MB = {mib:.1} MiB)",
        path.display()
    ))
}
