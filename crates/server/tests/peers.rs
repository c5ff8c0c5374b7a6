//! Conformance with the protocol's official third-party clients: centrifuge-js (npm, in Node
//! with `ws`) and centrifuge-python (PyPI). Each connects with a real IdP token obtained through
//! its own getToken callback, subscribes, publishes and receives, reads history, refreshes its
//! token when the server-issued ttl runs out, and recovers publications missed while its
//! connection was dropped.
//!
//! Needs `npm ci` in tests/peers and the venv at tests/peers/.venv (`cargo xtask test` does
//! both); without them these tests FAIL with the command to run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use common::*;
use confab_testkit::{Idp, IdpOptions};
use serde_json::Value;
use tokio::process::Command;

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

/// Serves `GET /token` → a fresh access token for `alice` from the real IdP (what a client
/// app's backend or sign-in layer would hand to the SDK's getToken).
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

async fn setup() -> (Arc<Idp>, TestServer, String, tempfile::TempDir) {
    let idp = Arc::new(
        Idp::start(IdpOptions {
            access_ttl: Duration::from_secs(3),
            ..IdpOptions::default()
        })
        .await
        .expect("IdP starts"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    // SDKs refresh when the ttl runs out; the grace covers fetching the new token (a whole
    // headless login at the IdP, slow on a loaded 2-core CI machine).
    config.expired_close_delay_ms = 10_000;
    config.ping_interval_secs = 2;
    // Generous, so a peer descheduled under load is not dropped for a late pong.
    config.pong_timeout_secs = 5;
    config.max_rooms_per_user = 2_100;
    config.commands_per_second = 10_000;
    let server = TestServer::start(config).await;
    let token_url = token_endpoint(idp.clone()).await;
    (idp, server, token_url, dir)
}

async fn run_peer(mut cmd: Command, what: &str) -> Value {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {what} conformance script: {e}"));
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} conformance script did not finish within 90 s"))
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

fn assert_conformance(v: &Value, what: &str) {
    assert_eq!(
        v["connected"], true,
        "{what}: connects with a token from its getToken"
    );
    assert_eq!(
        v["received_own"], true,
        "{what}: receives its own publication through the subscription"
    );
    assert_eq!(
        v["history_has_own"], true,
        "{what}: history contains the publication"
    );
    assert!(
        v["token_calls"].as_u64().unwrap_or(0) >= 3,
        "{what}: refreshes its token through getToken when the ttl runs out: {v}"
    );
    assert_eq!(
        v["publish_after_refresh"], true,
        "{what}: stays connected and working across refreshes"
    );
    let codes = v["disconnect_codes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !codes.iter().any(|c| c == 3005 || c == 3500),
        "{what}: a refreshing client is never expired or refused: {v}"
    );
    assert_eq!(
        v["was_recovering"], true,
        "{what}: resubscribes with recover after the connection drop"
    );
    assert_eq!(
        v["recovered"], true,
        "{what}: the server reports the missed publications as recovered"
    );
    assert_eq!(
        v["missed_ids_in_order"], true,
        "{what}: receives exactly the missed publications, in order: {v}"
    );
}

#[tokio::test]
async fn centrifuge_js_conforms() {
    let dir = peers_dir();
    assert!(
        dir.join("node_modules/centrifuge").is_dir() && dir.join("node_modules/ws").is_dir(),
        "tests/peers/node_modules is missing: run `npm ci --prefix tests/peers` (cargo xtask test does)"
    );
    let node = std::env::var("CONFAB_NODE").unwrap_or_else(|_| "node".into());
    let (idp, server, token_url, _dir) = setup().await;
    fill_big_room_and_rooms(&idp, &server).await;
    let mut cmd = Command::new(node);
    cmd.arg(dir.join("js_client.mjs"))
        .current_dir(&dir)
        .env("SERVER_URL", &server.url)
        .env("TOKEN_URL", &token_url)
        .env("ROOM", "general")
        .env("BIG_ROOM", "big");
    let v = run_peer(cmd, "centrifuge-js").await;
    assert_conformance(&v, "centrifuge-js");

    // Large data through the SDK: pages under the reply cap reach everything.
    let cap = confab_protocol::DEFAULT_MAX_REPLY_BYTES as u64;
    assert_eq!(v["rooms_listed"], 2_002, "every room is listed: {v}");
    assert_eq!(v["rooms_pages"], 21, "2,002 rooms in pages of 100: {v}");
    assert!(v["rooms_max_reply_bytes"].as_u64().unwrap_or(u64::MAX) <= cap);
    let offsets: Vec<u64> = v["big_offsets"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(
        offsets,
        (1..=50).collect::<Vec<u64>>(),
        "every message once"
    );
    assert!(
        v["big_max_reply_bytes"].as_u64().unwrap_or(u64::MAX) <= cap,
        "each page of the largest messages is under the cap: {v}"
    );
    assert!(
        v["big_pages"].as_array().map_or(0, Vec::len) >= 4,
        "50 of the largest messages take several pages: {v}"
    );
}

/// 2,000 rooms with the longest names, and a room `big` of 50 of the largest messages.
async fn fill_big_room_and_rooms(idp: &Idp, server: &TestServer) {
    let token = idp.login("bob").await.expect("login").access_token.clone();
    let mut c = Client::connected(&server.url, &token).await;
    let name = "😀".repeat(100);
    let mut ids = Vec::new();
    for i in 0..2_000 {
        ids.push(
            c.send_cmd(serde_json::json!({"rpc": {"method": "rooms.create",
                "data": {"id": format!("room-{i:04}-{}", "r".repeat(54)), "name": name}}}))
                .await,
        );
    }
    ids.push(
        c.send_cmd(serde_json::json!({"rpc": {"method": "rooms.create",
            "data": {"id": "big", "name": "Big"}}}))
            .await,
    );
    for id in ids {
        let r = c.reply_to(id).await;
        assert!(r.error.is_none(), "room created: {:?}", r.error);
    }
    let largest = "😀".repeat(4000);
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            c.send_cmd(serde_json::json!({"publish": {"channel": "room:big",
                "data": chat(&largest)}}))
                .await,
        );
    }
    for id in ids {
        assert!(c.reply_to(id).await.publish.is_some(), "stored");
    }
}

#[tokio::test]
async fn centrifuge_python_conforms() {
    let dir = peers_dir();
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "tests/peers/.venv is missing: run `python3 -m venv tests/peers/.venv && tests/peers/.venv/bin/pip install -r tests/peers/requirements.txt` (cargo xtask test does)"
    );
    let (_idp, server, token_url, _dir) = setup().await;
    let mut cmd = Command::new(python);
    cmd.arg(dir.join("py_client.py"))
        .current_dir(&dir)
        .env("SERVER_URL", &server.url)
        .env("TOKEN_URL", &token_url)
        .env("ROOM", "general");
    let v = run_peer(cmd, "centrifuge-python").await;
    assert_conformance(&v, "centrifuge-python");
}
