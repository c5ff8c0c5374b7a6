//! Durable state in one SQLite file (WAL): rooms, memberships and per-channel publication
//! streams with offsets and an epoch.
//!
//! `synchronous=FULL`: a publish is acknowledged only after its transaction is on disk, so an
//! acknowledged publication survives a crash of the process or the machine. Publications are
//! written by the group-commit writer ([`crate::writer`]) on a connection of its own; the
//! functions ending in `_in` are the statements it runs inside its transactions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use confab_protocol::{ClientInfo, Publication};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

/// A channel stream's position: top offset and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTop {
    /// Offset of the newest publication (0 when empty).
    pub offset: u64,
    /// Epoch; changes only when the stream is reset.
    pub epoch: String,
    /// Offset of the oldest retained publication (0 when empty).
    pub oldest: u64,
}

/// Result of an append.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The stored publication (the original one for a duplicate).
    pub publication: Publication,
    /// Stream epoch.
    pub epoch: String,
    /// True when the client message id was already stored: nothing new was written.
    pub duplicate: bool,
}

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Room {
    /// Room id (channel `room:<id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Only members and invited users see it; joining needs an invitation.
    pub private: bool,
    /// Who created it (empty for the server's default rooms); may remove members.
    #[serde(skip)]
    pub owner: String,
}

/// A room as one user sees it in the room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRoom {
    /// The room.
    pub room: Room,
    /// The user is a member.
    pub member: bool,
    /// The user is invited (and not a member yet).
    pub invited: bool,
}

/// What [`Store::join_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The user is a member (now or already).
    Member,
    /// No such room, or a private room the user may not see.
    NotFound,
}

/// What [`Store::invite`] and [`Store::remove_member`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Done (or nothing to do: already invited, already a member).
    Done,
    /// No such room, or one the caller may not see.
    NotFound,
    /// The caller may not do this (not a member; not the owner).
    Forbidden,
    /// The user named is not a member.
    NotMember,
}

/// Size limits the store applies to what it returns and to room creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Encoded bytes of publications one read returns at most (history pages and recovery);
    /// a read always returns at least one publication, so paging moves on.
    pub reply_bytes: usize,
    /// Rooms one user may create.
    pub rooms_per_user: usize,
    /// Rooms in total.
    pub rooms_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            reply_bytes: confab_protocol::DEFAULT_MAX_REPLY_BYTES,
            rooms_per_user: 100,
            rooms_total: 10_000,
        }
    }
}

/// What [`Store::create_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The room was created.
    Created,
    /// A room with this id exists; nothing changed.
    Exists,
    /// The creator already created [`Limits::rooms_per_user`] rooms.
    UserLimit,
    /// The server holds [`Limits::rooms_total`] rooms.
    TotalLimit,
}

/// One page of the room list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomPage {
    /// Rooms in id order, as the user sees them.
    pub rooms: Vec<ListedRoom>,
    /// The id to pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One page of a room's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    /// The room.
    pub room: Room,
    /// Member user ids in order.
    pub members: Vec<String>,
    /// The `after` of the next page; `None` on the last.
    pub next: Option<String>,
}

/// A stored publication the backend role has still to publish to Centrifugo.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRelay {
    /// Its offset in this store's stream.
    pub offset: u64,
    /// The client message id (Centrifugo's idempotency key).
    pub msg_id: String,
    /// The publication's data.
    pub data: serde_json::Value,
}

/// Bytes a publication adds to a reply beyond its data and info (offset, time, keys, commas).
const PUBLICATION_OVERHEAD: usize = 64;

/// Handle to the database; cheap to clone. Calls block: run them in `spawn_blocking`.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    history_size: u64,
    limits: Limits,
}

