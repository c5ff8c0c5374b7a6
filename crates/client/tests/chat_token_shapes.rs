//! The chat token tier in the ChatSDK (seed 003) and ChatKit (seed 002) shapes, against the token
//! services of the real Django test backend (rotation, reuse detection, 429 with an epoch-ms
//! `Retry-After`) in front of the real confab-server (which verifies the Django-minted tokens
//! through the backend's JWKS). The first tier is a real SimpleJWT session (password sign-in).

#[path = "../../relay/tests/common/mod.rs"]
mod common;
mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use confab_protocol::Token;

use common::*;
use confab_backends::{SimpleJwtClient, SimpleJwtSettings};
use confab_client::adapters::{password_handoff, MintedTokens, PasswordEndpoint, SessionTokens};
use confab_config::ChatTokenShape;
use confab_relay::{ConnectionState, SendState, TokenSource};
use confab_session::{MemoryTokenStore, RefreshTokenStore, TokenManager};
use confab_testkit::{Django, DjangoOptions};
use confab_types::SecretString;

/// A signed-in SimpleJWT session of `user` at `django`: the first tier.
async fn session(django: &Django, user: &str) -> TokenManager {
    let client = Arc::new(
        SimpleJwtClient::new(django.base_url(), SimpleJwtSettings::default()).expect("client"),
    );
    let login = client
        .login(user, &SecretString::new(format!("{user}-password")))
        .await
        .expect("the password login works");
    let (profile, tokens) = password_handoff(&client.issuer(), login);
    TokenManager::builder(
        Arc::new(PasswordEndpoint::new(client)),
        Arc::new(MemoryTokenStore::new()),
    )
    .sign_in(profile, tokens)
    .await
    .expect("the session starts")
}

/// The `exp` of a JWT (read, not verified).
fn exp_of(token: &Token) -> SystemTime {
    let payload = token.expose_secret().split('.').nth(1).unwrap_or("");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    let exp = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["exp"].as_u64())
        .expect("the chat token has an exp");
    UNIX_EPOCH + Duration::from_secs(exp)
}

