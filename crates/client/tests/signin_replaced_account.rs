//! A sign-in that replaces the remembered account (`account.json` remembers one) revokes the
//! refresh token the replaced account left in the vault, when that account is not running;
//! an account running side by side is left alone. Against two real test IdPs (the
//! configuration moves from one provider to the other) and a real Stronghold vault.

mod support;

use std::time::Duration;

use confab_client::{account, RedirectPlan, UiEvent};

use support::app::{idp_accepts, start_app, start_app_with, stored_refresh_token, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_account_that_is_not_running_has_its_token_revoked() {
    let old_idp = support::start_idp(Duration::from_secs(300)).await;
    let new_idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Signed in at the old provider; the app quits.
    let mut app = start_app(&old_idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_via_browser().await;
    let old_token = stored_refresh_token(&app, &old_idp, "alice")
        .await
        .expect("refresh token stored");
    drop(app);

    // The configuration now names another provider: the remembered account is not restored
    // (its token is sent nowhere), and signing in opens the browser for the new provider.
    let mut app = start_app_with(&new_idp, dir.path(), RedirectPlan::Scheme, |_| {});
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    assert!(!app.flow.has_session());
    app.sign_in_via_browser().await;
    assert_eq!(
        account::load(&app.data_dir).map(|a| a.issuer),
        Some(new_idp.issuer_str()),
        "the new account is the remembered one"
    );

    // The replaced account was not running: its token is wiped and revoked at its own provider.
    support::wait_until("the old token to be revoked", WAIT, || async {
        old_idp.stats().await.expect("stats").revocations == 1
    })
    .await;
    support::wait_until("the revocation to be settled", WAIT, || async {
        app.flow.pending_revocations().await == Some(0)
    })
    .await;
    assert_eq!(
        stored_refresh_token(&app, &old_idp, "alice").await,
        None,
        "the replaced account's token is wiped from the vault"
    );
    assert!(
        !idp_accepts(&old_idp, &old_token).await,
        "the old provider refuses the replaced account's token"
    );
    assert_eq!(
        new_idp.stats().await.expect("stats").revocations,
        0,
        "the old token was never sent to the new provider"
    );

    // Another account signed in beside a running one replaces the remembered account too, but
    // the running one is left alone.
    app.sign_in_as("bob").await;
    assert_eq!(
        account::load(&app.data_dir).map(|a| a.subject),
        Some("bob".to_owned())
    );
    app.flow.sign_out().await.expect("bob signs out");
    assert_eq!(
        new_idp.stats().await.expect("stats").revocations,
        1,
        "only bob's token was revoked"
    );
    assert!(
        stored_refresh_token(&app, &new_idp, "alice")
            .await
            .is_some(),
        "alice, still running, keeps her token"
    );
    assert!(app.flow.has_session(), "alice's session runs on");
}
