//! `cargo xtask bench-ui`: start time and idle memory of the release app next to a bare Tauri 2
//! hello-world built the same way (bench/hello), then the chat figures (see chat.rs), in one run.
//! Figures go to docs/benchmarks.md, section "Chat UI". Needs what `cargo xtask setup` installs
//! (it does not run setup itself: `npm ci` would replace node_modules under test runs that may
//! be using them).
//!
//! Method (the same for both apps):
//! - Both are built in release with the size settings of `cargo xtask bundle` and the
//!   `custom-protocol` feature, so the page is embedded as in a shipped build; each package is
//!   built on its own, so the hello-world gets only the features it asks for.
//! - Each start runs in a fresh HOME (XDG dirs, data dir) with its own D-Bus session bus and
//!   gnome-keyring Secret Service (the E2E tests' harness, `confab_testkit::desktop`; see
//!   desktop.rs), so nothing from an earlier start is reused: "warm disk cache, cold process".
//!   One unmeasured warm-up start per app first; then the apps alternate, so background load on
//!   the shared machine hits both alike.
//! - The app is started by `WebKitWebDriver` (as tauri-driver does, with
//!   `TAURI_WEBVIEW_AUTOMATION=true`); the clock starts just before the new-session request.
//!   "Interactive" is the moment `#sign-in` (Confab's Sign in button; the hello-world's page has
//!   a button with that id) is displayed and enabled **and** the page has painted, on the
//!   page's own clock: the later of the time the button was ready and the page's first
//!   contentful paint (`performance` paint entry). When the button was ready comes from the
//!   page: the hello-world's button is in its static HTML (ready at DOMContentLoaded), Confab
//!   marks the first showing of its sign-in screen (`performance.mark('confab:sign-in')`), and
//!   otherwise a MutationObserver installed at the first look of a script polled into the page
//!   every [`POLL`] notes it. So WebDriver's round trips are not counted, and both apps are
//!   credited the same way (see [`READY_SCRIPT`]).
//! - Idle memory: after interactive, [`Options::idle`] of idling (a fixed wait: this is a
//!   benchmark, not a test), then PSS and RSS summed over the app process and all its
//!   descendants (WebKitWebProcess, WebKitNetworkProcess, their bwrap sandboxes).

mod chat;
mod desktop;
mod procs;
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use confab_testkit::desktop::{log_tail, webkit_webdriver};
use serde_json::Value;

use crate::{bundle, cargo, has_display, root, run_cmd, wait_ready, Guard};
use desktop::{start_webdriver, Desktop};
use procs::Memory;

/// Interval between readiness polls of the page.
const POLL: Duration = Duration::from_millis(10);
/// How long one start may take before the run fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What `cargo xtask bench-ui` was asked for.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Measured starts per app (after one warm-up start each).
    #[arg(long, default_value_t = 10)]
    pub(crate) runs: usize,
    /// Idle period after the interactive screen before memory is read, in seconds.
    #[arg(long = "idle-secs", default_value = "5", value_parser = parse_secs)]
    pub(crate) idle: Duration,
    /// Use the binaries already built (skip the cargo builds).
    #[arg(long)]
    pub(crate) no_build: bool,
    /// Only the start and memory comparison (skip the chat measurements).
    #[arg(long)]
    pub(crate) no_chat: bool,
}

fn parse_secs(s: &str) -> std::result::Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("{s}: {e}"))
}

/// An app under measurement.
struct App {
    name: &'static str,
    binary: PathBuf,
    /// `#sign-in` is in the page's static HTML, displayed from the start (the hello-world): when
    /// it is ready at the first look, it was ready at DOMContentLoaded. Otherwise (Confab) the
    /// button counts as ready only at the page's `confab:sign-in` mark, which ui/app.js sets
    /// when it shows the sign-in screen with its handlers wired (the screen itself can be
    /// visible earlier, in the page's first frame).
    static_sign_in: bool,
}

/// One measured start.
#[derive(Debug, Clone, Copy)]
struct Start {
    /// When the page became interactive, and its milestones.
    ready: Ready,
    /// Clock start to the new-session reply (the app is up, its WebView exists).
    session_ms: f64,
    /// Memory after the idle period, summed over the app's processes.
    memory: Memory,
    /// How many processes that sum covers.
    processes: usize,
}

