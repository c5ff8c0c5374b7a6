//! Connection authentication against the real test IdP: good tokens connect; forged, expired,
//! foreign and misdirected tokens get the protocol's codes.

mod common;

use std::time::Duration;

use common::*;
use confab_protocol::{Disconnect, ErrorCode};
use confab_testkit::{Idp, IdpOptions};
use serde_json::json;

async fn expect_invalid_token(url: &str, token: &str, what: &str) {
    let mut c = Client::open(url).await;
    c.send_cmd(json!({"connect": {"token": token}})).await;
    let closed = c.expect_close().await;
    assert_eq!(
        closed.code,
        Disconnect::INVALID_TOKEN.code,
        "{what} is refused with disconnect 3500 (invalid token)"
    );
}

#[tokio::test]
async fn valid_tokens_connect_and_forged_or_foreign_tokens_are_refused() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let other_idp = Idp::start(IdpOptions::default())
        .await
        .expect("second IdP starts");
    let wrong_aud_idp = Idp::start(IdpOptions {
        audience: "another-service".into(),
        ..IdpOptions::default()
    })
    .await
    .expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;

    let alice = idp.login("alice").await.expect("alice logs in");
    let (c, reply) = Client::connect(&server.url, &alice.access_token).await;
    let result = reply
        .connect
        .as_ref()
        .unwrap_or_else(|| panic!("a valid IdP access token connects, got {reply:?}"));
    assert!(
        result.expires && result.ttl > 200 && result.ttl <= 300,
        "connect reports the token's remaining lifetime as ttl ({})",
        result.ttl
    );
    assert!(
        !result.client.is_empty(),
        "connect result carries a client id"
    );
    c.close().await;

    let token = &alice.access_token;
    expect_invalid_token(
        &server.url,
        &tamper(token, |p| p["sub"] = json!("bob")),
        "a token with a modified payload (tampered signature)",
    )
    .await;
    let (_, _, sig) = jwt_parts(token);
    let mut bad_sig = sig.clone().into_bytes();
    bad_sig[5] = if bad_sig[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!(
        "{}.{}",
        token.rsplit_once('.').map(|(a, _)| a).unwrap_or_default(),
        String::from_utf8(bad_sig).expect("ascii")
    );
    expect_invalid_token(
        &server.url,
        &flipped,
        "a token with a flipped signature byte",
    )
    .await;
    expect_invalid_token(&server.url, &alg_none(token), "an unsigned alg:none token").await;
    expect_invalid_token(
        &server.url,
        &hs256_with_public_key(&idp.issuer_str(), token).await,
        "an HS256 token keyed with the issuer's public key",
    )
    .await;

    let foreign = other_idp
        .login("alice")
        .await
        .expect("login at the other IdP");
    expect_invalid_token(
        &server.url,
        &foreign.access_token,
        "a token from another issuer",
    )
    .await;
    let wrong_aud = wrong_aud_idp
        .login("alice")
        .await
        .expect("login at the other-audience IdP");
    expect_invalid_token(
        &server.url,
        &wrong_aud.access_token,
        "a token for another audience",
    )
    .await;
    expect_invalid_token(&server.url, "", "an empty token").await;
    expect_invalid_token(&server.url, "not-a-jwt", "garbage instead of a JWT").await;

    let mut early = Client::open(&server.url).await;
    early
        .send_cmd(json!({"subscribe": {"channel": "room:general"}}))
        .await;
    assert_eq!(
        early.expect_close().await.code,
        Disconnect::BAD_REQUEST.code,
        "a command before connect is a bad request (3501)"
    );

    let alice2 = Client::connected(&server.url, &alice.access_token).await;
    let mut twice = alice2;
    twice
        .send_cmd(json!({"connect": {"token": alice.access_token}}))
        .await;
    assert_eq!(
        twice.expect_close().await.code,
        Disconnect::BAD_REQUEST.code,
        "a second connect on one connection is a bad request"
    );
}

