//! The account store against real SQLCipher files.

use std::path::Path;

use confab_store::{
    AccountStore, CachedMessage, Change, Error, Position, StoreKey, StoreOptions, STORE_FILE,
};
use rusqlite::Connection;

fn msg(offset: u64, text: &str) -> CachedMessage {
    CachedMessage {
        offset,
        id: uuid::Uuid::new_v4(),
        ts: 1_700_000_000_000 + i64::try_from(offset).expect("small"),
        author: "alice".into(),
        name: "Alice".into(),
        text: text.into(),
    }
}

fn open(dir: &Path, key: &StoreKey, keep: usize) -> AccountStore {
    AccountStore::open(
        dir,
        key,
        StoreOptions {
            cache_per_room: keep,
        },
    )
    .expect("open store")
    .store
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn ui_state_drafts_and_read_positions_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = StoreKey::generate();
    {
        let s = open(dir.path(), &key, 10);
        s.set_last_room(Some("general")).expect("last room");
        s.set_draft("general", Some("half a thought"))
            .expect("draft");
        s.set_draft("random", Some("gone soon")).expect("draft");
        s.set_draft("random", Some(""))
            .expect("an empty draft is no draft");
        assert_eq!(s.mark_read("general", 7).expect("read"), 7);
        assert_eq!(
            s.mark_read("general", 3).expect("read"),
            7,
            "a read position never moves back"
        );
    }
    let s = open(dir.path(), &key, 10);
    assert_eq!(s.last_room().expect("get").as_deref(), Some("general"));
    assert_eq!(
        s.draft("general").expect("get").as_deref(),
        Some("half a thought")
    );
    assert_eq!(s.draft("random").expect("get"), None);
    assert_eq!(s.read_position("general").expect("get"), 7);
    assert_eq!(s.read_position("never-opened").expect("get"), 0);
    s.set_last_room(None).expect("clear");
    assert_eq!(s.last_room().expect("get"), None);
}

#[test]
fn the_cache_keeps_the_newest_messages_per_room_and_evicts_the_oldest() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = StoreKey::generate();
    let s = open(dir.path(), &key, 5);
    s.apply(&[Change::Append {
        room: "general".into(),
        messages: (1..=4).map(|o| msg(o, &format!("m{o}"))).collect(),
    }])
    .expect("append");
    s.apply(&[
        Change::Append {
            room: "general".into(),
            messages: (5..=8).map(|o| msg(o, &format!("m{o}"))).collect(),
        },
        Change::Append {
            room: "random".into(),
            messages: vec![msg(1, "other room")],
        },
    ])
    .expect("append");
    let offsets: Vec<u64> = s
        .cached("general", 100)
        .expect("cached")
        .iter()
        .map(|m| m.offset)
        .collect();
    assert_eq!(offsets, [4, 5, 6, 7, 8], "five newest kept, oldest first");
    let before: Vec<u64> = s
        .cached_before("general", 7, 2)
        .expect("cached before")
        .iter()
        .map(|m| m.offset)
        .collect();
    assert_eq!(before, [5, 6], "the page before an offset, oldest first");
    s.apply(&[Change::State {
        key: "rooms".into(),
        value: Some("[]".into()),
    }])
    .expect("state");
    assert_eq!(s.state("rooms").expect("state").as_deref(), Some("[]"));
    let newest: Vec<u64> = s
        .cached("general", 2)
        .expect("cached")
        .iter()
        .map(|m| m.offset)
        .collect();
    assert_eq!(
        newest,
        [7, 8],
        "a limit returns the newest, still oldest first"
    );
    assert_eq!(
        s.cached("random", 100).expect("cached").len(),
        1,
        "rooms are separate"
    );

    // A message seen again (recovery overlap) replaces its copy, no duplicate.
    s.apply(&[Change::Append {
        room: "general".into(),
        messages: vec![msg(8, "m8 again")],
    }])
    .expect("again");
    let all = s.cached("general", 100).expect("cached");
    assert_eq!(all.len(), 5);
    assert_eq!(all.last().map(|m| m.text.as_str()), Some("m8 again"));

    // A reload replaces the room's cache.
    s.apply(&[Change::Replace {
        room: "general".into(),
        messages: vec![msg(20, "after a gap")],
    }])
    .expect("replace");
    assert_eq!(
        s.cached("general", 100)
            .expect("cached")
            .iter()
            .map(|m| m.offset)
            .collect::<Vec<_>>(),
        [20]
    );
}

