//! confab-auth against the real test IdP (`tests/idp`, oidc-provider) through confab-testkit.
//!
//! Every rejection test also reads the IdP's own token-request counter: "refused before any
//! token request" is checked at the provider, not inferred from our code.

use std::sync::Arc;
use std::time::Duration;

use confab_auth::{
    AuthClient, AuthConfig, ErrorCode, LoopbackListener, ManualMonotonicClock, RedirectTarget,
    SignedIn,
};
use confab_testkit::{
    headless_login, headless_login_as, headless_logout, jwt_claims, pkce_challenge, CallbackParams,
    Idp, IdpOptions, CHAT_RESOURCE, CLIENT_ID, DEFAULT_AUDIENCE, PRIVATE_USE_REDIRECT_URI,
};
use url::Url;

async fn start_idp() -> Idp {
    Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP must start (node 20+ and `npm ci` in tests/idp; `cargo xtask test` sets both up)")
}

fn config(idp: &Idp) -> AuthConfig {
    let mut config = AuthConfig::new(idp.issuer(), CLIENT_ID);
    config.resource = Some(CHAT_RESOURCE.to_owned());
    config.extra_auth_params = vec![("login_hint".to_owned(), "alice".to_owned())];
    config
}

async fn client(idp: &Idp) -> AuthClient {
    AuthClient::discover(config(idp))
        .await
        .expect("discovery against the test IdP succeeds")
}

fn private_use() -> RedirectTarget {
    RedirectTarget::private_use(PRIVATE_USE_REDIRECT_URI).expect("registered redirect is valid")
}

/// Starts a login and completes the browser part headlessly; returns the callback URL.
async fn browser_part(client: &AuthClient) -> String {
    let start = client.begin(private_use()).expect("begin succeeds");
    headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login reaches the redirect URI")
        .to_string()
}

async fn token_requests(idp: &Idp) -> u64 {
    idp.stats().await.expect("IdP stats").token_requests
}

/// Replace (or add, or with `None` remove) one query parameter of a callback URL.
fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut url = Url::parse(url).expect("callback is a URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = url.query_pairs_mut();
        q.clear().extend_pairs(pairs);
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    url.to_string()
}

fn code_of<T: std::fmt::Debug>(r: confab_auth::Result<T>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

fn assert_alice(signed: &SignedIn, idp: &Idp) {
    assert_eq!(
        signed.user.name.as_deref(),
        Some("Alice Example"),
        "the user's name comes from the validated ID token"
    );
    assert_eq!(
        signed.user.email.as_deref(),
        Some("alice@example.test"),
        "the user's email comes from the validated ID token"
    );
    assert_eq!(
        signed.user.issuer,
        idp.issuer_str(),
        "the user is attributed to the discovered issuer"
    );
    assert!(
        !signed.user.subject.is_empty(),
        "the user has a subject identifier"
    );
}

#[tokio::test]
async fn happy_path_private_use_scheme() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let info = client.metadata();
    assert!(
        info.iss_parameter_supported,
        "oidc-provider advertises RFC 9207 iss, so the iss check is active"
    );
    assert!(
        info.revocation_endpoint.is_some() && info.end_session_endpoint.is_some(),
        "revocation and end-session endpoints are read from discovery"
    );

    let start = client.begin(private_use()).expect("begin succeeds");
    let q: Vec<(String, String)> = start
        .authorize_url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(
        get("code_challenge_method"),
        Some("S256"),
        "PKCE is S256 only"
    );
    assert!(
        get("state").is_some_and(|s| s.len() >= 16),
        "a random state is sent"
    );
    assert!(
        get("nonce").is_some_and(|s| s.len() >= 16),
        "a random nonce is sent"
    );
    assert_eq!(
        get("resource"),
        Some(CHAT_RESOURCE),
        "the chat resource is requested"
    );
    let pending = client.pending().expect("a login is pending after begin");
    assert_eq!(
        pending.login_id, start.login_id,
        "pending() describes the started login"
    );

    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login reaches the redirect URI");
    let signed = client
        .complete(callback.as_str())
        .await
        .expect("a genuine callback completes the login");
    assert_alice(&signed, &idp);
    assert!(
        client.pending().is_none(),
        "a completed login is no longer pending"
    );
    assert!(
        signed.tokens.refresh_token.is_some(),
        "offline_access yields a refresh token"
    );
    assert!(
        signed.tokens.id_token.is_some(),
        "the raw ID token is kept for logout"
    );
    let access = jwt_claims(signed.tokens.access_token.expose_secret())
        .expect("the access token is a JWT for the chat service");
    assert_eq!(
        access["aud"].as_str(),
        Some(DEFAULT_AUDIENCE),
        "the access token's audience is the chat service (RFC 8707 resource)"
    );
    let debug = format!("{signed:?}");
    assert!(
        !debug.contains(signed.tokens.access_token.expose_secret()),
        "Debug output of a signed-in result never shows the access token"
    );
    assert_eq!(
        token_requests(&idp).await,
        1,
        "a login costs exactly one token request"
    );
}

