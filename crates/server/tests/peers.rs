//! Conformance with the protocol's official third-party clients: centrifuge-js (npm, in Node
//! with `ws`) and centrifuge-python (PyPI), run unchanged against both Confab deployments:
//!
//! - confab-server alone, connecting with the IdP's access token;
//! - a two-node Centrifugo v6.9.1 cluster (Redis, nginx in front) with confab-server as its
//!   backend, connecting with chat tokens the SDK's getToken buys at `POST /api/chat/token`.
//!
//! Each script connects through its getToken, sends with the `messages.send` RPC, reads
//! history, meets the refusals a client can meet, makes a burst of calls at once, refreshes its
//! token when the server-issued ttl runs out and recovers the messages sent while its
//! connection was dropped; the JS one also reads the room list and a room of the largest
//! messages page by page. The test asserts the same observable results on both deployments;
//! where they differ by design (a client's own `publish`, the reply cap) it says so.
//!
//! confab-server runs with its default command rate limit: an SDK's burst must not fail there
//! where it does not on Centrifugo.
//!
//! Needs `npm ci` in tests/peers, the venv at tests/peers/.venv, Centrifugo (`cargo xtask
//! setup`), redis-server and nginx (`cargo xtask test` prepares all); without them these tests
//! FAIL with the command to run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use common::*;
use confab_server::store::{Limits, Store};
use confab_server::Config;
use confab_testkit::cluster::{Centrifugo, Nginx, Redis, API_KEY, PROXY_SECRET};
use confab_testkit::{Idp, IdpOptions};
use serde_json::{json, Value};
use tokio::process::Command;

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

/// Rooms the JS script lists page by page (plus `general` and `big`).
const ROOMS: usize = 2_000;
/// Messages of the largest size in the room `big`.
const BIG_MESSAGES: u64 = 50;
/// Calls the JS script makes at once.
const BURST: u64 = 200;

/// Serves `GET /token` → a fresh access token for `alice` from the real IdP (what a client
/// app's sign-in layer would hand to the SDK's getToken).
async fn token_endpoint(idp: Arc<Idp>) -> String {
    async fn token(
        State(idp): State<Arc<Idp>>,
    ) -> Result<String, (axum::http::StatusCode, String)> {
        idp.login("alice")
            .await
            .map(|t| t.access_token.clone())
            .map_err(|e| (axum::http::StatusCode::BAD_GATEWAY, e.to_string()))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind token endpoint");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/token", get(token))
        .with_state(idp);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/token")
}

/// Where the SDKs connect, and what keeps it running.
struct Deployment {
    name: &'static str,
    /// The WebSocket URL the SDKs are given.
    url: String,
    /// The backend's chat token endpoint, when connection tokens must be bought there.
    chat_token_url: Option<String>,
    centrifugo: bool,
    _server: TestServer,
    _cluster: Option<(Redis, Centrifugo, Centrifugo, Nginx)>,
    _dir: tempfile::TempDir,
}

/// The server's configuration for both deployments: short-lived tokens (3 s, so the SDKs
/// refresh), the command rate limit left at its default.
fn config(idp: &Idp, dir: &Path) -> Config {
    let mut config = test_config(&idp.issuer_str(), dir);
    // SDKs refresh when the ttl runs out; the grace covers fetching the new token (a whole
    // headless login at the IdP, slow on a loaded 2-core CI machine).
    config.expired_close_delay_ms = 10_000;
    config.ping_interval_secs = 2;
    // Generous, so a peer descheduled under load is not dropped for a late pong.
    config.pong_timeout_secs = 5;
    config.max_rooms_per_user = ROOMS + 100;
    // Every refresh of a 3-second token buys a chat token.
    config.chat_tokens_per_minute = 1_000;
    config
}

/// The rooms both deployments list: `ROOMS` rooms of bob's with the longest names, and his
/// room `big`, written into the store before the server starts.
fn fill_rooms(config: &Config) {
    let store = Store::open(&config.db, config.history_size)
        .expect("store opens")
        .with_limits(Limits {
            rooms_per_user: ROOMS + 100,
            ..config.store_limits()
        });
    let name = "😀".repeat(100);
    for i in 0..ROOMS {
        store
            .create_room(
                &format!("room-{i:04}-{}", "r".repeat(54)),
                &name,
                "bob",
                false,
                0,
            )
            .expect("room created");
    }
    store
        .create_room("big", "Big", "bob", false, 0)
        .expect("room created");
}

