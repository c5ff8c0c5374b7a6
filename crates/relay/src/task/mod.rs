//! The background task: one connection at a time, reconnects, subscriptions, outbox.
//!
//! [`Core`] is the task's state; its methods are split by concern:
//! - `connection`: the connect/reconnect loop, backoff, dialling and the `connect` handshake,
//!   and what a lost connection leaves to redo;
//! - `serve`: one live connection: frames in, commands out, timers (ping watchdog, token
//!   refresh, publish retry, stale rooms);
//! - `decode` (with `fast`): server frames to typed lines;
//! - `inbound`: decoded lines applied: pushes to rooms, replies to what their command waits for;
//! - `rooms`: subscriptions, recovery, dedupe and gaps, room resets;
//! - `send_queue`: the outbox's messages published, acknowledged, retried.
//!
//! Handle commands are dispatched here.

mod connection;
mod decode;
// pub(crate): push_line's tests hold the hand-written reader to this path's meaning.
pub(crate) mod fast;
mod inbound;
mod rooms;
mod send_queue;
mod serve;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use confab_protocol::{
    room_channel, Command as WireCommand, ErrorReply, HistoryRequest, RpcRequest, StreamPosition,
    Token,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::RelayConfig;
use crate::error::{Error, Result};
use crate::events::{ConnectionState, Event, RoomPage, SendState};
use crate::outbox::{Outbox, OutboxItem, Remover};
use crate::outlet::Outlet;
use crate::token::{TokenError, TokenSource};
use crate::transport::Connector;

pub use decode::decode_frame_for_bench;
pub(crate) use send_queue::new_item;

use rooms::Room;

/// Commands from handles.
pub(crate) enum Cmd {
    Rpc {
        method: &'static str,
        data: Value,
        reply: oneshot::Sender<Result<Value>>,
    },
    OpenRoom {
        room: String,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    LoadOlder {
        room: String,
        before: u64,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    Queued(OutboxItem),
    Retry {
        id: Uuid,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Follow a room (no page), recovering from a saved position if given.
    FollowRoom {
        room: String,
        from: Option<(String, u64)>,
    },
    /// Stop following a room the user left.
    CloseRoom {
        room: String,
        reason: String,
    },
    NetworkUp,
    Reconnect,
    Shutdown(oneshot::Sender<()>),
}

/// Results of work spawned off the task (token fetches).
enum Internal {
    RefreshToken(std::result::Result<Token, TokenError>),
}

/// What a pending command id is waiting for.
enum Pending {
    Subscribe(String),
    Publish(Uuid),
    Reset(String),
    Older {
        room: String,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    Rpc(oneshot::Sender<Result<Value>>),
    Refresh {
        retried: bool,
    },
}

/// Why a connection ended.
enum End {
    Closed { code: Option<u16>, reason: String },
    Transport(String),
    Protocol(String),
    Dead,
    TokenRejected,
    SignedOut,
    Shutdown(Option<oneshot::Sender<()>>),
}

pub(crate) struct Core {
    config: RelayConfig,
    source: Arc<dyn TokenSource>,
    connector: Arc<dyn Connector>,
    outbox: Outbox,
    remover: Remover,
    outlet: Outlet,
    rooms: BTreeMap<String, Room>,
    /// Pending (not in flight, not failed) outbox messages by send order.
    queue: BTreeMap<u64, Uuid>,
    items: HashMap<Uuid, (u64, OutboxItem)>,
    in_flight: HashSet<Uuid>,
    next_seq: u64,
    deferred: Vec<Cmd>,
    /// The TLS failure last told to the UI since the last connection (told once per cause).
    told_tls: Option<String>,
    // per connection
    pending: HashMap<u32, Pending>,
    out: Vec<WireCommand>,
    next_id: u32,
    refresh_at: Option<Instant>,
    refresh_in_flight: bool,
    dead_at: Option<Instant>,
    ping_window: Option<Duration>,
    answer_pings: bool,
    publish_retry_at: Option<Instant>,
    stale_checked: Instant,
    last_seen: Instant,
    end: Option<End>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
}

fn server_error(e: &ErrorReply) -> Error {
    Error::Server {
        code: e.code,
        message: e.message.clone(),
    }
}

impl Core {
    pub(crate) fn new(
        config: RelayConfig,
        source: Arc<dyn TokenSource>,
        connector: Arc<dyn Connector>,
        outbox: Outbox,
        outlet: Outlet,
    ) -> Result<Self> {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let mut core = Self {
            config,
            source,
            connector,
            remover: outbox.remover(),
            outbox,
            outlet,
            rooms: BTreeMap::new(),
            queue: BTreeMap::new(),
            items: HashMap::new(),
            in_flight: HashSet::new(),
            next_seq: 0,
            deferred: Vec::new(),
            pending: HashMap::new(),
            out: Vec::new(),
            next_id: 0,
            refresh_at: None,
            refresh_in_flight: false,
            dead_at: None,
            ping_window: None,
            answer_pings: false,
            publish_retry_at: None,
            stale_checked: Instant::now(),
            last_seen: Instant::now(),
            end: None,
            internal_tx,
            internal_rx,
            told_tls: None,
        };
        for item in core.outbox.list()? {
            let state = match &item.failed {
                None => SendState::Pending,
                Some(reason) => SendState::Failed {
                    reason: reason.clone(),
                },
            };
            core.outlet.emit(Event::MessageState {
                id: item.id,
                room: item.room.clone(),
                state,
            });
            core.track(item);
        }
        Ok(core)
    }

    fn state(&mut self, s: ConnectionState) {
        self.outlet.emit(Event::ConnectionState(s));
    }

    fn error(&mut self, kind: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(%kind, %message, "relay error");
        self.outlet.emit(Event::Error {
            kind: kind.to_owned(),
            message,
        });
    }

    fn push_cmd(&mut self, mut cmd: WireCommand) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        cmd.id = self.next_id;
        self.out.push(cmd);
        self.next_id
    }

    fn on_command_offline(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Queued(item) => self.on_queued(item),
            Cmd::Retry { id, reply } => {
                let _ = reply.send(self.on_retry(id));
            }
            Cmd::OpenRoom { room, reply } => {
                self.rooms.entry(room).or_default().waiters.push(reply);
            }
            Cmd::CloseRoom { room, reason } => self.close_room(&room, reason),
            Cmd::FollowRoom { room, from } => self.follow(room, from, false),
            Cmd::NetworkUp | Cmd::Reconnect | Cmd::Shutdown(_) => {}
            c @ (Cmd::Rpc { .. } | Cmd::LoadOlder { .. }) => {
                // Answered after the next connect (or the caller's timeout).
                self.deferred.retain(|d| match d {
                    Cmd::Rpc { reply, .. } => !reply.is_closed(),
                    Cmd::LoadOlder { reply, .. } => !reply.is_closed(),
                    _ => true,
                });
                self.deferred.push(c);
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Rpc {
                method,
                data,
                reply,
            } => {
                if reply.is_closed() {
                    return;
                }
                let id = self.push_cmd(WireCommand {
                    rpc: Some(RpcRequest {
                        method: method.to_owned(),
                        data: Some(data),
                    }),
                    ..WireCommand::default()
                });
                self.pending.insert(id, Pending::Rpc(reply));
            }
            Cmd::OpenRoom { room, reply } => {
                let r = self.rooms.entry(room.clone()).or_default();
                r.waiters.push(reply);
                if !r.subscribed && !r.syncing {
                    self.subscribe(&room);
                } else if !r.syncing {
                    self.start_reset(&room);
                }
                // else: the sync in flight answers the waiter
            }
            Cmd::LoadOlder {
                room,
                before,
                reply,
            } => {
                let Some(r) = self.rooms.get(&room).filter(|r| r.known) else {
                    let _ = reply.send(Err(Error::RoomNotOpen));
                    return;
                };
                let epoch = r.epoch.clone();
                let id = self.push_cmd(WireCommand {
                    history: Some(HistoryRequest {
                        channel: room_channel(&room),
                        limit: i32::try_from(self.config.page_size).unwrap_or(i32::MAX),
                        since: Some(StreamPosition {
                            offset: before,
                            epoch,
                        }),
                        reverse: true,
                    }),
                    ..WireCommand::default()
                });
                self.pending.insert(id, Pending::Older { room, reply });
            }
            Cmd::Queued(item) => {
                self.on_queued(item);
                self.flush_outbox();
            }
            Cmd::Retry { id, reply } => {
                let _ = reply.send(self.on_retry(id));
                self.flush_outbox();
            }
            Cmd::CloseRoom { room, reason } => self.close_room(&room, reason),
            Cmd::FollowRoom { room, from } => self.follow(room, from, true),
            Cmd::NetworkUp | Cmd::Reconnect | Cmd::Shutdown(_) => {}
        }
    }
}
