//! The durable outbox: messages the user sent, kept in SQLite from before the first publish
//! until the server acknowledges them.
//!
//! WAL journal with `synchronous=FULL`: a committed insert survives a process kill and a power
//! loss. Each operation is one short transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};

use confab_types::SecretString;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A message waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxItem {
    /// Client message id (the server's idempotency key).
    pub id: Uuid,
    /// Room id.
    pub room: String,
    /// Text.
    pub text: String,
    /// Client timestamp, Unix milliseconds.
    pub ts: i64,
    /// Why the last publish failed permanently (`None` = pending, will be published).
    pub failed: Option<String>,
}

/// The outbox table in a SQLite file. Cloning shares the connection.
#[derive(Clone)]
pub struct Outbox {
    conn: Arc<Mutex<Connection>>,
}

impl Outbox {
    /// Opens (or creates) the outbox file.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_keyed(path, None)
    }

    /// Opens (or creates) the outbox table in `path`, an encrypted SQLCipher file when `key`
    /// (`x'<hex>'`) is given.
    pub fn open_keyed(path: &Path, key: Option<&SecretString>) -> Result<Self> {
        let conn = Connection::open(path)?;
        if let Some(key) = key {
            let mut sql = Zeroizing::new(String::with_capacity(80));
            sql.push_str("PRAGMA key = \"");
            sql.push_str(key.expose_secret());
            sql.push_str("\";");
            conn.execute_batch(&sql)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                room TEXT NOT NULL,
                text TEXT NOT NULL,
                ts INTEGER NOT NULL,
                failed TEXT
            );",
        )?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // A poisoned lock only means another thread panicked mid-call; SQLite's own
        // transaction state is still consistent, so keep using the connection.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(Error::from)
    }

    /// Adds a message (durably) before it is published.
    pub fn insert(&self, item: &OutboxItem) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO outbox (id, room, text, ts, failed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    item.id.to_string(),
                    item.room,
                    item.text,
                    item.ts,
                    item.failed
                ],
            )
            .map(|_| ())
        })
    }

    /// Removes an acknowledged message; false if it was not there.
    pub fn remove(&self, id: Uuid) -> Result<bool> {
        self.with(|c| {
            c.execute("DELETE FROM outbox WHERE id = ?1", params![id.to_string()])
                .map(|n| n > 0)
        })
    }

    /// Removes several acknowledged messages in one transaction.
    pub fn remove_many(&self, ids: &[Uuid]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                stmt.execute(params![id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a background thread that removes acknowledged messages in batches, so the relay's
    /// task never waits for a disk sync on an acknowledgement. A removal lost in a crash only
    /// means the message is published once more after restart, which the server deduplicates.
    pub(crate) fn remover(&self) -> Remover {
        let (tx, rx) = std::sync::mpsc::channel::<Uuid>();
        let outbox = self.clone();
        let spawned = std::thread::Builder::new()
            .name("confab-outbox".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    if let Err(e) = outbox.remove_many(&batch) {
                        tracing::warn!(error = %e, n = batch.len(), "cannot remove acknowledged messages from the outbox");
                    }
                }
            });
        match spawned {
            Ok(_) => Remover {
                tx: Some(tx),
                outbox: self.clone(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no outbox thread; removing acknowledged messages inline");
                Remover {
                    tx: None,
                    outbox: self.clone(),
                }
            }
        }
    }

    /// Marks a message as failed permanently (kept for a retry).
    pub fn mark_failed(&self, id: Uuid, reason: &str) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET failed = ?2 WHERE id = ?1",
                params![id.to_string(), reason],
            )
            .map(|n| n > 0)
        })
    }

    /// Marks a failed message as pending again (retry); false if it is not in the outbox.
    pub fn mark_pending(&self, id: Uuid) -> Result<bool> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET failed = NULL WHERE id = ?1",
                params![id.to_string()],
            )
            .map(|n| n > 0)
        })
    }

    /// One message.
    pub fn get(&self, id: Uuid) -> Result<Option<OutboxItem>> {
        self.with(|c| {
            c.query_row(
                "SELECT id, room, text, ts, failed FROM outbox WHERE id = ?1",
                params![id.to_string()],
                row_to_item,
            )
            .optional()
        })
    }

    /// Every message, oldest first.
    pub fn list(&self) -> Result<Vec<OutboxItem>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT id, room, text, ts, failed FROM outbox ORDER BY seq")?;
            let rows = stmt.query_map([], row_to_item)?;
            rows.collect()
        })
    }
}

/// Sends acknowledged message ids to the outbox thread (or removes them inline without one).
pub(crate) struct Remover {
    tx: Option<std::sync::mpsc::Sender<Uuid>>,
    outbox: Outbox,
}

impl Remover {
    pub(crate) fn remove(&self, id: Uuid) -> Result<()> {
        if let Some(tx) = &self.tx {
            if tx.send(id).is_ok() {
                return Ok(());
            }
        }
        self.outbox.remove(id).map(|_| ())
    }
}

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    let id: String = row.get(0)?;
    let id = Uuid::parse_str(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(OutboxItem {
        id,
        room: row.get(1)?,
        text: row.get(2)?,
        ts: row.get(3)?,
        failed: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_keeps_order_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("outbox.sqlite3");
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        {
            let o = Outbox::open(&path).expect("open");
            for (i, id) in ids.iter().enumerate() {
                o.insert(&OutboxItem {
                    id: *id,
                    room: "general".into(),
                    text: format!("m{i}"),
                    ts: 1,
                    failed: None,
                })
                .expect("insert");
            }
            assert!(
                o.remove(ids[1]).expect("remove"),
                "acked message is removed"
            );
            assert!(
                o.mark_failed(ids[2], "denied").expect("fail"),
                "can mark failed"
            );
        }
        let o = Outbox::open(&path).expect("reopen");
        let items = o.list().expect("list");
        assert_eq!(
            items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![ids[0], ids[2]],
            "unacknowledged messages survive a reopen, in send order"
        );
        assert_eq!(
            items[1].failed.as_deref(),
            Some("denied"),
            "failure reason is kept"
        );
        assert!(
            o.mark_pending(ids[2]).expect("retry"),
            "retry marks it pending"
        );
        assert_eq!(
            o.get(ids[2]).expect("get").and_then(|i| i.failed),
            None,
            "pending again"
        );
    }

    #[test]
    fn a_keyed_outbox_is_encrypted_and_opens_only_with_its_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("account.sqlite3");
        let key = SecretString::new(format!("x'{}'", "ab".repeat(32)));
        let id = Uuid::new_v4();
        {
            let o = Outbox::open_keyed(&path, Some(&key)).expect("open keyed");
            o.insert(&OutboxItem {
                id,
                room: "general".into(),
                text: "queued-canary-3319".into(),
                ts: 1,
                failed: None,
            })
            .expect("insert");
        }
        for entry in std::fs::read_dir(dir.path()).expect("read dir") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
            assert!(
                !bytes.windows(18).any(|w| w == b"queued-canary-3319"),
                "no plaintext on disk"
            );
        }
        assert!(Outbox::open(&path).is_err(), "no key, no outbox");
        let o = Outbox::open_keyed(&path, Some(&key)).expect("reopen");
        assert_eq!(o.list().expect("list").len(), 1, "the message is there");
    }
}
