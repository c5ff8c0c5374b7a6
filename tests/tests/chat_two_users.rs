//! E2E: two app instances (separate HOMEs, data dirs, session buses, keyrings and drivers) sign
//! in as alice and bob through the deep-link flow, meet in the server's default room `general`,
//! and talk in turns: each sees both sides of the conversation in order, each message exactly
//! once, own messages marked as own and sent. Then alice creates a room, bob joins it through the
//! new-room dialog, and they talk there too.

use confab_e2e::conversation::open_and_connect;
use confab_e2e::{AppUnderTest, ChatServer, Sweep};
use confab_testkit::{Idp, IdpOptions};

/// Checks a room's whole history against the conversation, as `viewer` sees it.
fn assert_conversation(viewer: &str, history: &Sweep, expected: &[(&str, String)]) {
    assert!(
        history.duplicates.is_empty(),
        "{viewer}: no message row is rendered twice at the same time: {:?}",
        history.duplicates
    );
    let texts: Vec<&str> = history.rows.iter().map(|r| r.text.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts, want,
        "{viewer} sees every message of the conversation, in the order it was sent, exactly once"
    );
    let offsets: Vec<u64> = history.rows.iter().filter_map(|r| r.offset).collect();
    assert_eq!(
        offsets.len(),
        history.rows.len(),
        "{viewer}: every message is delivered (has data-offset)"
    );
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "{viewer}: rows are in offset order: {offsets:?}"
    );
    for (row, (author, text)) in history.rows.iter().zip(expected) {
        assert_eq!(
            row.author.as_deref(),
            Some(*author),
            "{viewer}: {text:?} is attributed to its author"
        );
        let display = match *author {
            "alice" => "Alice Example",
            "bob" => "Bob Example",
            other => other,
        };
        assert_eq!(
            row.shown_author, display,
            "{viewer}: {text:?} shows its author's display name, attested by the server"
        );
        assert_eq!(
            row.own,
            *author == viewer,
            "{viewer}: {text:?} is marked own exactly when {viewer} wrote it"
        );
        if row.own {
            assert_eq!(
                row.state.as_deref(),
                Some("sent"),
                "{viewer}: an own delivered message shows data-state=sent"
            );
        }
    }
    assert_eq!(
        history.last_offset,
        offsets.last().copied(),
        "{viewer}: #messages data-last-offset is the offset of the newest message"
    );
    assert_eq!(
        history.count,
        Some(expected.len() as u64),
        "{viewer}: #messages data-count is the number of messages loaded"
    );
}

/// Sends `text` from `from` and waits until both `from` (sent) and `to` show it.
async fn say(from: &AppUnderTest, to: &AppUnderTest, text: &str) {
    from.send_message(text)
        .await
        .expect("Enter in the composer sends the message");
    from.wait_for_message(text, Some("sent"))
        .await
        .expect("the sender's own message becomes sent");
    to.wait_for_message(text, None)
        .await
        .expect("the other user receives the message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_talk_in_general_and_in_a_new_room() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts (cargo build -p confab-server --bin confab-server)");

    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice's app starts and she signs in through the deep-link flow");
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob's app (a second instance with its own HOME) starts and he signs in");
    alice
        .wait_for_room("general")
        .await
        .expect("alice's room list has the default room general");
    bob.wait_for_room("general")
        .await
        .expect("bob's room list has the default room general");
    alice
        .screenshot("chat-room-list")
        .await
        .expect("screenshot");

    open_and_connect(&[("alice", &alice), ("bob", &bob)], "general").await;
    assert!(
        !alice.is_displayed("#connection").await.expect("read"),
        "the connection line is hidden while connected"
    );

    let mut talk: Vec<(&str, String)> = Vec::new();
    for turn in 1..=3 {
        let line = format!("Hi bob, this is alice ({turn})");
        say(&alice, &bob, &line).await;
        talk.push(("alice", line));
        let line = format!("Hello alice, bob here ({turn})");
        say(&bob, &alice, &line).await;
        talk.push(("bob", line));
    }
    // Shift+Enter adds a line instead of sending; Enter then sends both lines as one message.
    let two_lines = "Two lines from bob:\nthis is the second";
    // (Each send-keys call releases Shift at its end.)
    bob.composer_keys("Two lines from bob:\u{E008}\u{E007}")
        .await
        .expect("type the first line and Shift+Enter");
    bob.composer_keys("this is the second")
        .await
        .expect("type the second line");
    assert_eq!(
        bob.composer_value().await.expect("read the composer"),
        two_lines,
        "Shift+Enter adds a line in the composer and does not send"
    );
    bob.composer_keys("\u{E007}").await.expect("press Enter");
    bob.wait_for_message(two_lines, Some("sent"))
        .await
        .expect("Enter sends the two-line message as one message");
    alice
        .wait_for_message(two_lines, None)
        .await
        .expect("alice receives both lines in one message");
    talk.push(("bob", two_lines.to_owned()));
    alice
        .screenshot("chat-room-view")
        .await
        .expect("screenshot");
    bob.screenshot("chat-room-view-bob")
        .await
        .expect("screenshot");

    let a = alice.all_rows().await.expect("alice's history");
    let b = bob.all_rows().await.expect("bob's history");
    assert_conversation("alice", &a, &talk);
    assert_conversation("bob", &b, &talk);
    let a_offsets: Vec<_> = a.rows.iter().map(|r| r.offset).collect();
    let b_offsets: Vec<_> = b.rows.iter().map(|r| r.offset).collect();
    assert_eq!(
        a_offsets, b_offsets,
        "both users see the same messages at the same offsets"
    );

    // --- a room created by alice, joined by bob through the dialog ---
    let room = alice
        .create_room("Project Kite")
        .await
        .expect("alice creates a room through the new-room dialog");
    alice.open_room(&room).await.expect("alice opens her room");
    alice
        .wait_for_text("#room-title", "Project Kite")
        .await
        .expect("the room title names the open room");
    bob.open_room_dialog()
        .await
        .expect("bob opens the new-room dialog");
    let join = format!("#room-dialog .join-room[data-room=\"{room}\"]");
    bob.wait_displayed(&join)
        .await
        .expect("bob's dialog offers to join alice's new room");
    bob.screenshot("chat-room-dialog")
        .await
        .expect("screenshot");
    bob.click(&join).await.expect("bob joins alice's room");
    bob.wait_for_room(&room)
        .await
        .expect("the joined room is in bob's room list");
    bob.open_room(&room)
        .await
        .expect("bob opens the joined room");

    let mut kite: Vec<(&str, String)> = Vec::new();
    let line = "Welcome to the kite project".to_owned();
    say(&alice, &bob, &line).await;
    kite.push(("alice", line));
    let line = "Thanks, glad to be here".to_owned();
    say(&bob, &alice, &line).await;
    kite.push(("bob", line));
    assert_conversation("alice", &alice.all_rows().await.expect("history"), &kite);
    assert_conversation("bob", &bob.all_rows().await.expect("history"), &kite);

    // general kept its conversation (nothing leaked between rooms)
    bob.open_room("general")
        .await
        .expect("bob goes back to general");
    assert_conversation("bob", &bob.all_rows().await.expect("history"), &talk);

    assert_eq!(
        alice.chat_error_count().await.expect("read"),
        0,
        "nothing went wrong for alice (#chat-error data-count stays 0)"
    );
    assert_eq!(
        bob.chat_error_count().await.expect("read"),
        0,
        "nothing went wrong for bob (#chat-error data-count stays 0)"
    );
    alice.close().await.expect("alice's session ends");
    bob.close().await.expect("bob's session ends");
}
