//! Project commands. The README's quick start is `cargo xtask demo` and `cargo xtask test`.
//!
//! Both install what is missing first (Debian packages when run as root, otherwise the exact
//! `sudo apt-get install ...` line is printed; `npm ci` for the test peers; Python venvs for
//! centrifuge-python and the Django test backend; `tauri-driver` into `target/tools`), so they
//! work on a fresh machine.
//! `cargo xtask bundle [--debug]` builds the app and its Debian package (see bundle.rs).
//! `cargo xtask bench-ui` measures the release app's start time and memory next to a bare Tauri
//! hello-world (see bench_ui/mod.rs).

mod bench_ui;
mod bundle;
mod setup;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Confab project commands")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what the demo and the tests need (apt packages, npm/pip packages, tauri-driver).
    Setup,
    /// Run the app against the embedded default: local identity provider + reference server.
    Demo {
        /// The scale-out shape instead: the app connects to a Centrifugo v6.9.1 node
        /// (deploy/centrifugo/config.json) with confab-server as its backend.
        #[arg(long)]
        centrifugo: bool,
    },
    /// Run the whole test suite (installs what it needs first).
    Test {
        /// Extra arguments passed to `cargo test` (after `--workspace`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Formatting and clippy with warnings as errors.
    Lint,
    /// Build the app and its Debian package with the pinned Tauri CLI; print paths and sizes.
    Bundle {
        /// Package a debug build (it keeps the test hook the package install test needs).
        #[arg(long)]
        debug: bool,
    },
    /// UI benchmarks of the release app next to a bare Tauri hello-world (docs/benchmarks.md).
    BenchUi(bench_ui::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Setup => setup::run(setup::Purpose::Test),
        Cmd::Demo { centrifugo } => demo(centrifugo),
        Cmd::Test { args } => test(&args),
        Cmd::Lint => lint(),
        Cmd::Bundle { debug } => bundle::run(debug).map(|_| ()),
        Cmd::BenchUi(opts) => bench_ui::run(&opts),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (the parent of this crate's directory).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

fn test(args: &[String]) -> Result<()> {
    setup::run(setup::Purpose::Test)?;
    // The E2E tests launch the real app binary and the reference server binary.
    run_cmd(cargo().args(["build", "-p", "confab-app", "-p", "confab-server", "--bins"]))?;
    // The package install test (tests/tests/deb_install.rs) installs this .deb of that binary.
    let deb = bundle::package_debug_build()?.deb;
    let mut cmd = if has_display() {
        cargo()
    } else {
        // GUI tests need an X server: run the whole suite inside a virtual one.
        let mut c = Command::new("xvfb-run");
        c.current_dir(root())
            .args(["-a", "-s", "-screen 0 1280x960x24"])
            .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c
    };
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(args);
    cmd.env("CONFAB_TOOLS_DIR", setup::tools_dir());
    cmd.env("CONFAB_DEB", deb);
    run_tests_with_summary(&mut cmd)
}

/// Runs `cargo test`, passing its output through, and closes with one line totalling every test
/// binary's `test result:` line (cargo's own last line is usually an empty doc-test run).
fn run_tests_with_summary(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {shown}"))?;
    let out = child.stdout.take().context("cargo test: no stdout")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    let stdout = std::io::stdout();
    for line in BufReader::new(out).lines() {
        let line = line.context("reading cargo test output")?;
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
            ignored += count_before(rest, " ignored");
        }
        let _ = writeln!(stdout.lock(), "{line}");
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}

/// The number just before `label` in a `test result:` line (`ok. 3 passed; 0 failed; ...`).
fn count_before(s: &str, label: &str) -> u64 {
    s.find(label)
        .and_then(|i| s[..i].rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn lint() -> Result<()> {
    run_cmd(cargo().args(["fmt", "--all", "--check"]))?;
    run_cmd(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// A child process killed when dropped, so Ctrl-C or an error never leaves servers behind.
struct Guard(Child, &'static str);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        eprintln!("xtask: stopped {}", self.1);
    }
}

/// 32 random hex characters (a secret for one demo run).
fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Waits (30 s at most) until something listens on 127.0.0.1:`port`.
fn wait_listening(port: &str, what: &str) -> Result<()> {
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 30 s (its log is in target/demo)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// Waits for `prefix` on the child's stdout, with a deadline; returns the rest of that line.
fn wait_ready(child: &mut Child, prefix: &str, what: &str) -> Result<String> {
    use std::io::{BufRead, BufReader};
    let out = child
        .stdout
        .take()
        .with_context(|| format!("{what}: no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if !sent && line.starts_with(&prefix) {
                let _ = tx.send(line[prefix.len()..].trim().to_owned());
                sent = true;
            } else {
                println!("{line}");
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            return Ok(line);
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before it was ready");
        }
        if Instant::now() > deadline {
            bail!("{what} did not print its ready line within 60 s");
        }
    }
}

fn demo(centrifugo: bool) -> Result<()> {
    setup::run(setup::Purpose::Demo)?;
    if centrifugo {
        setup::centrifugo()?;
    }
    if !has_display() {
        bail!(
            "no display found (DISPLAY is not set). Confab is a desktop app: run this on a desktop \
             session, or under a virtual display with `xvfb-run -a cargo xtask demo`"
        );
    }
    run_cmd(cargo().args(["build", "-p", "confab-app", "-p", "confab-server", "--bins"]))?;
    let target = root().join("target").join("debug");

    let idp_port = std::env::var("CONFAB_DEMO_IDP_PORT").unwrap_or_else(|_| "8400".into());
    let chat_port = std::env::var("CONFAB_DEMO_CHAT_PORT").unwrap_or_else(|_| "8401".into());
    let mut idp = Command::new("node")
        .arg(root().join("tests/idp/server.mjs"))
        .env("IDP_PORT", &idp_port)
        .env("IDP_MODE", "interactive")
        .stdout(Stdio::piped())
        .spawn()
        .context("could not start the identity provider (node tests/idp/server.mjs)")?;
    let issuer_line = wait_ready(&mut idp, "CONFAB_IDP_READY", "identity provider")?;
    let _idp = Guard(idp, "identity provider");
    let issuer = issuer_line
        .strip_prefix("issuer=")
        .unwrap_or(&issuer_line)
        .to_owned();
    eprintln!("xtask: identity provider at {issuer}");

    let data = root().join("target").join("demo");
    std::fs::create_dir_all(&data)?;
    let centrifugo_port =
        std::env::var("CONFAB_DEMO_CENTRIFUGO_PORT").unwrap_or_else(|_| "8402".into());
    // Secrets of this run only (loopback, never stored).
    let (proxy_secret, api_key) = (random_hex()?, random_hex()?);
    let mut server_cmd = Command::new(target.join("confab-server"));
    server_cmd
        .args(["--issuer", &issuer, "--audience", "confab-chat"])
        .arg("--db")
        .arg(data.join("chat.sqlite3"))
        .args(["--listen", &format!("127.0.0.1:{chat_port}")])
        .stdout(Stdio::piped());
    if centrifugo {
        server_cmd
            .env("CONFAB_CENTRIFUGO_PROXY_SECRET", &proxy_secret)
            .env(
                "CONFAB_CENTRIFUGO_API_URL",
                format!("http://127.0.0.1:{centrifugo_port}/api"),
            )
            .env("CONFAB_CENTRIFUGO_API_KEY", &api_key);
    }
    let mut server = server_cmd
        .spawn()
        .context("could not start confab-server")?;
    let chat_line = wait_ready(&mut server, "CONFAB_SERVER_READY", "chat server")?;
    let _server = Guard(server, "chat server");
    let chat_url = chat_line
        .strip_prefix("url=")
        .unwrap_or(&chat_line)
        .to_owned();
    eprintln!("xtask: chat server at {chat_url}");

    let mut app = Command::new(target.join("confab"));
    app.env("CONFAB_ISSUER", &issuer)
        .env("CONFAB_CHAT_URL", &chat_url);
    let _centrifugo = if centrifugo {
        let backend = format!("http://127.0.0.1:{chat_port}");
        let log = std::fs::File::create(data.join("centrifugo.log"))?;
        let header = serde_json::json!({ "X-Confab-Proxy-Secret": proxy_secret }).to_string();
        let node = Command::new(setup::tools_dir().join("bin").join("centrifugo"))
            .arg("-c")
            .arg(root().join("deploy/centrifugo/config.json"))
            .env("CENTRIFUGO_HTTP_SERVER_PORT", &centrifugo_port)
            .env(
                "CENTRIFUGO_CLIENT_TOKEN_JWKS_PUBLIC_ENDPOINT",
                format!("{backend}/api/chat/jwks"),
            )
            // The backend is on this machine over plain http (the file's is https).
            .env(
                "CENTRIFUGO_CLIENT_TOKEN_INSECURE_SKIP_JWKS_ENDPOINT_SAFETY_CHECK",
                "true",
            )
            .env(
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_ENDPOINT",
                format!("{backend}/api/centrifugo/subscribe"),
            )
            .env(
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_HTTP_STATIC_HEADERS",
                &header,
            )
            .env(
                "CENTRIFUGO_RPC_PROXY_ENDPOINT",
                format!("{backend}/api/centrifugo/rpc"),
            )
            .env("CENTRIFUGO_RPC_PROXY_HTTP_STATIC_HEADERS", &header)
            .env("CENTRIFUGO_HTTP_API_KEY", &api_key)
            .current_dir(&data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("could not start Centrifugo (cargo xtask setup builds it)")?;
        let node = Guard(node, "Centrifugo");
        wait_listening(&centrifugo_port, "Centrifugo")?;
        let url = format!("ws://127.0.0.1:{centrifugo_port}/connection/websocket");
        eprintln!("xtask: Centrifugo at {url}, confab-server as its backend");
        app.env("CONFAB_CHAT_URL", &url).env(
            "CONFAB_CHAT_TOKEN_ENDPOINT",
            format!("{backend}/api/chat/token"),
        );
        Some(node)
    } else {
        None
    };

    eprintln!("xtask: starting Confab; sign in as alice / alice-password or bob / bob-password");
    let status = app.status().context("could not start the Confab app")?;
    if !status.success() {
        bail!("Confab exited with {status}");
    }
    Ok(())
}
