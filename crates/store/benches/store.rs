//! The account store's costs: open, reading the newest page of a 10,000-message room from the
//! history cache, an older page, cache writes one message per transaction against batches (the
//! writer thread's way), and moving a 2,000-message plaintext outbox in. Prints a Markdown table
//! (median and min–max of repeated runs).
//!
//! Release: `cargo bench -p confab-store`. Dev profile: `cargo bench -p confab-store --profile dev`.

use std::path::Path;
use std::time::{Duration, Instant};

use confab_store::{AccountStore, CachedMessage, Change, StoreKey, StoreOptions};

#[path = "../tests/support/mod.rs"]
mod support;
use support::legacy_outbox;

const ROOM_MESSAGES: u64 = 10_000;
const REPEAT: usize = 31;

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:.2} ({:.2}–{:.2})",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

fn message(offset: u64) -> CachedMessage {
    CachedMessage {
        offset,
        id: uuid::Uuid::new_v4(),
        ts: 1_700_000_000_000,
        author: "bob".into(),
        name: "Bob Example".into(),
        text: format!("message {offset}: a line of ordinary chat text, about eighty bytes long"),
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        cache_per_room: usize::try_from(ROOM_MESSAGES).unwrap_or(usize::MAX),
    }
}

fn seed(dir: &Path, key: &StoreKey) {
    let store = AccountStore::open(dir, key, options()).expect("open").store;
    for chunk in (1..=ROOM_MESSAGES).collect::<Vec<_>>().chunks(1_000) {
        store
            .apply(&[Change::Append {
                room: "bench-10k".into(),
                messages: chunk.iter().map(|&o| message(o)).collect(),
            }])
            .expect("seed");
    }
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("account");
    let key = StoreKey::generate();
    seed(&dir, &key);

    let mut opens = Vec::new();
    for _ in 0..REPEAT {
        let t = Instant::now();
        let store = AccountStore::open(&dir, &key, options())
            .expect("open")
            .store;
        let _ = store.last_room().expect("read");
        opens.push(t.elapsed());
    }
    let mut cold = Vec::new();
    for _ in 0..REPEAT {
        let t = Instant::now();
        let store = AccountStore::open(&dir, &key, options())
            .expect("open")
            .store;
        let page = store.cached("bench-10k", 50).expect("newest");
        cold.push(t.elapsed());
        assert_eq!(page.len(), 50);
    }
    let store = AccountStore::open(&dir, &key, options())
        .expect("open")
        .store;
    let mut newest = Vec::new();
    let mut older = Vec::new();
    for _ in 0..REPEAT {
        let t = Instant::now();
        let page = store.cached("bench-10k", 50).expect("newest");
        newest.push(t.elapsed());
        assert_eq!(page.last().map(|m| m.offset), Some(ROOM_MESSAGES));
        let t = Instant::now();
        let page = store.cached_before("bench-10k", 5_000, 50).expect("older");
        older.push(t.elapsed());
        assert_eq!(page.len(), 50);
    }
    let mut single = Vec::new();
    let mut offset = ROOM_MESSAGES;
    for _ in 0..REPEAT {
        offset += 1;
        let t = Instant::now();
        store
            .apply(&[Change::Append {
                room: "bench-live".into(),
                messages: vec![message(offset)],
            }])
            .expect("append");
        single.push(t.elapsed());
    }
    let mut batched = Vec::new();
    for _ in 0..REPEAT {
        let messages: Vec<CachedMessage> = (0..100)
            .map(|_| {
                offset += 1;
                message(offset)
            })
            .collect();
        let t = Instant::now();
        store
            .apply(&[Change::Append {
                room: "bench-live".into(),
                messages,
            }])
            .expect("append");
        batched.push(t.elapsed());
    }
    let mut migrations = Vec::new();
    for i in 0..11 {
        let d = tmp.path().join(format!("migrate-{i}"));
        std::fs::create_dir_all(&d).expect("dir");
        legacy_outbox(&d, 2_000);
        let t = Instant::now();
        let opened = AccountStore::open(&d, &key, StoreOptions::default()).expect("migrate");
        migrations.push(t.elapsed());
        assert_eq!(opened.migrated.outbox_messages, 2_000);
    }
    let size = std::fs::metadata(dir.join(confab_store::STORE_FILE))
        .map(|m| m.len())
        .unwrap_or(0);

    println!(
        "| operation (store of a 10,000-message room, {:.1} MB) | ms, median (min–max) |",
        size as f64 / 1e6
    );
    println!("|---|---|");
    println!("| open (key, schema check) + one read | {} |", stats(opens));
    println!(
        "| open + newest 50 messages (a start showing the last room from the cache) | {} |",
        stats(cold)
    );
    println!(
        "| newest 50 messages of the room, store open (a room opened from the cache) | {} |",
        stats(newest)
    );
    println!(
        "| 50 messages before offset 5,000 (an older page from the cache) | {} |",
        stats(older)
    );
    println!(
        "| append 1 message in its own transaction (fsync) | {} |",
        stats(single)
    );
    println!(
        "| append 100 messages in one transaction (the writer's batch) | {} |",
        stats(batched)
    );
    println!(
        "| open with a 2,000-message plaintext outbox moved in (11 runs) | {} |",
        stats(migrations)
    );
}