async fn post_json(url: url::Url, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("the backend answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatsdk_tokens_rotate_in_the_store_and_sign_out_revokes_both_tiers() {
    let django = Django::start(DjangoOptions {
        chat_ttl: Duration::from_secs(10),
        ..DjangoOptions::default()
    })
    .await
    .expect("the Django backend starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = TestServer::start(server_config_for(
        &django.issuer(),
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let manager = session(&django, "alice").await;
    let store = Arc::new(MemoryTokenStore::new());
    let refresh_url = django.endpoint("/api/chatsdk/refresh");
    let minted = Arc::new(
        MintedTokens::with_shape(
            Arc::new(SessionTokens::new(manager.clone())),
            django.endpoint("/api/chatsdk/token"),
            ChatTokenShape::ChatSdk {
                refresh: refresh_url.clone(),
                logout: Some(django.endpoint("/api/chatsdk/logout")),
            },
            Some(store.clone() as Arc<dyn RefreshTokenStore>),
        )
        .expect("a chat token source"),
    );

    // One request for many callers.
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let minted = minted.clone();
            tokio::spawn(async move { minted.token().await.expect("a chat token") })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        tokens.insert(caller.await.expect("caller").expose_secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "50 callers share one token");
    assert_eq!(
        django.stats().await.expect("stats").chatsdk_tokens,
        1,
        "one mint for 50 callers"
    );
    let first_refresh = store
        .load()
        .await
        .expect("store")
        .expect("the chat refresh token is kept in the store");

    // 10 s chat tokens, renewed at half their life through the refresh endpoint, in band.
    // (Through a proxy, so the server can come back on another port.)
    let proxy = Proxy::start().await;
    proxy.set_upstream(server.addr);
    let client = Client::start(
        relay_config(&proxy.url(), &dir.path().join("alice.db")),
        minted.clone(),
    );
    client.wait_connected(Duration::from_secs(30)).await;
    client
        .relay
        .create_room("SDK", Some("sdk"), false)
        .await
        .expect("create");
    client.relay.open_room("sdk").await.expect("open");
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(4));
    while start.elapsed() < Duration::from_secs(22) {
        tick.tick().await;
        client.relay.send("sdk", "hi").await.expect("send");
    }
    client
        .wait_outbox_empty("alice", Duration::from_secs(30))
        .await;
    assert_eq!(
        client.view(|v| v.connection.clone()),
        vec![ConnectionState::Connecting, ConnectionState::Connected],
        "renewed in band: one connection throughout"
    );
    let stats = django.stats().await.expect("stats");
    assert!(
        stats.chatsdk_refresh_ok >= 2,
        "the tier renewed through the refresh endpoint ({stats:?})"
    );
    assert_eq!(stats.chatsdk_tokens, 1, "no new mint while refreshes work");
    assert_eq!(
        stats.chatsdk_reuse_events, 0,
        "no rotated token ever reused"
    );
    let current = store.load().await.expect("store").expect("kept");
    assert_ne!(
        current, first_refresh,
        "the rotated refresh token was saved"
    );

    // The server goes away until the token the relay holds has expired; the reconnect then
    // uses a fresh one.
    let held = minted.token().await.expect("the held token");
    server.stop().await;
    support::wait_until(
        "the held chat token to expire",
        Duration::from_secs(30),
        || async { SystemTime::now() > exp_of(&held) + Duration::from_secs(1) },
    )
    .await;
    server.restart().await;
    proxy.set_upstream(server.addr);
    client.relay.notify_network_up();
    wait_until("the relay reconnected", Duration::from_secs(30), || {
        client.view(|v| {
            v.connection.len() > 2 && v.connection.last() == Some(&ConnectionState::Connected)
        })
    })
    .await;
    let now_held = minted.token().await.expect("the held token");
    assert!(
        exp_of(&now_held) > SystemTime::now(),
        "the reconnect got a fresh token, not the expired one"
    );
    let after = client.relay.send("sdk", "back").await.expect("send");
    wait_until(
        "the message after the reconnect is sent",
        Duration::from_secs(30),
        || client.view(|v| matches!(v.states.get(&after), Some(SendState::Sent { .. }))),
    )
    .await;

    // A replayed (rotated) refresh token is reuse: the backend revokes the family, and the
    // tier mints a new one through the first tier.
    let (status, body) = post_json(
        refresh_url.clone(),
        serde_json::json!({ "refreshToken": first_refresh.expose_secret() }),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_reused")));
    let minted_before = django.stats().await.expect("stats").chatsdk_tokens;
    minted
        .rejected()
        .await
        .expect("a new chat token after the family was revoked");
    assert_eq!(
        django.stats().await.expect("stats").chatsdk_tokens,
        minted_before + 1,
        "the refused refresh token was replaced through the first tier"
    );

    // Sign-out: disconnect, the chat refresh token out of the store and invalidated, the
    // identity tier's refresh token blacklisted.
    let last = store.load().await.expect("store").expect("kept");
    client.relay.shutdown().await;
    minted.sign_out().await;
    assert_eq!(store.load().await.expect("store"), None, "removed");
    let (status, _) = post_json(
        refresh_url,
        serde_json::json!({ "refreshToken": last.expose_secret() }),
    )
    .await;
    assert_eq!(
        status, 401,
        "the backend refuses the chat refresh token after logout"
    );
    assert_eq!(django.stats().await.expect("stats").chatsdk_logouts, 1);
    manager.sign_out().await.expect("the session signs out");
    assert_eq!(
        django.live_refresh_tokens("alice").await.expect("live"),
        0,
        "the identity tier's refresh token is blacklisted too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chatkit_secrets_renew_fall_back_to_a_new_session_and_wait_out_a_429() {
    let django = Django::start(DjangoOptions {
        chat_ttl: Duration::from_secs(6),
        chatkit_rate: "3/60s".to_owned(),
        ..DjangoOptions::default()
    })
    .await
    .expect("the Django backend starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = TestServer::start(server_config_for(
        &django.issuer(),
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let manager = session(&django, "bob").await;
    let minted = Arc::new(
        MintedTokens::with_shape(
            Arc::new(SessionTokens::new(manager)),
            django.endpoint("/api/chatkit/session"),
            ChatTokenShape::ChatKit {
                refresh: Some(django.endpoint("/api/chatkit/refresh")),
            },
            None,
        )
        .expect("a chat token source"),
    );

    // The secret (expires_at in seconds) connects to confab-server.
    let client = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        minted.clone(),
    );
    client.wait_connected(Duration::from_secs(30)).await;
    assert_eq!(django.stats().await.expect("stats").chatkit_sessions, 1);
    // Renewed in band at half its 6 s life through the refresh call, not a new session.
    support::wait_until(
        "a renewal through /api/chatkit/refresh",
        Duration::from_secs(20),
        || async { django.stats().await.expect("stats").chatkit_refresh_ok >= 1 },
    )
    .await;
    client.relay.shutdown().await;

    // A refused secret (rejected by the server) falls back to a new session; the rate limit
    // (3 per 60 s: session, refresh, session) then answers 429 with an epoch-ms Retry-After.
    let stats = django.stats().await.expect("stats");
    assert_eq!(
        stats.chatkit_sessions + stats.chatkit_refresh_ok,
        2,
        "{stats:?}"
    );
    // The fourth call in the window is limited, or a few later when a boundary of
    // django-ratelimit's fixed windows passed meanwhile.
    let mut limited = None;
    for _ in 0..5 {
        if let Err(e) = minted.rejected().await {
            limited = Some(e);
            break;
        }
    }
    let limited = limited.expect("the ChatKit rate limit answers within five more calls");
    assert!(
        django.stats().await.expect("stats").chatkit_sessions >= 2,
        "the refused secret fell back to a new session"
    );
    let text = limited.to_string();
    let secs: u64 = text
        .split("wait ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the wait is said in seconds: {text}"));
    assert!(
        (1..=60).contains(&secs),
        "the epoch-ms Retry-After is read as the seconds left in the window, not a cap: {text}"
    );
    let limited_count = django.stats().await.expect("stats").chatkit_rate_limited;
    let again = minted.token().await.expect_err("still waiting");
    assert!(again.to_string().contains("asked to wait"), "{again}");
    assert_eq!(
        django.stats().await.expect("stats").chatkit_rate_limited,
        limited_count,
        "no request is made before the wait is over"
    );
}
