//! Chat relay benchmark (plain `harness = false`): `cargo bench -p confab-relay`.
//!
//! 1. Receive throughput. N chat publications are published to the real confab-server and read
//!    back from its store, then encoded as the server's push frames (one publication per frame,
//!    repeated with fresh offsets up to FRAMES frames) and replayed at full speed by a local
//!    WebSocket feeder to, one at a time: a bare
//!    tokio-tungstenite read loop (counts push frames, no JSON parsing: the ceiling), confab-relay
//!    (decode, dedupe, `Message` events read by a consumer) and the official JS SDK (`centrifuge`
//!    on Node, from tests/peers). The feeder starts streaming after the subscribe reply, or for
//!    confab-relay after the history reply that follows it (the relay loads the room's page
//!    before it applies live publications). Each receiver's rate is timed from its first
//!    publication to its last, so connecting, subscribing and loading the room are not part of
//!    it: only receiving and decoding the stream. Each receiver (the bare loop, and the relay's
//!    event consumer) runs as a task on the runtime's two workers, as the app's event pump does.
//!    For scale it also times serde_json merely checking the same frames (no socket, one core):
//!    a ceiling for any client that decodes every frame with it; and the relay's own decode of
//!    each frame alone (entries built, no socket, no hand-over).
//! 2. Delivery latency between two relay clients through confab-server at 1,000 messages/s:
//!    from `send()` on one client (which includes the durable outbox write) to the `Message`
//!    event on the other.
//!
//! Needs node and `npm ci` in tests/idp and tests/peers. Prints Markdown rows.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use confab_protocol::{encode_frame, Push, Reply};
use confab_relay::{Event, RelayConfig, RelayHandle, StaticToken};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

const N: usize = 20_000;
/// Frames replayed per receiver (the N real publications, repeated with fresh offsets). At
/// 100,000 a round of the native receivers lasted about 25 ms, short enough for one hiccup of
/// this VM's scheduling to move it by half; rounds of 500,000 (about 0.1 s) spread less.
const FRAMES: usize = 500_000;
/// Rounds per receiver; the median is reported.
const ROUNDS: usize = 7;
/// Upper bound for any one step, so a stuck step fails the bench instead of hanging it.
const STEP: Duration = Duration::from_secs(120);

fn peers_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

/// The whole stream as WebSocket wire bytes (unmasked server text frames, one per publication),
/// encoded once, so replaying it costs the feeder a plain socket write: the feeder shares this
/// machine's two cores with the receiver under test, and a feeder that framed each message
/// again would take CPU from whichever receiver uses more than one thread.
fn wire_bytes(frames: &[confab_relay::Utf8Bytes]) -> Vec<u8> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 10).sum());
    for f in frames {
        Frame::message(f.as_bytes().to_vec(), OpCode::Data(Data::Text), true)
            .format(&mut out)
            .expect("frame encodes");
    }
    out
}