#[test]
fn positions_are_kept_per_room_and_forgotten_with_the_room() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = StoreKey::generate();
    {
        let s = open(dir.path(), &key, 10);
        s.apply(&[
            Change::Position {
                room: "general".into(),
                position: Position {
                    epoch: "ep1".into(),
                    offset: 3,
                },
            },
            Change::Position {
                room: "general".into(),
                position: Position {
                    epoch: "ep1".into(),
                    offset: 9,
                },
            },
            Change::Position {
                room: "random".into(),
                position: Position {
                    epoch: "ep2".into(),
                    offset: 1,
                },
            },
            Change::Append {
                room: "random".into(),
                messages: vec![msg(1, "bye")],
            },
        ])
        .expect("apply");
        s.set_draft("random", Some("unsent")).expect("draft");
        s.mark_read("random", 1).expect("read");
    }
    let s = open(dir.path(), &key, 10);
    let mut positions = s.positions().expect("positions");
    positions.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        positions,
        [
            (
                "general".to_owned(),
                Position {
                    epoch: "ep1".into(),
                    offset: 9
                }
            ),
            (
                "random".to_owned(),
                Position {
                    epoch: "ep2".into(),
                    offset: 1
                }
            ),
        ],
        "the latest position of each room survives a reopen"
    );
    s.apply(&[Change::Forget {
        room: "random".into(),
    }])
    .expect("forget");
    assert_eq!(s.positions().expect("positions").len(), 1);
    assert!(s.cached("random", 10).expect("cached").is_empty());
    assert_eq!(s.draft("random").expect("draft"), None);
    assert_eq!(s.read_position("random").expect("read"), 0);
}

#[test]
fn nothing_is_readable_on_disk_and_the_file_does_not_open_without_its_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = StoreKey::generate();
    let secret_text = "the-plaintext-canary-4471";
    {
        let s = open(dir.path(), &key, 10);
        s.apply(&[Change::Append {
            room: "canary-room-9".into(),
            messages: vec![msg(1, secret_text)],
        }])
        .expect("append");
        s.set_draft("canary-room-9", Some("draft-canary-5512"))
            .expect("draft");
        // while the connection is open the WAL holds the writes: scan it too
        for needle in [secret_text, "draft-canary-5512", "canary-room-9"] {
            assert_eq!(
                files_containing(dir.path(), needle.as_bytes()),
                Vec::<String>::new(),
                "{needle} on disk while open"
            );
        }
    }
    // The scan finds a planted plaintext copy (it would find a leak).
    let planted = dir.path().join("planted.sqlite3");
    Connection::open(&planted)
        .and_then(|c| {
            c.execute_batch(&format!(
                "CREATE TABLE t (x); INSERT INTO t VALUES ('{secret_text}');"
            ))
        })
        .expect("plant");
    assert_eq!(
        files_containing(dir.path(), secret_text.as_bytes()).len(),
        1,
        "the scan finds the planted copy"
    );
    std::fs::remove_file(&planted).expect("unplant");
    for needle in [secret_text, "draft-canary-5512", "canary-room-9"] {
        assert!(
            files_containing(dir.path(), needle.as_bytes()).is_empty(),
            "{needle} found on disk"
        );
    }

    // Without the key (plain SQLite) and with another key, the file reads as no database.
    let path = dir.path().join(STORE_FILE);
    let plain = Connection::open(&path).expect("open plain");
    let err = plain
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect_err("no key, no read");
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    );
    drop(plain);
    assert!(matches!(
        AccountStore::open_existing(&path, &StoreKey::generate(), StoreOptions::default()),
        Err(Error::Unreadable { .. })
    ));
    let again = open(dir.path(), &key, 10);
    assert_eq!(
        again.cached("canary-room-9", 10).expect("cached")[0].text,
        secret_text,
        "the right key reads it"
    );
}

#[test]
fn an_unreadable_store_is_kept_aside_and_a_fresh_one_made() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = StoreKey::generate();
    let path = dir.path().join(STORE_FILE);
    std::fs::write(&path, vec![0x42u8; 8192]).expect("damage");
    let opened = AccountStore::open(dir.path(), &key, StoreOptions::default())
        .expect("the user can continue");
    let aside = opened.set_aside.expect("the damaged file was kept aside");
    assert_eq!(
        std::fs::read(&aside).expect("aside kept"),
        vec![0x42u8; 8192],
        "kept byte for byte"
    );
    opened
        .store
        .set_draft("general", Some("still works"))
        .expect("fresh store works");

    // A store written with a key the vault no longer has (a reset vault): the same.
    drop(opened.store);
    let other = AccountStore::open(dir.path(), &StoreKey::generate(), StoreOptions::default())
        .expect("open");
    assert!(other.set_aside.is_some());
    assert_eq!(other.store.draft("general").expect("draft"), None);
}

#[cfg(unix)]
#[test]
fn the_directory_and_every_store_file_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("chat").join("account");
    let key = StoreKey::generate();
    let s = open(&dir, &key, 10);
    s.set_draft("general", Some("x")).expect("write");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("read") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{} is owner-only", p.display());
        seen += 1;
    }
    assert!(seen >= 2, "the store and its WAL were checked");
}
