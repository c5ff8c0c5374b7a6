//! The backend role's chat token endpoint: a user's identity-provider access token buys a
//! short-lived connection JWT signed with the server's own key (published as a JWKS), which the
//! server accepts on connect; every bad token is refused with 401 and nothing minted, and a
//! user asking too often gets 429 with Retry-After.

mod common;

use common::issuer::{new_key, sign, start_issuer};
use common::*;
use confab_protocol::Disconnect;
use confab_server::auth::unix_now;
use confab_testkit::{Idp, IdpOptions};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

fn http_base(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

async fn ask(server: &TestServer, auth: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{}/api/chat/token", http_base(server)));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.send().await.expect("token endpoint answers")
}

#[tokio::test]
async fn an_access_token_buys_a_short_chat_token_the_server_accepts() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.chat_token_max_ttl_secs = 120;
    config.chat_tokens_per_minute = 3;
    let server = TestServer::start(config).await;
    let access = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    let resp = ask(&server, Some(&format!("Bearer {access}"))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = resp.json().await.expect("json");
    let token = body["token"].as_str().expect("a token").to_owned();
    let expires_in = body["expires_in"].as_u64().expect("expires_in");
    assert!(
        (100..=120).contains(&expires_in),
        "at most the configured 120 s: {expires_in}"
    );

    // It verifies with the published key set alone (what Centrifugo would do).
    let jwks: JwkSet = reqwest::get(format!("{}/api/chat/jwks", http_base(&server)))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the kid is published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["confab-chat"]);
    validation.set_issuer(&["confab-server"]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("the minted token verifies against the JWKS")
    .claims;
    assert_eq!(claims["sub"], "alice");
    assert!(claims["exp"].as_u64().unwrap_or(u64::MAX) <= unix_now() + 120);

    // The server takes it on connect.
    let (mut c, reply) = Client::connect(&server.url, &token).await;
    assert!(
        reply.connect.is_some(),
        "connected with a minted token: {:?}",
        reply.error
    );
    let r = c.call(json!({"rpc": {"method": "rooms.list"}})).await;
    assert!(r.error.is_none());

    // Three per minute: the fourth is 429 with Retry-After (two more now, then one too many).
    for _ in 0..2 {
        assert_eq!(
            ask(&server, Some(&format!("Bearer {access}")))
                .await
                .status(),
            200
        );
    }
    let resp = ask(&server, Some(&format!("Bearer {access}"))).await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let bob = idp.login("bob").await.expect("login").access_token.clone();
    assert_eq!(
        ask(&server, Some(&format!("Bearer {bob}"))).await.status(),
        200,
        "the limit is per user"
    );
}

#[tokio::test]
async fn bad_tokens_get_401_and_nothing_minted() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let access = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    let expired = tamper(&access, |p| p["exp"] = json!(unix_now() - 600));
    let other_audience = tamper(&access, |p| p["aud"] = json!("someone-else"));
    // A token of another issuer whose keys the server does not trust.
    let stranger = start_issuer().await;
    let key = new_key("x1");
    stranger.keys.lock().expect("keys").push(key.jwk.clone());
    let foreign = sign(&key, &stranger.url, json!({"aud": "confab-chat"}));
    // A chat token signed with someone else's key under this server's issuer name.
    let forged_chat = sign(
        &key,
        "confab-server",
        json!({"aud": "confab-chat", "sub": "alice"}),
    );

    for (what, auth) in [
        ("no header", None),
        ("not bearer", Some(format!("Basic {access}"))),
        ("empty", Some("Bearer ".to_owned())),
        ("garbage", Some("Bearer not.a.jwt".to_owned())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("other audience", Some(format!("Bearer {other_audience}"))),
        ("other issuer", Some(format!("Bearer {foreign}"))),
        ("a chat token", Some(format!("Bearer {forged_chat}"))),
    ] {
        let resp = ask(&server, auth.as_deref()).await;
        assert_eq!(resp.status(), 401, "{what}");
        assert!(
            resp.headers().get("www-authenticate").is_some(),
            "{what}: a Bearer challenge"
        );
        let body: Value = resp.json().await.expect("json");
        assert!(body.get("token").is_none(), "{what}: nothing minted");
        assert!(
            !body["error_description"].as_str().unwrap_or("").is_empty(),
            "{what}: says why"
        );
    }

    // A chat token forged with another key is refused on connect too.
    let mut c = Client::open(&server.url).await;
    c.send_cmd(json!({"connect": {"token": forged_chat}})).await;
    assert_eq!(c.expect_close().await.code, Disconnect::INVALID_TOKEN.code);

    // The key survives a restart: a token minted before still verifies after.
    let token: Value = ask(&server, Some(&format!("Bearer {access}")))
        .await
        .json()
        .await
        .expect("json");
    let token = token["token"].as_str().expect("token").to_owned();
    server.shutdown().await;
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let (_c, reply) = Client::connect(&server.url, &token).await;
    assert!(reply.connect.is_some(), "the same key after a restart");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key_file = dir.path().join("confab.sqlite3.chat-token-key.pem");
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the signing key is owner-only: {mode:o}");
    }
}

