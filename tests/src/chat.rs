//! Chat for the E2E tests: the real chat server ([`ChatServer`], `target/debug/confab-server`)
//! and helpers that drive the chat UI through its DOM contract (`docs/ui-contract.md`).
//!
//! `#messages` is virtualized (only visible rows are in the DOM), so every read scrolls: the
//! latest rows are read after scrolling to the bottom ([`AppUnderTest::bottom_rows`]), the whole
//! history by sweeping from top to bottom ([`AppUnderTest::all_rows`]).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use confab_testkit::desktop::{Deadline, ProcessGroup};
use fantoccini::Locator;

use crate::{blocking, log_tail, newest, timeout, AppUnderTest, Error, Result, POLL, UI_TIMEOUT};

/// How long the chat server may take to print its ready line (or, on a restart, to get its port
/// back).
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);

/// The WebDriver key code of Enter.
const ENTER: &str = "\u{E007}";

/// Environment variables of the server that the harness clears, so the developer's shell cannot
/// leak into a test run.
const SERVER_VARS: &[&str] = &[
    "CONFAB_SERVER_CONFIG",
    "CONFAB_SERVER_ISSUER",
    "CONFAB_SERVER_AUDIENCE",
    "CONFAB_SERVER_DB",
    "CONFAB_SERVER_LISTEN",
];

/// The debug chat server binary (`CONFAB_SERVER_BINARY` overrides), checked to exist and to be
/// newer than its sources.
pub fn server_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("CONFAB_SERVER_BINARY") {
        Some(p) => PathBuf::from(p),
        None => crate::target_dir().join("debug").join("confab-server"),
    };
    if !path.is_file() {
        return Err(Error::Missing {
            what: "the chat server binary",
            path: path.display().to_string(),
            hint: "build it first with `cargo build -p confab-server --bin confab-server` (cargo xtask test does this)",
        });
    }
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let root = crate::repo_root();
    for source in ["crates/server/src", "crates/protocol/src"] {
        if let Some((file, time)) = newest(&root.join(source)) {
            if time > built {
                return Err(Error::Other(format!(
                    "the chat server binary {} is older than {}: rebuild it with `cargo build -p confab-server --bin confab-server`",
                    path.display(),
                    file.display()
                )));
            }
        }
    }
    Ok(path)
}

/// The reference chat server (`confab-server`) on 127.0.0.1 with its SQLite database in a temp
/// dir. It can be stopped and started again on the same port with the same database, so a
/// connected app sees the server go away and come back at the same URL.
pub struct ChatServer {
    binary: PathBuf,
    issuer: String,
    port: u16,
    url: String,
    log: PathBuf,
    // Killed with its process group when dropped; its stdout is drained by
    // `ProcessGroup::wait_for_line`, so it never gets EPIPE.
    running: Option<ProcessGroup>,
    dir: tempfile::TempDir,
    /// More environment for the server (its backend role's settings).
    env: Vec<(String, String)>,
}

impl ChatServer {
    /// Starts the server for `issuer` (the exact `iss` text, [`confab_testkit::Idp::issuer_str`])
    /// with audience `confab-chat` on a free port, and waits for `CONFAB_SERVER_READY url=...`.
    pub async fn start(issuer: &str) -> Result<Self> {
        Self::start_with(issuer, Vec::new()).await
    }

