//! Load generator for confab-server (see docs/benchmarks.md, sections "Reference server" and
//! "confab-server next to Centrifugo").
//!
//! Self-contained: it runs a local EdDSA token issuer, starts the server binary against it, and
//! measures (1) idle authenticated connections held and server memory per connection,
//! (2) fan-out latency of one publication to many subscribers, (3) sustained publish throughput
//! with history persisted.
//!
//! ```sh
//! cargo build --release -p confab-server --bin confab-server --example loadgen
//! target/release/examples/loadgen --server-bin target/release/confab-server
//! ```
//!
//! With `--targets confab,centrifugo,cluster` one run measures the same three things, one
//! target after the other, against (a) confab-server alone, (b) one Centrifugo node on the
//! memory engine with confab-server as its backend, (c) two Centrifugo nodes on Redis with
//! confab-server as their backend. In that mode every idle connection is subscribed to a room
//! (as Confab clients are) and every message is sent with the `messages.send` RPC (on
//! Centrifugo: RPC proxy, the backend's store, the server API's publish, fan-out). Connection
//! tokens are chat tokens minted by the backend (`POST /api/chat/token`), which Centrifugo
//! verifies against the backend's JWKS, as in a deployment. Centrifugo and Redis are found and
//! run as the tests run them (confab-testkit's cluster harness: `$CONFAB_CENTRIFUGO` or
//! `target/tools/bin/centrifugo` from `cargo xtask setup`; `redis-server` on `PATH`).

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Parser;
use confab_testkit::cluster::{Centrifugo, Redis, API_KEY, PROXY_SECRET};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// What one run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    /// confab-server alone (embedded, one node, durable SQLite).
    Confab,
    /// One Centrifugo node, memory engine, confab-server as its backend.
    Centrifugo,
    /// Two Centrifugo nodes on Redis, confab-server as their backend: fan-out subscribers on
    /// node 1, the publisher on node 2.
    Cluster,
}

impl Target {
    fn title(self) -> &'static str {
        match self {
            Target::Confab => "confab-server",
            Target::Centrifugo => "Centrifugo, 1 node, memory",
            Target::Cluster => "Centrifugo, 2 nodes + Redis",
        }
    }
}

#[derive(Parser)]
struct Args {
    /// Path to the confab-server binary (build it in release).
    #[arg(long, default_value = "target/release/confab-server")]
    server_bin: String,
    /// Targets measured side by side in this run, comma-separated: confab, centrifugo,
    /// cluster. Without it: confab-server alone as in the "Reference server" figures (idle
    /// connections not subscribed, messages sent with the `publish` command).
    #[arg(long, value_enum, value_delimiter = ',')]
    targets: Vec<Target>,
    /// Idle connections to open.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Seconds to hold the idle connections (spans server pings).
    #[arg(long, default_value_t = 15)]
    hold_secs: u64,
    /// Subscribers for the fan-out test.
    #[arg(long, default_value_t = 1_000)]
    fanout: usize,
    /// Publications in the fan-out test.
    #[arg(long, default_value_t = 200)]
    fanout_msgs: usize,
    /// Seconds of sustained publishing.
    #[arg(long, default_value_t = 10)]
    throughput_secs: u64,
    /// Concurrent publishers (each in its own room) in the throughput test.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
}

/// How messages are sent and whether idle connections subscribe.
#[derive(Clone, Copy)]
struct Style {
    /// Idle connections subscribe to `room:general` (as Confab clients hold a room open).
    subscribe_idle: bool,
    /// Send with the `messages.send` RPC (else the `publish` command).
    rpc_send: bool,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Issuer {
    url: String,
    key: EncodingKey,
}

impl Issuer {
    fn token(&self, user: &str) -> String {
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 3600;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("bench".into());
        let claims = json!({"iss": self.url, "aud": "confab-chat", "sub": user, "exp": exp});
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signing with a valid Ed25519 key")
    }
}

async fn start_issuer() -> Arc<Issuer> {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("pkcs8");
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind issuer");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let jwk = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "bench", "alg": "EdDSA", "use": "sig"}]});
    let disc = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")});
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move { Json(disc) }),
        )
        .route("/jwks", get(move || async move { Json(jwk) }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Arc::new(Issuer {
        url,
        key: EncodingKey::from_ed_pem(pem.as_bytes()).expect("ed key"),
    })
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_sum_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| rss_kib(p)).sum()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn now_ms() -> u128 {
    now_ns() / 1_000_000
}

/// Connects and authenticates; returns the socket after the connect reply.
async fn connect(url: &str, token: &str) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("websocket connect: {e}"))?;
    ws.send(Message::Text(
        json!({"id": 1, "connect": {"token": token}})
            .to_string()
            .into(),
    ))
    .await
    .map_err(|e| format!("send connect: {e}"))?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"connect\"") => return Ok(ws),
            Some(Ok(Message::Text(t))) if t.contains("\"error\"") => {
                return Err(format!("connect refused: {t}"))
            }
            Some(Ok(_)) => {}
            other => return Err(format!("connection closed during connect: {other:?}")),
        }
    }
}

