//! A revocation that fails at sign-out (the provider's revocation endpoint answers 503) is
//! retried at the next start, and the IdP then refuses the token. Between the two, the token
//! lives in the vault only. Against the real test IdP and a real Stronghold vault.
//!
//! The failure is made by an HTTP forward proxy in the test (`HTTP_PROXY`); the environment is
//! the process's, so this file holds one test only (its own test binary).

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use confab_client::{account, SignedOutReason, UiEvent};

use support::app::{files_containing, idp_accepts, start_app, stored_refresh_token, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_revocation_is_retried_at_the_next_start() {
    let proxy = support::proxy::start().await;
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");

    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_via_browser().await;
    let subject = account::load(&app.data_dir)
        .expect("remembered account")
        .subject;
    let stored = stored_refresh_token(&app, &idp, &subject)
        .await
        .expect("refresh token stored");

    // The provider fails revocations: the sign-out still ends the session and wipes the slot.
    proxy.fail_revocations.store(true, Ordering::SeqCst);
    app.flow.sign_out().await.expect("sign-out succeeds");
    assert_eq!(
        app.screen(),
        Some(UiEvent::SignedOut {
            reason: SignedOutReason::SignedOut
        })
    );
    assert!(
        proxy.failed_revocations.load(Ordering::SeqCst) >= 1,
        "the app tried to revoke"
    );
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        0,
        "nothing reached the IdP's revocation endpoint"
    );
    assert_eq!(
        stored_refresh_token(&app, &idp, &subject).await,
        None,
        "the account's vault entry is wiped"
    );
    assert_eq!(
        app.flow.pending_revocations().await,
        Some(1),
        "the revocation is owed, noted in the vault"
    );
    assert!(
        files_containing(dir.path(), &stored).is_empty(),
        "the token is in no file but the (encrypted) vault: {:?}",
        files_containing(dir.path(), &stored)
    );
    drop(app);

    // The provider is back; the next start retries once the vault is open.
    proxy.fail_revocations.store(false, Ordering::SeqCst);
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    support::wait_until("the revocation to be retried at the IdP", WAIT, || async {
        idp.stats().await.expect("stats").revocations >= 1
    })
    .await;
    support::wait_until(
        "the revoked token to leave the pending list",
        WAIT,
        || async { app.flow.pending_revocations().await == Some(0) },
    )
    .await;
    assert!(
        !idp_accepts(&idp, &stored).await,
        "the IdP refuses the token after the retry"
    );
    assert_eq!(
        proxy.failed_revocations.load(Ordering::SeqCst),
        1,
        "one failed attempt at sign-out, then one that worked"
    );
}
