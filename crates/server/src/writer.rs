//! Group commit: one thread owns the write connection and turns every publish that is waiting
//! when it looks into **one transaction and one disk sync**.
//!
//! Durability is unchanged: a publish is acknowledged (and broadcast) only after the
//! transaction holding it has committed with `synchronous=FULL`. What changes is the cost: the
//! sync is shared by everything that queued up during the previous one, so many publishes (from
//! one pipelining connection or from many connections) no longer wait for one sync each.
//!
//! Order: jobs run in the order they were queued, so publications of one connection keep their
//! order, and offsets are broadcast in offset order. Subscriptions go through the same thread
//! (stream position, recovered publications and hub registration between two batches), so no
//! publication falls between a subscriber's snapshot and its live pushes, and none reaches it
//! twice. Each publish runs under a savepoint: one failing statement fails only that publish.

use confab_protocol::{
    ChatMessage, ClientInfo, ErrorCode, ErrorReply, Publication, PublishResult, Push, Reply,
};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::store::{Appended, Store, StreamTop};

/// Jobs taken into one transaction at most (bounds the time one batch holds the write lock).
const MAX_BATCH: usize = 1024;
/// Queue between connections and the writer; a full queue makes publishers wait (backpressure).
const QUEUE: usize = 4096;

/// A publish for the writer. Access is checked in the writer's transaction.
pub(crate) struct PublishJob {
    /// Command id to answer.
    pub id: u32,
    /// `room:<id>` channel.
    pub channel: String,
    /// Room id of `channel`.
    pub room: String,
    /// Publisher (token `sub`).
    pub user: String,
    /// Publisher info stored with the publication.
    pub info: ClientInfo,
    /// The chat message with the author already set; `None` when the data was not one
    /// (answered with 107 after the access check, as before).
    pub message: Option<ChatMessage>,
    /// Publication time, Unix ms.
    pub time: i64,
    /// Queue it for Centrifugo (the backend role) in the same transaction as the store, so
    /// no stored message can miss its place in the queue, whatever happens after the commit.
    pub relay: bool,
    /// Where the reply goes (after the commit).
    pub reply: oneshot::Sender<Reply>,
}

/// A subscription snapshot: stream position plus recovered publications.
pub(crate) type Snapshot = (StreamTop, bool, Vec<Publication>);

/// A subscribe for the writer: snapshot and hub registration as one step between batches.
pub(crate) struct SubscribeJob {
    /// Channel.
    pub channel: String,
    /// Subscribing connection.
    pub client: String,
    /// Its info (presence, join/leave).
    pub info: ClientInfo,
    /// Wants join/leave pushes.
    pub join_leave: bool,
    /// Recovery requested, with the client's position.
    pub recover: bool,
    /// Client's epoch.
    pub epoch: String,
    /// Client's offset.
    pub offset: u64,
    /// The snapshot, or `None` if the connection closed meanwhile (nothing registered).
    pub reply: oneshot::Sender<Result<Option<Snapshot>>>,
}

pub(crate) enum Job {
    Publish(PublishJob),
    Subscribe(SubscribeJob),
}

