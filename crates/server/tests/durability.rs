//! Durability with the real binary: publications acknowledged before a SIGKILL are all in
//! history after restart, with the same offsets and epoch. Also checks the ready line, the
//! config file and flags.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::*;
use confab_testkit::{Idp, IdpOptions};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `confab-server` and returns it with its WebSocket URL from the ready line.
async fn start_binary(config_file: &Path, db: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab-server"))
        .arg("--config")
        .arg(config_file)
        .arg("--db")
        .arg(db)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("confab-server binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("ready line within the deadline")
        .expect("stdout readable")
        .expect("server printed a line before exiting");
    let url = line
        .strip_prefix("CONFAB_SERVER_READY url=")
        .unwrap_or_else(|| panic!("first stdout line is the ready line, got {line:?}"))
        .to_owned();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/connection/websocket"),
        "ready line names the WebSocket URL"
    );
    (child, url)
}

#[tokio::test]
async fn acknowledged_publications_survive_sigkill_with_the_same_offsets_and_epoch() {
    let idp = Idp::start(IdpOptions::default()).await.expect("IdP starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let config_file = dir.path().join("server.toml");
    std::fs::write(
        &config_file,
        format!("issuer = \"{}\"\naudience = \"confab-chat\"\nhistory_size = 100\ndefault_rooms = [\"general\", \"ops\"]\n", idp.issuer_str()),
    )
    .expect("write config");
    let db = dir.path().join("chat.sqlite3");
    let token = idp
        .login("alice")
        .await
        .expect("login")
        .access_token
        .clone();

    let (mut child, url) = start_binary(&config_file, &db).await;
    let mut c = Client::connected(&url, &token).await;
    let r = c.call(json!({"rpc": {"method": "rooms.list"}})).await;
    let rooms = r.rpc.and_then(|r| r.data).expect("rooms.list");
    assert_eq!(
        rooms["rooms"].as_array().map(Vec::len),
        Some(2),
        "default rooms come from the config file"
    );
    c.call(json!({"rpc": {"method": "rooms.join", "data": {"id": "ops"}}}))
        .await;
    let mut acked = Vec::new();
    let mut epoch = String::new();
    for i in 0..25 {
        let data = chat(&format!("durable {i}"));
        let r = c
            .call(json!({"publish": {"channel": "room:ops", "data": data}}))
            .await;
        let ack = r
            .publish
            .unwrap_or_else(|| panic!("publish {i} acknowledged, got {:?}", r.error));
        epoch = ack.epoch.clone();
        acked.push((ack.offset, data["id"].as_str().expect("uuid").to_owned()));
    }
    child.start_kill().expect("SIGKILL the server");
    let _ = child.wait().await;
    let closed = c.expect_close().await;
    assert_ne!(
        closed.code,
        confab_protocol::Disconnect::SHUTDOWN.code,
        "a SIGKILL gives no shutdown code (it is a crash)"
    );

    let (mut child, url) = start_binary(&config_file, &db).await;
    let mut c = Client::connected(&url, &token).await;
    let h = c
        .call(json!({"history": {"channel": "room:ops", "limit": -1}}))
        .await
        .history
        .expect("history after restart");
    assert_eq!(h.epoch, epoch, "the epoch is unchanged after a crash");
    let stored: Vec<(u64, String)> = h
        .publications
        .iter()
        .map(|p| {
            (
                p.offset,
                p.data["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        stored, acked,
        "every acknowledged publication is in history with its original offset"
    );
    let r = c
        .call(json!({"publish": {"channel": "room:ops", "data": chat("after restart")}}))
        .await;
    assert_eq!(
        r.publish.map(|p| p.offset),
        Some(26),
        "offsets continue after the last stored one"
    );

    // SIGTERM: graceful shutdown with 3001 to clients and a clean exit.
    let pid = child.id().expect("running server has a pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGTERM delivered");
    assert_eq!(
        c.expect_close().await.code,
        confab_protocol::Disconnect::SHUTDOWN.code,
        "SIGTERM disconnects clients with 3001 (shutdown)"
    );
    let exit = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("server exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "graceful shutdown exits with status 0");
}