    /// [`ChatServer::start`] with more environment for the server, e.g. the backend role's
    /// `CONFAB_CENTRIFUGO_PROXY_SECRET`, `CONFAB_CENTRIFUGO_API_URL`,
    /// `CONFAB_CENTRIFUGO_API_KEY` and `CONFAB_INTROSPECTION_CLIENT_*`.
    pub async fn start_with(issuer: &str, env: Vec<(String, String)>) -> Result<Self> {
        let binary = server_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("confab-e2e-server-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating the server's temp dir".into(),
                source,
            })?;
        let log = dir.path().join("server.log");
        let mut server = Self {
            binary,
            issuer: issuer.to_owned(),
            port: 0,
            url: String::new(),
            log,
            running: None,
            dir,
            env,
        };
        let deadline = Deadline::after(SERVER_TIMEOUT);
        let (running, url) = server.spawn(0, deadline).await?;
        server.port = port_of(&url)?;
        server.url = url;
        server.running = Some(running);
        Ok(server)
    }

    /// The WebSocket URL the server printed (`ws://127.0.0.1:<port>/connection/websocket`),
    /// for `CONFAB_CHAT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's port (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SQLite database file (kept across restarts).
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("chat.sqlite3")
    }

    /// Whether the server process is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The server's log (stderr of every run so far).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server the hard way (SIGKILL to its process group, as a crash or a pulled plug
    /// would) and waits until it is gone. Connected clients see their sockets close.
    pub fn stop(&mut self) {
        self.running = None;
    }

    /// Starts the server again on the same port with the same database. Retries while the port
    /// is still taken (e.g. the old socket not yet released), up to [`SERVER_TIMEOUT`].
    pub async fn restart(&mut self) -> Result<()> {
        self.stop();
        let deadline = Deadline::after(SERVER_TIMEOUT);
        loop {
            match self.spawn(self.port, deadline).await {
                Ok((running, url)) => {
                    if url != self.url {
                        return Err(Error::Other(format!(
                            "the restarted server listens at {url}, not at {} as before",
                            self.url
                        )));
                    }
                    self.running = Some(running);
                    return Ok(());
                }
                Err(e) if deadline.passed() => return Err(e),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Starts the server again on the same port with an EMPTY database, as if the server had
    /// lost its data (rooms created since the first start, and their history, are gone; the
    /// default rooms come back empty).
    pub async fn restart_with_empty_db(&mut self) -> Result<()> {
        self.stop();
        let db = self.db();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            match std::fs::remove_file(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        what: format!("removing {}", PathBuf::from(name).display()),
                        source,
                    })
                }
            }
        }
        self.restart().await
    }

    /// Runs the server on `port` and waits (until `deadline`) for its ready line.
    async fn spawn(&self, port: u16, deadline: Deadline) -> Result<(ProcessGroup, String)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| Error::Io {
                what: "opening the server log".into(),
                source,
            })?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--issuer")
            .arg(&self.issuer)
            .args(["--audience", "confab-chat"])
            .arg("--db")
            .arg(self.db())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        for var in SERVER_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = self.log.clone();
        blocking(move || {
            let what = format!("the chat server (listen 127.0.0.1:{port})");
            let mut group = ProcessGroup::spawn(cmd, &what)?;
            let url = group.wait_for_line("CONFAB_SERVER_READY url=", &deadline, Some(&log))?;
            Ok((group, url))
        })
        .await
    }
}

/// The port of a `ws://127.0.0.1:<port>/...` URL.
fn port_of(url: &str) -> Result<u16> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port())
        .ok_or_else(|| {
            Error::Other(format!(
                "the chat server printed a URL without a port: {url}"
            ))
        })
}

/// One rendered message row (`.msg`) as the DOM contract describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgRow {
    /// `data-offset` (delivered messages).
    pub offset: Option<u64>,
    /// `data-id` (own messages not yet sent; may stay on sent ones).
    pub id: Option<String>,
    /// `data-author` (user id).
    pub author: Option<String>,
    /// `textContent` of `.msg-author`: the name shown (the display name, else the user id).
    pub shown_author: String,
    /// `data-state` (`pending`/`sent`/`failed`, own messages).
    pub state: Option<String>,
    /// Has class `own`.
    pub own: bool,
    /// `textContent` of `.msg-text`.
    pub text: String,
    /// Whether the row has a `.retry` button.
    pub retry: bool,
}

impl MsgRow {
    fn from_json(v: &serde_json::Value) -> Self {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        Self {
            offset: s("offset").and_then(|o| o.parse().ok()),
            id: s("id"),
            author: s("author"),
            shown_author: s("shownAuthor").unwrap_or_default(),
            state: s("state"),
            own: v.get("own").and_then(|x| x.as_bool()).unwrap_or(false),
            text: s("text").unwrap_or_default(),
            retry: v.get("retry").and_then(|x| x.as_bool()).unwrap_or(false),
        }
    }
}