/// Handle to the writer thread; cheap to clone. The thread ends when every handle is gone.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writer's connection and starts its thread.
    pub(crate) fn start(store: &Store, hub: std::sync::Arc<Hub>) -> Result<Self> {
        let conn = store.writer_connection()?;
        // Checkpoints run on their own thread (below), not inside a publish's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoint_conn = store.writer_connection()?;
        let history_size = store.history_size();
        let reply_bytes = store.limits().reply_bytes;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("confab-checkpoint".into())
            .spawn(move || checkpoints(checkpoint_conn, stop_rx))
            .map_err(|e| Error::StorageTask(format!("cannot start the checkpoint thread: {e}")))?;
        std::thread::Builder::new()
            .name("confab-writer".into())
            .spawn(move || {
                run(conn, hub, history_size, reply_bytes, rx);
                drop(stop_tx); // ends the checkpoint thread
            })
            .map_err(|e| Error::StorageTask(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Queues a job (waits while the queue is full). Err when the writer has stopped.
    pub(crate) async fn submit(&self, job: Job) -> Result<()> {
        self.tx
            .send(job)
            .await
            .map_err(|_| Error::StorageTask("the writer has stopped".into()))
    }
}

fn run(
    mut conn: Connection,
    hub: std::sync::Arc<Hub>,
    history_size: u64,
    reply_bytes: usize,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut publishes = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next {
            taken += 1;
            match job {
                Job::Publish(p) => publishes.push(p),
                Job::Subscribe(s) => {
                    commit(&mut conn, &hub, history_size, &mut publishes);
                    subscribe(&conn, &hub, reply_bytes, s);
                }
            }
            next = if taken < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        commit(&mut conn, &hub, history_size, &mut publishes);
    }
    tracing::debug!("writer stopped: no more handles");
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Moves WAL pages into the database file every [`CHECKPOINT_EVERY`] with a PASSIVE checkpoint
/// (it never waits for the writer's lock, and the writer never waits for it). With SQLite's
/// default auto-checkpoint every ~1,000 WAL pages, the commit that crossed the threshold did
/// the checkpoint (database writes and a second sync) before its publishes were acknowledged,
/// which at 1,000 messages/s put a multi-millisecond stall into the tail several times a second.
/// Durability does not depend on checkpoints: a committed transaction is already synced in the
/// WAL.
fn checkpoints(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        match done {
            Ok((_, log, moved)) => tracing::trace!(log, moved, "checkpoint"),
            Err(e) => tracing::warn!(error = %e, "checkpoint failed; retried next time"),
        }
    }
}

/// What one publish came to inside the transaction.
enum Outcome {
    Stored(Appended),
    Refused(ErrorReply),
}

fn internal(id: u32) -> Reply {
    Reply::error(id, ErrorReply::from_code(ErrorCode::INTERNAL))
}

/// Runs `jobs` in one transaction, commits once, then broadcasts and answers each.
fn commit(conn: &mut Connection, hub: &Hub, history_size: u64, jobs: &mut Vec<PublishJob>) {
    if jobs.is_empty() {
        return;
    }
    let jobs = std::mem::take(jobs);
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "storage error: cannot begin a transaction");
            for job in jobs {
                let _ = job.reply.send(internal(job.id));
            }
            return;
        }
    };
    let mut outcomes: Vec<(PublishJob, Option<Outcome>)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match publish_in(&mut tx, history_size, &job) {
            Ok(o) => Some(o),
            Err(e) => {
                tracing::error!(error = %e, "storage error");
                None
            }
        };
        outcomes.push((job, outcome));
    }
    if let Err(e) = tx.commit() {
        tracing::error!(error = %e, "storage error: commit failed");
        for (job, _) in outcomes {
            let _ = job.reply.send(internal(job.id));
        }
        return;
    }
    tracing::trace!(publishes = outcomes.len(), "batch committed");
    // Durable now: broadcast in offset order, then acknowledge.
    for (job, outcome) in outcomes {
        let reply = match outcome {
            None => internal(job.id),
            Some(Outcome::Refused(e)) => Reply::error(job.id, e),
            Some(Outcome::Stored(appended)) => {
                let offset = appended.publication.offset;
                if appended.duplicate {
                    tracing::debug!(offset, "duplicate publish acknowledged");
                } else {
                    hub.broadcast(
                        &job.channel,
                        &Reply::push(Push {
                            channel: job.channel.clone(),
                            publication: Some(appended.publication),
                            ..Push::default()
                        }),
                    );
                }
                Reply {
                    id: job.id,
                    publish: Some(PublishResult {
                        offset,
                        epoch: appended.epoch,
                    }),
                    ..Reply::default()
                }
            }
        };
        let _ = job.reply.send(reply);
    }
}

/// One publish under a savepoint of the batch's transaction.
fn publish_in(
    tx: &mut rusqlite::Transaction<'_>,
    history_size: u64,
    job: &PublishJob,
) -> Result<Outcome> {
    let sp = tx.savepoint()?;
    let (exists, member) = Store::access_in(&sp, &job.room, &job.user)?;
    if !exists {
        return Ok(Outcome::Refused(ErrorReply::from_code(
            ErrorCode::UNKNOWN_CHANNEL,
        )));
    }
    if !member {
        return Ok(Outcome::Refused(ErrorReply::from_code(
            ErrorCode::PERMISSION_DENIED,
        )));
    }
    let Some(msg) = &job.message else {
        return Ok(Outcome::Refused(ErrorReply::with_message(
            ErrorCode::BAD_REQUEST,
            "bad request: data must be a chat message {id, text, ts}",
        )));
    };
    if let Err(problem) = confab_protocol::check_text(&msg.text) {
        return Ok(Outcome::Refused(ErrorReply::with_message(
            ErrorCode::BAD_REQUEST,
            format!("bad request: {problem}"),
        )));
    }
    let data = serde_json::to_value(msg).map_err(|e| Error::Corrupt(e.to_string()))?;
    let msg_id = msg.id.to_string();
    // Dropping the savepoint on an error rolls back just this publish.
    let appended = Store::append_in(
        &sp,
        history_size,
        &job.channel,
        Some(&msg_id),
        &data,
        &job.info,
        job.time,
    )?;
    // Idempotency is the author's: the same id from someone else is not "already stored" (that
    // would drop their text while their client says sent), it is a conflict.
    let same_author = appended
        .publication
        .data
        .get("author")
        .and_then(serde_json::Value::as_str)
        == Some(job.user.as_str());
    if appended.duplicate && !same_author {
        return Ok(Outcome::Refused(ErrorReply::with_message(
            ErrorCode::BAD_REQUEST,
            "bad request: this message id is already used by another author",
        )));
    }
    if job.relay {
        Store::queue_relay_in(&sp, &job.channel, appended.publication.offset, &msg_id)?;
    }
    sp.commit()?;
    Ok(Outcome::Stored(appended))
}

fn subscribe(conn: &Connection, hub: &Hub, reply_bytes: usize, job: SubscribeJob) {
    let snapshot = Store::snapshot_in(
        conn,
        &job.channel,
        job.recover,
        &job.epoch,
        job.offset,
        reply_bytes,
    );
    let reply = match snapshot {
        Ok(snap) => {
            let registered = hub.subscribe(&job.channel, &job.client, job.info, job.join_leave);
            Ok(registered.then_some(snap))
        }
        Err(e) => Err(e),
    };
    let _ = job.reply.send(reply);
}
