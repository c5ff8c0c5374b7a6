//! E2E: the chat server goes away (killed) while alice and bob are in `general`. Alice's
//! connection line says reconnecting; a message she sends meanwhile shows as pending. The server
//! comes back on the same port with the same database: the line clears, the message is
//! delivered exactly once (one row, state sent), nothing said before is lost, and bob sees it
//! once too.

use confab_e2e::conversation::open_and_connect;
use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_server_is_down_is_delivered_once_when_it_returns() {
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
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob signs in");
    open_and_connect(&[("alice", &alice), ("bob", &bob)], "general").await;

    let before = ["Before the outage: alice", "Before the outage: bob"];
    alice.send_message(before[0]).await.expect("send");
    bob.wait_for_message(before[0], None)
        .await
        .expect("bob gets alice's message");
    bob.send_message(before[1]).await.expect("send");
    alice
        .wait_for_message(before[1], None)
        .await
        .expect("alice gets bob's message");

    // --- the server goes away ---
    server.stop();
    alice
        .wait_for_connection("reconnecting")
        .await
        .expect("with the server gone, alice's connection line says reconnecting");
    assert!(
        alice.is_displayed("#connection").await.expect("read"),
        "the connection line is visible while reconnecting"
    );
    let line = alice
        .wait_for_text("#connection", "")
        .await
        .expect("the connection line has text");
    assert!(
        line.to_lowercase().contains("reconnect"),
        "the connection line tells the user it is reconnecting: {line:?}"
    );
    alice
        .screenshot("chat-reconnecting")
        .await
        .expect("screenshot");

    let offline_text = "Sent while the server was down";
    alice
        .send_message(offline_text)
        .await
        .expect("the composer takes a message while disconnected");
    let pending = alice
        .wait_for_message(offline_text, Some("pending"))
        .await
        .expect("a message typed while disconnected shows data-state=pending");
    assert!(
        pending.own && pending.offset.is_none(),
        "the pending row is alice's own and not yet delivered (no data-offset): {pending:?}"
    );
    alice.screenshot("chat-pending").await.expect("screenshot");

    // --- the server comes back ---
    server
        .restart()
        .await
        .expect("the server starts again on the same port with the same database");
    alice
        .wait_for_connection("connected")
        .await
        .expect("alice's app reconnects to the restarted server");
    alice
        .poll("the connection line to hide after reconnecting", || async {
            Ok((!alice.is_displayed("#connection").await?).then_some(()))
        })
        .await
        .expect("the connection line clears once connected again");
    let sent = alice
        .wait_for_message(offline_text, Some("sent"))
        .await
        .expect("the pending message is delivered after the server returns");
    assert!(
        sent.offset.is_some(),
        "the delivered message has its server offset: {sent:?}"
    );
    bob.wait_for_message(offline_text, None)
        .await
        .expect("bob receives the message sent during the outage");
    alice
        .screenshot("chat-reconnected")
        .await
        .expect("screenshot");

    // One more message each way: the connection works normally again.
    let after = "After the outage: bob";
    bob.send_message(after).await.expect("send");
    alice
        .wait_for_message(after, None)
        .await
        .expect("alice gets bob's message after the outage");

    let want = [before[0], before[1], offline_text, after];
    for (who, app) in [("alice", &alice), ("bob", &bob)] {
        let history = app.all_rows().await.expect("history");
        assert!(
            history.duplicates.is_empty(),
            "{who}: no row is rendered twice: {:?}",
            history.duplicates
        );
        assert_eq!(
            history.count_text(offline_text),
            1,
            "{who}: the message sent during the outage is shown exactly once: {:?}",
            history.texts()
        );
        assert_eq!(
            history.texts(),
            want,
            "{who}: nothing said before, during or after the outage is lost, and the order holds"
        );
        assert!(
            history.rows.iter().all(|r| r.offset.is_some()),
            "{who}: every message is delivered (has data-offset)"
        );
    }
    for (who, app) in [("alice", &alice), ("bob", &bob)] {
        assert_eq!(
            app.chat_error_count().await.expect("read #chat-error"),
            0,
            "{who}: a dropped connection is told by the connection line only, not as an error \
             (#chat-error data-count stays 0; text: {:?})",
            app.chat_error_text().await.unwrap_or_default()
        );
    }
    let row = alice
        .all_rows()
        .await
        .expect("history")
        .rows
        .into_iter()
        .find(|r| r.text == offline_text)
        .expect("the row is there");
    assert_eq!(
        row.state.as_deref(),
        Some("sent"),
        "the outage message's row ends in state sent"
    );
    alice.close().await.expect("alice's session ends");
    bob.close().await.expect("bob's session ends");
}