fn lock_err<T>(_: T) -> Error {
    Error::StorageTask("store mutex poisoned".into())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, history_size: usize) -> Result<Self> {
        let conn = open_connection(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS streams (
                 channel TEXT PRIMARY KEY,
                 epoch TEXT NOT NULL,
                 top_offset INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS publications (
                 channel TEXT NOT NULL,
                 offset INTEGER NOT NULL,
                 msg_id TEXT,
                 data TEXT NOT NULL,
                 info TEXT,
                 time INTEGER NOT NULL,
                 PRIMARY KEY (channel, offset)
             ) WITHOUT ROWID;
             CREATE UNIQUE INDEX IF NOT EXISTS publications_msg_id
                 ON publications (channel, msg_id) WHERE msg_id IS NOT NULL;
             CREATE TABLE IF NOT EXISTS rooms (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL,
                 created_by TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS members (
                 room_id TEXT NOT NULL,
                 user TEXT NOT NULL,
                 PRIMARY KEY (room_id, user)
             );
             CREATE TABLE IF NOT EXISTS invites (
                 room_id TEXT NOT NULL,
                 user TEXT NOT NULL,
                 invited_by TEXT NOT NULL,
                 PRIMARY KEY (room_id, user)
             );
             CREATE TABLE IF NOT EXISTS display_names (
                 user TEXT PRIMARY KEY,
                 name TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS relays (
                 channel TEXT NOT NULL,
                 offset INTEGER NOT NULL,
                 msg_id TEXT NOT NULL,
                 relayed_offset INTEGER,
                 relayed_epoch TEXT,
                 PRIMARY KEY (channel, offset)
             ) WITHOUT ROWID;",
        )?;
        // Databases from before private rooms: every room they hold was public.
        let has_private: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_table_info('rooms') WHERE name = 'private')",
            [],
            |r| r.get(0),
        )?;
        if !has_private {
            conn.execute_batch("ALTER TABLE rooms ADD COLUMN private INTEGER NOT NULL DEFAULT 0")?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            history_size: u64::try_from(history_size).unwrap_or(u64::MAX),
            limits: Limits::default(),
        })
    }

    /// The same store with other [`Limits`].
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A second connection to the same file (same settings), for the group-commit writer: with
    /// WAL its transactions do not block readers on this handle's connection.
    pub(crate) fn writer_connection(&self) -> Result<Connection> {
        open_connection(&self.path)
    }

    /// Publications kept per channel.
    pub(crate) fn history_size(&self) -> u64 {
        self.history_size
    }

    fn stream_top(conn: &Connection, channel: &str) -> Result<StreamTop> {
        let select = |conn: &Connection| {
            conn.prepare_cached("SELECT epoch, top_offset FROM streams WHERE channel = ?1")?
                .query_row(params![channel], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
        };
        let (epoch, top) = match select(conn)? {
            Some(r) => r,
            None => {
                // OR IGNORE: the writer's connection may create the stream at the same moment;
                // whichever insert lands first sets the epoch, and both read it back.
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO streams (channel, epoch, top_offset) VALUES (?1, ?2, 0)",
                )?
                .execute(params![channel, new_epoch()])?;
                select(conn)?.ok_or_else(|| Error::Corrupt("stream row vanished".into()))?
            }
        };
        let oldest: Option<i64> = conn
            .prepare_cached("SELECT MIN(offset) FROM publications WHERE channel = ?1")?
            .query_row(params![channel], |r| r.get(0))?;
        Ok(StreamTop {
            offset: to_u64(top),
            epoch,
            oldest: oldest.map(to_u64).unwrap_or(0),
        })
    }

    /// The channel's current position (creates the stream with a fresh epoch if new).
    pub fn top(&self, channel: &str) -> Result<StreamTop> {
        let conn = self.conn.lock().map_err(lock_err)?;
        Self::stream_top(&conn, channel)
    }

    /// Appends a publication, or returns the stored one if `msg_id` was already published.
    /// One transaction (and one disk sync) per call; the server batches through
    /// [`crate::writer`] instead.
    pub fn append(
        &self,
        channel: &str,
        msg_id: Option<&str>,
        data: &serde_json::Value,
        info: &ClientInfo,
        time: i64,
    ) -> Result<Appended> {
        let mut conn = self.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction()?;
        let appended = Self::append_in(&tx, self.history_size, channel, msg_id, data, info, time)?;
        tx.commit()?;
        Ok(appended)
    }

    /// The statements of an append, inside the caller's transaction (nothing is committed).
    pub(crate) fn append_in(
        conn: &Connection,
        history_size: u64,
        channel: &str,
        msg_id: Option<&str>,
        data: &serde_json::Value,
        info: &ClientInfo,
        time: i64,
    ) -> Result<Appended> {
        let top = Self::stream_top(conn, channel)?;
        if let Some(id) = msg_id {
            let existing = conn
                .prepare_cached(
                    "SELECT offset, data, info, time FROM publications WHERE channel = ?1 AND msg_id = ?2",
                )?
                .query_row(params![channel, id], row_to_publication)
                .optional()?;
            if let Some((p, _)) = existing {
                return Ok(Appended {
                    publication: p?,
                    epoch: top.epoch,
                    duplicate: true,
                });
            }
        }
        let offset = top.offset + 1;
        let data_text = data.to_string();
        let info_text = serde_json::to_string(info).map_err(|e| Error::Corrupt(e.to_string()))?;
        conn.prepare_cached(
            "INSERT INTO publications (channel, offset, msg_id, data, info, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![channel, to_i64(offset), msg_id, data_text, info_text, time])?;
        conn.prepare_cached("UPDATE streams SET top_offset = ?2 WHERE channel = ?1")?
            .execute(params![channel, to_i64(offset)])?;
        if offset > history_size {
            conn.prepare_cached("DELETE FROM publications WHERE channel = ?1 AND offset <= ?2")?
                .execute(params![channel, to_i64(offset - history_size)])?;
        }
        Ok(Appended {
            publication: Publication {
                data: data.clone(),
                info: Some(info.clone()),
                offset,
                time,
                ..Publication::default()
            },
            epoch: top.epoch,
            duplicate: false,
        })
    }

    /// What a subscriber needs, on the caller's connection: the stream position and, when
    /// `recover` names this epoch and a position still in retained history, the publications
    /// after `offset` (`recovered = true`). Missed publications that do not fit in
    /// `reply_bytes` are not recovered (`recovered = false`, none returned): the client then
    /// loads the latest page and pages back, as after a lost position.
    pub(crate) fn snapshot_in(
        conn: &Connection,
        channel: &str,
        recover: bool,
        epoch: &str,
        offset: u64,
        reply_bytes: usize,
    ) -> Result<(StreamTop, bool, Vec<Publication>)> {
        let top = Self::stream_top(conn, channel)?;
        let mut recovered = false;
        let mut pubs = Vec::new();
        // An empty epoch means the current one, as in Centrifugo.
        let same_epoch = epoch.is_empty() || epoch == top.epoch;
        if recover && same_epoch && offset <= top.offset {
            let missed = top.offset - offset;
            let contiguous = missed == 0 || offset + 1 >= top.oldest;
            if contiguous {
                pubs = Self::read_in(conn, channel, Some(offset), false, missed, reply_bytes)?;
                recovered = pubs.last().map_or(missed == 0, |p| p.offset == top.offset);
                if !recovered {
                    pubs.clear();
                }
            }
        }
        Ok((top, recovered, pubs))
    }

    /// Whether room `id` exists and `user` is a member, on the caller's connection.
    pub(crate) fn access_in(conn: &Connection, id: &str, user: &str) -> Result<(bool, bool)> {
        let exists: bool = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM rooms WHERE id = ?1)")?
            .query_row(params![id], |r| r.get(0))?;
        if !exists {
            return Ok((false, false));
        }
        let member: bool = conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM members WHERE room_id = ?1 AND user = ?2)",
            )?
            .query_row(params![id, user], |r| r.get(0))?;
        Ok((true, member))
    }

    /// Publications with `after < offset` (`reverse = false`, oldest first) or `offset < before`
    /// (`reverse = true`, newest first), at most `limit` and at most [`Limits::reply_bytes`]
    /// encoded (never fewer than one when any match).
    pub fn read(
        &self,
        channel: &str,
        from: Option<u64>,
        reverse: bool,
        limit: u64,
    ) -> Result<Vec<Publication>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        Self::read_in(
            &conn,
            channel,
            from,
            reverse,
            limit,
            self.limits.reply_bytes,
        )
    }

    fn read_in(
        conn: &Connection,
        channel: &str,
        from: Option<u64>,
        reverse: bool,
        limit: u64,
        max_bytes: usize,
    ) -> Result<Vec<Publication>> {
        let limit = to_i64(limit);
        let (sql, from) = if reverse {
            (
                "SELECT offset, data, info, time FROM publications WHERE channel = ?1 AND offset < ?2 ORDER BY offset DESC LIMIT ?3",
                from.map(to_i64).unwrap_or(i64::MAX),
            )
        } else {
            (
                "SELECT offset, data, info, time FROM publications WHERE channel = ?1 AND offset > ?2 ORDER BY offset ASC LIMIT ?3",
                from.map(to_i64).unwrap_or(0),
            )
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![channel, from, limit])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            let (publication, size) = row_to_publication(row)?;
            bytes = bytes.saturating_add(size);
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(publication?);
        }
        Ok(out)
    }

    /// Creates a room unless it exists or a [`Limits`] room cap is reached; the creator
    /// becomes a member. Rooms of the server itself (empty `creator`) count only towards the
    /// total and are never refused.
    pub fn create_room(
        &self,
        id: &str,
        name: &str,
        creator: &str,
        private: bool,
        now: i64,
    ) -> Result<Created> {
        let mut conn = self.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM rooms WHERE id = ?1)",
            params![id],
            |r| r.get(0),
        )?;
        if exists {
            return Ok(Created::Exists);
        }
        if !creator.is_empty() {
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM rooms", [], |r| r.get(0))?;
            if to_u64(total) >= u64::try_from(self.limits.rooms_total).unwrap_or(u64::MAX) {
                return Ok(Created::TotalLimit);
            }
            let own: i64 = tx.query_row(
                "SELECT COUNT(*) FROM rooms WHERE created_by = ?1",
                params![creator],
                |r| r.get(0),
            )?;
            if to_u64(own) >= u64::try_from(self.limits.rooms_per_user).unwrap_or(u64::MAX) {
                return Ok(Created::UserLimit);
            }
        }
        tx.execute(
            "INSERT INTO rooms (id, name, created_by, created_at, private) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, name, creator, now, private],
        )?;
        if !creator.is_empty() {
            tx.execute(
                "INSERT OR IGNORE INTO members (room_id, user) VALUES (?1, ?2)",
                params![id, creator],
            )?;
        }
        tx.commit()?;
        Ok(Created::Created)
    }

    /// A room by id.
    pub fn room(&self, id: &str) -> Result<Option<Room>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        room_in(&conn, id)
    }

    /// One page of the rooms `user` may see (public ones, and private ones they belong to or
    /// are invited to) in id order, those with ids after `after`, at most `limit`.
    pub fn rooms(&self, user: &str, after: Option<&str>, limit: usize) -> Result<RoomPage> {
        let conn = self.conn.lock().map_err(lock_err)?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.id, r.name, r.private, r.created_by,
                    EXISTS(SELECT 1 FROM members m WHERE m.room_id = r.id AND m.user = ?1),
                    EXISTS(SELECT 1 FROM invites i WHERE i.room_id = r.id AND i.user = ?1)
             FROM rooms r WHERE r.id > ?2 ORDER BY r.id",
        )?;
        let mut rows = stmt.query(params![user, after.unwrap_or("")])?;
        let mut rooms = Vec::new();
        let mut next = None;
        while let Some(r) = rows.next()? {
            let listed = ListedRoom {
                room: Room {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    private: r.get(2)?,
                    owner: r.get(3)?,
                },
                member: r.get(4)?,
                invited: r.get(5)?,
            };
            if listed.room.private && !listed.member && !listed.invited {
                continue; // not theirs to see
            }
            if rooms.len() == limit {
                next = rooms.last().map(|l: &ListedRoom| l.room.id.clone());
                break;
            }
            rooms.push(listed);
        }
        Ok(RoomPage { rooms, next })
    }

    /// Adds `user` to room `id`: any public room, a private one only with an invitation (which
    /// it uses up). A private room the user may not see is [`Joined::NotFound`], like a missing
    /// one, so its existence is not revealed.
    pub fn join_room(&self, id: &str, user: &str) -> Result<Joined> {
        let mut conn = self.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(room) = room_in(&tx, id)? else {
            return Ok(Joined::NotFound);
        };
        if room.private && !is_member_in(&tx, id, user)? {
            let invited = tx.execute(
                "DELETE FROM invites WHERE room_id = ?1 AND user = ?2",
                params![id, user],
            )?;
            if invited == 0 {
                return Ok(Joined::NotFound);
            }
        }
        tx.execute(
            "INSERT OR IGNORE INTO members (room_id, user) VALUES (?1, ?2)",
            params![id, user],
        )?;
        tx.commit()?;
        Ok(Joined::Member)
    }

    /// `inviter` (a member) invites `user` to room `id`.
    pub fn invite(&self, id: &str, inviter: &str, user: &str) -> Result<Changed> {
        let mut conn = self.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(room) = room_in(&tx, id)? else {
            return Ok(Changed::NotFound);
        };
        if !is_member_in(&tx, id, inviter)? {
            return Ok(if room.private {
                Changed::NotFound
            } else {
                Changed::Forbidden
            });
        }
        if !is_member_in(&tx, id, user)? {
            tx.execute(
                "INSERT OR IGNORE INTO invites (room_id, user, invited_by) VALUES (?1, ?2, ?3)",
                params![id, user, inviter],
            )?;
        }
        tx.commit()?;
        Ok(Changed::Done)
    }

    /// `user` leaves room `id`. False if they were not a member.
    pub fn leave(&self, id: &str, user: &str) -> Result<bool> {
        let conn = self.conn.lock().map_err(lock_err)?;
        Ok(conn.execute(
            "DELETE FROM members WHERE room_id = ?1 AND user = ?2",
            params![id, user],
        )? > 0)
    }

    /// The owner of room `id` removes `user` (membership and any invitation).
    pub fn remove_member(&self, id: &str, owner: &str, user: &str) -> Result<Changed> {
        let mut conn = self.conn.lock().map_err(lock_err)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let Some(room) = room_in(&tx, id)? else {
            return Ok(Changed::NotFound);
        };
        if room.private && !is_member_in(&tx, id, owner)? {
            return Ok(Changed::NotFound);
        }
        if room.owner.is_empty() || room.owner != owner {
            return Ok(Changed::Forbidden);
        }
        let removed = tx.execute(
            "DELETE FROM members WHERE room_id = ?1 AND user = ?2",
            params![id, user],
        )?;
        let uninvited = tx.execute(
            "DELETE FROM invites WHERE room_id = ?1 AND user = ?2",
            params![id, user],
        )?;
        tx.commit()?;
        Ok(if removed + uninvited == 0 {
            Changed::NotMember
        } else {
            Changed::Done
        })
    }

    /// One page of the members of room `id` in user order, after `after`, at most `limit`;
    /// `None` for a room `user` may not see.
    pub fn members(
        &self,
        id: &str,
        user: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<MemberPage>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        let Some(room) = room_in(&conn, id)? else {
            return Ok(None);
        };
        if !is_member_in(&conn, id, user)? {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT user FROM members WHERE room_id = ?1 AND user > ?2 ORDER BY user LIMIT ?3",
        )?;
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut users = stmt
            .query_map(params![id, after.unwrap_or(""), fetch], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().cloned()
        } else {
            None
        };
        Ok(Some(MemberPage {
            room,
            members: users,
            next,
        }))
    }

    /// Whether `user` is a member of room `id`.
    pub fn is_member(&self, id: &str, user: &str) -> Result<bool> {
        let conn = self.conn.lock().map_err(lock_err)?;
        is_member_in(&conn, id, user)
    }

    /// Remembers `user`'s display name (from their identity provider's token).
    pub fn set_display_name(&self, user: &str, name: &str) -> Result<()> {
        let conn = self.conn.lock().map_err(lock_err)?;
        conn.prepare_cached(
            "INSERT INTO display_names (user, name) VALUES (?1, ?2)
             ON CONFLICT (user) DO UPDATE SET name = excluded.name WHERE name != excluded.name",
        )?
        .execute(params![user, name])?;
        Ok(())
    }

    /// `user`'s display name, if one was seen.
    pub fn display_name(&self, user: &str) -> Result<Option<String>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        let name = conn
            .prepare_cached("SELECT name FROM display_names WHERE user = ?1")?
            .query_row(params![user], |r| r.get(0))
            .optional()?;
        Ok(name)
    }

    /// The statement that queues the publication at `offset` of `channel` for Centrifugo
    /// (nothing when it is queued or published already), in the caller's transaction.
    pub(crate) fn queue_relay_in(
        conn: &Connection,
        channel: &str,
        offset: u64,
        msg_id: &str,
    ) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO relays (channel, offset, msg_id) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![channel, to_i64(offset), msg_id])?;
        Ok(())
    }

    /// Where Centrifugo put the publication at `offset` of `channel`, once it is published
    /// (queued by the writer with the publication itself).
    pub fn relayed(&self, channel: &str, offset: u64) -> Result<Option<confab_protocol::Sent>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        let done: Option<(Option<i64>, Option<String>)> = conn
            .prepare_cached(
                "SELECT relayed_offset, relayed_epoch FROM relays WHERE channel = ?1 AND offset = ?2",
            )?
            .query_row(params![channel, to_i64(offset)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(match done {
            Some((Some(o), Some(epoch))) => Some(confab_protocol::Sent {
                offset: to_u64(o),
                epoch,
            }),
            _ => None,
        })
    }

    /// Up to `limit` publications of `channel` queued and not yet published to Centrifugo,
    /// oldest first. Queued ones whose publication is gone (trimmed) are dropped.
    pub fn pending_relays(&self, channel: &str, limit: usize) -> Result<Vec<PendingRelay>> {
        let conn = self.conn.lock().map_err(lock_err)?;
        conn.prepare_cached(
            "DELETE FROM relays WHERE channel = ?1 AND relayed_offset IS NULL
             AND NOT EXISTS (SELECT 1 FROM publications p
                             WHERE p.channel = relays.channel AND p.offset = relays.offset)",
        )?
        .execute(params![channel])?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.offset, r.msg_id, p.data FROM relays r
             JOIN publications p ON p.channel = r.channel AND p.offset = r.offset
             WHERE r.channel = ?1 AND r.relayed_offset IS NULL ORDER BY r.offset LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![channel, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (offset, msg_id, data) = row?;
            let data = serde_json::from_str(&data)
                .map_err(|e| Error::Corrupt(format!("publication data: {e}")))?;
            out.push(PendingRelay {
                offset: to_u64(offset),
                msg_id,
                data,
            });
        }
        Ok(out)
    }

    /// Records where Centrifugo put the publication at `offset`; forgets the relays of
    /// publications older than the retained history.
    pub fn mark_relayed(
        &self,
        channel: &str,
        offset: u64,
        sent: &confab_protocol::Sent,
    ) -> Result<()> {
        let conn = self.conn.lock().map_err(lock_err)?;
        conn.prepare_cached(
            "UPDATE relays SET relayed_offset = ?3, relayed_epoch = ?4 WHERE channel = ?1 AND offset = ?2",
        )?
        .execute(params![
            channel,
            to_i64(offset),
            to_i64(sent.offset),
            sent.epoch
        ])?;
        if offset > self.history_size {
            conn.prepare_cached(
                "DELETE FROM relays WHERE channel = ?1 AND offset <= ?2 AND relayed_offset IS NOT NULL",
            )?
            .execute(params![channel, to_i64(offset - self.history_size)])?;
        }
        Ok(())
    }
}

