//! Real processes of Confab's scale-out path for tests: Redis (`redis-server`, persistent),
//! Centrifugo nodes started from the repository's `deploy/centrifugo/config.json` with this
//! run's addresses as environment overrides, and nginx in front of them rendered from
//! `deploy/nginx/confab.conf.template`.
//!
//! Every process listens on a free 127.0.0.1 port, lives in a temp directory of its own (its
//! log, data and config are there), runs as the leader of its own process group and gets
//! SIGKILL, the whole group, when it is dropped or killed. Starts wait for the process to
//! answer (Redis `PING`, Centrifugo `/health`, nginx's port) with a deadline; a start that
//! fails says why with the last lines of the process's log.
//!
//! ```no_run
//! # async fn demo() -> confab_testkit::ClusterResult<()> {
//! use confab_testkit::cluster::{Centrifugo, Nginx, Redis};
//!
//! let backend = "http://127.0.0.1:8080"; // confab-server in its backend role
//! let redis = Redis::start().await?;
//! let a = Centrifugo::start(backend, Some(&redis), "node-a").await?;
//! let b = Centrifugo::start(backend, Some(&redis), "node-b").await?;
//! let lb = Nginx::start(&[a.port(), b.port()]).await?;
//! let published = a
//!     .publish("room:team", &serde_json::json!({"text": "hi"}), Some("key-1"))
//!     .await?;
//! // a client connected to b.url() or lb.url() receives it
//! # let _ = published; Ok(()) }
//! ```

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::desktop::{find_on_path, free_port, log_tail, repo_root, Deadline, ProcessGroup};
use crate::error::{ClusterError, ClusterResult, DesktopError};

/// The `X-Confab-Proxy-Secret` the Centrifugo nodes send to the backend's proxy endpoints:
/// give the same to confab-server (`Config::centrifugo_proxy_secret`).
pub const PROXY_SECRET: &str = "a-proxy-secret-of-the-test-cluster";
/// The key of the nodes' server API (`X-API-Key`); [`Centrifugo::publish`] sends it.
pub const API_KEY: &str = "an-api-key-of-the-test-cluster";

/// How long a process may take to answer after it was started (a loaded CI box is slow).
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How often readiness is tried while starting.
const POLL: Duration = Duration::from_millis(20);
/// Timeout of one readiness probe or server API call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A temp directory of one process, with its log file.
fn process_dir(prefix: &str) -> ClusterResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| io_error(format!("creating a directory for {prefix}"), source))
}

fn io_error(what: String, source: std::io::Error) -> ClusterError {
    ClusterError::Process(DesktopError::Io { what, source })
}

/// `cmd` with stdin closed and stdout and stderr appended to `log`.
fn logging_to(mut cmd: Command, log: &Path) -> ClusterResult<Command> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|source| io_error(format!("opening {}", log.display()), source))?;
    let err = file
        .try_clone()
        .map_err(|source| io_error(format!("opening {}", log.display()), source))?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(err);
    Ok(cmd)
}

/// Polls `ready` until it holds; fails early when the process exits, or at the deadline, with
/// the tail of its log.
async fn wait_ready<F, Fut>(
    process: &mut ProcessGroup,
    what: &str,
    log: &Path,
    mut ready: F,
) -> ClusterResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Deadline::after(START_DEADLINE);
    loop {
        if ready().await {
            return Ok(());
        }
        if !process.is_running() {
            return Err(DesktopError::Exited {
                what: what.to_owned(),
                details: log_tail(log),
            }
            .into());
        }
        if deadline.passed() {
            return Err(deadline
                .timed_out(format!("{what} to answer"), log_tail(log))
                .into());
        }
        tokio::time::sleep(POLL.min(deadline.left())).await;
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
async fn accepts(port: u16) -> bool {
    matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(("127.0.0.1", port))).await,
        Ok(Ok(_))
    )
}

/// A program: `$env_var`, else the first `name` on `PATH`, else the first of `fallbacks` that
/// exists.
fn program(
    env_var: &str,
    name: &'static str,
    fallbacks: &[&str],
    hint: &'static str,
) -> ClusterResult<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = find_on_path(name) {
        return Ok(p);
    }
    fallbacks
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DesktopError::Missing {
                what: name,
                path: format!("${env_var} or PATH"),
                hint,
            }
            .into()
        })
}

// ------------------------------------------------------------------ Redis

/// `redis-server` on a free port with its own directory. Persistence is on, every write
/// fsynced (`appendonly yes`, `appendfsync always`; no RDB snapshots), so a restart, even
/// after SIGKILL, keeps what Centrifugo stored: history streams and their epochs.
pub struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    process: Option<ProcessGroup>,
}

