//! The chat measurements of `cargo xtask bench-ui`, on the release app signed in as alice:
//! time to open a room with 10,000 messages, and the time from a message arriving at the core
//! to its row in the DOM.
//!
//! Set-up: confab-server (history kept for all 10,000 messages, no command rate limit in the
//! way of seeding) and `chat_peer.mjs` (centrifuge-js as bob) seed two rooms alice is a member
//! of: `bench-10k` with 10,000 messages and `bench-live`, empty. Release builds have no test
//! hooks, so sign-in goes the way it does on a desktop: the app opens the authorization URL
//! with `xdg-open`, whose default web browser in the run's HOME is a tiny script that writes
//! the URL to a file; the peer completes the IdP login over HTTP and the redirect is delivered
//! by starting the app binary with it, which the single-instance plugin hands to the running
//! app.
//!
//! - Open: a script in the page clicks the room in the room list and waits (MutationObserver)
//!   for the room's newest row, `.msg[data-offset="10000"]`, in `#messages`; the time is the
//!   page's clock from just before the click to that DOM change, and to the frame after it.
//!   The first open fetches the room from the server; later ones (after opening the other room
//!   in between) show what the core keeps.
//! - Message to DOM: a script wraps the page's Tauri IPC callbacks to note each `message`
//!   event's `at_us` (the core's receive time, Unix µs) and observes `#messages` for new rows;
//!   bob publishes [`LIVE_MESSAGES`] messages, one every [`LIVE_INTERVAL_MS`], into the open
//!   room; latency = the row's DOM insertion time on the page's clock − `at_us` (both are the
//!   machine's wall clock).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use confab_testkit::desktop::log_tail;
use serde_json::{json, Value};

use super::desktop::{start_webdriver, Desktop};
use super::webdriver::Session;
use super::{mb, stats, wait_interactive};
use crate::{root, wait_ready, Guard};

/// Messages in the long room.
const LONG_ROOM_MESSAGES: u64 = 10_000;
/// Messages bob sends for the latency measurement.
const LIVE_MESSAGES: u64 = 200;
/// Gap between them (a lively conversation, not a flood: each is its own event).
const LIVE_INTERVAL_MS: u64 = 50;
/// Opens of the long room (the first fetches it from the server).
const OPENS: usize = 5;
/// How long a UI step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts of a returning user with the chat server unreachable.
const RETURNING_STARTS: usize = 5;
/// Opens of the long room from the cache in the last of them.
const CACHED_OPENS: usize = 4;

const LONG_ROOM: &str = "bench-10k";
const LIVE_ROOM: &str = "bench-live";

/// Figures of the chat part.
pub(crate) struct ChatFigures {
    /// Open times of the long room: (DOM, next frame) in ms; the first is the cold one.
    pub(crate) opens: Vec<(f64, f64)>,
    /// Message-to-DOM latencies in ms.
    pub(crate) latencies: Vec<f64>,
    /// Messages bob sent that never showed up in the DOM.
    pub(crate) missing: usize,
    /// Scrolling the long room to its first message.
    pub(crate) sweep: Sweep,
    pub(crate) glide: Glide,
    /// Idle memory of the signed-in app with the long room open and wholly loaded.
    pub(crate) memory: super::procs::Memory,
    /// A returning user's starts with the chat server unreachable: ms from the clock start to
    /// the last room's newest message in the DOM (shown from the encrypted cache).
    pub(crate) returning: Vec<f64>,
    /// Opens of the long room from the cache in the last returning start: (DOM, next frame) ms.
    pub(crate) cached_opens: Vec<(f64, f64)>,
    /// Idle memory after them (the long room open from the cache).
    pub(crate) returning_memory: super::procs::Memory,
}

