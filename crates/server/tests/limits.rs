//! Limits and operations: frame size, malformed frames, command rate, connections per user
//! and in total, channels per connection, pings/pongs, stale sockets, graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use confab_protocol::{Disconnect, ErrorCode};
use confab_testkit::{Idp, IdpOptions};
use serde_json::json;

#[tokio::test]
async fn limits_give_clear_errors_and_bad_frames_disconnect_without_harm() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.max_frame_bytes = 4096;
    config.commands_per_second = 20;
    config.commands_burst = 20;
    config.max_connections_per_user = 3;
    config.max_connections_total = 6;
    config.max_channels_per_connection = 2;
    let server = TestServer::start(config).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    // Frame size.
    let mut c = Client::connected(&server.url, &token).await;
    let big = format!(
        r#"{{"id":1,"publish":{{"channel":"room:general","data":{{"text":"{}"}}}}}}"#,
        "x".repeat(5000)
    );
    c.send_text(&big).await;
    let closed = c.expect_close().await;
    assert_eq!(
        closed.code,
        Disconnect::BAD_REQUEST.code,
        "a frame over max_frame_bytes is a bad-request disconnect"
    );
    assert!(
        closed.reason.contains("too large"),
        "the close reason says the frame was too large: {:?}",
        closed.reason
    );

    // Malformed frames.
    for garbage in [
        "{not json",
        "[1,2,3]",
        r#"{"id":1,"ping":{},"presence":{"channel":"x"}}"#,
        r#"{"id":"one"}"#,
    ] {
        let mut c = Client::connected(&server.url, &token).await;
        c.send_text(garbage).await;
        assert_eq!(
            c.expect_close().await.code,
            Disconnect::BAD_REQUEST.code,
            "malformed frame {garbage:?} gets disconnect 3501"
        );
    }
    // The positional array form serde would read as a struct is not the protocol: refused
    // before login (it would authenticate) and after (it would publish).
    let mut c = Client::open(&server.url).await;
    c.send_text(&format!(r#"[1,["{token}"]]"#)).await;
    assert_eq!(
        c.expect_close().await.code,
        Disconnect::BAD_REQUEST.code,
        "a connect written as an array is refused"
    );
    for positional in [
        r#"[8,null,null,null,["room:general",{"id":"00000000-0000-4000-8000-000000000001","author":"","text":"positional","ts":1}]]"#,
        r#"{"id":8,"publish":["room:general",{"id":"00000000-0000-4000-8000-000000000002","author":"","text":"positional","ts":1}]}"#,
        r#"{"id":9,"history":{"channel":"room:general","limit":5,"since":[0,""]}}"#,
    ] {
        let mut c = Client::connected(&server.url, &token).await;
        c.send_text(positional).await;
        assert_eq!(
            c.expect_close().await.code,
            Disconnect::BAD_REQUEST.code,
            "{positional} is refused"
        );
    }
    let mut c = Client::connected(&server.url, &token).await;
    let h = c
        .call(json!({"history": {"channel": "room:general", "limit": -1}}))
        .await
        .history
        .expect("history");
    assert!(
        !h.publications
            .iter()
            .any(|p| p.data["text"] == "positional"),
        "nothing written in the array form was stored"
    );

    // Frames the WebSocket layer refuses still get a close frame the client can act on:
    // a message far over the limit (before login too) is 3501, text that is not UTF-8 is 1007.
    for connected in [false, true] {
        let mut c = if connected {
            Client::connected(&server.url, &token).await
        } else {
            Client::open(&server.url).await
        };
        c.send_text(&"x".repeat(300 * 1024)).await;
        let closed = c.expect_close().await;
        assert_eq!(
            (closed.code, closed.reason.contains("too large")),
            (Disconnect::BAD_REQUEST.code, true),
            "a 300 KiB frame (logged in: {connected}) is closed with 3501: {closed:?}"
        );
    }
    let mut c = Client::connected(&server.url, &token).await;
    c.send_raw_text(b"{\"id\":1,\"ping\":{\xff}}").await;
    assert_eq!(
        c.expect_close().await.code,
        1007,
        "a text frame that is not UTF-8 is closed with 1007"
    );

    let health: serde_json::Value = reqwest::get(format!("http://{}/health", server.addr))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(
        health["status"], "ok",
        "the server survives malformed frames"
    );

    // Channels per connection.
    let mut c = Client::connected(&server.url, &token).await;
    for room in ["a1", "a2", "a3"] {
        c.call(json!({"rpc": {"method": "rooms.create", "data": {"id": room, "name": room}}}))
            .await;
    }
    assert!(
        c.call(json!({"subscribe": {"channel": "room:a1"}}))
            .await
            .subscribe
            .is_some(),
        "first channel ok"
    );
    assert!(
        c.call(json!({"subscribe": {"channel": "room:a2"}}))
            .await
            .subscribe
            .is_some(),
        "second channel ok"
    );
    let r = c.call(json!({"subscribe": {"channel": "room:a3"}})).await;
    assert_eq!(
        error_code(&r),
        Some(ErrorCode::LIMIT_EXCEEDED),
        "a third channel exceeds max_channels_per_connection (106)"
    );
    assert!(
        r.error
            .map(|e| e.message)
            .unwrap_or_default()
            .contains("channels"),
        "the error names the channel limit"
    );

    // Command rate: a burst over the bucket is paced, not refused: every command is answered,
    // in order, and the last one only once the bucket (20, refilled at 20/s) has let it run.
    // One batched frame of 40 commands: the 20 over the bucket take at least a second.
    let ids: Vec<u32> = (1000..1040).collect();
    let batch: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id":{id},"ping":{{}}}}"#))
        .collect();
    let sent = tokio::time::Instant::now();
    c.send_text(&batch.join("\n")).await;
    for id in ids {
        let r = c.reply_to(id).await;
        assert!(
            r.ping.is_some(),
            "a command over the rate waits for its turn and succeeds: {r:?}"
        );
    }
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(950),
        "40 commands at 20/s with a bucket of 20 take a second at least (took {took:?})"
    );
    let reply = c.call(json!({"ping": {}})).await;
    assert!(
        reply.ping.is_some(),
        "after the burst the connection keeps working"
    );
    drop(c);

    // Connections per user (3) and total (6).
    let server2_dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), server2_dir.path());
    config.max_connections_per_user = 2;
    config.max_connections_total = 3;
    let server2 = TestServer::start(config).await;
    let a1 = Client::connected(&server2.url, &token).await;
    let a2 = Client::connected(&server2.url, &token).await;
    let mut a3 = Client::open(&server2.url).await;
    a3.send_cmd(json!({"connect": {"token": token}})).await;
    assert_eq!(
        a3.expect_close().await.code,
        Disconnect::CONNECTION_LIMIT.code,
        "a third connection for one user is refused with 3504"
    );
    let bob = idp.login("bob").await.expect("login").access_token.clone();
    let b1 = Client::connected(&server2.url, &bob).await;
    let mut over = Client::open(&server2.url).await;
    assert_eq!(
        over.expect_close().await.code,
        Disconnect::CONNECTION_LIMIT.code,
        "a socket over the total limit is closed with 3504"
    );
    a1.close().await;
    poll(DEADLINE, "a slot to free up after a close", || {
        let url = server2.url.clone();
        let token = token.clone();
        async move {
            let (c, r) = Client::connect(&url, &token).await;
            r.connect.is_some().then_some(c)
        }
    })
    .await;
    drop((a2, b1));
}