/// Replays the stream to each client after its subscribe (or, for confab-relay, history) reply.
async fn feeder(wire: Arc<Vec<u8>>) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind feeder");
    let url = format!(
        "ws://{}/connection/websocket",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let wire = wire.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let mut is_relay = false;
                while let Some(Ok(msg)) = ws.next().await {
                    let Message::Text(text) = msg else { continue };
                    for line in text.as_str().lines() {
                        let Ok(cmd) = serde_json::from_str::<Value>(line) else {
                            continue;
                        };
                        let id = cmd["id"].as_u64().unwrap_or(0);
                        let mut blast = false;
                        let reply = if cmd.get("connect").is_some() {
                            is_relay = cmd["connect"]["name"] == "confab-relay";
                            format!(
                                r#"{{"id":{id},"connect":{{"client":"feeder","version":"bench"}}}}"#
                            )
                        } else if cmd.get("subscribe").is_some() {
                            blast = !is_relay;
                            format!(
                                r#"{{"id":{id},"subscribe":{{"recoverable":true,"positioned":true,"epoch":"bench"}}}}"#
                            )
                        } else if cmd.get("history").is_some() {
                            blast = is_relay;
                            format!(r#"{{"id":{id},"history":{{"epoch":"bench"}}}}"#)
                        } else {
                            continue;
                        };
                        // `send` flushes, so nothing of tungstenite's is buffered when the raw
                        // stream bytes follow on the same socket.
                        if ws.send(Message::text(reply)).await.is_err() {
                            return;
                        }
                        if blast {
                            let socket = ws.get_mut();
                            if socket.write_all(&wire).await.is_err()
                                || socket.flush().await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    url
}

async fn bare_loop(url: &str) -> Duration {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("bare connect");
    ws.send(Message::text(
        r#"{"id":1,"connect":{"token":"bench","name":"bare"}}
{"id":2,"subscribe":{"channel":"room:bench"}}"#,
    ))
    .await
    .expect("send");
    let mut seen = 0;
    let mut first = None;
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(t) = msg {
            let n = t
                .as_str()
                .lines()
                .filter(|l| l.starts_with(r#"{"push""#))
                .count();
            if n > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            seen += n;
            if seen >= FRAMES {
                break;
            }
        }
    }
    first.expect("publications arrived").elapsed()
}

async fn relay_client(url: &str, dir: &std::path::Path) -> Duration {
    // Room for the whole stream: the consumer reads concurrently, but if it fell behind a
    // smaller channel would drop events (the relay's slow-UI policy) and the count would
    // never be reached.
    let config = RelayConfig::builder(url, dir.join("bench-outbox.db"))
        .event_capacity(FRAMES + 1024)
        .build();
    let (relay, mut events) = RelayHandle::start(
        config,
        Arc::new(StaticToken::new(confab_protocol::Token::from("bench"))),
    )
    .expect("relay starts");
    let r = relay.clone();
    tokio::spawn(async move { r.open_room("bench").await });
    let mut seen = 0;
    let mut first = None;
    while let Some(ev) = events.recv().await {
        match ev {
            Event::Message(_) => {
                if first.is_none() {
                    first = Some(Instant::now());
                }
                seen += 1;
                if seen >= FRAMES {
                    break;
                }
            }
            Event::RoomReset { .. } if first.is_some() => {
                panic!("events were dropped for a slow consumer during the stream")
            }
            _ => {}
        }
    }
    let elapsed = first.expect("publications arrived").elapsed();
    relay.shutdown().await;
    elapsed
}

async fn js_client(url: &str) -> Option<Duration> {
    let node = std::env::var("CONFAB_NODE").unwrap_or_else(|_| "node".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/js_receiver.cjs");
    let out = tokio::process::Command::new(node)
        .arg(script)
        .env("PEERS_DIR", peers_dir())
        .env("URL", url)
        .env("COUNT", FRAMES.to_string())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ms: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ELAPSED_MS "))?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(ms / 1e3))
}

/// CPU time used so far by this process's threads (Linux: `/proc/self/task/*/schedstat`),
/// `None` where that cannot be read. A thread that ended is no longer counted.
fn process_cpu() -> Option<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // ended meanwhile
        };
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(ns))
}

/// Runs one receiver's round as a task and returns its first-to-last time, with the whole
/// process's CPU time over the round (connecting included, the feeder too) and the round's
/// wall time.
async fn round_of<F>(receiver: F) -> (Duration, Option<(Duration, Duration)>)
where
    F: std::future::Future<Output = Duration> + Send + 'static,
{
    let (cpu, wall) = (process_cpu(), Instant::now());
    let d = tokio::spawn(async move { tokio::time::timeout(STEP, receiver).await })
        .await
        .expect("receiver task")
        .expect("receiver done in time");
    let used = cpu
        .zip(process_cpu())
        .map(|(a, b)| (b.saturating_sub(a), wall.elapsed()));
    (d, used)
}

/// Median CPU per publication and cores busy, over the rounds' `(cpu, wall)`.
fn cpu_figures(rounds: &[(Duration, Duration)]) -> Option<(f64, f64)> {
    if rounds.is_empty() {
        return None;
    }
    let ns = median(rounds.iter().map(|(c, _)| *c).collect()).as_nanos() as f64 / FRAMES as f64;
    let mut cores: Vec<f64> = rounds
        .iter()
        .map(|(c, w)| c.as_secs_f64() / w.as_secs_f64())
        .collect();
    cores.sort_by(f64::total_cmp);
    Some((ns, cores[cores.len() / 2]))
}

/// Publications per second from the first to the last (FRAMES - 1 intervals).
fn rate(d: Duration) -> f64 {
    (FRAMES - 1) as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = start_idp(Duration::from_secs(300)).await;
    let server = TestServer::start(server_config(&idp, &dir.path().join("server.db"), 0)).await;

    // Publish N messages through two relay clients' worth of real traffic (alice sends).
    let alice = Client::start(
        relay_config(&server.url(), &dir.path().join("alice.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    );
    let bob = Client::start(
        relay_config(&server.url(), &dir.path().join("bob.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    );
    alice.wait_connected(Duration::from_secs(30)).await;
    bob.wait_connected(Duration::from_secs(30)).await;
    alice
        .relay
        .create_room("Bench", Some("bench"), false)
        .await
        .expect("create room");
    bob.relay.join_room("bench").await.expect("join");
    alice.relay.open_room("bench").await.expect("open");

    // --- Part 2 first (the room is empty): latency at 1,000 messages/s.
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Instant)>();
    let (bob_relay, mut bob_events) = RelayHandle::start(
        relay_config(&server.url(), &dir.path().join("bob2.db")),
        IdpTokens::login(idp.clone(), "bob").await,
    )
    .expect("bob2");
    tokio::time::timeout(STEP, bob_relay.open_room("bench"))
        .await
        .expect("bob opens in time")
        .expect("bob opens");
    eprintln!("bench: latency part");
    let receiver = tokio::spawn(async move {
        let mut got: HashMap<Uuid, Instant> = HashMap::new();
        while let Some(ev) = bob_events.recv().await {
            if let Event::Message(m) = ev {
                got.insert(m.id, Instant::now());
                if got.len() >= 5_000 {
                    break;
                }
            }
        }
        got
    });
    // The sender: its own relay, so acknowledgement times can be recorded too.
    let (sender, mut sender_events) = RelayHandle::start(
        relay_config(&server.url(), &dir.path().join("alice2.db")),
        IdpTokens::login(idp.clone(), "alice").await,
    )
    .expect("sender");
    tokio::time::timeout(STEP, sender.open_room("bench"))
        .await
        .expect("sender opens in time")
        .expect("sender opens");
    let acks = tokio::spawn(async move {
        let mut got: HashMap<Uuid, Instant> = HashMap::new();
        while let Some(ev) = sender_events.recv().await {
            if let Event::MessageState {
                id,
                state: confab_relay::SendState::Sent { .. },
                ..
            } = ev
            {
                got.insert(id, Instant::now());
                if got.len() >= 5_000 {
                    break;
                }
            }
        }
        got
    });
    let mut sent_at: Vec<(Uuid, Instant)> = Vec::with_capacity(5_000);
    let mut send_calls = Vec::with_capacity(5_000);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for i in 0..5_000 {
        tick.tick().await;
        let t = Instant::now();
        let id = tokio::time::timeout(STEP, sender.send("bench", &format!("lat {i}")))
            .await
            .expect("send() returns in time")
            .expect("send");
        send_calls.push(t.elapsed());
        sent_at.push((id, t));
        let _ = lat_tx.send((id, t));
    }
    drop(lat_tx);
    eprintln!("bench: 5,000 sent, waiting for delivery");
    let got = tokio::time::timeout(Duration::from_secs(120), receiver)
        .await
        .expect("all latency messages arrive")
        .expect("receiver task");
    let mut lats = Vec::new();
    while let Some((id, t)) = lat_rx.recv().await {
        if let Some(r) = got.get(&id) {
            lats.push(r.duration_since(t));
        }
    }
    lats.sort();
    let p = |q: f64| lats[((lats.len() as f64 - 1.0) * q) as usize];
    let acked = tokio::time::timeout(Duration::from_secs(120), acks)
        .await
        .expect("all acks arrive")
        .expect("ack task");
    let mut ack_lats: Vec<Duration> = sent_at
        .iter()
        .filter_map(|(id, t)| acked.get(id).map(|a| a.duration_since(*t)))
        .collect();
    ack_lats.sort();
    send_calls.sort();
    let q = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;

    // --- Part 1: frames of the server's history, replayed.
    let history = {
        let store =
            confab_server::store::Store::open(&server.db(), 1_000_000).expect("open server store");
        let mut pubs = store
            .read("room:bench", None, false, u64::MAX / 2)
            .expect("read");
        // Top up to N with more real traffic if needed.
        while pubs.len() < N {
            eprintln!(
                "bench: publishing {} more through the server",
                N - pubs.len()
            );
            let missing = N - pubs.len();
            for i in 0..missing {
                alice
                    .relay
                    .send("bench", &format!("tp {i}"))
                    .await
                    .expect("send");
            }
            let db = server.db();
            wait_until(
                "the server stored N messages",
                Duration::from_secs(300),
                || history_of(&db, "bench").len() >= N,
            )
            .await;
            pubs = store
                .read("room:bench", None, false, u64::MAX / 2)
                .expect("read");
        }
        pubs.truncate(N);
        pubs
    };
    eprintln!("bench: throughput part");
    let frames: Vec<confab_relay::Utf8Bytes> = (0..FRAMES)
        .map(|i| {
            let mut p = history[i % N].clone();
            p.offset = i as u64 + 1;
            encode_frame(&[Reply::push(Push {
                channel: "room:bench".into(),
                publication: Some(p),
                ..Push::default()
            })])
            .expect("encode")
            .into()
        })
        .collect();
    let bytes: usize = frames.iter().map(|f| f.len()).sum();
    // The JSON floor: serde_json only checking each frame (building nothing), one core. No
    // client that decodes every frame with it can go faster than this.
    let json_floor = {
        let started = Instant::now();
        for f in &frames {
            serde_json::from_str::<serde::de::IgnoredAny>(f).expect("frames are JSON");
        }
        started.elapsed()
    };
    // The relay's own decode of each frame (as its connection loop does it, entries built),
    // one core, no socket and no hand-over: the most its single decoding task could reach.
    let decode_only = {
        let started = Instant::now();
        let made: usize = frames
            .iter()
            .map(confab_relay::decode_frame_for_bench)
            .sum();
        assert_eq!(made, FRAMES, "every frame decodes to one chat entry");
        started.elapsed()
    };
    let url = feeder(Arc::new(wire_bytes(&frames))).await;

    let mut bare = Vec::new();
    let mut relay = Vec::new();
    let mut js = Vec::new();
    let (mut bare_cpu, mut relay_cpu) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Each receiver runs as a task on the runtime's two workers, as the app's event pump
        // does (src-tauri/src/chat.rs), not on the bench's main thread (a third thread).
        let u = url.clone();
        let (b, cpu) = round_of(async move { bare_loop(&u).await }).await;
        bare.push(b);
        bare_cpu.extend(cpu);
        let d = dir.path().join(format!("r{round}"));
        std::fs::create_dir_all(&d).expect("dir");
        let u = url.clone();
        let (r, cpu) = round_of(async move { relay_client(&u, &d).await }).await;
        relay.push(r);
        relay_cpu.extend(cpu);
        let j = js_client(&url).await;
        eprintln!(
            "bench: round {round}: bare {:.0}/s, relay {:.0}/s, js {}",
            rate(b),
            rate(r),
            j.map(|j| format!("{:.0}/s", rate(j)))
                .unwrap_or_else(|| "not run".into())
        );
        if let Some(j) = j {
            js.push(j);
        }
    }
    let (bare, relay) = (median(bare), median(relay));
    println!(
        "receive throughput, {FRAMES} publications ({:.1} MB of frames), first to last publication, median of {ROUNDS}:",
        bytes as f64 / 1e6
    );
    println!("| receiver | publications/s | relative to bare loop |");
    println!("|---|---|---|");
    println!(
        "| bare tokio-tungstenite read loop | {:.0} | 100% |",
        rate(bare)
    );
    println!(
        "| confab-relay (decode, dedupe, events) | {:.0} | {:.0}% |",
        rate(relay),
        100.0 * rate(relay) / rate(bare)
    );
    println!(
        "| (for scale) serde_json checking each frame, building nothing, one core, no socket | {:.0} | {:.0}% |",
        FRAMES as f64 / json_floor.as_secs_f64(),
        100.0 * (FRAMES as f64 / json_floor.as_secs_f64()) / rate(bare)
    );
    println!(
        "| (for scale) confab-relay's frame decode alone (entries built), one core, no socket | {:.0} | {:.0}% |",
        FRAMES as f64 / decode_only.as_secs_f64(),
        100.0 * (FRAMES as f64 / decode_only.as_secs_f64()) / rate(bare)
    );
    if js.is_empty() {
        println!("| centrifuge-js (Node) | not run (node or tests/peers/node_modules missing) | |");
    } else {
        let js = median(js);
        println!(
            "| centrifuge-js (Node) | {:.0} | {:.0}% (relay = {:.1}x JS) |",
            rate(js),
            100.0 * rate(js) / rate(bare),
            rate(relay) / rate(js)
        );
    }
    if let (Some((b_ns, b_cores)), Some((r_ns, r_cores))) =
        (cpu_figures(&bare_cpu), cpu_figures(&relay_cpu))
    {
        println!();
        println!("CPU of the whole process per publication (feeder included, connecting included), median of {ROUNDS}:");
        println!("| receiver | CPU per publication | cores busy |");
        println!("|---|---|---|");
        println!("| bare loop | {b_ns:.0} ns | {b_cores:.2} |");
        println!("| confab-relay | {r_ns:.0} ns | {r_cores:.2} |");
    }
    println!();
    println!(
        "delivery latency, relay -> confab-server -> relay, 5,000 messages at 1,000/s ({} delivered):",
        lats.len()
    );
    println!("| p50 | p90 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        p(0.5).as_secs_f64() * 1e3,
        p(0.9).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        p(1.0).as_secs_f64() * 1e3
    );
    println!();
    println!("where the time goes (same run), ms:");
    println!("| step | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| `send()` returns (durable outbox insert) | {:.2} | {:.2} |",
        q(&send_calls, 0.5),
        q(&send_calls, 0.99)
    );
    println!(
        "| `send()` → publish acknowledged (`sent` state on the sender) | {:.2} | {:.2} |",
        q(&ack_lats, 0.5),
        q(&ack_lats, 0.99)
    );
    println!(
        "| `send()` → `Message` on the receiver | {:.2} | {:.2} |",
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3
    );
    drop(bob);
}
