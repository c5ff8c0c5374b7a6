//! confab-relay against the real confab-server and the real test IdP (tests/idp).
//!
//! All scenarios live in this one binary so the test harness runs them concurrently.

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use confab_relay::{ConnectionState, Error, RelayConfig, SendState};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

const T: Duration = Duration::from_secs(30);

/// Rooms API, open/send/receive, older pages, a refused message that succeeds on retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_history_pages_and_retry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let mut cfg = relay_config(&server.url(), &dir.path().join("alice.db"));
    cfg.page_size = 5;
    let alice = Client::start(cfg, IdpTokens::login(idp.clone(), "alice").await);
    let mut cfg = relay_config(&server.url(), &dir.path().join("bob.db"));
    cfg.page_size = 5;
    let bob = Client::start(cfg, IdpTokens::login(idp.clone(), "bob").await);
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;

    let room = alice
        .relay
        .create_room("Pages", Some("pages"), false)
        .await
        .expect("alice creates a room");
    assert_eq!(room.id, "pages", "the room gets the requested id");
    let listed = bob.relay.list_rooms().await.expect("bob lists rooms");
    assert!(
        listed.iter().any(|r| r.id == "pages" && !r.member),
        "bob sees the room but is not a member yet: {listed:?}"
    );

    // Bob is not a member: the server refuses, the message is failed and kept for a retry.
    let early = bob.relay.send("pages", "too early").await.expect("queued");
    wait_until("bob's early message fails", T, || {
        bob.view(|v| matches!(v.states.get(&early), Some(SendState::Failed { .. })))
    })
    .await;
    assert_eq!(
        bob.relay.outbox().await.expect("outbox").len(),
        1,
        "a refused message stays in the outbox"
    );
    // A text the server would refuse is refused here first, with the reason, and never queued.
    let invisible = bob.relay.send("pages", "a\u{1}b").await;
    assert!(
        matches!(
            invisible,
            Err(confab_relay::Error::InvalidText(
                confab_protocol::TextError::ControlCharacter { code_point: 1 }
            ))
        ),
        "{invisible:?}"
    );
    let long = bob.relay.send("pages", &"a".repeat(4001)).await;
    assert!(
        matches!(
            long,
            Err(confab_relay::Error::InvalidText(
                confab_protocol::TextError::TooManyChars
            ))
        ),
        "{long:?}"
    );
    assert_eq!(
        bob.relay.outbox().await.expect("outbox").len(),
        1,
        "refused texts are not queued"
    );

    let page = alice.relay.open_room("pages").await.expect("alice opens");
    assert!(page.messages.is_empty(), "a new room has no history");
    let mut sent = Vec::new();
    for i in 0..12 {
        sent.push(
            alice
                .relay
                .send("pages", &format!("m{i}"))
                .await
                .expect("send"),
        );
    }
    wait_until("alice sees her 12 messages", T, || {
        alice.view(|v| v.ids("pages").len() == 12)
    })
    .await;
    assert!(
        sent.iter()
            .all(|id| alice.view(|v| matches!(v.states.get(id), Some(SendState::Sent { .. })))),
        "every acknowledged message is reported sent"
    );

    bob.relay.join_room("pages").await.expect("bob joins");
    bob.relay.retry(early).await.expect("retry accepted");
    let page = bob.relay.open_room("pages").await.expect("bob opens");
    assert!(page.messages.len() <= 5, "open_room returns one page");
    wait_until("bob's retried message is sent", T, || {
        bob.view(|v| matches!(v.states.get(&early), Some(SendState::Sent { .. })))
    })
    .await;
    wait_until("bob sees all 13 messages", T, || {
        bob.view(|v| v.ids("pages").last().map(|l| l.0) == Some(13))
    })
    .await;
    assert!(
        bob.view(|v| v.has_older.get("pages") == Some(&true)),
        "the room reset says older messages exist"
    );
    let full = bob.full_room("pages").await;
    assert_eq!(
        full,
        server.history("pages"),
        "the latest page plus older pages equal the server's history"
    );
    assert_eq!(
        bob.relay.outbox().await.expect("outbox").len(),
        0,
        "acknowledged messages leave the outbox"
    );
    let bad = alice.relay.open_room("no such room!").await;
    assert!(
        matches!(bad, Err(Error::InvalidRoom)),
        "invalid room ids are refused locally"
    );
}

