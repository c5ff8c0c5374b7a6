//! A local OpenID issuer whose Ed25519 keys the test controls (discovery and JWKS over HTTP),
//! and tokens it signs: for key rotation tests and for identities the test IdP cannot issue.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_server::auth::unix_now;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub struct Issuer {
    pub url: String,
    pub keys: Mutex<Vec<Value>>,
    pub jwks_requests: AtomicUsize,
    /// While set, JWKS requests hang until `release` is notified (an issuer that stalls).
    pub stall: AtomicBool,
    pub release: tokio::sync::Notify,
}

pub struct Key {
    pub kid: String,
    pub encoding: EncodingKey,
    pub jwk: Value,
}

pub fn new_key(kid: &str) -> Key {
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

pub async fn start_issuer() -> Arc<Issuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let issuer = Arc::new(Issuer {
        url,
        keys: Mutex::new(Vec::new()),
        jwks_requests: AtomicUsize::new(0),
        stall: AtomicBool::new(false),
        release: tokio::sync::Notify::new(),
    });
    async fn discovery(State(i): State<Arc<Issuer>>) -> Json<Value> {
        Json(json!({"issuer": i.url, "jwks_uri": format!("{}/jwks", i.url)}))
    }
    async fn jwks(State(i): State<Arc<Issuer>>) -> Json<Value> {
        i.jwks_requests.fetch_add(1, Ordering::SeqCst);
        if i.stall.load(Ordering::SeqCst) {
            i.release.notified().await;
        }
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

pub fn sign(key: &Key, issuer: &str, extra: Value) -> String {
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
