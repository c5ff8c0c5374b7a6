//! E2E: the real app, a click on "Sign in", the login finished "in the browser" by the headless
//! helper, and the redirect delivered the way Linux does it (a second app process, forwarded by
//! the single-instance plugin). The window must then show who is signed in, and nothing in the
//! page may hold a token or the authorization code.

use confab_e2e::{query_param, token_shaped_strings, AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{headless_login, Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_in_the_browser_shows_the_user_in_the_window() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");

    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("the first screen offers Sign in");
    app.screenshot("sign-in-screen").await.expect("screenshot");
    app.click("#sign-in").await.expect("Sign in is clickable");

    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("clicking Sign in opens the authorization URL in the browser");
    assert_eq!(
        query_param(&authorize, "redirect_uri").as_deref(),
        Some(SCHEME_REDIRECT),
        "the app asks for the private-use scheme redirect"
    );
    assert_eq!(
        query_param(&authorize, "code_challenge_method").as_deref(),
        Some("S256"),
        "the app uses PKCE S256"
    );
    app.wait_for_text("#screen-waiting", "Finish signing in in your browser")
        .await
        .expect("while the browser is open the app says where to finish");
    app.screenshot("sign-in-waiting").await.expect("screenshot");

    let callback = headless_login(&authorize, SCHEME_REDIRECT)
        .await
        .expect("the IdP logs alice in and redirects to the app's scheme");
    let code = query_param(&callback, "code").expect("the redirect carries a code");
    app.deliver_redirect(callback.as_str())
        .await
        .expect("the second process hands the URL to the running app and exits");

    let header = app
        .wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("after the redirect the window shows who is signed in");
    assert_eq!(
        header, "Signed in as Alice Example",
        "the header names the user from the ID token"
    );
    app.wait_for_text("#signed-in-email", "alice@example.test")
        .await
        .expect("the header shows the user's email");
    app.screenshot("signed-in").await.expect("screenshot");

    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.authorization_code_requests, 1,
        "the app exchanged the code exactly once"
    );

    let page = app.page_contents().await.expect("read the page");
    assert!(
        !page.contains(&code),
        "the authorization code must never reach the webview (DOM or storage)"
    );
    assert!(
        !page.contains("eyJ"),
        "no JWT (access or ID token) may reach the webview"
    );
    let suspicious = token_shaped_strings(&page);
    assert!(
        suspicious.is_empty(),
        "no token-shaped string may be in the DOM, localStorage or sessionStorage: {suspicious:?}"
    );
    let log = app.log();
    assert!(
        !log.contains(&code) && !log.contains("eyJ"),
        "the app's log must not contain the code or a token"
    );

    app.close().await.expect("the session ends");
}
