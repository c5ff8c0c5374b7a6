//! The password profile end to end in the app core, against the real Django + DRF + SimpleJWT
//! test backend (10 s access tokens, rotation and blacklist on) and a real Stronghold vault:
//! a refused password stores nothing; a sign-in keeps the refresh token in the vault only and
//! rotates it (saved before use, the old one refused by the backend); a restart signs in
//! silently; sign-out blacklists the token; no password or token lands in a file.

#[path = "../../relay/tests/common/mod.rs"]
mod common;
mod support;

use confab_client::{account, Code, UiEvent};
use confab_testkit::{Django, DjangoOptions};
use confab_vault::SecretString;

use confab_config::{ChatTokenEndpoint, ChatTokenShape};
use support::app::{
    files_containing, password_config, start_core_with, start_password_app,
    stored_chat_refresh_token, stored_refresh_token_of, WAIT,
};

const PASSWORD: &str = "alice-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_sign_in_rotates_restores_and_blacklists_at_sign_out() {
    let django = Django::start(DjangoOptions::default())
        .await
        .expect("the Django backend starts");
    let issuer = django.base_url().as_str().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().expect("temp dir");

    let mut app = start_password_app(&django.base_url(), dir.path());
    assert_eq!(app.flow.sign_in_method(), "password");
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("the sign-in form", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;

    // A wrong password: worded, nothing stored, the form stays.
    let wrong = app
        .flow
        .sign_in_password("alice", SecretString::from("not-alices"))
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(wrong.code(), Code::WrongCredentials);
    let inactive = app
        .flow
        .sign_in_password("carol", SecretString::from("carol-password"))
        .await
        .expect_err("a deactivated account is refused");
    assert_eq!(inactive.code(), Code::AccountInactive);
    assert!(account::load(&app.data_dir).is_none(), "nothing remembered");
    assert!(!app.flow.has_session());
    assert!(
        matches!(app.screen(), Some(UiEvent::SignedOut { .. })),
        "the form stays on screen (the refusal is the command's answer)"
    );

    // Signed in by email; the account is keyed by the backend and the token's user id.
    app.flow
        .sign_in_password("alice@example.test", SecretString::from(PASSWORD))
        .await
        .expect("alice signs in");
    let signed_in = app
        .wait_for("signed in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    let UiEvent::SignedIn { user } = signed_in else {
        unreachable!()
    };
    assert_eq!(user.name.as_deref(), Some("Alice Example"));
    assert_eq!(user.email.as_deref(), Some("alice@example.test"));
    let remembered = account::load(&app.data_dir).expect("the account is remembered");
    assert_eq!(remembered.issuer, issuer);
    let subject = remembered.subject.clone();
    assert_eq!(
        subject, "alice",
        "the account's subject is the user as the backend's chat tokens name them"
    );
    let first = stored_refresh_token_of(&app, &issuer, &subject)
        .await
        .expect("the refresh token is in the vault");
    assert_eq!(django.live_refresh_tokens("alice").await.expect("live"), 1);

    // 10 s access tokens: the session refreshes ahead of expiry, saving the rotated token.
    support::wait_until("a rotated refresh token in the vault", WAIT, || async {
        stored_refresh_token_of(&app, &issuer, &subject)
            .await
            .is_some_and(|t| t != first)
    })
    .await;
    assert_eq!(
        django.live_refresh_tokens("alice").await.expect("live"),
        1,
        "the old token was blacklisted by the rotation: only the stored one is live"
    );
    let stats = django.stats().await.expect("stats");
    assert!(
        stats.refresh_ok >= 1 && stats.refresh_refused == 0,
        "{stats:?}"
    );

    // Restart: silent restore by a SimpleJWT refresh, no password.
    drop(app);
    let mut app = start_password_app(&django.base_url(), dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("signed in again", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    assert!(app.flow.has_session());
    let after = django.stats().await.expect("stats");
    assert_eq!(after.login_ok, 1, "no second password login");
    support::wait_until("the restore's refresh", WAIT, || async {
        django.stats().await.expect("stats").refresh_ok > stats.refresh_ok
    })
    .await;

    // Sign-out blacklists the stored token and wipes it.
    app.flow.sign_out().await.expect("alice signs out");
    assert_eq!(
        django.live_refresh_tokens("alice").await.expect("live"),
        0,
        "the backend refuses the app's refresh token after sign-out"
    );
    assert_eq!(stored_refresh_token_of(&app, &issuer, &subject).await, None);
    assert!(account::load(&app.data_dir).is_none());
    assert_eq!(app.flow.pending_revocations().await, Some(0));

    assert!(
        files_containing(dir.path(), PASSWORD).is_empty(),
        "the password is in no file (data dir, auth log)"
    );
    // The start of a JWT header (`{"alg":`, `{"typ":`): long enough that the encrypted vault
    // cannot hold it by chance.
    assert!(
        ["eyJhbGciOi", "eyJ0eXAiOi"]
            .iter()
            .all(|jwt| files_containing(dir.path(), jwt).is_empty()),
        "no token is in a file outside the encrypted vault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_backend_down_the_session_waits_and_its_revocation_is_owed() {
    let django = Django::start(DjangoOptions::default())
        .await
        .expect("the Django backend starts");
    let base = django.base_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut app = start_password_app(&base, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.flow
        .sign_in_password("bob", SecretString::from("bob-password"))
        .await
        .expect("bob signs in");
    app.wait_for("signed in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    drop(app);
    django.stop().await.expect("the backend stops");

    // Restart with the backend down: the session is kept (not ended) and retried.
    let mut app = start_password_app(&base, dir.path());
    app.flow.open_vault().await;
    app.unlock().await;
    app.wait_for("bob shown while offline", |e| {
        matches!(e, UiEvent::SignedIn { .. })
    })
    .await;
    assert!(
        account::load(&app.data_dir).is_some(),
        "an unreachable backend ends nothing"
    );
    let down = app
        .flow
        .sign_in_password("bob", SecretString::from("bob-password"))
        .await
        .expect_err("a backend that is down cannot be reached");
    assert_eq!(down.code(), Code::Network, "{down}");
    assert!(down.to_string().contains("could not be reached"), "{down}");

    // Sign-out now: wiped here, the blacklisting owed (noted in the vault for the next start).
    app.flow.sign_out().await.expect("bob signs out");
    assert!(account::load(&app.data_dir).is_none());
    assert_eq!(
        app.flow.pending_revocations().await,
        Some(1),
        "the blacklisting the backend could not take is kept for a retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_disconnects_and_revokes_both_tiers_of_a_chatsdk_deployment() {
    let django = Django::start(DjangoOptions::default())
        .await
        .expect("the Django backend starts");
    let issuer = django.base_url().as_str().trim_end_matches('/').to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = common::TestServer::start(common::server_config_for(
        &django.issuer(),
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let mut config = password_config(&django.base_url());
    config.chat_token_endpoint = ChatTokenEndpoint::Url(django.endpoint("/api/chatsdk/token"));
    config.chat_token_shape = ChatTokenShape::ChatSdk {
        refresh: django.endpoint("/api/chatsdk/refresh"),
        logout: Some(django.endpoint("/api/chatsdk/logout")),
    };
    let mut app = start_core_with(config, dir.path(), &server.url());
    app.flow.open_vault().await;
    app.unlock().await;
    app.flow
        .sign_in_password("alice", SecretString::from(PASSWORD))
        .await
        .expect("alice signs in");
    app.wait_for("signed in", |e| matches!(e, UiEvent::SignedIn { .. }))
        .await;
    support::wait_until("the chat's ChatSDK token", WAIT, || async {
        django.stats().await.expect("stats").chatsdk_tokens == 1
    })
    .await;
    support::wait_until("the chat refresh token in the vault", WAIT, || async {
        stored_chat_refresh_token(&app, &issuer, "alice")
            .await
            .is_some()
    })
    .await;

    // The four steps: disconnect, remove the tokens, invalidate them at the backend, sign-in.
    app.flow.sign_out().await.expect("alice signs out");
    app.wait_for("the sign-in form", |e| {
        matches!(e, UiEvent::SignedOut { .. })
    })
    .await;
    support::wait_until("the chat tier's logout at the backend", WAIT, || async {
        django.stats().await.expect("stats").chatsdk_logouts == 1
    })
    .await;
    assert_eq!(
        stored_chat_refresh_token(&app, &issuer, "alice").await,
        None,
        "the chat refresh token left the vault"
    );
    assert_eq!(
        django.live_refresh_tokens("alice").await.expect("live"),
        0,
        "the identity tier's refresh token is blacklisted too"
    );
}