/// A message sent while the server is down is delivered once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_sent_while_server_down_is_delivered_after_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let mut server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let proxy = Proxy::start().await;
    proxy.set_upstream(server.addr);
    // Alice's backoff is a minute: only notify_network_up() can bring her back within the test.
    let mut cfg = relay_config(&proxy.url(), &dir.path().join("alice.db"));
    cfg.backoff_min = Duration::from_secs(60);
    cfg.backoff_max = Duration::from_secs(60);
    let alice = Client::start(cfg, IdpTokens::login(idp.clone(), "alice").await);
    let bob = Client::start(
        relay_config(&proxy.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;
    shared_room(&alice, &bob, "down").await;

    server.stop().await;
    proxy.set_upstream(None);
    wait_until("alice waits to reconnect", T, || {
        alice.view(|v| {
            matches!(
                v.connection.last(),
                Some(ConnectionState::Reconnecting { in_secs }) if *in_secs >= 60
            )
        })
    })
    .await;
    let id = alice
        .relay
        .send("down", "written offline")
        .await
        .expect("queued offline");
    wait_until("the offline message is pending", T, || {
        alice.view(|v| v.states.get(&id) == Some(&SendState::Pending))
    })
    .await;
    assert_eq!(
        server.history("down"),
        vec![],
        "nothing reached the server while it was down"
    );

    server.restart().await;
    proxy.set_upstream(server.addr);
    alice.relay.notify_network_up();
    bob.relay.notify_network_up();
    wait_until(
        "alice reconnects at once on network-up, not after her 60 s backoff",
        T,
        || alice.view(|v| v.connected()),
    )
    .await;
    wait_until("bob receives the offline message", T, || {
        bob.view(|v| v.ids("down").iter().any(|(_, m)| *m == id))
    })
    .await;
    wait_until("alice's message is sent", T, || {
        alice.view(|v| matches!(v.states.get(&id), Some(SendState::Sent { .. })))
    })
    .await;
    assert_eq!(
        server.history("down"),
        vec![(1, id)],
        "the message is stored exactly once"
    );
    assert_eq!(
        bob.view(|v| v.ids("down")),
        vec![(1, id)],
        "bob sees it once"
    );
}

fn spawn_child(url: &str, outbox: &std::path::Path, count: usize) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_relay-outbox-child"))
        .args([
            "--url",
            url,
            "--room",
            "crash",
            "--count",
            &count.to_string(),
        ])
        .arg("--outbox")
        .arg(outbox)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn relay-outbox-child")
}

/// Reads `QUEUED <id>` lines until `stop_after` of them (or DONE) arrived.
async fn read_queued(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stop_after: usize,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    while ids.len() < stop_after {
        let line = tokio::time::timeout(T, lines.next_line())
            .await
            .expect("child prints within the deadline")
            .expect("read child output")
            .expect("child is still running");
        if let Some(id) = line.strip_prefix("QUEUED ") {
            ids.push(id.parse().expect("uuid"));
        } else if line == "DONE" {
            break;
        }
    }
    ids
}

/// The outbox survives SIGKILL of the client process and is delivered exactly once after restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_survives_process_kill_and_is_delivered_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let tokens = IdpTokens::login(idp.clone(), "alice").await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("observer.db")),
        tokens.clone(),
    );
    alice.wait_connected(T).await;
    alice
        .relay
        .create_room("Crash", Some("crash"), false)
        .await
        .expect("create");
    alice.relay.open_room("crash").await.expect("open");

    // 1. Server unreachable: the messages can only be in the outbox when the child dies.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!(
        "ws://{}/connection/websocket",
        dead.local_addr().expect("addr")
    );
    drop(dead);
    let outbox1 = dir.path().join("child1.db");
    let mut child = spawn_child(&dead_url, &outbox1, 3);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{}\n", tokens.current().await).as_bytes())
        .await
        .expect("token to child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let offline_ids = read_queued(&mut lines, 3).await;
    child.kill().await.expect("SIGKILL child");
    assert_eq!(offline_ids.len(), 3, "the child queued three messages");

    // 2. Server reachable, killed at a random moment while publishing.
    let outbox2 = dir.path().join("child2.db");
    let mut child = spawn_child(&server.url(), &outbox2, 300);
    let mut stdin2 = child.stdin.take().expect("stdin");
    stdin2
        .write_all(format!("{}\n", tokens.current().await).as_bytes())
        .await
        .expect("token to child");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let kill_after = rand::thread_rng().gen_range(20..280);
    let online_ids = read_queued(&mut lines, kill_after).await;
    child.kill().await.expect("SIGKILL child");

    // Restart both "apps" on their outboxes against the live server.
    let r1 = Client::start(relay_config(&server.url(), &outbox1), tokens.clone());
    let r2 = Client::start(relay_config(&server.url(), &outbox2), tokens.clone());
    for (r, name) in [(&r1, "first"), (&r2, "second")] {
        let relay = r.relay.clone();
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = relay.outbox().await.expect("outbox");
            if left.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the {name} restarted client empties its outbox ({} left, first: {:?}, states: {:?})",
                left.len(),
                left[0],
                r.view(|v| (v.connection.clone(), v.errors.clone()))
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let history = server.history("crash");
    let stored: Vec<Uuid> = history.iter().map(|(_, id)| *id).collect();
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "no message is stored twice");
    for id in offline_ids.iter().chain(online_ids.iter()) {
        assert!(
            unique.contains(id),
            "every message that reached the outbox before the kill is delivered"
        );
    }
    wait_until("the observer sees every stored message", T, || {
        alice.view(|v| v.ids("crash") == history)
    })
    .await;
}