/// Entry point.
pub(crate) fn run(opts: &Options) -> Result<()> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let target = root().join("target").join("release");
    let apps = [
        App {
            name: "hello-world",
            binary: target.join("hello-tauri"),
            static_sign_in: true,
        },
        App {
            name: "Confab",
            binary: target.join("confab"),
            static_sign_in: false,
        },
    ];
    if !opts.no_build {
        build()?;
    }
    for app in &apps {
        if !app.binary.is_file() {
            bail!(
                "{} is missing: run without --no-build",
                app.binary.display()
            );
        }
    }
    if !has_display() {
        // A desktop app needs an X server: measure inside a virtual one (Mesa software
        // rendering, like CI), in this same program.
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        return run_cmd(
            Command::new("xvfb-run")
                .args(["-a", "-s", "-screen 0 1280x960x24"])
                .arg(exe)
                .args(["bench-ui", "--no-build", "--runs"])
                .arg(opts.runs.to_string())
                .arg("--idle-secs")
                .arg(opts.idle.as_secs().to_string())
                .args(opts.no_chat.then_some("--no-chat")),
        );
    }
    measure(&apps, opts)
}

/// Builds both apps in release, like a shipped build (see the module doc), and the reference
/// server (debug, as the tests use it; the chat figures time the app, not the server).
fn build() -> Result<()> {
    run_cmd(cargo().args(["build", "-p", "confab-server", "--bin", "confab-server"]))?;
    for (package, bin) in [
        ("confab-app", "confab"),
        ("confab-bench-hello", "hello-tauri"),
    ] {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "-p", package, "--bin", bin])
            .args(["--features", "custom-protocol"]);
        for (key, value) in bundle::SIZE_PROFILE {
            if std::env::var_os(key).is_none() {
                cmd.env(key, value);
            }
        }
        run_cmd(&mut cmd)?;
    }
    Ok(())
}

