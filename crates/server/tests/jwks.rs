//! Token verifier against a local issuer whose keys the test controls: EdDSA acceptance, key
//! rotation (refetch on unknown `kid`), the refetch rate limit, `nbf`, and algorithm/key mismatch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_server::auth::{unix_now, AuthError, TokenVerifier};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

struct Issuer {
    url: String,
    keys: Mutex<Vec<Value>>,
    jwks_requests: AtomicUsize,
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn new_key(kid: &str) -> Key {
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let pem = signing
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("pkcs8 pem");
    let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    Key {
        kid: kid.to_owned(),
        encoding: EncodingKey::from_ed_pem(pem.as_bytes()).expect("ed25519 key"),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
    }
}

async fn start_issuer() -> Arc<Issuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let issuer = Arc::new(Issuer {
        url,
        keys: Mutex::new(Vec::new()),
        jwks_requests: AtomicUsize::new(0),
    });
    async fn discovery(State(i): State<Arc<Issuer>>) -> Json<Value> {
        Json(json!({"issuer": i.url, "jwks_uri": format!("{}/jwks", i.url)}))
    }
    async fn jwks(State(i): State<Arc<Issuer>>) -> Json<Value> {
        i.jwks_requests.fetch_add(1, Ordering::SeqCst);
        Json(json!({"keys": *i.keys.lock().expect("keys lock")}))
    }
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .with_state(issuer.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    issuer
}

fn sign(key: &Key, issuer: &str, extra: Value) -> String {
    let mut claims =
        json!({"iss": issuer, "aud": "confab-chat", "sub": "carol", "exp": unix_now() + 300});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign")
}

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
