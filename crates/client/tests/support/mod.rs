//! Shared helpers for the tests against the real test IdP.
#![allow(dead_code)]

pub mod app;
pub mod chat;
pub mod proxy;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confab_auth::{AuthClient, AuthConfig, RedirectTarget, SignedIn};
use confab_client::adapters::handoff;
use confab_client::adapters::AuthEndpoint;
use confab_session::{
    RefreshTokenStore, SessionConfig, SessionEvent, TokenManager, TokenManagerBuilder,
};
use confab_testkit::{
    headless_login, jwt_claims, Idp, IdpOptions, CHAT_RESOURCE, CLIENT_ID, PRIVATE_USE_REDIRECT_URI,
};

pub async fn start_idp(access_ttl: Duration) -> Idp {
    Idp::start(IdpOptions {
        access_ttl,
        ..IdpOptions::default()
    })
    .await
    .expect("the test IdP must start (node 20+ and `npm ci` in tests/idp; `cargo xtask test` sets both up)")
}

pub async fn auth_client(idp: &Idp) -> Arc<AuthClient> {
    auth_client_as(idp, "alice").await
}

/// A discovered client whose logins sign in as `user` (auto-mode IdP).
pub async fn auth_client_as(idp: &Idp, user: &str) -> Arc<AuthClient> {
    let mut config = AuthConfig::new(idp.issuer(), CLIENT_ID);
    config.resource = Some(CHAT_RESOURCE.to_owned());
    config.extra_auth_params = vec![("login_hint".to_owned(), user.to_owned())];
    config.http_timeout = Duration::from_secs(5);
    Arc::new(
        AuthClient::discover(config)
            .await
            .expect("discovery against the test IdP succeeds"),
    )
}

/// A complete browser login as alice, done headlessly.
pub async fn login(client: &AuthClient) -> SignedIn {
    let redirect =
        RedirectTarget::private_use(PRIVATE_USE_REDIRECT_URI).expect("registered redirect");
    let start = client.begin(redirect).expect("begin succeeds");
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login reaches the redirect URI");
    client
        .complete(callback.as_str())
        .await
        .expect("code exchange succeeds")
}

/// Logs in and hands the tokens to a new manager built by `builder`.
pub async fn signed_in_manager(
    client: &Arc<AuthClient>,
    store: Arc<dyn RefreshTokenStore>,
    configure: impl FnOnce(TokenManagerBuilder) -> TokenManagerBuilder,
) -> TokenManager {
    let signed_in = login(client).await;
    let (user, tokens) = handoff(&signed_in);
    let endpoint = Arc::new(AuthEndpoint::new(client.clone(), None));
    configure(TokenManager::builder(endpoint, store).config(test_config()))
        .sign_in(user, tokens)
        .await
        .expect("sign-in handoff succeeds")
}

pub fn test_config() -> SessionConfig {
    SessionConfig {
        recheck_interval: Duration::from_millis(500),
        wait_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        ..SessionConfig::default()
    }
}

/// `exp` of a JWT access token, as a time.
pub fn jwt_exp(token: &str) -> SystemTime {
    let claims = jwt_claims(token).expect("the access token is a JWT");
    let exp = claims["exp"].as_u64().expect("the access token has exp");
    UNIX_EPOCH + Duration::from_secs(exp)
}

/// Polls `cond` until it holds or `deadline` passes.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the next event matching `pred`.
pub async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<SessionEvent>,
    deadline: Duration,
    pred: impl Fn(&SessionEvent) -> bool,
) -> SessionEvent {
    tokio::time::timeout(deadline, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    })
    .await
    .expect("the expected session event arrives in time")
}
