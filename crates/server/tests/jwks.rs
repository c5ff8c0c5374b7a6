//! Token verifier against a local issuer whose keys the test controls: EdDSA acceptance, key
//! rotation (refetch on unknown `kid`), the refetch rate limit, `nbf`, and algorithm/key mismatch.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::issuer::{new_key, sign, start_issuer};
use confab_server::auth::{unix_now, AuthError, TokenVerifier};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

#[tokio::test]
async fn eddsa_tokens_verify_and_unknown_kids_trigger_one_rate_limited_refetch() {
    let issuer = start_issuer().await;
    let k1 = new_key("k1");
    issuer.keys.lock().expect("lock").push(k1.jwk.clone());
    let verifier = TokenVerifier::new(&issuer.url, "confab-chat", 0, Duration::from_secs(2))
        .expect("verifier");

    let id = verifier
        .verify(&sign(&k1, &issuer.url, json!({})))
        .await
        .expect("EdDSA token from the issuer verifies");
    assert_eq!(id.user, "carol", "identity is the token's sub");
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        1,
        "keys are fetched once and cached"
    );
    verifier
        .verify(&sign(&k1, &issuer.url, json!({})))
        .await
        .expect("second token verifies");
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        1,
        "a known kid uses the cache"
    );

    // Rotation: the issuer publishes k2; the next unknown kid after the interval refetches.
    let k2 = new_key("k2");
    issuer.keys.lock().expect("lock").push(k2.jwk.clone());
    let stranger = new_key("k3");
    let refused = verifier
        .verify(&sign(&stranger, &issuer.url, json!({})))
        .await;
    assert_eq!(refused, Err(AuthError::KeysUnavailable), "an unknown kid right after a fetch is a temporary refusal (retry after the refetch interval)");
    let after_first_unknown = issuer.jwks_requests.load(Ordering::SeqCst);
    for _ in 0..5 {
        let _ = verifier
            .verify(&sign(&stranger, &issuer.url, json!({})))
            .await;
    }
    assert!(
        issuer.jwks_requests.load(Ordering::SeqCst) <= after_first_unknown,
        "repeated unknown kids within the refetch interval do not hammer the issuer"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if verifier
            .verify(&sign(&k2, &issuer.url, json!({})))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a rotated-in key is picked up by a refetch once the interval passes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        issuer.jwks_requests.load(Ordering::SeqCst) >= 2,
        "the rotated key came from a refetch"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = verifier
            .verify(&sign(&stranger, &issuer.url, json!({})))
            .await;
        if r == Err(AuthError::Invalid("unknown signing key")) {
            break;
        }
        assert_eq!(
            r,
            Err(AuthError::KeysUnavailable),
            "a never-published key is never accepted"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "once a refetch shows the kid is not published, the token is invalid"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Claims.
    let not_yet = verifier
        .verify(&sign(&k1, &issuer.url, json!({"nbf": unix_now() + 600})))
        .await;
    assert_eq!(
        not_yet,
        Err(AuthError::Invalid("not valid yet")),
        "a token before its nbf is invalid"
    );
    let expired = verifier
        .verify(&sign(&k1, &issuer.url, json!({"exp": unix_now() - 10})))
        .await;
    assert_eq!(
        expired,
        Err(AuthError::Expired),
        "a correctly signed token past exp is expired (109), not invalid"
    );
    let wrong_aud = verifier
        .verify(&sign(&k1, &issuer.url, json!({"aud": "other"})))
        .await;
    assert_eq!(
        wrong_aud,
        Err(AuthError::Invalid("wrong audience")),
        "wrong aud is invalid"
    );
    let wrong_iss = verifier
        .verify(&sign(&k1, "http://127.0.0.1:1", json!({})))
        .await;
    assert_eq!(
        wrong_iss,
        Err(AuthError::Invalid("wrong issuer")),
        "wrong iss is invalid"
    );
    let no_sub = verifier
        .verify(&sign(&k1, &issuer.url, json!({"sub": ""})))
        .await;
    assert!(
        matches!(no_sub, Err(AuthError::Invalid(_))),
        "an empty sub is invalid"
    );

    // A token claiming RS256 with an Ed25519 kid does not verify.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer.url, "aud": "confab-chat", "sub": "x", "exp": unix_now() + 60}),
        &k1.encoding,
    )
    .expect("sign");
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "k1"}).to_string());
    let confused = verifier.verify(&parts.join(".")).await;
    assert!(
        matches!(confused, Err(AuthError::Invalid(_))),
        "an algorithm that does not match the key is invalid"
    );
}

#[tokio::test]
async fn unreachable_issuer_is_a_server_side_error_not_an_invalid_token() {
    let verifier = TokenVerifier::new(
        "http://127.0.0.1:1",
        "confab-chat",
        0,
        Duration::from_secs(1),
    )
    .expect("verifier");
    let k = new_key("k");
    let r = verifier
        .verify(&sign(&k, "http://127.0.0.1:1", json!({})))
        .await;
    assert_eq!(r, Err(AuthError::KeysUnavailable), "when keys cannot be fetched the client gets a temporary internal error, not a terminal 3500");
}

/// A refetch waiting on a stalled issuer does not hold up tokens signed with cached keys, and
/// unknown `kid`s arriving meanwhile share that one refetch instead of starting their own.
#[tokio::test]
async fn a_stalled_refetch_does_not_block_tokens_with_cached_keys() {
    let issuer = start_issuer().await;
    let k1 = new_key("k1");
    issuer.keys.lock().expect("lock").push(k1.jwk.clone());
    let verifier = std::sync::Arc::new(
        TokenVerifier::new(&issuer.url, "confab-chat", 0, Duration::from_millis(0))
            .expect("verifier"),
    );
    verifier
        .verify(&sign(&k1, &issuer.url, json!({})))
        .await
        .expect("k1 verifies");

    issuer.stall.store(true, Ordering::SeqCst);
    let stranger = new_key("k9");
    let unknown: Vec<_> = (0..3)
        .map(|_| {
            let (v, token) = (verifier.clone(), sign(&stranger, &issuer.url, json!({})));
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while issuer.jwks_requests.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the refetch reaches the issuer"
        );
        tokio::task::yield_now().await;
    }
    // The refetch hangs at the issuer (until released): a cached key still verifies now.
    let known = tokio::time::timeout(
        Duration::from_secs(5),
        verifier.verify(&sign(&k1, &issuer.url, json!({}))),
    )
    .await;
    assert!(
        matches!(known, Ok(Ok(_))),
        "a token with a cached key verifies while the refetch waits: {known:?}"
    );
    issuer.stall.store(false, Ordering::SeqCst);
    issuer.release.notify_waiters();
    for task in unknown {
        let r = task.await.expect("task");
        assert!(r.is_err(), "the stranger's key is not at the issuer: {r:?}");
    }
    assert_eq!(
        issuer.jwks_requests.load(Ordering::SeqCst),
        2,
        "three unknown kids at once made one refetch"
    );
}
