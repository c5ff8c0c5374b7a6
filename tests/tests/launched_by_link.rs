//! E2E: a redirect that starts the app (no instance was running, so there is no sign-in in
//! progress) is read with `get_current()` at start and rejected in plain words.

use confab_e2e::{AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_that_launches_the_app_is_rejected() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let stale = format!("{SCHEME_REDIRECT}?code=stale-code&state=stale-state");
    let options = AppOptions {
        args: vec![stale],
        ..AppOptions::default()
    };
    let app = AppUnderTest::launch(&idp.issuer(), options)
        .await
        .expect("the app starts under WebDriver with a redirect URL argument");

    let message = app
        .wait_for_text("#error", "No sign-in is in progress")
        .await
        .expect("a redirect nobody asked for is reported, not silently accepted");
    assert!(
        !message.contains("stale-code") && !message.contains("stale-state"),
        "the message does not echo the URL's parameters: {message}"
    );
    app.screenshot("launched-by-stale-link")
        .await
        .expect("screenshot");
    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.token_requests, 0,
        "no token request for a stale redirect"
    );

    app.click("#try-again").await.expect("Try again is offered");
    app.wait_for_text("#screen-waiting", "Finish signing in in your browser")
        .await
        .expect("Try again starts a sign-in");

    app.close().await.expect("the session ends");
}