#[tokio::test]
async fn happy_path_loopback_listener_answers_once_then_closes() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let listener = LoopbackListener::bind().await.expect("loopback binds");
    let port = listener.port();
    let redirect = listener.redirect_url();
    assert_eq!(
        redirect.as_str(),
        format!("http://127.0.0.1:{port}/callback"),
        "the loopback redirect is 127.0.0.1 on the bound port"
    );
    let start = client
        .begin(listener.redirect_target())
        .expect("begin with a loopback redirect");
    let waiting = tokio::spawn(listener.wait());

    let callback = headless_login(&start.authorize_url, redirect.as_str())
        .await
        .expect("headless login reaches the loopback redirect");
    // Deliver it like the browser would.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let favicon = http
        .get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .send()
        .await
        .expect("the listener answers other paths");
    assert_eq!(
        favicon.status().as_u16(),
        404,
        "other paths get 404 and do not consume the listener"
    );
    let page = http
        .get(callback.clone())
        .send()
        .await
        .expect("the listener answers the callback");
    assert_eq!(page.status().as_u16(), 200, "the callback gets a page");
    let body = page.text().await.expect("page body");
    assert!(
        body.contains("You can close this tab and return to Confab"),
        "the page tells the user to go back to the app"
    );
    let code = CallbackParams::parse(&callback)
        .code
        .clone()
        .expect("callback has a code");
    assert!(
        !body.contains(&code),
        "the page never echoes the authorization code"
    );

    let received = waiting
        .await
        .expect("listener task")
        .expect("the listener returns the callback URL");
    assert_eq!(
        received, callback,
        "the listener hands over the exact callback URL"
    );
    let again = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        again.is_err(),
        "after one callback the listener is closed (connections are refused)"
    );

    let signed = client
        .complete(received.as_str())
        .await
        .expect("the loopback callback completes the login");
    assert_alice(&signed, &idp);
}

#[tokio::test]
async fn unknown_state_is_refused_and_keeps_the_pending_login() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    let forged = with_param(&callback, "state", Some("attacker-chosen-state-value"));
    let err = client.complete(&forged).await.expect_err("unknown state");
    assert_eq!(
        err.code(),
        ErrorCode::StateMismatch,
        "a callback with an unknown state is refused (CSRF)"
    );
    let params = CallbackParams::parse(&Url::parse(&forged).expect("url"));
    let code = params.code.clone().expect("code");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(
            !shown.contains(&code) && !shown.contains("attacker-chosen-state-value"),
            "error texts never echo the code or the state: {shown}"
        );
    }
    assert_eq!(
        token_requests(&idp).await,
        0,
        "an unknown state causes no token request"
    );
    assert!(
        client.pending().is_some(),
        "a foreign callback does not cancel the user's pending login"
    );
    client
        .complete(&callback)
        .await
        .expect("the genuine callback still completes afterwards");
}

#[tokio::test]
async fn replayed_callback_is_refused_without_token_request() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    client
        .complete(&callback)
        .await
        .expect("first callback completes");
    assert_eq!(
        token_requests(&idp).await,
        1,
        "the first callback exchanges the code once"
    );
    assert_eq!(
        code_of(client.complete(&callback).await),
        ErrorCode::CallbackReplayed,
        "a second callback with the same URL is refused as a replay"
    );
    // Also while a newer login is pending: the replay must not touch it.
    let _newer = client.begin(private_use()).expect("begin");
    assert_eq!(
        code_of(client.complete(&callback).await),
        ErrorCode::CallbackReplayed,
        "a replay is recognised even while another login is pending"
    );
    assert!(
        client.pending().is_some(),
        "a replay does not consume the newer login"
    );
    assert_eq!(
        token_requests(&idp).await,
        1,
        "replayed callbacks cause no extra token request"
    );
}

#[tokio::test]
async fn access_denied_from_the_idp_is_reported() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let start = client.begin(private_use()).expect("begin");
    let callback = headless_login_as(&start.authorize_url, "mallory", PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back with an error for an unknown user");
    let err = client
        .complete(callback.as_str())
        .await
        .expect_err("an error callback never signs in");
    assert_eq!(
        err.code(),
        ErrorCode::AccessDenied,
        "an unknown user is reported as access denied"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "an error callback causes no token request"
    );
}

