//! The cloneable handle the app holds.

use std::sync::Arc;
use std::time::Duration;

use confab_protocol::{room_channel, room_id};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::config::RelayConfig;
use crate::error::{Error, Result};
use crate::events::Members;
use crate::events::{RoomInfo, RoomPage};
use crate::outbox::{Outbox, OutboxItem};
use crate::outlet::{self, Events};
use crate::task::{new_item, Cmd, Core};
use crate::token::TokenSource;
use crate::transport::{Connector, WsConnector};

/// Longest message text in characters (the protocol's limit, which the server enforces).
pub const MAX_TEXT_CHARS: usize = confab_protocol::MAX_TEXT_CHARS;

/// A handle to the relay's background task. Cheap to clone; the task stops when every handle
/// is dropped or [`RelayHandle::shutdown`] is called.
#[derive(Clone)]
pub struct RelayHandle {
    tx: mpsc::Sender<Cmd>,
    outbox: Outbox,
    request_timeout: Duration,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle").finish_non_exhaustive()
    }
}

/// Checks a room id (1–64 of `[A-Za-z0-9_-]`, the protocol's rule) before anything is sent.
pub fn valid_room(room: &str) -> Result<()> {
    room_id(&room_channel(room))
        .map(|_| ())
        .ok_or(Error::InvalidRoom)
}

impl RelayHandle {
    /// Starts the relay over WebSocket (`ws://`, or `wss://` trusting the default roots: see
    /// [`WsConnector`]). Must be called inside a tokio runtime. Returns the
    /// handle and the (bounded) event stream for the UI.
    pub fn start(config: RelayConfig, source: Arc<dyn TokenSource>) -> Result<(Self, Events)> {
        Self::start_with(config, source, Arc::new(WsConnector::default()))
    }

