//! The bounded event channel to the UI.
//!
//! Policy when the UI lags (the channel is full): **drop with a room reset**. A message or
//! message-state event that does not fit is dropped and its room is marked stale; further events
//! for a stale room are dropped too. Once the channel has room again the relay reloads the room's
//! latest page and sends one `RoomReset` (with the room's unsent outbox items), which replaces
//! the UI's view. Connection states are **coalesced**: only the latest undelivered one is kept.
//! Error events that do not fit are dropped and counted (they are also logged).
//! Memory is therefore bounded by the channel capacity plus one state and a set of room ids.

use std::collections::BTreeSet;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::events::{ConnectionState, Event};

pub(crate) struct Outlet {
    tx: mpsc::Sender<Event>,
    capacity: usize,
    /// Rooms whose events were dropped; each needs a `RoomReset`.
    pub(crate) stale_rooms: BTreeSet<String>,
    held_state: Option<ConnectionState>,
    pub(crate) dropped_errors: u64,
}

impl Outlet {
    pub(crate) fn new(tx: mpsc::Sender<Event>, capacity: usize) -> Self {
        Self {
            tx,
            capacity,
            stale_rooms: BTreeSet::new(),
            held_state: None,
            dropped_errors: 0,
        }
    }

    /// True when at least half the channel is free (time to send resets for stale rooms).
    pub(crate) fn has_room(&self) -> bool {
        self.tx.capacity() * 2 >= self.capacity
    }

    fn flush_held(&mut self) {
        if let Some(state) = self.held_state.take() {
            match self.tx.try_send(Event::ConnectionState(state)) {
                Ok(()) | Err(TrySendError::Closed(_)) => {}
                Err(TrySendError::Full(Event::ConnectionState(s))) => self.held_state = Some(s),
                Err(TrySendError::Full(_)) => {}
            }
        }
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.flush_held();
        let room = match &event {
            Event::Message(m) => Some(m.room.as_str()),
            Event::MessageState { room, .. } => Some(room.as_str()),
            _ => None,
        };
        if room.is_some_and(|r| self.stale_rooms.contains(r)) {
            return; // the pending RoomReset covers it
        }
        if self.held_state.is_some() {
            if let Event::ConnectionState(s) = event {
                self.held_state = Some(s); // keep order: newer state replaces the held one
                return;
            }
        }
        match self.tx.try_send(event) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(event)) => match event {
                Event::Message(m) => {
                    self.stale_rooms.insert(m.room);
                }
                Event::MessageState { room, .. } | Event::RoomReset { room, .. } => {
                    self.stale_rooms.insert(room);
                }
                Event::ConnectionState(s) => self.held_state = Some(s),
                Event::Error { kind, message } => {
                    self.dropped_errors += 1;
                    tracing::warn!(%kind, %message, "error event dropped: UI not reading");
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ChatEntry;

    fn msg(room: &str, offset: u64) -> Event {
        Event::Message(ChatEntry {
            room: room.into(),
            offset,
            id: uuid::Uuid::nil(),
            author: "a".into(),
            text: "t".into(),
            ts: 0,
        })
    }

    #[test]
    fn full_channel_marks_room_stale_and_coalesces_state() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut o = Outlet::new(tx, 2);
        o.emit(msg("a", 1));
        o.emit(msg("a", 2));
        o.emit(msg("a", 3));
        o.emit(Event::ConnectionState(ConnectionState::Connecting));
        o.emit(Event::ConnectionState(ConnectionState::Connected));
        assert!(
            o.stale_rooms.contains("a"),
            "a dropped message marks its room for a reset"
        );
        assert_eq!(rx.try_recv().ok(), Some(msg("a", 1)), "delivered in order");
        assert_eq!(rx.try_recv().ok(), Some(msg("a", 2)), "delivered in order");
        o.emit(msg("a", 4));
        assert_eq!(
            rx.try_recv().ok(),
            Some(Event::ConnectionState(ConnectionState::Connected)),
            "only the latest connection state is delivered once there is room"
        );
        assert!(
            rx.try_recv().is_err(),
            "messages of a stale room wait for the reset"
        );
    }
}