#[tokio::test]
async fn error_callbacks_carry_a_sanitized_description() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    let denied = with_param(
        &with_param(&callback, "code", None),
        "error",
        Some("access_denied"),
    );
    let denied = with_param(
        &denied,
        "error_description",
        Some("The user said no\n\u{202e}<script>"),
    );
    let err = client.complete(&denied).await.expect_err("denied");
    assert_eq!(
        err.code(),
        ErrorCode::AccessDenied,
        "error=access_denied maps to AccessDenied"
    );
    let text = err.to_string();
    assert!(
        text.contains("The user said no"),
        "the provider's description is shown: {text}"
    );
    assert!(
        !text.contains('\n') && !text.contains('\u{202e}'),
        "control and bidi characters are stripped from the description"
    );
    assert!(
        client.pending().is_none(),
        "an error callback for the pending login ends it"
    );

    let callback = browser_part(&client).await;
    let other = with_param(
        &with_param(&callback, "code", None),
        "error",
        Some("server_error"),
    );
    assert_eq!(
        code_of(client.complete(&other).await),
        ErrorCode::ProviderError,
        "other error codes are reported as provider errors"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "error callbacks cause no token request"
    );
}

#[tokio::test]
async fn missing_code_is_refused() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    assert_eq!(
        code_of(client.complete(&with_param(&callback, "code", None)).await),
        ErrorCode::MissingCode,
        "a callback without code and without error is refused"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "a missing code causes no token request"
    );
}

#[tokio::test]
async fn issuer_mismatch_and_missing_iss_are_refused() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    assert_eq!(
        code_of(
            client
                .complete(&with_param(&callback, "iss", Some("http://127.0.0.1:1")))
                .await
        ),
        ErrorCode::IssuerMismatch,
        "RFC 9207: a callback naming another issuer is refused (mix-up attack)"
    );
    let callback = browser_part(&client).await;
    assert_eq!(
        code_of(client.complete(&with_param(&callback, "iss", None)).await),
        ErrorCode::IssuerMismatch,
        "RFC 9207: when the provider advertises iss, a callback without it is refused"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "an iss mismatch causes no token request"
    );
}

#[tokio::test]
async fn callback_after_the_deadline_is_refused() {
    let idp = start_idp().await;
    let mut cfg = config(&idp);
    cfg.login_timeout = Duration::ZERO;
    let zero = AuthClient::discover(cfg).await.expect("discovery");
    let callback = browser_part(&zero).await;
    assert_eq!(
        code_of(zero.complete(&callback).await),
        ErrorCode::LoginExpired,
        "with a zero timeout every callback is late"
    );

    // With an injected clock: one second before the deadline works, at the deadline it doesn't.
    let clock = Arc::new(ManualMonotonicClock::new());
    let mut cfg = config(&idp);
    cfg.login_timeout = Duration::from_secs(600);
    let client = AuthClient::discover(cfg)
        .await
        .expect("discovery")
        .with_clock(clock.clone());
    let callback = browser_part(&client).await;
    clock.advance(Duration::from_secs(600));
    assert_eq!(
        code_of(client.complete(&callback).await),
        ErrorCode::LoginExpired,
        "a callback at the deadline is refused"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "an expired login causes no token request"
    );

    let callback = browser_part(&client).await;
    clock.advance(Duration::from_secs(599));
    client
        .complete(&callback)
        .await
        .expect("a callback just before the deadline is accepted");
}

#[tokio::test]
async fn cancel_and_restart() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let callback = browser_part(&client).await;
    assert!(client.cancel(), "cancel reports a pending login");
    assert!(!client.cancel(), "a second cancel has nothing to cancel");
    assert_eq!(
        code_of(client.complete(&callback).await),
        ErrorCode::Cancelled,
        "the callback of a cancelled login is refused"
    );

    let first = browser_part(&client).await;
    let second = browser_part(&client).await;
    assert_eq!(
        code_of(client.complete(&first).await),
        ErrorCode::StateMismatch,
        "begin replaces the previous login: its callback no longer matches"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "refused callbacks cause no token request"
    );
    client
        .complete(&second)
        .await
        .expect("the newest login completes");
}

