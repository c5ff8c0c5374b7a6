//! Proves the test IdP behaves as everyone else's tests assume: real Node process, real HTTP.

use std::time::{Duration, Instant};

use confab_testkit::{
    headless_login, headless_login_as, headless_login_interactive, headless_logout, jwt_claims,
    jwt_header, CallbackParams, Error, Idp, IdpMode, IdpOptions, IdpStats, TokenSet, CHAT_RESOURCE,
    CLIENT_ID, PRIVATE_USE_REDIRECT_URI,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:4567/callback";

async fn start() -> Idp {
    match Idp::start(IdpOptions::default()).await {
        Ok(idp) => idp,
        Err(e) => panic!("the test IdP must start: {e}"),
    }
}

fn token_error(result: confab_testkit::Result<TokenSet>) -> String {
    match result {
        Err(Error::TokenEndpoint { error, .. }) => error,
        Err(other) => panic!("expected an OAuth error from the token endpoint, got {other}"),
        Ok(tokens) => panic!("expected the token endpoint to refuse, got {tokens:?}"),
    }
}

/// Authorizes `user` with the loopback redirect and returns the callback parameters.
async fn authorize(
    idp: &Idp,
    user: &str,
) -> (confab_testkit::AuthorizationRequest, CallbackParams) {
    let request = idp.authorization_request(LOOPBACK_REDIRECT, Some(user));
    let callback = headless_login(&request.url, LOOPBACK_REDIRECT)
        .await
        .expect("headless login reaches the redirect URI");
    (request, CallbackParams::parse(&callback))
}

#[tokio::test]
async fn discovery_advertises_what_the_client_relies_on() {
    let idp = start().await;
    let doc: Value = reqwest::get(idp.endpoint("/.well-known/openid-configuration"))
        .await
        .expect("discovery request")
        .json()
        .await
        .expect("discovery is JSON");
    assert_eq!(
        doc["issuer"],
        idp.issuer_str(),
        "issuer matches the ready line"
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"]),
        "PKCE S256 is the only method"
    );
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"], true,
        "RFC 9207 iss in the authorization response is advertised"
    );
    assert_eq!(
        doc["response_types_supported"],
        serde_json::json!(["code"]),
        "only the authorization code flow is offered"
    );
    for endpoint in [
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
        "jwks_uri",
        "token_endpoint",
    ] {
        assert!(doc[endpoint].is_string(), "{endpoint} is advertised: {doc}");
    }
    assert!(
        doc["dpop_signing_alg_values_supported"].is_array(),
        "DPoP is enabled"
    );
}

#[tokio::test]
async fn code_with_pkce_yields_jwt_for_chat_audience_refresh_token_and_id_claims() {
    let idp = start().await;
    let (request, callback) = authorize(&idp, "alice").await;
    assert_eq!(
        callback.state.as_deref(),
        Some(request.state.as_str()),
        "state comes back unchanged"
    );
    assert_eq!(
        callback.iss.as_deref(),
        Some(idp.issuer_str().as_str()),
        "the callback carries iss (RFC 9207)"
    );
    let code = callback.code.as_deref().expect("callback carries a code");

    // The token request by hand, as any client would send it.
    let response = reqwest::Client::new()
        .post(idp.endpoint("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", code),
            ("code_verifier", request.verifier()),
            ("redirect_uri", LOOPBACK_REDIRECT),
        ])
        .send()
        .await
        .expect("token request");
    assert!(
        response.status().is_success(),
        "a correct code + verifier is exchanged: {}",
        response.status()
    );
    let tokens: TokenSet = response.json().await.expect("token response parses");
    assert!(
        tokens
            .refresh_token
            .as_deref()
            .is_some_and(|t| !t.is_empty()),
        "a refresh token is issued to confab-desktop"
    );
    assert_eq!(tokens.token_type, "Bearer", "plain bearer without DPoP");
    assert_eq!(tokens.expires_in, Some(300), "default access TTL is 300 s");

    let header = jwt_header(&tokens.access_token).expect("access token is a JWT");
    assert_eq!(header["typ"], "at+jwt", "RFC 9068 access token type");
    assert_eq!(header["alg"], "RS256", "access tokens are RS256-signed");
    let claims = jwt_claims(&tokens.access_token).expect("access token claims decode");
    assert_eq!(claims["aud"], "confab-chat", "aud is the chat service");
    assert_eq!(claims["iss"], idp.issuer_str(), "iss is the issuer");
    assert_eq!(claims["sub"], "alice", "sub is the signed-in user");
    assert_eq!(claims["client_id"], CLIENT_ID, "client_id claim is set");

    // The signature verifies against the published JWKS, with aud and iss checked.
    let jwks: JwkSet = reqwest::get(idp.endpoint("/jwks"))
        .await
        .expect("jwks request")
        .json()
        .await
        .expect("jwks parses");
    let kid = header["kid"].as_str().expect("access token names its key");
    let jwk = jwks.find(kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).expect("JWK converts to a key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["confab-chat"]);
    validation.set_issuer(&[idp.issuer_str()]);
    jsonwebtoken::decode::<Value>(&tokens.access_token, &key, &validation)
        .expect("access token signature, aud and iss verify against the JWKS");

    let id = jwt_claims(tokens.id_token.as_deref().expect("an ID token is issued"))
        .expect("ID token decodes");
    assert_eq!(id["sub"], "alice", "ID token subject");
    assert_eq!(id["name"], "Alice Example", "profile claim in the ID token");
    assert_eq!(
        id["email"], "alice@example.test",
        "email claim in the ID token"
    );
    assert_eq!(id["email_verified"], true, "email_verified claim");
    assert_eq!(id["nonce"], request.nonce, "nonce is echoed");
    assert_eq!(id["aud"], CLIENT_ID, "ID token audience is the client");

    let replay = idp.exchange_code(code, &request).await;
    assert_eq!(
        token_error(replay),
        "invalid_grant",
        "an authorization code works once"
    );

    let log = idp.log();
    assert!(
        log.contains("grant.error"),
        "the replay's precise reason is logged"
    );
    for (what, secret) in [
        ("authorization code", code),
        ("code verifier", request.verifier()),
        ("access token", tokens.access_token.as_str()),
        (
            "refresh token",
            tokens.refresh_token.as_deref().unwrap_or_default(),
        ),
        ("ID token", tokens.id_token.as_deref().unwrap_or_default()),
    ] {
        assert!(
            !log.contains(secret),
            "the IdP log never contains the {what}"
        );
    }
}