impl Redis {
    /// Starts it and waits until it answers `PING` (after loading its append-only file).
    pub async fn start() -> ClusterResult<Self> {
        let mut redis = Self {
            dir: process_dir("confab-redis-")?,
            port: free_port()?,
            process: None,
        };
        redis.run().await?;
        Ok(redis)
    }

    async fn run(&mut self) -> ClusterResult<()> {
        let bin = program(
            "CONFAB_REDIS_SERVER",
            "redis-server",
            &[],
            "install Debian's redis-server (`cargo xtask setup` does) or set CONFAB_REDIS_SERVER",
        )?;
        let log = self.log_path();
        let mut cmd = Command::new(bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--logfile", ""])
            .current_dir(self.dir.path());
        let mut process = ProcessGroup::spawn(logging_to(cmd, &log)?, "redis-server")?;
        let port = self.port;
        wait_ready(&mut process, "redis-server", &log, || ping(port)).await?;
        self.process = Some(process);
        Ok(())
    }

    /// The pid of the running redis-server (its process group leader), for reading its memory from
    /// `/proc`; `None` after [`Self::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ProcessGroup::pid)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, as Centrifugo's `engine.redis.address` takes it.
    pub fn address(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its directory (the append-only files, its log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// How many Centrifugo nodes are subscribed to `channel` (a Centrifugo channel such as
    /// `room:team`) in Redis: `PUBSUB NUMSUB` of Centrifugo's Redis channel for it (default
    /// prefix `centrifugo`). After Redis comes back, a node delivers a channel's publications
    /// live again only once it has subscribed again.
    pub async fn nodes_subscribed(&self, channel: &str) -> ClusterResult<u64> {
        let reply = self
            .command(&["PUBSUB", "NUMSUB", &format!("centrifugo.client.{channel}")])
            .await?;
        // *2 $<len> <name> :<count>
        reply
            .lines()
            .nth(3)
            .and_then(|l| l.strip_prefix(':'))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| {
                ClusterError::Unexpected(format!("redis PUBSUB NUMSUB answered {reply:?}"))
            })
    }

    /// Sends one command on a connection of its own and returns its whole reply as RESP text.
    async fn command(&self, args: &[&str]) -> ClusterResult<String> {
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let port = self.port;
        let exchange = async move {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(request.as_bytes()).await?;
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&buf[..n]);
                if complete(&reply) {
                    break;
                }
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).into_owned())
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => {
                result.map_err(|source| io_error(format!("redis {}", args.join(" ")), source))
            }
            Err(_) => Err(ClusterError::Unexpected(format!(
                "redis did not answer {} within {REQUEST_TIMEOUT:?}",
                args.join(" ")
            ))),
        }
    }

    /// SIGKILL, as in a crash; returns once it is gone. Nothing fsynced is lost.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Kills it (if running) and starts it again on the same port and directory; returns once
    /// it answers `PING`, which it does only after its append-only file is loaded.
    pub async fn restart(&mut self) -> ClusterResult<()> {
        self.kill();
        self.run().await
    }
}

/// Whether `reply` is one whole RESP reply (simple types, bulk strings and flat arrays).
fn complete(reply: &[u8]) -> bool {
    fn element(r: &[u8]) -> Option<usize> {
        let end = r.windows(2).position(|w| w == b"\r\n")?;
        let head = std::str::from_utf8(&r[1..end]).ok()?;
        match r.first()? {
            b'$' => {
                let len: i64 = head.parse().ok()?;
                let body = usize::try_from(len).map_or(0, |l| l + 2);
                (r.len() >= end + 2 + body).then_some(end + 2 + body)
            }
            b'*' => {
                let count: i64 = head.parse().ok()?;
                let mut at = end + 2;
                for _ in 0..count.max(0) {
                    at += element(&r[at..])?;
                }
                Some(at)
            }
            _ => Some(end + 2),
        }
    }
    element(reply).is_some()
}

/// Whether Redis answers `PING` with `PONG` (while it loads its data it answers `-LOADING`).
async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        Some(buf[..n].starts_with(b"+PONG"))
    };
    matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}

// ------------------------------------------------------------------ Centrifugo

