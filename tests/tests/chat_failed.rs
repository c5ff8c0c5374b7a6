//! E2E: a message the server refuses for good is shown as failed, with a retry button, and is
//! never silently dropped or duplicated. Alice writes in a room she created while the server is
//! down; the server comes back having lost its data (the room no longer exists), so the publish
//! is refused: the row shows data-state=failed and a `.retry` button. Retrying keeps exactly one
//! row for the message.

use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_by_the_server_shows_failed_with_retry() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let mut server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let room = alice
        .create_room("Short-lived")
        .await
        .expect("alice creates a room");
    alice.open_room(&room).await.expect("alice opens it");
    alice
        .wait_for_connection("connected")
        .await
        .expect("alice is connected");

    server.stop();
    alice
        .wait_for_connection("reconnecting")
        .await
        .expect("with the server gone, the line says reconnecting");
    let text = "This room is about to vanish";
    alice.send_message(text).await.expect("send");
    alice
        .wait_for_message(text, Some("pending"))
        .await
        .expect("the message waits as pending while disconnected");

    server
        .restart_with_empty_db()
        .await
        .expect("the server comes back without its data");
    let failed = alice
        .wait_for_message(text, Some("failed"))
        .await
        .expect("a publish the server refuses (the room is gone) shows data-state=failed");
    assert!(
        failed.retry,
        "a failed message offers a .retry button: {failed:?}"
    );
    assert!(
        failed.own && failed.offset.is_none(),
        "the failed row is alice's own and was never delivered: {failed:?}"
    );
    alice.screenshot("chat-failed").await.expect("screenshot");

    let id = failed.id.clone().expect("an unsent own row has data-id");
    alice
        .click(&format!(".msg[data-id=\"{id}\"] .retry"))
        .await
        .expect("the retry button is clickable");
    let again = alice
        .wait_for_message(text, Some("failed"))
        .await
        .expect("retrying in a room that no longer exists fails again");
    assert_eq!(
        again.id.as_deref(),
        Some(id.as_str()),
        "the retried message keeps its client id (it is the same message, not a copy)"
    );
    let history = alice.all_rows().await.expect("history");
    assert_eq!(
        history.count_text(text),
        1,
        "retrying never duplicates the message: {:?}",
        history.texts()
    );
    alice.close().await.expect("the session ends");
}
