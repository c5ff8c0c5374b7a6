//! Runs the test identity provider (`tests/idp/server.mjs`, Node + oidc-provider) as a child process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use url::Url;

use crate::child::{log_tail, secs, wait_ready, Ready};
use crate::error::{Error, Result};

/// Client id of the public native client the IdP registers.
pub const CLIENT_ID: &str = "confab-desktop";
/// Private-use redirect URI registered for [`CLIENT_ID`].
pub const PRIVATE_USE_REDIRECT_URI: &str = "dev.confab.chat:/oauth/callback";
/// Resource indicator (RFC 8707) of the chat service; optional, the IdP defaults to it.
pub const CHAT_RESOURCE: &str = "urn:confab:chat";
/// Default `aud` of access tokens.
pub const DEFAULT_AUDIENCE: &str = "confab-chat";

/// Prefix of the single line the IdP prints on stdout once it accepts requests.
const READY_PREFIX: &str = "CONFAB_IDP_READY issuer=";
/// How long the IdP may take to start (Node start-up plus key generation; a loaded CI box is slow).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Timeout of each admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the IdP completes interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdpMode {
    /// Login as `login_hint` (default alice) and consent without forms; admin routes enabled.
    #[default]
    Auto,
    /// Real login and consent forms (the demo); no admin routes.
    Interactive,
}

impl IdpMode {
    fn as_env(self) -> &'static str {
        match self {
            IdpMode::Auto => "auto",
            IdpMode::Interactive => "interactive",
        }
    }
}

/// Parameters of [`Idp::start`].
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// Access token lifetime (whole seconds; at least 1 s).
    pub access_ttl: Duration,
    /// Refresh token lifetime (whole seconds; at least 1 s).
    pub refresh_ttl: Duration,
    /// `aud` of the JWT access tokens.
    pub audience: String,
    /// Interaction mode.
    pub mode: IdpMode,
    /// More `IDP_*` variables for the IdP, e.g. `("IDP_REVOCATION_IN", "rfc8414")` (the
    /// interoperability switches in `tests/idp/README.md`).
    pub env: Vec<(String, String)>,
}

impl Default for IdpOptions {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(86_400),
            audience: DEFAULT_AUDIENCE.to_owned(),
            mode: IdpMode::Auto,
            env: Vec::new(),
        }
    }
}

impl IdpOptions {
    /// Adds one `IDP_*` variable to [`IdpOptions::env`].
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Request counters kept by the IdP (auto mode only), from `GET /__test/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct IdpStats {
    /// Every POST to the token endpoint, whatever its grant type or outcome.
    pub token_requests: u64,
    /// Token requests with `grant_type=authorization_code`.
    pub authorization_code_requests: u64,
    /// Token requests with `grant_type=refresh_token`.
    pub refresh_requests: u64,
    /// POSTs to the revocation endpoint.
    pub revocations: u64,
    /// GETs of the authorization endpoint.
    pub authorization_requests: u64,
}

/// A running test IdP. The process is killed when this value is dropped.
#[derive(Debug)]
pub struct Idp {
    issuer: Url,
    mode: IdpMode,
    audience: String,
    log_path: PathBuf,
    http: reqwest::Client,
    // Field order matters for drop: the child is killed before the pipes close.
    child: Child,
    // Held open so the IdP exits by itself if this process dies without running destructors.
    _stdin: Option<ChildStdin>,
    // Held so the IdP never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Idp {
    /// Starts `node server.mjs` in `tests/idp` on an ephemeral loopback port and waits (30 s at
    /// most) for its ready line. Node is `$CONFAB_NODE` or `node` from `PATH`.
    ///
    /// A start that prints nothing within the deadline is killed and tried once more, with a
    /// warning naming the first attempt's log: one CI run saw node stall after loading
    /// oidc-provider (no other line in its log) where every other start in the run took
    /// about 0.3 s. The IdP is a test peer, not code under test; a second stall fails as before.
    pub async fn start(options: IdpOptions) -> Result<Idp> {
        match Self::start_once(&options).await {
            Err(Error::ReadyTimeout { seconds, log, tail }) => {
                eprintln!(
                    "warning: the test IdP printed no ready line within {seconds} s (log {}):\n{tail}\nstarting it once more",
                    log.display()
                );
                Self::start_once(&options).await
            }
            other => other,
        }
    }

    async fn start_once(options: &IdpOptions) -> Result<Idp> {
        let dir = idp_dir();
        let node = std::env::var("CONFAB_NODE").unwrap_or_else(|_| "node".to_owned());
        check_node(&node).await?;
        if !dir.join("node_modules").join("oidc-provider").is_dir() {
            return Err(Error::NodeModulesMissing { dir });
        }

        let log = tempfile::Builder::new()
            .prefix("confab-idp-")
            .suffix(".log")
            .tempfile()?;
        let (log_file, log_path) = log.keep().map_err(|e| Error::Io(e.error))?;

        let mut child = Command::new(&node)
            .arg("server.mjs")
            .current_dir(&dir)
            .env("IDP_PORT", "0")
            .env("IDP_MODE", options.mode.as_env())
            .env("IDP_ACCESS_TTL", secs(options.access_ttl).to_string())
            .env("IDP_REFRESH_TTL", secs(options.refresh_ttl).to_string())
            .env("IDP_CHAT_AUDIENCE", &options.audience)
            .env("IDP_EXIT_ON_STDIN_EOF", "1")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::NodeNotFound {
                program: node.clone(),
                source,
            })?;

        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Unexpected("child stdout was not captured".into()))?;
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(stdout).lines();

        let ready = wait_ready(&mut lines, &mut child, READY_PREFIX, READY_DEADLINE).await;
        let issuer = match ready {
            Ready::Line { line, value } => {
                Url::parse(&value).map_err(|_| Error::BadReadyLine { line })?
            }
            Ready::Exited(status) => {
                return Err(Error::ExitedBeforeReady {
                    status,
                    tail: log_tail(&log_path),
                    log: log_path,
                });
            }
            Ready::Io(e) => return Err(Error::Io(e)),
            Ready::TimedOut => {
                let _ = child.start_kill();
                return Err(Error::ReadyTimeout {
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

        Ok(Idp {
            issuer,
            mode: options.mode,
            audience: options.audience.clone(),
            log_path,
            http,
            child,
            _stdin: stdin,
            _stdout: lines,
        })
    }

    /// Starts an auto-mode IdP with default lifetimes and audience.
    pub async fn start_default() -> Result<Idp> {
        Self::start(IdpOptions::default()).await
    }

    /// Issuer identifier, e.g. `http://127.0.0.1:41234` (no trailing slash in the identifier;
    /// `Url` displays it with one, so use [`Idp::issuer_str`] where exact text matters).
    pub fn issuer(&self) -> Url {
        self.issuer.clone()
    }