/// The whole history of the open room, read by scrolling `#messages` from top to bottom.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Every row seen, top to bottom, each once (keyed by offset, else id).
    pub rows: Vec<MsgRow>,
    /// Keys that appeared on two rows at the same time (a row rendered twice).
    pub duplicates: Vec<String>,
    /// `#messages[data-count]` after the sweep.
    pub count: Option<u64>,
    /// `#messages[data-last-offset]` after the sweep.
    pub last_offset: Option<u64>,
}

impl Sweep {
    /// The texts of the rows, top to bottom.
    pub fn texts(&self) -> Vec<String> {
        self.rows.iter().map(|r| r.text.clone()).collect()
    }

    /// How many rows have exactly `text`.
    pub fn count_text(&self, text: &str) -> usize {
        self.rows.iter().filter(|r| r.text == text).count()
    }
}

/// Shared JS: finds the scrolling element of `#messages`, reads a row, and waits until the
/// page has rendered after a scroll (two animation frames, or 150 ms if frames are throttled).
const JS_PRELUDE: &str = r#"
const log = document.querySelector('#messages');
const scroller = (() => {
  let e = log;
  while (e) {
    const s = getComputedStyle(e);
    if (/(auto|scroll)/.test(s.overflowY) && e.scrollHeight > e.clientHeight) return e;
    e = e.parentElement;
  }
  return log;
})();
const settle = () => new Promise((resolve) => {
  let fired = false;
  const go = () => { if (!fired) { fired = true; resolve(); } };
  requestAnimationFrame(() => requestAnimationFrame(go));
  setTimeout(go, 150);
});
const row = (el) => {
  const t = el.querySelector('.msg-text');
  const who = el.querySelector('.msg-author');
  const top = el.getBoundingClientRect().top - (scroller ? scroller.getBoundingClientRect().top - scroller.scrollTop : 0);
  return {
    offset: el.dataset.offset ?? null,
    id: el.dataset.id ?? null,
    author: el.dataset.author ?? null,
    shownAuthor: who ? who.textContent : '',
    state: el.dataset.state ?? null,
    own: el.classList.contains('own'),
    text: t ? t.textContent : '',
    retry: !!el.querySelector('.retry'),
    y: top,
  };
};
const visible = () => Array.from(log.querySelectorAll('.msg')).map(row).sort((a, b) => a.y - b.y);
const toBottom = async () => { if (scroller) { scroller.scrollTop = scroller.scrollHeight; } await settle(); };
"#;

impl AppUnderTest {
    /// Options for an app talking to `server`, signing in as `user` (its IdP login hint).
    pub fn chat_options(server: &ChatServer, user: &str) -> crate::AppOptions {
        crate::AppOptions {
            login_hint: user.to_owned(),
            chat_url: Some(server.url().to_owned()),
            ..crate::AppOptions::default()
        }
    }

    /// Launches the app against `issuer` and `server` in a fresh HOME, signs `user` in through
    /// the deep-link flow ([`AppUnderTest::sign_in_as`]) and waits for the chat screen.
    pub async fn launch_signed_in(
        issuer: &url::Url,
        server: &ChatServer,
        user: &str,
    ) -> Result<Self> {
        let app = Self::launch(issuer, Self::chat_options(server, user)).await?;
        app.sign_in_as(user).await?;
        app.wait_for_chat_screen().await?;
        Ok(app)
    }

    /// Waits until the main chat view (`#screen-chat`) is displayed.
    pub async fn wait_for_chat_screen(&self) -> Result<()> {
        self.wait_displayed("#screen-chat").await
    }

