//! Chat: the hub that runs the relay for the signed-in session and relays its events to the
//! UI ([`hub`]), the events it sends ([`events`]) and the room list with unread counts
//! ([`rooms`], pure logic).

pub mod events;
pub mod hub;
pub mod rooms;

pub use events::{ChatEvent, MembersView, MessageView, OlderPage, OpenedRoom};
pub use hub::{safe_link, should_notify, ChatHub};
pub use rooms::{RoomBook, RoomView};
