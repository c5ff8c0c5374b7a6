//! E2E: a returning user starts with the chat server down. Alice talked in a room she made and
//! quit; bob said something there while she was away; then the server went down. Started again
//! (same HOME), the app opens her last room from its encrypted history cache with no chat
//! server at all; a message she sends waits in the outbox; her draft is kept. Nothing of it is
//! readable in the data dir or the app's logs, and the store refuses a key other than its own. Once the server is back her message is delivered once and bob's
//! message arrives by the server's recovery from the position the app saved: the server sees a
//! recovering subscription and no page load for the room.

use std::sync::Arc;
use std::time::Duration;

use confab_e2e::{assert_unreadable_on_disk, AppUnderTest, ChatServer};
use confab_protocol::Token;
use confab_relay::{RelayConfig, RelayHandle, StaticToken};
use confab_testkit::{Idp, IdpOptions};

const BEFORE: &str = "Said before the outage 41c9";
const MISSED: &str = "Bob said this while alice was away 41c9";
const QUEUED: &str = "Written while the server is down 41c9";
const DRAFT: &str = "A draft typed offline 41c9";
const ROOM_NAME: &str = "Offline Lab 41c9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_user_reads_offline_and_what_was_missed_is_recovered() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let mut server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let options = AppUnderTest::chat_options(&server, "alice");
    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let room = alice.create_room(ROOM_NAME).await.expect("create a room");
    alice.open_room(&room).await.expect("open it");
    alice.send_message(BEFORE).await.expect("send");
    alice
        .wait_for_message(BEFORE, Some("sent"))
        .await
        .expect("the message is sent");
    let home = alice.quit().await.expect("the app quits");

    // Bob joins and talks while alice is away.
    let bob_dir = tempfile::tempdir().expect("temp dir");
    let token = idp
        .login("bob")
        .await
        .expect("bob logs in")
        .access_token
        .clone();
    let (bob, _events) = RelayHandle::start(
        RelayConfig::builder(server.url(), bob_dir.path().join("outbox.sqlite3")).build(),
        Arc::new(StaticToken::new(Token::new(token))),
    )
    .expect("bob's relay starts");
    bob.join_room(&room).await.expect("bob joins");
    bob.send(&room, MISSED).await.expect("bob sends");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !bob.outbox().await.expect("outbox").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob's message is sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.shutdown().await;

    // The chat server goes down; alice starts again.
    server.stop();
    let log_before = server.log().len();
    let alice = AppUnderTest::launch_in(&idp.issuer(), options, home)
        .await
        .expect("the app starts again in the same HOME");
    alice.wait_for_chat_screen().await.expect("the chat screen");
    alice
        .wait_for_open_room(&room)
        .await
        .expect("the last room is open again");
    alice
        .wait_for_message(BEFORE, Some("sent"))
        .await
        .expect("its history is shown from the cache without the chat server");
    assert_ne!(
        alice.connection_state().await.expect("read").as_deref(),
        Some("connected"),
        "shown while offline"
    );
    alice.send_message(QUEUED).await.expect("send offline");
    alice
        .wait_for_message(QUEUED, Some("pending"))
        .await
        .expect("the message waits in the outbox");
    alice.type_draft(DRAFT).await.expect("type a draft");
    alice
        .wait_for_draft_saved()
        .await
        .expect("the draft is saved");
    alice.screenshot("offline-start").await.expect("screenshot");
    assert_unreadable_on_disk(&alice.data_dir(), &[BEFORE, QUEUED, DRAFT, ROOM_NAME]);
    // The app's own directory under the data home (its logs: the auth log, the app log) holds
    // none of it either.
    let app_home = alice.home().join(".local/share/dev.confab.chat");
    assert!(
        app_home.join("logs").is_dir(),
        "the logs are where they are looked for"
    );
    assert_unreadable_on_disk(&app_home, &[BEFORE, QUEUED, DRAFT, ROOM_NAME]);
    // The account's store opens only with its key (kept in the vault).
    let stores: Vec<_> = std::fs::read_dir(alice.data_dir().join("chat"))
        .expect("the accounts' directories")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join(confab_store::STORE_FILE))
        .collect();
    assert_eq!(stores.len(), 1, "one account, one store: {stores:?}");
    assert!(
        matches!(
            confab_store::AccountStore::open_existing(
                &stores[0],
                &confab_store::StoreKey::generate(),
                confab_store::StoreOptions::default(),
            ),
            Err(confab_store::Error::Unreadable { .. })
        ),
        "the store refuses another key"
    );

    // The server is back: the queued message is delivered once, bob's arrives by recovery.
    server
        .restart()
        .await
        .expect("the chat server starts again");
    alice
        .wait_for_message_within(QUEUED, Some("sent"), Duration::from_secs(60))
        .await
        .expect("the queued message is delivered");
    alice
        .wait_for_message(MISSED, None)
        .await
        .expect("bob's message is recovered");
    let rows = alice.all_rows().await.expect("rows");
    assert_eq!(rows.count_text(QUEUED), 1, "delivered once");
    assert_eq!(rows.count_text(MISSED), 1, "recovered once");
    assert_eq!(
        rows.count_text(BEFORE),
        1,
        "the cached history is not repeated"
    );
    let log = &server.log()[log_before..];
    let channel = format!("channel=room:{room}");
    assert!(
        log.lines().any(|l| l.contains("subscribed")
            && l.contains(&channel)
            && l.contains("recovered=true")),
        "the server saw a recovering subscription for the room:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("history page") && l.contains(&channel)),
        "and no page load of it:\n{log}"
    );
    alice.close().await.expect("the session ends");
}