#[tokio::test]
async fn pings_are_sent_and_missing_pongs_or_connects_disconnect() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.ping_interval_secs = 1;
    config.pong_timeout_secs = 1;
    config.connect_timeout_secs = 1;
    let server = TestServer::start(config).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    let (mut ponging, reply) = Client::connect(&server.url, &token).await;
    let res = reply.connect.expect("connects");
    assert!(
        res.ping == 1 && res.pong,
        "connect result announces the ping interval and that pongs are expected"
    );
    while ponging.pings < 3 {
        let r = ponging.call(json!({"ping": {}})).await;
        assert!(
            r.ping.is_some(),
            "a client that answers pings stays connected across several ping intervals"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut silent = Client::connected(&server.url, &token).await;
    silent.auto_pong = false;
    let closed = silent.expect_close().await;
    assert_eq!(
        closed.code,
        Disconnect::NO_PONG.code,
        "a client that never answers pings is closed with 3012"
    );
    assert!(
        silent.pings >= 1,
        "the server sent at least one ping ({{}}) first"
    );

    let mut stale = Client::open(&server.url).await;
    assert_eq!(
        stale.expect_close().await.code,
        Disconnect::STALE.code,
        "a socket that never sends connect is closed with 3502"
    );
}

#[tokio::test]
async fn graceful_shutdown_sends_3001_to_every_client() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&idp.issuer_str(), dir.path())).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let mut a = Client::connected(&server.url, &token).await;
    let mut b = Client::open(&server.url).await;
    let url = server.url.clone();
    let stop = tokio::spawn(server.shutdown());
    assert_eq!(
        a.expect_close().await.code,
        Disconnect::SHUTDOWN.code,
        "an authenticated client gets 3001 (shutdown) so it reconnects"
    );
    assert_eq!(
        b.expect_close().await.code,
        Disconnect::SHUTDOWN.code,
        "an unauthenticated socket gets 3001 too"
    );
    stop.await.expect("shutdown task");
    let refused = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(refused.is_err(), "after shutdown the listener is closed");
}

