//! Runs the Django test backend (`tests/backends/django/serve.py`: Django, Django REST
//! Framework and SimpleJWT under gunicorn) as a child process: the first-party backend of the
//! "password" credential profile, with its login, SimpleJWT refresh rotation and blacklist,
//! chat connection tokens verifiable through its JWKS, and the ChatSDK- and ChatKit-shaped token
//! services. The contract is in `tests/backends/django/README.md`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use url::Url;

use crate::child::{log_tail, secs, wait_ready, Ready};
use crate::error::{DjangoError, DjangoResult};

/// `aud` of the chat tokens unless `DJANGO_CHAT_AUDIENCE` says otherwise.
pub const DJANGO_CHAT_AUDIENCE: &str = "confab-chat";

/// Prefix of the single line the backend prints on stdout once it accepts requests.
const READY_PREFIX: &str = "CONFAB_DJANGO_READY base=";
/// How long the backend may take to start (about 1.5 s on an idle 2-core machine: Python
/// imports, migrations on a fresh SQLite file, an RSA key; a loaded CI box is much slower).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of each request to the test routes and the discovery document.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Parameters of [`Django::start`]. Each becomes the environment variable the README documents.
#[derive(Debug, Clone)]
pub struct DjangoOptions {
    /// SimpleJWT access token lifetime (`DJANGO_ACCESS_TTL_SECS`; whole seconds, at least 1).
    pub access_ttl: Duration,
    /// Login rate per client IP, django-ratelimit syntax (`DJANGO_LOGIN_RATE`), e.g. `5/m`.
    pub login_rate: String,
    /// Chat token lifetime, capped by the access token's remaining life
    /// (`DJANGO_CHAT_TTL_SECS`; whole seconds, at least 1).
    pub chat_ttl: Duration,
    /// ChatKit sessions and refreshes per user, django-ratelimit syntax (`DJANGO_CHATKIT_RATE`),
    /// e.g. `5/60s`.
    pub chatkit_rate: String,
    /// More variables for the backend, e.g. `("DJANGO_CHAT_AUDIENCE", "other")`; set last, so
    /// they override the fields above.
    pub env: Vec<(String, String)>,
}

impl Default for DjangoOptions {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(10),
            login_rate: "5/m".to_owned(),
            chat_ttl: Duration::from_secs(60),
            chatkit_rate: "5/60s".to_owned(),
            env: Vec::new(),
        }
    }
}

impl DjangoOptions {
    /// Adds one variable to [`DjangoOptions::env`].
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The backend's counters, from `GET /__test/stats` (all zero after [`Django::reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct DjangoStats {
    /// Every POST to the login view, whatever its outcome.
    pub login_attempts: u64,
    /// Logins answered 200.
    pub login_ok: u64,
    /// Logins refused 400 (missing or blank fields, unparsable body).
    pub login_bad_request: u64,
    /// Logins refused 401 `invalid_credentials`.
    pub login_invalid_credentials: u64,
    /// Logins refused 403 `account_inactive`.
    pub login_inactive: u64,
    /// Logins refused 429 `rate_limited`.
    pub login_rate_limited: u64,
    /// SimpleJWT refreshes answered 200.
    pub refresh_ok: u64,
    /// SimpleJWT refreshes refused (rotated, blacklisted, expired, malformed).
    pub refresh_refused: u64,
    /// SimpleJWT blacklist calls answered 200.
    pub blacklist_ok: u64,
    /// SimpleJWT blacklist calls refused.
    pub blacklist_refused: u64,
    /// Chat tokens minted by `/api/chat/token`.
    pub chat_tokens_minted: u64,
    /// `/api/chat/token` calls refused (no or bad Bearer token).
    pub chat_tokens_refused: u64,
    /// ChatSDK families started (`/api/chatsdk/token`).
    pub chatsdk_tokens: u64,
    /// ChatSDK refreshes answered 200.
    pub chatsdk_refresh_ok: u64,
    /// ChatSDK refreshes refused (reuse included).
    pub chatsdk_refresh_refused: u64,
    /// ChatSDK refresh token reuses (each revoked a family).
    pub chatsdk_reuse_events: u64,
    /// ChatSDK logouts.
    pub chatsdk_logouts: u64,
    /// ChatKit sessions created.
    pub chatkit_sessions: u64,
    /// ChatKit refreshes answered 200.
    pub chatkit_refresh_ok: u64,
    /// ChatKit refreshes refused (bad, foreign or too old client secret).
    pub chatkit_refresh_refused: u64,
    /// ChatKit calls refused 429.
    pub chatkit_rate_limited: u64,
}