/// Over two minutes with 10 s access tokens the connection is never dropped: every refresh
/// happens in band before expiry (the server closes expired connections at once here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_refresh_keeps_the_connection_for_two_minutes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(10)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 5)).await;
    let tokens = IdpTokens::login(idp.clone(), "alice").await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        tokens.clone(),
    );
    alice.wait_connected(T).await;
    alice
        .relay
        .create_room("Long", Some("long"), false)
        .await
        .expect("create");
    alice.relay.open_room("long").await.expect("open");
    let start = tokio::time::Instant::now();
    let mut sent = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while start.elapsed() < Duration::from_secs(120) {
        tick.tick().await;
        sent.push(alice.relay.send("long", "still here").await.expect("send"));
        let states = alice.view(|v| v.connection.clone());
        assert_eq!(
            states,
            vec![ConnectionState::Connecting, ConnectionState::Connected],
            "the connection is never dropped while tokens are refreshed in band"
        );
    }
    wait_until("every message is delivered", T, || {
        alice.view(|v| v.ids("long").len() == sent.len())
    })
    .await;
    assert!(
        tokens.refreshes.load(Ordering::SeqCst) >= 10,
        "tokens were refreshed repeatedly during the run"
    );
    assert_eq!(
        tokens.rejections.load(Ordering::SeqCst),
        0,
        "the server never rejected a token"
    );
    assert_eq!(
        alice.view(|v| v.errors.clone()),
        vec![],
        "no errors during the run"
    );
    assert_eq!(
        alice.view(|v| v.connection.clone()),
        vec![ConnectionState::Connecting, ConnectionState::Connected],
        "one connection for the whole run"
    );
    let _ = Arc::strong_count(&idp);
}

/// Two clients exchange 2,000 messages in two rooms while the server restarts 5 times, a
/// proxy cuts every connection at random moments, and access tokens live 10 s. Afterwards each
/// client's view of each room equals the server's history: nothing lost, nothing twice, same
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_two_clients_2000_messages_restarts_and_cuts() {
    const PER_CLIENT: usize = 1000;
    const ROOMS: [&str; 2] = ["chaos-a", "chaos-b"];
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(10)).await;
    let mut server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 2)).await;
    let proxy = Proxy::start().await;
    proxy.set_upstream(server.addr);
    let alice = Client::start(
        relay_config(&proxy.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    let bob = Client::start(
        relay_config(&proxy.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;
    for room in ROOMS {
        shared_room(&alice, &bob, room).await;
    }

    // Senders: 1,000 messages each, alternating rooms, paced over about 20 s.
    let mut senders = Vec::new();
    for (who, relay) in [("alice", alice.relay.clone()), ("bob", bob.relay.clone())] {
        senders.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(PER_CLIENT);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0..PER_CLIENT {
                tick.tick().await;
                let room = ROOMS[i % 2];
                let id = relay
                    .send(room, &format!("{who} {i}"))
                    .await
                    .expect("send is accepted into the outbox");
                ids.push(id);
            }
            ids
        }));
    }

    // Chaos: 5 restarts (every ~4 s), random connection cuts in between.
    let mut restarts = 0;
    let mut cuts = 0;
    let mut next_restart = tokio::time::Instant::now() + Duration::from_secs(3);
    while restarts < 5 || senders.iter().any(|s| !s.is_finished()) {
        let pause = rand::thread_rng().gen_range(300..1200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if restarts < 5 && tokio::time::Instant::now() >= next_restart {
            server.stop().await;
            proxy.set_upstream(None);
            proxy.cut_all();
            let down = rand::thread_rng().gen_range(200..1000);
            tokio::time::sleep(Duration::from_millis(down)).await;
            server.restart().await;
            proxy.set_upstream(server.addr);
            restarts += 1;
            next_restart = tokio::time::Instant::now() + Duration::from_secs(4);
        } else {
            proxy.cut_all();
            cuts += 1;
        }
    }
    let mut sent: Vec<Uuid> = Vec::new();
    for s in senders {
        sent.extend(s.await.expect("sender task"));
    }
    assert_eq!(server.starts, 6, "the server was restarted 5 times");
    for (c, name) in [(&alice, "alice"), (&bob, "bob")] {
        let (connects, resets, errors) = c.view(|v| {
            let connects = v
                .connection
                .iter()
                .filter(|s| **s == ConnectionState::Connected)
                .count();
            (connects, v.resets, v.errors.len())
        });
        eprintln!("chaos: {name}: {connects} connections, {resets} room resets, {errors} error events, {cuts} cuts");
        assert!(
            connects >= 6,
            "{name} reconnected after every restart ({connects} connections)"
        );
    }
    assert!(cuts >= 5, "connections were cut repeatedly ({cuts} cuts)");

    // Convergence: both outboxes drain, both views reach the server's history.
    for (c, name) in [(&alice, "alice"), (&bob, "bob")] {
        c.wait_outbox_empty(name, Duration::from_secs(90)).await;
    }
    let histories: Vec<Vec<(u64, Uuid)>> = ROOMS.iter().map(|r| server.history(r)).collect();
    let stored: Vec<Uuid> = histories.iter().flatten().map(|(_, id)| *id).collect();
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    assert_eq!(
        stored.len(),
        2 * PER_CLIENT,
        "the server stored exactly 2,000 messages"
    );
    assert_eq!(unique.len(), stored.len(), "no message is stored twice");
    assert!(
        sent.iter().all(|id| unique.contains(id)),
        "every sent message reached the server"
    );
    for (room, history) in ROOMS.iter().zip(&histories) {
        for (c, name) in [(&alice, "alice"), (&bob, "bob")] {
            let view = c.view.clone();
            let expected = history.clone();
            let tail = history.last().copied();
            wait_until(
                &format!("{name} catches up in {room}"),
                Duration::from_secs(60),
                || view.lock().expect("view lock").ids(room).last().copied() == tail,
            )
            .await;
            let seen = c.full_room(room).await;
            assert_eq!(
                seen.len(),
                expected.len(),
                "{name}'s view of {room} has every message of the server's history"
            );
            assert_eq!(
                seen, expected,
                "{name}'s view of {room} equals the server's history (content and order)"
            );
            let (dups, disorder) = c.view(|v| (v.duplicates.clone(), v.out_of_order.clone()));
            assert!(
                dups.is_empty(),
                "{name} never got a message twice: {dups:?}"
            );
            assert!(
                disorder.is_empty(),
                "{name} got messages in order: {disorder:?}"
            );
        }
    }
}

/// A fake server that misbehaves differently on each connection.
async fn fake_server(
    listener: tokio::net::TcpListener,
    connections: Arc<std::sync::atomic::AtomicUsize>,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let n = connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let _connect = ws.next().await;
            let ok = r#"{"id":1,"connect":{"client":"fake","version":"0"}}"#;
            if ws.send(Message::text(ok)).await.is_err() {
                return;
            }
            let bad = match n {
                0 => Message::text("this is {not json"),
                1 => Message::text(r#"{"push":{"channel":"room:x","surprise":{"a":1}}}"#),
                2 => {
                    let huge = "x".repeat(2 * 1024 * 1024);
                    Message::text(format!(
                        r#"{{"push":{{"channel":"room:x","pub":{{"data":"{huge}"}}}}}}"#
                    ))
                }
                3 => Message::Close(Some(CloseFrame {
                    code: CloseCode::from(3503),
                    reason: "force disconnect".into(),
                })),
                _ => {
                    // Behaves: keep the connection open until the client goes away.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
            };
            let _ = ws.send(bad).await;
            while let Some(Ok(_)) = ws.next().await {}
        });
    }
}

