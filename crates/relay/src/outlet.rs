//! The bounded event stream to the UI.
//!
//! Policy when the UI lags (the stream is full): **drop with a room reset**. A message or
//! message-state event that does not fit is dropped and its room is marked stale; further events
//! for a stale room are dropped too. Once the stream has room again the relay reloads the room's
//! latest page and sends one `RoomReset` (with the room's unsent outbox items), which replaces
//! the UI's view. Connection states are **coalesced**: only the latest undelivered one is kept.
//! Error events that do not fit are dropped and counted (they are also logged).
//! Memory is therefore bounded by the capacity (in events) plus one state and a set of room ids.
//!
//! **Read buffers.** A message read from the socket shares the frame it arrived in (see
//! [`ChatEntry`](crate::ChatEntry)), and so the read buffer the frame was cut from. While the
//! reader keeps up, those buffers are released as fast as messages are shown. Once the reader's
//! backlog is more than half the capacity, messages are queued as copies of their own
//! ([`ChatEntry::detached`](crate::ChatEntry::detached)): at most half the capacity in queued
//! messages can hold a read buffer, however long the UI lags.
//!
//! **Batches.** Events are handed over in batches: while the relay works through a burst of
//! frames, its events collect in one `Vec` that is sent once at the end of the burst (at most
//! `FRAMES_PER_TURN` frames, or a quarter of the capacity in events), so the reader is woken once
//! per burst instead of once per message.
//! Outside a burst every event is sent at once. The capacity still counts events: those sent and
//! not yet taken by [`Events::recv`] plus those in the open batch.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::batch::{Reading, Spares};
use crate::events::{ConnectionState, Event};

/// The receiving end of the relay's events: ordered, bounded (see the module docs for what
/// happens when the reader falls behind). The relay stops sending when this is dropped.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Vec<Event>>,
    current: Reading<Event>,
    queued: Arc<AtomicUsize>,
}

impl Events {
    /// The next event; `None` once the relay has stopped and every event was taken.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.take_one() {
                return Some(event);
            }
            let batch = self.rx.recv().await?;
            self.current.start(batch);
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.take_one() {
                return Some(event);
            }
            let batch = self.rx.try_recv().ok()?;
            self.current.start(batch);
        }
    }

    /// Every event that is waiting (at least one), in order; `None` once the relay has stopped
    /// and every event was taken. For a reader that handles a burst at once.
    pub async fn recv_many(&mut self) -> Option<Vec<Event>> {
        let mut batch: Vec<Event> = self.current.drain().collect();
        if batch.is_empty() {
            batch = self.rx.recv().await?;
        }
        while let Ok(more) = self.rx.try_recv() {
            batch.extend(more);
        }
        self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        Some(batch)
    }

    /// How many events are waiting to be taken.
    pub fn len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// True when no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take_one(&mut self) -> Option<Event> {
        let event = self.current.next()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(event)
    }
}

/// A new event stream with room for `capacity` events, and its sending end for the relay task.
pub(crate) fn stream(capacity: usize) -> (Outlet, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let spares = Spares::default();
    let events = Events {
        rx,
        current: Reading::new(spares.clone()),
        queued: Arc::clone(&queued),
    };
    (Outlet::new(tx, queued, spares, capacity), events)
}

pub(crate) struct Outlet {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    /// Batches the reader emptied, to fill again.
    spares: Spares<Event>,
    /// Events sent and not yet taken by the reader.
    queued: Arc<AtomicUsize>,
    /// `queued` as last read: once per batch during a burst, not once per event (the reader
    /// changes it on the other core, and reading it per event made that cache line travel
    /// between the cores with every message). Only the reader lowers `queued`, so an old
    /// reading can only overstate the backlog: the checks below stay on the safe side.
    seen_queued: usize,
    capacity: usize,
    /// The open batch (only non-empty between `begin_batch` and `end_batch`).
    batch: Vec<Event>,
    batching: bool,
    /// Rooms whose events were dropped; each needs a `RoomReset`.
    pub(crate) stale_rooms: BTreeSet<String>,
    held_state: Option<ConnectionState>,
    pub(crate) dropped_errors: u64,
}

impl Outlet {
    fn new(
        tx: mpsc::UnboundedSender<Vec<Event>>,
        queued: Arc<AtomicUsize>,
        spares: Spares<Event>,
        capacity: usize,
    ) -> Self {
        Self {
            tx,
            spares,
            queued,
            seen_queued: 0,
            capacity,
            batch: Vec::new(),
            batching: false,
            stale_rooms: BTreeSet::new(),
            held_state: None,
            dropped_errors: 0,
        }
    }

    /// Reads the reader's backlog afresh.
    fn look(&mut self) {
        self.seen_queued = self.queued.load(Ordering::Relaxed);
    }

    /// Room left for events (the reader's backlog as last read, and the open batch).
    fn free(&self) -> usize {
        self.capacity
            .saturating_sub(self.seen_queued)
            .saturating_sub(self.batch.len())
    }

    /// True once the open batch holds a quarter of the capacity: time to hand it over (the
    /// connection loop ends its turn), so one burst never fills the stream by itself.
    pub(crate) fn batch_is_large(&self) -> bool {
        self.batch.len() * 4 >= self.capacity
    }

    /// True when at least half the stream is free (time to send resets for stale rooms).
    pub(crate) fn has_room(&mut self) -> bool {
        self.look();
        self.free() * 2 >= self.capacity
    }

    /// From here until [`Outlet::end_batch`], events collect in one batch.
    pub(crate) fn begin_batch(&mut self) {
        self.batching = true;
        self.look();
        if self.batch.capacity() == 0 {
            // A burst's worth of room, in a batch the reader emptied if one came back.
            self.batch = self.spares.take(64);
        }
    }