/// Bob sends `BIG_MESSAGES` of the largest messages into `big` through the deployment, as
/// any client sends (`messages.send`).
async fn fill_big_room(url: &str, token: &str) {
    let mut c = Client::connected(url, token).await;
    let largest = "😀".repeat(4000);
    for _ in 0..BIG_MESSAGES {
        let message = json!({"room": "big", "id": uuid::Uuid::new_v4(), "text": largest, "ts": 1});
        let r = c
            .call(json!({"rpc": {"method": "messages.send", "data": message}}))
            .await;
        assert!(r.error.is_none(), "message stored: {:?}", r.error);
    }
    c.close().await;
}

async fn idp() -> Arc<Idp> {
    Arc::new(
        Idp::start(IdpOptions {
            access_ttl: Duration::from_secs(3),
            ..IdpOptions::default()
        })
        .await
        .expect("IdP starts"),
    )
}

async fn confab_server(idp: &Idp) -> Deployment {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(idp, dir.path());
    fill_rooms(&config);
    let server = TestServer::start(config).await;
    let bob = idp.login("bob").await.expect("login").access_token.clone();
    fill_big_room(&server.url, &bob).await;
    Deployment {
        name: "confab-server",
        url: server.url.clone(),
        chat_token_url: None,
        centrifugo: false,
        _server: server,
        _cluster: None,
        _dir: dir,
    }
}

async fn centrifugo_cluster(idp: &Idp) -> Deployment {
    let dir = tempfile::tempdir().expect("tempdir");
    let node_a_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut config = config(idp, dir.path());
    config.centrifugo_proxy_secret = Some(confab_types::SecretString::new(PROXY_SECRET.to_owned()));
    config.centrifugo_api_url =
        vec![url::Url::parse(&format!("http://127.0.0.1:{node_a_port}/api")).expect("api url")];
    config.centrifugo_api_key = Some(confab_types::SecretString::new(API_KEY.to_owned()));
    fill_rooms(&config);
    let server = TestServer::start(config).await;
    let backend = format!("http://{}", server.addr);
    let redis = Redis::start().await.expect("redis-server starts");
    let a = Centrifugo::start_on(node_a_port, &backend, Some(&redis), "node-a")
        .await
        .expect("node A starts");
    let b = Centrifugo::start(&backend, Some(&redis), "node-b")
        .await
        .expect("node B starts");
    let nginx = Nginx::start(&[a.port(), b.port()])
        .await
        .expect("nginx starts");
    let chat_token_url = format!("{backend}/api/chat/token");
    let bob = chat_token(
        &chat_token_url,
        &idp.login("bob").await.expect("login").access_token,
    )
    .await;
    fill_big_room(&nginx.url(), &bob).await;
    Deployment {
        name: "Centrifugo cluster",
        url: nginx.url(),
        chat_token_url: Some(chat_token_url),
        centrifugo: true,
        _server: server,
        _cluster: Some((redis, a, b, nginx)),
        _dir: dir,
    }
}

/// A chat token from the backend for the holder of `access`.
async fn chat_token(url: &str, access: &str) -> String {
    let resp: Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(access)
        .send()
        .await
        .expect("chat token endpoint answers")
        .json()
        .await
        .expect("json");
    resp["token"].as_str().expect("a token").to_owned()
}

async fn run_peer(mut cmd: Command, what: &str) -> Value {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {what} conformance script: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} conformance script did not finish within 120 s"))
        .expect("script output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!("{what} script printed no JSON result (exit {:?})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code())
    });
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{what} result is not JSON ({e}): {line}"));
    eprintln!("{what} result: {v}");
    assert!(
        out.status.success() && v["ok"] == true,
        "{what} script succeeded: {v}\nstderr:\n{stderr}"
    );
    v
}

fn script_env(cmd: &mut Command, d: &Deployment, token_url: &str) {
    cmd.current_dir(peers_dir())
        .env("SERVER_URL", &d.url)
        .env("TOKEN_URL", token_url)
        .env("ROOM", "general");
    if let Some(url) = &d.chat_token_url {
        cmd.env("CHAT_TOKEN_URL", url);
    }
}