/// Malformed frames (invalid JSON, an unknown push type, a push over the size limit) give an
/// error event and a reconnect, never a panic; a "do not reconnect" close code stops
/// reconnecting until `reconnect()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_give_error_and_reconnect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "ws://{}/connection/websocket",
        listener.local_addr().expect("addr")
    );
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(fake_server(listener, connections.clone()));
    let client = Client::start(
        relay_config(&url, &dir.path().join("outbox.db")),
        Arc::new(confab_relay::StaticToken::new(
            confab_protocol::Token::from("not-a-real-token"),
        )),
    );
    wait_until("the relay stops after the terminal close code", T, || {
        client.view(|v| matches!(v.connection.last(), Some(ConnectionState::Offline { .. })))
    })
    .await;
    let errors = client.view(|v| v.errors.clone());
    assert!(
        errors
            .iter()
            .any(|(k, m)| k == "protocol" && m.contains("malformed")),
        "invalid JSON gives a protocol error event: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(k, m)| k == "protocol" && m.contains("unknown push")),
        "an unknown push type gives a protocol error event: {errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|(k, m)| k == "protocol" && m.contains("exceeds the limit")),
        "a push over the reply limit gives a protocol error event: {errors:?}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        4,
        "each malformed frame led to exactly one reconnect, and none after the terminal code"
    );
    let reconnects = client.view(|v| {
        v.connection
            .iter()
            .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
            .count()
    });
    assert_eq!(
        reconnects, 3,
        "three reconnect waits, one per malformed frame"
    );

    // The task survived all of it: an explicit reconnect works.
    client.relay.reconnect();
    wait_until("the relay connects again after reconnect()", T, || {
        client.view(|v| v.connected())
    })
    .await;
    assert_eq!(connections.load(Ordering::SeqCst), 5, "one new connection");
    assert!(
        client.relay.outbox().await.is_ok(),
        "the relay still answers commands"
    );
}

/// A server that stops sending anything (not even its pings) is detected as dead and the relay
/// reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_detected_by_missing_pings() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "ws://{}/connection/websocket",
        listener.local_addr().expect("addr")
    );
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let _connect = ws.next().await;
                // Promises a ping every second, then never sends one (nor closes).
                let ok = r#"{"id":1,"connect":{"client":"fake","ping":1,"pong":true}}"#;
                let _ = ws.send(Message::text(ok)).await;
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    let mut cfg = relay_config(&url, &dir.path().join("outbox.db"));
    cfg.ping_grace = Duration::from_millis(500);
    let client = Client::start(
        cfg,
        Arc::new(confab_relay::StaticToken::new(
            confab_protocol::Token::from("not-a-real-token"),
        )),
    );
    wait_until(
        "the relay gives up on the silent connection and dials again",
        T,
        || connections.load(Ordering::SeqCst) >= 2,
    )
    .await;
    wait_until(
        "the dead connection is reported as an error event",
        T,
        || client.view(|v| v.errors.iter().any(|(_, m)| m.contains("no ping"))),
    )
    .await;
}

/// Hands out an expired token until the server rejects it, then fresh ones from the IdP.
struct ExpiredFirst {
    expired: std::sync::Mutex<Option<confab_protocol::Token>>,
    fresh: Arc<IdpTokens>,
}