#[tokio::test]
async fn a_stalled_reader_is_dropped_without_holding_up_publishers() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.client_queue_len = 16;
    config.commands_per_second = 100_000;
    let server = TestServer::start(config).await;
    let alice = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let bob = idp.login("bob").await.expect("login").access_token.clone();
    let mut stalled = Client::connected(&server.url, &bob).await;
    assert!(
        stalled
            .call(json!({"subscribe": {"channel": "room:general"}}))
            .await
            .subscribe
            .is_some(),
        "the stalled reader subscribes"
    );
    let mut publisher = Client::connected(&server.url, &alice).await;
    // The largest text allowed: 4,000 four-byte characters, 16,000 bytes.
    let text = "😀".repeat(4000);
    // ~16 MB of pushes: more than loopback socket buffers hold for a peer that never reads.
    for i in 0..1000 {
        let data = json!({"id": uuid::Uuid::new_v4(), "author": "", "text": text, "ts": i});
        let r = publisher
            .call(json!({"publish": {"channel": "room:general", "data": data}}))
            .await;
        assert!(
            r.publish.is_some(),
            "publishing continues while a subscriber stalls (publish {i})"
        );
    }
    poll(
        Duration::from_secs(40),
        "the stalled reader to be dropped from the channel",
        || {
            let addr = server.addr;
            async move {
                let h: serde_json::Value = reqwest::get(format!("http://{addr}/health"))
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()?;
                (h["connections"] == 1).then_some(())
            }
        },
    )
    .await;
    drop(stalled);
}

/// The reproduced lockout: long texts of control characters (six bytes each in JSON) or of
/// 60,000 plain characters made the latest-50 history reply over a client's 1 MiB limit. Text
/// is now limited in characters and bytes and control characters are refused (107 with the
/// reason); 50 of the largest messages still allowed (4,000 four-byte characters) fit a page.
#[tokio::test]
async fn message_text_is_limited_so_a_page_of_history_stays_loadable() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.commands_per_second = 1000;
    let server = TestServer::start(config).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let mut alice = Client::connected(&server.url, &token).await;

    let refused = [
        ("\u{1}".repeat(4000), "control character (U+0001)"),
        ("a\u{9b}b".to_owned(), "control character (U+009B)"),
        ("a".repeat(4001), "longer than 4000 characters"),
        ("x".repeat(60_000), "larger than 16000 bytes"),
        (" \n ".to_owned(), "empty"),
    ];
    for (text, reason) in refused {
        let r = alice
            .call(json!({"publish": {"channel": "room:general", "data": chat(&text)}}))
            .await;
        assert_eq!(error_code(&r), Some(ErrorCode::BAD_REQUEST), "{reason}");
        let message = r.error.map(|e| e.message).unwrap_or_default();
        assert!(message.contains(reason), "the reply says why: {message}");
    }

    let largest = "😀".repeat(4000);
    for _ in 0..50 {
        let r = alice
            .call(json!({"publish": {"channel": "room:general", "data": chat(&largest)}}))
            .await;
        assert!(
            r.publish.is_some(),
            "the largest allowed text is stored: {r:?}"
        );
    }
    let text_with_newlines = "line one\n\tline two";
    let r = alice
        .call(json!({"publish": {"channel": "room:general", "data": chat(text_with_newlines)}}))
        .await;
    assert!(r.publish.is_some(), "newline and tab are text");

    // A fresh client opens the room: the latest page of 50 is cut to the reply cap, and
    // paging back from its oldest offset reaches every message, each page under the cap.
    let cap = confab_protocol::DEFAULT_MAX_REPLY_BYTES;
    let mut fresh = Client::connected(&server.url, &token).await;
    let mut seen = Vec::new();
    let mut since: Option<serde_json::Value> = None;
    loop {
        let mut req = json!({"channel": "room:general", "limit": 50, "reverse": true});
        if let Some(s) = &since {
            req["since"] = s.clone();
        }
        let r = fresh.call(json!({ "history": req })).await;
        let bytes = serde_json::to_string(&r).expect("reply serializes").len();
        assert!(
            bytes <= cap + 1024,
            "a page of the largest messages is {bytes} bytes, within the {cap}-byte reply cap"
        );
        let history = r.history.expect("history reply");
        if history.publications.is_empty() {
            break;
        }
        assert!(
            seen.is_empty() || history.publications.len() < 50,
            "pages of the largest messages are cut by bytes, not by count"
        );
        let oldest = history.publications.last().map(|p| p.offset).unwrap_or(0);
        seen.extend(history.publications.iter().map(|p| p.offset));
        since = Some(json!({"offset": oldest, "epoch": history.epoch}));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=51).collect::<Vec<u64>>(),
        "paging back by bytes reaches every message once"
    );
}

