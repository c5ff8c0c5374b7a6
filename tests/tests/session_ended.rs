//! E2E: the identity provider ended the session while the app was closed (grant revoked). The
//! next start tries the silent restore, is refused, and shows the sign-in screen with the
//! reason — no browser, no stale "signed in" — and forgets the account.

use confab_e2e::{AppOptions, AppUnderTest};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refused_by_the_provider_shows_why() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");

    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");
    app.sign_in_as_alice()
        .await
        .expect("signing in through the browser and the deep link completes");
    let data_dir = app.data_dir();
    let home = app.quit().await.expect("the app quits");
    assert!(
        data_dir.join("account.json").is_file(),
        "the account is remembered for the next start"
    );

    let revoked = idp.revoke_grants("alice").await.expect("revoke at the IdP");
    assert!(revoked >= 1, "the IdP ended alice's grant");
    let before = idp.stats().await.expect("stats");

    let app = AppUnderTest::launch_in(&idp.issuer(), AppOptions::default(), home)
        .await
        .expect("the app starts again in the same HOME");
    app.wait_for_text(
        "#sign-in-notice",
        "Your session ended, please sign in again",
    )
    .await
    .expect("a refused restore lands on the sign-in screen with the reason");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("the user can sign in again from here");
    app.screenshot("session-ended").await.expect("screenshot");
    let after = idp.stats().await.expect("stats");
    assert!(
        after.refresh_requests > before.refresh_requests,
        "the app tried the silent restore"
    );
    assert_eq!(
        after.authorization_requests, before.authorization_requests,
        "no browser sign-in was started on its own"
    );
    assert!(
        !data_dir.join("account.json").exists(),
        "an ended session is forgotten: no restore is tried at the next start"
    );
    app.close().await.expect("the session ends");
}
