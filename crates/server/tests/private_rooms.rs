//! Private rooms: only members and invited users see them, joining needs an invitation, and a
//! member who leaves or is removed stops receiving the room at once (unsubscribe push, code
//! 2000) and can no longer read, publish or subscribe. Public rooms keep working as before.

mod common;

use common::*;
use confab_protocol::ErrorCode;
use confab_testkit::{Idp, IdpOptions};
use serde_json::{json, Value};

async fn rpc(c: &mut Client, method: &str, data: Value) -> confab_protocol::Reply {
    c.call(json!({"rpc": {"method": method, "data": data}}))
        .await
}

fn listed(r: &confab_protocol::Reply) -> Vec<Value> {
    r.rpc
        .as_ref()
        .and_then(|r| r.data.as_ref())
        .and_then(|d| d["rooms"].as_array().cloned())
        .unwrap_or_default()
}

fn ids(rooms: &[Value]) -> Vec<&str> {
    rooms.iter().filter_map(|r| r["id"].as_str()).collect()
}

#[tokio::test]
async fn private_rooms_are_invite_only_and_removal_takes_effect_at_once() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let alice_token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let bob_token = idp.login("bob").await.expect("login").access_token.clone();
    let mut alice = Client::connected(&server.url, &alice_token).await;
    let mut bob = Client::connected(&server.url, &bob_token).await;

    let r = rpc(
        &mut alice,
        "rooms.create",
        json!({"id": "secret", "name": "Secret", "private": true}),
    )
    .await;
    assert_eq!(
        r.rpc
            .and_then(|r| r.data)
            .map(|d| d["room"]["private"].clone()),
        Some(json!(true))
    );
    rpc(
        &mut alice,
        "rooms.create",
        json!({"id": "open", "name": "Open"}),
    )
    .await;
    let sub = alice
        .call(json!({"subscribe": {"channel": "room:secret"}}))
        .await;
    assert!(sub.subscribe.is_some(), "the owner subscribes");
    alice
        .call(json!({"publish": {"channel": "room:secret", "data": chat("before bob")}}))
        .await;

    // Bob: the private room is invisible and behaves as if it did not exist.
    let rooms = listed(&rpc(&mut bob, "rooms.list", json!({})).await);
    assert_eq!(
        ids(&rooms),
        vec!["general", "open"],
        "bob sees the public rooms only"
    );
    for (what, reply) in [
        (
            "join",
            rpc(&mut bob, "rooms.join", json!({"id": "secret"})).await,
        ),
        (
            "subscribe",
            bob.call(json!({"subscribe": {"channel": "room:secret"}}))
                .await,
        ),
        (
            "history",
            bob.call(json!({"history": {"channel": "room:secret", "limit": -1}}))
                .await,
        ),
        (
            "members",
            rpc(&mut bob, "rooms.members", json!({"id": "secret"})).await,
        ),
        (
            "invite",
            rpc(
                &mut bob,
                "rooms.invite",
                json!({"id": "secret", "user": "bob"}),
            )
            .await,
        ),
    ] {
        assert_eq!(
            error_code(&reply),
            Some(ErrorCode::UNKNOWN_CHANNEL),
            "{what} of a private room bob is not in: 102, as for a missing room"
        );
    }
    let r = bob
        .call(json!({"publish": {"channel": "room:secret", "data": chat("intruder")}}))
        .await;
    assert!(r.error.is_some(), "bob cannot publish there");

    // Invited, bob sees it, joins (the invitation is used up) and reads it.
    let r = rpc(
        &mut alice,
        "rooms.invite",
        json!({"id": "secret", "user": "bob"}),
    )
    .await;
    assert!(r.error.is_none(), "{:?}", r.error);
    let rooms = listed(&rpc(&mut bob, "rooms.list", json!({})).await);
    let secret = rooms
        .iter()
        .find(|r| r["id"] == "secret")
        .expect("listed once invited");
    assert_eq!(
        (secret["invited"].clone(), secret["member"].clone()),
        (json!(true), json!(false))
    );
    let r = rpc(&mut bob, "rooms.join", json!({"id": "secret"})).await;
    assert!(r.error.is_none(), "an invited user joins: {:?}", r.error);
    let sub = bob
        .call(json!({"subscribe": {"channel": "room:secret"}}))
        .await;
    assert_eq!(sub.subscribe.map(|s| s.offset), Some(1));
    let r = rpc(&mut bob, "rooms.members", json!({"id": "secret"})).await;
    let data = r.rpc.and_then(|r| r.data).expect("members");
    assert_eq!(data["members"], json!(["alice", "bob"]));
    assert_eq!(data["owner"], "alice");

    // Only the owner removes; the removed member's subscription ends at once.
    let r = rpc(
        &mut bob,
        "rooms.remove",
        json!({"id": "secret", "user": "alice"}),
    )
    .await;
    assert_eq!(error_code(&r), Some(ErrorCode::PERMISSION_DENIED));
    let r = rpc(
        &mut alice,
        "rooms.remove",
        json!({"id": "secret", "user": "bob"}),
    )
    .await;
    assert!(r.error.is_none(), "{:?}", r.error);
    let push = bob.next_push().await;
    assert_eq!(push.channel, "room:secret");
    let unsub = push.unsubscribe.expect("an unsubscribe push");
    assert_eq!(
        (unsub.code, unsub.reason.as_str()),
        (2000, "removed from the room")
    );
    alice
        .call(json!({"publish": {"channel": "room:secret", "data": chat("after bob")}}))
        .await;
    assert!(
        bob.try_next_push(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "nothing of the room reaches bob after his removal"
    );
    let again = bob
        .call(json!({"subscribe": {"channel": "room:secret"}}))
        .await;
    assert_eq!(error_code(&again), Some(ErrorCode::UNKNOWN_CHANNEL));
    let join = rpc(&mut bob, "rooms.join", json!({"id": "secret"})).await;
    assert_eq!(
        error_code(&join),
        Some(ErrorCode::UNKNOWN_CHANNEL),
        "no invitation left"
    );
    assert!(!ids(&listed(&rpc(&mut bob, "rooms.list", json!({})).await)).contains(&"secret"));

    // Leaving: bob leaves the public room; its subscription ends the same way.
    rpc(&mut bob, "rooms.join", json!({"id": "open"})).await;
    bob.call(json!({"subscribe": {"channel": "room:open"}}))
        .await;
    let r = rpc(&mut bob, "rooms.leave", json!({"id": "open"})).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    let push = bob.next_push().await;
    assert_eq!(
        push.unsubscribe.map(|u| (u.code, u.reason)),
        Some((2000, "left the room".to_owned()))
    );
    let r = bob
        .call(json!({"publish": {"channel": "room:open", "data": chat("gone")}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::PERMISSION_DENIED),
        "a public room says 103"
    );
    let r = rpc(&mut bob, "rooms.join", json!({"id": "open"})).await;
    assert!(r.error.is_none(), "a public room can be joined again");
    let r = rpc(&mut bob, "rooms.leave", json!({"id": "general"})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::BAD_REQUEST),
        "default rooms cannot be left"
    );
    for bad in [
        json!({"id": "secret", "user": ""}),
        json!({"id": "secret", "user": "a\nb"}),
    ] {
        let r = rpc(&mut alice, "rooms.invite", bad.clone()).await;
        assert_eq!(error_code(&r), Some(ErrorCode::BAD_REQUEST), "{bad}");
    }
}
