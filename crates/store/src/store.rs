//! The account's store: one SQLCipher file (`account.sqlite3`) in the account's directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::fsperm::{owner_only_dir, owner_only_file};
use crate::key::StoreKey;
use crate::migrate::{self, Migrated};

/// The store file in an account's directory.
pub const STORE_FILE: &str = "account.sqlite3";
/// The `state` key of the last open room ([`AccountStore::last_room`]; a [`Change::State`] with
/// it changes that).
pub const LAST_ROOM_KEY: &str = "last_room";
/// Messages kept per room in the history cache unless configured otherwise.
pub const DEFAULT_CACHE_PER_ROOM: usize = 2_000;
/// The schema this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    failed TEXT
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drafts (room TEXT PRIMARY KEY, text TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reads (room TEXT PRIMARY KEY, offset INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
    room TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    offset INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL,
    offset INTEGER NOT NULL,
    id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    author TEXT NOT NULL,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (room, offset)
) WITHOUT ROWID;
";

/// How the store behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Messages kept per room in the history cache (the oldest are evicted); at least 1.
    pub cache_per_room: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_per_room: DEFAULT_CACHE_PER_ROOM,
        }
    }
}

/// A room's position in its stream (Centrifugo's epoch and offset): where a restart recovers from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The stream's epoch (a new epoch means the old offsets mean nothing).
    pub epoch: String,
    /// The last offset the app has.
    pub offset: u64,
}

/// A message in the history cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMessage {
    /// Position in the room's stream.
    pub offset: u64,
    /// Client message id.
    pub id: Uuid,
    /// Sender's timestamp, Unix milliseconds.
    pub ts: i64,
    /// Sender's user id.
    pub author: String,
    /// Sender's display name.
    pub name: String,
    /// Text.
    pub text: String,
}

/// What [`AccountStore::open`] found.
#[derive(Debug)]
pub struct Opened {
    /// The store, ready.
    pub store: AccountStore,
    /// Where an unreadable store was moved (a fresh one was made in its place).
    pub set_aside: Option<PathBuf>,
    /// What was moved in from the old plaintext files.
    pub migrated: Migrated,
}

/// One account's encrypted store. Cloning shares the connection.
#[derive(Clone)]
pub struct AccountStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    options: StoreOptions,
}

impl std::fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AccountStore {
    /// Opens the store in the account directory `dir` (made owner-only) with `key`, creating
    /// it if needed. A store that cannot be read with the key (damaged, or the key was lost
    /// with a reset vault) is moved aside, never deleted, and a fresh one made: the user can
    /// continue. Old plaintext files (`outbox.sqlite3`, `ui-state.json`) are then moved in and
    /// removed.
    pub fn open(dir: &Path, key: &StoreKey, options: StoreOptions) -> Result<Opened> {
        owner_only_dir(dir)?;
        let path = dir.join(STORE_FILE);
        let (store, set_aside) = match Self::open_existing(&path, key, options) {
            Ok(store) => (store, None),
            Err(Error::Unreadable { .. }) => {
                let aside = set_aside(&path)?;
                tracing::warn!(
                    path = %path.display(),
                    aside = %aside.display(),
                    "the local store could not be read; kept aside, starting a fresh one"
                );
                (Self::open_existing(&path, key, options)?, Some(aside))
            }
            Err(e) => return Err(e),
        };
        let migrated = migrate::run(dir, &store);
        Ok(Opened {
            store,
            set_aside,
            migrated,
        })
    }

