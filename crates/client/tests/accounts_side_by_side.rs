//! Two accounts run side by side in one core, each with its own token manager, relay, stores
//! and room book; the UI hears only the active one, and signing out of one leaves the other
//! running. Against the real test IdP, a real Stronghold vault and the reference chat server.

#[path = "../../relay/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use confab_client::account;
use confab_client::UiEvent;
use serde_json::Value;

use support::app::{start_core, App, WAIT};
use support::chat::{messages_with, record_chat, wait_json};

async fn wait_notified(app: &mut App, body: &str) {
    let found = tokio::time::timeout(
        WAIT,
        app.notified
            .wait_for(|all| all.iter().any(|(_, b)| b == body)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(
        found,
        "timed out waiting for a notification of {body:?}; shown: {:?}",
        app.notified.borrow()
    );
}

/// Who the chat channel says it is for, last.
fn shown_user(events: &[Value]) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "session")
        .and_then(|e| e["me"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_run_side_by_side_and_sign_out_of_one_leaves_the_other() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = common::start_idp(Duration::from_secs(300)).await;
    let server = common::TestServer::start(common::server_config(
        &idp,
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let mut app = start_core(&idp, dir.path(), &server.url());
    let core = app.core.clone().expect("core");
    let mut chat = record_chat(&app);
    app.flow.open_vault().await;
    app.unlock().await;
    core.window_focused(false); // notifications are shown for others' messages

    // Alice signs in; her chat opens #general.
    app.sign_in_as("alice").await;
    wait_json("alice's chat session", &mut chat, 0, |e| {
        e["type"] == "session"
    })
    .await;
    let alice = shown_user(&chat.borrow()).expect("alice's user id");
    wait_json("#general for alice", &mut chat, 0, |e| {
        e["type"] == "room-reset" && e["room"] == "general"
    })
    .await;

    // Bob signs in beside her: the UI now shows bob; alice's chat keeps running.
    let before_bob = chat.borrow().len();
    app.sign_in_as("bob").await;
    wait_json("bob's chat session", &mut chat, before_bob, |e| {
        e["type"] == "session" && e["me"] != alice.as_str()
    })
    .await;
    let bob = shown_user(&chat.borrow()).expect("bob's user id");
    assert_ne!(alice, bob);
    wait_json("#general for bob", &mut chat, before_bob, |e| {
        e["type"] == "room-reset" && e["room"] == "general"
    })
    .await;
    assert!(chat.borrow().len() > before_bob);
    assert_eq!(
        app.flow.current_user().and_then(|u| u.name).as_deref(),
        Some("Bob Example")
    );

    // Bob writes in #general. Alice's relay gets it too: her account notifies (it is not
    // hers); the UI shows it once, as bob's own, never a second copy from alice's relay.
    core.chat
        .send_message("general", "hello from bob")
        .await
        .expect("bob sends");
    wait_notified(&mut app, "hello from bob").await;
    // A second message through the same pipelines: once its notification is shown, alice's
    // relay has handled the first one completely (one event at a time, in order).
    core.chat
        .send_message("general", "and again")
        .await
        .expect("bob sends again");
    wait_notified(&mut app, "and again").await;
    wait_json("bob's message in the UI", &mut chat, before_bob, |e| {
        e["type"] == "message" && e["text"] == "and again"
    })
    .await;
    let shown = messages_with(&chat.borrow(), "hello from bob");
    assert_eq!(shown.len(), 1, "one copy in the UI: {shown:?}");
    assert_eq!(shown[0]["own"], true, "shown as bob's own message");
    let notified_for: Vec<String> = app
        .notified
        .borrow()
        .iter()
        .filter(|(_, b)| b == "hello from bob")
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(
        notified_for.len(),
        1,
        "only alice's account notifies: {notified_for:?}"
    );

    // Bob signs out: his chat stops; alice's never did, and the UI shows her again (her
    // chat and her name; she is the remembered account now). His token is revoked.
    let before_sign_out = chat.borrow().len();
    let ui_before = app.events.borrow().len();
    app.flow.sign_out().await.expect("bob signs out");
    wait_json(
        "alice's chat shown again",
        &mut chat,
        before_sign_out,
        |e| e["type"] == "session" && e["me"] == alice.as_str(),
    )
    .await;
    assert_eq!(
        app.flow.current_user().and_then(|u| u.name).as_deref(),
        Some("Alice Example")
    );
    assert!(
        app.events.borrow()[ui_before..]
            .iter()
            .all(|e| !matches!(e, UiEvent::SignedOut { .. })),
        "no sign-in screen while an account is still signed in"
    );
    assert_eq!(
        account::load(&app.data_dir).map(|a| a.subject),
        Some(alice.clone())
    );
    assert_eq!(app.flow.accounts().len(), 1);
    let bob_tokens = common::IdpTokens::login(idp.clone(), "bob").await;
    let outside = common::Client::start(
        common::relay_config(&server.url(), &dir.path().join("outside-outbox.sqlite3")),
        bob_tokens,
    );
    outside
        .relay
        .send("general", "bob from elsewhere")
        .await
        .expect("sent");
    wait_notified(&mut app, "bob from elsewhere").await;
    wait_json(
        "bob's message in alice's view",
        &mut chat,
        before_sign_out,
        |e| e["type"] == "message" && e["text"] == "bob from elsewhere",
    )
    .await;
    let seen = messages_with(&chat.borrow(), "bob from elsewhere");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["own"], false, "in alice's view it is bob's message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_of_an_account_not_shown_ends_without_touching_the_shown_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Short tokens: a revoked grant is noticed at the next refresh, within seconds.
    let idp = common::start_idp(Duration::from_secs(4)).await;
    let server = common::TestServer::start(common::server_config(
        &idp,
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let mut app = start_core(&idp, dir.path(), &server.url());
    let mut chat = record_chat(&app);
    app.flow.open_vault().await;
    app.unlock().await;
    app.sign_in_as("alice").await;
    wait_json("alice's chat session", &mut chat, 0, |e| {
        e["type"] == "session"
    })
    .await;
    let alice = shown_user(&chat.borrow()).expect("alice's user id");
    app.sign_in_as("bob").await;
    let bob_shown = chat.borrow().len();
    wait_json("bob's chat session", &mut chat, 0, |e| {
        e["type"] == "session" && e["me"] != alice.as_str()
    })
    .await;
    assert_eq!(app.flow.accounts().len(), 2);
    let ui_before = app.events.borrow().len();

    // The provider ends alice's session (an administrator revoked her grants).
    idp.revoke_grants(&alice)
        .await
        .expect("revoke alice's grants");
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.flow.accounts().len() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's session did not end: {:?}",
            app.flow.accounts()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Bob, on screen, notices nothing: no sign-in screen, no chat change; he stays remembered.
    assert_eq!(
        app.flow.current_user().and_then(|u| u.name).as_deref(),
        Some("Bob Example")
    );
    assert!(
        app.events.borrow()[ui_before..]
            .iter()
            .all(|e| !matches!(e, UiEvent::SignedOut { .. } | UiEvent::SignedIn { .. })),
        "the sign-in channel says nothing of alice: {:?}",
        &app.events.borrow()[ui_before..]
    );
    assert!(
        chat.borrow()[bob_shown..]
            .iter()
            .all(|e| e["state"] != "signed-out" && e["type"] != "session"),
        "the chat channel says nothing of alice"
    );
    assert_eq!(
        account::load(&app.data_dir).map(|a| a.subject).as_deref(),
        Some("bob")
    );
    assert!(app.flow.has_session());
}
