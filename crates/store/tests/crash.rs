//! Crash safety: a child process writes the history cache, or migrates old plaintext files, and
//! is killed with SIGKILL at random moments; after every kill the store opens with its outbox
//! intact (every queued message exactly once).
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use confab_store::{
    AccountStore, StoreKey, StoreOptions, LEGACY_OUTBOX_FILE, LEGACY_UI_STATE_FILE, STORE_FILE,
};
use confab_types::SecretString;
use rand::Rng;
use rusqlite::Connection;

mod support;
use support::legacy_outbox;

const CHILD: &str = env!("CARGO_BIN_EXE_store-crash-child");
const TEST_KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const KILLS: usize = 25;

fn key() -> StoreKey {
    StoreKey::from_secret(&SecretString::new(TEST_KEY_HEX.to_owned())).expect("test key")
}

/// Starts the child; its stdout lines arrive on the returned channel.
fn spawn(mode: &str, dir: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(CHILD)
        .arg(mode)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn store-crash-child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, child: &mut Child, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if pred(&line) => return,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("the child gave no progress before the deadline ({e})");
            }
        }
    }
}

fn outbox_ids(dir: &Path) -> Vec<String> {
    let c = Connection::open(dir.join(STORE_FILE)).expect("open");
    c.execute_batch(&key().pragma()).expect("key");
    let mut stmt = c
        .prepare("SELECT id FROM outbox ORDER BY seq")
        .expect("select");
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

#[test]
fn sigkill_during_cache_writes_leaves_the_store_and_its_outbox_intact() {
    let dir = tempfile::tempdir().expect("tmp");
    let queued = legacy_outbox(dir.path(), 20);
    drop(AccountStore::open(dir.path(), &key(), StoreOptions::default()).expect("migrate once"));
    assert_eq!(outbox_ids(dir.path()), queued);
    let mut rng = rand::thread_rng();
    for round in 0..KILLS {
        let (mut child, rx) = spawn("cache", dir.path());
        let writes = rng.gen_range(1..4u32);
        wait_for(&rx, &mut child, |l| {
            l.strip_prefix("wrote ")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= writes)
        });
        // the random kill moment (not a wait for a condition): anywhere in a batch's commit
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..5_000)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let store = AccountStore::open_existing(
            &dir.path().join(STORE_FILE),
            &key(),
            StoreOptions {
                cache_per_room: 300,
            },
        )
        .unwrap_or_else(|e| panic!("round {round}: the store must open after SIGKILL: {e}"));
        let cached = store.cached("general", 1_000).expect("cache readable");
        assert!(cached.len() <= 300, "round {round}: eviction held");
        assert!(
            cached.windows(2).all(|w| w[0].offset < w[1].offset),
            "round {round}: the cache is in order"
        );
        drop(store);
        assert_eq!(
            outbox_ids(dir.path()),
            queued,
            "round {round}: the outbox is intact"
        );
    }
}

#[test]
fn sigkill_during_the_migration_loses_and_duplicates_nothing() {
    let mut rng = rand::thread_rng();
    // How long a whole migration takes here, so the kills spread over it.
    let calibrate = tempfile::tempdir().expect("tmp");
    legacy_outbox(calibrate.path(), 2_000);
    let (mut child, rx) = spawn("migrate", calibrate.path());
    wait_for(&rx, &mut child, |l| l == "opening");
    let started = Instant::now();
    wait_for(&rx, &mut child, |l| l == "opened");
    let span = started.elapsed().as_micros().max(1_000);
    child.wait().expect("reap");

    let mut mid = 0;
    for round in 0..KILLS {
        let dir = tempfile::tempdir().expect("tmp");
        let queued = legacy_outbox(dir.path(), 2_000);
        std::fs::write(
            dir.path().join(LEGACY_UI_STATE_FILE),
            r#"{"drafts": {"general": "a draft typed before the upgrade"}}"#,
        )
        .expect("ui state");
        let (mut child, rx) = spawn("migrate", dir.path());
        wait_for(&rx, &mut child, |l| l == "opening");
        // the random kill moment (not a wait for a condition), spread over a migration
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..span)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        if dir.path().join(STORE_FILE).exists() && dir.path().join(LEGACY_OUTBOX_FILE).exists() {
            mid += 1;
        }
        let opened = AccountStore::open(dir.path(), &key(), StoreOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: the store must open after SIGKILL: {e}"));
        assert!(
            opened.migrated.failed.is_empty(),
            "round {round}: {:?}",
            opened.migrated.failed
        );
        assert_eq!(
            opened.store.draft("general").expect("draft").as_deref(),
            Some("a draft typed before the upgrade"),
            "round {round}: the draft arrived"
        );
        drop(opened);
        assert_eq!(
            outbox_ids(dir.path()),
            queued,
            "round {round}: every queued message once, in order"
        );
        assert!(
            !dir.path().join(LEGACY_OUTBOX_FILE).exists(),
            "round {round}: old file gone"
        );
    }
    eprintln!("{KILLS} kills: {mid} landed inside a migration (span {span} µs)");
    assert!(
        mid > 0,
        "at least some of {KILLS} kills must land inside a migration, or the test proves nothing"
    );
}
