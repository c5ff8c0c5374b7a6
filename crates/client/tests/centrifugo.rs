//! Confab on a real Centrifugo v6.9.1 (built from its Go module by `cargo xtask setup`), with
//! confab-server as its backend: the relay connects with chat tokens minted by confab-server
//! (Centrifugo verifies them against the server's JWKS), Centrifugo asks confab-server's
//! subscribe proxy whether the user may open a room (a private room of others is refused),
//! and a publication made through Centrifugo's server API reaches the member. One node, its
//! memory engine; the config is the repository's deploy/centrifugo/config.json with the
//! addresses and secrets of this run given as environment variables.

#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use confab_client::adapters::MintedTokens;
use confab_relay::{Error, RelayConfig};
use serde_json::json;
use tokio::process::{Child, Command};
use url::Url;

const T: Duration = Duration::from_secs(30);
const PROXY_SECRET: &str = "a-proxy-secret-of-this-test-run";
const API_KEY: &str = "an-api-key-of-this-test-run";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `CONFAB_CENTRIFUGO`, else `$CONFAB_TOOLS_DIR/bin/centrifugo`, else `target/tools/bin`.
fn centrifugo_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CONFAB_CENTRIFUGO") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("CONFAB_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools"));
    let bin = tools.join("bin/centrifugo");
    assert!(
        bin.is_file(),
        "Centrifugo is missing at {}: run `cargo xtask setup` (it builds v6.9.1 with `go install`)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Centrifugo {
    _child: Child,
    port: u16,
    _log: tempfile::NamedTempFile,
}

impl Centrifugo {
    async fn start(backend: &str) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(centrifugo_binary())
            .arg("-c")
            .arg(repo_root().join("deploy/centrifugo/config.json"))
            .env("CENTRIFUGO_HTTP_SERVER_PORT", port.to_string())
            .env(
                "CENTRIFUGO_CLIENT_TOKEN_JWKS_PUBLIC_ENDPOINT",
                format!("{backend}/api/chat/jwks"),
            )
            // The backend is on this machine over plain http (the file's is https).
            .env(
                "CENTRIFUGO_CLIENT_TOKEN_INSECURE_SKIP_JWKS_ENDPOINT_SAFETY_CHECK",
                "true",
            )
            .env(
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_ENDPOINT",
                format!("{backend}/api/centrifugo/subscribe"),
            )
            .env(
                "CENTRIFUGO_CHANNEL_PROXY_SUBSCRIBE_HTTP_STATIC_HEADERS",
                json!({ "X-Confab-Proxy-Secret": PROXY_SECRET }).to_string(),
            )
            .env("CENTRIFUGO_HTTP_API_KEY", API_KEY)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.reopen().expect("log")))
            .kill_on_drop(true)
            .spawn()
            .expect("Centrifugo starts");
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = tokio::time::Instant::now() + T;
        loop {
            if reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Centrifugo answered no health check in 30 s; its log:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            _child: child,
            port,
            _log: log,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.port)
    }

    async fn publish(&self, channel: &str, data: serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/publish", self.port))
            .header("X-API-Key", API_KEY)
            .json(&json!({ "channel": channel, "data": data }))
            .send()
            .await
            .expect("server API answers");
        assert!(
            resp.status().is_success(),
            "publish: HTTP {}",
            resp.status()
        );
        let body: serde_json::Value = resp.json().await.expect("json");
        assert!(body.get("error").is_none(), "publish refused: {body}");
    }
}

fn token_endpoint(server: &TestServer) -> Url {
    let mut u = Url::parse(&server.url()).expect("server url");
    u.set_scheme("http").expect("http");
    u.set_path("/api/chat/token");
    u
}

fn backend(server: &TestServer) -> String {
    let u = token_endpoint(server);
    format!("http://{}", u.authority())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_and_room_membership_work_on_real_centrifugo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let mut config = server_config(&idp, &dir.path().join("server.db"), 0);
    config.centrifugo_proxy_secret = Some(confab_types::SecretString::new(PROXY_SECRET.to_owned()));
    let server = TestServer::start(config).await;
    let centrifugo = Centrifugo::start(&backend(&server)).await;

    // Alice owns a private room on the backend.
    let alice_idp = IdpTokens::login(idp.clone(), "alice").await;
    let on_backend = Client::start(
        relay_config(&server.url(), &dir.path().join("alice-backend.db")),
        alice_idp.clone(),
    );
    on_backend.wait_connected(T).await;
    on_backend
        .relay
        .create_room("Team", Some("team"), true)
        .await
        .expect("alice's private room");

    let through = |name: &str, tokens: Arc<IdpTokens>| {
        let config: RelayConfig =
            relay_config(&centrifugo.url(), &dir.path().join(format!("{name}.db")));
        Client::start(
            config,
            Arc::new(MintedTokens::new(tokens, token_endpoint(&server)).expect("source")),
        )
    };
    let alice = through("alice", alice_idp);
    let bob = through("bob", IdpTokens::login(idp.clone(), "bob").await);
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;

    alice
        .relay
        .open_room("team")
        .await
        .expect("the subscribe proxy lets the member in");
    let refused = bob.relay.open_room("team").await;
    assert!(
        matches!(refused, Err(Error::Server { code: 102, .. })),
        "a private room of others is unknown to bob: {refused:?}"
    );

    let id = uuid::Uuid::new_v4();
    centrifugo
        .publish(
            "room:team",
            json!({"id": id, "author": "alice", "text": "hello through Centrifugo", "ts": 1}),
        )
        .await;
    wait_until("alice receives it through Centrifugo", T, || {
        alice.view(|v| v.ids("team").iter().any(|(_, m)| *m == id))
    })
    .await;
    assert!(
        bob.view(|v| v.ids("team").is_empty()),
        "bob never sees the private room"
    );
}