    /// Waits until the element matching `css` is displayed.
    pub async fn wait_displayed(&self, css: &str) -> Result<()> {
        self.poll(&format!("{css} to be displayed"), || async {
            Ok(match self.client.find(Locator::Css(css)).await {
                Ok(el) if el.is_displayed().await.unwrap_or(false) => Some(()),
                _ => None,
            })
        })
        .await
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> Result<String> {
        let el = self.client.find(Locator::Css(css)).await?;
        Ok(el.text().await?)
    }

    /// Whether an element matching `css` exists and is displayed.
    pub async fn is_displayed(&self, css: &str) -> Result<bool> {
        Ok(match self.client.find(Locator::Css(css)).await {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        })
    }

    /// Polls `check` every 100 ms until it returns `Some`, for up to [`UI_TIMEOUT`].
    pub async fn poll<T, F, Fut>(&self, what: &str, check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        self.poll_for(what, UI_TIMEOUT, check).await
    }

    /// [`AppUnderTest::poll`] with its own deadline.
    pub async fn poll_for<T, F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check().await? {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(timeout(what, limit, &self.log));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The attribute `name` of the element matching `css`, parsed as a number.
    pub async fn attr_u64(&self, css: &str, name: &str) -> Result<Option<u64>> {
        Ok(self
            .attr(css, name)
            .await?
            .and_then(|v| v.trim().parse().ok()))
    }

    /// Waits until `.room[data-room=<id>]` is in `#room-list`.
    pub async fn wait_for_room(&self, id: &str) -> Result<()> {
        let css = format!("#room-list .room[data-room=\"{id}\"]");
        self.poll(&format!("room {id} in the room list"), || async {
            Ok(self.client.find(Locator::Css(&css)).await.ok().map(|_| ()))
        })
        .await
    }

    /// The ids of the rooms in `#room-list`, in order.
    pub async fn room_ids(&self) -> Result<Vec<String>> {
        let v = self
            .client
            .execute(
                "return Array.from(document.querySelectorAll('#room-list .room')).map(e => e.dataset.room);",
                vec![],
            )
            .await?;
        Ok(strings(&v))
    }

    /// Opens room `id` from the room list and waits until `#messages[data-room]` is `id` and the
    /// room is marked `aria-current="true"`.
    pub async fn open_room(&self, id: &str) -> Result<()> {
        self.wait_for_room(id).await?;
        self.click(&format!("#room-list .room[data-room=\"{id}\"]"))
            .await?;
        self.wait_for_open_room(id).await
    }

    /// Waits until room `id` is the open room (`#messages[data-room]`, `aria-current`).
    pub async fn wait_for_open_room(&self, id: &str) -> Result<()> {
        let current = format!("#room-list .room[data-room=\"{id}\"][aria-current=\"true\"]");
        self.poll(&format!("room {id} to be open"), || async {
            let shown = self.attr("#messages", "data-room").await?;
            let marked = self.client.find(Locator::Css(&current)).await.is_ok();
            Ok((shown.as_deref() == Some(id) && marked).then_some(()))
        })
        .await
    }

    /// Opens the `#new-room` dialog and waits for it.
    pub async fn open_room_dialog(&self) -> Result<()> {
        self.click("#new-room").await?;
        self.wait_displayed("#room-dialog").await
    }

    /// Creates a public room named `name` through the `#new-room` dialog (unticking
    /// `#room-private`, which the dialog ticks); returns its id once it is in the room list
    /// (found by its `.room-name`).
    pub async fn create_room(&self, name: &str) -> Result<String> {
        self.create_room_with(name, false).await
    }

    /// Creates a private room named `name` (the dialog's default); returns its id.
    pub async fn create_private_room(&self, name: &str) -> Result<String> {
        self.create_room_with(name, true).await
    }

    async fn create_room_with(&self, name: &str, private: bool) -> Result<String> {
        self.open_room_dialog().await?;
        self.type_into("#room-name-input", name).await?;
        if !private {
            self.click("#room-private").await?;
        }
        self.click("#room-create").await?;
        self.poll(&format!("the new room {name:?} in the room list"), || async {
            let v = self
                .client
                .execute(
                    "const n = arguments[0]; const e = Array.from(document.querySelectorAll('#room-list .room')).find(r => { const t = r.querySelector('.room-name'); return t && t.textContent.trim() === n; }); return e ? e.dataset.room : null;",
                    vec![serde_json::Value::String(name.to_owned())],
                )
                .await?;
            Ok(v.as_str().map(str::to_owned))
        })
        .await
    }

    /// Joins room `id` through the `#new-room` dialog (`.join-room[data-room=<id>]`) and waits
    /// until it is in the room list.
    pub async fn join_room_from_dialog(&self, id: &str) -> Result<()> {
        self.open_room_dialog().await?;
        self.click(&format!("#room-dialog .join-room[data-room=\"{id}\"]"))
            .await?;
        self.wait_for_room(id).await
    }

    /// Types `text` into the composer (replacing what is there) without sending it.
    pub async fn type_draft(&self, text: &str) -> Result<()> {
        self.type_into("#composer-input", text).await
    }

    /// Waits until the composer says its text is saved as the room's draft
    /// (`#composer-input[data-draft=saved]`).
    pub async fn wait_for_draft_saved(&self) -> Result<()> {
        self.poll("the draft to be saved", || async {
            let state = self.attr("#composer-input", "data-draft").await?;
            Ok((state.as_deref() == Some("saved")).then_some(()))
        })
        .await
    }

    /// Types `text` into the composer and presses Enter; waits until the composer is empty
    /// again (the UI took the message).
    pub async fn send_message(&self, text: &str) -> Result<()> {
        self.type_into("#composer-input", text).await?;
        let el = self.client.find(Locator::Css("#composer-input")).await?;
        el.send_keys(ENTER).await?;
        self.poll("the composer to clear after Enter", || async {
            Ok((self.composer_value().await?.is_empty()).then_some(()))
        })
        .await
    }

    /// Sends WebDriver key presses to the composer as they are (no clearing; `\u{E008}` is Shift,
    /// `\u{E007}` Enter, `\u{E000}` releases held modifiers).
    pub async fn composer_keys(&self, keys: &str) -> Result<()> {
        self.wait_displayed("#composer-input").await?;
        let el = self.client.find(Locator::Css("#composer-input")).await?;
        el.send_keys(keys).await?;
        Ok(())
    }

    /// The composer's current value.
    pub async fn composer_value(&self) -> Result<String> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector('#composer-input'); return e ? e.value : null;",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Scrolls `#messages` to the bottom and returns the rows then in the DOM, top to bottom.
    pub async fn bottom_rows(&self) -> Result<Vec<MsgRow>> {
        let script = format!(
            "{JS_PRELUDE}\nconst done = arguments[arguments.length - 1];\n(async () => {{ if (!log) return done(null); await toBottom(); done(visible()); }})().catch(e => done({{error: String(e)}}));"
        );
        let v = self.client.execute_async(&script, vec![]).await?;
        rows_of(&v)
    }

    /// Reads the whole history of the open room by scrolling `#messages` from the top to the
    /// bottom (it is virtualized), ending at the bottom.
    pub async fn all_rows(&self) -> Result<Sweep> {
        let script = format!(
            r#"{JS_PRELUDE}
const done = arguments[arguments.length - 1];
(async () => {{
  if (!log) return done(null);
  const rows = new Map();
  const duplicates = [];
  const collect = () => {{
    const seen = new Set();
    for (const r of visible()) {{
      const key = r.offset !== null ? 'offset ' + r.offset : 'id ' + r.id;
      if (seen.has(key)) duplicates.push(key);
      seen.add(key);
      rows.set(key, r);
    }}
  }};
  scroller.scrollTop = 0;
  await settle();
  collect();
  for (let i = 0; i < 1000; i++) {{
    if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1) break;
    scroller.scrollTop += Math.max(20, Math.floor(scroller.clientHeight * 0.7));
    await settle();
    collect();
  }}
  await toBottom();
  collect();
  const all = Array.from(rows.values()).sort((a, b) => a.y - b.y);
  done({{ rows: all, duplicates, count: log.dataset.count ?? null, last_offset: log.dataset.lastOffset ?? null }});
}})().catch(e => done({{error: String(e)}}));"#
        );
        let v = self.client.execute_async(&script, vec![]).await?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(Error::Other(format!("reading #messages failed: {e}")));
        }
        if v.is_null() {
            return Err(Error::Other("there is no #messages element".into()));
        }
        Ok(Sweep {
            rows: rows_of(&v["rows"])?,
            duplicates: strings(&v["duplicates"]),
            count: v["count"].as_str().and_then(|c| c.parse().ok()),
            last_offset: v["last_offset"].as_str().and_then(|c| c.parse().ok()),
        })
    }