    /// Sends the open batch and goes back to sending every event at once.
    pub(crate) fn end_batch(&mut self) {
        self.batching = false;
        self.flush();
    }

    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.seen_queued += n;
        if self.tx.send(batch).is_err() {
            // The reader is gone: nothing to deliver, nothing to count.
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Queues `event` if there is room, else hands it back.
    fn offer(&mut self, mut event: Event) -> Result<(), Event> {
        if self.tx.is_closed() {
            return Ok(()); // nobody reads: dropped, as a closed channel did
        }
        if !self.batching {
            self.look();
        }
        if self.free() == 0 {
            self.look(); // perhaps the reader took some since the burst began
            if self.free() == 0 {
                return Err(event);
            }
        }
        if let Event::Message(m) = &mut event {
            // A lagging reader: do not let its backlog hold read buffers (module docs).
            if self.seen_queued * 2 > self.capacity && m.shares_a_frame() {
                *m = m.detached();
            }
        }
        self.batch.push(event);
        if !self.batching {
            self.flush();
        }
        Ok(())
    }

    fn flush_held(&mut self) {
        if let Some(state) = self.held_state.take() {
            if let Err(Event::ConnectionState(s)) = self.offer(Event::ConnectionState(state)) {
                self.held_state = Some(s);
            }
        }
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.flush_held();
        let room = match &event {
            Event::Message(m) => Some(m.room()),
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
        if let Err(event) = self.offer(event) {
            match event {
                Event::Message(m) => {
                    self.stale_rooms.insert(m.room().to_owned());
                }
                Event::MessageState { room, .. }
                | Event::RoomReset { room, .. }
                | Event::RoomFailed { room, .. }
                | Event::RoomClosed { room, .. } => {
                    self.stale_rooms.insert(room);
                }
                Event::ConnectionState(s) => self.held_state = Some(s),
                Event::Error { kind, message } => {
                    self.dropped_errors += 1;
                    tracing::warn!(%kind, %message, "error event dropped: UI not reading");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ChatEntry;

    fn msg(room: &str, offset: u64) -> Event {
        Event::Message(ChatEntry::new(
            room,
            offset,
            uuid::Uuid::nil(),
            "a",
            "",
            "t",
            0,
        ))
    }

    #[test]
    fn full_channel_marks_room_stale_and_coalesces_state() {
        let (mut o, mut rx) = stream(2);
        o.emit(msg("a", 1));
        o.emit(msg("a", 2));
        o.emit(msg("a", 3));
        o.emit(Event::ConnectionState(ConnectionState::Connecting));
        o.emit(Event::ConnectionState(ConnectionState::Connected));
        assert!(
            o.stale_rooms.contains("a"),
            "a dropped message marks its room for a reset"
        );
        assert_eq!(rx.try_recv(), Some(msg("a", 1)), "delivered in order");
        assert_eq!(rx.try_recv(), Some(msg("a", 2)), "delivered in order");
        o.emit(msg("a", 4));
        assert_eq!(
            rx.try_recv(),
            Some(Event::ConnectionState(ConnectionState::Connected)),
            "only the latest connection state is delivered once there is room"
        );
        assert!(
            rx.try_recv().is_none(),
            "messages of a stale room wait for the reset"
        );
    }

    #[test]
    fn a_lagging_reader_gets_copies_that_hold_no_read_buffer() {
        let frame = crate::Utf8Bytes::from("r a t");
        let f = frame.as_str();
        let read = |offset| {
            Event::Message(ChatEntry::in_frame(
                &frame,
                &f[0..1],
                offset,
                uuid::Uuid::nil(),
                &f[2..3],
                "",
                &f[4..5],
                0,
            ))
        };
        let (mut o, mut rx) = stream(8);
        for offset in 1..=7 {
            o.emit(read(offset));
        }
        let mut shares = Vec::new();
        while let Some(Event::Message(m)) = rx.try_recv() {
            assert_eq!((m.room(), m.author(), m.text()), ("r", "a", "t"));
            shares.push(m.shares_a_frame());
        }
        assert_eq!(
            shares,
            [true, true, true, true, true, false, false],
            "once more than half the capacity waits, messages are queued as their own copies"
        );
        o.emit(read(8));
        assert_eq!(
            rx.try_recv()
                .map(|e| matches!(e, Event::Message(m) if m.shares_a_frame())),
            Some(true),
            "a reader that caught up gets shared entries again"
        );
    }

    #[tokio::test]
    async fn a_burst_arrives_as_one_batch_and_counts_against_the_capacity() {
        let (mut o, mut rx) = stream(3);
        o.begin_batch();
        o.emit(msg("a", 1));
        o.emit(msg("a", 2));
        assert!(
            rx.try_recv().is_none(),
            "nothing is handed over before the burst ends"
        );
        o.emit(msg("b", 1));
        o.emit(msg("b", 2));
        assert!(
            o.stale_rooms.contains("b") && !o.stale_rooms.contains("a"),
            "the open batch counts against the capacity: the fourth event is dropped"
        );
        o.end_batch();
        assert_eq!(
            rx.recv_many().await,
            Some(vec![msg("a", 1), msg("a", 2), msg("b", 1)]),
            "the burst arrives whole and in order"
        );
        assert!(o.has_room(), "taken events free their room");
        o.emit(msg("a", 3));
        assert_eq!(
            rx.recv().await,
            Some(msg("a", 3)),
            "outside a burst an event is handed over at once"
        );
        drop(o);
        assert_eq!(rx.recv().await, None, "the stream ends with the relay");
    }
}