/// The Centrifugo binary: `CONFAB_CENTRIFUGO`, else `$CONFAB_TOOLS_DIR/bin/centrifugo`, else
/// `target/tools/bin/centrifugo` of the repository (where `cargo xtask setup` builds v6.9.1).
pub fn centrifugo_binary() -> ClusterResult<PathBuf> {
    if let Some(p) = std::env::var_os("CONFAB_CENTRIFUGO") {
        return Ok(PathBuf::from(p));
    }
    let tools = std::env::var_os("CONFAB_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target").join("tools"));
    let bin = tools.join("bin").join("centrifugo");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(DesktopError::Missing {
            what: "Centrifugo",
            path: bin.display().to_string(),
            hint: "run `cargo xtask setup` (it builds v6.9.1 with `go install`) or set CONFAB_CENTRIFUGO",
        }
        .into())
    }
}

/// The repository's Centrifugo configuration, the one file tests, demo and docs share.
pub fn centrifugo_config() -> PathBuf {
    repo_root()
        .join("deploy")
        .join("centrifugo")
        .join("config.json")
}

/// Where a publication landed in its channel's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its offset (0 in a channel without history).
    pub offset: u64,
    /// The stream's epoch (changes when the stream is lost).
    pub epoch: String,
}

/// A channel's history as the server API reads it.
#[derive(Debug, Clone)]
pub struct History {
    /// The publications asked for, oldest first: offset and data.
    pub publications: Vec<(u64, Value)>,
    /// The stream's top offset.
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: String,
}

/// One Centrifugo node from [`centrifugo_config`], on a free port, with a backend (confab-server
/// in its backend role) and, for a cluster, a Redis engine.
pub struct Centrifugo {
    dir: tempfile::TempDir,
    port: u16,
    env: Vec<(String, String)>,
    name: String,
    process: Option<ProcessGroup>,
    http: reqwest::Client,
}

impl Centrifugo {
    /// Starts a node named `node_name` whose backend is at `backend` (`http://host:port`):
    /// its JWKS verifies the connection tokens, its subscribe and RPC proxies are called with
    /// [`PROXY_SECRET`]. With `redis` the node uses the Redis engine (broker, presence,
    /// history), so nodes on the same Redis form a cluster; without, the memory engine.
    /// Returns once `/health` answers.
    pub async fn start(
        backend: &str,
        redis: Option<&Redis>,
        node_name: &str,
    ) -> ClusterResult<Self> {
        Self::start_on(free_port()?, backend, redis, node_name).await
    }

    /// [`Centrifugo::start`] on a given port: for a backend that must know the node's server
    /// API address before the node starts (it publishes through it).
    pub async fn start_on(
        port: u16,
        backend: &str,
        redis: Option<&Redis>,
        node_name: &str,
    ) -> ClusterResult<Self> {
        let backend = backend.trim_end_matches('/');
        let secret_header = json!({ "X-Confab-Proxy-Secret": PROXY_SECRET }).to_string();
        let mut env: Vec<(String, String)> = vec![
            ("CENTRIFUGO_HTTP_SERVER_PORT".into(), port.to_string()),
            ("CENTRIFUGO_NODE_NAME".into(), node_name.into()),
            (
                "CENTRIFUGO_CLIENT_TOKEN_JWKS_PUBLIC_ENDPOINT".into(),
                format!("{backend}/api/chat/jwks"),
            ),
            // The backend is on this machine over plain http (the file's is https).
            (
                "CENTRIFUGO_CLIENT_TOKEN_INSECURE_SKIP_JWKS_ENDPOINT_SAFETY_CHECK".into(),
                "true".into(),
            ),
            (
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_ENDPOINT".into(),
                format!("{backend}/api/centrifugo/subscribe"),
            ),
            (
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_HTTP_STATIC_HEADERS".into(),
                secret_header.clone(),
            ),
            (
                "CENTRIFUGO_RPC_PROXY_ENDPOINT".into(),
                format!("{backend}/api/centrifugo/rpc"),
            ),
            (
                "CENTRIFUGO_RPC_PROXY_HTTP_STATIC_HEADERS".into(),
                secret_header,
            ),
            ("CENTRIFUGO_HTTP_API_KEY".into(), API_KEY.into()),
        ];
        if let Some(redis) = redis {
            env.push(("CENTRIFUGO_ENGINE_TYPE".into(), "redis".into()));
            env.push(("CENTRIFUGO_ENGINE_REDIS_ADDRESS".into(), redis.address()));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ClusterError::Http {
                what: "building an HTTP client".into(),
                source,
            })?;
        let mut node = Self {
            dir: process_dir("confab-centrifugo-")?,
            port,
            env,
            name: node_name.to_owned(),
            process: None,
            http,
        };
        node.run().await?;
        Ok(node)
    }