/// Before login a socket costs the server without proving anything: such sockets have a cap
/// of their own (so idle sockets cannot take every slot) and every address has a cap, each
/// refused with close 3504; signing in frees the not-yet-authenticated slot.
#[tokio::test]
async fn sockets_before_login_and_per_address_are_capped() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&idp.issuer_str(), dir.path());
    config.max_pending_connections = 2;
    config.max_connections_per_address = 4;
    let server = TestServer::start(config).await;
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    let mut idle_a = Client::open(&server.url).await;
    let _idle_b = Client::open(&server.url).await;
    let mut third = Client::open(&server.url).await;
    assert_eq!(
        third.expect_close().await.code,
        Disconnect::CONNECTION_LIMIT.code,
        "a third socket that has not logged in is over the cap"
    );
    // One of them logs in: its slot before login is free again.
    let r = idle_a.call(json!({"connect": {"token": token}})).await;
    assert!(
        r.connect.is_some(),
        "the idle socket logs in: {:?}",
        r.error
    );
    let _fourth = Client::connected(&server.url, &token).await;
    let _fifth = Client::connected(&server.url, &token).await;
    // Four sockets from 127.0.0.1 now (three logged in, one idle; one slot before login is
    // free): the address is full whatever the state of its sockets.
    let mut sixth = Client::open(&server.url).await;
    assert_eq!(
        sixth.expect_close().await.code,
        Disconnect::CONNECTION_LIMIT.code,
        "a fifth socket from one address is over the per-address cap"
    );
}

