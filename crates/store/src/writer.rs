//! The cache writer: a thread that applies history-cache and position changes in batches, so
//! the chat's event path never waits for a disk sync.

use std::sync::mpsc::{channel, Receiver, Sender};

use crate::store::{AccountStore, Change};

enum Op {
    Change(Change),
    Flush(Sender<()>),
}

/// Sends changes to the store's writer thread. Dropping every clone ends the thread once it
/// has written what it was sent.
#[derive(Clone)]
pub struct CacheWriter {
    tx: Sender<Op>,
}

impl CacheWriter {
    /// Starts the writer thread of `store`.
    pub fn start(store: AccountStore) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("confab-store".into())
            .spawn(move || run(&store, &rx))?;
        Ok(Self { tx })
    }

    /// Queues a change (written with whatever else is queued, in order).
    pub fn send(&self, change: Change) {
        if self.tx.send(Op::Change(change)).is_err() {
            tracing::warn!("the local store's writer has stopped; a cache change is dropped");
        }
    }

    /// Waits until everything sent before has been written (or failed and been logged).
    pub fn flush(&self) {
        let (done, wait) = channel();
        if self.tx.send(Op::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

fn run(store: &AccountStore, rx: &Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut flushed = Vec::new();
        for op in std::iter::once(first).chain(rx.try_iter()) {
            match op {
                Op::Change(c) => batch.push(c),
                Op::Flush(done) => flushed.push(done),
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.apply(&batch) {
                // The cache is a copy of the server's history: a lost batch only means those
                // messages are fetched again.
                tracing::warn!(error = %e, n = batch.len(), "cannot write to the history cache");
            }
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}
