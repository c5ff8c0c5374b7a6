//! Confab on a real Centrifugo v6.9.1 cluster: two nodes on one Redis (Debian's redis-server,
//! broker, presence and history), nginx in front of them, confab-server as their backend
//! (chat tokens, JWKS, subscribe proxy) and relay clients with minted tokens. Every process is
//! confab-testkit's `cluster` harness: free loopback ports, a temp directory each, killed on
//! drop.
//!
//! - a publication made on one node reaches a client on the other, both ways;
//! - a client that was offline on node A while 100 messages were published comes back on
//!   node B and gets all of them, in order and once, by recovery from the shared history
//!   (no reload of the room; the wire says `recovered: true`);
//! - a client behind nginx receives publications made on either node;
//! - Redis restarted: clients keep working and the history keeps its epoch.

#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use confab_client::adapters::MintedTokens;
use confab_relay::TokenSource;
use confab_testkit::cluster::{Centrifugo, Nginx, Published, Redis, PROXY_SECRET};
use confab_testkit::Idp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use url::Url;
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);

/// confab-server in its backend role, the test IdP, Redis and two Centrifugo nodes on it.
struct Cluster {
    dir: tempfile::TempDir,
    idp: Arc<Idp>,
    server: TestServer,
    redis: Redis,
    a: Centrifugo,
    b: Centrifugo,
    /// Relays straight to confab-server, which made and joined the rooms.
    _backend_clients: Vec<Client>,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let idp = start_idp(Duration::from_secs(300)).await;
        let mut config = server_config(&idp, &dir.path().join("server.db"), 0);
        config.centrifugo_proxy_secret =
            Some(confab_types::SecretString::new(PROXY_SECRET.to_owned()));
        let server = TestServer::start(config).await;
        let redis = Redis::start().await.expect("redis-server starts");
        let backend = backend(&server);
        let a = Centrifugo::start(&backend, Some(&redis), "node-a")
            .await
            .expect("node A starts");
        let b = Centrifugo::start(&backend, Some(&redis), "node-b")
            .await
            .expect("node B starts");
        Self {
            dir,
            idp,
            server,
            redis,
            a,
            b,
            _backend_clients: Vec::new(),
        }
    }

    /// Logs `users` in; the first creates the public room `room` on the backend, the others
    /// join it.
    async fn members(&mut self, room: &str, users: &[&str]) -> Vec<Arc<IdpTokens>> {
        let mut logins = Vec::new();
        for (i, user) in users.iter().enumerate() {
            let tokens = IdpTokens::login(self.idp.clone(), user).await;
            let direct = Client::start(
                relay_config(
                    &self.server.url(),
                    &self.dir.path().join(format!("{user}-backend.db")),
                ),
                tokens.clone(),
            );
            direct.wait_connected(T).await;
            if i == 0 {
                direct
                    .relay
                    .create_room(room, Some(room), false)
                    .await
                    .expect("the room is created on the backend");
            } else {
                direct
                    .relay
                    .join_room(room)
                    .await
                    .expect("the room is joined on the backend");
            }
            self._backend_clients.push(direct);
            logins.push(tokens);
        }
        logins
    }

    /// A relay with chat tokens minted by the backend, connected to `url`; `name` picks its
    /// outbox file.
    fn client(&self, url: &str, name: &str, tokens: Arc<IdpTokens>) -> Client {
        Client::start(
            relay_config(url, &self.dir.path().join(format!("{name}.db"))),
            self.minted(tokens),
        )
    }

    fn minted(&self, tokens: Arc<IdpTokens>) -> Arc<MintedTokens> {
        Arc::new(MintedTokens::new(tokens, token_endpoint(&self.server)).expect("token source"))
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

fn node_addr(node: &Centrifugo) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], node.port()))
}

/// A chat message as confab-server would publish it.
fn message(text: &str) -> (Uuid, Value) {
    let id = Uuid::new_v4();
    (
        id,
        json!({"id": id, "author": "alice", "text": text, "ts": 1}),
    )
}

async fn publish(node: &Centrifugo, room: &str, text: &str) -> (Uuid, Published) {
    let (id, data) = message(text);
    let published = node
        .publish(&format!("room:{room}"), &data, None)
        .await
        .unwrap_or_else(|e| panic!("publish on {}: {e}\n{}", node.name(), node.log()));
    (id, published)
}

