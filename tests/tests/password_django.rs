//! E2E: the password profile against the real Django + DRF + SimpleJWT backend
//! (`tests/backends/django`, 10 s access tokens, rotation and blacklist on), chatting through
//! confab-server with chat tokens minted by the Django backend.
//!
//! - alice (by username) and bob (by email) sign in with Confab's own form, talk for two minutes
//!   while their 10 s access tokens expire a dozen times (no chat error, no reconnect line, every
//!   message once), and bob sees alice's display name from the backend;
//! - alice quits and starts again: signed in silently by a SimpleJWT refresh (the rotated token
//!   saved first, the old one blacklisted), no password asked;
//! - neither the passwords nor any token are in a file of the app's HOME, its log or the page.

use std::time::Duration;

use confab_e2e::conversation::{assert_all_arrived, assert_quiet, converse, open_and_connect};
use confab_e2e::{files_containing, files_with_jwt, AppOptions, AppUnderTest, ChatServer};
use confab_testkit::{Django, DjangoOptions};

const CONVERSATION: Duration = Duration::from_secs(120);
const EVERY: Duration = Duration::from_secs(4);
const ALICE_PASSWORD: &str = "alice-password";
const BOB_PASSWORD: &str = "bob-password";

fn options(django: &Django, server: &ChatServer) -> AppOptions {
    AppOptions::password(
        &django.base_url(),
        &django.endpoint("/api/chat/token"),
        server.url(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_users_sign_in_with_a_password_chat_and_come_back_without_it() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let django = Django::start(DjangoOptions::default())
        .await
        .expect("the Django backend starts with 10 s access tokens");
    // confab-server trusts the Django backend's chat tokens (its discovery document and JWKS).
    let server = ChatServer::start(&django.issuer())
        .await
        .expect("the chat server starts");

    let alice = AppUnderTest::launch(&django.base_url(), options(&django, &server))
        .await
        .expect("alice's app starts");
    alice
        .wait_displayed("#password-form")
        .await
        .expect("the workspace asks for a password: Confab's own form");
    assert!(
        !alice.is_displayed("#sign-in").await.expect("read #sign-in"),
        "no browser button under the password profile"
    );
    alice
        .submit_password("alice", "not-alices-password")
        .await
        .expect("the form takes a wrong password");
    let said = alice
        .wait_for_text("#password-error", "not right")
        .await
        .expect("a wrong password is told under the form");
    assert_eq!(
        alice
            .attr("#password-error", "data-code")
            .await
            .expect("code"),
        Some("wrong-credentials".to_owned()),
        "told: {said}"
    );
    assert!(
        !alice.data_dir().join("account.json").exists(),
        "a refused sign-in stores nothing"
    );
    alice
        .submit_password("alice", ALICE_PASSWORD)
        .await
        .expect("the form takes alice's password");
    alice
        .wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("alice is signed in, named by the backend");
    alice.wait_for_chat_screen().await.expect("alice chats");

    let bob = AppUnderTest::launch(&django.base_url(), options(&django, &server))
        .await
        .expect("bob's app starts");
    bob.submit_password("bob@example.test", BOB_PASSWORD)
        .await
        .expect("bob signs in by email");
    bob.wait_for_chat_screen().await.expect("bob chats");

    open_and_connect(&[("alice", &alice), ("bob", &bob)], "general").await;
    let before = django.stats().await.expect("stats");
    let sent = converse((&alice, &bob), ("alice", "bob"), CONVERSATION, EVERY).await;
    let during = django.stats().await.expect("stats");
    assert!(
        during.refresh_ok - before.refresh_ok >= CONVERSATION.as_secs() / 10,
        "both apps renewed their 10 s access tokens by SimpleJWT refresh during the conversation \
         ({} refreshes in {} s)",
        during.refresh_ok - before.refresh_ok,
        CONVERSATION.as_secs()
    );
    assert_eq!(
        during.refresh_refused, before.refresh_refused,
        "no refresh was ever refused (no rotated token replayed)"
    );
    let both = [("alice", &alice), ("bob", &bob)];
    assert_all_arrived(&both, &sent).await;
    assert_quiet(&both, "after the conversation").await;
    let from_alice = bob.bottom_rows().await.expect("bob's rows");
    assert!(
        from_alice.iter().any(
            |row| row.author.as_deref() == Some("alice") && row.shown_author == "Alice Example"
        ),
        "bob sees alice's display name from the backend: {from_alice:?}"
    );

    // Quit and start again: the stored refresh token signs alice in, no password asked.
    let logins = django.stats().await.expect("stats").login_ok;
    let home = alice.quit().await.expect("alice quits");
    let alice = AppUnderTest::launch_in(&django.base_url(), options(&django, &server), home)
        .await
        .expect("alice's app starts again");
    alice
        .wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("alice is signed in again without the form");
    alice
        .wait_for_chat_screen()
        .await
        .expect("alice chats again");
    let after = django.stats().await.expect("stats");
    assert_eq!(after.login_ok, logins, "no password login on restart");
    assert!(
        after.refresh_ok > during.refresh_ok,
        "the restart signed in by a SimpleJWT refresh"
    );

    for (who, app, password) in [
        ("alice", &alice, ALICE_PASSWORD),
        ("bob", &bob, BOB_PASSWORD),
    ] {
        let leaks = files_containing(app.home(), password.as_bytes());
        assert!(
            leaks.is_empty(),
            "{who}'s password is in no file of the app's HOME (log included): {leaks:?}"
        );
        let jwts = files_with_jwt(app.home());
        assert!(
            jwts.is_empty(),
            "no token (SimpleJWT or chat JWT) is in a file of {who}'s HOME: {jwts:?}"
        );
        let page = app.page_contents().await.expect("page contents");
        assert!(
            !page.contains(password) && !page.contains("eyJ"),
            "neither {who}'s password nor a token is in the page (DOM, storage)"
        );
    }
    alice.close().await.expect("alice's session ends");
    bob.close().await.expect("bob's session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_worded_nothing_is_stored_and_sign_out_blacklists() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let django = Django::start(DjangoOptions {
        login_rate: "4/m".to_owned(),
        ..DjangoOptions::default()
    })
    .await
    .expect("the Django backend starts");
    let server = ChatServer::start(&django.issuer())
        .await
        .expect("the chat server starts");
    let app = AppUnderTest::launch(&django.base_url(), options(&django, &server))
        .await
        .expect("the app starts");

    // Each attempt's refusal: its code and words under the form (cleared for the next one).
    let attempt = |login: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.submit_password(login, password)
                .await
                .expect("the form takes the attempt");
            let (code, text) = app
                .poll("the refusal under the form", || async {
                    let code = app.attr("#password-error", "data-code").await?;
                    let text = app.text_of("#password-error").await?;
                    Ok(code
                        .filter(|c| !c.is_empty() && !text.is_empty())
                        .map(|c| (c, text)))
                })
                .await
                .expect("the refusal is shown under the form");
            app.js("document.getElementById('password-error').dataset.code = '';")
                .await
                .expect("reset the code");
            (code, text)
        }
    };
    let (code, inactive) = attempt("carol", "carol-password").await;
    assert_eq!(code, "account-inactive", "{inactive}");
    assert!(inactive.contains("deactivated"), "{inactive}");
    let (code, wrong) = attempt("bob", "wrong").await;
    assert_eq!(code, "wrong-credentials", "{wrong}");
    assert!(wrong.contains("not right"), "{wrong}");
    let (code, _) = attempt("nobody@example.test", "x").await;
    assert_eq!(
        code, "wrong-credentials",
        "an unknown user reads like a wrong password"
    );
    // Four attempts a minute (django-ratelimit's fixed windows): the next is limited, or a few
    // later when a window boundary passed meanwhile. Wrong passwords only, so an attempt let
    // through never signs in.
    let mut limited = None;
    for _ in 0..6 {
        let (code, text) = attempt("bob", "wrong again").await;
        if code == "rate-limited" {
            limited = Some(text);
            break;
        }
        assert_eq!(code, "wrong-credentials", "{text}");
    }
    let limited = limited.expect("the rate limit is told within six more attempts");
    assert!(
        limited.starts_with("Too many attempts. Try again in ") && limited.ends_with(" s."),
        "the rate limit says how long to wait: {limited}"
    );
    assert!(
        !app.data_dir().join("account.json").exists(),
        "refused sign-ins store nothing"
    );
    assert_eq!(
        app.attr("#login", "value")
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
        "bob",
        "the login typed is kept for the next try"
    );
    assert_eq!(
        app.js("return document.getElementById('password').value;")
            .await
            .expect("read the password field"),
        serde_json::json!(""),
        "the password field is cleared at every attempt"
    );

    django.reset().await.expect("the rate limit starts afresh");
    app.submit_password("bob", "bob-password")
        .await
        .expect("bob signs in");
    app.wait_for_chat_screen().await.expect("bob chats");
    assert_eq!(
        django
            .live_refresh_tokens("bob")
            .await
            .expect("live tokens"),
        1,
        "bob's app holds one refresh token"
    );
    app.click("#user-menu-button").await.expect("open the menu");
    app.sign_out(false).await.expect("sign out");
    app.wait_displayed("#password-form")
        .await
        .expect("back to the form");
    app.poll("bob's refresh token blacklisted", || async {
        Ok((django.live_refresh_tokens("bob").await? == 0).then_some(()))
    })
    .await
    .expect("sign-out blacklists the refresh token: the backend refuses it afterwards");
    assert_eq!(django.stats().await.expect("stats").blacklist_ok, 1);

    // The backend down: told, nothing stored.
    django.stop().await.expect("the backend stops");
    app.submit_password("bob", "bob-password")
        .await
        .expect("the form takes the attempt");
    let down = app
        .poll("the backend down is told", || async {
            let code = app.attr("#password-error", "data-code").await?;
            Ok((code.as_deref() == Some("network"))
                .then_some(())
                .and(Some(app.text_of("#password-error").await?)))
        })
        .await
        .expect("a backend that is down is told");
    assert!(down.contains("could not be reached"), "{down}");
    assert!(!app.data_dir().join("account.json").exists());
    let leaks = files_containing(app.home(), b"bob-password");
    assert!(leaks.is_empty(), "no password in any file: {leaks:?}");
    app.close().await.expect("the session ends");
}