    /// Issuer identifier exactly as it appears in `iss` claims (no trailing slash).
    pub fn issuer_str(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_owned()
    }

    /// Mode this IdP runs in.
    pub fn mode(&self) -> IdpMode {
        self.mode
    }

    /// `aud` of the access tokens this IdP issues.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Path of the file holding the IdP's stderr (oidc-provider's precise error reasons).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The IdP's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// URL of an endpoint path under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.issuer.clone();
        url.set_path(path);
        url
    }

    /// HTTP client (redirects disabled) for requests to this IdP.
    pub(crate) fn http_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// Current request counters (auto mode only).
    pub async fn stats(&self) -> Result<IdpStats> {
        let response = self.http.get(self.endpoint("/__test/stats")).send().await?;
        let body = admin_body("/__test/stats", response).await?;
        serde_json::from_str(&body)
            .map_err(|e| Error::Unexpected(format!("stats body {body:?}: {e}")))
    }

    /// Sets every counter back to zero (auto mode only).
    pub async fn reset_stats(&self) -> Result<()> {
        let response = self
            .http
            .post(self.endpoint("/__test/reset-stats"))
            .send()
            .await?;
        admin_body("/__test/reset-stats", response).await?;
        Ok(())
    }

    /// Revokes every grant (and with it every refresh and access token) and every IdP session of
    /// `sub` (auto mode only). The next refresh of that user fails with `invalid_grant`.
    /// Returns the number of grants revoked.
    pub async fn revoke_grants(&self, sub: &str) -> Result<u64> {
        let mut url = self.endpoint("/__test/revoke-grants");
        url.query_pairs_mut().append_pair("sub", sub);
        let response = self.http.post(url).send().await?;
        let body = admin_body("/__test/revoke-grants", response).await?;
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::Unexpected(format!("revoke-grants body {body:?}: {e}")))?;
        value["revoked_grants"]
            .as_u64()
            .ok_or_else(|| Error::Unexpected(format!("revoke-grants body {body:?}")))
    }

    /// Asks the IdP to stop (SIGKILL; the IdP keeps no state worth a graceful exit) and waits.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        // `kill_on_drop` ends the process. Keep the log when a test failed, so it can be read.
        if std::thread::panicking() {
            eprintln!("test IdP log kept at {}", self.log_path.display());
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// `tests/idp` of this repository (found from this crate's manifest directory).
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("tests")
        .join("idp")
}

async fn check_node(node: &str) -> Result<()> {
    let output = Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| Error::NodeNotFound {
            program: node.to_owned(),
            source,
        })?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if major >= 20 => Ok(()),
        _ => Err(Error::NodeTooOld {
            program: node.to_owned(),
            version,
        }),
    }
}

async fn admin_body(route: &'static str, response: reqwest::Response) -> Result<String> {
    let status = response.status();
    let body = response.text().await?;
    if status.is_success() {
        Ok(body)
    } else {
        let hint = if status == reqwest::StatusCode::NOT_FOUND {
            " (admin routes exist only in auto mode)"
        } else {
            ""
        };
        Err(Error::Admin {
            route,
            status: status.as_u16(),
            body: format!("{body}{hint}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_node_is_a_clear_error() {
        let err = check_node("confab-no-such-node-binary")
            .await
            .expect_err("a missing node binary is an error, not a skip");
        let message = err.to_string();
        assert!(
            matches!(err, Error::NodeNotFound { .. }) && message.contains("cargo xtask test"),
            "the error says how to install the prerequisites: {message}"
        );
    }

    #[test]
    fn idp_dir_points_at_the_server() {
        assert!(
            idp_dir().join("server.mjs").is_file(),
            "tests/idp/server.mjs is found from the crate's manifest directory"
        );
    }
}