    async fn run(&mut self) -> ClusterResult<()> {
        let log = self.log_path();
        let mut cmd = Command::new(centrifugo_binary()?);
        cmd.arg("-c")
            .arg(centrifugo_config())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        let what = format!("Centrifugo {}", self.name);
        let mut process = ProcessGroup::spawn(logging_to(cmd, &log)?, &what)?;
        let health = format!("{}/health", self.http_url());
        let http = self.http.clone();
        wait_ready(&mut process, &what, &log, || {
            let (http, health) = (http.clone(), health.clone());
            async move {
                http.get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await?;
        self.process = Some(process);
        Ok(())
    }

    /// The pid of the running node (its process group leader), for reading its memory from
    /// `/proc`; `None` after [`Self::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ProcessGroup::pid)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its node name (`CENTRIFUGO_NODE_NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The WebSocket URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.port)
    }

    /// `http://127.0.0.1:<port>` (server API, health).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("centrifugo.log")
    }

    /// SIGKILL, as in a crash: its clients lose their connections. Returns once it is gone.
    pub fn kill(&mut self) {
        self.process = None;
    }

    /// Kills it (if running) and starts it again on the same port with the same settings.
    pub async fn restart(&mut self) -> ClusterResult<()> {
        self.kill();
        self.run().await
    }

    /// Calls a server API method (`POST /api/<method>` with the API key) and returns its
    /// `result`; an `error` in the answer is [`ClusterError::Api`].
    pub async fn api(&self, method: &str, params: &Value) -> ClusterResult<Value> {
        let resp = self
            .http
            .post(format!("{}/api/{method}", self.http_url()))
            .header("X-API-Key", API_KEY)
            .json(params)
            .send()
            .await
            .map_err(|source| ClusterError::Http {
                what: format!("Centrifugo {} server API {method}", self.name),
                source,
            })?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|source| ClusterError::Http {
            what: format!("reading Centrifugo {}'s {method} answer", self.name),
            source,
        })?;
        if !status.is_success() {
            return Err(ClusterError::Api {
                method: method.to_owned(),
                detail: format!("HTTP {status}: {body}"),
            });
        }
        if let Some(e) = body.get("error") {
            return Err(ClusterError::Api {
                method: method.to_owned(),
                detail: e.to_string(),
            });
        }
        Ok(body.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Publishes `data` to `channel` through this node's server API. With an
    /// `idempotency_key`, Centrifugo publishes a repeated call only once (for 5 minutes), so a
    /// publish that may or may not have happened (Redis went away) can be retried safely.
    pub async fn publish(
        &self,
        channel: &str,
        data: &Value,
        idempotency_key: Option<&str>,
    ) -> ClusterResult<Published> {
        let mut params = json!({ "channel": channel, "data": data });
        if let Some(key) = idempotency_key {
            params["idempotency_key"] = json!(key);
        }
        let result = self.api("publish", &params).await?;
        Ok(Published {
            offset: result.get("offset").and_then(Value::as_u64).unwrap_or(0),
            epoch: epoch_of(&result),
        })
    }

    /// The last `limit` publications of `channel` (oldest first) and its stream position.
    pub async fn history(&self, channel: &str, limit: u32) -> ClusterResult<History> {
        let result = self
            .api(
                "history",
                &json!({ "channel": channel, "limit": limit, "reverse": true }),
            )
            .await?;
        let mut publications: Vec<(u64, Value)> = result
            .get("publications")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|p| {
                        (
                            p.get("offset").and_then(Value::as_u64).unwrap_or(0),
                            p.get("data").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        publications.reverse();
        Ok(History {
            publications,
            offset: result.get("offset").and_then(Value::as_u64).unwrap_or(0),
            epoch: epoch_of(&result),
        })
    }
}

fn epoch_of(result: &Value) -> String {
    result
        .get("epoch")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

// ------------------------------------------------------------------ nginx

/// The repository's nginx site for the Centrifugo nodes (an envsubst template).
pub fn nginx_template() -> PathBuf {
    repo_root()
        .join("deploy")
        .join("nginx")
        .join("confab.conf.template")
}

/// nginx as the WebSocket load balancer in front of Centrifugo nodes: the repository's
/// [`nginx_template`] rendered with this run's ports, included by a main config of its own
/// (pid, logs and temp paths in its directory), run with `daemon off`.
pub struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    _process: ProcessGroup,
}

impl Nginx {
    /// Starts nginx on a free port in front of the nodes on 127.0.0.1:`upstreams` (one per
    /// `${CENTRIFUGO_NODE_<n>}` line of the template) and waits until it listens.
    pub async fn start(upstreams: &[u16]) -> ClusterResult<Self> {
        let dir = process_dir("confab-nginx-")?;
        let port = free_port()?;
        let template_path = nginx_template();
        let template = std::fs::read_to_string(&template_path)
            .map_err(|source| io_error(format!("reading {}", template_path.display()), source))?;
        let site = render_site(&template, port, upstreams)?;
        let root = dir.path();
        for sub in ["tmp", "logs"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|source| io_error(format!("creating {sub} for nginx"), source))?;
        }
        // As root the workers would switch to the package's user, which cannot enter this
        // private directory: keep them root (the directive is ignored otherwise).
        let as_root = std::fs::metadata(root).is_ok_and(|m| m.uid() == 0);
        let main = main_config(root, as_root);
        let write = |name: &str, text: &str| {
            std::fs::write(root.join(name), text)
                .map_err(|source| io_error(format!("writing nginx's {name}"), source))
        };
        write("confab.conf", &site)?;
        write("nginx.conf", &main)?;
        let bin = program(
            "CONFAB_NGINX",
            "nginx",
            &["/usr/sbin/nginx"],
            "install Debian's nginx (`cargo xtask setup` does) or set CONFAB_NGINX",
        )?;
        let log = root.join("logs").join("error.log");
        let mut cmd = Command::new(bin);
        // -e: the log of start-up, before the config is read (the package's default is
        // under /var/log, which a non-root user cannot open).
        cmd.arg("-e")
            .arg(&log)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .current_dir(root);
        let mut process = ProcessGroup::spawn(logging_to(cmd, &log)?, "nginx")?;
        wait_ready(&mut process, "nginx", &log, || accepts(port)).await?;
        Ok(Self {
            dir,
            port,
            _process: process,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket URL clients connect to (proxied to one of the nodes).
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.port)
    }

    /// Its error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs").join("error.log")).unwrap_or_default()
    }
}

/// The template with `${NGINX_LISTEN}` and `${CENTRIFUGO_NODE_<n>}` (n = 1, 2, …) substituted,
/// as `envsubst` would; the template must have exactly one node placeholder per upstream and
/// nothing else left to substitute.
fn render_site(template: &str, port: u16, upstreams: &[u16]) -> ClusterResult<String> {
    let placeholders = (1..)
        .take_while(|n| template.contains(&format!("${{CENTRIFUGO_NODE_{n}}}")))
        .count();
    if placeholders != upstreams.len() {
        return Err(ClusterError::Template(format!(
            "the nginx template has {placeholders} node placeholder(s), given {} node(s)",
            upstreams.len()
        )));
    }
    let mut site = template.replace("${NGINX_LISTEN}", &format!("127.0.0.1:{port}"));
    for (i, upstream) in upstreams.iter().enumerate() {
        site = site.replace(
            &format!("${{CENTRIFUGO_NODE_{}}}", i + 1),
            &format!("127.0.0.1:{upstream}"),
        );
    }
    if let Some(at) = site.find("${") {
        let rest: String = site[at..].chars().take(40).collect();
        return Err(ClusterError::Template(format!(
            "the nginx template has a placeholder the harness does not fill: {rest}"
        )));
    }
    Ok(site)
}

/// The main config: what Debian's /etc/nginx/nginx.conf is to a deployment, with every path
/// in `root`.
fn main_config(root: &Path, as_root: bool) -> String {
    let r = root.display();
    let user = if as_root { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 1;
pid {r}/logs/nginx.pid;
error_log {r}/logs/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    access_log {r}/logs/access.log;
    client_body_temp_path {r}/tmp/body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fastcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    include {r}/confab.conf;
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_rendered_with_one_line_per_node() {
        let template = std::fs::read_to_string(nginx_template()).expect("the template");
        let site = render_site(&template, 4000, &[5001, 5002]).expect("renders");
        assert!(site.contains("listen 127.0.0.1:4000"), "{site}");
        assert!(site.contains("server 127.0.0.1:5001"), "{site}");
        assert!(site.contains("server 127.0.0.1:5002"), "{site}");
        assert!(!site.contains("${"), "{site}");
        let err = render_site(&template, 4000, &[5001]).expect_err("one node too few");
        assert!(err.to_string().contains("2 node placeholder"), "{err}");
    }

    #[test]
    fn a_resp_reply_is_complete_only_when_all_of_it_is_read() {
        let numsub = b"*2\r\n$14\r\ncentrifugo.x:y\r\n:2\r\n";
        assert!(complete(numsub));
        for cut in 1..numsub.len() {
            assert!(!complete(&numsub[..cut]), "{cut} bytes are not all of it");
        }
        assert!(complete(b"+PONG\r\n"));
        assert!(complete(b"$-1\r\n"));
        assert!(!complete(b"$5\r\nab"));
    }
}
