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
use confab_relay::{Error, RelayConfig};
use confab_testkit::cluster::{Centrifugo, PROXY_SECRET};
use serde_json::json;
use url::Url;

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