/// The backend's process group: the serve.py/gunicorn arbiter leads it, the worker is in it.
/// Dropping it SIGKILLs the whole group.
#[derive(Debug)]
struct Group {
    child: Child,
    pgid: Option<u32>,
}

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // Negative pid: the whole group the leader was started with (pgid 0 = its own pid).
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running Django test backend. Its processes are killed when this value is dropped.
#[derive(Debug)]
pub struct Django {
    base: Url,
    issuer: String,
    log_path: PathBuf,
    http: reqwest::Client,
    // Field order matters for drop: the processes die before the pipes close and the data
    // directory goes.
    group: Group,
    // Held open: the backend exits by itself when it closes (this process died without
    // running destructors).
    _stdin: Option<ChildStdin>,
    // Held so the backend never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
    data_dir: tempfile::TempDir,
}

impl Django {
    /// Starts `serve.py` with the venv's Python (`$CONFAB_DJANGO_PYTHON`, else
    /// `tests/backends/django/.venv/bin/python`) on a free 127.0.0.1 port with a fresh data
    /// directory (SQLite database, signing key), waits (30 s at most) for its ready line and
    /// reads the chat token issuer from its discovery document. Inherited `DJANGO_*` variables
    /// are not passed on; test routes are on.
    pub async fn start(options: DjangoOptions) -> DjangoResult<Django> {
        let dir = django_dir();
        let python = python()?;
        let data_dir = tempfile::Builder::new()
            .prefix("confab-django-")
            .tempdir()?;
        let log = tempfile::Builder::new()
            .prefix("confab-django-")
            .suffix(".log")
            .tempfile()?;
        let (log_file, log_path) = log.keep().map_err(|e| DjangoError::Io(e.error))?;

        let mut command = Command::new(&python);
        command
            .arg("serve.py")
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--exit-on-stdin-eof")
            .current_dir(&dir);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DJANGO_") {
                command.env_remove(name);
            }
        }
        command
            .env("DJANGO_TEST_ROUTES", "1")
            .env(
                "DJANGO_ACCESS_TTL_SECS",
                secs(options.access_ttl).to_string(),
            )
            .env("DJANGO_LOGIN_RATE", &options.login_rate)
            .env("DJANGO_CHAT_TTL_SECS", secs(options.chat_ttl).to_string())
            .env("DJANGO_CHATKIT_RATE", &options.chatkit_rate)
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| DjangoError::Spawn {
            program: python.clone(),
            source,
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| DjangoError::Unexpected("child stdout was not captured".into()))?;
        let stdin = child.stdin.take();
        let pgid = child.id();
        let mut group = Group { child, pgid };
        let mut lines = BufReader::new(stdout).lines();

        let ready = wait_ready(&mut lines, &mut group.child, READY_PREFIX, READY_DEADLINE).await;
        let base = match ready {
            Ready::Line { line, value } => {
                Url::parse(&value).map_err(|_| DjangoError::BadReadyLine { line })?
            }
            Ready::Exited(status) => {
                return Err(DjangoError::ExitedBeforeReady {
                    status,
                    tail: log_tail(&log_path),
                    log: log_path,
                });
            }
            Ready::Io(e) => return Err(DjangoError::Io(e)),
            Ready::TimedOut => {
                return Err(DjangoError::ReadyTimeout {
                    seconds: READY_DEADLINE.as_secs(),
                    tail: log_tail(&log_path),
                    log: log_path,
                });
            }
        };

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ADMIN_TIMEOUT)
            .build()?;
        let mut django = Django {
            base,
            issuer: String::new(),
            log_path,
            http,
            group,
            _stdin: stdin,
            _stdout: lines,
            data_dir,
        };
        django.issuer = django.discover_issuer().await?;
        Ok(django)
    }

    /// Starts a backend with [`DjangoOptions::default`].
    pub async fn start_default() -> DjangoResult<Django> {
        Self::start(DjangoOptions::default()).await
    }

    async fn discover_issuer(&self) -> DjangoResult<String> {
        const ROUTE: &str = "/.well-known/openid-configuration";
        let response = self.http.get(self.endpoint(ROUTE)).send().await?;
        let body = admin_body(ROUTE, response).await?;
        let doc: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| DjangoError::Unexpected(format!("discovery body {body:?}: {e}")))?;
        doc["issuer"].as_str().map(str::to_owned).ok_or_else(|| {
            DjangoError::Unexpected(format!("discovery body {body:?} has no issuer"))
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234/` (`Url` displays a trailing slash).
    pub fn base_url(&self) -> Url {
        self.base.clone()
    }

    /// `iss` of the chat tokens, exactly as in the tokens and the discovery document (the base
    /// URL without trailing slash unless `DJANGO_CHAT_ISSUER` was given). The chat server is
    /// configured with this issuer and finds the keys at `<issuer>/.well-known/...`.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// URL of a path on the backend, e.g. `endpoint("/api/authuser/login/")`.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Current counters.
    pub async fn stats(&self) -> DjangoResult<DjangoStats> {
        const ROUTE: &str = "/__test/stats";
        let response = self.http.get(self.endpoint(ROUTE)).send().await?;
        let body = admin_body(ROUTE, response).await?;
        serde_json::from_str(&body)
            .map_err(|e| DjangoError::Unexpected(format!("stats body {body:?}: {e}")))
    }

    /// Sets every counter back to zero and empties the rate-limit cache (login and ChatKit
    /// limits start afresh). Users, SimpleJWT's blacklist and ChatSDK families stay.
    pub async fn reset(&self) -> DjangoResult<()> {
        const ROUTE: &str = "/__test/reset";
        let response = self.http.post(self.endpoint(ROUTE)).send().await?;
        admin_body(ROUTE, response).await?;
        Ok(())
    }

    /// How many refresh tokens of `username` the backend would still accept (issued, not
    /// blacklisted, not expired), from `GET /__test/live-refresh-tokens`: 0 after a sign-out
    /// blacklisted the app's token, 1 while one app holds a rotated token.
    pub async fn live_refresh_tokens(&self, username: &str) -> DjangoResult<u64> {
        const ROUTE: &str = "/__test/live-refresh-tokens";
        let mut url = self.endpoint(ROUTE);
        url.query_pairs_mut().append_pair("username", username);
        let response = self.http.get(url).send().await?;
        let body = admin_body(ROUTE, response).await?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("live").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| DjangoError::Unexpected(format!("live tokens body {body:?}")))
    }

    /// The backend's stderr so far: gunicorn's messages, one line per request, one per login,
    /// refresh and token event (never a token value).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Path of the file holding the backend's stderr (kept when a test panics).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The backend's data directory (SQLite database, chat signing key); removed on drop.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Pid of the serve.py process (gunicorn's arbiter, leader of the backend's process group);
    /// `None` once it has been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.group.child.id()
    }

    /// Kills the backend's processes (SIGKILL to the group; it keeps nothing worth a graceful
    /// exit) and waits for serve.py to exit.
    pub async fn stop(mut self) -> DjangoResult<()> {
        self.group.kill();
        self.group.child.wait().await?;
        Ok(())
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        // The group is killed when `group` drops. Keep the log when a test failed.
        if std::thread::panicking() {
            eprintln!(
                "Django test backend log kept at {}",
                self.log_path.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// `tests/backends/django` of this repository (found from this crate's manifest directory).
pub fn django_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("tests")
        .join("backends")
        .join("django")
}

/// The interpreter to run serve.py with: `$CONFAB_DJANGO_PYTHON`, else the venv's.
fn python() -> DjangoResult<PathBuf> {
    let python = match std::env::var_os("CONFAB_DJANGO_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => django_dir().join(".venv").join("bin").join("python"),
    };
    if python.is_file() {
        Ok(python)
    } else {
        Err(DjangoError::VenvMissing { python })
    }
}

async fn admin_body(route: &'static str, response: reqwest::Response) -> DjangoResult<String> {
    let status = response.status();
    let body = response.text().await?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(DjangoError::Admin {
            route,
            status: status.as_u16(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_dir_points_at_the_backend() {
        assert!(
            django_dir().join("serve.py").is_file(),
            "tests/backends/django/serve.py is found from the crate's manifest directory"
        );
    }

    #[test]
    fn a_missing_venv_names_the_setup_command() {
        let message = DjangoError::VenvMissing {
            python: PathBuf::from("nowhere/bin/python"),
        }
        .to_string();
        assert!(
            message.contains("cargo xtask setup") && message.contains("nowhere/bin/python"),
            "the error names the interpreter and how to create it: {message}"
        );
    }
}