impl confab_relay::TokenSource for ExpiredFirst {
    fn token(
        &self,
    ) -> confab_relay::BoxFuture<'_, Result<confab_protocol::Token, confab_relay::TokenError>> {
        let stale = self.expired.lock().expect("lock").clone();
        match stale {
            Some(t) => Box::pin(async move { Ok(t) }),
            None => self.fresh.token(),
        }
    }
    fn rejected(
        &self,
    ) -> confab_relay::BoxFuture<'_, Result<confab_protocol::Token, confab_relay::TokenError>> {
        self.expired.lock().expect("lock").take();
        self.fresh.rejected()
    }
}

/// The server answers `connect` with an expired token with 109; the relay asks the source for
/// a fresh token (`rejected`) and connects with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_at_connect_is_replaced_by_a_fresh_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(2)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let first = idp.login("alice").await.expect("login");
    let exp = confab_testkit::jwt_claims(&first.access_token).expect("claims")["exp"]
        .as_u64()
        .expect("exp claim");
    wait_until("the first token has expired", T, || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() > exp)
            .unwrap_or(false)
    })
    .await;
    let fresh = IdpTokens::login(idp.clone(), "alice").await;
    let source = Arc::new(ExpiredFirst {
        expired: std::sync::Mutex::new(Some(confab_protocol::Token::new(
            first.access_token.clone(),
        ))),
        fresh: fresh.clone(),
    });
    let client = Client::start(
        relay_config(&server.url(), &dir.path().join("a.db")),
        source,
    );
    client.wait_connected(T).await;
    assert_eq!(
        fresh.rejections.load(Ordering::SeqCst),
        1,
        "the expired token was rejected once and replaced"
    );
    let rooms = client.relay.list_rooms().await.expect("list rooms");
    assert!(
        rooms.iter().any(|r| r.id == "general"),
        "the connection with the fresh token works"
    );
}

/// A UI that stops reading does not make the relay buffer without limit: events beyond the
/// channel's capacity are dropped and the room is marked stale; once the UI reads again it gets
/// a RoomReset with the latest page, and older pages complete the history — nothing is shown
/// twice or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_ui_gets_a_room_reset_instead_of_unbounded_buffering() {
    const N: usize = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    alice.wait_connected(T).await;
    alice
        .relay
        .create_room("Slow", Some("slow"), false)
        .await
        .expect("create");
    alice.relay.open_room("slow").await.expect("alice opens");

    let mut cfg = relay_config(&server.url(), &dir.path().join("bob.db"));
    cfg.event_capacity = 16;
    cfg.page_size = 20;
    let (bob, mut events) =
        confab_relay::RelayHandle::start(cfg, IdpTokens::login(idp.clone(), "bob").await)
            .expect("bob's relay starts");
    bob.join_room("slow").await.expect("join");
    bob.open_room("slow").await.expect("bob opens");

    // Bob's UI reads nothing while N messages arrive.
    for i in 0..N {
        alice
            .relay
            .send("slow", &format!("m{i}"))
            .await
            .expect("send");
    }
    wait_until("the server stored every message", T, || {
        server.history("slow").len() == N
    })
    .await;
    wait_until("bob's event channel fills up", T, || events.len() == 16).await;
    let top_before = server.history("slow").len();
    assert_eq!(top_before, N, "all messages are on the server");
    assert_eq!(
        events.len(),
        16,
        "the event channel holds at most its capacity while the UI does not read"
    );

    // Bob's UI reads again.
    let view = Arc::new(std::sync::Mutex::new(View::default()));
    let v = view.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            v.lock().expect("view lock").apply(ev);
        }
    });
    let top = server.history("slow").last().map(|(o, _)| *o);
    wait_until("bob's view reaches the newest message", T, || {
        view.lock()
            .expect("view lock")
            .ids("slow")
            .last()
            .map(|(o, _)| *o)
            == top
    })
    .await;
    let (resets, dups, disorder, mut ids) = {
        let v = view.lock().expect("view lock");
        (
            v.resets,
            v.duplicates.clone(),
            v.out_of_order.clone(),
            v.ids("slow"),
        )
    };
    assert!(
        resets >= 2,
        "the dropped events were replaced by a RoomReset ({resets} resets)"
    );
    assert!(dups.is_empty(), "no message shown twice: {dups:?}");
    assert!(disorder.is_empty(), "messages in order: {disorder:?}");
    while let Some(&(first, _)) = ids.first() {
        if first <= 1 {
            break;
        }
        let page = bob.load_older("slow", first).await.expect("older page");
        let mut older: Vec<_> = page.messages.iter().map(|e| (e.offset, e.id)).collect();
        assert!(!older.is_empty(), "older pages exist until offset 1");
        older.extend(ids);
        ids = older;
    }
    assert_eq!(
        ids,
        server.history("slow"),
        "the reset page plus older pages equal the server's history"
    );
}

