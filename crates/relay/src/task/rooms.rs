//! Followed rooms: subscriptions with recovery, page reloads (resets), and the one filter
//! every publication passes (dedupe by offset, gaps, held while the room syncs).

use std::time::Duration;

use confab_protocol::{
    room_channel, Command as WireCommand, ErrorCode, HistoryRequest, Publication, Reply,
    SubscribeRequest, UnsubscribeRequest,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::decode::entry;
use super::{server_error, Core, End, Pending};
use crate::error::{Error, Result};
use crate::events::{ChatEntry, Event, RoomPage};
use crate::outbox::OutboxItem;

/// Publications held for a room while its subscription or reset is in flight; more means the
/// room is far behind and a reconnect (with recovery) is cheaper than holding them.
const MAX_SYNC_BUFFER: usize = 10_000;

/// First wait before a room whose page failed to load is tried again by itself; it doubles
/// with each failure up to [`RESET_BACKOFF_MAX`] (reconnects do not reset it; a page that
/// loads, or the user opening the room, does).
const RESET_BACKOFF_MIN: Duration = Duration::from_secs(2);
/// Longest wait between automatic tries of a room whose page keeps failing.
const RESET_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The wait after `failures` failed page loads in a row (at least one).
pub(super) fn reset_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RESET_BACKOFF_MIN
        .saturating_mul(1 << doublings)
        .min(RESET_BACKOFF_MAX)
}

#[derive(Default)]
pub(super) struct Room {
    pub(super) epoch: String,
    offset: u64,
    pub(super) known: bool,
    pub(super) subscribed: bool,
    pub(super) syncing: bool,
    needs_reset: bool,
    /// Page loads that failed in a row, and when the relay may try again by itself.
    reset_failures: u32,
    pub(super) reset_after: Option<Instant>,
    pub(super) buffer: Vec<Arrival>,
    pub(super) waiters: Vec<oneshot::Sender<Result<RoomPage>>>,
}

/// A publication reduced to what the relay uses: its offset and the chat message (`None` when
/// its data is not one).
pub(super) struct Arrival {
    pub(super) offset: u64,
    pub(super) message: Option<ChatEntry>,
}

impl Arrival {
    pub(super) fn of(room: &str, p: &Publication) -> Self {
        Self {
            offset: p.offset,
            message: entry(room, p),
        }
    }
}

impl Core {
    /// Follows `room` without asking for a page: from `from` (a position an earlier run saved)
    /// the subscription recovers what was missed as `Message` events; without one (or when the
    /// server cannot recover from it) the room is reloaded (`RoomReset`). Subscribes now when
    /// `online`, else with every room at the next connect.
    pub(super) fn follow(&mut self, room: String, from: Option<(String, u64)>, online: bool) {
        let r = self.rooms.entry(room.clone()).or_default();
        if !r.known {
            if let Some((epoch, offset)) = from {
                r.known = true;
                r.epoch = epoch;
                r.offset = offset;
            }
        }
        if online && !r.subscribed && !r.syncing {
            self.subscribe(&room);
        }
    }

    pub(super) fn subscribe(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = true;
        r.subscribed = false;
        r.buffer.clear();
        let req = SubscribeRequest {
            channel: room_channel(room),
            recover: r.known,
            epoch: if r.known {
                r.epoch.clone()
            } else {
                String::new()
            },
            offset: if r.known { r.offset } else { 0 },
            positioned: true,
            recoverable: true,
            ..SubscribeRequest::default()
        };
        let id = self.push_cmd(WireCommand {
            subscribe: Some(req),
            ..WireCommand::default()
        });
        self.pending.insert(id, Pending::Subscribe(room.to_owned()));
    }

    /// Loads the room's latest page now, or, while its page keeps failing and nobody waits
    /// for it, marks the room stale so the stale check loads it once its backoff has passed.
    pub(super) fn reset_or_wait(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let backing_off = r.reset_after.is_some_and(|t| t > Instant::now());
        if backing_off && r.waiters.is_empty() {
            r.syncing = false;
            self.outlet.stale_rooms.insert(room.to_owned());
            self.drain_buffer(room);
        } else {
            self.start_reset(room);
        }
    }

