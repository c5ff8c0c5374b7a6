//! Harness for the end-to-end tests: runs the real Confab app under an X display, driven by
//! WebDriver (`tauri-driver` + `WebKitWebDriver`), with its own D-Bus session bus and a throwaway
//! HOME, and plays the part of the browser and the OS for the sign-in redirect.
//!
//! What it needs (the lead's `cargo xtask test` provides all of it):
//! - an X display (`DISPLAY`; run under `xvfb-run -a`),
//! - the app built in debug mode: `cargo build -p confab-app` → `target/debug/confab`
//!   (override with `CONFAB_APP_BINARY`); debug builds carry the `CONFAB_TEST_OPEN_URL_FILE` hook,
//! - `tauri-driver` (`TAURI_DRIVER`, else `target/tools/bin/tauri-driver`, else `PATH`),
//! - `WebKitWebDriver` (Debian `webkit2gtk-driver`; `WEBKIT_WEBDRIVER` overrides `/usr/bin/...`),
//! - `dbus-daemon` (single-instance needs a session bus on Linux),
//! - for the chat tests, the chat server: `cargo build -p confab-server --bin confab-server` →
//!   `target/debug/confab-server` (override with `CONFAB_SERVER_BINARY`); see [`chat`].
//!
//! Several apps can run at once (two users talking): each [`AppUnderTest`] has its own temp
//! HOME, data dir, session bus, keyring daemon and free ports for tauri-driver and
//! WebKitWebDriver. Those come from `confab_testkit::desktop`, which `cargo xtask bench-ui`
//! uses too; its calls block, so they run on tokio's blocking threads here ([`blocking`]).
//!
//! Screenshots go to `artifacts/e2e/` at the repository root.

pub mod chat;
pub mod conversation;
pub mod error;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use confab_testkit::desktop::{
    log_tail, webkit_webdriver, Deadline, Desktop, DesktopError, Driver, DriverEnv,
};
use fantoccini::{ClientBuilder, Locator};
use tokio::process::Command;
use url::Url;

pub use confab_testkit::desktop::{repo_root, target_dir, tauri_driver};

pub use chat::{server_binary, ChatServer, MsgRow, Sweep};
pub use error::{Error, Result};

/// How long the app may take to show a state after an action (software rendering, 2 cores).
pub const UI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long starting a session (which launches the app) may take.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(100);

/// The password of each run's throwaway login keyring (the same on a restart in the same HOME,
/// so the keyring daemon unlocks the keyring it created).
const KEYRING_PASSWORD: &str = "confab-e2e-keyring";

/// The private-use redirect URI the app registers.
pub const SCHEME_REDIRECT: &str = "dev.confab.chat:/oauth/callback";

/// Environment variables of the app that the harness sets or clears, so the developer's own
/// shell cannot leak into a test run.
const CONFAB_VARS: &[&str] = &[
    "CONFAB_CONFIG",
    "CONFAB_DATA_DIR",
    "CONFAB_ISSUER",
    "CONFAB_CLIENT_ID",
    "CONFAB_SCOPES",
    "CONFAB_CHAT_URL",
    "CONFAB_CHAT_AUDIENCE",
    "CONFAB_CHAT_RESOURCE",
    "CONFAB_REDIRECT_MODE",
    "CONFAB_LOGIN_TIMEOUT_SECS",
    "CONFAB_LOGIN_HINT",
    "CONFAB_TEST_OPEN_URL_FILE",
    "CONFAB_TEST_NOTIFY_FILE",
    "CONFAB_VAULT_KEY",
    "CONFAB_CHAT_TOKEN_ENDPOINT",
    "CONFAB_CREDENTIAL_PROFILE",
    "CONFAB_PASSWORD_BACKEND",
];

/// Where screenshots are saved: `<repo>/artifacts/e2e`.
pub fn artifacts_dir() -> PathBuf {
    repo_root().join("artifacts").join("e2e")
}

/// Fails with a clear message when there is no X display.
pub fn require_display() -> Result<()> {
    match std::env::var_os("DISPLAY") {
        Some(d) if !d.is_empty() => Ok(()),
        _ => Err(Error::NoDisplay),
    }
}