/// The peer process (chat_peer.mjs): JSON commands in, JSON replies out.
struct Peer {
    _guard: Guard,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(issuer: &str, server_url: &str) -> Result<Self> {
        let mut child = Command::new("node")
            .arg(root().join("xtask/src/bench_ui/chat_peer.mjs"))
            .env("PEERS_DIR", root().join("tests/peers"))
            .env("ISSUER", issuer)
            .env("SERVER_URL", server_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("could not start node (the chat peer; run cargo xtask setup first)")?;
        let stdin = child.stdin.take().context("peer: no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("peer: no stdout")?);
        Ok(Self {
            _guard: Guard(child, "chat peer"),
            stdin,
            stdout,
        })
    }

    fn call(&mut self, command: Value) -> Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let reply: Value = serde_json::from_str(line.trim())
            .with_context(|| format!("chat peer replied {line:?}"))?;
        if reply.get("ok").and_then(Value::as_bool) != Some(true) {
            bail!(
                "chat peer: {}",
                reply.get("error").and_then(Value::as_str).unwrap_or("?")
            );
        }
        Ok(reply)
    }
}

/// Runs the chat part. `app` is the release Confab binary, `server` confab-server.
pub(crate) fn measure(
    app: &Path,
    server: &Path,
    webdriver: &Path,
    issuer: &str,
    scratch: &Path,
    idle: Duration,
) -> Result<ChatFigures> {
    let dir = scratch.join("chat");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;

    let mut server_cmd = Command::new(server);
    server_cmd
        .args(["--issuer", issuer, "--audience", "confab-chat"])
        .arg("--db")
        .arg(dir.join("chat.sqlite3"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--history-size", "20000", "--commands-per-second", "100000"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log"))?);
    let mut server_child: Child = server_cmd
        .spawn()
        .context("could not start confab-server")?;
    let line = wait_ready(&mut server_child, "CONFAB_SERVER_READY", "chat server")?;
    let server_guard = Guard(server_child, "chat server");
    let chat_url = line.strip_prefix("url=").unwrap_or(&line).to_owned();