async fn run_js(d: &Deployment, token_url: &str) -> Value {
    let dir = peers_dir();
    assert!(
        dir.join("node_modules/centrifuge").is_dir() && dir.join("node_modules/ws").is_dir(),
        "tests/peers/node_modules is missing: run `npm ci --prefix tests/peers` (cargo xtask test does)"
    );
    let node = std::env::var("CONFAB_NODE").unwrap_or_else(|_| "node".into());
    let mut cmd = Command::new(node);
    cmd.arg(dir.join("js_client.mjs"));
    script_env(&mut cmd, d, token_url);
    cmd.env("BIG_ROOM", "big").env("BURST", BURST.to_string());
    run_peer(cmd, &format!("centrifuge-js on {}", d.name)).await
}

async fn run_python(d: &Deployment, token_url: &str) -> Value {
    let dir = peers_dir();
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "tests/peers/.venv is missing: run `python3 -m venv tests/peers/.venv && tests/peers/.venv/bin/pip install -r tests/peers/requirements.txt` (cargo xtask test does)"
    );
    let mut cmd = Command::new(python);
    cmd.arg(dir.join("py_client.py"));
    script_env(&mut cmd, d, token_url);
    run_peer(cmd, &format!("centrifuge-python on {}", d.name)).await
}

/// What every deployment must show an SDK.
fn assert_conformance(v: &Value, what: &str) {
    for (key, meaning) in [
        ("connected", "connects with a token from its getToken"),
        (
            "received_own",
            "receives its own message through the subscription",
        ),
        (
            "sent_offset_matches",
            "messages.send answers the offset the subscriber sees",
        ),
        ("sent_epoch_set", "messages.send answers the stream's epoch"),
        ("history_has_own", "history contains the message"),
        (
            "history_epoch_is_sent_epoch",
            "history is of the stream messages.send named",
        ),
        (
            "history_since_empty_epoch_first",
            "a position without its epoch reads from there (any epoch)",
        ),
        (
            "publish_after_refresh",
            "stays connected and working across refreshes",
        ),
        (
            "was_recovering",
            "resubscribes with recover after the connection drop",
        ),
        (
            "recovered",
            "the server reports the missed messages as recovered",
        ),
        (
            "missed_ids_in_order",
            "receives exactly the missed messages, in order",
        ),
    ] {
        assert_eq!(v[key], true, "{what}: {meaning} ({key}): {v}");
    }
    assert_eq!(
        v["own_author"], "alice",
        "{what}: the author is the token's subject: {v}"
    );
    assert!(
        v["token_calls"].as_u64().unwrap_or(0) >= 3,
        "{what}: refreshes its token through getToken when the ttl runs out: {v}"
    );
    let codes = v["disconnect_codes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !codes.iter().any(|c| c == 3005 || c == 3500),
        "{what}: a refreshing client is never expired or refused: {v}"
    );
    assert_eq!(v["unknown_room_code"], 102, "{what}: unknown room: {v}");
    assert_eq!(v["unknown_method_code"], 104, "{what}: unknown RPC: {v}");
    assert_eq!(v["bad_send_code"], 107, "{what}: a send without id: {v}");
}