/// The debug app binary, checked to exist and to be newer than its sources.
pub fn app_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("CONFAB_APP_BINARY") {
        Some(p) => PathBuf::from(p),
        None => target_dir().join("debug").join("confab"),
    };
    if !path.is_file() {
        return Err(Error::Missing {
            what: "the Confab app binary",
            path: path.display().to_string(),
            hint: "build it first with `cargo build -p confab-app` (cargo xtask test does this)",
        });
    }
    let built = mtime(&path).unwrap_or(SystemTime::UNIX_EPOCH);
    let root = repo_root();
    for source in [
        "src-tauri/src",
        "src-tauri/capabilities",
        "ui",
        "tauri.conf.json",
        "crates/auth/src",
        "crates/backends/src",
        "crates/client/src",
        "crates/config/src",
        "crates/vault/src",
        "crates/session/src",
        "crates/relay/src",
        "crates/protocol/src",
        "crates/store/src",
        "crates/types/src",
    ] {
        if let Some((file, time)) = newest(&root.join(source)) {
            if time > built {
                return Err(Error::StaleApp {
                    binary: path.display().to_string(),
                    source_file: file.display().to_string(),
                });
            }
        }
    }
    Ok(path)
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest file under `path` (or `path` itself) and its modification time.
fn newest(path: &Path) -> Option<(PathBuf, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some((path.to_path_buf(), meta.modified().ok()?));
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest(&e.path()))
        .max_by_key(|(_, t)| *t)
}

fn timeout(what: &str, after: Duration, log: &Path) -> Error {
    Error::Timeout {
        what: what.to_owned(),
        seconds: after.as_secs(),
        details: log_tail(log),
    }
}

/// Runs a blocking call of the desktop harness on tokio's blocking threads, so the runtime's
/// workers keep serving the other app and the IdP while a bus, keyring or driver starts.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, DesktopError> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(call).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(Error::Other(format!(
            "the desktop harness thread failed: {e}"
        ))),
    }
}

/// How the app under test is configured.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// `CONFAB_REDIRECT_MODE`: `scheme` (default here, deterministic), `loopback` or `auto`.
    pub redirect_mode: String,
    /// `CONFAB_LOGIN_HINT`: the test user the IdP's auto mode signs in.
    pub login_hint: String,
    /// Extra environment for the app.
    pub extra_env: Vec<(String, String)>,
    /// Command-line arguments of the app (e.g. a redirect URL that "launched" it).
    pub args: Vec<String>,
    /// `CONFAB_CHAT_URL`: the chat server ([`ChatServer::url`]); unset = the app's default.
    pub chat_url: Option<String>,
}

impl AppOptions {
    /// Options for an app whose workspace signs in with a password at the SimpleJWT backend
    /// `backend` and gets its chat tokens from `chat_token_endpoint`, chatting on `chat_url`.
    pub fn password(backend: &Url, chat_token_endpoint: &Url, chat_url: &str) -> Self {
        Self {
            chat_url: Some(chat_url.to_owned()),
            extra_env: vec![
                ("CONFAB_CREDENTIAL_PROFILE".into(), "password".into()),
                ("CONFAB_PASSWORD_BACKEND".into(), backend.to_string()),
                (
                    "CONFAB_CHAT_TOKEN_ENDPOINT".into(),
                    chat_token_endpoint.to_string(),
                ),
            ],
            ..Self::default()
        }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            redirect_mode: "scheme".into(),
            login_hint: "alice".into(),
            extra_env: Vec::new(),
            args: Vec::new(),
            chat_url: None,
        }
    }
}

/// The running app, its WebDriver session and everything isolating it.
pub struct AppUnderTest {
    /// The WebDriver session on the app's main window.
    pub client: fantoccini::Client,
    app: PathBuf,
    env: Vec<(OsString, OsString)>,
    url_file: PathBuf,
    log: PathBuf,
    // Drop order: the driver (and with it the app) before the keyring and the bus, the temp
    // HOME last.
    _driver: Driver,
    _desktop: Desktop,
    home: tempfile::TempDir,
}

