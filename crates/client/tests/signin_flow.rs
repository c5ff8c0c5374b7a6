//! The sign-in state machine (`SignInFlow`) through every transition the UI can see, against
//! the real test IdP (oidc-provider) and a real Stronghold vault (passphrase key, so no OS
//! keychain is needed). The browser is played headlessly from the URL the flow asked the
//! platform to open; the OS's deep link is `SignInFlow::complete`.
//!
//! Needs node and `npm ci` in tests/idp (`cargo xtask test` sets both up).

mod support;

use std::time::Duration;

use confab_client::account;
use confab_client::{Code, Error, SignedOutReason, UiEvent};
use confab_testkit::{headless_login, PRIVATE_USE_REDIRECT_URI};
use confab_vault::SecretString;

use confab_client::RedirectPlan;
use support::app::{idp_accepts, start_app, start_app_with, stored_refresh_token, PASSPHRASE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_unlock_sign_in_restore_and_sign_out() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");

    // First run, passphrase mode: the unlock screen asks to choose a passphrase.
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    assert_eq!(app.screen(), Some(UiEvent::VaultLocked { first_run: true }));
    // Confirmation differs: refused, nothing created, the screen stays.
    let mismatch = app
        .flow
        .unlock(
            SecretString::new(PASSPHRASE.to_owned()),
            Some(SecretString::new("something else".to_owned())),
        )
        .await;
    assert!(matches!(mismatch, Err(Error::PassphraseMismatch)));
    // Too short for a new vault: refused with the reason, nothing created.
    let short = app
        .flow
        .unlock(
            SecretString::new("seven77".to_owned()),
            Some(SecretString::new("seven77".to_owned())),
        )
        .await;
    assert!(
        matches!(short, Err(Error::PassphraseTooShort { min: 8 })),
        "{short:?}"
    );
    assert_eq!(
        short.map_err(|e| e.to_string()).err().as_deref(),
        Some("choose a passphrase of at least 8 characters")
    );
    assert!(!app
        .data_dir
        .join(confab_client::signin::VAULT_FILE)
        .exists());
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        *e == UiEvent::SignedOut {
            reason: SignedOutReason::NotSignedIn,
        }
    })
    .await;

    // Browser sign-in: the authorization URL goes to the system browser, the redirect signs in.
    app.sign_in_via_browser().await;
    let opened = app.opened_url(1).await;
    assert_eq!(opened.origin(), idp.issuer().origin(), "the IdP's page");
    assert!(app.flow.has_session());
    let remembered = account::load(&app.data_dir).expect("the account is remembered");
    let subject = remembered.subject;
    let refresh = stored_refresh_token(&app, &idp, &subject)
        .await
        .expect("the refresh token is in the vault");
    drop(app);

    // Next start: unlock, then a silent restore: no browser.
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    assert_eq!(
        app.screen(),
        Some(UiEvent::VaultLocked { first_run: false })
    );
    let wrong = app
        .flow
        .unlock(SecretString::new("not it".to_owned()), None)
        .await;
    assert!(matches!(wrong, Err(Error::WrongPassphrase)));
    app.unlock().await;
    let restored = app
        .wait_for("signed-in by restore", |e| {
            matches!(e, UiEvent::SignedIn { .. })
        })
        .await;
    assert!(app
        .events
        .borrow()
        .iter()
        .any(|e| matches!(e, UiEvent::Restoring { .. })));
    assert_eq!(app.opened_count(), 0, "a restore opens no browser");
    let UiEvent::SignedIn { user } = restored else {
        unreachable!()
    };
    assert_eq!(user.issuer, idp.issuer_str());

    // Sign-out: revoked at the IdP, wiped from the vault, account forgotten.
    let rotated = stored_refresh_token(&app, &idp, &subject)
        .await
        .expect("the restore stored the rotated token");
    assert_ne!(rotated, refresh, "the restore rotated the refresh token");
    app.flow.sign_out().await.expect("sign-out succeeds");
    assert_eq!(
        app.screen(),
        Some(UiEvent::SignedOut {
            reason: SignedOutReason::SignedOut
        })
    );
    assert!(!app.flow.has_session());
    assert!(account::load(&app.data_dir).is_none());
    assert_eq!(stored_refresh_token(&app, &idp, &subject).await, None);
    assert!(
        !idp_accepts(&idp, &rotated).await,
        "the signed-out refresh token is revoked"
    );
    // The provider's logout page opened in the browser.
    let logout = app.opened_url(1).await;
    assert!(
        logout.path().contains("session/end")
            || logout
                .query()
                .is_some_and(|q| q.contains("post_logout_redirect_uri"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_stale_redirect_keeps_the_pending_sign_in() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;

    // A first attempt, cancelled: its redirect is stale from now on.
    app.flow.sign_in().await.expect("sign-in starts");
    let first = app.opened_url(1).await;
    let stale = headless_login(&first, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back");
    assert!(app.flow.cancel().await, "an attempt was pending");
    assert_eq!(
        app.screen(),
        Some(UiEvent::SignedOut {
            reason: SignedOutReason::Cancelled
        })
    );

    // The second attempt is pending.
    app.flow.sign_in().await.expect("sign-in starts again");
    let pending = app
        .wait_for("sign-in-pending", |e| {
            matches!(e, UiEvent::SignInPending { .. })
        })
        .await;
    let second = app.opened_url(2).await;
    let events_before = app.events.borrow().len();

    // A forged link (state the app never made), the stale one and a malformed one arrive.
    let forged = format!("{PRIVATE_USE_REDIRECT_URI}?code=attacker-code&state=attacker-state");
    app.flow.complete(&forged).await;
    app.flow.complete(stale.as_str()).await;
    app.flow
        .complete(&format!("{PRIVATE_USE_REDIRECT_URI}?nothing=here"))
        .await;
    assert_eq!(
        app.screen(),
        Some(pending),
        "the pending screen stays for refused links"
    );
    let notices: Vec<UiEvent> = app.events.borrow()[events_before..].to_vec();
    assert_eq!(notices.len(), 3, "one notice per refused link: {notices:?}");
    for notice in &notices {
        let UiEvent::RedirectRefused { message, .. } = notice else {
            panic!("only notices, no new screen: {notice:?}");
        };
        assert!(
            !message.contains("attacker") && !message.contains(stale.as_str()),
            "the notice does not echo the link: {message}"
        );
    }
    assert!(matches!(
        notices[0],
        UiEvent::RedirectRefused {
            code: Code::StateMismatch,
            ..
        }
    ));
    assert_eq!(
        idp.stats().await.expect("stats").token_requests,
        0,
        "no token request"
    );
    assert!(!app.flow.has_session());

    // The real redirect of the pending attempt still signs in.
    let callback = headless_login(&second, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back");
    app.flow.complete(callback.as_str()).await;
    app.wait_for("signed-in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    assert!(app.flow.has_session());

    // Once signed in, replaying the callback is refused and the user stays signed in.
    app.flow.complete(callback.as_str()).await;
    assert!(matches!(app.screen(), Some(UiEvent::SignedIn { .. })));
    assert!(app.flow.has_session());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_with_no_sign_in_started_says_so() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    // The app was launched by an old link: nothing was started in this process.
    app.flow
        .complete(&format!("{PRIVATE_USE_REDIRECT_URI}?code=old&state=old"))
        .await;
    let failed = app
        .wait_for("sign-in-failed", |e| {
            matches!(e, UiEvent::SignInFailed { .. })
        })
        .await;
    assert!(matches!(
        failed,
        UiEvent::SignInFailed {
            code: Code::NoPendingLogin,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_vault_is_reset_only_when_asked_and_its_old_tokens_are_deleted() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_via_browser().await;
    drop(app);

    // The snapshot is damaged on disk.
    let vault_file = dir
        .path()
        .join("data")
        .join(confab_client::signin::VAULT_FILE);
    let mut bytes = std::fs::read(&vault_file).expect("vault file");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&vault_file, &bytes).expect("damage the vault");

    let mut app = start_app(&idp, dir.path());
    app.flow.open_vault().await;
    let unlock = app
        .flow
        .unlock(SecretString::new(PASSPHRASE.to_owned()), None)
        .await;
    assert!(unlock.is_err(), "a damaged vault does not open");
    let broken = app
        .wait_for("vault-broken", |e| matches!(e, UiEvent::VaultBroken { .. }))
        .await;
    assert!(
        matches!(
            broken,
            UiEvent::VaultBroken {
                code: Code::VaultCorrupt | Code::WrongKey | Code::Vault,
                ..
            }
        ),
        "{broken:?}"
    );
    assert!(vault_file.exists(), "never a silent reset");

    // The person asks for the reset: the damaged snapshot, whose refresh token can neither
    // be read nor revoked any more, is deleted (not kept aside on disk); a fresh vault starts.
    app.flow.reset_vault().await.expect("reset succeeds");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("data"))
        .expect("data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let snapshot_aside = format!("{}.corrupt-", confab_client::signin::VAULT_FILE);
    assert!(
        !names.iter().any(|n| n.starts_with(&snapshot_aside)),
        "the old snapshot is deleted once the user confirmed: {names:?}"
    );
    assert!(
        !vault_file.exists(),
        "and no vault is left at its place before the new one is made: {names:?}"
    );
    assert!(
        account::load(&app.data_dir).is_none(),
        "the account is forgotten"
    );
    assert_eq!(
        app.screen(),
        Some(UiEvent::VaultLocked { first_run: true }),
        "a fresh vault asks for a new passphrase"
    );
    app.unlock().await;
    app.sign_in_via_browser().await;
    assert!(app.flow.has_session());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_left_in_the_browser_expires_and_a_late_redirect_is_refused() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app_with(&idp, dir.path(), RedirectPlan::Scheme, |c| {
        c.login_timeout = Duration::from_secs(1);
    });
    app.flow.open_vault().await;
    app.unlock().await;
    app.flow.sign_in().await.expect("sign-in starts");
    let url = app.opened_url(1).await;
    // The person finishes in the browser, but the redirect only arrives after the deadline.
    let late = headless_login(&url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back");
    let expired = app
        .wait_for("the deadline", |e| {
            matches!(e, UiEvent::SignInFailed { .. })
        })
        .await;
    assert!(
        matches!(
            expired,
            UiEvent::SignInFailed {
                code: Code::LoginExpired,
                ..
            }
        ),
        "{expired:?}"
    );
    app.flow.complete(late.as_str()).await;
    assert!(matches!(
        app.screen(),
        Some(UiEvent::SignInFailed {
            code: Code::LoginExpired,
            ..
        })
    ));
    assert!(!app.flow.has_session());
    assert_eq!(
        idp.stats()
            .await
            .expect("stats")
            .authorization_code_requests,
        0,
        "an expired sign-in makes no token request"
    );
    // Trying again works.
    app.sign_in_via_browser().await;
    assert!(app.flow.has_session());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_redirect_signs_in_without_a_deep_link() {
    let idp = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app_with(&idp, dir.path(), RedirectPlan::Loopback, |_| {});
    app.flow.open_vault().await;
    app.unlock().await;
    app.flow.sign_in().await.expect("sign-in starts");
    let pending = app
        .wait_for("sign-in-pending", |e| {
            matches!(e, UiEvent::SignInPending { .. })
        })
        .await;
    assert!(matches!(
        pending,
        UiEvent::SignInPending {
            redirect: confab_client::events::RedirectKind::Loopback,
            ..
        }
    ));
    let url = app.opened_url(1).await;
    let redirect_uri = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("the request names its redirect URI");
    assert!(
        redirect_uri.starts_with("http://127.0.0.1:"),
        "RFC 8252 loopback redirect: {redirect_uri}"
    );
    // A local page that guesses the port sends its own callback first: refused with 400, the
    // sign-in goes on (its listener still waits).
    let guessed = reqwest::get(format!("{redirect_uri}?code=evil&state=theirs"))
        .await
        .expect("the listener answers");
    assert_eq!(guessed.status().as_u16(), 400);
    assert!(matches!(app.screen(), Some(UiEvent::SignInPending { .. })));
    // The browser lands on the app's loopback listener: that alone completes the sign-in.
    let callback = headless_login(&url, &redirect_uri)
        .await
        .expect("the IdP redirects back");
    let landed = reqwest::get(callback.as_str())
        .await
        .expect("the loopback listener answers the browser");
    assert!(landed.status().is_success());
    app.wait_for("signed-in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    assert!(app.flow.has_session());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remembered_account_of_another_provider_is_not_restored() {
    let first = support::start_idp(Duration::from_secs(300)).await;
    let other = support::start_idp(Duration::from_secs(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_app(&first, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_via_browser().await;
    drop(app);
    let before = first.stats().await.expect("stats").token_requests;

    // The configuration now names another provider: the stored refresh token (the first
    // provider's) must not be sent to it, nor anywhere else, at start.
    let mut app = start_app(&other, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in screen", |e| {
        *e == UiEvent::SignedOut {
            reason: SignedOutReason::NotSignedIn,
        }
    })
    .await;
    assert!(!app
        .events
        .borrow()
        .iter()
        .any(|e| matches!(e, UiEvent::Restoring { .. })));
    assert_eq!(other.stats().await.expect("stats").token_requests, 0);
    assert_eq!(first.stats().await.expect("stats").token_requests, before);
    assert!(!app.flow.has_session());
}