/// Sends `cmd` with `id` and returns its reply (pushes and pings before it are skipped).
async fn call(ws: &mut Ws, id: u32, cmd: Value) -> Result<Value, String> {
    let mut cmd = cmd;
    cmd["id"] = json!(id);
    ws.send(Message::Text(cmd.to_string().into()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            return Err(format!("closed while waiting for reply {id}"));
        };
        for line in t.lines() {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("reply: {e}"))?;
            if v["id"] == id {
                return Ok(v);
            }
        }
    }
}

/// [`call`], and an `error` reply is an error.
async fn call_ok(ws: &mut Ws, id: u32, cmd: Value) -> Result<Value, String> {
    let reply = call(ws, id, cmd).await?;
    if reply.get("error").is_some() {
        return Err(format!("error reply: {reply}"));
    }
    Ok(reply)
}

async fn subscribe(ws: &mut Ws, id: u32, room: &str) -> Result<(), String> {
    call_ok(
        ws,
        id,
        json!({"subscribe": {"channel": format!("room:{room}")}}),
    )
    .await
    .map(|_| ())
}

/// The command that sends `text` to `room` in `style` (without its id).
fn send_command(style: Style, room: &str, text: String) -> Value {
    let id = uuid::Uuid::new_v4();
    if style.rpc_send {
        let data = json!({"room": room, "id": id, "text": text, "ts": now_ms()});
        json!({"rpc": {"method": "messages.send", "data": data}})
    } else {
        let data = json!({"id": id, "author": "", "text": text, "ts": 0});
        json!({"publish": {"channel": format!("room:{room}"), "data": data}})
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A started confab-server: the process (killed on drop), its WebSocket URL and its base URL.
struct Server {
    _child: tokio::process::Child,
    pid: u32,
    ws_url: String,
    http_url: String,
}

async fn start_server(
    bin: &str,
    dir: &std::path::Path,
    issuer: &Issuer,
    extra: &str,
) -> Res<Server> {
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{}\"\ndb = \"{}\"\nlisten = \"127.0.0.1:0\"\nping_interval_secs = 5\nmax_connections_per_user = 1000000\nmax_connections_total = 1000000\nmax_pending_connections = 1000000\nmax_connections_per_address = 0\ncommands_per_second = 1000000\nclient_queue_len = 4096\nhistory_size = 1000\n{extra}",
            issuer.url,
            dir.join("bench.sqlite3").display()
        ),
    )?;
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {bin} (build it first, see the doc comment): {e}"))?;
    let pid = child.id().ok_or("confab-server exited at once")?;
    let stdout = child.stdout.take().ok_or("confab-server's stdout")?;
    let ready = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or("confab-server exited before its ready line")?;
    let ws_url = ready
        .strip_prefix("CONFAB_SERVER_READY url=")
        .ok_or_else(|| format!("unexpected ready line {ready:?}"))?
        .to_owned();
    let http_url = ws_url
        .replace("ws://", "http://")
        .trim_end_matches("/connection/websocket")
        .to_owned();
    Ok(Server {
        _child: child,
        pid,
        ws_url,
        http_url,
    })
}

/// A chat token from the backend's `POST /api/chat/token` for the issuer's `access` token.
async fn mint(http_url: &str, access: &str) -> Res<String> {
    let resp = reqwest::Client::new()
        .post(format!("{http_url}/api/chat/token"))
        .bearer_auth(access)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        return Err(format!("minting a chat token: {status} {body}").into());
    }
    let v: Value = serde_json::from_str(&body)?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in {body}").into())
}