impl AppUnderTest {
    /// Starts a session bus, tauri-driver and the app (through a WebDriver session) against
    /// `issuer`, with HOME and XDG dirs in a fresh temp dir.
    pub async fn launch(issuer: &Url, options: AppOptions) -> Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("confab-e2e-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "creating a temp HOME".into(),
                source,
            })?;
        Self::launch_in(issuer, options, home).await
    }

    /// Like [`AppUnderTest::launch`], in an existing temp HOME (from [`AppUnderTest::quit`]):
    /// the app starts again with the same data, config, log and keyring files, as after a
    /// restart of the computer (fresh session bus and keyring daemon).
    pub async fn launch_in(
        issuer: &Url,
        options: AppOptions,
        home: tempfile::TempDir,
    ) -> Result<Self> {
        require_display()?;
        let app = app_binary()?;
        let tauri = tauri_driver()?;
        let native = webkit_webdriver()?;

        let h = home.path();
        let log = h.join("driver-and-app.log");
        let url_file = h.join("authorize-url.txt");

        let desktop = {
            let h = h.to_path_buf();
            blocking(move || {
                Desktop::start(&h, KEYRING_PASSWORD, &Deadline::after(SESSION_TIMEOUT))
            })
            .await?
        };

        // HOME, XDG dirs, the private bus, no accessibility bus; then the app's configuration.
        let mut env = desktop.env();
        env.extend([
            ("CONFAB_ISSUER".into(), issuer.as_str().into()),
            ("CONFAB_DATA_DIR".into(), h.join("data").into()),
            ("CONFAB_REDIRECT_MODE".into(), options.redirect_mode.into()),
            ("CONFAB_LOGIN_HINT".into(), options.login_hint.into()),
            ("CONFAB_TEST_OPEN_URL_FILE".into(), url_file.clone().into()),
            ("CONFAB_LOG".into(), "info".into()),
        ]);
        if let Some(url) = options.chat_url {
            env.push(("CONFAB_CHAT_URL".into(), url.into()));
        }
        env.extend(
            options
                .extra_env
                .into_iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );

        let mut attempt = 0;
        let (client, driver) = loop {
            attempt += 1;
            let driver = {
                let (tauri, native, env, log) =
                    (tauri.clone(), native.clone(), env.clone(), log.clone());
                blocking(move || {
                    let env = DriverEnv {
                        clear: CONFAB_VARS,
                        set: &env,
                    };
                    let deadline = Deadline::after(SESSION_TIMEOUT);
                    Driver::start_tauri_driver(&tauri, &native, env, &log, &deadline)
                })
                .await?
            };
            let port = driver.port();

            let mut caps = serde_json::Map::new();
            caps.insert(
                "tauri:options".into(),
                serde_json::json!({ "application": app, "args": options.args }),
            );
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            let mut builder = ClientBuilder::new(connector);
            builder.capabilities(caps);
            let webdriver_url = format!("http://127.0.0.1:{port}");
            let session = builder.connect(&webdriver_url);
            let client = match tokio::time::timeout(SESSION_TIMEOUT, session).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    let text = e.to_string();
                    // The WebDriver server dropped the connection (no answer at all): a failure of
                    // the driver processes, not of the app, which WebKitWebDriver reports as an
                    // error answer ("session not created"). Once, with fresh ports and processes.
                    if attempt == 1 && text.contains("did not respond") {
                        eprintln!(
                            "the WebDriver server dropped the new-session request; starting the drivers again{}",
                            log_tail(&log)
                        );
                        continue;
                    }
                    return Err(Error::Other(format!(
                        "could not start a WebDriver session: {text}{}",
                        log_tail(&log)
                    )));
                }
                Err(_) => return Err(timeout("the WebDriver session", SESSION_TIMEOUT, &log)),
            };
            break (client, driver);
        };

        Ok(Self {
            client,
            app,
            env,
            url_file,
            log,
            _driver: driver,
            _desktop: desktop,
            home,
        })
    }

    /// Ends the WebDriver session (which quits the app), stops the driver, keyring and bus, and
    /// hands back the temp HOME so the app can be started again in it ([`AppUnderTest::launch_in`]).
    pub async fn quit(self) -> Result<tempfile::TempDir> {
        let Self {
            client,
            _driver,
            _desktop,
            home,
            ..
        } = self;
        client.close().await?;
        drop(_driver);
        // The keyring, then the bus (the order of `Desktop`'s fields).
        drop(_desktop);
        Ok(home)
    }

    /// The app's data dir (`CONFAB_DATA_DIR`): vault, remembered account.
    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    /// The file the debug-build test hook writes browser URLs to (sign-in and logout).
    pub fn opened_url_file(&self) -> &Path {
        &self.url_file
    }

    /// The temp HOME of this run.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The combined log of tauri-driver, WebKitWebDriver and the app.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Clicks the element matching `css` once it is displayed and enabled. If the page replaced
    /// the element between finding and clicking it (a re-rendered list), it is found again.
    pub async fn click(&self, css: &str) -> Result<()> {
        let deadline = Instant::now() + UI_TIMEOUT;
        let mut last_error = None;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false)
                    && el.is_enabled().await.unwrap_or(false)
                {
                    match el.click().await {
                        Ok(()) => return Ok(()),
                        Err(e) => last_error = Some(e),
                    }
                }
            }
            if Instant::now() >= deadline {
                if let Some(e) = last_error {
                    return Err(e.into());
                }
                return Err(timeout(
                    &format!("{css} to be clickable"),
                    UI_TIMEOUT,
                    &self.log,
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Replaces the value of the input matching `css` (once displayed) with `text`, typed as
    /// key presses.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let deadline = Instant::now() + UI_TIMEOUT;
        let mut last_error = None;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false) {
                    // A re-rendered element is found again on the next round.
                    match el.clear().await {
                        Ok(()) => match el.send_keys(text).await {
                            Ok(()) => return Ok(()),
                            Err(e) => last_error = Some(e),
                        },
                        Err(e) => last_error = Some(e),
                    }
                }
            }
            if Instant::now() >= deadline {
                if let Some(e) = last_error {
                    return Err(e.into());
                }
                return Err(timeout(
                    &format!("{css} to accept text"),
                    UI_TIMEOUT,
                    &self.log,
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the element matching `css` is displayed and its text contains `needle`;
    /// returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<String> {
        let deadline = Instant::now() + UI_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if el.is_displayed().await.unwrap_or(false) {
                    last = el.text().await.unwrap_or_default();
                    if last.contains(needle) {
                        return Ok(last);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{css} to show {needle:?} (last text: {last:?})"),
                    seconds: UI_TIMEOUT.as_secs(),
                    details: log_tail(&self.log),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The value of attribute `name` of the element matching `css`, if both exist.
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>> {
        match self.client.find(Locator::Css(css)).await {
            Ok(el) => Ok(el.attr(name).await?),
            Err(_) => Ok(None),
        }
    }

    /// Waits until attribute `name` of the element matching `css` differs from `before`;
    /// returns the new value.
    pub async fn wait_for_attr_change(
        &self,
        css: &str,
        name: &str,
        before: Option<&str>,
    ) -> Result<Option<String>> {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            let now = self.attr(css, name).await?;
            if now.as_deref() != before {
                return Ok(now);
            }
            if Instant::now() >= deadline {
                return Err(timeout(
                    &format!("{css}[{name}] to change from {before:?}"),
                    UI_TIMEOUT,
                    &self.log,
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Signs out from the open user menu: clicks Sign out, then in the dialog that asks what to
    /// do with the account's local data ticks "remove" when `remove_local_data`, and confirms.
    pub async fn sign_out(&self, remove_local_data: bool) -> Result<()> {
        self.click("#sign-out").await?;
        self.wait_for_text("#sign-out-confirm", "Sign out").await?;
        if remove_local_data {
            self.click("#sign-out-remove").await?;
        }
        self.click("#sign-out-confirm").await
    }

    /// The whole deep-link sign-in as alice (auto-mode IdP): clicks Sign in, completes the IdP
    /// login headlessly, delivers the redirect as a second process and waits until the window
    /// shows "Signed in as Alice Example". Tests that check these steps one by one spell them out.
    pub async fn sign_in_as_alice(&self) -> Result<()> {
        self.sign_in_as("alice").await.map(|_| ())
    }

    /// [`AppUnderTest::sign_in_as_alice`] for any test user of the IdP (`alice`, `bob`): the
    /// authorization URL the app opened gets `login_hint=<user>`, and the window must then show
    /// "Signed in as <Name> Example". Returns the authorization URL the app opened.
    pub async fn sign_in_as(&self, user: &str) -> Result<Url> {
        self.click("#sign-in").await?;
        let authorize = self.wait_for_authorize_url(None).await?;
        let callback = confab_testkit::headless_login_as(&authorize, user, SCHEME_REDIRECT).await?;
        self.deliver_redirect(callback.as_str()).await?;
        self.wait_for_text(
            "#signed-in-as",
            &format!("Signed in as {}", display_name(user)),
        )
        .await?;
        Ok(authorize)
    }

    /// Signs in through the password profile's form (`#password-form`): types `login` and
    /// `password` and submits. Does not wait for the outcome (the chat screen, or the refusal in
    /// `#password-error`).
    pub async fn submit_password(&self, login: &str, password: &str) -> Result<()> {
        self.type_into("#login", login).await?;
        self.type_into("#password", password).await?;
        self.click("#password-sign-in").await
    }

    /// Waits for the authorization URL the app "opened in the browser" (the debug-build test
    /// hook writes it to a file), different from `previous` if given.
    pub async fn wait_for_authorize_url(&self, previous: Option<&Url>) -> Result<Url> {
        let deadline = Instant::now() + UI_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.url_file) {
                if let Ok(url) = Url::parse(text.trim()) {
                    if Some(&url) != previous {
                        return Ok(url);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(timeout(
                    "the app to open the authorization URL (is target/debug/confab a debug build?)",
                    UI_TIMEOUT,
                    &self.log,
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Delivers a redirect the way the OS does on Linux: starts the app binary again with the URL
    /// as its only argument, on the same session bus. The single-instance plugin hands it to the
    /// running app and the second process exits.
    pub async fn deliver_redirect(&self, url: &str) -> Result<()> {
        let mut cmd = Command::new(&self.app);
        cmd.arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for var in CONFAB_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().map_err(|source| Error::Io {
            what: "starting the second app instance".into(),
            source,
        })?;
        match tokio::time::timeout(UI_TIMEOUT, child.wait()).await {
            Ok(Ok(_status)) => Ok(()),
            Ok(Err(source)) => Err(Error::Io {
                what: "waiting for the second app instance".into(),
                source,
            }),
            Err(_) => Err(timeout(
                "the second app instance to hand the URL over and exit (single-instance needs the session bus)",
                UI_TIMEOUT,
                &self.log,
            )),
        }
    }

    /// A command running in the app's desktop session: its temp HOME, XDG dirs and session bus
    /// (like `xdg-open` started by a browser next to the app). stdin is closed; killed on drop.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for var in CONFAB_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Saves a screenshot of the window to `artifacts/e2e/<name>.png` and returns its path.
    /// Waits a second first: WebKit under Xvfb may otherwise capture the previous frame.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let png = self.client.screenshot().await?;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).map_err(|source| Error::Io {
            what: format!("writing {}", path.display()),
            source,
        })?;
        Ok(path)
    }

    /// Everything the page keeps that a script could read: localStorage, sessionStorage and
    /// the whole DOM, as one string.
    pub async fn page_contents(&self) -> Result<String> {
        let value = self
            .client
            .execute(
                "const dump = (s) => { const o = {}; for (let i = 0; i < s.length; i++) { const k = s.key(i); o[k] = s.getItem(k); } return o; };\
                 return JSON.stringify({ local: dump(window.localStorage), session: dump(window.sessionStorage), dom: document.documentElement.outerHTML });",
                vec![],
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Ends the WebDriver session (which quits the app); the rest is cleaned up on drop.
    pub async fn close(self) -> Result<()> {
        self.client.clone().close().await?;
        Ok(())
    }
}

/// The display name the test IdP gives `user` (`alice` → "Alice Example").
pub fn display_name(user: &str) -> String {
    let mut chars = user.chars();
    match chars.next() {
        Some(first) => format!("{}{} Example", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// The base64url of a JWT header's first key, as every JWT here starts: `{"alg":` or
/// `{"typ":`. Long enough that a binary file (a GPU shader cache in HOME, the encrypted vault)
/// does not hold it by chance, as it may hold the three bytes `eyJ`.
pub const JWT_PREFIXES: [&str; 2] = ["eyJhbGciOi", "eyJ0eXAiOi"];

/// Every regular file under `root` that holds the start of a JWT ([`JWT_PREFIXES`]).
pub fn files_with_jwt(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = JWT_PREFIXES
        .iter()
        .flat_map(|prefix| files_containing(root, prefix.as_bytes()))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Panics unless none of `needles` is readable in any file under `dir`. The scan is shown to
/// work first: a plaintext copy of the first needle planted in `dir` must be found (and is
/// removed again).
pub fn assert_unreadable_on_disk(dir: &Path, needles: &[&str]) {
    let Some(first) = needles.first() else {
        return;
    };
    let planted = dir.join("planted-plaintext-copy.txt");
    std::fs::write(&planted, first).expect("plant a plaintext copy");
    assert_eq!(
        files_containing(dir, first.as_bytes()),
        vec![planted.clone()],
        "the scan finds the planted copy (and nothing else)"
    );
    std::fs::remove_file(&planted).expect("remove the planted copy");
    for needle in needles {
        assert_eq!(
            files_containing(dir, needle.as_bytes()),
            Vec::<PathBuf>::new(),
            "{needle:?} is readable in {}",
            dir.display()
        );
    }
}

/// Every regular file under `root` whose bytes contain `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                if !needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Long runs of token characters in `text` (40+ of `A-Za-z0-9-_.`), which is what JWTs, opaque
/// OAuth tokens and PKCE verifiers look like.
pub fn token_shaped_strings(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            run.push(c);
        } else {
            if run.len() >= 40 {
                found.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    found
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Plays the browser following a loopback redirect: a plain HTTP/1.1 GET of `url` (which must be
/// `http://127.0.0.1:{port}/...`). Returns the status code and the body.
pub async fn browser_get(url: &Url) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = url
        .port()
        .ok_or_else(|| Error::Other(format!("{url} has no port")))?;
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Io { what, source }
    };
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(io("connecting to the loopback redirect"))?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: confab-e2e\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io("sending the loopback request"))?;
    let mut response = Vec::new();
    tokio::time::timeout(UI_TIMEOUT, stream.read_to_end(&mut response))
        .await
        .map_err(|_| Error::Other("the loopback listener did not answer".into()))?
        .map_err(io("reading the loopback response"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Other(format!("not an HTTP response: {text:.80}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shaped_strings_finds_jwts_and_opaque_tokens_only() {
        let jwt =
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
        let opaque = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
        let page = format!("<p>Signed in as Alice Example</p><i>{jwt}</i> x {opaque}");
        assert_eq!(
            token_shaped_strings(&page),
            vec![jwt.to_owned(), opaque.to_owned()],
            "JWTs and long opaque tokens are flagged"
        );
        assert!(
            token_shaped_strings("<p>Signed in as Alice Example</p> http://127.0.0.1:8400")
                .is_empty(),
            "ordinary page text is not flagged"
        );
    }

    #[test]
    fn display_names_follow_the_test_idp() {
        assert_eq!(
            display_name("bob"),
            "Bob Example",
            "sign_in_as waits for the IdP's name of the user"
        );
    }

    #[test]
    fn missing_display_is_a_clear_failure() {
        assert!(
            Error::NoDisplay.to_string().contains("xvfb-run"),
            "the message says how to run the tests"
        );
    }
}
