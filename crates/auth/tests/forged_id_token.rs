//! ID token validation end to end: a small local provider (real sockets, real discovery, real
//! JWKS) whose token endpoint returns ID tokens the test forges with its own Ed25519 keys. The
//! real IdP never signs a bad token, so this is how the rejections are exercised honestly: the
//! client under test runs its normal discovery → begin → complete path and must refuse each one.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{Duration as ChronoDuration, Utc};
use confab_auth::{AuthClient, AuthConfig, ErrorCode, IdTokenProblem, RedirectTarget};
use openidconnect::core::{
    CoreEdDsaPrivateSigningKey, CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, Audience, EmptyAdditionalClaims, EndUserEmail, IssuerUrl, JsonWebKeyId, Nonce,
    PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CLIENT: &str = "confab-desktop";
const REDIRECT: &str = "dev.confab.chat:/oauth/callback";
const ACCESS_TOKEN: &str = "opaque-access-token-for-tests";
const KID: &str = "published-key";

/// A fresh Ed25519 key as PKCS#8 PEM (RFC 8410: a fixed DER prefix followed by the 32-byte seed).
fn ed25519_key(kid: &str) -> CoreEdDsaPrivateSigningKey {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    der.extend_from_slice(&seed);
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der)
    );
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(JsonWebKeyId::new(kid.to_owned())))
        .expect("a PKCS#8 Ed25519 key parses")
}

/// The fake provider: discovery + JWKS of the published key; the token endpoint answers with
/// whatever body the test put into `next_token_response`.
struct FakeProvider {
    issuer: String,
    published: CoreEdDsaPrivateSigningKey,
    jwks: Arc<Mutex<String>>,
    next_token_response: Arc<Mutex<String>>,
    token_requests: Arc<Mutex<u32>>,
}

impl FakeProvider {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let published = ed25519_key(KID);
        let jwks = Arc::new(Mutex::new(
            serde_json::json!({ "keys": [published.as_verification_key()] }).to_string(),
        ));
        let served_jwks = jwks.clone();
        let discovery = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
        })
        .to_string();
        let next_token_response = Arc::new(Mutex::new(String::new()));
        let token_requests = Arc::new(Mutex::new(0));
        let (next, count) = (next_token_response.clone(), token_requests.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (discovery, jwks, next, count) = (
                    discovery.clone(),
                    served_jwks.clone(),
                    next.clone(),
                    count.clone(),
                );
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut len = 0;
                    // Read the request head (and a small form body; its content is not needed).
                    while len < buf.len() {
                        match stream.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let head = String::from_utf8_lossy(&buf[..len]).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let body = match path.as_str() {
                        "/.well-known/openid-configuration" => discovery,
                        "/jwks" => jwks.lock().expect("lock").clone(),
                        "/token" => {
                            *count.lock().expect("lock") += 1;
                            next.lock().expect("lock").clone()
                        }
                        _ => String::new(),
                    };
                    if let Some(location) = body.strip_prefix("REDIRECT ") {
                        let response = format!(
                            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    let status = if body.is_empty() {
                        "404 Not Found"
                    } else {
                        "200 OK"
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            issuer,
            published,
            jwks,
            next_token_response,
            token_requests,
        }
    }

    /// Replace the served JWKS (key rotation).
    fn publish(&self, keys: &[&CoreEdDsaPrivateSigningKey]) {
        let keys: Vec<_> = keys.iter().map(|k| k.as_verification_key()).collect();
        *self.jwks.lock().expect("lock") = serde_json::json!({ "keys": keys }).to_string();
    }

    fn token_requests(&self) -> u32 {
        *self.token_requests.lock().expect("lock")
    }
}

/// What to put into the forged token.
struct Forge<'a> {
    key: &'a CoreEdDsaPrivateSigningKey,
    issuer: String,
    audience: String,
    nonce: String,
    expires_in: ChronoDuration,
    at_hash_of: Option<&'a str>,
}

fn sign(f: Forge<'_>) -> String {
    let now = Utc::now();
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(f.issuer).expect("issuer"),
        vec![Audience::new(f.audience)],
        now + f.expires_in,
        now,
        StandardClaims::new(SubjectIdentifier::new("forged-subject".to_owned()))
            .set_email(Some(EndUserEmail::new("alice@example.test".to_owned()))),
        EmptyAdditionalClaims {},
    )
    .set_nonce(Some(Nonce::new(f.nonce)));
    let at = f.at_hash_of.map(|t| AccessToken::new(t.to_owned()));
    CoreIdToken::new(
        claims,
        f.key,
        CoreJwsSigningAlgorithm::EdDsa,
        at.as_ref(),
        None,
    )
    .expect("signing works")
    .to_string()
}