fn room_in(conn: &Connection, id: &str) -> Result<Option<Room>> {
    Ok(conn
        .prepare_cached("SELECT id, name, private, created_by FROM rooms WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok(Room {
                id: r.get(0)?,
                name: r.get(1)?,
                private: r.get(2)?,
                owner: r.get(3)?,
            })
        })
        .optional()?)
}

fn is_member_in(conn: &Connection, id: &str, user: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM members WHERE room_id = ?1 AND user = ?2)")?
        .query_row(params![id, user], |r| r.get(0))?)
}

/// Opens `path` with the store's settings: WAL, `synchronous=FULL`, a 5 s busy timeout (the
/// writer's and the readers' connections wait for each other's write locks).
fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

type RowPublication = std::result::Result<Publication, Error>;

/// A stored publication and the bytes it adds to a reply (its stored JSON is what is sent).
fn row_to_publication(r: &rusqlite::Row<'_>) -> rusqlite::Result<(RowPublication, usize)> {
    let offset: i64 = r.get(0)?;
    let data: String = r.get(1)?;
    let info: Option<String> = r.get(2)?;
    let time: i64 = r.get(3)?;
    let size = data.len() + info.as_ref().map_or(0, String::len) + PUBLICATION_OVERHEAD;
    let publication = (|| {
        let data = serde_json::from_str(&data)
            .map_err(|e| Error::Corrupt(format!("publication data: {e}")))?;
        let info = match info {
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| Error::Corrupt(format!("publication info: {e}")))?,
            ),
            None => None,
        };
        Ok(Publication {
            data,
            info,
            offset: to_u64(offset),
            time,
            ..Publication::default()
        })
    })();
    Ok((publication, size))
}