/// `wss://`: a client behind TLS (trusting the proxy's CA) and a plain client chat both ways
/// through the same server; a client that does not trust the certificate never connects and
/// says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_carries_chat_both_ways_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let tls = TlsProxy::start(server.addr.expect("server is running")).await;
    let alice = Client::start_with(
        relay_config(&tls.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
        tls.connector(),
    );
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;
    shared_room(&alice, &bob, "tls").await; // alice over wss
    for i in 0..20 {
        alice
            .relay
            .send("tls", &format!("from alice {i}"))
            .await
            .expect("alice sends");
        bob.relay
            .send("tls", &format!("from bob {i}"))
            .await
            .expect("bob sends");
    }
    wait_until("both see the 40 messages", T, || {
        alice.view(|v| v.ids("tls").len()) == 40 && bob.view(|v| v.ids("tls").len()) == 40
    })
    .await;
    let history = server.history("tls");
    assert_eq!(alice.view(|v| v.ids("tls")), history, "wss client = server");
    assert_eq!(bob.view(|v| v.ids("tls")), history, "ws client = server");
    let texts = |c: &Client| {
        c.view(|v| {
            v.rooms["tls"]
                .iter()
                .map(|m| m.text().to_owned())
                .collect::<HashSet<_>>()
        })
    };
    assert!(
        texts(&bob).contains("from alice 19") && texts(&alice).contains("from bob 19"),
        "messages cross between the TLS and the plain connection"
    );

    // The default roots (Mozilla's) do not include the test CA.
    let untrusting = Client::start(
        relay_config(&tls.url(), &dir.path().join("alice2.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    wait_until("the refused certificate is reported", T, || {
        untrusting.view(|v| {
            v.errors
                .iter()
                .any(|(k, m)| k == "tls" && m.contains("invalid peer certificate"))
        })
    })
    .await;
    wait_until("a few more attempts", T, || {
        untrusting.view(|v| {
            v.connection
                .iter()
                .filter(|s| matches!(s, ConnectionState::Reconnecting { .. }))
                .count()
                >= 3
        })
    })
    .await;
    assert_eq!(
        untrusting.view(|v| v.errors.iter().filter(|(k, _)| k == "tls").count()),
        1,
        "the same certificate problem is told once, not at every attempt"
    );
    assert!(
        untrusting.view(|v| !v.connection.contains(&ConnectionState::Connected)),
        "a connection to an untrusted certificate is never made"
    );
}

/// A room holding the largest messages allowed: a fresh client opens it and pages through it
/// (the server cuts pages to its reply cap). A client with a smaller reply limit gets a
/// per-request error instead of a reconnect loop: an older page fails alone, the room's page
/// fails with `RoomFailed` and is tried again with a growing backoff that a reconnect does
/// not cut short, and the connection stays up throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_replies_fail_their_request_not_the_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    alice.wait_connected(T).await;
    alice
        .relay
        .create_room("Big", Some("big"), false)
        .await
        .expect("room created");
    alice.relay.open_room("big").await.expect("alice opens");
    let largest = "😀".repeat(4000);
    let mut ids = Vec::new();
    for i in 0..50 {
        let text = if i < 45 {
            largest.clone()
        } else {
            format!("small {i}")
        };
        ids.push(alice.relay.send("big", &text).await.expect("queued"));
    }
    wait_until("alice's 50 messages are sent", T, || {
        alice.view(|v| {
            ids.iter()
                .all(|id| matches!(v.states.get(id), Some(SendState::Sent { .. })))
        })
    })
    .await;

    // A fresh client with the default limit opens the room and reaches every message.
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    bob.wait_connected(T).await;
    bob.relay.join_room("big").await.expect("bob joins");
    let page = bob
        .relay
        .open_room("big")
        .await
        .expect("bob opens the room");
    assert!(
        !page.messages.is_empty() && page.messages.len() < 50,
        "the latest page is cut by the server's reply cap: {} messages",
        page.messages.len()
    );
    wait_until("bob's view has the page", T, || {
        bob.view(|v| v.rooms.get("big").is_some_and(|l| !l.is_empty()))
    })
    .await;
    let all = bob.full_room("big").await;
    assert_eq!(
        all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u64>>(),
        "paging back reaches every message"
    );
    assert_eq!(
        bob.view(|v| v
            .connection
            .iter()
            .filter(|s| **s == ConnectionState::Connected)
            .count()),
        1,
        "bob never reconnected"
    );

    // Clients (bob again) that accept 64 KiB per reply, through a proxy that can cut them.
    let proxy = Proxy::start().await;
    proxy.set_upstream(server.addr);
    let small = |name: &str, page: u32| {
        RelayConfig::builder(proxy.url(), dir.path().join(format!("{name}.db")))
            .backoff(Duration::from_millis(50), Duration::from_millis(500))
            .request_timeout(Duration::from_secs(20))
            .event_capacity(8192)
            .page_size(page)
            .max_frame_bytes(64 * 1024)
            .build()
    };
    let carol = Client::start(
        small("carol", 5),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    carol.wait_connected(T).await;
    carol.relay.join_room("big").await.expect("carol joins");
    let page = carol
        .relay
        .open_room("big")
        .await
        .expect("five small messages fit");
    assert_eq!(page.messages.len(), 5);
    let older = carol.relay.load_older("big", 46).await;
    assert!(
        matches!(older, Err(Error::ReplyTooLarge { max: 65536, .. })),
        "five of the largest messages are over 64 KiB: that page fails alone: {older:?}"
    );
    assert!(carol.view(|v| v.connected()), "carol's connection stays up");

    let dave = Client::start(
        small("dave", 50),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    dave.wait_connected(T).await;
    dave.relay.join_room("big").await.expect("dave joins");
    let opened = dave.relay.open_room("big").await;
    assert!(
        matches!(opened, Err(Error::ReplyTooLarge { .. })),
        "the latest page is too large for dave: {opened:?}"
    );
    wait_until("the room's page is tried again by itself", T, || {
        dave.view(|v| v.failed.len() >= 2)
    })
    .await;
    proxy.cut_all();
    wait_until("dave reconnects", T, || {
        dave.view(|v| {
            v.connection
                .iter()
                .filter(|s| **s == ConnectionState::Connected)
                .count()
                >= 2
        })
    })
    .await;
    wait_until("a third try", T, || dave.view(|v| v.failed.len() >= 3)).await;
    let failed = dave.view(|v| v.failed.clone());
    let waits: Vec<Duration> = failed.iter().map(|f| f.2).collect();
    assert_eq!(
        waits[..3],
        [
            Duration::from_secs(2),
            Duration::from_secs(4),
            Duration::from_secs(8)
        ],
        "the backoff doubles while the page keeps failing"
    );
    for pair in failed[..3].windows(2) {
        let gap = pair[1].3.duration_since(pair[0].3);
        assert!(
            gap >= pair[0].2,
            "the next try waited for the backoff ({gap:?} >= {:?}), reconnect or not",
            pair[0].2
        );
    }
    assert!(
        failed
            .iter()
            .all(|f| f.0 == "big" && f.1.contains("too large")),
        "the room is named and the reason given: {failed:?}"
    );
    assert_eq!(
        dave.view(|v| v
            .connection
            .iter()
            .filter(|s| **s == ConnectionState::Connected)
            .count()),
        2,
        "only the cut made dave reconnect"
    );
}

/// 2,200 rooms with the longest ids and names (about 1.1 MB as one list, over the relay's
/// 1 MiB reply limit): `list_rooms` reads them page by page and returns every room once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_rooms_are_listed_page_by_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let mut config = server_config(&idp, &dir.path().join("server.db"), 0);
    config.max_rooms_per_user = 2_200;
    let server = TestServer::start(config).await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    alice.wait_connected(T).await;
    let name = "😀".repeat(100);
    for chunk in 0..22 {
        let creates = (0..100).map(|i| {
            let id = format!("r{:04}-{}", chunk * 100 + i, "x".repeat(58));
            let (relay, name) = (&alice.relay, &name);
            async move { relay.create_room(name, Some(&id), false).await }
        });
        for created in futures_util::future::join_all(creates).await {
            created.expect("room created");
        }
    }
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    bob.wait_connected(T).await;
    let rooms = bob.relay.list_rooms().await.expect("the list loads");
    let ids: HashSet<&str> = rooms.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rooms.len(), 2_201, "2,200 rooms and general");
    assert_eq!(ids.len(), rooms.len(), "no room twice");
    assert!(rooms.iter().all(|r| r.id == "general" || r.name == name));
    assert_eq!(
        bob.view(|v| v.connection.len()),
        2,
        "connecting, connected: no reconnect while listing"
    );
}

