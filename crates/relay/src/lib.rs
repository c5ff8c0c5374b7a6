//! Chat relay: a Centrifugo client protocol v2 (JSON) client with in-band token refresh,
//! reconnect with backoff, recovery of missed messages and a durable outbox, relaying typed
//! events to the UI.
//!
//! Start it with [`RelayHandle::start`] (a [`RelayConfig`], a [`TokenSource`]); keep the handle
//! and forward the returned event receiver to the UI. See the crate README for the behaviour.

mod batch;
pub mod config;
pub mod error;
pub mod events;
mod handle;
pub mod outbox;
mod outlet;
mod push_line;
mod task;
pub mod token;
pub mod transport;

pub use config::{RelayConfig, RelayConfigBuilder};
pub use error::{Error, Result};
pub use events::{ChatEntry, ConnectionState, Event, Members, RoomInfo, RoomPage, SendState};
pub use handle::{valid_room, RelayHandle, MAX_LISTED_ROOMS, MAX_TEXT_CHARS, ROOMS_PAGE};
pub use outbox::OutboxItem;
pub use outlet::Events;
#[doc(hidden)]
pub use task::decode_frame_for_bench;
pub use token::{BoxFuture, StaticToken, TokenError, TokenSource};
pub use transport::{Connection, Connector, Inbound, TransportError, Utf8Bytes, WsConnector};