fn token_response(id_token: Option<&str>) -> String {
    let mut body = serde_json::json!({
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
    });
    if let Some(t) = id_token {
        body["id_token"] = serde_json::Value::String(t.to_owned());
    }
    body.to_string()
}

/// Run one login where the token endpoint returns `make(nonce)`; returns the outcome.
async fn login_with(
    provider: &FakeProvider,
    make: impl FnOnce(&str) -> String,
) -> confab_auth::Result<confab_auth::SignedIn> {
    let issuer = url::Url::parse(&provider.issuer).expect("issuer url");
    let client = AuthClient::discover(AuthConfig::new(issuer, CLIENT))
        .await
        .expect("discovery against the fake provider");
    let start = client
        .begin(RedirectTarget::private_use(REDIRECT).expect("redirect"))
        .expect("begin");
    let param = |name: &str| {
        start
            .authorize_url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("authorize URL parameter")
    };
    let (state, nonce) = (param("state"), param("nonce"));
    *provider.next_token_response.lock().expect("lock") = make(&nonce);
    let mut callback = url::Url::parse(REDIRECT).expect("url");
    callback
        .query_pairs_mut()
        .append_pair("code", "any-code")
        .append_pair("state", &state)
        .append_pair("iss", &provider.issuer);
    client.complete(callback.as_str()).await
}

fn problem_of(r: confab_auth::Result<confab_auth::SignedIn>) -> Option<IdTokenProblem> {
    match r {
        Err(confab_auth::Error::IdTokenInvalid(p)) => Some(p),
        _ => None,
    }
}

#[tokio::test]
async fn a_correct_token_is_accepted_control() {
    let p = FakeProvider::start().await;
    let signed = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: Some(ACCESS_TOKEN),
        })))
    })
    .await
    .expect("a correctly signed ID token for us with our nonce is accepted (harness works)");
    assert_eq!(
        signed.user.subject, "forged-subject",
        "claims come from the ID token"
    );
    assert_eq!(p.token_requests(), 1, "one token request per login");
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let p = FakeProvider::start().await;
    let attacker = ed25519_key(KID); // same kid, different key
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &attacker,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Signature),
        "an ID token not signed by a key in the provider's JWKS is rejected"
    );
}

#[tokio::test]
async fn unknown_key_id_is_rejected() {
    let p = FakeProvider::start().await;
    let other = ed25519_key("some-other-kid");
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &other,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Signature),
        "an ID token signed with a key the JWKS does not contain is rejected"
    );
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let p = FakeProvider::start().await;
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: p.issuer.clone(),
            audience: "another-client".into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Audience),
        "an ID token issued to another client is rejected"
    );
}

#[tokio::test]
async fn wrong_nonce_is_rejected() {
    let p = FakeProvider::start().await;
    let r = login_with(&p, |_nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: "nonce-of-another-login".into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Nonce),
        "an ID token from another login (replayed/injected) is rejected by its nonce"
    );
}

#[tokio::test]
async fn wrong_issuer_and_expired_are_rejected() {
    let p = FakeProvider::start().await;
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: "http://127.0.0.1:1".into(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Issuer),
        "an ID token from another issuer is rejected"
    );
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(-5),
            at_hash_of: None,
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Expired),
        "an expired ID token is rejected"
    );
}

