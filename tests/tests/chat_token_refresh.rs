//! E2E: access tokens that live 15 s (the IdP's `access_ttl`) and a two-minute conversation
//! between alice and bob, a message every four seconds in turns. Tokens expire eight times over;
//! the apps must refresh them (and the chat connection's token) without the user noticing: no
//! error (`#chat-error` data-count stays 0), no connection line (`#connection` data-episodes
//! stays 0), and every message arrives, in order, once.

use std::time::Duration;

use confab_e2e::conversation::{assert_all_arrived, assert_quiet, converse, open_and_connect};
use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

const ACCESS_TTL_SECS: u64 = 15;
const CONVERSATION: Duration = Duration::from_secs(120);
const EVERY: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_conversation_with_15_second_tokens_shows_no_error_or_reconnect() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions {
        access_ttl: Duration::from_secs(ACCESS_TTL_SECS),
        ..IdpOptions::default()
    })
    .await
    .expect("the test IdP starts with 15 s access tokens");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob signs in");
    open_and_connect(&[("alice", &alice), ("bob", &bob)], "general").await;
    let refreshes_before = idp.stats().await.expect("stats").refresh_requests;

    let sent = converse((&alice, &bob), ("alice", "bob"), CONVERSATION, EVERY).await;
    alice
        .screenshot("chat-after-token-refreshes")
        .await
        .expect("screenshot");

    let refreshes = idp.stats().await.expect("stats").refresh_requests - refreshes_before;
    assert!(
        refreshes >= 2 * (CONVERSATION.as_secs() / ACCESS_TTL_SECS / 2),
        "the apps really renewed their 15 s tokens during the conversation (each at least every \
         other lifetime); the IdP saw only {refreshes} refresh requests"
    );
    let in_dom = alice.bottom_rows().await.expect("rows").len();
    assert!(
        in_dom < sent.len(),
        "a long room renders only the visible rows ({in_dom} of {} messages in the DOM)",
        sent.len()
    );
    let both = [("alice", &alice), ("bob", &bob)];
    assert_all_arrived(&both, &sent).await;
    assert_quiet(&both, "at the end").await;
    alice.close().await.expect("alice's session ends");
    bob.close().await.expect("bob's session ends");
}
