//! Chat relay: Centrifugo protocol client with reconnect, recovery and a durable outbox.

pub mod error;

pub use error::{Error, Result};
