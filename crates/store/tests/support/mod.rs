//! The plaintext outbox of earlier versions, as the old relay wrote it, for the migration tests
//! and the bench.
#![allow(dead_code)]

use std::path::Path;

use confab_store::LEGACY_OUTBOX_FILE;
use rusqlite::Connection;

/// The old relay's outbox in `dir` (WAL, its schema) with `n` queued messages of fresh ids (the
/// second one failed); their ids in send order.
pub fn legacy_outbox(dir: &Path, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    legacy_outbox_with_ids(dir, &ids);
    ids
}

/// The old relay's outbox in `dir` holding a message for each of `ids`, in that order (the
/// second one failed). A file already there gets the table if it lacks it.
pub fn legacy_outbox_with_ids(dir: &Path, ids: &[String]) {
    let c = Connection::open(dir.join(LEGACY_OUTBOX_FILE)).expect("legacy outbox");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
         id TEXT NOT NULL UNIQUE, room TEXT NOT NULL, text TEXT NOT NULL, ts INTEGER NOT NULL,
         failed TEXT);",
    )
    .expect("schema");
    let tx = c.unchecked_transaction().expect("tx");
    for (i, id) in ids.iter().enumerate() {
        let failed = (i == 1).then_some("denied");
        tx.execute(
            "INSERT INTO outbox (id, room, text, ts, failed) VALUES (?1, 'general', ?2, 1, ?3)",
            rusqlite::params![id, format!("queued-text-{i} {}", "q".repeat(280)), failed],
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
}
