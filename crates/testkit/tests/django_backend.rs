//! Proves the Django test backend keeps the contract of tests/backends/django/README.md: a real
//! Django + DRF + SimpleJWT process under gunicorn, real HTTP.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_testkit::{Django, DjangoOptions, DjangoStats, DJANGO_CHAT_AUDIENCE};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn start(options: DjangoOptions) -> Django {
    let started = Instant::now();
    match Django::start(options).await {
        Ok(django) => {
            eprintln!("Django test backend ready in {:?}", started.elapsed());
            django
        }
        Err(e) => panic!("the Django test backend must start: {e}"),
    }
}

/// A response's status, `Retry-After` header and JSON body (`Null` when empty).
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn post(django: &Django, path: &str, bearer: Option<&str>, body: Option<Value>) -> Answer {
    let client = reqwest::Client::new();
    let mut request = client
        .post(django.endpoint(path))
        .timeout(Duration::from_secs(10));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("Retry-After is text").to_owned());
    let text = response.text().await.expect("response body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text:?}"))
    };
    Answer {
        status,
        retry_after,
        body,
    }
}

async fn get_json(django: &Django, path: &str) -> Value {
    reqwest::get(django.endpoint(path))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path} is JSON: {e}"))
}

async fn login(django: &Django, email: &str, password: &str) -> Answer {
    post(
        django,
        "/api/authuser/login/",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// Access and refresh token of a successful login.
async fn tokens(django: &Django, user: &str) -> (String, String) {
    let answer = login(django, user, &format!("{user}-password")).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{user} logs in: {}",
        answer.body
    );
    (
        answer.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        answer.body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_owned(),
    )
}

fn code(answer: &Answer) -> &str {
    answer.body["code"].as_str().unwrap_or("")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Verifies a chat token against the backend's discovery document and JWKS, as the chat server
/// does, and returns its header `kid` and claims.
async fn verify_chat_token(django: &Django, token: &str) -> Value {
    let discovery = get_json(django, "/.well-known/openid-configuration").await;
    assert_eq!(
        discovery["issuer"],
        django.issuer(),
        "discovery names the issuer"
    );
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let jwks: JwkSet = reqwest::get(jwks_uri)
        .await
        .expect("GET jwks_uri")
        .json()
        .await
        .expect("a JWK set");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256, "chat tokens are RS256");
    let kid = header.kid.expect("chat tokens name their key");
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let raw: Value = reqwest::get(jwks_uri)
        .await
        .expect("GET jwks_uri")
        .json()
        .await
        .expect("JSON");
    assert_eq!(raw["keys"][0]["use"], "sig", "the key is for signatures");
    assert_eq!(
        raw["keys"][0]["alg"], "RS256",
        "the key names its algorithm"
    );
    let key = DecodingKey::from_jwk(jwk).expect("the JWK is a usable key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[django.issuer()]);
    validation.set_audience(&[DJANGO_CHAT_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the chat token verifies against the served JWKS with iss and aud")
        .claims
}

#[tokio::test]
async fn login_refresh_blacklist_and_chat_tokens() {
    let django = start(DjangoOptions {
        login_rate: "100/m".to_owned(),
        ..DjangoOptions::default()
    })
    .await;

    // Login by username and by email (any case), with the user's profile.
    let alice = login(&django, "alice", "alice-password").await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(alice.body["username"], "alice");
    assert_eq!(alice.body["email"], "alice@example.test");
    assert_eq!(alice.body["first_name"], "Alice");
    assert_eq!(alice.body["last_name"], "Example");
    let bob = login(&django, "Bob@Example.test", "bob-password").await;
    assert_eq!(bob.status, StatusCode::OK, "login by email: {}", bob.body);
    assert_eq!(bob.body["username"], "bob", "the email finds bob");

    // Refusals, each with detail and code.
    let wrong = login(&django, "alice", "not-her-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&wrong), "invalid_credentials", "{}", wrong.body);
    assert!(wrong.body["detail"].is_string(), "{}", wrong.body);
    let unknown = login(&django, "mallory", "mallory-password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&unknown), "invalid_credentials", "{}", unknown.body);
    let carol = login(&django, "carol", "carol-password").await;
    assert_eq!(carol.status, StatusCode::FORBIDDEN, "{}", carol.body);
    assert_eq!(code(&carol), "account_inactive");
    let carol_wrong = login(&django, "carol", "guess").await;
    assert_eq!(
        code(&carol_wrong),
        "invalid_credentials",
        "an inactive account is only revealed to its password: {}",
        carol_wrong.body
    );
    let blank = post(
        &django,
        "/api/authuser/login/",
        None,
        Some(json!({"email": " ", "password": "x"})),
    )
    .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST, "{}", blank.body);
    assert_eq!(code(&blank), "invalid_request");
    assert_eq!(
        blank.body["fields"]["email"],
        json!(["This field may not be blank."])
    );
    let missing = post(&django, "/api/authuser/login/", None, Some(json!({}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(
        missing.body["fields"]["password"],
        json!(["This field is required."])
    );

    // SimpleJWT refresh rotates; the rotated-out token is refused.
    let (access, refresh1) = tokens(&django, "alice").await;
    let rotated = post(
        &django,
        "/api/token/refresh/",
        None,
        Some(json!({"refresh": refresh1})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let refresh2 = rotated.body["refresh"]
        .as_str()
        .expect("a rotated refresh token");
    assert!(rotated.body["access"].is_string(), "{}", rotated.body);
    assert_ne!(refresh2, refresh1, "the refresh token rotates");
    let replay = post(
        &django,
        "/api/token/refresh/",
        None,
        Some(json!({"refresh": refresh1})),
    )
    .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(code(&replay), "token_not_valid", "{}", replay.body);
    assert!(replay.body["detail"].is_string(), "{}", replay.body);

    // Blacklisting the current one ends it too.
    let blacklisted = post(
        &django,
        "/api/token/blacklist/",
        None,
        Some(json!({"refresh": refresh2})),
    )
    .await;
    assert_eq!(blacklisted.status, StatusCode::OK, "{}", blacklisted.body);
    let after = post(
        &django,
        "/api/token/refresh/",
        None,
        Some(json!({"refresh": refresh2})),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    assert_eq!(code(&after), "token_not_valid");

    // Chat tokens: signed with the backend's own key, verifiable through its discovery.
    let minted = post(&django, "/api/chat/token", Some(&access), None).await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    let token = minted.body["token"].as_str().expect("token");
    let expires_in = minted.body["expires_in"].as_u64().expect("expires_in");
    assert!(
        (1..=10).contains(&expires_in),
        "capped by the 10 s access token: {expires_in}"
    );
    let claims = verify_chat_token(&django, token).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["iss"], django.issuer());
    assert_eq!(
        django.issuer(),
        django.base_url().as_str().trim_end_matches('/'),
        "the issuer defaults to the base URL"
    );
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(lifetime, expires_in, "expires_in is exp - iat");

    let anonymous = post(&django, "/api/chat/token", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&anonymous), "not_authenticated", "{}", anonymous.body);
    let forged = post(&django, "/api/chat/token", Some("not.a.token"), None).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&forged), "token_not_valid", "{}", forged.body);
    let with_refresh = post(&django, "/api/chat/token", Some(&refresh1), None).await;
    assert_eq!(
        with_refresh.status,
        StatusCode::UNAUTHORIZED,
        "a refresh token is no Bearer token: {}",
        with_refresh.body
    );

    let stats = django.stats().await.expect("stats");
    assert_eq!(
        stats,
        DjangoStats {
            login_attempts: 9,
            login_ok: 3,
            login_bad_request: 2,
            login_invalid_credentials: 3,
            login_inactive: 1,
            refresh_ok: 1,
            refresh_refused: 2,
            blacklist_ok: 1,
            chat_tokens_minted: 1,
            chat_tokens_refused: 3,
            ..DjangoStats::default()
        }
    );
    let log = django.log();
    assert!(
        log.contains("token refresh ok") && log.contains("token refresh refused"),
        "refreshes are logged:\n{log}"
    );
    assert!(
        !log.contains(refresh1.as_str()) && !log.contains(access.as_str()),
        "no token value in the log"
    );
    django.reset().await.expect("reset");
    assert_eq!(django.stats().await.expect("stats"), DjangoStats::default());
}

#[tokio::test]
async fn chatsdk_rotation_reuse_and_logout_and_chatkit_sessions() {
    let django = start(DjangoOptions {
        login_rate: "100/m".to_owned(),
        chatkit_rate: "3/60s".to_owned(),
        ..DjangoOptions::default()
    })
    .await;
    let (access, _) = tokens(&django, "bob").await;

    // ChatSDK: a triple, rotation, and reuse revoking the family.
    let first = post(&django, "/api/chatsdk/token", Some(&access), None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let chat = first.body["accessToken"].as_str().expect("accessToken");
    assert_eq!(verify_chat_token(&django, chat).await["sub"], "bob");
    let expires_at = first.body["expiresAt"].as_u64().expect("expiresAt");
    let now_ms = now_secs() * 1000;
    assert!(
        expires_at > now_ms - 2_000 && expires_at <= now_ms + 11_000,
        "expiresAt is epoch milliseconds, within the access token's life: {expires_at} vs {now_ms}"
    );
    let rt1 = first.body["refreshToken"].as_str().expect("refreshToken");
    let second = post(
        &django,
        "/api/chatsdk/refresh",
        None,
        Some(json!({"refreshToken": rt1})),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let rt2 = second.body["refreshToken"].as_str().expect("refreshToken");
    assert_ne!(rt2, rt1, "the refresh token rotates");
    assert!(second.body["accessToken"].is_string() && second.body["expiresAt"].is_u64());
    let reuse = post(
        &django,
        "/api/chatsdk/refresh",
        None,
        Some(json!({"refreshToken": rt1})),
    )
    .await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "{}", reuse.body);
    assert_eq!(code(&reuse), "token_reused");
    let revoked = post(
        &django,
        "/api/chatsdk/refresh",
        None,
        Some(json!({"refreshToken": rt2})),
    )
    .await;
    assert_eq!(
        revoked.status,
        StatusCode::UNAUTHORIZED,
        "reuse revoked the family's current token too: {}",
        revoked.body
    );
    assert_eq!(code(&revoked), "token_revoked");
    let unknown = post(
        &django,
        "/api/chatsdk/refresh",
        None,
        Some(json!({"refreshToken": "never-issued"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&unknown), "token_not_valid");

    // ChatSDK logout ends a family.
    let other = post(&django, "/api/chatsdk/token", Some(&access), None).await;
    let rt = other.body["refreshToken"].as_str().expect("refreshToken");
    let logout = post(
        &django,
        "/api/chatsdk/logout",
        None,
        Some(json!({"refreshToken": rt})),
    )
    .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.body);
    let after = post(
        &django,
        "/api/chatsdk/refresh",
        None,
        Some(json!({"refreshToken": rt})),
    )
    .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    assert_eq!(code(&after), "token_revoked");

    // ChatKit: a session, a refresh of its client secret, refusals.
    let session = post(&django, "/api/chatkit/session", Some(&access), None).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    let secret = session.body["client_secret"]
        .as_str()
        .expect("client_secret");
    let expires_at = session.body["expires_at"].as_u64().expect("expires_at");
    let now = now_secs();
    assert!(
        expires_at + 2 > now && expires_at <= now + 11,
        "expires_at is epoch seconds: {expires_at} vs {now}"
    );
    assert_eq!(verify_chat_token(&django, secret).await["sub"], "bob");
    let refreshed = post(
        &django,
        "/api/chatkit/refresh",
        None,
        Some(json!({"client_secret": secret})),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let new_secret = refreshed.body["client_secret"]
        .as_str()
        .expect("client_secret");
    assert_ne!(new_secret, secret, "a new client secret");
    assert_eq!(verify_chat_token(&django, new_secret).await["sub"], "bob");
    let bad = post(
        &django,
        "/api/chatkit/refresh",
        None,
        Some(json!({"client_secret": "not.a.secret"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED, "{}", bad.body);
    assert_eq!(bad.body["error"], "invalid_client_secret");
    let anonymous = post(&django, "/api/chatkit/session", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // The per-user rate (3 per 60 s; two used above): the first 429 comes on call 4, or up
    // to 3 calls later when a window boundary passed meanwhile (django-ratelimit's windows are
    // fixed, not sliding). Retry-After is an epoch timestamp in milliseconds.
    let mut limited = None;
    for call in 3u32..=9 {
        let answer = post(
            &django,
            "/api/chatkit/refresh",
            None,
            Some(json!({"client_secret": new_secret})),
        )
        .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((call, answer));
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let (call, answer) = limited.expect("the ChatKit rate limit answers 429");
    assert!(call >= 4, "not before the 4th call: {call}");
    assert_eq!(answer.body, json!({"error": "rate_limited"}));
    let retry_at: u64 = answer
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is a number");
    let now_ms = now_secs() * 1000;
    assert!(
        retry_at > now_ms && retry_at <= now_ms + 61_000,
        "Retry-After is epoch milliseconds within the window: {retry_at} vs {now_ms}"
    );

    let stats = django.stats().await.expect("stats");
    assert_eq!(stats.chatsdk_tokens, 2, "{stats:?}");
    assert_eq!(stats.chatsdk_refresh_ok, 1, "{stats:?}");
    assert_eq!(stats.chatsdk_refresh_refused, 4, "{stats:?}");
    assert_eq!(stats.chatsdk_reuse_events, 1, "{stats:?}");
    assert_eq!(stats.chatsdk_logouts, 1, "{stats:?}");
    assert_eq!(stats.chatkit_sessions, 1, "{stats:?}");
    assert_eq!(stats.chatkit_refresh_ok, u64::from(call) - 2, "{stats:?}");
    assert_eq!(stats.chatkit_refresh_refused, 1, "{stats:?}");
    assert_eq!(stats.chatkit_rate_limited, 1, "{stats:?}");

    // A reset empties the rate-limit cache: bob may ask again at once.
    django.reset().await.expect("reset");
    let again = post(&django, "/api/chatkit/session", Some(&access), None).await;
    assert_eq!(again.status, StatusCode::OK, "after reset: {}", again.body);
}

#[tokio::test]
async fn login_rate_limit_answers_429_with_retry_after_seconds() {
    let django = start(DjangoOptions {
        login_rate: "2/m".to_owned(),
        ..DjangoOptions::default()
    })
    .await;
    // 2 per minute per client IP: the first 429 comes on attempt 3, or up to 2 attempts later
    // when a window boundary passed meanwhile (fixed windows).
    let mut limited = None;
    for attempt in 1u32..=5 {
        let answer = login(&django, "alice", "alice-password").await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((attempt, answer));
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    }
    let (attempt, answer) = limited.expect("the login rate limit answers 429");
    assert!(attempt >= 3, "not before the 3rd attempt: {attempt}");
    assert_eq!(code(&answer), "rate_limited", "{}", answer.body);
    let retry_after: u64 = answer
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .expect("Retry-After is delta-seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After within the minute: {retry_after}"
    );
    let stats = django.stats().await.expect("stats");
    assert_eq!(stats.login_rate_limited, 1, "{stats:?}");
    assert_eq!(stats.login_attempts, u64::from(attempt), "{stats:?}");

    django.reset().await.expect("reset");
    assert_eq!(django.stats().await.expect("stats"), DjangoStats::default());
    let answer = login(&django, "alice", "alice-password").await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "after reset: {}",
        answer.body
    );

    // stop() ends the whole process group: the port closes.
    let addr = django
        .base_url()
        .socket_addrs(|| None)
        .expect("base URL has an address")[0];
    assert!(django.pid().is_some(), "running");
    django.stop().await.expect("stop");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the backend stops listening after stop()"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
