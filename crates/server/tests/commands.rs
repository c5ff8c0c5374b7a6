//! Every command against a real server with real IdP tokens: rooms RPC, membership,
//! subscribe/publish/history/presence, idempotent publish, join/leave, recovery.

mod common;

use common::*;
use confab_protocol::{ErrorCode, Publication};
use confab_testkit::{Idp, IdpOptions};
use serde_json::{json, Value};

fn offsets(pubs: &[Publication]) -> Vec<u64> {
    pubs.iter().map(|p| p.offset).collect()
}

#[tokio::test]
async fn rooms_membership_publish_history_presence() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let alice_tokens = idp.login("alice").await.expect("alice logs in");
    let bob_tokens = idp.login("bob").await.expect("bob logs in");
    let mut alice = Client::connected(&server.url, &alice_tokens.access_token).await;
    let mut bob = Client::connected(&server.url, &bob_tokens.access_token).await;

    // RPC: list, create, join, unknown method.
    let r = alice.call(json!({"rpc": {"method": "rooms.list"}})).await;
    let rooms = r.rpc.and_then(|r| r.data).expect("rooms.list returns data");
    assert_eq!(
        rooms["rooms"][0]["id"], "general",
        "the default room is listed"
    );
    assert_eq!(
        rooms["rooms"][0]["member"], true,
        "every user is a member of the default rooms"
    );
    let r = alice
        .call(json!({"rpc": {"method": "rooms.create", "data": {"id": "team", "name": "Team"}}}))
        .await;
    assert_eq!(
        r.rpc.and_then(|r| r.data).map(|d| d["room"]["id"].clone()),
        Some(json!("team")),
        "rooms.create returns the room"
    );
    let r = bob
        .call(json!({"rpc": {"method": "rooms.create", "data": {"id": "team", "name": "Again"}}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::BAD_REQUEST),
        "creating an existing room is a bad request"
    );
    let r = bob
        .call(json!({"rpc": {"method": "rooms.create", "data": {"id": "no spaces", "name": "x"}}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::BAD_REQUEST),
        "invalid room ids are refused"
    );
    let r = bob.call(json!({"rpc": {"method": "rooms.delete"}})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::METHOD_NOT_FOUND),
        "unknown rpc method is 104"
    );
    let r = bob
        .call(json!({"rpc": {"method": "rooms.join", "data": {"id": "nope"}}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::UNKNOWN_CHANNEL),
        "joining an unknown room is 102"
    );

    // Membership is checked on subscribe, publish, history and presence.
    let r = bob
        .call(json!({"subscribe": {"channel": "room:team"}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::PERMISSION_DENIED),
        "subscribing to a room one is not a member of is 103"
    );
    let r = bob
        .call(json!({"publish": {"channel": "room:team", "data": chat("sneaky")}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::PERMISSION_DENIED),
        "publishing into a room one is not a member of is 103"
    );
    let r = bob
        .call(json!({"history": {"channel": "room:team", "limit": -1}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::PERMISSION_DENIED),
        "reading history of a room one is not a member of is 103"
    );
    let r = bob
        .call(json!({"presence": {"channel": "room:team"}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::PERMISSION_DENIED),
        "presence of a room one is not a member of is 103"
    );
    let r = bob.call(json!({"subscribe": {"channel": "news:x"}})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::UNKNOWN_CHANNEL),
        "non-room channels are 102"
    );
    let r = bob
        .call(json!({"subscribe": {"channel": "room:missing"}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::UNKNOWN_CHANNEL),
        "rooms that do not exist are 102"
    );

    // Alice subscribes with join/leave; Bob joins and subscribes: Alice sees the join.
    let r = alice
        .call(json!({"subscribe": {"channel": "room:team", "join_leave": true}}))
        .await;
    let sub = r
        .subscribe
        .unwrap_or_else(|| panic!("member subscribes, got {:?}", r.error));
    assert!(
        sub.recoverable && sub.positioned && !sub.epoch.is_empty(),
        "room streams are recoverable and positioned with an epoch"
    );
    assert_eq!(sub.offset, 0, "a new room starts at offset 0");
    let own = alice.next_push().await;
    assert_eq!(
        own.join.map(|j| j.info.user),
        Some("alice".to_owned()),
        "with join/leave on, the subscriber hears its own join, as Centrifugo sends it"
    );
    let r = alice
        .call(json!({"subscribe": {"channel": "room:team"}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::ALREADY_SUBSCRIBED),
        "subscribing twice is 105"
    );
    let r = bob
        .call(json!({"rpc": {"method": "rooms.join", "data": {"id": "team"}}}))
        .await;
    assert!(r.rpc.is_some(), "bob joins the room");
    let r = bob
        .call(json!({"subscribe": {"channel": "room:team"}}))
        .await;
    assert!(r.subscribe.is_some(), "after joining, bob can subscribe");
    let push = alice.next_push().await;
    assert_eq!(
        push.join.map(|j| j.info.user),
        Some("bob".to_owned()),
        "alice gets a join push naming bob"
    );

    // Presence.
    let r = bob
        .call(json!({"presence": {"channel": "room:team"}}))
        .await;
    let users: Vec<String> = r
        .presence
        .expect("presence result")
        .presence
        .values()
        .map(|i| i.user.clone())
        .collect();
    assert!(
        users.contains(&"alice".to_owned()) && users.contains(&"bob".to_owned()),
        "presence lists both subscribers"
    );
    let r = bob
        .call(json!({"presence_stats": {"channel": "room:team"}}))
        .await;
    let stats = r.presence_stats.expect("presence_stats result");
    assert_eq!(
        (stats.num_clients, stats.num_users),
        (2, 2),
        "presence stats count clients and users"
    );

    // Publish: both subscribers get it with its offset; author is the authenticated user.
    let msg = json!({"id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "author": "mallory", "text": "hello", "ts": 42});
    let r = bob
        .call(json!({"publish": {"channel": "room:team", "data": msg}}))
        .await;
    let ack = r
        .publish
        .unwrap_or_else(|| panic!("member publishes, got {:?}", r.error));
    assert_eq!(ack.offset, 1, "the first publication gets offset 1");
    assert_eq!(ack.epoch, sub.epoch, "publish ack carries the stream epoch");
    for (who, c) in [("alice", &mut alice), ("bob", &mut bob)] {
        let p = c.next_push().await;
        let publication = p
            .publication
            .unwrap_or_else(|| panic!("{who} receives the publication push"));
        assert_eq!(publication.offset, 1, "{who}'s push carries the offset");
        assert_eq!(
            publication.data["text"], "hello",
            "{who}'s push carries the data"
        );
        assert_eq!(
            publication.data["author"], "bob",
            "the server sets author to the authenticated user, not the client's claim"
        );
        assert_eq!(
            publication.info.map(|i| i.user),
            Some("bob".to_owned()),
            "publication info names the publisher"
        );
    }

    // Idempotent retry: same client message id → same offset, no second broadcast.
    let r = bob
        .call(json!({"publish": {"channel": "room:team", "data": msg}}))
        .await;
    assert_eq!(
        r.publish.map(|p| p.offset),
        Some(1),
        "a retried publish returns the original offset"
    );
    let r = bob
        .call(json!({"publish": {"channel": "room:team", "data": chat("second")}}))
        .await;
    assert_eq!(
        r.publish.map(|p| p.offset),
        Some(2),
        "the next new message gets offset 2"
    );
    let p = alice
        .next_push()
        .await
        .publication
        .expect("publication push");
    assert_eq!(
        p.offset, 2,
        "the retry was not broadcast again: the next push alice sees is offset 2"
    );
    let r = bob
        .call(json!({"publish": {"channel": "room:team", "data": {"text": "no id"}}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::BAD_REQUEST),
        "publication data that is not a chat message is 107"
    );

    for i in 3..=5 {
        let r = alice
            .call(json!({"publish": {"channel": "room:team", "data": chat(&format!("m{i}"))}}))
            .await;
        assert_eq!(r.publish.map(|p| p.offset), Some(i), "offsets grow by one");
    }
    for i in 3..=5 {
        let p = alice
            .next_push()
            .await
            .publication
            .expect("publication push");
        assert_eq!(p.offset, i, "pushes arrive in offset order");
    }

    // History: limit, since, reverse, position only, wrong epoch.
    let h = bob
        .call(json!({"history": {"channel": "room:team", "limit": -1}}))
        .await
        .history
        .expect("history");
    assert_eq!(
        (offsets(&h.publications), h.offset, h.epoch.clone()),
        (vec![1, 2, 3, 4, 5], 5, sub.epoch.clone()),
        "full history, oldest first, with top offset and epoch"
    );
    let h = bob
        .call(json!({"history": {"channel": "room:team", "limit": 2}}))
        .await
        .history
        .expect("history");
    assert_eq!(offsets(&h.publications), vec![1, 2], "limit caps the count");
    let h = bob
        .call(json!({"history": {"channel": "room:team", "limit": 2, "reverse": true}}))
        .await
        .history
        .expect("history");
    assert_eq!(
        offsets(&h.publications),
        vec![5, 4],
        "reverse returns newest first"
    );
    let h = bob.call(json!({"history": {"channel": "room:team", "limit": -1, "since": {"offset": 3, "epoch": sub.epoch}}})).await.history.expect("history");
    assert_eq!(
        offsets(&h.publications),
        vec![4, 5],
        "since returns publications after the position"
    );
    let h = bob.call(json!({"history": {"channel": "room:team", "limit": 10, "since": {"offset": 3, "epoch": sub.epoch}, "reverse": true}})).await.history.expect("history");
    assert_eq!(
        offsets(&h.publications),
        vec![2, 1],
        "reverse with since returns older publications, newest first"
    );
    let h = bob
        .call(json!({"history": {"channel": "room:team"}}))
        .await
        .history
        .expect("history");
    assert!(
        h.publications.is_empty() && h.offset == 5,
        "limit 0 returns only the stream position"
    );
    let r = bob.call(json!({"history": {"channel": "room:team", "limit": -1, "since": {"offset": 1, "epoch": "other"}}})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::UNRECOVERABLE_POSITION),
        "a position from another epoch is 112"
    );

    // Unsubscribe: alice sees bob leave; bob no longer gets publications.
    let r = bob
        .call(json!({"unsubscribe": {"channel": "room:team"}}))
        .await;
    assert!(
        r.unsubscribe.is_some(),
        "unsubscribe replies with an empty result"
    );
    let push = alice.next_push().await;
    assert_eq!(
        push.leave.map(|l| l.info.user),
        Some("bob".to_owned()),
        "alice gets a leave push naming bob"
    );

    // send is accepted without a reply; ping replies; sub_refresh is not available.
    bob.send_text(r#"{"send":{"data":{"hello":1}}}"#).await;
    let r = bob.call(json!({"ping": {}})).await;
    assert!(
        r.ping.is_some() && r.error.is_none(),
        "send is accepted cleanly and the connection keeps working; ping replies"
    );
    let r = bob
        .call(json!({"sub_refresh": {"channel": "room:team", "token": "x"}}))
        .await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::NOT_AVAILABLE),
        "sub_refresh is 108 not available"
    );

    // Batches: several commands in one frame get their replies.
    bob.send_text(
        "{\"id\":100,\"ping\":{}}\n{\"id\":101,\"presence_stats\":{\"channel\":\"room:team\"}}",
    )
    .await;
    assert!(
        bob.reply_to(100).await.ping.is_some(),
        "first command of a batch is answered"
    );
    assert!(
        bob.reply_to(101).await.presence_stats.is_some(),
        "second command of a batch is answered"
    );

    // Disconnect leaves: alice's presence drops when she closes.
    alice.close().await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let stats = bob
            .call(json!({"presence_stats": {"channel": "room:team"}}))
            .await
            .presence_stats
            .expect("presence_stats");
        if stats.num_clients == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed connection leaves presence"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn recovery_returns_exactly_the_missed_publications_or_says_it_failed() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.history_size = 5;
    let server = TestServer::start(config).await;
    let alice_t = idp.login("alice").await.expect("login");
    let bob_t = idp.login("bob").await.expect("login");
    let mut alice = Client::connected(&server.url, &alice_t.access_token).await;
    let mut bob = Client::connected(&server.url, &bob_t.access_token).await;
    bob.call(json!({"rpc": {"method": "rooms.join", "data": {"id": "general"}}}))
        .await;
    let sub = bob
        .call(json!({"subscribe": {"channel": "room:general"}}))
        .await
        .subscribe
        .expect("bob subscribes");
    for i in 1..=2 {
        alice
            .call(
                json!({"publish": {"channel": "room:general", "data": chat(&format!("seen {i}"))}}),
            )
            .await;
    }
    let mut last = 0;
    for _ in 0..2 {
        last = bob
            .next_push()
            .await
            .publication
            .expect("live publication")
            .offset;
    }
    assert_eq!(last, 2, "bob saw offsets 1 and 2 live");
    bob.close().await;
    for i in 3..=5 {
        alice.call(json!({"publish": {"channel": "room:general", "data": chat(&format!("missed {i}"))}})).await;
    }

    let mut bob = Client::connected(&server.url, &bob_t.access_token).await;
    let r = bob.call(json!({"subscribe": {"channel": "room:general", "recover": true, "offset": last, "epoch": sub.epoch}})).await;
    let res = r.subscribe.expect("recovering subscribe succeeds");
    assert!(
        res.was_recovering && res.recovered,
        "recovery within retained history succeeds"
    );
    assert_eq!(
        offsets(&res.publications),
        vec![3, 4, 5],
        "exactly the missed publications are returned, in order"
    );
    assert_eq!(res.offset, 5, "result carries the new top offset");
    bob.call(json!({"unsubscribe": {"channel": "room:general"}}))
        .await;

    let r = bob.call(json!({"subscribe": {"channel": "room:general", "recover": true, "offset": 5, "epoch": "stale-epoch"}})).await;
    let res = r
        .subscribe
        .expect("subscribe with a stale epoch still subscribes");
    assert!(
        res.was_recovering && !res.recovered && res.publications.is_empty(),
        "a position from another epoch is reported as not recovered"
    );
    bob.call(json!({"unsubscribe": {"channel": "room:general"}}))
        .await;

    // An empty epoch means the current one, as in Centrifugo (its SDKs send it so).
    let r = bob.call(json!({"subscribe": {"channel": "room:general", "recover": true, "offset": 4, "epoch": ""}})).await;
    let res = r.subscribe.expect("subscribe succeeds");
    assert!(
        res.recovered && offsets(&res.publications) == vec![5],
        "recovery with an empty epoch recovers from the current stream: {res:?}"
    );
    bob.call(json!({"unsubscribe": {"channel": "room:general"}}))
        .await;
    let r = bob.call(json!({"history": {"channel": "room:general", "limit": 10, "since": {"offset": 3, "epoch": ""}}})).await;
    assert_eq!(
        offsets(
            &r.history
                .expect("history since an empty epoch")
                .publications
        ),
        vec![4, 5],
        "history since an empty epoch reads the current stream"
    );

    for i in 6..=12 {
        alice.call(json!({"publish": {"channel": "room:general", "data": chat(&format!("flood {i}"))}})).await;
    }
    let r = bob.call(json!({"subscribe": {"channel": "room:general", "recover": true, "offset": 2, "epoch": sub.epoch}})).await;
    let res = r.subscribe.expect("subscribe succeeds");
    assert!(
        !res.recovered && res.publications.is_empty(),
        "recovery past the retained history (5) says recovered:false instead of returning a gap"
    );
    let h = bob
        .call(json!({"history": {"channel": "room:general", "limit": -1}}))
        .await
        .history
        .expect("history");
    assert_eq!(
        offsets(&h.publications),
        vec![8, 9, 10, 11, 12],
        "history keeps only the newest history_size publications"
    );
    let r = bob.call(json!({"history": {"channel": "room:general", "limit": -1, "since": {"offset": 2, "epoch": sub.epoch}}})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::UNRECOVERABLE_POSITION),
        "history since a trimmed position is 112"
    );
}

/// Group commit and pipelining: publishes sent back to back by two connections into one room
/// are all acknowledged with distinct, gap-free offsets, each connection's in its own command
/// order; a repeated message id inside the same batch is stored once; a `history` sent right
/// after the publishes (same frame) already sees every one of them; a subscriber gets each
/// publication once, in offset order.
#[tokio::test]
async fn pipelined_publishes_from_two_connections_commit_in_order_and_once() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.commands_per_second = 100_000;
    let server = TestServer::start(config).await;
    let alice_tokens = idp.login("alice").await.expect("alice logs in");
    let bob_tokens = idp.login("bob").await.expect("bob logs in");
    let mut alice = Client::connected(&server.url, &alice_tokens.access_token).await;
    let mut bob = Client::connected(&server.url, &bob_tokens.access_token).await;
    let mut watcher = Client::connected(&server.url, &bob_tokens.access_token).await;
    let r = watcher
        .call(json!({"subscribe": {"channel": "room:general"}}))
        .await;
    assert!(r.subscribe.is_some(), "the watcher subscribes: {r:?}");

    const PER: u32 = 100;
    let frame = |who: &str, repeated: &Value| {
        let mut lines: Vec<String> = (0..PER)
            .map(|i| {
                // Commands 10 and 50 carry the same message id: stored once.
                let data = if i == 10 || i == 50 {
                    repeated.clone()
                } else {
                    chat(&format!("{who} {i}"))
                };
                json!({"id": 1000 + i, "publish": {"channel": "room:general", "data": data}})
                    .to_string()
            })
            .collect();
        lines.push(
            json!({"id": 5000, "history": {"channel": "room:general", "limit": -1}}).to_string(),
        );
        lines.join("\n")
    };
    let (alice_msg, bob_msg) = (chat("alice repeated"), chat("bob repeated"));
    alice.send_text(&frame("alice", &alice_msg)).await;
    bob.send_text(&frame("bob", &bob_msg)).await;

    let mut all = Vec::new();
    for (name, client) in [("alice", &mut alice), ("bob", &mut bob)] {
        let mut acked = Vec::new();
        for i in 0..PER {
            let r = client.reply_to(1000 + i).await;
            let ack = r.publish.unwrap_or_else(|| {
                panic!("{name}'s publish {i} is acknowledged, got {:?}", r.error)
            });
            acked.push(ack.offset);
        }
        assert_eq!(
            acked[50], acked[10],
            "{name}: a message id repeated within one pipelined run gets the original offset"
        );
        let mut unique = acked.clone();
        unique.remove(50);
        assert!(
            unique.windows(2).all(|w| w[0] < w[1]),
            "{name}: a connection's publications are stored in its command order: {acked:?}"
        );
        let history = client.reply_to(5000).await.history.expect("history result");
        let seen: std::collections::HashSet<u64> =
            offsets(&history.publications).into_iter().collect();
        assert!(
            unique.iter().all(|o| seen.contains(o)),
            "{name}: a history command after publishes sees all of them"
        );
        all.extend(unique);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=u64::from(2 * (PER - 1))).collect();
    assert_eq!(
        all, expected,
        "offsets of both connections are distinct and without gaps (one per distinct message)"
    );

    let mut pushed = Vec::new();
    while pushed.len() < expected.len() {
        let push = watcher.next_push().await;
        if let Some(p) = push.publication {
            pushed.push(p.offset);
        }
    }
    assert_eq!(
        pushed, expected,
        "the subscriber gets every publication once, in offset order"
    );
    assert!(
        watcher
            .try_next_push(std::time::Duration::from_millis(300))
            .await
            .and_then(|p| p.publication)
            .is_none(),
        "no publication is pushed twice"
    );
}

/// A publish is idempotent for its author only: another user reusing the id gets 107 naming
/// the conflict instead of an acknowledgement of someone else's message (which dropped their
/// text while their client said "sent").
#[tokio::test]
async fn a_message_id_is_idempotent_for_its_author_only() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let alice_tokens = idp.login("alice").await.expect("alice logs in");
    let bob_tokens = idp.login("bob").await.expect("bob logs in");
    let mut alice = Client::connected(&server.url, &alice_tokens.access_token).await;
    let mut bob = Client::connected(&server.url, &bob_tokens.access_token).await;

    let id = uuid::Uuid::new_v4();
    let mine = json!({"id": id, "author": "", "text": "alice's words", "ts": 1});
    let r = alice
        .call(json!({"publish": {"channel": "room:general", "data": mine}}))
        .await;
    let offset = r.publish.map(|p| p.offset).expect("stored");
    let r = alice
        .call(json!({"publish": {"channel": "room:general", "data": mine}}))
        .await;
    assert_eq!(
        r.publish.map(|p| p.offset),
        Some(offset),
        "her own retry is acknowledged with the original offset"
    );

    let theirs = json!({"id": id, "author": "", "text": "bob's words", "ts": 2});
    let r = bob
        .call(json!({"publish": {"channel": "room:general", "data": theirs}}))
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::BAD_REQUEST));
    let message = r.error.map(|e| e.message).unwrap_or_default();
    assert!(message.contains("another author"), "{message}");

    let r = bob
        .call(json!({"history": {"channel": "room:general", "limit": 10, "reverse": true}}))
        .await;
    let pubs = r.history.expect("history").publications;
    assert_eq!(pubs.len(), 1, "nothing else was stored");
    assert_eq!(pubs[0].data["text"], "alice's words");
}

/// Room names are shown in every member's room list: no line breaks or other controls, no
/// bidirectional formatting (which can make one name read as another), 1-100 characters.
#[tokio::test]
async fn room_names_with_controls_or_bidi_formatting_are_refused() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let tokens = idp.login("alice").await.expect("alice logs in");
    let mut alice = Client::connected(&server.url, &tokens.access_token).await;
    for (name, reason) in [
        ("two\nlines", "control characters"),
        ("bell\u{7}", "control characters"),
        ("general\u{202E}lareneg", "bidirectional"),
        ("x\u{2066}y", "bidirectional"),
        (&"x".repeat(101) as &str, "1-100 characters"),
    ] {
        let r = alice
            .call(json!({"rpc": {"method": "rooms.create", "data": {"name": name}}}))
            .await;
        assert_eq!(error_code(&r), Some(ErrorCode::BAD_REQUEST), "{name:?}");
        let message = r.error.map(|e| e.message).unwrap_or_default();
        assert!(message.contains(reason), "{name:?}: {message}");
    }
    let r = alice
        .call(json!({"rpc": {"method": "rooms.create", "data": {"name": "Équipe 😀"}}}))
        .await;
    assert!(r.rpc.is_some(), "an ordinary name is fine: {r:?}");
    let r = alice.call(json!({"rpc": {"method": "rooms.list"}})).await;
    let rooms = r.rpc.and_then(|r| r.data).expect("rooms.list");
    assert_eq!(
        rooms["rooms"].as_array().map(Vec::len),
        Some(2),
        "general and the new one"
    );
}

#[tokio::test]
async fn messages_send_is_the_publish_as_an_rpc_with_the_author_and_name_of_the_server() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let alice_tokens = idp.login("alice").await.expect("alice logs in");
    let bob_tokens = idp.login("bob").await.expect("bob logs in");
    let mut alice = Client::connected(&server.url, &alice_tokens.access_token).await;
    let mut bob = Client::connected(&server.url, &bob_tokens.access_token).await;
    let r = bob
        .call(json!({"subscribe": {"channel": "room:general"}}))
        .await;
    let epoch = r.subscribe.expect("bob subscribes").epoch;

    let send = json!({"rpc": {"method": "messages.send", "data": {
        "room": "general", "id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "text": "hello", "ts": 7}}});
    let r = alice.call(send.clone()).await;
    let sent = r
        .rpc
        .and_then(|r| r.data)
        .unwrap_or_else(|| panic!("messages.send answers, got {:?}", r.error));
    assert_eq!(
        sent,
        json!({"offset": 1, "epoch": epoch}),
        "the place in the stream"
    );
    let p = bob
        .next_push()
        .await
        .publication
        .expect("bob receives the message");
    assert_eq!(
        (
            &p.data["author"],
            &p.data["name"],
            &p.data["text"],
            &p.data["ts"]
        ),
        (
            &json!("alice"),
            &json!("Alice Example"),
            &json!("hello"),
            &json!(7)
        ),
        "author and display name are the server's (from alice's token), text and ts hers"
    );
    let r = alice.call(send).await;
    assert_eq!(
        r.rpc.and_then(|r| r.data),
        Some(json!({"offset": 1, "epoch": epoch})),
        "the same id again answers the first place and is not stored twice"
    );
    for (what, data, code) in [
        (
            "a room the user is not in",
            json!({"room": "nosuch", "id": "6f9619ff-8b86-d011-b42d-00c04fc96400", "text": "x", "ts": 1}),
            ErrorCode::UNKNOWN_CHANNEL,
        ),
        (
            "an author field",
            json!({"room": "general", "id": "6f9619ff-8b86-d011-b42d-00c04fc96401", "text": "x", "ts": 1, "author": "mallory"}),
            ErrorCode::BAD_REQUEST,
        ),
        (
            "an empty text",
            json!({"room": "general", "id": "6f9619ff-8b86-d011-b42d-00c04fc96402", "text": " ", "ts": 1}),
            ErrorCode::BAD_REQUEST,
        ),
        (
            "no id",
            json!({"room": "general", "text": "x", "ts": 1}),
            ErrorCode::BAD_REQUEST,
        ),
    ] {
        let r = alice
            .call(json!({"rpc": {"method": "messages.send", "data": data}}))
            .await;
        assert_eq!(error_code(&r), Some(code), "{what}: {:?}", r.error);
    }
    let r = bob
        .call(json!({"history": {"channel": "room:general", "limit": -1}}))
        .await;
    assert_eq!(
        r.history.expect("history").publications.len(),
        1,
        "only the one message was stored"
    );
}
