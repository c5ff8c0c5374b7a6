//! E2E: a pending sign-in has a deadline. When it passes the window says so, and a redirect
//! arriving afterwards is rejected without a token request.

use confab_e2e::{AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{headless_login, Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_expires_at_its_deadline() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let options = AppOptions {
        extra_env: vec![("CONFAB_LOGIN_TIMEOUT_SECS".into(), "3".into())],
        ..AppOptions::default()
    };
    let app = AppUnderTest::launch(&idp.issuer(), options)
        .await
        .expect("the app starts under WebDriver");

    app.click("#sign-in").await.expect("Sign in is clickable");
    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("clicking Sign in opens the authorization URL");
    let message = app
        .wait_for_text("#error", "took too long")
        .await
        .expect("when the deadline passes the window says the sign-in took too long");
    assert!(
        message.contains("start again"),
        "the message tells the user what to do: {message}"
    );
    app.screenshot("sign-in-expired").await.expect("screenshot");

    let late = headless_login(&authorize, SCHEME_REDIRECT)
        .await
        .expect("the IdP still completes the login in the browser");
    let seq = app.attr("#error", "data-seq").await.expect("read #error");
    app.deliver_redirect(late.as_str())
        .await
        .expect("the late redirect is handed over");
    app.wait_for_attr_change("#error", "data-seq", seq.as_deref())
        .await
        .expect("the late redirect is answered with a new error");
    app.wait_for_text("#error", "took too long")
        .await
        .expect("a redirect after the deadline is refused as too late");
    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.token_requests, 0,
        "a redirect after the deadline must not lead to a token request"
    );

    app.close().await.expect("the session ends");
}