/// Publishes with an idempotency key, again and again until the node accepts it (it may have
/// lost Redis for a moment): the key makes it one publication however often it is tried.
async fn publish_until_accepted(node: &Centrifugo, room: &str, text: &str) -> (Uuid, Published) {
    let (id, data) = message(text);
    let key = id.to_string();
    let deadline = Instant::now() + T;
    loop {
        match node
            .publish(&format!("room:{room}"), &data, Some(&key))
            .await
        {
            Ok(p) => return (id, p),
            Err(e) => assert!(
                Instant::now() < deadline,
                "{} accepted no publish in {T:?}: {e}\n{}",
                node.name(),
                node.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_nodes_subscribed(redis: &Redis, channel: &str, nodes: u64) {
    let deadline = Instant::now() + T;
    loop {
        match redis.nodes_subscribed(channel).await {
            Ok(n) if n == nodes => return,
            Ok(n) => assert!(
                Instant::now() < deadline,
                "{n} node(s), not {nodes}, subscribed to {channel} in Redis after {T:?}"
            ),
            Err(e) => assert!(Instant::now() < deadline, "Redis: {e}\n{}", redis.log()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for(client: &Client, who: &str, room: &str, id: Uuid) {
    wait_until(&format!("{who} receives {id}"), T, || {
        client.view(|v| v.ids(room).iter().any(|(_, m)| *m == id))
    })
    .await;
}

/// Nothing shown twice or out of order, no room-level errors.
fn assert_clean(client: &Client, who: &str) {
    client.view(|v| {
        assert!(
            v.duplicates.is_empty(),
            "{who}: duplicates {:?}",
            v.duplicates
        );
        assert!(
            v.out_of_order.is_empty(),
            "{who}: out of order {:?}",
            v.out_of_order
        );
        assert!(v.failed.is_empty(), "{who}: rooms failed {:?}", v.failed);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_cross_between_the_nodes_both_ways() {
    let mut cluster = Cluster::start().await;
    let logins = cluster.members("lobby", &["alice", "bob"]).await;
    let on_a = cluster.client(&cluster.a.url(), "alice-a", logins[0].clone());
    let on_b = cluster.client(&cluster.b.url(), "bob-b", logins[1].clone());
    for (c, room) in [(&on_a, "lobby"), (&on_b, "lobby")] {
        c.wait_connected(T).await;
        c.relay.open_room(room).await.expect("the member opens it");
    }

    let (first, p1) = publish(&cluster.a, "lobby", "from node A").await;
    wait_for(&on_b, "bob on node B", "lobby", first).await;
    let (second, p2) = publish(&cluster.b, "lobby", "from node B").await;
    wait_for(&on_a, "alice on node A", "lobby", second).await;
    wait_for(&on_b, "bob on node B", "lobby", second).await;

    assert_eq!(p1.epoch, p2.epoch, "one stream, shared through Redis");
    let expected = vec![(p1.offset, first), (p2.offset, second)];
    assert_eq!(
        (p1.offset, p2.offset),
        (1, 2),
        "one offset sequence for both nodes"
    );
    assert_eq!(on_a.view(|v| v.ids("lobby")), expected);
    assert_eq!(on_b.view(|v| v.ids("lobby")), expected);
    assert_clean(&on_a, "alice");
    assert_clean(&on_b, "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offline_on_one_node_recovers_the_missed_messages_on_the_other() {
    const MISSED: usize = 100;
    let mut cluster = Cluster::start().await;
    let logins = cluster.members("team", &["alice"]).await;
    // The relay dials one address; the proxy behind it decides which node that is.
    let proxy = Proxy::start().await;
    proxy.set_upstream(Some(node_addr(&cluster.a)));
    let alice = cluster.client(&proxy.url(), "alice", logins[0].clone());
    alice.wait_connected(T).await;
    alice.relay.open_room("team").await.expect("alice opens it");
    let (seen, position) = publish(&cluster.a, "team", "seen on node A").await;
    wait_for(&alice, "alice on node A", "team", seen).await;
    let resets = alice.view(|v| v.resets);

    // Offline: the connection is cut and no node is reachable.
    proxy.set_upstream(None);
    proxy.cut_all();
    wait_until("alice is disconnected", T, || {
        alice.view(|v| !v.connected())
    })
    .await;
    let mut expected = vec![(position.offset, seen)];
    for i in 0..MISSED {
        let (id, p) = publish(&cluster.a, "team", &format!("missed {i}")).await;
        assert_eq!(p.epoch, position.epoch);
        expected.push((p.offset, id));
    }

    // Back, on node B.
    let accepted = proxy.accepted.load(std::sync::atomic::Ordering::SeqCst);
    proxy.set_upstream(Some(node_addr(&cluster.b)));
    alice.relay.notify_network_up();
    wait_until("alice has every missed message", T, || {
        alice.view(|v| v.ids("team").len() > MISSED)
    })
    .await;
    assert!(
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) > accepted,
        "alice came back through the proxy, to node B"
    );
    assert_eq!(
        alice.view(|v| v.ids("team")),
        expected,
        "all {MISSED}, in order, once"
    );
    assert_eq!(
        alice.view(|v| v.resets),
        resets,
        "recovered from history: the room was not reloaded (a reload shows one page only)"
    );
    assert_clean(&alice, "alice");

    // The same on the wire: a subscribe to node B from that position recovers.
    let token = cluster
        .minted(logins[0].clone())
        .token()
        .await
        .expect("a chat token");
    let reply = raw_subscribe(
        &cluster.b.url(),
        token.expose_secret(),
        json!({
            "channel": "room:team",
            "recover": true,
            "epoch": position.epoch,
            "offset": position.offset,
        }),
    )
    .await;
    assert_eq!(reply["recovered"], json!(true), "{reply}");
    assert_eq!(reply["epoch"], json!(position.epoch), "{reply}");
    let recovered: Vec<(u64, Uuid)> = reply["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .map(|p| {
            let offset = p["offset"].as_u64().expect("offset");
            let id = p["data"]["id"].as_str().expect("id").parse().expect("uuid");
            (offset, id)
        })
        .collect();
    assert_eq!(recovered, expected[1..], "the 100 missed, in order");
}

/// Connects to `url` with the Centrifugo protocol (JSON), subscribes with `params` and returns
/// the subscribe result.
async fn raw_subscribe(url: &str, token: &str, params: Value) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket to the node");
    let commands = format!(
        "{}\n{}",
        json!({"id": 1, "connect": {"token": token, "name": "raw-test-client"}}),
        json!({"id": 2, "subscribe": params})
    );
    ws.send(Message::text(commands))
        .await
        .expect("commands sent");
    let deadline = Instant::now() + T;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the node answers in time")
            .expect("the connection stays open")
            .expect("a frame");
        let Message::Text(text) = frame else {
            continue;
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let reply: Value = serde_json::from_str(line).expect("JSON reply");
            if reply["id"] == json!(1) {
                assert!(reply.get("error").is_none(), "connect refused: {reply}");
            }
            if reply["id"] == json!(2) {
                assert!(reply.get("error").is_none(), "subscribe refused: {reply}");
                return reply["subscribe"].clone();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_nginx_receives_publications_of_either_node() {
    let mut cluster = Cluster::start().await;
    let logins = cluster.members("hall", &["alice"]).await;
    let nginx = Nginx::start(&[cluster.a.port(), cluster.b.port()])
        .await
        .expect("nginx starts");
    let alice = cluster.client(&nginx.url(), "alice", logins[0].clone());
    alice.wait_connected(T).await;
    alice.relay.open_room("hall").await.expect("alice opens it");

    let (first, p1) = publish(&cluster.a, "hall", "from node A").await;
    wait_for(&alice, "alice behind nginx", "hall", first).await;
    let (second, p2) = publish(&cluster.b, "hall", "from node B").await;
    wait_for(&alice, "alice behind nginx", "hall", second).await;
    assert_eq!(
        alice.view(|v| v.ids("hall")),
        vec![(p1.offset, first), (p2.offset, second)],
        "nginx log:\n{}",
        nginx.log()
    );
    assert_clean(&alice, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_working_and_history_keeps_its_epoch_across_a_redis_restart() {
    let mut cluster = Cluster::start().await;
    let logins = cluster.members("ops", &["alice", "bob"]).await;
    let on_a = cluster.client(&cluster.a.url(), "alice-a", logins[0].clone());
    let on_b = cluster.client(&cluster.b.url(), "bob-b", logins[1].clone());
    for c in [&on_a, &on_b] {
        c.wait_connected(T).await;
        c.relay.open_room("ops").await.expect("the member opens it");
    }
    let (before, p1) = publish(&cluster.a, "ops", "before the restart").await;
    wait_for(&on_b, "bob on node B", "ops", before).await;
    let resets = [&on_a, &on_b].map(|c| c.view(|v| v.resets));

    cluster.redis.restart().await.expect("Redis starts again");
    // A node delivers live again once its pub/sub connection has subscribed again; what is
    // published before that is in the history but reaches clients only with the next
    // publication (the gap makes the relay recover) or Centrifugo's position check.
    wait_for_nodes_subscribed(&cluster.redis, "room:ops", 2).await;
    let (after_a, p2) = publish_until_accepted(&cluster.a, "ops", "after, on node A").await;
    let (after_b, p3) = publish_until_accepted(&cluster.b, "ops", "after, on node B").await;
    for p in [&p2, &p3] {
        assert_eq!(p.epoch, p1.epoch, "the stream survived: same epoch");
    }
    let expected = vec![
        (p1.offset, before),
        (p2.offset, after_a),
        (p3.offset, after_b),
    ];
    assert_eq!((p1.offset, p2.offset, p3.offset), (1, 2, 3));
    for (c, who) in [(&on_a, "alice on node A"), (&on_b, "bob on node B")] {
        wait_until(&format!("{who} has both later messages"), T, || {
            c.view(|v| v.ids("ops").len() == expected.len())
        })
        .await;
        assert_eq!(c.view(|v| v.ids("ops")), expected, "{who}");
        assert_clean(c, who);
    }
    assert_eq!(
        [&on_a, &on_b].map(|c| c.view(|v| v.resets)),
        resets,
        "no room was reloaded"
    );
    let history = cluster
        .b
        .history("room:ops", 10)
        .await
        .expect("history through node B");
    assert_eq!(history.epoch, p1.epoch);
    assert_eq!(
        history
            .publications
            .iter()
            .map(|(o, _)| *o)
            .collect::<Vec<_>>(),
        vec![1, 2, 3],
        "Redis log:\n{}",
        cluster.redis.log()
    );
}