/// One target's processes and where the load goes.
struct Setup {
    /// Idle connections go to these, round robin.
    idle_urls: Vec<String>,
    /// Fan-out subscribers and the throughput test's subscribers.
    sub_url: String,
    /// The publishers.
    pub_url: String,
    token: String,
    /// The processes that hold the client connections: their RSS is summed.
    conn_pids: Vec<u32>,
    /// Other processes whose RSS is reported beside it (the backend, Redis).
    other_pids: Vec<(&'static str, u32)>,
    _server: Server,
    _nodes: Vec<Centrifugo>,
    _redis: Option<Redis>,
    _dir: tempfile::TempDir,
}

const BACKEND_EXTRA: &str = "chat_tokens_per_minute = 1000000\nchat_token_max_ttl_secs = 3600\n";

async fn set_up(target: Target, args: &Args, issuer: &Issuer, style: Style) -> Res<Setup> {
    let dir = tempfile::tempdir()?;
    let access = issuer.token("bench");
    match target {
        Target::Confab => {
            let server = start_server(&args.server_bin, dir.path(), issuer, BACKEND_EXTRA).await?;
            // The legacy run connects with the IdP's token, the comparison with a chat token
            // as on Centrifugo (both EdDSA).
            let token = if style.rpc_send {
                mint(&server.http_url, &access).await?
            } else {
                access
            };
            Ok(Setup {
                idle_urls: vec![server.ws_url.clone()],
                sub_url: server.ws_url.clone(),
                pub_url: server.ws_url.clone(),
                token,
                conn_pids: vec![server.pid],
                other_pids: Vec::new(),
                _server: server,
                _nodes: Vec::new(),
                _redis: None,
                _dir: dir,
            })
        }
        Target::Centrifugo | Target::Cluster => {
            let redis = match target {
                Target::Cluster => Some(Redis::start().await?),
                _ => None,
            };
            let count = if redis.is_some() { 2 } else { 1 };
            let mut ports = Vec::new();
            for _ in 0..count {
                ports.push(confab_testkit::desktop::free_port()?);
            }
            // The publisher is on the last node: the backend publishes through its API first,
            // so a publication crosses Redis to reach node 1's subscribers.
            let apis: Vec<String> = ports
                .iter()
                .rev()
                .map(|p| format!("\"http://127.0.0.1:{p}/api\""))
                .collect();
            let extra = format!(
                "{BACKEND_EXTRA}centrifugo_proxy_secret = \"{PROXY_SECRET}\"\ncentrifugo_api_url = [{}]\ncentrifugo_api_key = \"{API_KEY}\"\n",
                apis.join(", ")
            );
            let server = start_server(&args.server_bin, dir.path(), issuer, &extra).await?;
            let mut nodes = Vec::new();
            for (i, port) in ports.iter().enumerate() {
                let name = format!("bench-node-{}", i + 1);
                nodes.push(
                    Centrifugo::start_on(*port, &server.http_url, redis.as_ref(), &name).await?,
                );
            }
            let token = mint(&server.http_url, &access).await?;
            let urls: Vec<String> = nodes.iter().map(Centrifugo::url).collect();
            let mut conn_pids = Vec::new();
            for n in &nodes {
                conn_pids.push(n.pid().ok_or("a Centrifugo node is not running")?);
            }
            let mut other_pids = vec![("backend", server.pid)];
            if let Some(pid) = redis.as_ref().and_then(Redis::pid) {
                other_pids.push(("redis", pid));
            }
            Ok(Setup {
                sub_url: urls[0].clone(),
                pub_url: urls[urls.len() - 1].clone(),
                idle_urls: urls,
                token,
                conn_pids,
                other_pids,
                _server: server,
                _nodes: nodes,
                _redis: redis,
                _dir: dir,
            })
        }
    }
}

/// What one target measured.
#[derive(Default)]
struct Figures {
    held: usize,
    idle: usize,
    idle_failed: usize,
    connect_secs: f64,
    rss0_kib: u64,
    rss1_kib: u64,
    per_conn: f64,
    others: Vec<(&'static str, u64, u64)>,
    fan_expected: usize,
    fan_received: usize,
    fan_errors: usize,
    p50: f64,
    p99: f64,
    max: f64,
    rtt50: f64,
    rtt99: f64,
    acked: usize,
    send_errors: usize,
    delivered: usize,
    secs: f64,
}

async fn measure(setup: &Setup, args: &Args, style: Style) -> Figures {
    let mut f = Figures {
        idle: args.idle,
        ..Figures::default()
    };
    let token = setup.token.clone();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));