    /// Starts the relay with a custom transport.
    pub fn start_with(
        config: RelayConfig,
        source: Arc<dyn TokenSource>,
        connector: Arc<dyn Connector>,
    ) -> Result<(Self, Events)> {
        let outbox = Outbox::open_keyed(&config.outbox_path, config.outbox_key.as_ref())?;
        let (outlet, events) = outlet::stream(config.event_capacity);
        let (tx, rx) = mpsc::channel(256);
        let request_timeout = config.request_timeout;
        let core = Core::new(config, source, connector, outbox.clone(), outlet)?;
        tokio::spawn(core.run(rx));
        Ok((
            Self {
                tx,
                outbox,
                request_timeout,
            },
            events,
        ))
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Cmd) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Stopped)?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Stopped),
            Err(_) => Err(Error::Timeout),
        }
    }

    async fn rpc(&self, method: &'static str, data: Value) -> Result<Value> {
        self.request(|reply| Cmd::Rpc {
            method,
            data,
            reply,
        })
        .await
    }

    /// Every room, with whether the user is a member: `rooms.list` page by page (each page its
    /// own request of [`ROOMS_PAGE`] rooms, so no reply grows with the number of rooms), up to
    /// [`MAX_LISTED_ROOMS`].
    pub async fn list_rooms(&self) -> Result<Vec<RoomInfo>> {
        let mut all: Vec<RoomInfo> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut args = json!({ "limit": ROOMS_PAGE });
            if let Some(a) = &after {
                args["after"] = json!(a);
            }
            let v = self.rpc("rooms.list", args).await?;
            let rooms = v.get("rooms").cloned().unwrap_or(Value::Null);
            let page: Vec<RoomInfo> =
                serde_json::from_value(rooms).map_err(|e| Error::Protocol(e.to_string()))?;
            all.extend(page);
            let next = match v.get("next") {
                None | Some(Value::Null) => return Ok(all),
                Some(Value::String(n)) => n.clone(),
                Some(_) => return Err(Error::Protocol("rooms.list: next is not a string".into())),
            };
            if after.as_deref().is_some_and(|a| next.as_str() <= a) {
                return Err(Error::Protocol(
                    "rooms.list: the next page does not move forward".into(),
                ));
            }
            if all.len() >= MAX_LISTED_ROOMS {
                tracing::warn!(rooms = all.len(), "room list cut at the client's limit");
                return Ok(all);
            }
            after = Some(next);
        }
    }

    /// Creates a room (the user becomes its member and owner). Without `id` the server picks
    /// one. A private room is seen only by its members and the users they invite.
    pub async fn create_room(
        &self,
        name: &str,
        id: Option<&str>,
        private: bool,
    ) -> Result<RoomInfo> {
        if let Some(id) = id {
            valid_room(id)?;
        }
        let mut data = json!({ "name": name, "private": private });
        if let Some(id) = id {
            data["id"] = json!(id);
        }
        let v = self.rpc("rooms.create", data).await?;
        room_from(v)
    }

    /// Joins an existing room.
    pub async fn join_room(&self, id: &str) -> Result<RoomInfo> {
        valid_room(id)?;
        let v = self.rpc("rooms.join", json!({ "id": id })).await?;
        room_from(v)
    }

    /// Invites `user` (their user id) to `room`; members only.
    pub async fn invite(&self, room: &str, user: &str) -> Result<()> {
        valid_room(room)?;
        self.rpc("rooms.invite", json!({ "id": room, "user": user }))
            .await
            .map(|_| ())
    }

    /// Leaves `room`: the relay stops following it (`RoomClosed` follows from the server).
    pub async fn leave_room(&self, room: &str) -> Result<()> {
        valid_room(room)?;
        self.rpc("rooms.leave", json!({ "id": room })).await?;
        let _ = self
            .tx
            .send(Cmd::CloseRoom {
                room: room.to_owned(),
                reason: "left the room".to_owned(),
            })
            .await;
        Ok(())
    }

    /// Removes `user` from `room`; the room's owner only.
    pub async fn remove_member(&self, room: &str, user: &str) -> Result<()> {
        valid_room(room)?;
        self.rpc("rooms.remove", json!({ "id": room, "user": user }))
            .await
            .map(|_| ())
    }

    /// The members of `room` and its owner (members only), page by page up to
    /// [`MAX_LISTED_ROOMS`] members.
    pub async fn members(&self, room: &str) -> Result<Members> {
        valid_room(room)?;
        let mut all = Members {
            members: Vec::new(),
            owner: String::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let mut args = json!({ "id": room, "limit": ROOMS_PAGE });
            if let Some(a) = &after {
                args["after"] = json!(a);
            }
            let v = self.rpc("rooms.members", args).await?;
            let page: Members =
                serde_json::from_value(v.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
            all.owner = page.owner;
            all.members.extend(page.members);
            match v.get("next").and_then(Value::as_str) {
                Some(n)
                    if after.as_deref().is_none_or(|a| n > a)
                        && all.members.len() < MAX_LISTED_ROOMS =>
                {
                    after = Some(n.to_owned());
                }
                _ => return Ok(all),
            }
        }
    }

    /// Opens a room: subscribes (kept across reconnects) and returns its latest page. The same
    /// page is also sent as a `RoomReset` event, in order with the room's messages; after it the
    /// room's `Message` events continue exactly where the page ends.
    pub async fn open_room(&self, room: &str) -> Result<RoomPage> {
        valid_room(room)?;
        let room = room.to_owned();
        self.request(|reply| Cmd::OpenRoom { room, reply }).await
    }

    /// Follows `room` without loading a page: subscribed now (or at the next connect) and kept
    /// across reconnects. With `from`, the stream position (epoch, offset) an earlier run
    /// reached, the messages published since arrive as `Message` events (the server's
    /// recovery); without it, or when the server cannot recover that far, the room's latest
    /// page arrives as a `RoomReset`. For a room already followed this does nothing.
    pub async fn follow_room(&self, room: &str, from: Option<(String, u64)>) -> Result<()> {
        valid_room(room)?;
        self.tx
            .send(Cmd::FollowRoom {
                room: room.to_owned(),
                from,
            })
            .await
            .map_err(|_| Error::Stopped)
    }

    /// The page of messages before `before_offset` (the oldest offset the UI has) in an open room.
    pub async fn load_older(&self, room: &str, before_offset: u64) -> Result<RoomPage> {
        valid_room(room)?;
        let room = room.to_owned();
        self.request(|reply| Cmd::LoadOlder {
            room,
            before: before_offset,
            reply,
        })
        .await
    }

    /// Sends a message: it is written to the outbox (durably) before this returns, then
    /// published; its state arrives as `MessageState` events. Returns the client message id.
    pub async fn send(&self, room: &str, text: &str) -> Result<Uuid> {
        valid_room(room)?;
        confab_protocol::check_text(text)?;
        let item = new_item(room, text);
        let outbox = self.outbox.clone();
        let stored = item.clone();
        tokio::task::spawn_blocking(move || outbox.insert(&stored))
            .await
            .map_err(|e| Error::Join(e.to_string()))??;
        let id = item.id;
        self.tx
            .send(Cmd::Queued(item))
            .await
            .map_err(|_| Error::Stopped)?;
        Ok(id)
    }

    /// Publishes a failed message again (same id).
    pub async fn retry(&self, id: Uuid) -> Result<()> {
        self.request(|reply| Cmd::Retry { id, reply }).await
    }

    /// Messages still in the outbox, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxItem>> {
        let outbox = self.outbox.clone();
        tokio::task::spawn_blocking(move || outbox.list())
            .await
            .map_err(|e| Error::Join(e.to_string()))?
    }

    /// The network came back or the device resumed: skip the pending reconnect delay.
    pub fn notify_network_up(&self) {
        let _ = self.tx.try_send(Cmd::NetworkUp);
    }

    /// Reconnect after a terminal disconnect or sign-out (e.g. after signing in again).
    pub fn reconnect(&self) {
        let _ = self.tx.try_send(Cmd::Reconnect);
    }

    /// Closes the connection and stops the task (the outbox keeps unsent messages).
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown(done)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Rooms asked for in each `rooms.list` page (the server's maximum).
pub const ROOMS_PAGE: usize = 200;

/// Rooms [`RelayHandle::list_rooms`] collects at most (the server's default room cap).
pub const MAX_LISTED_ROOMS: usize = 10_000;

fn room_from(v: Value) -> Result<RoomInfo> {
    let room = v.get("room").cloned().unwrap_or(Value::Null);
    let mut info: RoomInfo =
        serde_json::from_value(room).map_err(|e| Error::Protocol(e.to_string()))?;
    info.member = true;
    info.invited = false;
    Ok(info)
}
