//! Batches that go back to be filled again. The relay hands frames (read-ahead → connection
//! task) and events (connection task → UI reader) over in batches of up to about a thousand;
//! allocating a fresh `Vec` for each one, filled on one core and freed on the other, was a
//! steady share of the relay's time in glibc's allocator. The reading side now hands each
//! emptied batch back, and the writing side fills it again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Emptied batches kept for the writer: at most this many (one being read, one being filled
/// and one waiting is the usual steady state).
const KEPT: usize = 2;
/// Batches with room for fewer items are not kept (single events outside a burst go in small
/// `Vec`s, which would only have to grow again).
const MIN_KEPT_CAPACITY: usize = 64;

/// Emptied batches, shared by a writer and a reader.
#[derive(Debug)]
pub(crate) struct Spares<T>(Arc<Mutex<Vec<Vec<T>>>>);

impl<T> Clone for Spares<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Spares<T> {
    /// An emptied batch to fill, if one came back; else a new one with room for `capacity`.
    pub(crate) fn take(&self, capacity: usize) -> Vec<T> {
        // A poisoned lock only means a panic elsewhere mid-push: the list is still a list.
        let spare = match self.0.lock() {
            Ok(mut spares) => spares.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        spare.unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Hands an emptied batch back (dropped if enough are kept already, or if it never had room).
    fn give(&self, mut batch: Vec<T>) {
        batch.clear();
        if batch.capacity() < MIN_KEPT_CAPACITY {
            return;
        }
        let mut spares = match self.0.lock() {
            Ok(spares) => spares,
            Err(poisoned) => poisoned.into_inner(),
        };
        if spares.len() < KEPT {
            spares.push(batch);
        }
    }
}

/// The reader's side: the batch being read, item by item, in order.
#[derive(Debug)]
pub(crate) struct Reading<T> {
    items: VecDeque<T>,
    spares: Spares<T>,
}

impl<T> Reading<T> {
    pub(crate) fn new(spares: Spares<T>) -> Self {
        Self {
            items: VecDeque::new(),
            spares,
        }
    }

    /// The next item of the current batch.
    pub(crate) fn next(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Everything left in the current batch, in order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }

    /// Starts reading `batch`; the one before it (read to the end) goes back to the writer.
    pub(crate) fn start(&mut self, batch: Vec<T>) {
        let done = std::mem::replace(&mut self.items, VecDeque::from(batch));
        // Vec ↔ VecDeque conversions keep the allocation (no copy for an empty deque).
        self.spares.give(Vec::from(done));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_batch_comes_back_to_be_filled_again() {
        let spares = Spares::default();
        let mut reading = Reading::new(spares.clone());
        let mut batch = spares.take(MIN_KEPT_CAPACITY);
        batch.extend([1, 2, 3]);
        let ptr = batch.as_ptr();
        reading.start(batch);
        assert_eq!(
            (
                reading.next(),
                reading.next(),
                reading.next(),
                reading.next()
            ),
            (Some(1), Some(2), Some(3), None),
            "items come out in order"
        );
        reading.start(spares.take(MIN_KEPT_CAPACITY)); // a fresh one: the pool was empty
        let again = spares.take(MIN_KEPT_CAPACITY);
        assert_eq!(
            (
                again.as_ptr(),
                again.len(),
                again.capacity() >= MIN_KEPT_CAPACITY
            ),
            (ptr, 0, true),
            "the read batch's allocation is handed out again, emptied"
        );
        let kept = || spares.0.lock().map(|s| s.len()).unwrap_or(usize::MAX);
        reading.start(vec![7]); // hands back the fresh one from above
        let before = kept();
        reading.next();
        reading.start(Vec::new());
        assert_eq!(kept(), before, "a small batch is not kept");
        for _ in 0..5 {
            reading.start(Vec::with_capacity(MIN_KEPT_CAPACITY));
        }
        assert_eq!(kept(), KEPT, "only a few are kept");
    }
}