    /// A page load of `room` failed: waiters get the error, the UI is told, and the relay
    /// tries again by itself after a backoff that grows while it keeps failing.
    pub(super) fn reset_failed(&mut self, room: &str, e: &Error) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = false;
        r.reset_failures = r.reset_failures.saturating_add(1);
        let retry_in = reset_backoff(r.reset_failures);
        r.reset_after = Some(Instant::now() + retry_in);
        for w in r.waiters.drain(..) {
            let _ = w.send(Err(match e {
                Error::ReplyTooLarge { size, max } => Error::ReplyTooLarge {
                    size: *size,
                    max: *max,
                },
                Error::Server { code, message } => Error::Server {
                    code: *code,
                    message: message.clone(),
                },
                other => Error::Protocol(other.to_string()),
            }));
        }
        tracing::warn!(
            room,
            failures = r.reset_failures,
            ?retry_in,
            "room page failed: {e}"
        );
        self.outlet.stale_rooms.insert(room.to_owned()); // retried by the stale check
        self.outlet.emit(Event::RoomFailed {
            room: room.to_owned(),
            message: e.to_string(),
            retry_in,
        });
        self.drain_buffer(room);
    }

    /// A recovering subscribe whose missed publications were too large to receive: follow the
    /// room from its current position instead (a subscribe without recovery carries none).
    pub(super) fn subscribe_too_large(&mut self, room: &str, e: &Error) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.known {
            tracing::info!(
                room,
                "recovery too large to receive; reloading recent history"
            );
            r.known = false;
            // The server did subscribe us (only its answer was too large): leave first, or
            // the new subscribe is "already subscribed". Commands run in order.
            self.push_cmd(WireCommand {
                unsubscribe: Some(UnsubscribeRequest {
                    channel: room_channel(room),
                }),
                ..WireCommand::default()
            });
            self.subscribe(room);
        } else {
            r.syncing = false;
            for w in r.waiters.drain(..) {
                let _ = w.send(Err(Error::Protocol(e.to_string())));
            }
            self.error("server", format!("cannot open room {room}: {e}"));
            self.end = Some(End::Protocol("subscribe reply too large".into()));
        }
    }

    /// Stops following `room` (the user left it or lost access): waiters get an error, held
    /// publications are dropped, and the UI gets `RoomClosed` once.
    pub(super) fn close_room(&mut self, room: &str, reason: String) {
        let Some(mut r) = self.rooms.remove(room) else {
            return; // closed already (the leave's reply and the server's push both say so)
        };
        for w in r.waiters.drain(..) {
            let _ = w.send(Err(Error::Server {
                code: ErrorCode::PERMISSION_DENIED,
                message: reason.clone(),
            }));
        }
        self.outlet.stale_rooms.remove(room);
        tracing::info!(room, reason, "room closed");
        self.outlet.emit(Event::RoomClosed {
            room: room.to_owned(),
            reason,
        });
    }

    pub(super) fn start_reset(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = true;
        r.needs_reset = true;
        let id = self.push_cmd(WireCommand {
            history: Some(HistoryRequest {
                channel: room_channel(room),
                limit: i32::try_from(self.config.page_size).unwrap_or(i32::MAX),
                since: None,
                reverse: true,
            }),
            ..WireCommand::default()
        });
        self.pending.insert(id, Pending::Reset(room.to_owned()));
    }

    pub(super) fn on_subscribed(&mut self, room: &str, reply: Reply) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(e) = reply.error {
            r.syncing = false;
            let err_text = format!("cannot open room {room}: {}", e.message);
            for w in r.waiters.drain(..) {
                let _ = w.send(Err(server_error(&e)));
            }
            if e.temporary || e.code == ErrorCode::INTERNAL {
                self.error("server", err_text);
                self.end = Some(End::Protocol("temporary subscribe failure".into()));
            } else {
                // Not a member, or a room gone or hidden: stop following it. The room stays on
                // screen with what it holds (an unsent message among it, say): only the server
                // ending a subscription (the user left or was removed) closes it.
                self.rooms.remove(room);
                self.error("server", err_text);
            }
            return;
        }
        let Some(res) = reply.subscribe else {
            self.end = Some(End::Protocol("subscribe reply without result".into()));
            return;
        };
        r.subscribed = true;
        let recovered = r.known && res.recovered && res.epoch == r.epoch;
        if recovered {
            let pubs = res.publications;
            let wants_page = !r.waiters.is_empty() || r.needs_reset;
            r.syncing = false;
            for p in pubs {
                let a = Arrival::of(room, &p);
                self.on_publication(room, a);
            }
            self.drain_buffer(room);
            if wants_page {
                self.reset_or_wait(room);
            }
        } else {
            if r.known {
                tracing::info!(room, "recovery failed; reloading recent history");
            }
            r.epoch = res.epoch;
            r.offset = res.offset;
            r.known = true;
            self.reset_or_wait(room);
        }
    }

    pub(super) fn on_reset(&mut self, room: &str, reply: Reply) {
        let unsent: Vec<OutboxItem> = self.unsent(room);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = false;
        match (reply.error, reply.history) {
            (Some(e), _) => {
                self.reset_failed(room, &server_error(&e));
                return; // reset_failed drains the buffer
            }
            (None, Some(h)) => {
                r.reset_failures = 0;
                r.reset_after = None;
                let mut pubs = h.publications;
                pubs.reverse();
                let page_top = pubs.last().map(|p| p.offset).unwrap_or(0);
                if h.epoch != r.epoch {
                    r.epoch = h.epoch;
                    r.offset = h.offset.max(page_top);
                } else {
                    r.offset = r.offset.max(h.offset).max(page_top);
                }
                r.needs_reset = false;
                let has_older = pubs.first().is_some_and(|p| p.offset > 1);
                let messages: Vec<ChatEntry> = pubs.iter().filter_map(|p| entry(room, p)).collect();
                let page = RoomPage {
                    room: room.to_owned(),
                    messages: messages.clone(),
                    has_older,
                };
                for w in r.waiters.drain(..) {
                    let _ = w.send(Ok(page.clone()));
                }
                let (epoch, offset) = (r.epoch.clone(), r.offset);
                self.outlet.stale_rooms.remove(room);
                self.outlet.emit(Event::RoomReset {
                    room: room.to_owned(),
                    messages,
                    has_older,
                    unsent,
                    epoch,
                    offset,
                });
            }
            (None, None) => {
                self.end = Some(End::Protocol("history reply without result".into()));
                return;
            }
        }
        self.drain_buffer(room);
    }

    fn unsent(&self, room: &str) -> Vec<OutboxItem> {
        let mut v: Vec<&(u64, OutboxItem)> = self
            .items
            .values()
            .filter(|(_, i)| i.room == room)
            .collect();
        v.sort_by_key(|(seq, _)| *seq);
        v.into_iter().map(|(_, i)| i.clone()).collect()
    }

    fn drain_buffer(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.syncing {
            return;
        }
        let buffered = std::mem::take(&mut r.buffer);
        for p in buffered {
            self.on_publication(room, p);
        }
    }

    /// Applies one publication: dedupe by offset, detect gaps, emit.
    pub(super) fn on_publication(&mut self, room: &str, p: Arrival) {
        let Some(r) = self.rooms.get_mut(room) else {
            return; // a room we no longer follow
        };
        if r.syncing {
            if r.buffer.len() >= MAX_SYNC_BUFFER {
                self.end = Some(End::Protocol("room too far behind".into()));
                return;
            }
            // Held until the room's page arrives: a copy of its own, so the frame's read
            // buffer is not kept with it.
            r.buffer.push(Arrival {
                offset: p.offset,
                message: p.message.map(|m| m.detached()),
            });
            return;
        }
        if p.offset == 0 {
            self.error(
                "protocol",
                format!("publication without offset in room {room}"),
            );
            return;
        }
        if p.offset <= r.offset {
            return; // seen already (recovery overlap, reset overlap or a resent push)
        }
        if p.offset > r.offset + 1 {
            // A gap: reconnecting recovers the missed publications from our position.
            self.end = Some(End::Protocol(format!(
                "gap in room {room}: expected offset {}, got {}",
                r.offset + 1,
                p.offset
            )));
            return;
        }
        r.offset = p.offset;
        match p.message {
            Some(e) => self.outlet.emit(Event::Message(e)),
            None => self.error("protocol", format!("undecodable message in room {room}")),
        }
    }
}