/// Private rooms through the relay: an invitation lets bob join and read; removed by the owner,
/// his relay stops following the room at once (`RoomClosed`, once); leaving closes it the same
/// way with its own reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_or_leaving_member_stops_following_the_room() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;
    let room = alice
        .relay
        .create_room("Secret", Some("secret"), true)
        .await
        .expect("created");
    assert!(room.private && room.member);
    assert!(
        !bob.relay
            .list_rooms()
            .await
            .expect("list")
            .iter()
            .any(|r| r.id == "secret"),
        "bob does not see it"
    );
    alice.relay.invite("secret", "bob").await.expect("invited");
    let listed = bob.relay.list_rooms().await.expect("list");
    assert!(listed
        .iter()
        .any(|r| r.id == "secret" && r.invited && !r.member));
    bob.relay.join_room("secret").await.expect("bob joins");
    bob.relay.open_room("secret").await.expect("bob opens");
    let members = alice.relay.members("secret").await.expect("members");
    assert_eq!(
        (members.members, members.owner.as_str()),
        (vec!["alice".to_owned(), "bob".to_owned()], "alice")
    );

    alice
        .relay
        .remove_member("secret", "bob")
        .await
        .expect("removed");
    wait_until("bob's relay closes the room", T, || {
        bob.view(|v| !v.closed.is_empty())
    })
    .await;
    assert_eq!(
        bob.view(|v| v.closed.clone()),
        vec![("secret".to_owned(), "removed from the room".to_owned())]
    );
    let reopen = bob.relay.open_room("secret").await;
    assert!(
        matches!(reopen, Err(Error::Server { code: 102, .. })),
        "{reopen:?}"
    );

    bob.relay
        .create_room("Mine", Some("mine"), false)
        .await
        .expect("bob's room");
    bob.relay.open_room("mine").await.expect("open");
    bob.relay.leave_room("mine").await.expect("bob leaves");
    wait_until("the leave is told", T, || {
        bob.view(|v| v.closed.iter().any(|c| c.0 == "mine"))
    })
    .await;
    let mine: Vec<_> = bob.view(|v| v.closed.iter().filter(|c| c.0 == "mine").cloned().collect());
    assert_eq!(
        mine,
        [("mine".to_owned(), "left the room".to_owned())],
        "told once (the leave's reply and the server's push close it together), with the reason"
    );
    assert!(bob.view(|v| v.connected()), "the connection stays up");
}