fn measure(apps: &[App], opts: &Options) -> Result<()> {
    let webdriver = webkit_webdriver()?;
    let load_before = loadavg();

    let scratch = root().join("target").join("bench-ui");
    std::fs::create_dir_all(&scratch)?;
    // Confab's sign-in screen needs its identity provider's discovery document.
    let mut idp = Command::new("node")
        .arg(root().join("tests/idp/server.mjs"))
        .env("IDP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(scratch.join("idp.log"))?)
        .spawn()
        .context("could not start the identity provider (node tests/idp/server.mjs; run cargo xtask setup first)")?;
    let issuer_line = wait_ready(&mut idp, "CONFAB_IDP_READY", "identity provider")?;
    let _idp = Guard(idp, "identity provider");
    let issuer = issuer_line
        .strip_prefix("issuer=")
        .unwrap_or(&issuer_line)
        .to_owned();

    let mut results: Vec<Vec<Start>> = apps.iter().map(|_| Vec::new()).collect();
    for round in 0..=opts.runs {
        for (i, app) in apps.iter().enumerate() {
            let home = scratch.join(format!("{}-{round}", app.name.to_lowercase()));
            let _ = std::fs::remove_dir_all(&home);
            let start = start_once(app, &webdriver, &issuer, &home, opts.idle)
                .with_context(|| format!("{} start {round}", app.name))?;
            let label = if round == 0 {
                "warm-up".to_owned()
            } else {
                format!("run {round}")
            };
            eprintln!(
                "xtask: {:<11} {label:<7} interactive {:6.1} ms (button ready {:5.1} ms from {}, first contentful paint {:5.1} ms; first ready poll {:5.1}, session {:5.1}, page start {:5.1}, DOMContentLoaded {:5.1}, load {:5.1} ms), PSS {:5.1} MB, RSS {:5.1} MB, USS {:5.1} MB, anonymous {:5.1} MB, {} processes",
                app.name,
                start.ready.interactive_ms,
                start.ready.ready_ms,
                start.ready.basis.label(),
                start.ready.paint_ms,
                start.ready.polled_ms,
                start.session_ms,
                start.ready.page_start_ms,
                start.ready.dom_loaded_ms,
                start.ready.load_ms,
                mb(start.memory.pss_kib),
                mb(start.memory.rss_kib),
                mb(start.memory.uss_kib),
                mb(start.memory.anon_kib),
                start.processes,
            );
            if round > 0 {
                results[i].push(start);
            }
        }
    }
    report(apps, &results, opts, &load_before);
    if !opts.no_chat {
        let server = root().join("target").join("debug").join("confab-server");
        let chat = chat::measure(
            &apps[1].binary,
            &server,
            &webdriver,
            &issuer,
            &scratch,
            opts.idle,
        )?;
        let median = |i: usize, f: fn(&Start) -> f64| {
            let v: Vec<f64> = results
                .get(i)
                .map(|r| r.iter().map(f).collect())
                .unwrap_or_default();
            (!v.is_empty()).then(|| stats(&v).median)
        };
        chat::report(
            &chat,
            median(0, |s| s.ready.interactive_ms),
            median(1, |s| mb(s.memory.pss_kib)),
        );
    }
    println!();
    println!("Machine: {}", machine());
    println!("Load average before: {load_before}; after: {}", loadavg());
    Ok(())
}

/// Starts `app` once in a fresh desktop session; waits for interactive, idles, reads memory.
fn start_once(
    app: &App,
    webdriver: &Path,
    issuer: &str,
    home: &Path,
    idle: Duration,
) -> Result<Start> {
    let desktop = Desktop::start(home)?;
    let mut env = desktop.env();
    env.push(("CONFAB_ISSUER".into(), issuer.into()));
    env.push(("CONFAB_DATA_DIR".into(), desktop.home().join("data").into()));
    let log = home.join("driver-and-app.log");
    let driver = start_webdriver(
        webdriver,
        &env,
        &[
            "CONFAB_CONFIG",
            "CONFAB_VAULT_KEY",
            "CONFAB_CHAT_URL",
            "CONFAB_LOG",
        ],
        &log,
    )?;

    let t0 = now_ms();
    let session = webdriver::Session::start(driver.port(), &app.binary)
        .with_context(|| format!("starting {} through WebDriver{}", app.name, log_tail(&log)))?;
    let session_ms = now_ms() - t0;
    let ready = wait_interactive(&session, t0, app.static_sign_in)
        .with_context(|| format!("{} did not become interactive{}", app.name, log_tail(&log)))?;

    let pid = procs::find_descendant(driver.pid(), &app.binary).with_context(|| {
        format!(
            "the {} process was not found under WebKitWebDriver",
            app.name
        )
    })?;
    std::thread::sleep(idle);
    let (memory, each) = procs::tree_memory(pid);
    if std::env::var_os("BENCH_UI_VERBOSE").is_some() {
        for (name, m) in &each {
            eprintln!(
                "xtask:     {name:<24} PSS {:6.1} MB  RSS {:6.1} MB",
                mb(m.pss_kib),
                mb(m.rss_kib)
            );
        }
    }
    let _ = session.close();
    drop(driver);
    drop(desktop);
    Ok(Start {
        ready,
        session_ms,
        memory,
        processes: each.len(),
    })
}

/// The readiness check, run in the page. `#sign-in` is ready when displayed and enabled. The
/// first look installs a MutationObserver that notes the page time at which the button becomes
/// ready (for a button not ready at the first look). Returns [page now, ready now, observed
/// ready time or 0, ready at first look, navigation start, DOMContentLoaded end or 0, first
/// contentful paint or 0, `confab:sign-in` mark or 0, load event end or 0], times as Unix ms.
const READY_SCRIPT: &str = "const now = performance.timeOrigin + performance.now();\
    const check = () => { const b = document.getElementById('sign-in');\
      return !!b && !b.disabled && b.getClientRects().length > 0\
        && getComputedStyle(b).visibility !== 'hidden'; };\
    let s = window.__confabBenchReady;\
    if (!s) {\
      s = window.__confabBenchReady = { first: check(), at: 0 };\
      if (!s.first) {\
        const o = new MutationObserver(() => { if (!s.at && check()) {\
          s.at = performance.timeOrigin + performance.now(); o.disconnect(); } });\
        o.observe(document, { subtree: true, childList: true, attributes: true });\
      }\
    }\
    const at = (e) => e ? performance.timeOrigin + e.startTime : 0;\
    const nav = performance.getEntriesByType('navigation')[0];\
    const dcl = nav && nav.domContentLoadedEventEnd > 0\
      ? performance.timeOrigin + nav.domContentLoadedEventEnd : 0;\
    const fcp = at(performance.getEntriesByName('first-contentful-paint', 'paint')[0]);\
    const mark = at(performance.getEntriesByName('confab:sign-in', 'mark')[0]);\
    const load = nav && nav.loadEventEnd > 0 ? performance.timeOrigin + nav.loadEventEnd : 0;\
    return [now, check(), s.at, s.first, performance.timeOrigin, dcl, fcp, mark, load];";

/// Where the time `#sign-in` became ready comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    /// The page's own `confab:sign-in` mark.
    Mark,
    /// The MutationObserver saw the change.
    Observed,
    /// In the static HTML, ready at the first look: DOMContentLoaded.
    StaticHtml,
    /// Ready at the first look with nothing better: that poll (an upper bound).
    FirstPoll,
}

