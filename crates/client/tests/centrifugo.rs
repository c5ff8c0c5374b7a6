//! Confab on a real Centrifugo v6.9.1 (built from its Go module by `cargo xtask setup`), with
//! confab-server as its backend: the relay connects with chat tokens minted by confab-server
//! (Centrifugo verifies them against the server's JWKS), Centrifugo asks confab-server's
//! subscribe proxy whether the user may open a room (a private room of others is refused),
//! and a publication made through Centrifugo's server API reaches the member. One node, its
//! memory engine; the config is the repository's deploy/centrifugo/config.json with the
//! addresses and secrets of this run given as environment variables (confab-testkit's
//! `cluster::Centrifugo`).

#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use confab_client::adapters::MintedTokens;
use confab_relay::{Error, RelayConfig, SendState};
use confab_testkit::cluster::{Centrifugo, API_KEY, PROXY_SECRET};
use serde_json::json;
use url::Url;
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);

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
    let centrifugo = Centrifugo::start(&backend(&server), None, "single")
        .await
        .expect("Centrifugo starts");

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
            &json!({"id": id, "author": "alice", "text": "hello through Centrifugo", "ts": 1}),
            None,
        )
        .await
        .expect("the server API publishes");
    wait_until("alice receives it through Centrifugo", T, || {
        alice.view(|v| v.ids("team").iter().any(|(_, m)| *m == id))
    })
    .await;
    assert!(
        bob.view(|v| v.ids("team").is_empty()),
        "bob never sees the private room"
    );
}

/// Centrifugo's server API: `method` with `body`, the `result` (panics on an error).
async fn api(node: &Centrifugo, method: &str, body: serde_json::Value) -> serde_json::Value {
    node.api(method, &body)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// A backend-role confab-server (proxy secret, Centrifugo's API on `centrifugo_port`, after a
/// node that is down) and a Centrifugo in front of it.
async fn backend_and_centrifugo(
    idp: &confab_testkit::Idp,
    dir: &std::path::Path,
) -> (TestServer, Centrifugo) {
    let centrifugo_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut config = server_config(idp, &dir.join("server.db"), 0);
    config.centrifugo_proxy_secret = Some(confab_types::SecretString::new(PROXY_SECRET.to_owned()));
    // A node that is down comes first in the backend's list: every publish starts there and
    // goes on to the live node (the list's failover), and nothing is lost or doubled for it.
    let down_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    config.centrifugo_api_url = vec![
        Url::parse(&format!("http://127.0.0.1:{down_port}/api")).expect("api url"),
        Url::parse(&format!("http://127.0.0.1:{centrifugo_port}/api")).expect("api url"),
    ];
    config.centrifugo_api_key = Some(confab_types::SecretString::new(API_KEY.to_owned()));
    let server = TestServer::start(config).await;
    let centrifugo = Centrifugo::start_on(centrifugo_port, &backend(&server), None, "single")
        .await
        .expect("Centrifugo starts");
    (server, centrifugo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_sending_go_through_the_backend_on_real_centrifugo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let (server, centrifugo) = backend_and_centrifugo(&idp, dir.path()).await;
    let through = |name: &str, tokens: Arc<IdpTokens>| {
        Client::start(
            relay_config(&centrifugo.url(), &dir.path().join(format!("{name}.db"))),
            Arc::new(MintedTokens::new(tokens, token_endpoint(&server)).expect("source")),
        )
    };
    let alice = through("alice", IdpTokens::login(idp.clone(), "alice").await);
    let bob = through("bob", IdpTokens::login(idp.clone(), "bob").await);
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;

    // The rooms methods are answered by the backend through the RPC proxy.
    let rooms = alice
        .relay
        .list_rooms()
        .await
        .expect("rooms.list through Centrifugo");
    assert!(
        rooms.iter().any(|r| r.id == "general"),
        "the backend's default room is listed: {rooms:?}"
    );
    shared_room(&alice, &bob, "project").await;

    // Sending: stored by the backend, published by it, acknowledged with Centrifugo's offset.
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(
            alice
                .relay
                .send("project", &format!("message {i} through the backend"))
                .await
                .expect("queued"),
        );
    }
    wait_until("bob receives all 20 in order", T, || {
        bob.view(|v| {
            v.ids("project")
                .iter()
                .map(|(_, id)| *id)
                .collect::<Vec<_>>()
        }) == sent
    })
    .await;
    wait_until("alice's messages are acknowledged", T, || {
        alice.view(|v| {
            sent.iter()
                .all(|id| matches!(v.states.get(id), Some(SendState::Sent { .. })))
        })
    })
    .await;
    let offsets: Vec<u64> = alice.view(|v| {
        sent.iter()
            .map(|id| match v.states.get(id) {
                Some(SendState::Sent { offset }) => *offset,
                other => panic!("not sent: {other:?}"),
            })
            .collect()
    });
    assert_eq!(
        offsets,
        (1..=20).collect::<Vec<u64>>(),
        "each acknowledgement names the message's offset in Centrifugo's stream"
    );
    // The author is the backend's: the user's subject and the provider's display name.
    let entry = bob.view(|v| v.rooms["project"][0].clone());
    assert_eq!(entry.author(), "alice", "the author is the token's subject");
    let history = api(
        &centrifugo,
        "history",
        json!({"channel": "room:project", "limit": 100}),
    )
    .await;
    let pubs = history["publications"].as_array().expect("publications");
    assert_eq!(
        pubs.len(),
        20,
        "Centrifugo holds each message once: {history}"
    );
    assert_eq!(
        pubs[0]["data"]["name"], "Alice Example",
        "the backend writes the display name it saw when it minted the chat token"
    );
    // The backend's own store is the source of truth and holds the same messages in order.
    let stored: Vec<Uuid> = server
        .history("project")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        stored, sent,
        "the backend stored every message once, in order"
    );

    // Leaving ends the subscription through Centrifugo's server API.
    bob.relay.leave_room("project").await.expect("bob leaves");
    wait_until("bob's room is closed by the server", T, || {
        bob.view(|v| v.closed.iter().any(|(room, _)| room == "project"))
    })
    .await;
}