/// What only the JS script does: sending at once, presence, leaving, the burst and the large
/// data.
fn assert_js(v: &Value, what: &str) {
    for (key, meaning) in [
        (
            "resend_same_place",
            "a send repeated with its id answers the first one's place",
        ),
        (
            "concurrent_offsets_distinct",
            "sends made at once land at distinct offsets",
        ),
        (
            "concurrent_received_at_offsets",
            "and each is received at the offset its send answered",
        ),
        (
            "wire_in_offset_order",
            "the server pushes a room's messages in offset order",
        ),
        (
            "presence_has_self",
            "presence lists the subscriber's own client",
        ),
    ] {
        assert_eq!(v[key], true, "{what}: {meaning} ({key}): {v}");
    }
    assert_eq!(
        v["presence_stats"],
        json!({"clients": 1, "users": 1}),
        "{what}: {v}"
    );
    assert_eq!(
        v["left_unsubscribe_code"], 2000,
        "{what}: leaving a room ends its subscription from the server: {v}"
    );
    assert_eq!(
        v["burst_ok"], BURST,
        "{what}: a burst of {BURST} calls at once all succeed: {v}"
    );
    assert_eq!(v["burst_error_codes"], json!([]), "{what}: {v}");
    assert_eq!(v["rooms_listed"], ROOMS + 4, "every room is listed: {v}");
    assert_eq!(
        v["rooms_pages"],
        ROOMS / 100 + 1,
        "rooms in pages of 100: {v}"
    );
    let cap = confab_protocol::DEFAULT_MAX_REPLY_BYTES as u64;
    assert!(v["rooms_max_reply_bytes"].as_u64().unwrap_or(u64::MAX) <= cap);
    let offsets: Vec<u64> = v["big_offsets"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(
        offsets,
        (1..=BIG_MESSAGES).collect::<Vec<u64>>(),
        "{what}: every message once: {v}"
    );
}

/// The results both deployments must give alike: everything but what differs by design.
fn observable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for key in [
            "token_calls",
            "disconnect_codes",
            "connecting_codes",
            "client_publish_code",
            "client_publish_author",
            "big_pages",
            "big_max_reply_bytes",
            "rooms_max_reply_bytes",
            "join_pushes",
            "history_unsubscribed_code",
            "presence_unsubscribed_code",
            // centrifuge-js may emit the messages of two frames read at once interleaved (its
            // dispatch of the second frame does not wait for the first's): the order on the
            // wire is compared (`wire_in_offset_order`), not the order of its events.
            "received_in_offset_order",
            "received_offsets",
        ] {
            o.remove(key);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdks_see_the_same_on_confab_server_and_on_a_centrifugo_cluster() {
    let idp = idp().await;
    let token_url = token_endpoint(idp.clone()).await;
    let mut results = Vec::new();
    for centrifugo in [false, true] {
        let d = if centrifugo {
            centrifugo_cluster(&idp).await
        } else {
            confab_server(&idp).await
        };
        let started = std::time::Instant::now();
        let js = run_js(&d, &token_url).await;
        let js_took = started.elapsed();
        let py = run_python(&d, &token_url).await;
        eprintln!(
            "{}: centrifuge-js {js_took:?}, centrifuge-python {:?}",
            d.name,
            started.elapsed() - js_took
        );
        for (v, sdk) in [(&js, "centrifuge-js"), (&py, "centrifuge-python")] {
            let what = format!("{sdk} on {}", d.name);
            assert_conformance(v, &what);
            // A client's own publish: confab-server takes it (author overwritten), Centrifugo
            // refuses it (only the backend publishes there).
            if d.centrifugo {
                assert_eq!(v["client_publish_code"], 103, "{what}: {v}");
            } else {
                assert_eq!(v["client_publish_code"], 0, "{what}: {v}");
                assert_eq!(v["client_publish_author"], "alice", "{what}: {v}");
            }
        }
        assert_js(&js, &format!("centrifuge-js on {}", d.name));
        // Reading a room without a subscription: confab-server lets a member read history and
        // presence; Centrifugo lets only subscribers (`allow_*_for_subscriber`: it has no
        // history proxy to ask the backend about membership). Join pushes: confab-server sends
        // them to a subscriber that asks; the deployment's Centrifugo does not enable them.
        let (member_reads, joins) = if d.centrifugo { (103, 0) } else { (0, 2) };
        assert_eq!(js["history_unsubscribed_code"], member_reads, "{js}");
        assert_eq!(js["presence_unsubscribed_code"], member_reads, "{js}");
        assert_eq!(js["join_pushes"], joins, "{js}");
        if !d.centrifugo {
            // confab-server cuts history pages to its reply cap; Centrifugo does not.
            let cap = confab_protocol::DEFAULT_MAX_REPLY_BYTES as u64;
            assert!(
                js["big_max_reply_bytes"].as_u64().unwrap_or(u64::MAX) <= cap,
                "each page of the largest messages is under the cap: {js}"
            );
            assert!(
                js["big_pages"].as_array().map_or(0, Vec::len) >= 4,
                "50 of the largest messages take several pages: {js}"
            );
        }
        results.push((observable(&js), observable(&py)));
    }
    assert_eq!(
        results[0], results[1],
        "the SDKs observe the same on confab-server (left) and on Centrifugo (right)"
    );
}
