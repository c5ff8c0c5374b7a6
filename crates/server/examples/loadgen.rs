//! Load generator for confab-server (see docs/benchmarks.md, section "Reference server").
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Parser;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Path to the confab-server binary (build it in release).
    #[arg(long, default_value = "target/release/confab-server")]
    server_bin: String,
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

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Connects and authenticates; returns the socket after the connect reply.
async fn connect(url: &str, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect");
    ws.send(Message::Text(
        json!({"id": 1, "connect": {"token": token}})
            .to_string()
            .into(),
    ))
    .await
    .expect("send connect");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"connect\"") => return ws,
            Some(Ok(Message::Text(t))) if t.contains("\"error\"") => panic!("connect refused: {t}"),
            Some(Ok(_)) => {}
            other => panic!("connection closed during connect: {other:?}"),
        }
    }
}

async fn call(ws: &mut Ws, id: u32, cmd: Value) -> Value {
    let mut cmd = cmd;
    cmd["id"] = json!(id);
    ws.send(Message::Text(cmd.to_string().into()))
        .await
        .expect("send");
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("closed while waiting for reply {id}")
        };
        for line in t.lines() {
            let v: Value = serde_json::from_str(line).expect("json reply");
            if v["id"] == id {
                return v;
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let issuer = start_issuer().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{}\"\ndb = \"{}\"\nlisten = \"127.0.0.1:0\"\nping_interval_secs = 5\nmax_connections_per_user = 1000000\nmax_connections_total = 1000000\nmax_pending_connections = 1000000\nmax_connections_per_address = 0\ncommands_per_second = 1000000\nclient_queue_len = 4096\nhistory_size = 1000\n",
            issuer.url,
            dir.path().join("bench.sqlite3").display()
        ),
    )
    .expect("write config");
    let mut server = tokio::process::Command::new(&args.server_bin)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start confab-server (build it first, see the doc comment)");
    let pid = server.id().expect("pid");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let ready = lines
        .next_line()
        .await
        .expect("stdout")
        .expect("ready line");
    let url = ready
        .strip_prefix("CONFAB_SERVER_READY url=")
        .expect("ready line format")
        .to_owned();
    println!("server {url} (pid {pid})");
    let token = issuer.token("bench");

    // 1. Idle connections.
    let rss0 = rss_kib(pid);
    let alive = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        let (url, token, alive, sem) = (url.clone(), token.clone(), alive.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            let mut ws = connect(&url, &token).await;
            drop(permit);
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
    while alive.load(Ordering::SeqCst) < args.idle {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "idle connections did not all connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let held = alive.load(Ordering::SeqCst);
    let rss1 = rss_kib(pid);
    let per_conn = (rss1.saturating_sub(rss0)) as f64 * 1024.0 / args.idle as f64;
    println!(
        "idle: {held}/{} held after {}s (server pings every 5s), connect+auth all in {connect_secs:.1}s, server RSS {:.1} MiB -> {:.1} MiB, {per_conn:.0} B/connection",
        args.idle,
        args.hold_secs,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0
    );
    for t in tasks {
        t.abort();
    }
    while rss_kib(pid) > 0 && alive.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        alive.store(0, Ordering::SeqCst);
    }

    // 2. Fan-out latency.
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let ready_subs = Arc::new(AtomicUsize::new(0));
    let mut subs = Vec::new();
    for _ in 0..args.fanout {
        let (url, token, lat_tx, ready_subs, sem) = (
            url.clone(),
            token.clone(),
            lat_tx.clone(),
            ready_subs.clone(),
            sem.clone(),
        );
        subs.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.expect("semaphore");
            let mut ws = connect(&url, &token).await;
            call(
                &mut ws,
                2,
                json!({"subscribe": {"channel": "room:general"}}),
            )
            .await;
            drop(permit);
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
    while ready_subs.load(Ordering::SeqCst) < args.fanout {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut publisher = connect(&url, &token).await;
    for i in 0..args.fanout_msgs {
        let data = json!({"id": uuid::Uuid::new_v4(), "author": "", "text": now_ns().to_string(), "ts": 0});
        call(
            &mut publisher,
            10 + i as u32,
            json!({"publish": {"channel": "room:general", "data": data}}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = args.fanout * args.fanout_msgs;
    let mut lats = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lats.len() < expected && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), lat_rx.recv()).await {
            Ok(Some(l)) => lats.push(l),
            _ => break,
        }
    }
    lats.sort_by(|a, b| a.total_cmp(b));
    println!(
        "fanout: {} subscribers x {} publications: received {}/{expected}, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.fanout,
        args.fanout_msgs,
        lats.len(),
        percentile(&lats, 0.5),
        percentile(&lats, 0.99),
        lats.last().copied().unwrap_or(f64::NAN)
    );
    for s in subs {
        s.abort();
    }

    // 3. Sustained publish throughput (history persisted; each ack after its group commit).
    let acked = Arc::new(AtomicUsize::new(0));
    let stop_at = Instant::now() + Duration::from_secs(args.throughput_secs);
    let mut pubs = Vec::new();
    for p in 0..args.publishers {
        let (url, token, acked) = (url.clone(), token.clone(), acked.clone());
        pubs.push(tokio::spawn(async move {
            let mut ws = connect(&url, &token).await;
            let room = format!("bench{p}");
            call(&mut ws, 2, json!({"rpc": {"method": "rooms.create", "data": {"id": room, "name": room}}})).await;
            let channel = format!("room:{room}");
            let (mut sink, mut stream) = ws.split();
            let window = Arc::new(tokio::sync::Semaphore::new(64));
            let w2 = window.clone();
            let acked2 = acked.clone();
            let reader = tokio::spawn(async move {
                while let Some(Ok(Message::Text(t))) = stream.next().await {
                    for line in t.lines() {
                        if line.contains("\"publish\"") {
                            acked2.fetch_add(1, Ordering::Relaxed);
                            w2.add_permits(1);
                        }
                    }
                }
            });
            let mut id = 100u32;
            while Instant::now() < stop_at {
                let permit = window.acquire().await.expect("window");
                permit.forget();
                id += 1;
                let data = json!({"id": uuid::Uuid::new_v4(), "author": "", "text": "x".repeat(100), "ts": 0});
                let cmd = json!({"id": id, "publish": {"channel": channel, "data": data}});
                if sink.send(Message::Text(cmd.to_string().into())).await.is_err() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            reader.abort();
        }));
    }
    let t0 = Instant::now();
    for p in pubs {
        let _ = p.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let n = acked.load(Ordering::SeqCst);
    println!(
        "throughput: {} publishers, {n} publications acknowledged in {secs:.1}s = {:.0}/s (each durable before its ack)",
        args.publishers,
        n as f64 / secs
    );
    let _ = server.start_kill();
}