    /// Waits until a row whose `.msg-text` is exactly `text` is at the bottom of `#messages`
    /// (and, if given, has `data-state` = `state`); returns it.
    pub async fn wait_for_message(&self, text: &str, state: Option<&str>) -> Result<MsgRow> {
        self.wait_for_message_within(text, state, UI_TIMEOUT).await
    }

    /// [`AppUnderTest::wait_for_message`] with its own deadline.
    pub async fn wait_for_message_within(
        &self,
        text: &str,
        state: Option<&str>,
        limit: Duration,
    ) -> Result<MsgRow> {
        let what = match state {
            Some(s) => format!("a message row {text:?} with data-state={s}"),
            None => format!("a message row {text:?}"),
        };
        self.poll_for(&what, limit, || async {
            let rows = self.bottom_rows().await?;
            Ok(rows
                .into_iter()
                .rev()
                .find(|r| r.text == text && state.is_none_or(|s| r.state.as_deref() == Some(s))))
        })
        .await
    }

    /// `#connection[data-state]`.
    pub async fn connection_state(&self) -> Result<Option<String>> {
        self.attr("#connection", "data-state").await
    }

    /// Waits until `#connection[data-state]` is `state`.
    pub async fn wait_for_connection(&self, state: &str) -> Result<()> {
        self.wait_for_connection_within(state, UI_TIMEOUT).await
    }

