//! Crash safety: a child process saves in a loop and is killed with SIGKILL at random moments;
//! after every kill the vault opens and holds the last acknowledged value or the one being saved,
//! never garbage and never nothing.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_vault::{AccountId, KeySource, SecretStore, StrongholdStore};
use rand::Rng;

/// Same raw test key as `src/bin/vault-crash-helper.rs`.
const TEST_KEY: [u8; 32] = [0x5a; 32];
const KILLS: usize = 120;

fn value(n: u64) -> String {
    format!("refresh-{n:010}-{}", "r".repeat(256))
}

enum Line {
    Start(u64),
    Saved(u64),
}

fn parse(line: &str) -> Option<Line> {
    let (word, n) = line.split_once(' ')?;
    let n = n.trim().parse().ok()?;
    match word {
        "start" => Some(Line::Start(n)),
        "saved" => Some(Line::Saved(n)),
        _ => None,
    }
}

#[test]
fn sigkill_during_saves_never_loses_or_corrupts_the_vault() {
    let helper = env!("CARGO_BIN_EXE_vault-crash-helper");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vault.stronghold");
    let account = AccountId::new("https://idp.example", "crash-user");
    let mut rng = rand::thread_rng();
    let mut killed_mid_save = 0;
    let mut newer_than_acked = 0;

    for round in 0..KILLS {
        let mut child = Command::new(helper)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vault-crash-helper");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(parsed) = parse(&line) {
                    if tx.send(parsed).is_err() {
                        break;
                    }
                }
            }
        });

        // Wait (with a deadline) until the child has opened the vault and acknowledged a random
        // number of saves, then kill it after a random extra delay: the kill lands anywhere in the
        // save cycle (serialising, writing the temp file, fsync, rename, directory fsync).
        let acks_wanted = rng.gen_range(0..3u64);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last_acked: Option<u64>;
        let mut acks = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Line::Start(n)) => last_acked = Some(n),
                Ok(Line::Saved(n)) => {
                    last_acked = Some(n);
                    acks += 1;
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("round {round}: helper gave no progress before the deadline ({e})");
                }
            }
            if last_acked.is_some() && acks >= acks_wanted {
                break;
            }
        }
        // the random kill moment (not a wait for a condition)
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..8_000)));
        child.kill().expect("SIGKILL the helper");
        child.wait().expect("reap the helper");
        reader.join().expect("reader thread");
        for line in rx.try_iter() {
            let (Line::Saved(n) | Line::Start(n)) = line;
            last_acked = Some(n);
        }
        let acked = last_acked.expect("the helper acknowledged its start");

        let strays = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .count();
        if strays > 0 {
            killed_mid_save += 1;
        }

        let store = StrongholdStore::open(&path, &KeySource::raw(TEST_KEY)).unwrap_or_else(|e| {
            panic!("round {round}: the vault must open after SIGKILL, got {e}")
        });
        let leftover = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .count();
        assert_eq!(
            leftover, 0,
            "round {round}: opening the vault removes stray temp files"
        );
        let got = store.get(&account, "refresh_token").expect("get");
        let Some(got) = got else {
            assert_eq!(
                acked, 0,
                "round {round}: after a value was saved, the vault must never lose it"
            );
            continue;
        };
        let got = got.expose_secret();
        let old = value(acked);
        let new = value(acked + 1);
        assert!(
            got == old || got == new,
            "round {round}: after SIGKILL the vault holds the last acknowledged value ({acked}) or the \
             one being saved ({}), never anything else",
            acked + 1
        );
        if got == new {
            newer_than_acked += 1;
        }
    }
    eprintln!(
        "{KILLS} kills: {killed_mid_save} left a temp file (killed mid-save), \
         {newer_than_acked} found the unacknowledged newer value"
    );
    assert!(
        killed_mid_save > 0,
        "at least some of {KILLS} random kills must land inside a save, or the test proves nothing"
    );
}