#[tokio::test]
async fn expired_tokens_get_109_and_unrefreshed_connections_are_closed_with_3005() {
    let idp = Idp::start(IdpOptions {
        access_ttl: Duration::from_secs(3),
        ..IdpOptions::default()
    })
    .await
    .expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;

    // A connection that refreshes in time stays; the refresh extends its life.
    let first = idp.login("alice").await.expect("login");
    let mut refreshed = Client::connected(&server.url, &first.access_token).await;
    let mut unrefreshed = Client::connected(&server.url, &first.access_token).await;
    let next = idp.login("alice").await.expect("second login");
    let r = refreshed
        .call(json!({"refresh": {"token": next.access_token}}))
        .await;
    let res = r
        .refresh
        .unwrap_or_else(|| panic!("refresh with a fresh token succeeds, got {:?}", r.error));
    assert!(
        res.expires && res.ttl >= 1,
        "refresh result reports the new ttl"
    );

    let closed = unrefreshed.expect_close().await;
    assert_eq!(
        closed.code,
        Disconnect::EXPIRED.code,
        "a connection whose token expires without refresh is closed with 3005 (connection expired)"
    );

    // Once expired, the old token is refused at connect with the retryable 109.
    let reply = poll(Duration::from_secs(10), "the first token to expire", || {
        let url = server.url.clone();
        let token = first.access_token.clone();
        async move {
            let (_c, r) = Client::connect(&url, &token).await;
            (error_code(&r) == Some(ErrorCode::TOKEN_EXPIRED)).then_some(r)
        }
    })
    .await;
    assert_eq!(
        error_code(&reply),
        Some(109),
        "connect with an expired token replies error 109 (token expired)"
    );
    let fresh = idp.login("alice").await.expect("login");
    let mut live = Client::connected(&server.url, &fresh.access_token).await;
    let r = live
        .call(json!({"refresh": {"token": first.access_token}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::TOKEN_EXPIRED),
        "refresh with an expired token replies 109"
    );

    // Refresh with another user's token is refused.
    let bob = idp.login("bob").await.expect("bob logs in");
    live.send_cmd(json!({"refresh": {"token": bob.access_token}}))
        .await;
    assert_eq!(
        live.expect_close().await.code,
        Disconnect::INVALID_TOKEN.code,
        "refresh with another user's token is an invalid token"
    );
}

/// A token accepted in its last second, or within the leeway after `exp`, still reports a ttl:
/// the protocol leaves a ttl of 0 out of the reply, and clients that see `expires` without a ttl
/// fail (centrifuge-python raised `KeyError: 'ttl'` on a reconnect with such a token).
#[tokio::test]
async fn a_token_at_its_expiry_connects_with_a_ttl_of_at_least_one_second() {
    let idp = Idp::start(IdpOptions {
        access_ttl: Duration::from_secs(1),
        ..IdpOptions::default()
    })
    .await
    .expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(confab_server::Config {
        token_leeway_secs: 30,
        ..test_config(&idp.issuer_str(), dir.path())
    })
    .await;

    let old = idp.login("alice").await.expect("login");
    let (_, claims, _) = jwt_parts(&old.access_token);
    let exp = claims["exp"].as_u64().expect("exp claim");
    poll(
        Duration::from_secs(10),
        "the token's exp to pass",
        || async { (confab_server::auth::unix_now() > exp).then_some(()) },
    )
    .await;

    let (mut c, r) = Client::connect(&server.url, &old.access_token).await;
    let Some(res) = r.connect else {
        panic!("a token within the leeway connects, got {:?}", r.error);
    };
    assert!(
        res.expires && res.ttl >= 1,
        "connect past exp reports expires with a ttl of at least 1 s, got expires={} ttl={}",
        res.expires,
        res.ttl
    );

    let r = c
        .call(json!({"refresh": {"token": old.access_token}}))
        .await;
    let res = r
        .refresh
        .unwrap_or_else(|| panic!("refresh within the leeway succeeds, got {:?}", r.error));
    assert!(
        res.expires && res.ttl >= 1,
        "refresh past exp reports a ttl of at least 1 s, got ttl={}",
        res.ttl
    );
}
