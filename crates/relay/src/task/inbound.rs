//! A frame's decoded lines applied: publications and other pushes to their rooms, replies to
//! what their command waits for.

use confab_protocol::{room_id, Command as WireCommand, ErrorCode, Reply};
use serde_json::Value;

use super::decode::{decode_lines, entry, fast_entry, Line};
use super::rooms::Arrival;
use super::{server_error, Core, End, Pending};
use crate::error::Error;
use crate::events::RoomPage;
use crate::push_line::PubLine;
use crate::transport::Utf8Bytes;

impl Core {
    pub(super) fn on_frame(&mut self, frame: &Utf8Bytes) {
        let lines = match decode_lines(frame, self.config.max_frame_bytes) {
            Ok(r) => r,
            Err(e) => {
                self.error("protocol", format!("malformed frame from the server: {e}"));
                self.end = Some(End::Protocol(e.to_string()));
                return;
            }
        };
        for line in lines {
            if self.end.is_some() {
                return;
            }
            match line {
                Line::Publication(push) => self.on_fast_publication(frame, push),
                Line::Reply(reply) => self.on_reply(*reply),
                Line::TooLarge { id, size } => self.on_too_large(id, size),
            }
        }
    }

    /// A reply too large to accept fails its own request only: a reconnect would send the
    /// same request and get the same reply.
    fn on_too_large(&mut self, id: u32, size: usize) {
        let max = self.config.max_frame_bytes;
        tracing::warn!(id, size, max, "reply too large for this client");
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let too_large = || Error::ReplyTooLarge { size, max };
        match pending {
            Pending::Older { reply, .. } => {
                let _ = reply.send(Err(too_large()));
            }
            Pending::Rpc(reply) => {
                let _ = reply.send(Err(too_large()));
            }
            Pending::Reset(room) => self.reset_failed(&room, &too_large()),
            Pending::Subscribe(room) => self.subscribe_too_large(&room, &too_large()),
            Pending::Publish(_) | Pending::Refresh { .. } => {
                self.error("protocol", too_large().to_string());
                self.end = Some(End::Protocol("reply too large".into()));
            }
        }
    }

    /// A publication push from a fast path: the same steps as `on_push` → `on_publication`.
    fn on_fast_publication(&mut self, frame: &Utf8Bytes, push: PubLine<'_>) {
        let Some(room) = room_id(&push.channel) else {
            tracing::debug!("publication outside a room ignored");
            return;
        };
        if !self.rooms.contains_key(room) {
            return; // a room we no longer follow
        }
        let arrival = Arrival {
            offset: push.publication.offset,
            message: Some(fast_entry(frame, room, push.publication)),
        };
        self.on_publication(room, arrival);
    }

    fn on_reply(&mut self, reply: Reply) {
        if reply.id == 0 {
            if reply.is_ping() {
                if self.answer_pings {
                    self.out.push(WireCommand::default());
                }
                return;
            }
            let Some(push) = reply.push else {
                self.error("protocol", "reply without id or push");
                self.end = Some(End::Protocol("reply without id or push".into()));
                return;
            };
            self.on_push(push);
            return;
        }
        let Some(pending) = self.pending.remove(&reply.id) else {
            tracing::debug!(id = reply.id, "reply to an unknown command");
            return;
        };
        match pending {
            Pending::Subscribe(room) => self.on_subscribed(&room, reply),
            Pending::Reset(room) => self.on_reset(&room, reply),
            Pending::Publish(id) => self.on_published(id, reply),
            Pending::Older { room, reply: tx } => {
                let r = match (reply.error, reply.history) {
                    (Some(e), _) => Err(server_error(&e)),
                    (None, Some(h)) => {
                        let mut pubs = h.publications;
                        pubs.reverse();
                        Ok(RoomPage {
                            has_older: pubs.first().is_some_and(|p| p.offset > 1),
                            messages: pubs.iter().filter_map(|p| entry(&room, p)).collect(),
                            room,
                        })
                    }
                    (None, None) => Err(Error::Protocol("history reply without result".into())),
                };
                let _ = tx.send(r);
            }
            Pending::Rpc(tx) => {
                let r = match (reply.error, reply.rpc) {
                    (Some(e), _) => Err(server_error(&e)),
                    (None, Some(rpc)) => Ok(rpc.data.unwrap_or(Value::Null)),
                    (None, None) => Err(Error::Protocol("rpc reply without result".into())),
                };
                let _ = tx.send(r);
            }
            Pending::Refresh { retried } => match (reply.error, reply.refresh) {
                (None, Some(res)) => {
                    self.refresh_in_flight = false;
                    self.schedule_refresh(res.expires, res.ttl);
                }
                (Some(e), _) if e.code == ErrorCode::TOKEN_EXPIRED && !retried => {
                    // The source handed out a token the server finds expired: ask for a new one.
                    self.refresh_in_flight = false;
                    self.start_refresh(true);
                }
                (Some(e), _) => {
                    self.refresh_in_flight = false;
                    self.error("server", format!("token refresh refused: {}", e.message));
                    self.end = Some(End::TokenRejected);
                }
                (None, None) => {
                    self.refresh_in_flight = false;
                    self.end = Some(End::Protocol("refresh reply without result".into()));
                }
            },
        }
    }

    fn on_push(&mut self, push: confab_protocol::Push) {
        if let Some(d) = push.disconnect {
            let code = u16::try_from(d.code).ok();
            self.end = Some(End::Closed {
                code,
                reason: d.reason,
            });
            return;
        }
        let room = room_id(&push.channel).map(str::to_owned);
        if let Some(p) = push.publication {
            match room {
                Some(room) => {
                    let a = Arrival::of(&room, &p);
                    self.on_publication(&room, a);
                }
                None => tracing::debug!("publication outside a room ignored"),
            }
            return;
        }
        if let Some(unsub) = push.unsubscribe {
            if let Some(room) = room.filter(|r| self.rooms.contains_key(r)) {
                if unsub.code < 2500 {
                    // The server ended it for good (the user left or was removed).
                    self.close_room(&room, unsub.reason);
                } else {
                    self.subscribe(&room); // resubscribe with recovery
                }
            }
            return;
        }
        if push.join.is_some() || push.leave.is_some() || push.message.is_some() {
            return; // not used by the chat UI
        }
        self.error("protocol", "unknown push type from the server");
        self.end = Some(End::Protocol("unknown push type".into()));
    }
}
