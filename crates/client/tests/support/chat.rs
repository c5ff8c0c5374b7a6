//! The chat channel as a test reads it: every event the UI got, as the JSON it would read.

use std::sync::Mutex;

use confab_client::chat::ChatEvent;
use serde_json::Value;
use tokio::sync::watch;

use super::app::{App, WAIT};

/// Every chat event the UI got from now on, as JSON.
pub fn record_chat(app: &App) -> watch::Receiver<Vec<Value>> {
    let (tx, rx) = watch::channel(Vec::new());
    let tx = Mutex::new(tx);
    let core = app.core.as_ref().expect("started with the chat hub");
    core.chat.subscribe(Box::new(move |e: ChatEvent| {
        let v = serde_json::to_value(&e).expect("chat events serialize");
        if let Ok(tx) = tx.lock() {
            tx.send_modify(|all| all.push(v));
        }
        true
    }));
    rx
}

/// Waits for an event matching `want` among those after the first `since`.
pub async fn wait_json(
    what: &str,
    rx: &mut watch::Receiver<Vec<Value>>,
    since: usize,
    want: impl Fn(&Value) -> bool,
) {
    let found = tokio::time::timeout(WAIT, rx.wait_for(|all| all.iter().skip(since).any(&want)))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        found,
        "timed out waiting for {what}; chat events: {:?}",
        rx.borrow()
    );
}

/// The `message` events with `text`.
pub fn messages_with(events: &[Value], text: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "message" && e["text"] == text)
        .cloned()
        .collect()
}
