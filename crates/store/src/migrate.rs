//! Moving the plaintext files of earlier versions into the encrypted store: the relay's
//! `outbox.sqlite3` (messages not yet sent) and the UI state `ui-state.json` (last room, drafts,
//! read positions). Each is copied in one transaction, then renamed to `<name>.migrated` (one
//! atomic step that says "copied"), then overwritten and removed. A crash before the rename copies
//! it again next time (the copy ignores what is already there), a crash after it only leaves a
//! `.migrated` file that the next start removes unread: nothing queued is lost and nothing is
//! sent twice. A file that cannot be read is left where it is and reported.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fsperm::remove_securely;
use crate::store::AccountStore;

/// The relay's plaintext outbox of earlier versions.
pub const LEGACY_OUTBOX_FILE: &str = "outbox.sqlite3";
/// The plaintext UI state of earlier versions.
pub const LEGACY_UI_STATE_FILE: &str = "ui-state.json";

/// What was moved into the store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Outbox messages moved in.
    pub outbox_messages: usize,
    /// Whether the old UI state was moved in.
    pub ui_state: bool,
    /// Old files that could not be moved in (left in place), with why.
    pub failed: Vec<String>,
}

/// Suffix of an old file already copied into the store, waiting to be overwritten and removed.
const MIGRATED_SUFFIX: &str = ".migrated";

pub(crate) fn run(dir: &Path, store: &AccountStore) -> Migrated {
    let mut report = Migrated::default();
    // Leftovers of a start killed while removing files it had copied.
    for name in [LEGACY_OUTBOX_FILE, LEGACY_UI_STATE_FILE] {
        let copied = with_suffix(&dir.join(name), MIGRATED_SUFFIX);
        if let Err(e) = remove_securely(&copied) {
            tracing::warn!("{e}");
        }
    }
    match outbox(dir, store) {
        Ok(n) => report.outbox_messages = n,
        Err(e) => {
            tracing::warn!("{e}");
            report.failed.push(e.to_string());
        }
    }
    match ui_state(dir, store) {
        Ok(done) => report.ui_state = done,
        Err(e) => {
            tracing::warn!("{e}");
            report.failed.push(e.to_string());
        }
    }
    report
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn outbox(dir: &Path, store: &AccountStore) -> Result<usize> {
    let path = dir.join(LEGACY_OUTBOX_FILE);
    if !path.exists() {
        return Ok(0);
    }
    let failed = |e: rusqlite::Error| Error::Migration {
        path: path.clone(),
        reason: e.to_string(),
    };
    type Row = (String, String, String, i64, Option<String>);
    let rows: Vec<Row> = {
        // Read-write, so a WAL left by a killed process is replayed into what we read.
        let old = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(failed)?;
        let has_table: bool = old
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbox'",
                [],
                |r| r.get::<_, i64>(0).map(|n| n > 0),
            )
            .map_err(failed)?;
        if has_table {
            let mut stmt = old
                .prepare("SELECT id, room, text, ts, failed FROM outbox ORDER BY seq")
                .map_err(failed)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(failed)?;
            rows.collect::<rusqlite::Result<_>>().map_err(failed)?
        } else {
            Vec::new()
        }
    };
    let moved = rows.len();
    store.with(|c| {
        let tx = c.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO outbox (id, room, text, ts, failed) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (id, room, text, ts, failed) in &rows {
                stmt.execute(params![id, room, text, ts, failed])?;
            }
        }
        tx.commit()
    })?;
    let copied = with_suffix(&path, MIGRATED_SUFFIX);
    std::fs::rename(&path, &copied).map_err(|e| Error::io(&path, e))?;
    // Closing the old connection checkpointed and removed its WAL; a WAL or shared-memory file
    // left beside it (another process had it open) belongs to the copied file.
    for p in [
        with_suffix(&path, "-wal"),
        with_suffix(&path, "-shm"),
        copied,
    ] {
        remove_securely(&p)?;
    }
    tracing::info!(moved, "moved the old outbox into the encrypted store");
    Ok(moved)
}

fn ui_state(dir: &Path, store: &AccountStore) -> Result<bool> {
    let path = dir.join(LEGACY_UI_STATE_FILE);
    // A temporary of an interrupted save of the old format: the file itself is the state.
    remove_securely(&with_suffix(&path, ".tmp"))?;
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |reason: String| Error::Migration {
        path: path.clone(),
        reason,
    };
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(bad("not a JSON object".into()));
    };
    store.with(|c| {
        let tx = c.transaction()?;
        // (the old file's key happens to have the same name as the store's)
        if let Some(Value::String(room)) = map.get("last_room") {
            tx.execute(
                "INSERT OR IGNORE INTO state (key, value) VALUES (?1, ?2)",
                params![crate::store::LAST_ROOM_KEY, room],
            )?;
        }
        if let Some(Value::Object(drafts)) = map.get("drafts") {
            for (room, text) in drafts {
                if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
                    tx.execute(
                        "INSERT OR IGNORE INTO drafts (room, text) VALUES (?1, ?2)",
                        params![room, text],
                    )?;
                }
            }
        }
        if let Some(Value::Object(reads)) = map.get("read") {
            for (room, offset) in reads {
                if let Some(offset) = offset.as_u64().and_then(|o| i64::try_from(o).ok()) {
                    tx.execute(
                        "INSERT INTO reads (room, offset) VALUES (?1, ?2)
                         ON CONFLICT (room) DO UPDATE SET offset = max(offset, excluded.offset)",
                        params![room, offset],
                    )?;
                }
            }
        }
        tx.commit()
    })?;
    let copied = with_suffix(&path, MIGRATED_SUFFIX);
    std::fs::rename(&path, &copied).map_err(|e| Error::io(&path, e))?;
    remove_securely(&copied)?;
    tracing::info!("moved the old UI state into the encrypted store");
    Ok(true)
}
