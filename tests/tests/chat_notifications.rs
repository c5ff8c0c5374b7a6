//! E2E: desktop notifications. Alice's window is behind bob's (bob's window opens later and
//! takes the focus), so a message from bob reaches her as a desktop notification naming him and
//! the room, with the text. Her own message raises none, and after she turns notifications off
//! in the user menu, bob's next message raises none either. Debug builds write notifications to
//! `CONFAB_TEST_NOTIFY_FILE` (the test display has no notification daemon).

use std::path::Path;
use std::time::Duration;

use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

/// The notifications recorded so far, as (title, body).
fn notifications(file: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            (
                v["title"].as_str().unwrap_or_default().to_owned(),
                v["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_others_notify_while_the_window_is_in_the_background() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notifications.jsonl");
    let mut options = AppUnderTest::chat_options(&server, "alice");
    options
        .extra_env
        .push(("CONFAB_TEST_NOTIFY_FILE".into(), file.display().to_string()));
    let alice = AppUnderTest::launch(&idp.issuer(), options)
        .await
        .expect("alice's app starts");
    alice.sign_in_as("alice").await.expect("alice signs in");
    alice.wait_for_chat_screen().await.expect("chat screen");
    alice
        .open_room("general")
        .await
        .expect("alice opens general");

    // Bob's window opens last and takes the focus: alice's is in the background.
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob signs in");
    bob.open_room("general").await.expect("bob opens general");

    let first = "Are you there, alice? 5f2c";
    bob.send_message(first).await.expect("bob sends");
    alice
        .wait_for_message(first, None)
        .await
        .expect("alice receives bob's message");
    // The sender by the display name the server attested, not by their user id.
    let wanted = ("Bob Example in general".to_owned(), first.to_owned());
    let got = alice
        .poll_for(
            "a desktop notification for bob's message",
            Duration::from_secs(20),
            || async {
                let n = notifications(&file);
                Ok(n.contains(&wanted).then_some(n))
            },
        )
        .await
        .expect("a message from someone else raises a notification while the window is behind");
    assert_eq!(
        got,
        std::slice::from_ref(&wanted),
        "exactly one notification, naming the author and the room, with the text"
    );

    let own = "My own words never notify me 91ab";
    alice.send_message(own).await.expect("alice sends");
    bob.wait_for_message(own, None)
        .await
        .expect("bob receives alice's message");

    alice
        .click("#user-menu-button")
        .await
        .expect("open the menu");
    alice
        .click("#notify-toggle")
        .await
        .expect("turn notifications off");
    alice
        .poll("the toggle to say notifications are off", || async {
            let checked = alice.attr("#notify-toggle", "aria-checked").await?;
            Ok((checked.as_deref() == Some("false")).then_some(()))
        })
        .await
        .expect("the menu item shows notifications off");
    alice
        .poll_for(
            "the setting to be saved",
            Duration::from_secs(20),
            || async {
                let settings = std::fs::read_to_string(alice.data_dir().join("settings.json"))
                    .unwrap_or_default();
                Ok(settings.contains("\"notifications\": false").then_some(()))
            },
        )
        .await
        .expect("turning notifications off is saved in the app's settings");
    alice
        .screenshot("chat-notifications-off")
        .await
        .expect("screenshot");

    let second = "Still there? (no notification now) 77d0";
    bob.send_message(second).await.expect("bob sends again");
    alice
        .wait_for_message(second, None)
        .await
        .expect("alice receives bob's second message");
    // The core raises a notification before it hands the message to the page, and alice's own
    // message precedes bob's second one in the room's stream: with the second message in her
    // page, any notification for either would already be in the file.
    let after = notifications(&file);
    assert_eq!(
        after,
        [wanted],
        "no notification for the user's own message, and none once notifications are off"
    );
    bob.close().await.expect("bob's session ends");
    alice.close().await.expect("alice's session ends");
}