impl Basis {
    fn label(self) -> &'static str {
        match self {
            Basis::Mark => "the page's mark",
            Basis::Observed => "observed change",
            Basis::StaticHtml => "static HTML, DOMContentLoaded",
            Basis::FirstPoll => "first poll (upper bound)",
        }
    }
}

/// When a page became interactive and its milestones, in ms from the clock start.
#[derive(Debug, Clone, Copy)]
struct Ready {
    /// The later of `ready_ms` and `paint_ms`.
    interactive_ms: f64,
    /// Where `ready_ms` comes from.
    basis: Basis,
    /// When `#sign-in` was ready (displayed and enabled; for Confab, wired).
    ready_ms: f64,
    /// The page's first contentful paint.
    paint_ms: f64,
    /// The first poll that found the button ready (an upper bound, WebDriver latency included).
    polled_ms: f64,
    /// The page's navigation start (`performance.timeOrigin`).
    page_start_ms: f64,
    /// DOMContentLoaded (end of its handlers; NaN if it had not happened at that poll).
    dom_loaded_ms: f64,
    /// The load event's end (NaN if it had not happened at that poll).
    load_ms: f64,
}

/// Polls the page until `#sign-in` is ready and the page has painted; times are relative to
/// `t0` (Unix ms). See [`App::static_sign_in`] for a button already ready at the first look.
fn wait_interactive(session: &webdriver::Session, t0: f64, static_html: bool) -> Result<Ready> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut ready_poll = None;
    loop {
        let polled = Instant::now();
        // Errors are expected while the page is still loading (WebDriver waits for the load).
        if let Ok(Value::Array(v)) = session.execute(READY_SCRIPT, Vec::new()) {
            let num = |i: usize| v.get(i).and_then(Value::as_f64).unwrap_or(0.0);
            let flag = |i: usize| v.get(i).and_then(Value::as_bool).unwrap_or(false);
            let (now, observed, first, dcl, fcp, mark) =
                (num(0), num(2), flag(3), num(5), num(6), num(7));
            let displayed = flag(1) && (first || observed > 0.0);
            // A page that marks its sign-in screen (Confab) is ready at its mark: the button
            // can be on screen before its click handler is wired (ui/first-screen.js).
            let ready_now = if static_html {
                displayed
            } else {
                displayed && mark > 0.0
            };
            if ready_now {
                let polled_at = *ready_poll.get_or_insert(now);
                let (basis, ready) = if mark > 0.0 {
                    (Basis::Mark, mark)
                } else if observed > 0.0 {
                    (Basis::Observed, observed)
                } else if dcl > 0.0 {
                    (Basis::StaticHtml, dcl)
                } else {
                    (Basis::FirstPoll, polled_at)
                };
                if fcp > 0.0 {
                    return Ok(Ready {
                        interactive_ms: ready.max(fcp) - t0,
                        basis,
                        ready_ms: ready - t0,
                        paint_ms: fcp - t0,
                        polled_ms: polled_at - t0,
                        page_start_ms: num(4) - t0,
                        dom_loaded_ms: if dcl > 0.0 { dcl - t0 } else { f64::NAN },
                        load_ms: if num(8) > 0.0 { num(8) - t0 } else { f64::NAN },
                    });
                }
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no ready #sign-in with a first contentful paint within {} s",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(POLL.saturating_sub(polled.elapsed()));
    }
}

fn report(apps: &[App], results: &[Vec<Start>], opts: &Options, load_before: &str) {
    println!();
    println!(
        "Start to interactive sign-in screen and idle memory ({} starts each after 1 warm-up, {} s idle)",
        opts.runs,
        opts.idle.as_secs()
    );
    println!();
    println!("| app | interactive, median (min–max) | taken from | first ready poll, median | page start / DOMContentLoaded, median | idle PSS, median (min–max) | idle RSS, median | idle USS, median | idle anonymous, median (min–max) | processes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (app, runs) in apps.iter().zip(results) {
        let interactive: Vec<f64> = runs.iter().map(|s| s.ready.interactive_ms).collect();
        let polled: Vec<f64> = runs.iter().map(|s| s.ready.polled_ms).collect();
        let how = how_timed(runs);
        let page: Vec<f64> = runs.iter().map(|s| s.ready.page_start_ms).collect();
        // DOMContentLoaded can still be ahead when the page is interactive: left out then.
        let loaded: Vec<f64> = runs
            .iter()
            .map(|s| s.ready.dom_loaded_ms)
            .filter(|v| !v.is_nan())
            .collect();
        let pss: Vec<f64> = runs.iter().map(|s| mb(s.memory.pss_kib)).collect();
        let rss: Vec<f64> = runs.iter().map(|s| mb(s.memory.rss_kib)).collect();
        let uss: Vec<f64> = runs.iter().map(|s| mb(s.memory.uss_kib)).collect();
        let anon: Vec<f64> = runs.iter().map(|s| mb(s.memory.anon_kib)).collect();
        let a = stats(&anon);
        let (i, p) = (stats(&interactive), stats(&pss));
        println!(
            "| {} | {:.0} ms ({:.0}–{:.0}) | {how} | {:.0} ms | {:.0} / {:.0} ms | {:.1} MB ({:.1}–{:.1}) | {:.1} MB | {:.1} MB | {:.1} MB ({:.1}–{:.1}) | {} |",
            app.name,
            i.median,
            i.min,
            i.max,
            stats(&polled).median,
            stats(&page).median,
            stats(&loaded).median,
            p.median,
            p.min,
            p.max,
            stats(&rss).median,
            stats(&uss).median,
            a.median,
            a.min,
            a.max,
            runs.first().map(|s| s.processes).unwrap_or(0),
        );
        medians.push((i.median, [p.median, stats(&rss).median, a.median]));
    }
    if let [(hello_t, hello_m), (confab_t, confab_m)] = medians[..] {
        println!();
        println!(
            "Confab / hello-world: start {:.2}× (goal ≤ 1.15×: {}).",
            confab_t / hello_t,
            verdict(confab_t <= 1.15 * hello_t),
        );
        for (k, what) in ["PSS", "RSS", "anonymous"].iter().enumerate() {
            let limit = 1.1 * hello_m[k] + 10.0;
            println!(
                "Idle {what}: Confab {:.1} MB vs limit 1.1 × {:.1} + 10 = {limit:.1} MB ({}).",
                confab_m[k],
                hello_m[k],
                verdict(confab_m[k] <= limit),
            );
        }
    }
    println!("Load average before: {load_before}; now: {}", loadavg());
}

/// "first contentful paint (button ready before it: from the page's mark)" and the like, with
/// counts when the starts differ.
fn how_timed(runs: &[Start]) -> String {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for s in runs {
        let what = if s.ready.paint_ms >= s.ready.ready_ms {
            format!(
                "first contentful paint (button ready before it, {})",
                s.ready.basis.label()
            )
        } else {
            format!(
                "button ready after the first paint ({})",
                s.ready.basis.label()
            )
        };
        match parts.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => parts.push((what, 1)),
        }
    }
    match &parts[..] {
        [(only, _)] => only.clone(),
        _ => parts
            .iter()
            .map(|(w, n)| format!("{n}× {w}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "not met"
    }
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(values: &[f64]) -> Stats {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    Stats {
        median,
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

/// KiB to MB (10^6 bytes), for people.
fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// Wall clock in ms since the Unix epoch (the page's `performance.timeOrigin` is on it too).
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// CPU, cores, memory, kernel, WebKitGTK: what the figures depend on.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let output = |cmd: &mut Command| {
        cmd.output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let kernel = output(Command::new("uname").arg("-r"));
    let webkit =
        output(Command::new("dpkg-query").args(["-W", "-f=${Version}", "libwebkit2gtk-4.1-0"]));
    format!("{cpu}, {cores} cores, {mem_gib:.0} GiB RAM, Linux {kernel}, WebKitGTK {webkit}, Xvfb (software rendering)")
}