/// Calls the backend's RPC proxy as Centrifugo would.
async fn rpc_proxy(
    server: &TestServer,
    secret: Option<&str>,
    body: serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/centrifugo/rpc", backend(server)))
        .json(&body);
    if let Some(s) = secret {
        req = req.header("X-Confab-Proxy-Secret", s);
    }
    let resp = req.send().await.expect("backend answers");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rpc_proxy_deduplicates_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let (server, centrifugo) = backend_and_centrifugo(&idp, dir.path()).await;
    let send = |user: &str, id: Uuid, text: &str| {
        json!({"client": "c1", "user": user, "method": "messages.send",
               "data": {"room": "general", "id": id, "text": text, "ts": 1}})
    };
    // Users become members of the default room when they first connect.
    let alice = Client::start(
        relay_config(&centrifugo.url(), &dir.path().join("alice.db")),
        Arc::new(
            MintedTokens::new(
                IdpTokens::login(idp.clone(), "alice").await,
                token_endpoint(&server),
            )
            .expect("source"),
        ),
    );
    alice.wait_connected(T).await;

    // The same message id twice: stored once, published once, the same answer both times.
    let id = Uuid::new_v4();
    let (status, first) = rpc_proxy(&server, Some(PROXY_SECRET), send("alice", id, "once")).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = rpc_proxy(&server, Some(PROXY_SECRET), send("alice", id, "twice?")).await;
    assert_eq!(first["result"]["data"]["offset"], 1, "{first}");
    assert_eq!(
        again, first,
        "a repeated send answers where the first one landed"
    );
    let history = api(
        &centrifugo,
        "history",
        json!({"channel": "room:general", "limit": 10}),
    )
    .await;
    let pubs = history["publications"].as_array().expect("publications");
    assert_eq!(pubs.len(), 1, "published once: {history}");
    assert_eq!(pubs[0]["data"]["text"], "once", "the first text stands");
    assert_eq!(pubs[0]["data"]["author"], "alice");

    // Refusals, with Centrifugo's error codes, and nothing published.
    let cases = [
        (
            "a non-member (room of others)",
            {
                let mut b = send("mallory", Uuid::new_v4(), "hi");
                b["data"]["room"] = json!("nosuchroom");
                b
            },
            102,
        ),
        (
            "a non-member of an existing room",
            send("mallory", Uuid::new_v4(), "hi"),
            103,
        ),
        (
            "an oversized message",
            send("alice", Uuid::new_v4(), &"x".repeat(20_000)),
            107,
        ),
        (
            "a message that is not {room, id, text, ts}",
            json!({"user": "alice", "method": "messages.send", "data": {"text": "hi"}}),
            107,
        ),
        (
            "an unknown method",
            json!({"user": "alice", "method": "admin.drop_everything", "data": {}}),
            104,
        ),
        (
            "an anonymous caller",
            json!({"user": "", "method": "rooms.list"}),
            103,
        ),
    ];
    for (what, body, code) in cases {
        let (status, reply) = rpc_proxy(&server, Some(PROXY_SECRET), body).await;
        assert_eq!(status, 200, "{what}: {reply}");
        assert_eq!(reply["error"]["code"], code, "{what}: {reply}");
        assert!(reply.get("result").is_none(), "{what}: {reply}");
    }
    // Without the secret, nothing is answered.
    let (status, _) = rpc_proxy(&server, None, send("alice", Uuid::new_v4(), "forged")).await;
    assert_eq!(status, 401, "a call without the proxy secret is refused");
    let (status, _) = rpc_proxy(
        &server,
        Some("wrong-secret-of-some-length"),
        send("alice", Uuid::new_v4(), "forged"),
    )
    .await;
    assert_eq!(status, 401, "a call with another secret is refused");
    let history = api(
        &centrifugo,
        "history",
        json!({"channel": "room:general", "limit": 10}),
    )
    .await;
    assert_eq!(
        history["publications"].as_array().map(Vec::len),
        Some(1),
        "no refused call published anything: {history}"
    );

    // A client cannot publish into a room itself: only the backend publishes.
    let token: String = reqwest::Client::new()
        .post(token_endpoint(&server))
        .bearer_auth(IdpTokens::login(idp.clone(), "alice").await.current().await)
        .send()
        .await
        .expect("token endpoint")
        .json::<serde_json::Value>()
        .await
        .expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(centrifugo.url())
        .await
        .expect("ws");
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let frame = [
        json!({"id": 1, "connect": {"token": token}}),
        json!({"id": 2, "subscribe": {"channel": "room:general"}}),
        json!({"id": 3, "publish": {"channel": "room:general", "data": {"id": Uuid::new_v4(), "author": "someone-else", "text": "spoofed", "ts": 1}}}),
    ]
    .iter()
    .map(serde_json::Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    ws.send(Message::text(frame)).await.expect("send");
    let publish_reply = tokio::time::timeout(T, async {
        loop {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                panic!("the connection ended before the publish was answered");
            };
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                if v["id"] == 3 {
                    return v;
                }
            }
        }
    })
    .await
    .expect("the publish is answered");
    assert_eq!(
        publish_reply["error"]["code"], 103,
        "Centrifugo refuses a client publish: {publish_reply}"
    );
}