    // 1. Idle connections.
    f.rss0_kib = rss_sum_kib(&setup.conn_pids);
    let others0: Vec<u64> = setup.other_pids.iter().map(|&(_, p)| rss_kib(p)).collect();
    let alive = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.idle);
    for i in 0..args.idle {
        let url = setup.idle_urls[i % setup.idle_urls.len()].clone();
        let (token, alive, failed, sem) =
            (token.clone(), alive.clone(), failed.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else {
                return;
            };
            let opened = async {
                let mut ws = connect(&url, &token).await?;
                if style.subscribe_idle {
                    subscribe(&mut ws, 2, "general").await?;
                }
                Ok::<_, String>(ws)
            }
            .await;
            drop(permit);
            let mut ws = match opened {
                Ok(ws) => ws,
                Err(e) => {
                    if failed.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!("idle connection failed: {e}");
                    }
                    return;
                }
            };
            alive.fetch_add(1, Ordering::SeqCst);
            // Answer server pings until the socket closes.
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    if t.as_str() == "{}" && ws.send(Message::Text("{}".into())).await.is_err() {
                        break;
                    }
                }
            }
            alive.fetch_sub(1, Ordering::SeqCst);
        }));
    }
    while alive.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < args.idle
        && started.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    f.held = alive.load(Ordering::SeqCst);
    f.idle_failed = failed.load(Ordering::SeqCst);
    f.rss1_kib = rss_sum_kib(&setup.conn_pids);
    f.per_conn = (f.rss1_kib.saturating_sub(f.rss0_kib)) as f64 * 1024.0 / args.idle as f64;
    f.others = setup
        .other_pids
        .iter()
        .zip(others0)
        .map(|(&(name, pid), before)| (name, before, rss_kib(pid)))
        .collect();
    println!(
        "idle: {}/{} held after {}s, connect+auth{} all in {:.1}s, RSS {:.1} MiB -> {:.1} MiB, {:.0} B/connection",
        f.held,
        args.idle,
        args.hold_secs,
        if style.subscribe_idle { "+subscribe" } else { "" },
        f.connect_secs,
        f.rss0_kib as f64 / 1024.0,
        f.rss1_kib as f64 / 1024.0,
        f.per_conn
    );
    for (name, before, after) in &f.others {
        println!(
            "  {name} RSS {:.1} MiB -> {:.1} MiB",
            *before as f64 / 1024.0,
            *after as f64 / 1024.0
        );
    }
    for t in tasks {
        t.abort();
    }
    // Let the servers see the closes before the next measurement.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Fan-out latency.
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let ready_subs = Arc::new(AtomicUsize::new(0));
    let failed_subs = Arc::new(AtomicUsize::new(0));
    let mut subs = Vec::new();
    for _ in 0..args.fanout {
        let (url, token, lat_tx, ready_subs, failed_subs, sem) = (
            setup.sub_url.clone(),
            token.clone(),
            lat_tx.clone(),
            ready_subs.clone(),
            failed_subs.clone(),
            sem.clone(),
        );
        subs.push(tokio::spawn(async move {
            let Ok(permit) = sem.acquire_owned().await else {
                return;
            };
            let opened = async {
                let mut ws = connect(&url, &token).await?;
                subscribe(&mut ws, 2, "general").await?;
                Ok::<_, String>(ws)
            }
            .await;
            drop(permit);
            let mut ws = match opened {
                Ok(ws) => ws,
                Err(e) => {
                    if failed_subs.fetch_add(1, Ordering::SeqCst) == 0 {
                        eprintln!("fan-out subscriber failed: {e}");
                    }
                    return;
                }
            };
            ready_subs.fetch_add(1, Ordering::SeqCst);
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                for line in t.lines() {
                    if line == "{}" {
                        let _ = ws.send(Message::Text("{}".into())).await;
                        continue;
                    }
                    let Ok(v) = serde_json::from_str::<Value>(line) else {
                        continue;
                    };
                    if let Some(sent) = v["push"]["pub"]["data"]["text"]
                        .as_str()
                        .and_then(|s| s.parse::<u128>().ok())
                    {
                        let _ = lat_tx.send((now_ns().saturating_sub(sent)) as f64 / 1e6);
                    }
                }
            }
        }));
    }
    let fan_started = Instant::now();
    while ready_subs.load(Ordering::SeqCst) + failed_subs.load(Ordering::SeqCst) < args.fanout
        && fan_started.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = ready_subs.load(Ordering::SeqCst);
    let mut rtts = Vec::with_capacity(args.fanout_msgs);
    match connect(&setup.pub_url, &token).await {
        Ok(mut publisher) => {
            for i in 0..args.fanout_msgs {
                let cmd = send_command(style, "general", now_ns().to_string());
                let sent = Instant::now();
                match call_ok(&mut publisher, 10 + i as u32, cmd).await {
                    Ok(_) => rtts.push(sent.elapsed().as_secs_f64() * 1e3),
                    Err(e) => {
                        if f.fan_errors == 0 {
                            eprintln!("fan-out publication failed: {e}");
                        }
                        f.fan_errors += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err(e) => eprintln!("fan-out publisher: {e}"),
    }
    f.fan_expected = ready * args.fanout_msgs;
    let mut lats = Vec::with_capacity(f.fan_expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lats.len() < f.fan_expected && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), lat_rx.recv()).await {
            Ok(Some(l)) => lats.push(l),
            _ => break,
        }
    }
    lats.sort_by(|a, b| a.total_cmp(b));
    f.fan_received = lats.len();
    f.p50 = percentile(&lats, 0.5);
    f.p99 = percentile(&lats, 0.99);
    f.max = lats.last().copied().unwrap_or(f64::NAN);
    rtts.sort_by(|a, b| a.total_cmp(b));
    f.rtt50 = percentile(&rtts, 0.5);
    f.rtt99 = percentile(&rtts, 0.99);
    println!(
        "fanout: {ready}/{} subscribers x {} publications: received {}/{}, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; the send's own reply after p50 {:.2} ms, p99 {:.2} ms",
        args.fanout,
        args.fanout_msgs,
        f.fan_received,
        f.fan_expected,
        f.p50,
        f.p99,
        f.max,
        f.rtt50,
        f.rtt99
    );
    for s in subs {
        s.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 3. Sustained publishing (history persisted; each ack after its group commit). One room per
    //    publisher; in the comparison a subscriber per room counts what is delivered.
    let acked = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    let mut counters = Vec::new();
    for p in 0..args.publishers {
        let room = format!("bench{p}");
        let prepared = async {
            let mut ws = connect(&setup.pub_url, &token).await?;
            let create =
                json!({"rpc": {"method": "rooms.create", "data": {"id": room, "name": room}}});
            call_ok(&mut ws, 2, create).await?;
            if style.rpc_send {
                let mut sub = connect(&setup.sub_url, &token).await?;
                subscribe(&mut sub, 2, &room).await?;
                let delivered = delivered.clone();
                counters.push(tokio::spawn(async move {
                    while let Some(Ok(m)) = sub.next().await {
                        let Message::Text(t) = m else { continue };
                        for line in t.lines() {
                            if line == "{}" {
                                let _ = sub.send(Message::Text("{}".into())).await;
                            } else if line.contains("\"push\"") && line.contains("\"pub\"") {
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }));
            }
            Ok::<_, String>(ws)
        }
        .await;
        match prepared {
            Ok(ws) => publishers.push((room, ws)),
            Err(e) => eprintln!("throughput publisher {p}: {e}"),
        }
    }
    let stop_at = Instant::now() + Duration::from_secs(args.throughput_secs);
    let t0 = Instant::now();
    let mut pubs = Vec::new();
    for (room, ws) in publishers {
        let (acked, errors) = (acked.clone(), errors.clone());
        pubs.push(tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let window = Arc::new(tokio::sync::Semaphore::new(64));
            let w2 = window.clone();
            let reader = tokio::spawn(async move {
                while let Some(Ok(Message::Text(t))) = stream.next().await {
                    for line in t.lines() {
                        let Ok(v) = serde_json::from_str::<Value>(line) else {
                            continue;
                        };
                        if v.get("id").is_none() {
                            continue; // a push or a ping
                        }
                        if v.get("error").is_some() {
                            errors.fetch_add(1, Ordering::Relaxed);
                        } else {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        w2.add_permits(1);
                    }
                }
            });
            let mut id = 100u32;
            while Instant::now() < stop_at {
                let Ok(permit) = window.acquire().await else {
                    break;
                };
                permit.forget();
                id += 1;
                let mut cmd = send_command(style, &room, "x".repeat(100));
                cmd["id"] = json!(id);
                if sink
                    .send(Message::Text(cmd.to_string().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            reader.abort();
        }));
    }
    for p in pubs {
        let _ = p.await;
    }
    f.secs = t0.elapsed().as_secs_f64();
    f.acked = acked.load(Ordering::SeqCst);
    f.send_errors = errors.load(Ordering::SeqCst);
    if style.rpc_send {
        let deadline = Instant::now() + Duration::from_secs(10);
        while delivered.load(Ordering::SeqCst) < f.acked && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        f.delivered = delivered.load(Ordering::SeqCst);
    }
    for c in counters {
        c.abort();
    }
    println!(
        "throughput: {} publishers, {} {} acknowledged in {:.1}s = {:.0}/s (each durable before its ack){}{}",
        args.publishers,
        f.acked,
        if style.rpc_send { "messages.send" } else { "publications" },
        f.secs,
        f.acked as f64 / f.secs,
        if f.send_errors > 0 {
            format!(", {} errors", f.send_errors)
        } else {
            String::new()
        },
        if style.rpc_send {
            format!(", {} delivered to the rooms' subscribers", f.delivered)
        } else {
            String::new()
        }
    );
    f
}

fn summary(results: &[(Target, Figures)], args: &Args) {
    let head: Vec<&str> = results.iter().map(|(t, _)| t.title()).collect();
    println!("\n| measure | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(results.len()));
    let row = |name: &str, cell: &dyn Fn(&Figures) -> String| {
        let cells: Vec<String> = results.iter().map(|(_, f)| cell(f)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row(
        &format!("idle connections held {} s", args.hold_secs),
        &|f| format!("{} / {}", f.held, f.idle),
    );
    row("connect + auth + subscribe, all", &|f| {
        format!("{:.1} s", f.connect_secs)
    });
    row("RSS of the connection servers, before → after", &|f| {
        format!(
            "{:.1} → {:.1} MiB",
            f.rss0_kib as f64 / 1024.0,
            f.rss1_kib as f64 / 1024.0
        )
    });
    row("memory per idle connection", &|f| {
        format!("{:.1} KB", f.per_conn / 1000.0)
    });
    row("other processes, RSS before → after", &|f| {
        if f.others.is_empty() {
            "–".to_owned()
        } else {
            f.others
                .iter()
                .map(|(n, a, b)| {
                    format!(
                        "{n} {:.1} → {:.1} MiB",
                        *a as f64 / 1024.0,
                        *b as f64 / 1024.0
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    });
    row(
        &format!("fan-out to {} subscribers, received", args.fanout),
        &|f| format!("{} / {}", f.fan_received, f.fan_expected),
    );
    row("fan-out p50 / p99 / max", &|f| {
        format!("{:.1} / {:.1} / {:.1} ms", f.p50, f.p99, f.max)
    });
    row("the publisher's send → its reply, p50 / p99", &|f| {
        format!("{:.1} / {:.1} ms", f.rtt50, f.rtt99)
    });
    row("messages.send acknowledged per second", &|f| {
        format!("{:.0} /s", f.acked as f64 / f.secs)
    });
    row("delivered / acknowledged (errors)", &|f| {
        format!("{} / {} ({})", f.delivered, f.acked, f.send_errors)
    });
}

#[tokio::main]
async fn main() -> Res<()> {
    let args = Args::parse();
    let issuer = start_issuer().await;
    let compare = !args.targets.is_empty();
    let style = Style {
        subscribe_idle: compare,
        rpc_send: compare,
    };
    let targets = if compare {
        args.targets.clone()
    } else {
        vec![Target::Confab]
    };
    let run_started = Instant::now();
    let mut results = Vec::new();
    for target in targets {
        let setup = set_up(target, &args, &issuer, style).await?;
        println!(
            "== {} (clients on {}; RSS of pid {:?})",
            target.title(),
            setup.idle_urls.join(", "),
            setup.conn_pids
        );
        let figures = measure(&setup, &args, style).await;
        drop(setup); // kills its processes
        results.push((target, figures));
    }
    if compare {
        summary(&results, &args);
        println!("\nrun took {:.0} s", run_started.elapsed().as_secs_f64());
    }
    Ok(())
}
