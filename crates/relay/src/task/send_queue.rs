//! The outbox's messages on the wire: sent in send order (up to `max_in_flight` at once) with
//! the `messages.send` RPC, removed on the server's acknowledgement (`{offset, epoch}`), retried
//! after a temporary refusal, failed otherwise. The RPC, not a client `publish`, so the same
//! relay sends through confab-server and through a Centrifugo deployment, where only the
//! backend publishes.

use std::time::Duration;

use confab_protocol::{
    Command as WireCommand, ErrorCode, Reply, RpcRequest, SendMessage, Sent, SEND_METHOD,
};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Core, End, Pending};
use crate::error::{Error, Result};
use crate::events::{Event, SendState};
use crate::outbox::OutboxItem;

/// Delay before retrying publishes the server refused temporarily (rate limit, internal error).
const PUBLISH_RETRY: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn new_item(room: &str, text: &str) -> OutboxItem {
    OutboxItem {
        id: Uuid::new_v4(),
        room: room.to_owned(),
        text: text.to_owned(),
        ts: now_ms(),
        failed: None,
    }
}

impl Core {
    pub(super) fn track(&mut self, item: OutboxItem) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if item.failed.is_none() {
            self.queue.insert(seq, item.id);
        }
        self.items.insert(item.id, (seq, item));
    }

    pub(super) fn on_queued(&mut self, item: OutboxItem) {
        self.outlet.emit(Event::MessageState {
            id: item.id,
            room: item.room.clone(),
            state: SendState::Pending,
        });
        self.track(item);
    }

    pub(super) fn on_retry(&mut self, id: Uuid) -> Result<()> {
        let Some((seq, item)) = self.items.get_mut(&id) else {
            return Err(Error::UnknownMessage);
        };
        if item.failed.is_none() {
            return Ok(()); // already pending
        }
        if !self.outbox.mark_pending(id)? {
            return Err(Error::UnknownMessage);
        }
        item.failed = None;
        let room = item.room.clone();
        // Retried messages go to the end of the queue, like a new send.
        let new_seq = self.next_seq;
        self.next_seq += 1;
        *seq = new_seq;
        self.queue.insert(new_seq, id);
        self.outlet.emit(Event::MessageState {
            id,
            room,
            state: SendState::Pending,
        });
        Ok(())
    }

    pub(super) fn flush_outbox(&mut self) {
        if self.publish_retry_at.is_some() {
            return; // the server asked us to slow down; the timer resumes
        }
        while self.in_flight.len() < self.config.max_in_flight {
            let Some((_, id)) = self.queue.pop_first() else {
                break;
            };
            let Some((_, item)) = self.items.get(&id) else {
                continue;
            };
            let msg = SendMessage {
                room: item.room.clone(),
                id: item.id,
                text: item.text.clone(),
                ts: item.ts,
            };
            let data = match serde_json::to_value(&msg) {
                Ok(v) => v,
                Err(e) => {
                    self.error("outbox", format!("cannot encode message: {e}"));
                    continue;
                }
            };
            let cmd_id = self.push_cmd(WireCommand {
                rpc: Some(RpcRequest {
                    method: SEND_METHOD.to_owned(),
                    data: Some(data),
                }),
                ..WireCommand::default()
            });
            self.pending.insert(cmd_id, Pending::Publish(id));
            self.in_flight.insert(id);
        }
    }

    pub(super) fn on_published(&mut self, id: Uuid, reply: Reply) {
        self.in_flight.remove(&id);
        self.settle_publish(id, reply);
        if self.end.is_none() {
            self.flush_outbox(); // keep the pipeline full
        }
    }

    fn settle_publish(&mut self, id: Uuid, reply: Reply) {
        let Some((seq, item)) = self.items.get(&id).map(|(s, i)| (*s, i.clone())) else {
            return;
        };
        let sent = reply
            .rpc
            .and_then(|r| r.data)
            .and_then(|d| serde_json::from_value::<Sent>(d).ok());
        match (reply.error, sent) {
            (None, Some(res)) => {
                if let Err(e) = self.remover.remove(id) {
                    // It stays in the outbox file and is re-published (and deduplicated by the
                    // server) after a restart; nothing is lost.
                    self.error("outbox", format!("cannot remove acknowledged message: {e}"));
                }
                self.items.remove(&id);
                self.outlet.emit(Event::MessageState {
                    id,
                    room: item.room,
                    state: SendState::Sent { offset: res.offset },
                });
            }
            (Some(e), _) if e.temporary || e.code == ErrorCode::INTERNAL => {
                self.queue.insert(seq, id);
                self.publish_retry_at = Some(Instant::now() + PUBLISH_RETRY);
            }
            (Some(e), _) => {
                if let Err(err) = self.outbox.mark_failed(id, &e.message) {
                    self.error("outbox", format!("cannot mark message failed: {err}"));
                }
                if let Some((_, i)) = self.items.get_mut(&id) {
                    i.failed = Some(e.message.clone());
                }
                self.outlet.emit(Event::MessageState {
                    id,
                    room: item.room,
                    state: SendState::Failed { reason: e.message },
                });
            }
            (None, None) => {
                self.queue.insert(seq, id);
                self.end = Some(End::Protocol(
                    "messages.send reply without {offset, epoch}".into(),
                ));
            }
        }
    }
}