    let mut peer = Peer::start(issuer, &chat_url)?;
    let seeded = Instant::now();
    peer.call(json!({
        "cmd": "seed",
        "rooms": [
            {"id": LONG_ROOM, "name": "Ten thousand", "count": LONG_ROOM_MESSAGES},
            {"id": LIVE_ROOM, "name": "Live", "count": 0},
        ],
        "members": ["alice"],
    }))?;
    eprintln!(
        "xtask: seeded {LONG_ROOM} with {LONG_ROOM_MESSAGES} messages in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    let home = dir.join("home");
    let desktop = Desktop::start(&home)?;
    let opened_url = home.join("opened-url.txt");
    install_fake_browser(&home, &opened_url)?;
    let mut env = desktop.env();
    env.push(("CONFAB_ISSUER".into(), issuer.into()));
    env.push(("CONFAB_CHAT_URL".into(), chat_url.as_str().into()));
    env.push(("CONFAB_DATA_DIR".into(), home.join("data").into()));
    // The cache keeps the whole long room (the default keeps 2,000 per room).
    env.push((
        "CONFAB_HISTORY_CACHE_PER_ROOM".into(),
        LONG_ROOM_MESSAGES.to_string().into(),
    ));
    env.push((
        "BROWSER".into(),
        home.join("bin").join("bench-browser").into(),
    ));

    let log = home.join("driver-and-app.log");
    let driver = start_webdriver(
        webdriver,
        &env,
        &["CONFAB_CONFIG", "CONFAB_VAULT_KEY", "CONFAB_LOG"],
        &log,
    )?;
    let session = Session::start(driver.port(), app)
        .with_context(|| format!("starting Confab through WebDriver{}", log_tail(&log)))?;
    wait_interactive(&session, 0.0, false)
        .with_context(|| format!("Confab did not show its sign-in screen{}", log_tail(&log)))?;

    // Sign in as alice the way a desktop does it (see the module doc).
    session.execute("document.getElementById('sign-in').click();", Vec::new())?;
    let authorize = wait_for_file(&opened_url)
        .with_context(|| format!("the app did not open the browser{}", log_tail(&log)))?;
    let reply = peer.call(json!({"cmd": "browser", "url": authorize, "user": "alice"}))?;
    let callback = reply
        .get("callback")
        .and_then(Value::as_str)
        .context("chat peer: no callback URL")?
        .to_owned();
    let status = Command::new(app)
        .arg(&callback)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("delivering the redirect to the app")?;
    if !status.success() {
        bail!("the second app instance (redirect delivery) exited with {status}");
    }
    wait_for_script(
        &session,
        &format!("return !!document.querySelector('.room[data-room=\"{LONG_ROOM}\"]');"),
        "the room list with the seeded rooms after sign-in",
        &log,
    )?;

    session.set_script_timeout(STEP_TIMEOUT)?;
    let mut opens = Vec::new();
    for i in 0..OPENS {
        let o = open_room_counted(&session, LONG_ROOM, LONG_ROOM_MESSAGES)
            .with_context(|| format!("opening {LONG_ROOM}{}", log_tail(&log)))?;
        eprintln!(
            "xtask: open {LONG_ROOM} #{}: newest row in the DOM after {:.1} ms, next frame {:.1} ms ({} rows in the DOM, {} messages loaded)",
            i + 1,
            o.dom,
            o.frame,
            o.rows,
            o.loaded
        );
        opens.push((o.dom, o.frame));
        open_room(&session, LIVE_ROOM, 0).with_context(|| format!("opening {LIVE_ROOM}"))?;
    }

    // The live room is open (last step above). Note core receive times and DOM insertions.
    session.execute(LATENCY_PROBE, Vec::new())?;
    peer.call(json!({
        "cmd": "live",
        "room": LIVE_ROOM,
        "count": LIVE_MESSAGES,
        "interval_ms": LIVE_INTERVAL_MS,
    }))?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    let pairs = loop {
        let v = session.execute(
            "const b = window.__confabBench; return [...b.dom.keys()].filter((o) => b.core.has(o)).map((o) => [o, b.core.get(o), b.dom.get(o)]);",
            Vec::new(),
        )?;
        let pairs: Vec<(u64, f64, f64)> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        Some((
                            p.get(0)?.as_u64()?,
                            p.get(1)?.as_f64()?,
                            p.get(2)?.as_f64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if pairs.len() as u64 >= LIVE_MESSAGES || Instant::now() >= deadline {
            break pairs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let latencies: Vec<f64> = pairs
        .iter()
        .map(|(_, at_us, dom_ms)| dom_ms - at_us / 1000.0)
        .collect();
    let missing = usize::try_from(LIVE_MESSAGES)
        .unwrap_or(usize::MAX)
        .saturating_sub(latencies.len());

    // Scroll the long room from its newest to its first message.
    open_room(&session, LONG_ROOM, LONG_ROOM_MESSAGES)?;
    let sweep = sweep_history(&session, LONG_ROOM_MESSAGES)
        .with_context(|| format!("scrolling through {LONG_ROOM}{}", log_tail(&log)))?;
    // Then, everything loaded: the frame rate at rest, and scrolling back down to the newest.
    let glide = glide_down(&session)
        .with_context(|| format!("scrolling down {LONG_ROOM}{}", log_tail(&log)))?;

    // Memory of the signed-in app with the whole long room loaded, after the idle period.
    std::thread::sleep(idle);
    let pid = super::procs::find_descendant(driver.pid(), app)
        .context("the Confab process was not found under WebKitWebDriver")?;
    let (memory, _) = super::procs::tree_memory(pid);

    // A returning user (issue 22): the app quits, the chat server goes away, and the app starts
    // again in the same HOME (same vault, keychain and store): its last room, the long one, must
    // come from the encrypted cache.
    let _ = session.close();
    wait_gone(driver.pid(), app)?;
    drop(server_guard);
    let mut returning = Vec::new();
    let mut cached_opens = Vec::new();
    let mut returning_memory = super::procs::Memory::default();
    for i in 0..RETURNING_STARTS {
        let t0 = super::now_ms();
        let session = Session::start(driver.port(), app)
            .with_context(|| format!("restarting Confab{}", log_tail(&log)))?;
        let shown = wait_for_row(&session, LONG_ROOM_MESSAGES)
            .with_context(|| format!("the last room from the cache{}", log_tail(&log)))?;
        returning.push(shown - t0);
        eprintln!(
            "xtask: returning start #{} (chat server unreachable): newest message of {LONG_ROOM} in the DOM after {:.1} ms",
            i + 1,
            shown - t0
        );
        if i + 1 == RETURNING_STARTS {
            session.set_script_timeout(STEP_TIMEOUT)?;
            for _ in 0..CACHED_OPENS {
                open_room(&session, LIVE_ROOM, LIVE_MESSAGES)?;
                cached_opens.push(open_room(&session, LONG_ROOM, LONG_ROOM_MESSAGES)?);
            }
            std::thread::sleep(idle);
            let pid = super::procs::find_descendant(driver.pid(), app)
                .context("the Confab process was not found under WebKitWebDriver")?;
            returning_memory = super::procs::tree_memory(pid).0;
        }
        let _ = session.close();
        wait_gone(driver.pid(), app)?;
    }

    drop(driver);
    drop(desktop);
    Ok(ChatFigures {
        opens,
        latencies,
        missing,
        sweep,
        glide,
        memory,
        returning,
        cached_opens,
        returning_memory,
    })
}

/// Waits until no `app` process runs under the driver (a closed session's app has exited, so
/// the next start is not handed to it by the single-instance plugin).
fn wait_gone(driver: u32, app: &Path) -> Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while super::procs::find_descendant(driver, app).is_some() {
        if Instant::now() >= deadline {
            bail!("the app did not exit after its session closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Polls the page until the message row at `offset` is in `#messages`; returns when it got
/// there (Unix ms, the page's clock). The first look installs a MutationObserver that notes the
/// moment, so the poll interval does not count; a row there at the first look counts then.
fn wait_for_row(session: &Session, offset: u64) -> Result<f64> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        // The page may not exist yet right after the session starts.
        if let Ok(v) = session.execute(ROW_PROBE, vec![json!(offset)]) {
            if let Some(at) = v.as_f64().filter(|t| *t > 0.0) {
                return Ok(at);
            }
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for message {offset} in the DOM");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Page script for [`wait_for_row`].
const ROW_PROBE: &str = r#"
const [offset] = arguments;
const sel = `#messages .msg[data-offset="${offset}"]`;
const now = () => performance.timeOrigin + performance.now();
let s = window.__confabBenchRow;
if (!s) {
  s = window.__confabBenchRow = { at: document.querySelector(sel) ? now() : 0 };
  if (!s.at) {
    const o = new MutationObserver(() => {
      if (!s.at && document.querySelector(sel)) { s.at = now(); o.disconnect(); }
    });
    o.observe(document, { subtree: true, childList: true });
  }
}
return s.at;
"#;

/// Makes `home/bin/bench-browser` the default web browser of the session in `home`: it writes
/// the URL it is asked to open to `opened_url`. Registered as the `x-scheme-handler/http(s)`
/// default (what xdg-open consults first) and, as a fallback, through `BROWSER`.
fn install_fake_browser(home: &Path, opened_url: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin)?;
    let script = bin.join("bench-browser");
    let tmp = opened_url.with_extension("tmp");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}' && mv '{}' '{}'\n",
            tmp.display(),
            tmp.display(),
            opened_url.display()
        ),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let apps = home.join(".local/share/applications");
    std::fs::create_dir_all(&apps)?;
    std::fs::write(
        apps.join("bench-browser.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Bench browser\nExec={} %u\nMimeType=x-scheme-handler/http;x-scheme-handler/https;\nNoDisplay=true\n",
            script.display()
        ),
    )?;
    let config = home.join(".config");
    std::fs::create_dir_all(&config)?;
    std::fs::write(
        config.join("mimeapps.list"),
        "[Default Applications]\nx-scheme-handler/http=bench-browser.desktop\nx-scheme-handler/https=bench-browser.desktop\n",
    )?;
    Ok(())
}

fn wait_for_file(path: &Path) -> Result<String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.trim().is_empty() {
                return Ok(text.trim().to_owned());
            }
        }
        if Instant::now() >= deadline {
            bail!("{} was not written", path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `script` (which returns a boolean) until it is true.
fn wait_for_script(session: &Session, script: &str, what: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if session.execute(script, Vec::new())?.as_bool() == Some(true) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out waiting for {what}{}", log_tail(log));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Clicks `room` in the room list and waits for its newest row (offset `newest`; any row or
/// the empty room's start marker when 0). Returns ms to the DOM change and to the next frame.
fn open_room(session: &Session, room: &str, newest: u64) -> Result<(f64, f64)> {
    open_room_counted(session, room, newest).map(|o| (o.dom, o.frame))
}

/// One room open.
struct Open {
    /// ms from the click to the newest row in the DOM.
    dom: f64,
    /// ms from the click to the next animation frame after that.
    frame: f64,
    /// `.msg` rows in the DOM then (the list is virtualized).
    rows: u64,
    /// Messages the view has loaded (`#messages[data-count]`).
    loaded: u64,
}

fn open_room_counted(session: &Session, room: &str, newest: u64) -> Result<Open> {
    let v = session.execute_async(OPEN_ROOM, vec![json!(room), json!(newest)])?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        bail!("{err}");
    }
    let dom = v
        .get("dom")
        .and_then(Value::as_f64)
        .context("no dom time")?;
    let frame = v
        .get("frame")
        .and_then(Value::as_f64)
        .context("no frame time")?;
    let count = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(Open {
        dom,
        frame,
        rows: count("rows"),
        loaded: count("loaded"),
    })
}

/// Page script: click a room, resolve when its newest row is in `#messages`.
const OPEN_ROOM: &str = r#"
const [room, newest, done] = arguments;
const item = document.querySelector(`.room[data-room="${room}"]`);
if (!item) { done({ error: `no room ${room} in the list` }); return; }
const ready = () => {
  const list = document.getElementById('messages');
  if (!list || list.dataset.room !== room) return false;
  if (newest === 0) return list.dataset.count === '0' || !!list.querySelector('.msg, .history-start');
  return !!list.querySelector(`.msg[data-offset="${newest}"]`);
};
let finished = false;
const t0 = performance.now();
const finish = () => {
  if (finished) return;
  finished = true;
  observer.disconnect();
  const dom = performance.now() - t0;
  requestAnimationFrame(() => {
    const list = document.getElementById('messages');
    done({ dom, frame: performance.now() - t0, rows: list.querySelectorAll('.msg').length, loaded: Number(list.dataset.count || 0) });
  });
};
const observer = new MutationObserver(() => { if (ready()) finish(); });
observer.observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-room', 'data-offset', 'data-count'] });
(item.querySelector('button, a') || item).click();
if (ready()) finish();
"#;

/// Page script: note each `message` event's core receive time (wrapping the IPC callbacks the
/// page has registered, among them its chat channel) and each new row's DOM insertion time.
const LATENCY_PROBE: &str = r#"
const bench = window.__confabBench = { core: new Map(), dom: new Map() };
const callbacks = window.__TAURI_INTERNALS__.callbacks;
for (const [id, fn] of [...callbacks]) {
  callbacks.set(id, (data) => {
    let m = data && data.message;
    if (typeof m === 'string') { try { m = JSON.parse(m); } catch { m = null; } }
    if (m && m.type === 'message' && typeof m.at_us === 'number') bench.core.set(m.offset, m.at_us);
    return fn(data);
  });
}
const note = (el) => {
  if (el.nodeType !== 1) return;
  const rows = el.matches('.msg[data-offset]') ? [el] : el.querySelectorAll('.msg[data-offset]');
  const now = performance.timeOrigin + performance.now();
  for (const r of rows) { const o = Number(r.dataset.offset); if (!bench.dom.has(o)) bench.dom.set(o, now); }
};
new MutationObserver((records) => {
  for (const r of records) {
    if (r.type === 'attributes') note(r.target);
    for (const n of r.addedNodes) note(n);
  }
}).observe(document.getElementById('messages'), { childList: true, subtree: true, attributes: true, attributeFilter: ['data-offset'] });
return true;
"#;

/// Scrolling a room from the newest message to the first.
pub(crate) struct Sweep {
    /// ms until the first message's row and the room's start marker were shown.
    pub(crate) total_ms: f64,
    /// Intervals between animation frames during the scroll, in ms.
    pub(crate) frames: Vec<f64>,
}

/// Holds the long room's view at the top, frame after frame (as a user dragging the scrollbar to
/// the top would), until every message is loaded and the room's start marker is shown; notes
/// the interval between animation frames all along.
fn sweep_history(session: &Session, total: u64) -> Result<Sweep> {
    // The page gives up after 100 s; WebDriver waits a little longer.
    session.set_script_timeout(Duration::from_secs(110))?;
    let v = session.execute_async(SWEEP, vec![json!(total)])?;
    let frames = numbers(&v, "frames");
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        bail!("{err} after {} frames", frames.len());
    }
    let total_ms = v
        .get("ms")
        .and_then(Value::as_f64)
        .context("no sweep time")?;
    Ok(Sweep { total_ms, frames })
}

/// The numbers in the array `key` of a page script's result (none if it is missing).
fn numbers(v: &Value, key: &str) -> Vec<f64> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Frame intervals with the whole long room loaded: at rest, then scrolling down.
pub(crate) struct Glide {
    /// Intervals between animation frames while nothing happens (this display's frame pace).
    pub(crate) idle: Vec<f64>,
    /// Intervals between animation frames while the view moves down by [`GLIDE_STEP_PX`] a
    /// frame, from the first message to the newest.
    pub(crate) frames: Vec<f64>,
    /// The most message rows in the DOM at once during the glide.
    pub(crate) max_rows: u64,
    /// Pixels travelled.
    pub(crate) distance_px: f64,
}

/// Pixels per frame in [`glide_down`]: a brisk scroll-wheel pace (about 18,000 px/s at 60 Hz).
const GLIDE_STEP_PX: u64 = 300;

/// With every message of the long room loaded and the view at the top: notes 60 frame intervals
/// at rest, then moves the view down by [`GLIDE_STEP_PX`] each frame until the newest message is
/// shown, noting every interval and the number of message rows in the DOM.
fn glide_down(session: &Session) -> Result<Glide> {
    session.set_script_timeout(Duration::from_secs(110))?;
    let v = session.execute_async(GLIDE, vec![json!(GLIDE_STEP_PX)])?;
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        bail!("{err}");
    }
    Ok(Glide {
        idle: numbers(&v, "idle"),
        frames: numbers(&v, "frames"),
        max_rows: v.get("maxRows").and_then(Value::as_u64).unwrap_or(0),
        distance_px: v.get("distance").and_then(Value::as_f64).unwrap_or(0.0),
    })
}

/// Page script for [`glide_down`].
const GLIDE: &str = r#"
const [step, done] = arguments;
const list = document.getElementById('messages');
const idle = [];
const frames = [];
let maxRows = 0;
let last = 0;
const t0 = performance.now();
const start = list.scrollTop;
const rest = (now) => {
  if (last) idle.push(now - last);
  last = now;
  if (idle.length < 60) { requestAnimationFrame(rest); return; }
  last = 0;
  requestAnimationFrame(glide);
};
const glide = (now) => {
  if (last) frames.push(now - last);
  last = now;
  maxRows = Math.max(maxRows, list.querySelectorAll('.msg').length);
  const bottom = list.scrollHeight - list.clientHeight;
  if (list.scrollTop >= bottom - 1) {
    done({ idle, frames, maxRows, distance: list.scrollTop - start });
    return;
  }
  if (performance.now() - t0 > 100000) { done({ error: `stopped at ${list.scrollTop} of ${bottom} px` }); return; }
  list.scrollTop = Math.min(bottom, list.scrollTop + step);
  requestAnimationFrame(glide);
};
requestAnimationFrame(rest);
"#;

/// Page script for [`sweep_history`].
const SWEEP: &str = r#"
const [total, done] = arguments;
const list = document.getElementById('messages');
const t0 = performance.now();
const frames = [];
let last = t0;
const step = (now) => {
  frames.push(now - last);
  last = now;
  list.scrollTop = 0;
  const loaded = Number(list.dataset.count || 0);
  if (loaded >= total && list.querySelector('.history-start') && list.querySelector('.msg[data-offset="1"]')) {
    done({ ms: performance.now() - t0, frames });
    return;
  }
  if (performance.now() - t0 > 100000) { done({ error: `only ${loaded} messages loaded`, frames }); return; }
  requestAnimationFrame(step);
};
requestAnimationFrame(step);
"#;

/// The `p`th percentile (nearest rank) of `sorted`, ascending; NaN when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// "frame interval p50 …, p99 …, max …; N frames over 50 ms" for a scroll's frame intervals.
fn frame_summary(frames: &[f64]) -> String {
    let mut f = frames.to_vec();
    f.sort_by(f64::total_cmp);
    format!(
        "frame interval p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} frames over 50 ms",
        percentile(&f, 50.0),
        percentile(&f, 99.0),
        f.last().copied().unwrap_or(f64::NAN),
        f.iter().filter(|&&x| x > 50.0).count(),
    )
}

/// Lines for the report.
pub(crate) fn report(figures: &ChatFigures, hello_start_ms: Option<f64>, idle_pss_mb: Option<f64>) {
    println!();
    if !figures.returning.is_empty() {
        let r = stats(&figures.returning);
        let ratio = hello_start_ms.map(|h| r.median / h);
        println!(
            "Returning user, chat server unreachable: start to the last room's newest message in the DOM (from the cache), median of {}: {:.0} ms (min {:.0}, max {:.0}){}",
            figures.returning.len(),
            r.median,
            r.min,
            r.max,
            match ratio {
                Some(x) => format!(" = {x:.2}× the hello-world's start (goal ≤ 1.3×: {})", super::verdict(x <= 1.3)),
                None => String::new(),
            }
        );
    }
    if !figures.cached_opens.is_empty() {
        let dom: Vec<f64> = figures.cached_opens.iter().map(|o| o.0).collect();
        let frame: Vec<f64> = figures.cached_opens.iter().map(|o| o.1).collect();
        let (d, f) = (stats(&dom), stats(&frame));
        println!(
            "Open {LONG_ROOM} from the cache, offline, median of {} (max): newest row in the DOM {:.0} ms ({:.0}), next frame {:.0} ms ({:.0}) (goals ≤ 50 / ≤ 100 ms: {})",
            dom.len(),
            d.median,
            d.max,
            f.median,
            f.max,
            super::verdict(d.median <= 50.0 && f.median <= 100.0),
        );
        let pss = mb(figures.returning_memory.pss_kib);
        println!(
            "Idle, {LONG_ROOM} open from the cache: PSS {:.1} MB, RSS {:.1} MB{}",
            pss,
            mb(figures.returning_memory.rss_kib),
            match idle_pss_mb {
                Some(base) => format!(
                    " = the sign-in screen's idle PSS {base:.1} MB + {:.1} MB (goal ≤ + 60 MB: {})",
                    pss - base,
                    super::verdict(pss - base <= 60.0)
                ),
                None => String::new(),
            }
        );
    }
    if let Some(((first_dom, first_frame), rest)) = figures.opens.split_first() {
        let dom: Vec<f64> = rest.iter().map(|o| o.0).collect();
        let frame: Vec<f64> = rest.iter().map(|o| o.1).collect();
        println!(
            "Open a room with {LONG_ROOM_MESSAGES} messages (click to newest row in the DOM / next frame): first {first_dom:.0} / {first_frame:.0} ms; again, median of {}: {:.0} / {:.0} ms (max {:.0} / {:.0})",
            rest.len(),
            stats(&dom).median,
            stats(&frame).median,
            stats(&dom).max,
            stats(&frame).max,
        );
    }
    let mut l = figures.latencies.clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&l, p);
    println!(
        "Message arriving at the core to its row in the DOM ({} messages, one every {LIVE_INTERVAL_MS} ms, {} missing): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal p99 ≤ 16 ms: {})",
        l.len(),
        figures.missing,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        l.last().copied().unwrap_or(f64::NAN),
        super::verdict(pct(99.0) <= 16.0 && figures.missing == 0),
    );
    println!(
        "Scroll {LONG_ROOM} from the newest to the first message (held at the top until all {LONG_ROOM_MESSAGES} are loaded): {:.1} s, {} frames; {}",
        figures.sweep.total_ms / 1000.0,
        figures.sweep.frames.len(),
        frame_summary(&figures.sweep.frames),
    );
    let mut idle = figures.glide.idle.clone();
    idle.sort_by(f64::total_cmp);
    println!(
        "All {LONG_ROOM_MESSAGES} loaded, at rest: frame interval p50 {:.1} ms, p99 {:.1} ms ({} frames)",
        percentile(&idle, 50.0),
        percentile(&idle, 99.0),
        idle.len(),
    );
    println!(
        "All {LONG_ROOM_MESSAGES} loaded, scrolled from the first to the newest message at {GLIDE_STEP_PX} px a frame: {:.0} px, {} frames; {}; at most {} message rows in the DOM",
        figures.glide.distance_px,
        figures.glide.frames.len(),
        frame_summary(&figures.glide.frames),
        figures.glide.max_rows,
    );
    println!(
        "Signed in, {LONG_ROOM} open with all its messages loaded, idle: PSS {:.1} MB, RSS {:.1} MB, USS {:.1} MB",
        mb(figures.memory.pss_kib),
        mb(figures.memory.rss_kib),
        mb(figures.memory.uss_kib),
    );
}
