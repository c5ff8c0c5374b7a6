//! Signing out while no session runs (its restore failed: the provider was unreachable at
//! start) still revokes the refresh token stored in the vault, and wipes it even when the
//! provider cannot be reached; then the revocation is owed and retried at the next start.
//! Against the real test IdP and a real Stronghold vault.
//!
//! "Unreachable" is an HTTP proxy (`HTTP_PROXY`, honoured by the sign-in's HTTP client) on a
//! port nobody listens on; it is set and cleared between steps. The environment is the
//! process's, so this file holds one test only (its own test binary).

mod support;

use std::time::Duration;

use confab_client::{account, Code, SignedOutReason, UiEvent};

use support::app::{idp_accepts, start_app, stored_refresh_token, WAIT};

/// Points the sign-in's HTTP client at a proxy that refuses every connection (or back at the
/// network). The client is built at discovery, so this applies to the next discovery.
fn provider_reachable(reachable: bool) {
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::remove_var(var);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    if !reachable {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        // The listener is dropped: connections to that port are refused.
        std::env::set_var("HTTP_PROXY", format!("http://{closed}"));
        std::env::set_var("http_proxy", format!("http://{closed}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_without_a_running_session_revokes_and_wipes_the_stored_token() {
    provider_reachable(true);
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");

    // Signed in once; the app quits.
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
    drop(app);

    // Next start with the provider unreachable: the restore fails, the account is kept, no
    // session runs.
    provider_reachable(false);
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    let failed = app
        .wait_for("the restore to fail", |e| {
            matches!(e, UiEvent::SignInFailed { .. })
        })
        .await;
    assert!(
        matches!(
            failed,
            UiEvent::SignInFailed {
                code: Code::Discovery | Code::Network,
                ..
            }
        ),
        "{failed:?}"
    );
    assert!(!app.flow.has_session());
    assert!(
        account::load(&app.data_dir).is_some(),
        "the account is kept"
    );

    // The provider is back; the person signs out from here.
    provider_reachable(true);
    let revocations = idp.stats().await.expect("stats").revocations;
    app.flow.sign_out().await.expect("sign-out succeeds");
    assert_eq!(
        app.screen(),
        Some(UiEvent::SignedOut {
            reason: SignedOutReason::SignedOut
        })
    );
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        revocations + 1,
        "the stored refresh token was sent to the revocation endpoint"
    );
    assert!(
        !idp_accepts(&idp, &stored).await,
        "the IdP no longer accepts the stored refresh token"
    );
    assert_eq!(
        stored_refresh_token(&app, &idp, &subject).await,
        None,
        "the vault entry is wiped"
    );
    assert!(account::load(&app.data_dir).is_none());
    drop(app);

    // Again, but the provider stays unreachable through the sign-out: the token cannot be
    // revoked, and is wiped all the same.
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    app.sign_in_via_browser().await;
    let stored = stored_refresh_token(&app, &idp, &subject)
        .await
        .expect("refresh token stored");
    drop(app);
    provider_reachable(false);
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the restore to fail", |e| {
        matches!(e, UiEvent::SignInFailed { .. })
    })
    .await;
    let revocations = idp.stats().await.expect("stats").revocations;
    app.flow
        .sign_out()
        .await
        .expect("sign-out succeeds offline");
    assert_eq!(stored_refresh_token(&app, &idp, &subject).await, None);
    assert!(account::load(&app.data_dir).is_none());
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        revocations,
        "offline, the token could not be revoked"
    );
    assert_eq!(
        app.flow.pending_revocations().await,
        Some(1),
        "the revocation is owed, noted in the vault"
    );
    drop(app);

    // The next start, online: the owed revocation is retried and the IdP refuses the token.
    provider_reachable(true);
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    support::wait_until("the revocation to be retried", WAIT, || async {
        idp.stats().await.expect("stats").revocations > revocations
    })
    .await;
    support::wait_until("the revoked token to leave the list", WAIT, || async {
        app.flow.pending_revocations().await == Some(0)
    })
    .await;
    assert!(
        !idp_accepts(&idp, &stored).await,
        "the IdP refuses the token revoked at the next start"
    );
}