    /// Opens (or creates) the store file at `path` with `key`; [`Error::Unreadable`] if the
    /// file is there but cannot be read with it.
    pub fn open_existing(path: &Path, key: &StoreKey, options: StoreOptions) -> Result<Self> {
        owner_only_file(path)?;
        let conn = Connection::open(path)?;
        // SQLCipher would also print its own lines to stderr for a file it cannot read; the
        // error returned here says it (once, in words).
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        conn.execute_batch(&key.pragma())?;
        let unreadable = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Unreadable {
                path: path.to_owned(),
            },
            _ => Error::Sqlite(e),
        };
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(unreadable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unreadable)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // An up-to-date store is only read at open (no write, no sync on the start path).
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(SCHEMA).map_err(unreadable)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            options: StoreOptions {
                cache_per_room: options.cache_per_room.max(1),
            },
        })
    }

    /// The store file (the relay opens its outbox table here, with the same key).
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        // A poisoned lock only means another thread panicked mid-call; SQLite's transaction
        // state is still consistent.
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn).map_err(Error::from)
    }

    // ---- UI state -------------------------------------------------------------------------

    /// The room open when the app was last used.
    pub fn last_room(&self) -> Result<Option<String>> {
        self.state(LAST_ROOM_KEY)
    }

    /// Remembers the open room (`None`: no room).
    pub fn set_last_room(&self, room: Option<&str>) -> Result<()> {
        self.set_state(LAST_ROOM_KEY, room)
    }

    /// A non-secret UI value stored under `key`.
    pub fn state(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT value FROM state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Sets (or with `None` removes) the UI value under `key`.
    pub fn set_state(&self, key: &str, value: Option<&str>) -> Result<()> {
        self.with(|c| match value {
            Some(v) => c
                .execute(
                    "INSERT INTO state (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, v],
                )
                .map(drop),
            None => c
                .execute("DELETE FROM state WHERE key = ?1", [key])
                .map(drop),
        })
    }

    /// The unsent text typed in `room`.
    pub fn draft(&self, room: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT text FROM drafts WHERE room = ?1", [room], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Keeps the text typed in `room` (`None` or empty: no draft).
    pub fn set_draft(&self, room: &str, text: Option<&str>) -> Result<()> {
        self.with(|c| match text.filter(|t| !t.is_empty()) {
            Some(t) => c
                .execute(
                    "INSERT INTO drafts (room, text) VALUES (?1, ?2)
                     ON CONFLICT (room) DO UPDATE SET text = excluded.text",
                    params![room, t],
                )
                .map(drop),
            None => c
                .execute("DELETE FROM drafts WHERE room = ?1", [room])
                .map(drop),
        })
    }

    /// The offset up to which the user has read `room` (0: nothing).
    pub fn read_position(&self, room: &str) -> Result<u64> {
        self.with(|c| {
            c.query_row("SELECT offset FROM reads WHERE room = ?1", [room], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
        })
        .map(|o| o.map_or(0, to_u64))
    }

    /// Moves the read position of `room` forward to `offset` (never back); the position now.
    pub fn mark_read(&self, room: &str, offset: u64) -> Result<u64> {
        let offset = to_i64(offset);
        self.with(|c| {
            c.query_row(
                "INSERT INTO reads (room, offset) VALUES (?1, ?2)
                 ON CONFLICT (room) DO UPDATE SET offset = max(offset, excluded.offset)
                 RETURNING offset",
                params![room, offset],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(to_u64)
    }

    // ---- stream positions and history cache -------------------------------------------------

    /// Every room's stored stream position.
    pub fn positions(&self) -> Result<Vec<(String, Position)>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT room, epoch, offset FROM positions")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Position {
                        epoch: r.get(1)?,
                        offset: to_u64(r.get::<_, i64>(2)?),
                    },
                ))
            })?;
            rows.collect()
        })
    }

    /// The newest `limit` cached messages of `room`, oldest first.
    pub fn cached(&self, room: &str, limit: usize) -> Result<Vec<CachedMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT offset, id, ts, author, name, text FROM messages
                 WHERE room = ?1 ORDER BY offset DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![room, limit], row_to_message)?;
            let mut out: Vec<CachedMessage> = rows.collect::<rusqlite::Result<_>>()?;
            out.reverse();
            Ok(out)
        })
    }

    /// Up to `limit` cached messages of `room` before `before` (an offset), oldest first.
    pub fn cached_before(
        &self,
        room: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<CachedMessage>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT offset, id, ts, author, name, text FROM messages
                 WHERE room = ?1 AND offset < ?2 ORDER BY offset DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![room, to_i64(before), limit], row_to_message)?;
            let mut out: Vec<CachedMessage> = rows.collect::<rusqlite::Result<_>>()?;
            out.reverse();
            Ok(out)
        })
    }

    /// Applies `changes` in one transaction (the cache writer's batch).
    pub fn apply(&self, changes: &[Change]) -> Result<()> {
        let keep = i64::try_from(self.options.cache_per_room).unwrap_or(i64::MAX);
        self.with(|c| {
            let tx = c.transaction()?;
            let mut touched: Vec<&str> = Vec::new();
            for change in changes {
                match change {
                    Change::Append { room, messages } => {
                        insert_messages(&tx, room, messages)?;
                        touched.push(room);
                    }
                    Change::Replace { room, messages } => {
                        tx.execute("DELETE FROM messages WHERE room = ?1", [room])?;
                        insert_messages(&tx, room, messages)?;
                        touched.push(room);
                    }
                    Change::Position { room, position } => {
                        tx.execute(
                            "INSERT INTO positions (room, epoch, offset) VALUES (?1, ?2, ?3)
                             ON CONFLICT (room) DO UPDATE
                             SET epoch = excluded.epoch, offset = excluded.offset",
                            params![room, position.epoch, to_i64(position.offset)],
                        )?;
                    }
                    Change::State { key, value } => match value {
                        Some(v) => {
                            tx.execute(
                                "INSERT INTO state (key, value) VALUES (?1, ?2)
                                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                params![key, v],
                            )?;
                        }
                        None => {
                            tx.execute("DELETE FROM state WHERE key = ?1", [key])?;
                        }
                    },
                    Change::Forget { room } => {
                        for table in ["messages", "positions", "drafts", "reads"] {
                            tx.execute(&format!("DELETE FROM {table} WHERE room = ?1"), [room])?;
                        }
                    }
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for room in touched {
                tx.execute(
                    "DELETE FROM messages WHERE room = ?1 AND offset < (
                        SELECT offset FROM messages WHERE room = ?1
                        ORDER BY offset DESC LIMIT 1 OFFSET ?2)",
                    params![room, keep - 1],
                )?;
            }
            tx.commit()
        })
    }
}

