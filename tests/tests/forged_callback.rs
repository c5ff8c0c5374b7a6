//! E2E: a forged redirect (a `state` the app never issued) delivered while a real sign-in is
//! pending is refused with a clear notice on the waiting screen, which stays, and no token
//! request; the real sign-in still completes afterwards.

use confab_e2e::{query_param, AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{headless_login, Idp, IdpOptions};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callback_is_refused_and_the_sign_in_goes_on() {
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
    let real_state = query_param(&authorize, "state").expect("the request carries a state");

    let mut forged = url::Url::parse(SCHEME_REDIRECT).expect("redirect URI parses");
    forged
        .query_pairs_mut()
        .append_pair("code", "forged-authorization-code")
        .append_pair("state", &format!("{real_state}-forged"))
        .append_pair("iss", idp.issuer_str().trim_end_matches('/'));
    app.deliver_redirect(forged.as_str())
        .await
        .expect("the second process hands the forged URL over");

    let message = app
        .wait_for_text(
            "#waiting-notice",
            "does not belong to the sign-in in progress",
        )
        .await
        .expect("a forged callback is reported in plain words");
    assert!(
        !message.contains("forged-authorization-code") && !message.contains(&real_state),
        "the notice does not echo the code or the state: {message}"
    );
    let code = app
        .client
        .find(Locator::Css("#waiting-notice"))
        .await
        .expect("#waiting-notice exists")
        .attr("data-code")
        .await
        .expect("read data-code");
    assert_eq!(
        code.as_deref(),
        Some("state-mismatch"),
        "the UI got the state-mismatch error code"
    );
    app.wait_for_text("#cancel", "Cancel")
        .await
        .expect("the waiting screen stays, the sign-in in progress can still be cancelled");
    app.screenshot("forged-callback-rejected")
        .await
        .expect("screenshot");

    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.token_requests, 0,
        "a forged callback must not lead to any token request"
    );

    // The real login was not consumed by the forgery: finishing it still signs the user in.
    let callback = headless_login(&authorize, SCHEME_REDIRECT)
        .await
        .expect("the IdP completes the real login");
    app.deliver_redirect(callback.as_str())
        .await
        .expect("the real redirect is handed over");
    app.wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("the genuine redirect still signs in after a forged one was rejected");

    app.close().await.expect("the session ends");
}
