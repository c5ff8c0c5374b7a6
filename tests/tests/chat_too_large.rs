//! E2E: a room holding a message too large for the app (2 MB, stored before the server limited
//! text) never locks the app into reconnecting. Opening the room says in the room that its
//! messages could not be loaded, with Retry, while the connection stays up; once newer messages
//! push the large one out of the latest page, Retry loads the room, and the older page that
//! holds it fails alone: the top row says so, with a Retry of its own.

use confab_e2e::{AppUnderTest, ChatServer};
use confab_protocol::ClientInfo;
use confab_server::store::Store;
use confab_testkit::{Idp, IdpOptions};
use serde_json::json;

fn append(db: &std::path::Path, text: &str, n: u64) {
    let store = Store::open(db, 1_000).expect("the server's database opens");
    let info = ClientInfo {
        user: "mallory".into(),
        client: "old-client".into(),
        ..ClientInfo::default()
    };
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let data = json!({"id": id, "author": "mallory", "text": text, "ts": 1_700_000_000_000u64 + n});
    store
        .append(
            "room:general",
            Some(&id),
            &data,
            &info,
            1_700_000_000_000 + i64::try_from(n).unwrap_or(0),
        )
        .expect("appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_too_large_to_load_says_so_with_retry_and_keeps_the_connection() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let mut server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    server.stop();
    append(&server.db(), &"x".repeat(2 * 1024 * 1024), 1);
    server.restart().await.expect("the server comes back");

    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    alice
        .wait_for_connection("connected")
        .await
        .expect("alice is connected");
    alice
        .open_room("general")
        .await
        .expect("alice opens general");
    alice
        .wait_displayed("#messages .history-failed .room-retry")
        .await
        .expect("the room says its messages could not be loaded, with Retry");
    let text = alice
        .text_of("#messages .history-failed")
        .await
        .expect("the failure row's text");
    assert!(
        text.contains("too large") && text.contains("Trying again in"),
        "the row says why and when the app tries again: {text:?}"
    );
    alice
        .screenshot("chat-too-large")
        .await
        .expect("screenshot");

    // Newer messages: the latest page no longer holds the large one.
    for n in 2..=60 {
        append(&server.db(), &format!("newer message {n}"), n);
    }
    alice
        .click("#messages .room-retry")
        .await
        .expect("Retry is clickable");
    alice
        .wait_for_message("newer message 60", None)
        .await
        .expect("Retry loads the room's latest page");
    assert!(
        !alice
            .is_displayed("#messages .history-failed")
            .await
            .expect("query"),
        "the failure row is gone once the page loaded"
    );

    // Up to the oldest: the page with the large message fails alone, with its own Retry.
    alice
        .client
        .execute("document.getElementById('messages').scrollTop = 0", vec![])
        .await
        .expect("scroll to the top");
    alice
        .wait_displayed("#messages .history-older-failed .older-retry")
        .await
        .expect("the older page says it could not be loaded, with Retry");
    let text = alice
        .text_of("#messages .history-older-failed")
        .await
        .expect("the older row's text");
    assert!(text.contains("too large"), "{text:?}");
    assert_eq!(
        alice
            .connection_episodes()
            .await
            .expect("connection episodes"),
        0,
        "the connection never dropped: no reconnect loop"
    );
    alice
        .wait_for_connection("connected")
        .await
        .expect("still connected");
}