#[tokio::test]
async fn at_hash_mismatch_and_missing_token_are_rejected() {
    let p = FakeProvider::start().await;
    let r = login_with(&p, |nonce| {
        token_response(Some(&sign(Forge {
            key: &p.published,
            issuer: p.issuer.clone(),
            audience: CLIENT.into(),
            nonce: nonce.into(),
            expires_in: ChronoDuration::minutes(5),
            at_hash_of: Some("a-different-access-token"),
        })))
    })
    .await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::AccessTokenHash),
        "an ID token whose at_hash belongs to another access token is rejected"
    );
    let r = login_with(&p, |_| token_response(None)).await;
    assert_eq!(
        problem_of(r),
        Some(IdTokenProblem::Missing),
        "a token response without an ID token does not sign anyone in"
    );
}

#[tokio::test]
async fn unsigned_token_is_rejected() {
    let p = FakeProvider::start().await;
    let r = login_with(&p, |nonce| {
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let header = b64(serde_json::json!({ "alg": "none", "kid": KID }));
        let claims = b64(serde_json::json!({
            "iss": p.issuer, "aud": CLIENT, "sub": "x", "nonce": nonce,
            "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + 300,
        }));
        token_response(Some(&format!("{header}.{claims}.")))
    })
    .await;
    let code = r.as_ref().err().map(|e| e.code());
    assert!(
        matches!(
            code,
            Some(ErrorCode::IdTokenInvalid) | Some(ErrorCode::TokenEndpoint)
        ),
        "an `alg: none` ID token never signs anyone in (got {code:?})"
    );
}

#[tokio::test]
async fn token_requests_never_follow_redirects() {
    let p = FakeProvider::start().await;
    // Where a malicious or compromised provider would bounce the code (SSRF / code leak).
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let elsewhere_url = format!(
        "http://127.0.0.1:{}/steal",
        elsewhere.local_addr().expect("addr").port()
    );
    let r = login_with(&p, |_| format!("REDIRECT {elsewhere_url}")).await;
    assert!(
        r.is_err(),
        "a redirected token response never signs anyone in"
    );
    assert_eq!(
        p.token_requests(),
        1,
        "the token endpoint itself was asked once"
    );
    let hit = tokio::time::timeout(std::time::Duration::ZERO, elsewhere.accept()).await;
    assert!(
        hit.is_err(),
        "the token client does not follow the redirect to another address"
    );
}

#[tokio::test]
async fn rotated_provider_keys_are_picked_up() {
    let p = FakeProvider::start().await;
    let issuer = url::Url::parse(&p.issuer).expect("issuer url");
    let client = AuthClient::discover(AuthConfig::new(issuer, CLIENT))
        .await
        .expect("discovery");
    // The provider rotates to a new key after the client discovered the old JWKS.
    let rotated = ed25519_key("rotated-key");
    p.publish(&[&rotated]);
    let start = client
        .begin(RedirectTarget::private_use(REDIRECT).expect("redirect"))
        .expect("begin");
    let param = |name: &str| {
        start
            .authorize_url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("authorize URL parameter")
    };
    *p.next_token_response.lock().expect("lock") = token_response(Some(&sign(Forge {
        key: &rotated,
        issuer: p.issuer.clone(),
        audience: CLIENT.into(),
        nonce: param("nonce"),
        expires_in: ChronoDuration::minutes(5),
        at_hash_of: None,
    })));
    let mut callback = url::Url::parse(REDIRECT).expect("url");
    callback
        .query_pairs_mut()
        .append_pair("code", "c")
        .append_pair("state", &param("state"))
        .append_pair("iss", &p.issuer);
    client
        .complete(callback.as_str())
        .await
        .expect("a token signed with the provider's new key verifies after re-fetching the JWKS");
}