#[tokio::test]
async fn pkce_is_enforced() {
    let idp = start().await;
    let (_request, callback) = authorize(&idp, "alice").await;
    let code = callback.code.as_deref().expect("callback carries a code");
    let other = idp.authorization_request(LOOPBACK_REDIRECT, Some("alice"));
    assert_eq!(
        token_error(idp.exchange_code(code, &other).await),
        "invalid_grant",
        "a code is refused with the wrong code_verifier"
    );

    let mut no_pkce = idp.endpoint("/auth");
    no_pkce
        .query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", LOOPBACK_REDIRECT)
        .append_pair("state", "s");
    let callback = headless_login(&no_pkce, LOOPBACK_REDIRECT)
        .await
        .expect("the IdP answers with an error redirect");
    let params = CallbackParams::parse(&callback);
    assert_eq!(
        params.error.as_deref(),
        Some("invalid_request"),
        "an authorization request without code_challenge is refused"
    );
    assert!(params.code.is_none(), "no code without PKCE");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_grant() {
    let idp = start().await;
    let first = idp.login("alice").await.expect("alice signs in");
    let rt1 = first.refresh_token.clone().expect("refresh token issued");

    let second = idp.refresh(&rt1).await.expect("refresh succeeds");
    let rt2 = second
        .refresh_token
        .clone()
        .expect("refresh returns a new refresh token");
    assert_ne!(rt1, rt2, "every refresh rotates the refresh token");
    assert_ne!(
        first.access_token, second.access_token,
        "refresh issues a new access token"
    );
    let claims = jwt_claims(&second.access_token).expect("refreshed token decodes");
    assert_eq!(
        claims["aud"], "confab-chat",
        "refreshed token keeps the chat audience"
    );
    assert_eq!(claims["sub"], "alice", "refreshed token keeps the subject");

    assert_eq!(
        token_error(idp.refresh(&rt1).await),
        "invalid_grant",
        "a rotated refresh token is rejected"
    );
    assert_eq!(
        token_error(idp.refresh(&rt2).await),
        "invalid_grant",
        "reusing a rotated refresh token revokes the whole grant, newest token included"
    );
    assert!(
        idp.log().contains("refresh token already used"),
        "the precise reason is in the IdP log"
    );
}

#[tokio::test]
async fn counters_count_token_requests_by_grant_type() {
    let idp = start().await;
    let tokens = idp.login("alice").await.expect("alice signs in");
    let rt = tokens.refresh_token.clone().expect("refresh token issued");
    let refreshed = idp.refresh(&rt).await.expect("refresh succeeds");
    let _ = token_error(idp.refresh("not-a-refresh-token").await);

    let revoke = reqwest::Client::new()
        .post(idp.endpoint("/token/revocation"))
        .form(&[
            ("client_id", CLIENT_ID),
            (
                "token",
                refreshed.refresh_token.as_deref().unwrap_or_default(),
            ),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .expect("revocation request");
    assert!(revoke.status().is_success(), "revocation is accepted");

    let stats = idp.stats().await.expect("stats");
    assert_eq!(
        stats,
        IdpStats {
            token_requests: 3,
            authorization_code_requests: 1,
            refresh_requests: 2,
            revocations: 1,
            authorization_requests: 1,
        },
        "every token request is counted by grant type, failed ones too"
    );

    idp.reset_stats().await.expect("reset");
    assert_eq!(
        idp.stats().await.expect("stats"),
        IdpStats::default(),
        "reset sets all counters to zero"
    );
    assert_eq!(
        token_error(
            idp.refresh(refreshed.refresh_token.as_deref().unwrap_or_default())
                .await
        ),
        "invalid_grant",
        "a revoked refresh token no longer works"
    );
}

#[tokio::test]
async fn revoke_grants_ends_one_users_refresh_tokens_only() {
    let idp = start().await;
    let alice = idp.login("alice").await.expect("alice signs in");
    let bob = idp.login("bob").await.expect("bob signs in");

    let revoked = idp.revoke_grants("alice").await.expect("admin revoke");
    assert!(revoked >= 1, "alice's grant is revoked (got {revoked})");
    assert_eq!(
        token_error(
            idp.refresh(alice.refresh_token.as_deref().unwrap_or_default())
                .await
        ),
        "invalid_grant",
        "after revoke-grants the user's refresh fails with invalid_grant"
    );
    let bob_refreshed = idp
        .refresh(bob.refresh_token.as_deref().unwrap_or_default())
        .await;
    assert!(
        bob_refreshed.is_ok(),
        "other users keep their grants: {bob_refreshed:?}"
    );
}

#[tokio::test]
async fn login_hint_selects_the_user_and_unknown_users_are_denied() {
    let idp = start().await;
    let bob = idp.login("bob").await.expect("bob signs in");
    let claims = jwt_claims(&bob.access_token).expect("token decodes");
    assert_eq!(claims["sub"], "bob", "login_hint=bob yields bob's sub");
    let id = jwt_claims(bob.id_token.as_deref().unwrap_or_default()).expect("ID token decodes");
    assert_eq!(id["name"], "Bob Example", "bob's name");
    assert_eq!(id["email"], "bob@example.test", "bob's email");

    let (_request, callback) = authorize(&idp, "mallory").await;
    assert_eq!(
        callback.error.as_deref(),
        Some("access_denied"),
        "an unknown user is denied"
    );
    assert!(callback.code.is_none(), "no code for an unknown user");
}

#[tokio::test]
async fn app_built_urls_and_private_use_redirect_work() {
    let idp = start().await;
    // An app-built URL has no login_hint; headless_login_as adds it.
    let request = idp.authorization_request(PRIVATE_USE_REDIRECT_URI, None);
    let callback = headless_login_as(&request.url, "bob", PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("login with the private-use redirect");
    assert!(
        callback
            .as_str()
            .starts_with("dev.confab.chat:/oauth/callback?"),
        "the redirect to the private-use scheme is returned, not followed"
    );
    let params = CallbackParams::parse(&callback);
    let tokens = idp
        .exchange_code(params.code.as_deref().expect("code"), &request)
        .await
        .expect("code exchange");
    assert_eq!(
        jwt_claims(&tokens.access_token).expect("decodes")["sub"],
        "bob",
        "headless_login_as picks the user"
    );

    // Any loopback port is accepted (RFC 8252 §7.3).
    let request = idp.authorization_request("http://127.0.0.1:61999/callback", None);
    let callback = headless_login(&request.url, "http://127.0.0.1:61999/callback")
        .await
        .expect("login with another loopback port");
    assert!(
        CallbackParams::parse(&callback).code.is_some(),
        "a loopback redirect on any port gets a code"
    );

    let wrong = headless_login(&request.url, "http://127.0.0.1:1/elsewhere").await;
    assert!(
        matches!(wrong, Err(Error::Login { .. })),
        "a redirect that does not match the expected prefix is an error"
    );
}

#[tokio::test]
async fn resource_indicator_must_be_the_chat_uri() {
    let idp = start().await;
    let mut request = idp.authorization_request(LOOPBACK_REDIRECT, Some("alice"));
    request
        .url
        .query_pairs_mut()
        .append_pair("resource", CHAT_RESOURCE)
        .append_pair("prompt", "consent");
    let callback = headless_login(&request.url, LOOPBACK_REDIRECT)
        .await
        .expect("login");
    let params = CallbackParams::parse(&callback);
    let tokens = idp
        .exchange_code(params.code.as_deref().expect("code"), &request)
        .await
        .expect("exchange");
    assert_eq!(
        jwt_claims(&tokens.access_token).expect("decodes")["aud"],
        "confab-chat",
        "resource=urn:confab:chat yields aud=confab-chat"
    );

    let mut bad = idp.authorization_request(LOOPBACK_REDIRECT, Some("alice"));
    bad.url
        .query_pairs_mut()
        .append_pair("resource", "confab-chat");
    let callback = headless_login(&bad.url, LOOPBACK_REDIRECT)
        .await
        .expect("redirect");
    assert_eq!(
        CallbackParams::parse(&callback).error.as_deref(),
        Some("invalid_target"),
        "a non-URI resource indicator is refused (RFC 8707)"
    );
}

#[tokio::test]
async fn options_set_lifetimes_and_audience() {
    let idp = Idp::start(IdpOptions {
        access_ttl: Duration::from_secs(42),
        refresh_ttl: Duration::from_secs(120),
        audience: "other-chat".into(),
        mode: IdpMode::Auto,
        ..IdpOptions::default()
    })
    .await
    .expect("IdP starts with options");
    let tokens = idp.login("alice").await.expect("login");
    assert_eq!(
        tokens.expires_in,
        Some(42),
        "IDP_ACCESS_TTL sets expires_in"
    );
    let claims = jwt_claims(&tokens.access_token).expect("decodes");
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        42,
        "IDP_ACCESS_TTL sets the JWT lifetime"
    );
    assert_eq!(claims["aud"], "other-chat", "IDP_CHAT_AUDIENCE sets aud");
}

#[tokio::test]
async fn interactive_mode_takes_the_login_and_consent_forms() {
    let idp = Idp::start(IdpOptions {
        mode: IdpMode::Interactive,
        ..IdpOptions::default()
    })
    .await
    .expect("interactive IdP starts");

    let request = idp.authorization_request(LOOPBACK_REDIRECT, None);
    let auto = headless_login(&request.url, LOOPBACK_REDIRECT).await;
    assert!(
        matches!(auto, Err(Error::Login { .. })),
        "an interactive IdP shows forms instead of auto-completing"
    );

    let callback = headless_login_interactive(&request.url, "bob", "bob-password")
        .await
        .expect("bob logs in through the forms");
    let params = CallbackParams::parse(&callback);
    let tokens = idp
        .exchange_code(params.code.as_deref().expect("code"), &request)
        .await
        .expect("exchange");
    assert_eq!(
        jwt_claims(&tokens.access_token).expect("decodes")["sub"],
        "bob",
        "the form login signs in the typed user"
    );

    let request = idp.authorization_request(LOOPBACK_REDIRECT, None);
    let wrong = headless_login_interactive(&request.url, "bob", "wrong").await;
    assert!(
        matches!(&wrong, Err(Error::Login { reason, .. }) if reason.contains("rejected")),
        "a wrong password is rejected: {wrong:?}"
    );
    assert!(
        matches!(idp.stats().await, Err(Error::Admin { status: 404, .. })),
        "admin routes do not exist in interactive mode"
    );
}

#[tokio::test]
async fn dropping_the_idp_stops_the_process() {
    let idp = start().await;
    let addr = idp
        .issuer()
        .socket_addrs(|| None)
        .expect("issuer has an address")[0];
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("IdP accepts connections while running");
    drop(idp);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the IdP process stops listening after drop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rp_initiated_logout_redirects_to_registered_uris() {
    let idp = start().await;
    let tokens = idp.login("alice").await.expect("login");
    let id_token = tokens.id_token.as_deref().expect("ID token");
    for post_logout in [
        "dev.confab.chat:/oauth/logout",
        "http://127.0.0.1:5555/logout",
    ] {
        let mut url = idp.endpoint("/session/end");
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token)
            .append_pair("post_logout_redirect_uri", post_logout)
            .append_pair("state", "bye");
        let back = headless_logout(&url)
            .await
            .expect("logout completes")
            .expect("logout redirects back to the app");
        assert!(
            back.as_str().starts_with(post_logout) && back.as_str().contains("state=bye"),
            "end_session returns to the registered post_logout_redirect_uri with state: {back}"
        );
    }
    let mut url = idp.endpoint("/session/end");
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    assert!(
        headless_logout(&url).await.is_err(),
        "an unregistered post_logout_redirect_uri is refused"
    );
}
