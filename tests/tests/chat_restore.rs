//! E2E: a restart returns alice to where she was. She opens a room she created (not the default
//! one), says something, types a draft and quits once the draft is on disk. Started again in the
//! same HOME (new bus and keyring daemon, same files), the app signs her in silently (no
//! browser: no authorization URL opened, no authorization request or code exchange at the IdP),
//! opens the same room with its history, and the composer holds the draft.

use confab_e2e::{assert_unreadable_on_disk, AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

const DRAFT: &str = "Draft that must survive a restart 7d1f";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_user_last_room_and_draft_without_a_browser() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let options = AppUnderTest::chat_options(&server, "alice");

    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let room = alice
        .create_room("Restore Lab")
        .await
        .expect("alice creates a room");
    alice.open_room(&room).await.expect("alice opens it");
    let said = "Something said before the restart";
    alice.send_message(said).await.expect("send");
    alice
        .wait_for_message(said, Some("sent"))
        .await
        .expect("the message is sent");
    alice.type_draft(DRAFT).await.expect("type a draft");

    // The draft is saved after a debounce; wait until it is durable (the composer says so),
    // in the account's encrypted store: nothing of the chat is readable in the data dir.
    alice
        .wait_for_draft_saved()
        .await
        .expect("a typed draft is saved without sending it");
    assert_unreadable_on_disk(&alice.data_dir(), &[DRAFT, said, "Restore Lab"]);
    alice
        .screenshot("chat-draft-before-restart")
        .await
        .expect("screenshot");
    let url_file = alice.opened_url_file().to_path_buf();
    let home = alice.quit().await.expect("the app quits");

    // Forget the sign-in URL opened before, so any browser opened by the restart shows up.
    std::fs::remove_file(&url_file).expect("the first sign-in wrote the opened-URL file");
    let stats_before = idp.stats().await.expect("stats");

    let alice = AppUnderTest::launch_in(&idp.issuer(), options, home)
        .await
        .expect("the app starts again in the same HOME");
    alice
        .wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("the restart restores the signed-in user");
    alice
        .wait_for_chat_screen()
        .await
        .expect("the chat screen is shown");
    alice
        .wait_for_open_room(&room)
        .await
        .expect("the last open room is open again after the restart");
    alice
        .wait_for_text("#room-title", "Restore Lab")
        .await
        .expect("the room title names the restored room");
    alice
        .poll("the draft in the composer", || async {
            Ok((alice.composer_value().await? == DRAFT).then_some(()))
        })
        .await
        .expect("the composer holds the draft typed before the restart");
    alice
        .wait_for_message(said, Some("sent"))
        .await
        .expect("the room's history is there after the restart");
    alice.screenshot("chat-restored").await.expect("screenshot");

    let stats = idp.stats().await.expect("stats");
    assert_eq!(
        stats.authorization_requests, stats_before.authorization_requests,
        "the restart never sent alice to the authorization endpoint (no browser)"
    );
    assert_eq!(
        stats.authorization_code_requests, stats_before.authorization_code_requests,
        "the restart exchanged no authorization code"
    );
    assert!(
        !url_file.exists(),
        "the restart opened no URL in the browser"
    );
    assert_eq!(
        alice.chat_error_count().await.expect("read"),
        0,
        "the restore shows no error"
    );
    alice.close().await.expect("the session ends");
}
