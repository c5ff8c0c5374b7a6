//! E2E: private rooms in two real app windows. Alice creates a private room (the new-room
//! dialog's default); bob cannot see it among the rooms to join, next to a public one he can.
//! Alice invites bob from the room's People dialog; bob sees the invitation, joins and reads
//! alice's message. Alice removes him: his copy of the room closes at once, with the reason, and
//! the room is gone from his list.

use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_invite_only_and_a_removed_member_loses_it_at_once() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob signs in");

    let lobby = alice.create_room("Lobby").await.expect("a public room");
    let plans = alice
        .create_private_room("Plans")
        .await
        .expect("a private room");
    alice.open_room(&plans).await.expect("alice opens it");
    alice
        .send_message("Only for the invited")
        .await
        .expect("alice writes there");

    // Bob's rooms to join list the public room, never the private one.
    bob.open_room_dialog().await.expect("bob's new-room dialog");
    bob.wait_displayed(&format!("#join-list .join-room[data-room=\"{lobby}\"]"))
        .await
        .expect("the public room is there to join");
    assert!(
        !bob.is_displayed(&format!("#join-list .join-room[data-room=\"{plans}\"]"))
            .await
            .expect("query"),
        "the private room is not listed for bob"
    );
    bob.click("#room-dialog-close").await.expect("close");

    // Alice invites bob by his user id.
    alice.click("#room-menu-button").await.expect("room menu");
    alice.click("#room-people").await.expect("people dialog");
    alice
        .wait_displayed("#member-list .member[data-user=\"alice\"]")
        .await
        .expect("alice is listed as a member");
    alice
        .type_into("#invite-user-input", "bob")
        .await
        .expect("type bob");
    alice.click("#invite-send").await.expect("invite");
    let status = alice
        .poll("the invitation is confirmed", || async {
            let t = alice.text_of("#invite-status").await?;
            Ok(t.contains("Invited bob").then_some(t))
        })
        .await
        .expect("invited");
    assert!(status.contains("Invited bob"), "{status:?}");

    // Bob sees the invitation and joins.
    bob.open_room_dialog().await.expect("bob's dialog again");
    let invited = format!("#join-list .join-room[data-room=\"{plans}\"][data-invited=\"true\"]");
    bob.wait_displayed(&invited)
        .await
        .expect("the private room shows as an invitation");
    bob.click(&invited).await.expect("join");
    bob.wait_for_room(&plans).await.expect("in bob's room list");
    bob.wait_for_open_room(&plans).await.expect("opened");
    bob.wait_for_message("Only for the invited", None)
        .await
        .expect("bob reads the room");
    bob.screenshot("chat-private-joined")
        .await
        .expect("screenshot");

    // Alice removes bob: his room closes at once and is gone from his list.
    alice
        .click("#people-dialog-close")
        .await
        .expect("close the dialog listed before bob joined");
    alice.click("#room-menu-button").await.expect("room menu");
    alice.click("#room-people").await.expect("people dialog");
    let remove = "#member-list .member[data-user=\"bob\"] .remove-member";
    alice
        .wait_displayed(remove)
        .await
        .expect("bob is listed, with Remove for the owner");
    alice.click(remove).await.expect("remove bob");
    bob.poll("bob's copy of the room closes", || async {
        let gone = !bob
            .is_displayed(&format!("#room-list .room[data-room=\"{plans}\"]"))
            .await?;
        let text = bob.chat_error_text().await?;
        Ok((gone && text.contains("removed from the room")).then_some(()))
    })
    .await
    .expect("the room leaves bob's list and he is told why");
    let open = bob
        .client
        .execute(
            "return document.getElementById('messages').dataset.room || ''",
            vec![],
        )
        .await
        .expect("read #messages");
    assert_ne!(
        open.as_str(),
        Some(plans.as_str()),
        "the removed room is no longer open for bob"
    );
    bob.screenshot("chat-private-removed")
        .await
        .expect("screenshot");
}
