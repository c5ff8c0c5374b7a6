//! Replies are capped in bytes: a full room's history, a recovering subscribe and the room list
//! all fit the reply cap, so no stored data can make a client's reply too large to receive.

mod common;

use common::*;
use confab_protocol::ErrorCode;
use confab_testkit::{Idp, IdpOptions};
use serde_json::{json, Value};

async fn alice(
    idp: &Idp,
    tweak: impl FnOnce(&mut confab_server::Config),
    dir: &std::path::Path,
) -> (TestServer, String) {
    let mut config = test_config(&idp.issuer_str(), dir);
    config.commands_per_second = 10_000;
    tweak(&mut config);
    let server = TestServer::start(config).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    (server, token)
}

fn reply_bytes(r: &confab_protocol::Reply) -> usize {
    serde_json::to_string(r).expect("reply serializes").len()
}

/// The whole history of a full room (every stored message of the largest size) is asked for
/// at once: the reply stays under the cap, newest first, and recovery that would not fit says
/// `recovered: false` instead of sending it all.
#[tokio::test]
async fn a_full_room_answers_within_the_reply_cap() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, token) = alice(&idp, |c| c.history_size = 120, dir.path()).await;
    let cap = confab_protocol::DEFAULT_MAX_REPLY_BYTES;
    let mut c = Client::connected(&server.url, &token).await;
    let largest = "😀".repeat(4000);
    let sub = c
        .call(json!({"subscribe": {"channel": "room:general", "recoverable": true}}))
        .await;
    let epoch = sub.subscribe.expect("subscribed").epoch;
    // Pipelined: the writer commits them in batches.
    let mut ids = Vec::new();
    for _ in 0..130 {
        ids.push(
            c.send_cmd(json!({"publish": {"channel": "room:general", "data": chat(&largest)}}))
                .await,
        );
    }
    for id in ids {
        assert!(c.reply_to(id).await.publish.is_some(), "stored");
    }

    let mut fresh = Client::connected(&server.url, &token).await;
    let r = fresh
        .call(json!({"history": {"channel": "room:general", "limit": -1}}))
        .await;
    let bytes = reply_bytes(&r);
    let h = r.history.expect("history");
    assert!(
        bytes <= cap + 1024,
        "everything of a full room is {bytes} bytes, within the {cap}-byte cap"
    );
    assert!(
        !h.publications.is_empty() && h.publications.len() < 120,
        "the reply is cut by bytes: {} publications",
        h.publications.len()
    );
    assert_eq!(
        h.publications.first().map(|p| p.offset),
        Some(11),
        "forward history starts at the oldest retained message"
    );

    // Recovery of all 130 missed: too large, so not recovered and nothing sent.
    let r = fresh
        .call(
            json!({"subscribe": {"channel": "room:general", "recover": true,
            "epoch": epoch, "offset": 10}}),
        )
        .await;
    let bytes = reply_bytes(&r);
    let s = r.subscribe.expect("subscribed");
    assert!(!s.recovered, "recovery beyond the cap is refused");
    assert!(s.publications.is_empty(), "and carries no publications");
    assert!(bytes < 4096, "the reply is small: {bytes} bytes");
    assert_eq!(s.offset, 130, "the client learns the top to page from");

    // Recovery of the last five fits and is complete.
    let mut again = Client::connected(&server.url, &token).await;
    let r = again
        .call(
            json!({"subscribe": {"channel": "room:general", "recover": true,
            "epoch": s.epoch, "offset": 125}}),
        )
        .await;
    let s = r.subscribe.expect("subscribed");
    assert!(s.recovered, "a recovery that fits is made");
    assert_eq!(
        s.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
        vec![126, 127, 128, 129, 130]
    );
}

/// 2,000 rooms with the longest names: `rooms.list` answers in pages under the cap, and
/// following `next` lists every room exactly once. Room creation is capped per user and in total.
#[tokio::test]
async fn the_room_list_is_paged_and_room_creation_is_capped() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, token) = alice(
        &idp,
        |c| {
            c.max_rooms_per_user = 2_000;
            c.max_rooms_total = 2_002;
        },
        dir.path(),
    )
    .await;
    let mut c = Client::connected(&server.url, &token).await;
    let long_name: String = "😀".repeat(100);
    let mut ids = Vec::new();
    for i in 0..2_000 {
        let id = format!("{i:04}-{}", "r".repeat(59));
        ids.push(
            c.send_cmd(json!({"rpc": {"method": "rooms.create",
                "data": {"id": id, "name": long_name}}}))
                .await,
        );
    }
    for id in ids {
        let r = c.reply_to(id).await;
        assert!(r.error.is_none(), "room created: {:?}", r.error);
    }

    let mut all = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = match &after {
            Some(a) => json!({"after": a}),
            None => json!({}),
        };
        let r = c
            .call(json!({"rpc": {"method": "rooms.list", "data": data}}))
            .await;
        let bytes = reply_bytes(&r);
        assert!(
            bytes <= confab_protocol::DEFAULT_MAX_REPLY_BYTES,
            "a page of rooms is {bytes} bytes"
        );
        let data = r.rpc.and_then(|r| r.data).expect("rooms.list data");
        let rooms = data["rooms"].as_array().expect("rooms").clone();
        assert!(
            rooms.len() <= 100,
            "a page holds at most 100 rooms by default"
        );
        all.extend(
            rooms
                .iter()
                .map(|r| r["id"].as_str().unwrap_or("").to_owned()),
        );
        pages += 1;
        match data.get("next").and_then(Value::as_str) {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 2_001, "every room (2,000 and general) is listed");
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "no room is listed twice");
    assert_eq!(pages, 21, "2,001 rooms in pages of 100");

    let r = c
        .call(json!({"rpc": {"method": "rooms.list", "data": {"limit": 200}}}))
        .await;
    let data = r.rpc.and_then(|r| r.data).expect("rooms.list data");
    assert_eq!(data["rooms"].as_array().map(Vec::len), Some(200));
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 201}),
        json!({"after": 5}),
    ] {
        let r = c
            .call(json!({"rpc": {"method": "rooms.list", "data": bad}}))
            .await;
        assert_eq!(error_code(&r), Some(ErrorCode::BAD_REQUEST), "{bad}");
    }

    // Per-user cap reached: 106 with a reason.
    let r = c
        .call(json!({"rpc": {"method": "rooms.create", "data": {"name": "One more"}}}))
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::LIMIT_EXCEEDED));
    let message = r.error.map(|e| e.message).unwrap_or_default();
    assert!(message.contains("you have created"), "{message}");

    // Another user creates one, then the server is full.
    let bob = idp.login("bob").await.expect("login").access_token.clone();
    let mut b = Client::connected(&server.url, &bob).await;
    let r = b
        .call(json!({"rpc": {"method": "rooms.create", "data": {"name": "Bob's"}}}))
        .await;
    assert!(r.error.is_none(), "{:?}", r.error);
    let r = b
        .call(json!({"rpc": {"method": "rooms.create", "data": {"name": "Bob's second"}}}))
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::LIMIT_EXCEEDED));
    let message = r.error.map(|e| e.message).unwrap_or_default();
    assert!(message.contains("this server holds"), "{message}");
}