/// Centrifugo's subscribe proxy: answered only with the configured secret, and room membership
/// decides as on the server's own connections.
#[tokio::test]
async fn the_subscribe_proxy_checks_its_secret_and_room_membership() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let off = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let url = |s: &TestServer| format!("{}/api/centrifugo/subscribe", http_base(s));
    let ask = |s: &TestServer, secret: Option<&str>, body: Value| {
        let mut req = reqwest::Client::new().post(url(s)).json(&body);
        if let Some(secret) = secret {
            req = req.header("X-Confab-Proxy-Secret", secret);
        }
        req.send()
    };
    let body = json!({"client": "c1", "transport": "websocket", "protocol": "json",
        "encoding": "json", "user": "alice", "channel": "room:general"});
    let r = ask(&off, Some("whatever-it-is-long-enough"), body.clone())
        .await
        .expect("answers");
    assert_eq!(r.status(), 404, "no secret configured: the proxy is off");
    off.shutdown().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.centrifugo_proxy_secret = Some(confab_types::SecretString::new(
        "the-proxy-secret-1234".to_owned(),
    ));
    let server = TestServer::start(config).await;
    for wrong in [None, Some("the-proxy-secret-1235"), Some("")] {
        let r = ask(&server, wrong, body.clone()).await.expect("answers");
        assert_eq!(r.status(), 401, "secret {wrong:?} is refused");
    }
    let access = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let mut alice = Client::connected(&server.url, &access).await;
    alice
        .call(json!({"rpc": {"method": "rooms.create",
            "data": {"id": "secret", "name": "Secret", "private": true}}}))
        .await;
    for (user, channel, expected) in [
        ("alice", "room:general", json!({"result": {}})),
        ("alice", "room:secret", json!({"result": {}})),
        ("bob", "room:secret", json!(102)),
        ("bob", "room:missing", json!(102)),
        ("", "room:general", json!(103)),
        ("alice", "news", json!(102)),
    ] {
        let mut b = body.clone();
        b["user"] = json!(user);
        b["channel"] = json!(channel);
        let v: Value = ask(&server, Some("the-proxy-secret-1234"), b)
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        if expected.is_object() {
            assert_eq!(v, expected, "{user} {channel}");
        } else {
            assert_eq!(v["error"]["code"], expected, "{user} {channel}: {v}");
        }
    }
}

/// The chat backend's client at the test IdP (a public fixture of tests/idp).
const BACKEND_CLIENT: (&str, &str) = ("confab-backend", "confab-backend-test-secret");

fn introspecting(config: &mut confab_server::Config, secret: &str) {
    config.introspection_client_id = Some(BACKEND_CLIENT.0.to_owned());
    config.introspection_client_secret = Some(confab_types::SecretString::new(secret.to_owned()));
}

#[tokio::test]
async fn opaque_access_tokens_are_checked_by_introspection() {
    let idp = Idp::start(IdpOptions::default().with_env("IDP_OPAQUE_ACCESS_TOKENS", "1"))
        .await
        .expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    introspecting(&mut config, BACKEND_CLIENT.1);
    config.introspection_allowed_clients = vec!["confab-desktop".to_owned()];
    let server = TestServer::start(config).await;
    let alice = idp.login("alice").await.expect("login");
    assert!(
        !confab_server::auth::looks_like_jwt(&alice.access_token),
        "the IdP issues opaque access tokens in this mode"
    );

    let resp = ask(&server, Some(&format!("Bearer {}", alice.access_token))).await;
    assert_eq!(
        resp.status(),
        200,
        "an active opaque token buys a chat token"
    );
    let body: Value = resp.json().await.expect("json");
    let token = body["token"].as_str().expect("a token").to_owned();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
        .expect("a JWT")
        .claims;
    assert_eq!(claims["sub"], "alice", "the subject the provider named");
    assert_eq!(
        claims["info"]["name"], "Alice Example",
        "the display name from the introspection answer"
    );
    let access_exp = unix_now() + alice.expires_in.expect("expires_in");
    assert!(
        claims["exp"].as_u64().expect("exp") <= access_exp + 1,
        "never past the access token's expiry: {claims}"
    );
    // The minted token connects, and so does the opaque token itself.
    let (_, reply) = Client::connect(&server.url, &token).await;
    assert!(
        reply.connect.is_some(),
        "the chat token connects: {reply:?}"
    );
    let (_, reply) = Client::connect(&server.url, &alice.access_token).await;
    assert!(
        reply.connect.is_some(),
        "the opaque token connects: {reply:?}"
    );

    // Refused, with nothing minted: a made-up token, a refresh token, a revoked token.
    let refresh = alice.refresh_token.clone().expect("refresh token");
    for (what, bad) in [
        (
            "a made-up opaque token",
            "aGVsbG8tdGhpcy1pcy1ub3QtYS10b2tlbi1hdC1hbGw".to_owned(),
        ),
        ("a refresh token", refresh),
    ] {
        let resp = ask(&server, Some(&format!("Bearer {bad}"))).await;
        assert_eq!(resp.status(), 401, "{what} is refused");
        let body: Value = resp.json().await.expect("json");
        assert!(
            body.get("token").is_none(),
            "{what}: nothing minted: {body}"
        );
    }
    assert!(idp.revoke_grants("alice").await.expect("revoke") >= 1);
    let resp = ask(&server, Some(&format!("Bearer {}", alice.access_token))).await;
    assert_eq!(
        resp.status(),
        401,
        "a revoked token is refused at once: the provider is asked every time"
    );
}

#[tokio::test]
async fn introspection_with_the_wrong_backend_secret_is_unavailable_not_a_user_error() {
    let idp = Idp::start(IdpOptions::default().with_env("IDP_OPAQUE_ACCESS_TOKENS", "1"))
        .await
        .expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    introspecting(&mut config, "not-the-backend-secret");
    let server = TestServer::start(config).await;
    let alice = idp.login("alice").await.expect("login");
    let resp = ask(&server, Some(&format!("Bearer {}", alice.access_token))).await;
    assert_eq!(
        resp.status(),
        503,
        "the backend's own credentials were refused: the user's token is not to blame"
    );

    // Without introspection configured an opaque token is simply not a JWT.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let resp = ask(&server, Some(&format!("Bearer {}", alice.access_token))).await;
    assert_eq!(resp.status(), 401, "an opaque token without introspection");
}