/// A recovery whose missed messages are too large for this client (64 KiB per reply here) is
/// not a reconnect loop: the relay leaves the subscription the server made, subscribes again
/// without recovery and loads the latest page, on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_too_large_to_receive_reloads_the_latest_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    alice.wait_connected(T).await;
    alice
        .relay
        .create_room("Rec", Some("rec"), false)
        .await
        .expect("room");
    alice.relay.open_room("rec").await.expect("alice opens");

    let proxy = Proxy::start().await;
    proxy.set_upstream(server.addr);
    let config = RelayConfig::builder(proxy.url(), dir.path().join("bob.db"))
        .backoff(Duration::from_millis(50), Duration::from_millis(300))
        .request_timeout(Duration::from_secs(20))
        .event_capacity(8192)
        .page_size(2)
        .max_frame_bytes(64 * 1024)
        .build();
    let bob = Client::start(config, IdpTokens::login(idp.clone(), "bob").await);
    bob.wait_connected(T).await;
    bob.relay.join_room("rec").await.expect("bob joins");
    bob.relay
        .open_room("rec")
        .await
        .expect("bob opens the empty room");

    // Bob is cut off while eight of the largest messages (about 128 KB) arrive.
    proxy.set_upstream(None);
    proxy.cut_all();
    wait_until("bob notices", T, || bob.view(|v| !v.connected())).await;
    let largest = "😀".repeat(4000);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(alice.relay.send("rec", &largest).await.expect("queued"));
    }
    wait_until("alice's messages are stored", T, || {
        alice.view(|v| {
            ids.iter()
                .all(|id| matches!(v.states.get(id), Some(SendState::Sent { .. })))
        })
    })
    .await;
    proxy.set_upstream(server.addr);
    wait_until("bob's room shows the latest page", T, || {
        bob.view(|v| v.ids("rec").iter().map(|(o, _)| *o).collect::<Vec<_>>() == vec![7, 8])
    })
    .await;
    assert_eq!(
        bob.view(|v| v
            .connection
            .iter()
            .filter(|s| **s == ConnectionState::Connected)
            .count()),
        2,
        "one reconnect after the cut, none for the recovery"
    );
    assert!(
        !bob.view(|v| v
            .errors
            .iter()
            .any(|(_, m)| m.contains("already subscribed"))),
        "the relay left the server's subscription before subscribing again"
    );
}

/// A restart follows a room from the position the last run saved: the messages sent meanwhile
/// arrive by the server's recovery (no page load); a position the server cannot recover from
/// (another epoch) reloads the latest page instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_position_recovers_what_was_missed_without_a_page_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;
    let alice_tokens = IdpTokens::login(idp.clone(), "alice").await;
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        alice_tokens.clone(),
    );
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(T).await;
    bob.wait_connected(T).await;
    shared_room(&alice, &bob, "resume").await;
    for text in ["one", "two"] {
        alice.relay.send("resume", text).await.expect("send");
    }
    wait_until("alice has both", T, || {
        alice.view(|v| v.ids("resume").len() == 2)
    })
    .await;
    let saved = alice
        .view(|v| v.positions.get("resume").cloned())
        .expect("a position");
    assert_eq!(saved.1, 2, "the position follows the messages");
    alice.relay.shutdown().await;

    let mut missed = Vec::new();
    for text in ["three", "four", "five"] {
        missed.push(bob.relay.send("resume", text).await.expect("send"));
    }
    bob.wait_outbox_empty("bob", T).await;

    let again = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        alice_tokens.clone(),
    );
    again
        .relay
        .follow_room("resume", Some(saved.clone()))
        .await
        .expect("follow");
    wait_until("the missed messages arrive", T, || {
        again.view(|v| v.ids("resume").len() == 3)
    })
    .await;
    assert_eq!(
        again.view(|v| v.ids("resume")),
        missed
            .iter()
            .enumerate()
            .map(|(i, id)| (i as u64 + 3, *id))
            .collect::<Vec<_>>(),
        "exactly the missed messages, in order"
    );
    assert_eq!(again.view(|v| v.resets), 0, "recovered, no page was loaded");
    assert_eq!(again.view(|v| v.positions.get("resume").cloned()), None);
    again.relay.shutdown().await;

    // A position from another epoch cannot be recovered: the latest page comes instead.
    let stale = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        alice_tokens,
    );
    stale
        .relay
        .follow_room("resume", Some(("another-epoch".into(), 2)))
        .await
        .expect("follow");
    wait_until("the room is reloaded", T, || stale.view(|v| v.resets == 1)).await;
    assert_eq!(stale.view(|v| v.ids("resume").len()), 5, "the latest page");
    assert_eq!(
        stale.view(|v| v.positions.get("resume").cloned()),
        Some((saved.0, 5)),
        "the reload says the room's real position"
    );
}