    /// [`AppUnderTest::wait_for_connection`] with its own deadline.
    pub async fn wait_for_connection_within(&self, state: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.connection_state().await?;
            if now.as_deref() == Some(state) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("#connection data-state={state} (last: {now:?})"),
                    seconds: limit.as_secs(),
                    details: log_tail(&self.log),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `#connection[data-episodes]` (0 when absent).
    pub async fn connection_episodes(&self) -> Result<u64> {
        Ok(self
            .attr_u64("#connection", "data-episodes")
            .await?
            .unwrap_or(0))
    }

    /// `#chat-error[data-count]` (0 when absent).
    pub async fn chat_error_count(&self) -> Result<u64> {
        Ok(self
            .attr_u64("#chat-error", "data-count")
            .await?
            .unwrap_or(0))
    }

    /// The text of `#chat-error` (empty when absent).
    pub async fn chat_error_text(&self) -> Result<String> {
        let v = self
            .client
            .execute(
                "const e = document.querySelector('#chat-error'); return e ? e.textContent : '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body; `return` its result) in the page.
    pub async fn js(&self, script: &str) -> Result<serde_json::Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }
}

fn rows_of(v: &serde_json::Value) -> Result<Vec<MsgRow>> {
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(Error::Other(format!("reading #messages failed: {e}")));
    }
    Ok(v.as_array()
        .map(|a| a.iter().map(MsgRow::from_json).collect())
        .unwrap_or_default())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_from_the_page_json() {
        let v = serde_json::json!([
            {"offset": "7", "id": null, "author": "alice", "state": "sent", "own": true, "text": "hi", "retry": false, "y": 0},
            {"offset": null, "id": "c-1", "author": "alice", "state": "failed", "own": true, "text": "<b>", "retry": true, "y": 30}
        ]);
        let rows = rows_of(&v).expect("rows");
        assert_eq!(rows[0].offset, Some(7), "data-offset is read as a number");
        assert_eq!(rows[1].id.as_deref(), Some("c-1"), "data-id is read");
        assert!(rows[1].retry && !rows[0].retry, "the retry button is seen");
        assert_eq!(rows[1].text, "<b>", "text is kept verbatim");
    }

    #[test]
    fn server_port_comes_from_the_ready_url() {
        assert_eq!(
            port_of("ws://127.0.0.1:4567/connection/websocket").expect("port"),
            4567,
            "the restart reuses the port the server printed"
        );
        assert!(port_of("nonsense").is_err(), "a bad URL is an error");
    }
}
