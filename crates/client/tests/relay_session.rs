//! The session adapter: a real `TokenManager` (refreshing 10 s tokens at the real test IdP)
//! drives the relay's connection tokens and in-band refreshes against the real server.

#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use confab_client::adapters::SessionTokens;
use confab_relay::{ConnectionState, SendState};
use confab_session::{EndpointError, Secret, TokenEndpoint, TokenManager, Tokens, User};
use confab_testkit::Idp;
use futures_util::future::BoxFuture;

/// The IdP's token endpoint through the test kit (refresh only).
struct IdpEndpoint(Arc<Idp>);

impl TokenEndpoint for IdpEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        Box::pin(async move {
            let set = self
                .0
                .refresh(refresh_token.expose_secret())
                .await
                .map_err(|e| EndpointError::Transient {
                    retry_after: None,
                    reason: e.to_string(),
                })?;
            Ok(Tokens {
                access_token: Secret::new(set.access_token.clone()),
                lifetime: Duration::from_secs(set.expires_in.unwrap_or(300)),
                refresh_token: set.refresh_token.clone().map(Secret::new),
                id_token: None,
                user: None,
            })
        })
    }

    fn revoke<'a>(&'a self, _: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        Box::pin(async { Ok(()) })
    }

    fn end_session_url(&self, _: Option<&Secret>) -> Option<url::Url> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_keep_the_relay_connected_across_refreshes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(10)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 5)).await;
    let set = idp.login("alice").await.expect("login");
    let tokens = Tokens {
        access_token: Secret::new(set.access_token.clone()),
        lifetime: Duration::from_secs(set.expires_in.unwrap_or(10)),
        refresh_token: set.refresh_token.clone().map(Secret::new),
        id_token: None,
        user: None,
    };
    let manager = TokenManager::builder(
        Arc::new(IdpEndpoint(idp.clone())),
        Arc::new(confab_session::MemoryTokenStore::new()),
    )
    .sign_in(User::new(idp.issuer_str(), "alice"), tokens)
    .await
    .expect("session starts");
    let client = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        Arc::new(SessionTokens::new(manager.clone())),
    );
    client.wait_connected(Duration::from_secs(30)).await;
    client
        .relay
        .create_room("Session", Some("session"), false)
        .await
        .expect("create");
    client.relay.open_room("session").await.expect("open");
    // 25 s = at least four token lifetimes' worth of refreshes at half-life.
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut sent = Vec::new();
    while start.elapsed() < Duration::from_secs(25) {
        tick.tick().await;
        sent.push(client.relay.send("session", "hi").await.expect("send"));
    }
    wait_until("every message is sent", Duration::from_secs(30), || {
        client.view(|v| {
            sent.iter()
                .all(|id| matches!(v.states.get(id), Some(SendState::Sent { .. })))
        })
    })
    .await;
    assert_eq!(
        client.view(|v| v.connection.clone()),
        vec![ConnectionState::Connecting, ConnectionState::Connected],
        "the session's refreshed tokens reach the server in band: one connection throughout"
    );

    // Sign-out ends the session: a later reconnect reports signed_out instead of retrying.
    manager.sign_out().await.expect("sign out");
    client.relay.shutdown().await;
    let (relay2, mut events) = confab_relay::RelayHandle::start(
        relay_config(&server.url(), &dir.path().join("alice2.db")),
        Arc::new(SessionTokens::new(manager.clone())),
    )
    .expect("relay starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("an event within the deadline")
            .expect("event stream open");
        if ev == confab_relay::Event::ConnectionState(ConnectionState::SignedOut) {
            break;
        }
    }
    drop(relay2);
}
