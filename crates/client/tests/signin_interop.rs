//! The sign-in flow against the real test IdP configured like other providers (`tests/idp`'s
//! interoperability switches), with a real Stronghold vault.

mod support;

use confab_client::{Code, UiEvent};
use confab_testkit::{headless_login, Idp, IdpOptions, PRIVATE_USE_REDIRECT_URI};

use support::app::{idp_accepts, start_app_with, stored_refresh_token, App};

async fn start_idp(name: &str, value: &str) -> Idp {
    Idp::start(IdpOptions::default().with_env(name, value))
        .await
        .expect("the test IdP must start (node 20+ and `npm ci` in tests/idp; `cargo xtask test` sets both up)")
}

/// Starts a browser sign-in and plays the browser; returns once the redirect was delivered.
async fn sign_in_once(app: &mut App) {
    let before = app.opened_count();
    app.flow.sign_in().await.expect("sign-in starts");
    let url = app.opened_url(before + 1).await;
    let callback = headless_login(&url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back");
    app.flow.complete(callback.as_str()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_chat_resource_is_told_as_such_and_an_empty_one_is_not_sent() {
    let idp = start_idp("IDP_RESOURCE_HTTPS_ONLY", "1").await;
    let dir = tempfile::tempdir().expect("temp dir");

    // The default chat resource (urn:confab:chat) is refused by this provider.
    let mut app = start_app_with(
        &idp,
        dir.path(),
        confab_client::RedirectPlan::Scheme,
        |_| {},
    );
    app.flow.open_vault().await;
    app.unlock().await;
    sign_in_once(&mut app).await;
    let failed = app
        .wait_for("the sign-in to fail", |e| {
            matches!(e, UiEvent::SignInFailed { .. })
        })
        .await;
    let UiEvent::SignInFailed { code, message } = failed else {
        unreachable!("waited for a failure")
    };
    assert_eq!(
        code,
        Code::ResourceRefused,
        "the UI gets its own code: {message}"
    );
    assert_eq!(
        serde_json::to_value(code).expect("code serializes"),
        "resource-refused"
    );
    assert!(
        message.contains("invalid_target") && message.contains("chat_resource"),
        "the message names the refusal and the setting to check: {message}"
    );
    assert_eq!(
        idp.stats().await.expect("stats").token_requests,
        0,
        "no token request"
    );
    drop(app);

    // `chat_resource = ""`: no resource is sent, and the same provider signs in.
    let mut app = start_app_with(&idp, dir.path(), confab_client::RedirectPlan::Scheme, |c| {
        c.chat_resource = String::new()
    });
    app.flow.open_vault().await;
    app.unlock().await;
    let before = app.opened_count();
    app.flow.sign_in().await.expect("sign-in starts");
    let url = app.opened_url(before + 1).await;
    assert!(
        !url.query_pairs().any(|(k, _)| k == "resource"),
        "no resource parameter in {url}"
    );
    let callback = headless_login(&url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back");
    app.flow.complete(callback.as_str()).await;
    app.wait_for("signed-in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_revokes_at_an_endpoint_published_only_in_rfc8414_metadata() {
    let idp = start_idp("IDP_REVOCATION_IN", "rfc8414").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app_with(
        &idp,
        dir.path(),
        confab_client::RedirectPlan::Scheme,
        |_| {},
    );
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_via_browser().await;
    let stored = stored_refresh_token(&app, &idp, "alice")
        .await
        .expect("refresh token stored");
    app.flow.sign_out().await.expect("sign-out succeeds");
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        1,
        "the token went to the revocation endpoint found in the RFC 8414 metadata"
    );
    assert!(
        !idp_accepts(&idp, &stored).await,
        "the IdP refuses the refresh token after sign-out"
    );
    assert_eq!(app.flow.pending_revocations().await, Some(0));
}