/// A fresh random epoch (8 hex chars is what the reference server uses in spirit: short, random).
fn new_epoch() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..8].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info() -> ClientInfo {
        ClientInfo {
            user: "alice".into(),
            client: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn offsets_grow_and_duplicates_return_the_original() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite3"), 3).expect("open");
        let a = store
            .append("room:a", Some("m1"), &json!({"t":1}), &info(), 1)
            .expect("append");
        let b = store
            .append("room:a", Some("m2"), &json!({"t":2}), &info(), 2)
            .expect("append");
        assert_eq!(
            (a.publication.offset, b.publication.offset),
            (1, 2),
            "offsets start at 1 and grow by one"
        );
        let again = store
            .append("room:a", Some("m1"), &json!({"t":"changed"}), &info(), 3)
            .expect("append");
        assert!(again.duplicate, "same message id is a duplicate");
        assert_eq!(
            again.publication.offset, 1,
            "duplicate returns the original offset"
        );
        assert_eq!(
            again.publication.data,
            json!({"t":1}),
            "duplicate returns the original data"
        );
        assert_eq!(
            store.top("room:a").expect("top").offset,
            2,
            "duplicate does not move the stream"
        );
        assert_eq!(a.epoch, b.epoch, "epoch is stable");
    }

    #[test]
    fn history_is_trimmed_to_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite3"), 3).expect("open");
        for i in 0..5 {
            store
                .append("room:a", None, &json!(i), &info(), i)
                .expect("append");
        }
        let top = store.top("room:a").expect("top");
        assert_eq!(
            (top.offset, top.oldest),
            (5, 3),
            "only the newest 3 are kept"
        );
        let all = store.read("room:a", None, false, 100).expect("read");
        assert_eq!(
            all.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![3, 4, 5],
            "oldest first"
        );
        let rev = store.read("room:a", Some(5), true, 1).expect("read");
        assert_eq!(
            rev.iter().map(|p| p.offset).collect::<Vec<_>>(),
            vec![4],
            "reverse before offset 5, limit 1"
        );
    }
}
