//! E2E: the default vault path (key in the OS keychain — gnome-keyring on the test bus). After a
//! sign-in, a restart in the same HOME shows the signed-in user without asking anything and
//! without the browser: the IdP sees a refresh, not a new authorization or code exchange. The
//! page is told at window creation that the first screen is Sign in only when no account is
//! remembered (so a returning user never sees it flash).

use confab_e2e::{AppOptions, AppUnderTest};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_a_stored_session_signs_in_silently() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");

    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");
    assert_eq!(
        app.js("return window.__CONFAB_FIRST_SCREEN__ ?? null")
            .await
            .expect("page script runs"),
        serde_json::json!("sign-in"),
        "with no remembered account the page is told at creation that the first screen is Sign in"
    );
    // The sign-in screen can be on screen (first frame) before app.js runs; its mark says when
    // app.js has shown it, wired.
    app.poll("app.js to show the sign-in screen", || async {
        let marked = app
            .js("return performance.getEntriesByName('confab:sign-in', 'mark').length > 0")
            .await?;
        Ok((marked == serde_json::json!(true)).then_some(()))
    })
    .await
    .expect("app.js shows the sign-in screen");
    assert_eq!(
        app.js("return document.documentElement.dataset.firstScreen ?? null")
            .await
            .expect("page script runs"),
        serde_json::Value::Null,
        "once app.js runs, the first-frame hint (html[data-first-screen]) is gone"
    );
    // The chat part (chat.js and its modules) is not loaded for the sign-in screen (start time
    // and memory, docs/ui-contract.md "First screen"); it is once signing in is under way.
    const CHAT_LOADED: &str =
        "return performance.getEntriesByName('confab:chat-loaded', 'mark').length > 0";
    assert_eq!(
        app.js(CHAT_LOADED).await.expect("page script runs"),
        serde_json::json!(false),
        "the sign-in screen does not load the chat part"
    );
    app.sign_in_as_alice()
        .await
        .expect("signing in through the browser and the deep link completes");
    assert_eq!(
        app.js("return getComputedStyle(document.getElementById('screen-sign-in')).display")
            .await
            .expect("page script runs"),
        serde_json::json!("none"),
        "after signing in, the sign-in screen shown in the first frame is hidden"
    );
    assert_eq!(
        app.js(CHAT_LOADED).await.expect("page script runs"),
        serde_json::json!(true),
        "signed in, the chat part is loaded"
    );
    let home = app.quit().await.expect("the app quits");
    let before = idp.stats().await.expect("stats");

    let app = AppUnderTest::launch_in(&idp.issuer(), AppOptions::default(), home)
        .await
        .expect("the app starts again in the same HOME");
    app.wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("the restart shows the signed-in user without the browser");
    app.screenshot("restored-after-restart")
        .await
        .expect("screenshot");
    assert_eq!(
        app.js("return window.__CONFAB_FIRST_SCREEN__ ?? null")
            .await
            .expect("page script runs"),
        serde_json::Value::Null,
        "with a remembered account the page is not told to show Sign in first (no flash of it)"
    );
    let after = idp.stats().await.expect("stats");
    assert_eq!(
        after.authorization_requests, before.authorization_requests,
        "the restart never sent the user to the authorization endpoint"
    );
    assert_eq!(
        after.authorization_code_requests, before.authorization_code_requests,
        "the restart exchanged no authorization code"
    );
    assert!(
        after.refresh_requests > before.refresh_requests,
        "the session was restored with a refresh-token request"
    );
    let page = app.page_contents().await.expect("read the page");
    assert!(
        !page.contains("eyJ"),
        "no token reaches the webview after a restore"
    );
    app.close().await.expect("the session ends");
}
