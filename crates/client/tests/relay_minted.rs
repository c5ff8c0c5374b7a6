//! The chat token endpoint path: the relay connects and refreshes in band with chat tokens that
//! confab-server's backend role mints for the session's (10 s) identity-provider tokens, one
//! connection throughout; a refused access token is refreshed once and the mint retried; a 429
//! makes the source wait instead of asking again.

#[path = "../../relay/tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::*;
use confab_client::adapters::MintedTokens;
use confab_protocol::Token;
use confab_relay::{BoxFuture, ConnectionState, SendState, TokenError, TokenSource};
use url::Url;

fn claim(token: &Token, name: &str) -> serde_json::Value {
    let payload = token.expose_secret().split('.').nth(1).unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|v| v[name].clone())
        .unwrap_or_default()
}

/// Records what a source hands the relay.
struct Recording {
    inner: Arc<dyn TokenSource>,
    seen: Arc<Mutex<Vec<Token>>>,
}

impl TokenSource for Recording {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let t = self.inner.token().await?;
            self.seen.lock().expect("seen").push(t.clone());
            Ok(t)
        })
    }
    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let t = self.inner.rejected().await?;
            self.seen.lock().expect("seen").push(t.clone());
            Ok(t)
        })
    }
}

/// The identity provider's side: the first token handed out is one the backend refuses
/// (expired); `rejected` gives a real one.
struct StaleFirst {
    real: Arc<IdpTokens>,
    handed_stale: Mutex<bool>,
    rejected_calls: Mutex<u32>,
}

impl TokenSource for StaleFirst {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let first = {
                let mut h = self.handed_stale.lock().expect("lock");
                !std::mem::replace(&mut *h, true)
            };
            if first {
                return Ok(Token::from("not-a-valid-access-token"));
            }
            self.real.token().await
        })
    }
    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            *self.rejected_calls.lock().expect("lock") += 1;
            self.real.rejected().await
        })
    }
}

fn endpoint(server: &TestServer) -> Url {
    let ws = Url::parse(&server.url()).expect("server url");
    let mut http = ws.clone();
    http.set_scheme("http").expect("http");
    http.set_path("/api/chat/token");
    http
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_chat_tokens_keep_the_relay_connected_across_renewals() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(10)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 5)).await;
    let access = IdpTokens::login(idp.clone(), "alice").await;
    let minted =
        Arc::new(MintedTokens::new(access, endpoint(&server)).expect("a chat token source"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let client = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        Arc::new(Recording {
            inner: minted,
            seen: seen.clone(),
        }),
    );
    client.wait_connected(Duration::from_secs(30)).await;
    client
        .relay
        .create_room("Minted", Some("minted"), false)
        .await
        .expect("create");
    client.relay.open_room("minted").await.expect("open");
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut sent = Vec::new();
    while start.elapsed() < Duration::from_secs(22) {
        tick.tick().await;
        sent.push(client.relay.send("minted", "hi").await.expect("send"));
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
        "minted tokens are renewed in band: one connection throughout"
    );
    let seen = seen.lock().expect("seen").clone();
    assert!(
        seen.iter().all(|t| claim(t, "iss") == "confab-server"),
        "the relay only ever got minted chat tokens"
    );
    let distinct: std::collections::HashSet<&str> =
        seen.iter().map(|t| t.expose_secret()).collect();
    assert!(
        distinct.len() >= 3,
        "10 s chat tokens were renewed during 22 s ({} distinct)",
        distinct.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_is_refreshed_once_and_429_waits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let mut config = server_config(&idp, &dir.path().join("server.db"), 0);
    config.chat_tokens_per_minute = 2;
    let server = TestServer::start(config).await;
    let stale = Arc::new(StaleFirst {
        real: IdpTokens::login(idp.clone(), "alice").await,
        handed_stale: Mutex::new(false),
        rejected_calls: Mutex::new(0),
    });
    let minted = MintedTokens::new(stale.clone(), endpoint(&server)).expect("source");
    let token = minted.token().await.expect("minted after one refresh");
    assert_eq!(claim(&token, "sub"), "alice");
    assert_eq!(*stale.rejected_calls.lock().expect("lock"), 1);
    let again = minted.token().await.expect("cached");
    assert_eq!(
        again.expose_secret(),
        token.expose_secret(),
        "reused while fresh"
    );

    // Two per minute: the second mint works, the third is a 429 and the source then waits.
    minted.rejected().await.expect("second mint");
    let third = minted.rejected().await;
    let Err(TokenError::Unavailable(why)) = third else {
        panic!("a 429 is a temporary failure: {third:?}");
    };
    assert!(why.contains("asked to wait"), "{why}");
    let fourth = minted.rejected().await;
    assert!(
        matches!(&fourth, Err(TokenError::Unavailable(w)) if w.contains("asked to wait")),
        "no new request before Retry-After: {fourth:?}"
    );
    assert!(
        !why.contains(token.expose_secret()),
        "no token text in the error"
    );
}