/// One change to the history cache or the stream positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// New messages of `room` (a message already cached at its offset is replaced).
    Append {
        /// Room id.
        room: String,
        /// Messages.
        messages: Vec<CachedMessage>,
    },
    /// `room`'s view was replaced by these messages (a reload): the cache holds them alone.
    Replace {
        /// Room id.
        room: String,
        /// Messages.
        messages: Vec<CachedMessage>,
    },
    /// `room` is at `position` in its stream.
    Position {
        /// Room id.
        room: String,
        /// Where.
        position: Position,
    },
    /// A UI value (as [`AccountStore::set_state`]; `None` removes it).
    State {
        /// Key.
        key: String,
        /// Value.
        value: Option<String>,
    },
    /// The user no longer belongs to `room`: its cache, position, draft and read position go.
    Forget {
        /// Room id.
        room: String,
    },
}

fn insert_messages(
    tx: &rusqlite::Transaction<'_>,
    room: &str,
    messages: &[CachedMessage],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO messages (room, offset, id, ts, author, name, text)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (room, offset) DO UPDATE SET id = excluded.id, ts = excluded.ts,
             author = excluded.author, name = excluded.name, text = excluded.text",
    )?;
    for m in messages {
        stmt.execute(params![
            room,
            to_i64(m.offset),
            m.id.to_string(),
            m.ts,
            m.author,
            m.name,
            m.text
        ])?;
    }
    Ok(())
}

fn row_to_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<CachedMessage> {
    let id: String = r.get(1)?;
    let id = Uuid::parse_str(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(CachedMessage {
        offset: to_u64(r.get::<_, i64>(0)?),
        id,
        ts: r.get(2)?,
        author: r.get(3)?,
        name: r.get(4)?,
        text: r.get(5)?,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Moves an unreadable store (and its WAL and shared-memory files) to
/// `<file>.unreadable-<unix seconds>`; the new name.
fn set_aside(path: &Path) -> Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".unreadable-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|e| Error::io(path, e))?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(PathBuf::from(from), e)),
        }
    }
    Ok(aside)
}