#[tokio::test]
async fn wrong_pkce_verifier_is_refused_by_the_idp() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let start = client.begin(private_use()).expect("begin");
    // An attacker-injected code: bound to a challenge whose verifier our client does not hold.
    let mut tampered = start.authorize_url.clone();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code_challenge" {
                pkce_challenge("a-verifier-the-attacker-chose-0123456789-abcdefghijk")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = headless_login(&tampered, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login");
    assert_eq!(
        code_of(client.complete(callback.as_str()).await),
        ErrorCode::InvalidGrant,
        "PKCE: a code bound to another challenge is refused by the IdP as invalid_grant"
    );
    let stats = idp.stats().await.expect("stats");
    assert_eq!(
        stats.authorization_code_requests, 1,
        "the refusal came from the IdP's token endpoint"
    );
}

#[tokio::test]
async fn a_code_can_be_exchanged_only_once() {
    let idp = start_idp().await;
    // Hand-crafted request (the test holds the verifier) so the only variable is the replay.
    let request = idp.authorization_request(PRIVATE_USE_REDIRECT_URI, Some("alice"));
    let callback = headless_login(&request.url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login");
    let code = CallbackParams::parse(&callback).code.clone().expect("code");
    idp.exchange_code(&code, &request)
        .await
        .expect("the first exchange succeeds");
    let replay = idp.exchange_code(&code, &request).await;
    assert!(
        replay.is_err(),
        "exchanging the same authorization code twice is refused by the IdP"
    );
}

#[tokio::test]
async fn mismatched_redirect_uri_is_refused() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let listener = LoopbackListener::bind().await.expect("bind");
    let ours = listener.redirect_url();
    let start = client.begin(listener.redirect_target()).expect("begin");
    // The code gets issued for another registered redirect URI than the login's.
    let mut tampered = start.authorize_url.clone();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" {
                PRIVATE_USE_REDIRECT_URI.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = headless_login(&tampered, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login");
    assert_eq!(
        code_of(client.complete(callback.as_str()).await),
        ErrorCode::RedirectMismatch,
        "a callback addressed to another redirect URI than the login's is refused"
    );
    assert_eq!(
        token_requests(&idp).await,
        0,
        "a misaddressed callback causes no token request"
    );

    // Re-address the same query to our loopback URI: the IdP must refuse the exchange.
    let mut readdressed = ours.clone();
    readdressed.set_query(callback.query());
    assert_eq!(
        code_of(client.complete(readdressed.as_str()).await),
        ErrorCode::InvalidGrant,
        "a code issued for one redirect URI cannot be redeemed with another"
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_of_the_old_token_fails() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let signed = client
        .complete(&browser_part(&client).await)
        .await
        .expect("login");
    let old = signed.tokens.refresh_token.expect("refresh token");
    let renewed = client.refresh(&old).await.expect("refresh succeeds");
    let new = renewed
        .refresh_token
        .expect("the IdP rotates refresh tokens");
    assert_ne!(
        new.expose_secret(),
        old.expose_secret(),
        "refresh returns a new refresh token (rotation)"
    );
    assert_ne!(
        renewed.access_token.expose_secret(),
        signed.tokens.access_token.expose_secret(),
        "refresh returns a new access token"
    );
    assert_eq!(
        code_of(client.refresh(&old).await),
        ErrorCode::InvalidGrant,
        "a rotated refresh token cannot be used again"
    );
}

#[tokio::test]
async fn revoke_makes_the_refresh_token_unusable() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let signed = client
        .complete(&browser_part(&client).await)
        .await
        .expect("login");
    let refresh = signed.tokens.refresh_token.expect("refresh token");
    client.revoke(&refresh).await.expect("revocation succeeds");
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        1,
        "revoke calls the IdP's revocation endpoint once"
    );
    assert_eq!(
        code_of(client.refresh(&refresh).await),
        ErrorCode::InvalidGrant,
        "a revoked refresh token cannot be used"
    );
}

#[tokio::test]
async fn end_session_url_logs_out_at_the_idp() {
    let idp = start_idp().await;
    let client = client(&idp).await;
    let signed = client
        .complete(&browser_part(&client).await)
        .await
        .expect("login");
    let id_token = signed.tokens.id_token.expect("id token");
    let post = Url::parse("dev.confab.chat:/oauth/logout").expect("url");
    let url = client
        .end_session_url(&id_token, Some(post.clone()))
        .expect("the IdP offers RP-initiated logout");
    let has = |k: &str| url.query_pairs().any(|(n, _)| n == k);
    assert!(
        has("id_token_hint") && has("client_id") && has("post_logout_redirect_uri"),
        "the logout URL carries id_token_hint, client_id and the post-logout redirect"
    );
    let back = headless_logout(&url)
        .await
        .expect("the IdP accepts the logout request");
    assert!(
        back.is_some_and(|b| b.as_str().starts_with(post.as_str())),
        "after logout the IdP sends the browser back to the app"
    );
}