/// One connection flooding the server with commands at the default limits: it is paced at
/// `commands_per_second` after its burst, never refused, and still gets messages live while
/// its commands wait; another user meanwhile sends and reads as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_connection_is_paced_and_the_others_do_not_notice() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::Message;

    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(&idp.issuer_str(), dir.path());
    let (rate, burst) = (
        f64::from(config.commands_per_second),
        f64::from(config.commands_burst),
    );
    let server = TestServer::start(config).await;
    let alice = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();
    let bob = idp.login("bob").await.expect("login").access_token.clone();

    // The flooder: 2,000 history reads in frames of 500, as fast as the socket takes them.
    const FLOOD: u32 = 2_000;
    let started = Instant::now();
    let (ws, _) = tokio_tungstenite::connect_async(&server.url)
        .await
        .expect("flooder connects");
    let (mut sink, mut stream) = ws.split();
    let first = [
        json!({"id": 1, "connect": {"token": alice}}),
        json!({"id": 2, "subscribe": {"channel": "room:general"}}),
    ];
    let first: Vec<String> = first.iter().map(ToString::to_string).collect();
    sink.send(Message::text(first.join("\n")))
        .await
        .expect("send");
    // Subscribed before bob sends anything.
    tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(m)) = stream.next().await {
            if let Message::Text(text) = m {
                if text
                    .lines()
                    .any(|l| l.contains(r#""id":2"#) && l.contains("subscribe"))
                {
                    return;
                }
            }
        }
        panic!("the flooder's connection ended before it subscribed");
    })
    .await
    .expect("the flooder subscribes");
    let writer = tokio::spawn(async move {
        for frame in 0..FLOOD / 500 {
            let lines: Vec<String> = (0..500)
                .map(|i| {
                    json!({"id": 3 + frame * 500 + i,
                           "history": {"channel": "room:general", "limit": 10}})
                    .to_string()
                })
                .collect();
            if sink.send(Message::text(lines.join("\n"))).await.is_err() {
                break;
            }
        }
        sink
    });
    #[derive(Default)]
    struct Seen {
        answered: u32,
        refused: Vec<String>,
        pushes: Vec<(String, Instant)>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                let now = Instant::now();
                let mut seen = seen.lock().expect("lock");
                for line in text.lines() {
                    let v: serde_json::Value = serde_json::from_str(line).expect("json line");
                    if let Some(id) = v["push"]["pub"]["data"]["id"].as_str() {
                        seen.pushes.push((id.to_owned(), now));
                    } else if v["id"].as_u64().is_some_and(|id| id >= 3) {
                        if v.get("error").is_some() {
                            seen.refused.push(line.to_owned());
                        } else {
                            seen.answered += 1;
                        }
                    }
                }
            }
        }
    });

    // The flooder has used its burst: from now on its commands wait for their turn.
    poll(DEADLINE, "the flooder to use its burst", || {
        std::future::ready((f64::from(seen.lock().expect("lock").answered) >= burst).then_some(()))
    })
    .await;

    // Bob sends and reads meanwhile; each of his calls is answered at once.
    let mut b = Client::connected(&server.url, &bob).await;
    let mut sent = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let id = uuid::Uuid::new_v4();
        let asked = Instant::now();
        let r = b
            .call(json!({"rpc": {"method": "messages.send", "data":
                {"room": "general", "id": id, "text": format!("hello {i}"), "ts": 1}}}))
            .await;
        let took = asked.elapsed();
        slowest = slowest.max(took);
        assert!(r.error.is_none(), "bob's message is stored: {r:?}");
        assert!(
            took < Duration::from_secs(1),
            "bob's send is answered at once while alice floods (took {took:?})"
        );
        sent.push((id.to_string(), Instant::now()));
        let asked = Instant::now();
        let r = b
            .call(json!({"history": {"channel": "room:general", "limit": 10}}))
            .await;
        assert!(r.history.is_some(), "bob reads the room: {r:?}");
        slowest = slowest.max(asked.elapsed());
        assert!(asked.elapsed() < Duration::from_secs(1), "at once");
    }

    // The flooder got each of bob's messages live, while its own commands still waited.
    poll(DEADLINE, "the flooder to get bob's messages", || {
        let seen = seen.lock().expect("lock");
        let all = sent
            .iter()
            .all(|(id, _)| seen.pushes.iter().any(|(p, _)| p == id));
        std::future::ready(all.then_some(()))
    })
    .await;
    // Well past its burst, the flooder has run no more than its rate allows.
    let (answered, now) = poll(DEADLINE, "the flooder to be served past its burst", || {
        let seen = seen.lock().expect("lock");
        std::future::ready(
            (f64::from(seen.answered) >= burst + 50.0).then(|| (seen.answered, Instant::now())),
        )
    })
    .await;
    {
        let seen = seen.lock().expect("lock");
        let mut latest = Duration::ZERO;
        for (id, acked) in &sent {
            let (_, at) = seen
                .pushes
                .iter()
                .find(|(p, _)| p == id)
                .expect("the push arrived");
            let late = at.saturating_duration_since(*acked);
            latest = latest.max(late);
            assert!(
                late < Duration::from_secs(1),
                "a message reaches the flooding client live, not after its backlog ({late:?})"
            );
        }
        eprintln!(
            "bob's slowest call {slowest:?}; latest push to the flooder {latest:?}; \
             flooder answered {} in {:?}",
            seen.answered,
            now.duration_since(started)
        );
        assert!(
            seen.refused.is_empty(),
            "no command of the flooder is refused, they wait: {:?}",
            seen.refused.first()
        );
    }
    let allowed = burst + rate * now.duration_since(started).as_secs_f64() + 1.0;
    assert!(
        f64::from(answered) <= allowed,
        "the flooder ran at most its burst plus its rate: {answered} answered, {allowed:.0} allowed"
    );
    assert!(
        answered < FLOOD,
        "the flooder's commands were still waiting their turn ({answered} of {FLOOD} answered)"
    );
    assert!(answered > 0, "the flooder is served too");
    reader.abort();
    writer.abort();
}
