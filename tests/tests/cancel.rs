//! E2E: Cancel while waiting for the browser returns to the sign-in screen, and a redirect for
//! the cancelled sign-in that arrives afterwards is rejected without any token request.

use confab_e2e::{AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{headless_login, Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_sign_in_cannot_be_completed() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");

    app.click("#sign-in").await.expect("Sign in is clickable");
    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("clicking Sign in opens the authorization URL");
    app.wait_for_text("#deadline", "expires in")
        .await
        .expect("the waiting screen counts down to the deadline");
    app.click("#open-again")
        .await
        .expect("Open browser again is clickable");
    let reopened = app
        .wait_for_authorize_url(Some(&authorize))
        .await
        .expect("Open browser again starts a fresh request and opens it");
    assert_ne!(
        reopened, authorize,
        "a restarted sign-in uses a fresh request (new state and PKCE)"
    );

    app.click("#cancel").await.expect("Cancel is clickable");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("after Cancel the sign-in screen is back");

    let late = headless_login(&reopened, SCHEME_REDIRECT)
        .await
        .expect("the IdP still completes the login in the browser");
    app.deliver_redirect(late.as_str())
        .await
        .expect("the late redirect is handed over");
    app.wait_for_text("#error", "cancelled")
        .await
        .expect("a redirect for a cancelled sign-in is rejected in plain words");
    app.screenshot("cancelled-sign-in-rejected")
        .await
        .expect("screenshot");
    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.token_requests, 0,
        "a cancelled sign-in must not lead to a token request"
    );

    app.close().await.expect("the session ends");
}
