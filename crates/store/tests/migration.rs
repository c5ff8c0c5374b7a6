//! Moving the plaintext files of earlier versions into the store.

use std::path::Path;

use confab_store::{
    AccountStore, StoreKey, StoreOptions, LEGACY_OUTBOX_FILE, LEGACY_UI_STATE_FILE,
};
use rusqlite::Connection;

mod support;
use support::{legacy_outbox, legacy_outbox_with_ids};

fn store_outbox(store_path: &Path, key: &StoreKey) -> Vec<(String, String, Option<String>)> {
    let c = Connection::open(store_path).expect("open");
    c.execute_batch(&key.pragma()).expect("key");
    let mut stmt = c
        .prepare("SELECT id, text, failed FROM outbox ORDER BY seq")
        .expect("select");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query");
    rows.collect::<rusqlite::Result<_>>().expect("rows")
}

#[test]
fn the_old_outbox_and_ui_state_move_in_and_the_plaintext_files_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let ids = legacy_outbox(dir.path(), 3);
    std::fs::write(
        dir.path().join(LEGACY_UI_STATE_FILE),
        r#"{"last_room": "general", "drafts": {"general": "unfinished words", "x": ""}, "read": {"general": 12}}"#,
    )
    .expect("legacy ui state");
    std::fs::write(dir.path().join("ui-state.json.tmp"), b"{\"half").expect("legacy temp");
    let key = StoreKey::generate();
    let opened = AccountStore::open(dir.path(), &key, StoreOptions::default()).expect("open");
    assert_eq!(opened.migrated.outbox_messages, 3);
    assert!(opened.migrated.ui_state);
    assert!(opened.migrated.failed.is_empty());
    let s = opened.store;
    assert_eq!(s.last_room().expect("get").as_deref(), Some("general"));
    assert_eq!(
        s.draft("general").expect("get").as_deref(),
        Some("unfinished words")
    );
    assert_eq!(s.read_position("general").expect("get"), 12);
    let outbox = store_outbox(s.path(), &key);
    assert_eq!(
        outbox.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ids,
        "every queued message, in order"
    );
    assert_eq!(
        outbox[1].2.as_deref(),
        Some("denied"),
        "a failed message stays failed"
    );
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("outbox") || n.starts_with("ui-state"))
        .collect();
    assert!(left.is_empty(), "plaintext files removed: {left:?}");
}

#[test]
fn a_migration_interrupted_after_the_copy_does_not_duplicate_on_the_next_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let ids = legacy_outbox(dir.path(), 4);
    let key = StoreKey::generate();
    // The first start copied and was killed before removing the old file: the same rows
    // are in the old file again at the next start.
    drop(AccountStore::open(dir.path(), &key, StoreOptions::default()).expect("first"));
    legacy_outbox_with_ids(dir.path(), &ids);
    let opened = AccountStore::open(dir.path(), &key, StoreOptions::default()).expect("second");
    assert_eq!(opened.migrated.outbox_messages, 4, "read again");
    let outbox = store_outbox(opened.store.path(), &key);
    assert_eq!(
        outbox.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ids,
        "each message once: nothing is sent twice"
    );
}

#[test]
fn an_unreadable_old_file_is_left_in_place_and_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join(LEGACY_UI_STATE_FILE),
        b"{\"drafts\": {\"general\": \"torn",
    )
    .expect("torn");
    std::fs::write(dir.path().join(LEGACY_OUTBOX_FILE), vec![7u8; 4096]).expect("garbage");
    let opened = AccountStore::open(dir.path(), &StoreKey::generate(), StoreOptions::default())
        .expect("the store opens anyway");
    assert_eq!(
        opened.migrated.failed.len(),
        2,
        "{:?}",
        opened.migrated.failed
    );
    assert!(opened
        .migrated
        .failed
        .iter()
        .any(|f| f.contains(LEGACY_UI_STATE_FILE)));
    assert!(
        dir.path().join(LEGACY_UI_STATE_FILE).exists(),
        "kept: it may hold a draft"
    );
    assert!(
        dir.path().join(LEGACY_OUTBOX_FILE).exists(),
        "kept: it may hold queued messages"
    );
}
