//! The chat hub: runs the relay (`confab-relay`) for the signed-in session and relays its
//! events to the UI's subscribers (in order), keeping the room list with unread counts, drafts,
//! read positions and the last open room. The contract with the UI is `docs/ui-contract.md`.
//! Nothing secret crosses it: the relay gets its access tokens straight from the session's
//! token manager, in Rust.
//!
//! Per account (a directory under `chat/` in the data dir named by `AccountId::dir_name`, a
//! UUIDv5 of issuer and subject) there is one encrypted store (confab-store, its key in the
//! account's vault entry): the relay's outbox, drafts, last room, read positions, each room's
//! stream position and a history cache. Keeping them per account means a message one user
//! queued is never published under another user's identity, and signing back in as the same
//! user delivers what was still queued.
//!
//! **Instant start.** The room list and the last room come from the store before any network
//! request; a room with a saved position is followed from it (the server's recovery brings what
//! was missed as messages, no page) and opened from the cache. Every message and reset is
//! written to the cache by the store's writer thread, with the room's position.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confab_relay::{ChatEntry, ConnectionState, Event, RelayConfig, RelayHandle};
use confab_store::{AccountStore, CacheWriter, CachedMessage, Change, Position, StoreOptions};
use confab_vault::AccountId;
use serde_json::json;
use tokio::runtime::Handle;
use uuid::Uuid;

use super::events::{ChatEvent, MembersView, MessageView, OlderPage, OpenedRoom};
use super::rooms::{RoomBook, RoomView};
use crate::accounts::{Generation, Registry};
use crate::adapters::{MintedTokens, SessionTokens};
use crate::error::{Code, Error, Result};
use crate::platform::Platform;
use crate::prefs::Prefs;
use crate::signin::{AccountVault, SessionObserver};
use crate::Subscriber;

/// Directory in the data dir holding one sub-directory per account.
pub const CHAT_DIR: &str = "chat";
/// Messages of a room shown from the cache when it opens (and per older page from it).
const CACHE_PAGE: usize = 50;
/// The store's key for the last room list the server gave (JSON), shown at the next start.
const ROOM_LIST_KEY: &str = "room_list";
/// App-wide settings store in the data dir (notifications, window size).
pub const SETTINGS_FILE: &str = "settings.json";
/// Longest room name (the server's limit).
pub const MAX_ROOM_NAME_CHARS: usize = confab_protocol::MAX_ROOM_NAME_CHARS;
/// Longest notification body in characters.
const NOTIFICATION_BODY_CHARS: usize = 180;

/// The running chat of one account: what its tasks and the commands hold on to.
#[derive(Clone)]
struct Live {
    account: AccountId,
    /// This run of the account's chat; tasks of an ended or replaced run stop.
    gen: Generation,
    me: String,
    relay: RelayHandle,
    /// The account's encrypted store, and its writer thread for the history cache.
    store: AccountStore,
    cache: CacheWriter,
    /// The chat token tier, when the deployment mints chat tokens (given up at sign-out).
    tier: Option<Arc<MintedTokens>>,
}

/// One account's chat: its relay and stores, its room book and connection state.
struct AccountChat {
    /// The run of the account's session (the flow's generation) this chat belongs to.
    session_run: Generation,
    live: Live,
    rooms: RoomBook,
    /// Rooms the relay has been asked to subscribe in this run.
    opened: std::collections::BTreeSet<String>,
    /// Each room's stream position (epoch, offset) as far as the cache has it.
    positions: std::collections::BTreeMap<String, (String, u64)>,
    connection: ConnectionState,
}

struct Inner {
    /// Each signed-in account's chat; the active account's is what the UI shows and what the
    /// commands act on. Other accounts keep running (messages, unread counts, notifications).
    accounts: Registry<AccountChat>,
}

/// The app's chat state, shared by every command of the chat channel.
pub struct ChatHub {
    platform: Arc<dyn Platform>,
    rt: Handle,
    data_dir: PathBuf,
    chat_url: std::result::Result<String, String>,
    /// Where chat tokens come from, when the deployment mints them (else the provider's token),
    /// and the shape of the endpoint's answers.
    chat_token_endpoint: Option<(url::Url, confab_config::ChatTokenShape)>,
    settings: Option<Arc<Prefs>>,
    focused: AtomicBool,
    window_save_pending: AtomicBool,
    /// Messages kept per room in each account's history cache (the configuration's
    /// `history_cache_per_room`).
    cache_per_room: usize,
    inner: Mutex<Inner>,
    /// Each ended account's chat while it stops (its relay shutting down), until done.
    stopping: Mutex<std::collections::BTreeMap<AccountId, tokio::task::JoinHandle<()>>>,
    /// Held while a relay event is handled and while a room is shown from the cache: a room
    /// opened from the cache holds every message handled before, and no later one is missed.
    view_order: Mutex<()>,
    subscribers: Mutex<Vec<Subscriber<ChatEvent>>>,
}

impl ChatHub {
    /// A hub keeping its files under `data_dir`; `chat_url` is the configured server (or the
    /// configuration error), `chat_token_endpoint` the backend that mints chat tokens and the
    /// shape of its answers (if the deployment has one); each account's history cache keeps
    /// `cache_per_room` messages per room; background tasks run on `rt`.
    pub fn new(
        platform: Arc<dyn Platform>,
        rt: Handle,
        data_dir: PathBuf,
        chat_url: std::result::Result<String, String>,
        chat_token_endpoint: Option<(url::Url, confab_config::ChatTokenShape)>,
        cache_per_room: usize,
    ) -> Arc<Self> {
        let settings = match Prefs::open(platform.as_ref(), data_dir.join(SETTINGS_FILE)) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::warn!("settings unavailable: {e}");
                None
            }
        };
        Arc::new(Self {
            platform,
            rt,
            data_dir,
            chat_url,
            chat_token_endpoint,
            settings,
            focused: AtomicBool::new(true),
            window_save_pending: AtomicBool::new(false),
            cache_per_room: cache_per_room.max(1),
            inner: Mutex::new(Inner {
                accounts: Registry::default(),
            }),
            view_order: Mutex::new(()),
            stopping: Mutex::new(std::collections::BTreeMap::new()),
            subscribers: Mutex::new(Vec::new()),
        })
    }

    fn st(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The active account's chat, for a command.
    fn live(&self) -> Result<Live> {
        self.st()
            .accounts
            .active_value()
            .map(|c| c.live.clone())
            .ok_or(Error::NotSignedIn)
    }

    /// Whether `live`'s run is still current (its account signed in, not replaced).
    fn is_current(&self, live: &Live) -> bool {
        self.st().accounts.is_current(&live.account, live.gen)
    }

    /// Whether `live` is the run the UI shows.
    fn is_shown(&self, live: &Live) -> bool {
        let st = self.st();
        st.accounts.active() == Some(&live.account)
            && st.accounts.is_current(&live.account, live.gen)
    }

    /// Runs `f` on `live`'s account chat if its run is still current.
    fn with_chat<R>(&self, live: &Live, f: impl FnOnce(&mut AccountChat) -> R) -> Option<R> {
        self.st()
            .accounts
            .current_mut(&live.account, live.gen)
            .map(f)
    }

    fn emit(&self, event: ChatEvent) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| s(event.clone()));
    }

    /// The active account's room list (empty when signed out).
    fn room_views(&self) -> Vec<RoomView> {
        self.st()
            .accounts
            .active_value()
            .map(|c| c.rooms.views())
            .unwrap_or_default()
    }

    fn emit_rooms(&self) {
        let rooms = self.room_views();
        self.emit(ChatEvent::Rooms { rooms });
    }

    /// Emits the room list if `live` is the run the UI shows.
    fn emit_rooms_of(&self, live: &Live) {
        if self.is_shown(live) {
            self.emit_rooms();
        }
    }

    fn notifications_enabled(&self) -> bool {
        self.settings
            .as_ref()
            .and_then(|s| s.get("notifications"))
            .and_then(|v| v.as_bool())
            .unwrap_or(true)
    }

    fn session_event(&self, live: &Live) -> ChatEvent {
        ChatEvent::Session {
            me: live.me.clone(),
            last_room: live.store.last_room().unwrap_or_else(|e| {
                tracing::warn!("cannot read the last room: {e}");
                None
            }),
            notifications: self.notifications_enabled(),
        }
    }

    /// Adds a UI subscriber and sends it the current state.
    ///
    /// The UI subscribes when the first sign-in completes, at the moment the session starts, so
    /// the state is read and sent while the subscriber list is locked: an event emitted at the
    /// same time reaches the new channel after this state, never before it and never not at
    /// all. (Lock order: subscribers, then state; nothing emits while holding the state.)
    pub fn subscribe(&self, subscriber: Subscriber<ChatEvent>) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (live, rooms, connection) = {
            let st = self.st();
            match st.accounts.active_value() {
                Some(c) => (Some(c.live.clone()), c.rooms.views(), c.connection.clone()),
                None => (None, Vec::new(), ConnectionState::SignedOut),
            }
        };
        let mut first = Vec::new();
        if let Some(live) = &live {
            first.push(self.session_event(live));
        }
        first.push(ChatEvent::Rooms { rooms });
        first.push(ChatEvent::ConnectionState(connection));
        if first.into_iter().all(&subscriber) {
            subscribers.push(subscriber);
        }
    }

    /// The window gained or lost focus. Focus back is also a hint that the device may have
    /// resumed: the relay skips its pending reconnect delay.
    pub fn set_focused(&self, focused: bool) {
        self.focused.store(focused, Ordering::Relaxed);
        if focused {
            for (_, chat) in self.st().accounts.iter() {
                chat.live.relay.notify_network_up();
            }
        }
    }

    /// The saved window size (logical pixels), if any.
    pub fn saved_window_size(&self) -> Option<(f64, f64)> {
        let s = self.settings.as_ref()?;
        let w = s.get_in("window", "width")?.as_f64()?;
        let h = s.get_in("window", "height")?.as_f64()?;
        (w >= 200.0 && h >= 200.0 && w <= 20_000.0 && h <= 20_000.0).then_some((w, h))
    }

    /// The window was resized to `width`×`height` logical pixels: saved half a second after
    /// the last change.
    pub fn remember_window_size(self: &Arc<Self>, width: f64, height: f64) {
        let Some(settings) = self.settings.clone() else {
            return;
        };
        settings.set("window", json!({ "width": width, "height": height }));
        if self.window_save_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        self.rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            this.window_save_pending.store(false, Ordering::Release);
            if let Err(e) = persist(settings).await {
                tracing::warn!("could not save the window size: {e}");
            }
        });
    }

    fn account_dir(&self, user: &confab_session::User) -> PathBuf {
        self.data_dir
            .join(CHAT_DIR)
            .join(user.account_id().dir_name())
    }

    fn start(
        self: &Arc<Self>,
        account: &AccountId,
        session_run: Generation,
        manager: &confab_session::TokenManager,
        user: &confab_session::User,
        vault: AccountVault,
    ) -> Result<()> {
        let url = self.chat_url.clone().map_err(Error::Config)?;
        let key = vault.store_key.map_err(Error::Storage)?;
        let dir = self.account_dir(user);
        confab_store::owner_only_dir(&self.data_dir.join(CHAT_DIR))
            .map_err(|e| Error::Storage(e.to_string()))?;
        let options = StoreOptions {
            cache_per_room: self.cache_per_room,
        };
        let opened =
            AccountStore::open(&dir, &key, options).map_err(|e| Error::Storage(e.to_string()))?;
        let store = opened.store;
        let cache = CacheWriter::start(store.clone()).map_err(|e| Error::Storage(e.to_string()))?;
        let positions: std::collections::BTreeMap<String, (String, u64)> = store
            .positions()
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read the rooms' stream positions: {e}");
                Vec::new()
            })
            .into_iter()
            .map(|(room, p)| (room, (p.epoch, p.offset)))
            .collect();
        let cached_list: Vec<confab_relay::RoomInfo> = store
            .state(ROOM_LIST_KEY)
            .ok()
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let mut rooms = RoomBook::default();
        rooms.set_list(cached_list, |id| store.read_position(id).unwrap_or(0));
        let config = RelayConfig::builder(url, store.path())
            .outbox_key(key.sqlcipher_key())
            .client_name("confab-app")
            .build();
        // The relay and its token source spawn onto the current runtime: enter ours, as the
        // session may start from a thread outside it.
        let _rt = self.rt.enter();
        let session: Arc<dyn confab_relay::TokenSource> =
            Arc::new(SessionTokens::new(manager.clone()));
        let tier = match &self.chat_token_endpoint {
            Some((endpoint, shape)) => Some(Arc::new(
                MintedTokens::with_shape(
                    session.clone(),
                    endpoint.clone(),
                    shape.clone(),
                    Some(vault.chat_slot),
                )
                .map_err(|e| Error::Config(e.to_string()))?,
            )),
            None => None,
        };
        let source: Arc<dyn confab_relay::TokenSource> = match &tier {
            Some(tier) => tier.clone(),
            None => session,
        };
        let (relay, events) = RelayHandle::start(config, source)?;
        let live = {
            let mut st = self.st();
            // The generation is known once the entry exists: install, then stamp it.
            let (gen, old) = st.accounts.begin(
                account.clone(),
                AccountChat {
                    session_run,
                    live: Live {
                        account: account.clone(),
                        gen: Generation::default(),
                        me: user.subject.clone(),
                        relay,
                        store,
                        cache,
                        tier,
                    },
                    rooms,
                    opened: Default::default(),
                    positions,
                    connection: ConnectionState::Connecting,
                },
            );
            if let Some(old) = old {
                self.rt
                    .spawn(async move { old.live.relay.shutdown().await });
            }
            let chat = st.accounts.current_mut(account, gen);
            let Some(chat) = chat else {
                return Ok(()); // cannot happen: just begun under this lock
            };
            chat.live.gen = gen;
            chat.live.clone()
        };
        tracing::info!(
            migrated_outbox = opened.migrated.outbox_messages,
            migrated_ui_state = opened.migrated.ui_state,
            "chat started"
        );
        self.emit(self.session_event(&live));
        self.emit_rooms_of(&live);
        self.emit(ChatEvent::ConnectionState(ConnectionState::Connecting));
        if let Some(aside) = opened.set_aside {
            self.emit(ChatEvent::Error {
                code: Code::Storage,
                message: format!(
                    "This account's local data could not be read and was kept aside ({}); \
                     Confab starts with a fresh copy.",
                    aside.display()
                ),
            });
        }
        let this = Arc::clone(self);
        let pumped = live.clone();
        self.rt
            .spawn(async move { this.pump(pumped, events).await });
        let this = Arc::clone(self);
        self.rt.spawn(async move { this.bootstrap(live).await });
        Ok(())
    }

    /// Forwards relay events to the UI in order, keeping the unread counts.
    async fn pump(self: Arc<Self>, live: Live, mut events: confab_relay::Events) {
        while let Some(event) = events.recv().await {
            let at_us = unix_micros(SystemTime::now());
            if !self.is_current(&live) {
                break;
            }
            let _order = self
                .view_order
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.on_relay_event(&live, event, at_us);
        }
    }

    /// One event of `live`'s relay: its account's room book is kept whether or not the UI
    /// shows that account; the UI hears of it only if it does.
    fn on_relay_event(&self, live: &Live, event: Event, at_us: u64) {
        let shown = self.is_shown(live);
        match event {
            Event::Message(entry) => {
                let own = live.me == entry.author();
                let Some((changed, room_name, position)) = self.with_chat(live, |c| {
                    let changed = c.rooms.on_message(entry.room(), entry.offset, own);
                    let position = c.positions.get_mut(entry.room()).map(|p| {
                        p.1 = p.1.max(entry.offset);
                        p.clone()
                    });
                    (
                        changed,
                        c.rooms.name(entry.room()).map(str::to_owned),
                        position,
                    )
                }) else {
                    return;
                };
                live.cache.send(Change::Append {
                    room: entry.room().to_owned(),
                    messages: vec![cached(&entry)],
                });
                if let Some((epoch, offset)) = position {
                    live.cache.send(Change::Position {
                        room: entry.room().to_owned(),
                        position: Position { epoch, offset },
                    });
                }
                if should_notify(
                    own,
                    self.focused.load(Ordering::Relaxed),
                    self.notifications_enabled(),
                ) {
                    let room = room_name.unwrap_or_else(|| entry.room().to_owned());
                    let who = if entry.name().is_empty() {
                        entry.author()
                    } else {
                        entry.name()
                    };
                    self.show_notification(&format!("{who} in {room}"), entry.text());
                }
                if shown {
                    self.emit(ChatEvent::Message(MessageView { entry, own, at_us }));
                    if changed {
                        self.emit_rooms();
                    }
                }
            }
            Event::RoomReset {
                room,
                messages,
                has_older,
                unsent,
                epoch,
                offset,
            } => {
                // The page continues the cached history when it is the same stream and reaches
                // back to what the cache has; otherwise it replaces it.
                let page: Vec<CachedMessage> = messages.iter().map(cached).collect();
                let continues = self
                    .with_chat(live, |c| {
                        let before = c.positions.insert(room.clone(), (epoch.clone(), offset));
                        before.is_some_and(|(e, o)| {
                            e == epoch && page.first().is_none_or(|m| m.offset <= o + 1)
                        })
                    })
                    .unwrap_or(false);
                live.cache.send(if continues {
                    Change::Append {
                        room: room.clone(),
                        messages: page,
                    }
                } else {
                    Change::Replace {
                        room: room.clone(),
                        messages: page,
                    }
                });
                live.cache.send(Change::Position {
                    room: room.clone(),
                    position: Position { epoch, offset },
                });
                let messages = views(messages, Some(&live.me), at_us);
                let page: Vec<(u64, bool)> =
                    messages.iter().map(|m| (m.entry.offset, m.own)).collect();
                let changed = self
                    .with_chat(live, |c| c.rooms.on_reset(&room, &page, has_older))
                    .unwrap_or(false);
                if shown {
                    self.emit(ChatEvent::RoomReset {
                        room,
                        messages,
                        has_older,
                        unsent,
                    });
                    if changed {
                        self.emit_rooms();
                    }
                }
            }
            Event::MessageState { id, room, state } => {
                if shown {
                    self.emit(ChatEvent::MessageState { id, room, state });
                }
            }
            Event::ConnectionState(state) => {
                self.with_chat(live, |c| c.connection = state.clone());
                if shown {
                    self.emit(ChatEvent::ConnectionState(state));
                }
            }
            // A dropped connection or a token that cannot be had right now is what the
            // connection line ("Reconnecting in N s…") already says: the technical text goes
            // to the log only. Protocol, server and outbox errors reach the user.
            Event::RoomClosed { room, reason } => {
                self.with_chat(live, |c| {
                    c.rooms.close(&room);
                    c.opened.remove(&room);
                    c.positions.remove(&room);
                });
                live.cache.send(Change::Forget { room: room.clone() });
                self.keep_room_list(live);
                if live.store.last_room().ok().flatten().as_deref() == Some(room.as_str()) {
                    live.cache.send(Change::State {
                        key: confab_store::LAST_ROOM_KEY.to_owned(),
                        value: None,
                    });
                }
                if shown {
                    self.emit(ChatEvent::RoomClosed { room, reason });
                    self.emit_rooms();
                }
            }
            Event::RoomFailed {
                room,
                message,
                retry_in,
            } => {
                if shown {
                    self.emit(ChatEvent::RoomFailed {
                        room,
                        message,
                        retry_in_secs: retry_in.as_secs().max(1),
                    });
                }
            }
            Event::Error { kind, message } => match Code::of_relay_event(&kind) {
                Some(code) if shown => self.emit(ChatEvent::Error { code, message }),
                Some(code) => tracing::warn!(%code, "chat of another account: {message}"),
                None => tracing::info!(kind, "chat connection: {message}"),
            },
        }
    }

    /// Loads the room list (waiting for the connection) and subscribes every member room, so
    /// unread counts and notifications cover rooms that are not open.
    async fn bootstrap(self: Arc<Self>, live: Live) {
        // Rooms with a saved position first: followed from it (recovery, no page), before the
        // room list arrives, so what was missed arrives as soon as the connection is up.
        let saved: Vec<(String, (String, u64))> = self
            .with_chat(&live, |c| {
                let members: std::collections::BTreeSet<String> =
                    c.rooms.member_rooms().into_iter().collect();
                c.positions
                    .iter()
                    .filter(|(room, _)| members.contains(*room))
                    .filter(|(room, _)| c.opened.insert((*room).clone()))
                    .map(|(room, p)| (room.clone(), p.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (room, position) in saved {
            if let Err(e) = live.relay.follow_room(&room, Some(position)).await {
                tracing::warn!(room, "could not follow: {e}");
            }
        }
        loop {
            if !self.is_current(&live) {
                return;
            }
            match live.relay.list_rooms().await {
                Ok(list) => {
                    self.take_list(list, &live);
                    self.subscribe_members(&live).await;
                    return;
                }
                // Offline: the request waited for the connection and gave up; ask again.
                Err(confab_relay::Error::Timeout | confab_relay::Error::ConnectionLost) => {}
                Err(confab_relay::Error::Stopped) => return,
                Err(e) => {
                    tracing::warn!("could not load the room list: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    }

    fn take_list(&self, list: Vec<confab_relay::RoomInfo>, live: &Live) {
        self.with_chat(live, |c| {
            c.rooms.set_list(list, |id| read_position(&live.store, id))
        });
        self.keep_room_list(live);
        self.emit_rooms_of(live);
    }

    /// Saves the account's room list as it stands, to show at the next start.
    fn keep_room_list(&self, live: &Live) {
        let list: Vec<confab_relay::RoomInfo> = self
            .with_chat(live, |c| c.rooms.views())
            .unwrap_or_default()
            .into_iter()
            .map(|r| confab_relay::RoomInfo {
                id: r.id,
                name: r.name,
                member: r.member,
                private: r.private,
                invited: r.invited,
            })
            .collect();
        match serde_json::to_string(&list) {
            Ok(json) => live.cache.send(Change::State {
                key: ROOM_LIST_KEY.to_owned(),
                value: Some(json),
            }),
            Err(e) => tracing::warn!("cannot keep the room list: {e}"),
        }
    }

    async fn subscribe_members(&self, live: &Live) {
        let todo: Vec<(String, Option<(String, u64)>)> = self
            .with_chat(live, |c| {
                let members = c.rooms.member_rooms();
                members
                    .into_iter()
                    .filter(|r| c.opened.insert(r.clone()))
                    .map(|r| {
                        let position = c.positions.get(&r).cloned();
                        (r, position)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (room, position) in todo {
            if !self.is_current(live) {
                return;
            }
            if let Err(e) = live.relay.follow_room(&room, position).await {
                tracing::warn!(room, "could not subscribe: {e}");
                self.with_chat(live, |c| c.opened.remove(&room));
            }
        }
    }

    fn show_notification(&self, title: &str, text: &str) {
        let body = truncate_chars(text, NOTIFICATION_BODY_CHARS);
        self.platform.notify(title, &body);
    }

    async fn joined(&self, info: confab_relay::RoomInfo, live: &Live) -> Result<RoomView> {
        let read = read_position(&live.store, &info.id);
        self.with_chat(live, |c| c.rooms.upsert(&info, read));
        self.keep_room_list(live);
        self.emit_rooms_of(live);
        self.subscribe_members(live).await;
        self.with_chat(live, |c| c.rooms.view(&info.id))
            .flatten()
            .ok_or(Error::NotSignedIn)
    }
}

impl SessionObserver for ChatHub {
    fn session_started(
        self: Arc<Self>,
        account: &AccountId,
        run: Generation,
        manager: &confab_session::TokenManager,
        user: &confab_session::User,
        vault: AccountVault,
    ) {
        if let Err(e) = self.start(account, run, manager, user, vault) {
            tracing::error!("chat could not start: {e}");
            self.emit(ChatEvent::Error {
                code: e.code(),
                message: e.to_string(),
            });
        }
    }

    fn session_ended(self: Arc<Self>, account: &AccountId, run: Generation) {
        let (old, was_shown) = {
            let mut st = self.st();
            let was_shown = st.accounts.active() == Some(account);
            let this_run = st
                .accounts
                .get(account)
                .is_some_and(|c| c.session_run == run);
            if !this_run {
                return; // a newer run of the account, or already ended
            }
            (st.accounts.end(account), was_shown)
        };
        if let Some((_, old)) = old {
            // The chat token tier's logout: disconnect first, then give its tokens up (out of
            // the vault, invalidated at the backend); the sign-in screen follows from the flow.
            let stopping = self.rt.spawn(async move {
                old.live.relay.shutdown().await;
                if let Some(tier) = &old.live.tier {
                    tier.sign_out().await;
                }
                // Everything of the run (its store connection, the cache writer's queue) goes
                // here: written and closed before anyone waiting for the stop goes on.
                let cache = old.live.cache.clone();
                let _ = tokio::task::spawn_blocking(move || cache.flush()).await;
            });
            let mut all = self.stopping.lock().unwrap_or_else(PoisonError::into_inner);
            all.retain(|_, task| !task.is_finished());
            all.insert(account.clone(), stopping);
            tracing::info!("chat stopped");
        }
        if was_shown {
            self.emit(ChatEvent::ConnectionState(ConnectionState::SignedOut));
            self.emit_rooms();
        }
    }

    fn remove_local_data(
        self: Arc<Self>,
        account: AccountId,
    ) -> futures_util::future::BoxFuture<'static, std::result::Result<(), String>> {
        Box::pin(async move {
            if self.st().accounts.get(&account).is_some() {
                return Err("the account's chat is still running".to_owned());
            }
            let stopping = self
                .stopping
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&account);
            if let Some(task) = stopping {
                let _ = task.await;
            }
            let dir = self.data_dir.join(CHAT_DIR).join(account.dir_name());
            tokio::task::spawn_blocking(move || confab_store::remove_dir_securely(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        })
    }

    fn account_shown(self: Arc<Self>, account: &AccountId) {
        let shown = {
            let mut st = self.st();
            if !st.accounts.set_active(account) {
                return;
            }
            st.accounts
                .active_value()
                .map(|c| (c.live.clone(), c.rooms.views(), c.connection.clone()))
        };
        if let Some((live, rooms, connection)) = shown {
            self.emit(self.session_event(&live));
            self.emit(ChatEvent::Rooms { rooms });
            self.emit(ChatEvent::ConnectionState(connection));
        }
    }
}

/// Whether a new message gets a desktop notification: someone else's, while the window is not
/// focused, with notifications on.
pub fn should_notify(own: bool, focused: bool, enabled: bool) -> bool {
    !own && !focused && enabled
}

/// Only plain web links are opened: `http`/`https` with a host, nothing else (`javascript:`,
/// `file:`, `data:`, custom schemes ...).
pub fn safe_link(text: &str) -> Result<url::Url> {
    let url = url::Url::parse(text.trim()).map_err(|_| Error::UnsafeLink)?;
    let web =
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|h| !h.is_empty());
    if web && url.username().is_empty() && url.password().is_none() {
        Ok(url)
    } else {
        Err(Error::UnsafeLink)
    }
}

fn views(messages: Vec<ChatEntry>, me: Option<&str>, at_us: u64) -> Vec<MessageView> {
    messages
        .into_iter()
        .map(|entry| MessageView {
            own: me.is_some_and(|me| me == entry.author()),
            entry,
            at_us,
        })
        .collect()
}

fn read_position(store: &AccountStore, room: &str) -> u64 {
    store.read_position(room).unwrap_or_else(|e| {
        tracing::warn!(room, "cannot read the read position: {e}");
        0
    })
}

/// A message as the history cache keeps it.
fn cached(entry: &ChatEntry) -> CachedMessage {
    CachedMessage {
        offset: entry.offset,
        id: entry.id,
        ts: entry.ts,
        author: entry.author().to_owned(),
        name: entry.name().to_owned(),
        text: entry.text().to_owned(),
    }
}

/// A cached message as the relay's entry (for the UI's views).
fn entry_of(room: &str, m: &CachedMessage) -> ChatEntry {
    ChatEntry::new(room, m.offset, m.id, &m.author, &m.name, &m.text, m.ts)
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &AccountStore,
    f: impl FnOnce(&AccountStore) -> confab_store::Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
        .map_err(|e| Error::Storage(e.to_string()))
}

fn truncate_chars(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn unix_micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes a store on the blocking pool.
async fn persist(prefs: Arc<Prefs>) -> Result<()> {
    tokio::task::spawn_blocking(move || prefs.persist())
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
}

fn valid_room_id(room: &str) -> Result<()> {
    Ok(confab_relay::valid_room(room)?)
}

/// The chat channel's commands (see docs/ui-contract.md); the shell forwards each in one line.
impl ChatHub {
    /// The room list (from the server), with unread counts.
    pub async fn list_rooms(self: &Arc<Self>) -> Result<Vec<RoomView>> {
        let live = self.live()?;
        let list = live.relay.list_rooms().await?;
        self.take_list(list, &live);
        self.subscribe_members(&live).await;
        Ok(self
            .with_chat(&live, |c| c.rooms.views())
            .unwrap_or_default())
    }

    /// Creates a room named `name`; the user becomes its member and owner. A private room is
    /// seen only by its members and the people they invite.
    pub async fn create_room(self: &Arc<Self>, name: &str, private: bool) -> Result<RoomView> {
        let name = name.trim();
        confab_protocol::check_room_name(name).map_err(Error::InvalidRoomName)?;
        let live = self.live()?;
        let info = live.relay.create_room(name, None, private).await?;
        self.joined(info, &live).await
    }

    /// Invites `user` (their user id) to `room`.
    pub async fn invite(&self, room: &str, user: &str) -> Result<()> {
        valid_room_id(room)?;
        let user = user.trim();
        if user.is_empty() || user.len() > 256 || user.chars().any(char::is_control) {
            return Err(Error::InvalidUser);
        }
        let live = self.live()?;
        Ok(live.relay.invite(room, user).await?)
    }

    /// Leaves `room` (a `room-closed` event and the new room list follow).
    pub async fn leave_room(self: &Arc<Self>, room: &str) -> Result<()> {
        valid_room_id(room)?;
        let live = self.live()?;
        live.relay.leave_room(room).await?;
        Ok(())
    }

    /// Removes `user` from `room` (the room's owner only).
    pub async fn remove_member(&self, room: &str, user: &str) -> Result<()> {
        valid_room_id(room)?;
        let live = self.live()?;
        Ok(live.relay.remove_member(room, user).await?)
    }

    /// The members of `room`, its owner, and whether the user is the owner.
    pub async fn members(&self, room: &str) -> Result<MembersView> {
        valid_room_id(room)?;
        let live = self.live()?;
        let m = live.relay.members(room).await?;
        Ok(MembersView {
            room: room.to_owned(),
            you_own: !m.owner.is_empty() && m.owner == live.me,
            members: m.members,
            owner: m.owner,
        })
    }

    /// Joins the room `id`.
    pub async fn join_room(self: &Arc<Self>, id: &str) -> Result<RoomView> {
        valid_room_id(id)?;
        let live = self.live()?;
        let info = live.relay.join_room(id).await?;
        self.joined(info, &live).await
    }

    /// Opens a room: remembers it as the last room and returns its draft and read position.
    /// Its messages follow as a `room-reset` event: from the history cache at once when the
    /// room is followed from a saved position (also offline), else the relay's latest page
    /// (when connected).
    pub async fn open_room(self: &Arc<Self>, room: String) -> Result<OpenedRoom> {
        valid_room_id(&room)?;
        let live = self.live()?;
        let target = room.clone();
        blocking(&live.store, move |s| s.set_last_room(Some(&target))).await?;
        let (first, position) = self
            .with_chat(&live, |c| {
                (
                    c.opened.insert(room.clone()),
                    c.positions.get(&room).cloned(),
                )
            })
            .unwrap_or((false, None));
        let from_cache = match position {
            Some((epoch, offset)) => self.open_from_cache(&live, &room, (epoch, offset)).await?,
            None => false,
        };
        if !from_cache {
            self.open_from_server(&live, &room, first);
        }
        let draft = {
            let room = room.clone();
            blocking(&live.store, move |s| s.draft(&room)).await?
        }
        .unwrap_or_default();
        let read_offset = self
            .with_chat(&live, |c| c.rooms.read_position(&room))
            .unwrap_or(0)
            .max(read_position(&live.store, &room));
        Ok(OpenedRoom {
            room,
            draft,
            read_offset,
        })
    }

    /// Shows `room` from the history cache (a `room-reset` with its newest messages and its
    /// unsent ones) and makes sure the relay follows it from `position`. False when the cache
    /// cannot stand in for the server (messages exist but none is cached).
    async fn open_from_cache(
        self: &Arc<Self>,
        live: &Live,
        room: &str,
        position: (String, u64),
    ) -> Result<bool> {
        let unsent: Vec<confab_relay::OutboxItem> = live
            .relay
            .outbox()
            .await?
            .into_iter()
            .filter(|i| i.room == room)
            .collect();
        let this = Arc::clone(self);
        let shown = live.clone();
        let target = room.to_owned();
        let offset = position.1;
        let done = tokio::task::spawn_blocking(move || {
            // Every message handled so far is in the cache once it is flushed; none handled
            // later is emitted before this reset (the lock keeps the order).
            let _order = this
                .view_order
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shown.cache.flush();
            let page = shown.store.cached(&target, CACHE_PAGE)?;
            if page.is_empty() && offset > 0 {
                return Ok(false);
            }
            let has_older = page.first().is_some_and(|m| m.offset > 1);
            let messages: Vec<ChatEntry> = page.iter().map(|m| entry_of(&target, m)).collect();
            let at_us = unix_micros(SystemTime::now());
            if this.is_shown(&shown) {
                this.emit(ChatEvent::RoomReset {
                    room: target,
                    messages: views(messages, Some(&shown.me), at_us),
                    has_older,
                    unsent,
                });
            }
            Ok::<bool, confab_store::Error>(true)
        })
        .await
        .map_err(|e| Error::Storage(e.to_string()))?
        .map_err(|e| Error::Storage(e.to_string()))?;
        if done {
            live.relay.follow_room(room, Some(position)).await?;
        }
        Ok(done)
    }

    /// Opens `room` at the relay: subscribed (offline: when it connects) and its latest page
    /// sent as a `room-reset`, in the background.
    fn open_from_server(self: &Arc<Self>, live: &Live, room: &str, first: bool) {
        let relay = live.relay.clone();
        let target = room.to_owned();
        let this = Arc::clone(self);
        let opener = live.clone();
        self.rt.spawn(async move {
            match relay.open_room(&target).await {
                // A page too large to load is told in the room itself (`room-failed`).
                Ok(_)
                | Err(confab_relay::Error::Timeout | confab_relay::Error::ReplyTooLarge { .. }) => {
                }
                Err(e) => {
                    if first {
                        this.with_chat(&opener, |c| c.opened.remove(&target));
                    }
                    if !this.is_shown(&opener) {
                        return;
                    }
                    this.emit(ChatEvent::Error {
                        code: Code::OpenRoom,
                        message: format!("could not open the room: {e}"),
                    });
                }
            }
        });
    }

    /// The page of messages before `before_offset` in an open room: from the history cache
    /// when it has them (also offline), else from the server.
    pub async fn load_older(&self, room: &str, before_offset: u64) -> Result<OlderPage> {
        valid_room_id(room)?;
        let live = self.live()?;
        let at_us = unix_micros(SystemTime::now());
        let target = room.to_owned();
        let cached = blocking(&live.store, move |s| {
            s.cached_before(&target, before_offset, CACHE_PAGE)
        })
        .await?;
        // The cache answers when it holds the messages right before the offset (no gap).
        if cached.last().is_some_and(|m| m.offset + 1 == before_offset) {
            let has_older = cached.first().is_some_and(|m| m.offset > 1);
            let messages = cached.iter().map(|m| entry_of(room, m)).collect();
            return Ok(OlderPage {
                room: room.to_owned(),
                messages: views(messages, Some(&live.me), at_us),
                has_older,
            });
        }
        let page = live.relay.load_older(room, before_offset).await?;
        Ok(OlderPage {
            room: page.room,
            messages: views(page.messages, Some(&live.me), at_us),
            has_older: page.has_older,
        })
    }

    /// Sends a message (durable in the outbox when this returns) and clears the room's draft.
    pub async fn send_message(&self, room: &str, text: &str) -> Result<String> {
        let live = self.live()?;
        let id = live.relay.send(room, text).await?;
        let target = room.to_owned();
        if let Err(e) = blocking(&live.store, move |s| s.set_draft(&target, None)).await {
            tracing::warn!("could not clear the draft: {e}");
        }
        Ok(id.to_string())
    }

    /// Publishes a failed message again.
    pub async fn retry_message(&self, id: &str) -> Result<()> {
        let id =
            Uuid::parse_str(id).map_err(|_| Error::Chat(confab_relay::Error::UnknownMessage))?;
        let live = self.live()?;
        live.relay.retry(id).await?;
        Ok(())
    }

    /// Saves the composer's draft for `room` (durable when this returns; "" removes it).
    pub async fn save_draft(&self, room: &str, text: String) -> Result<()> {
        valid_room_id(room)?;
        if text.chars().count() > confab_relay::MAX_TEXT_CHARS * 2 {
            return Err(Error::Chat(confab_relay::Error::InvalidText(
                confab_protocol::TextError::TooManyChars,
            )));
        }
        let live = self.live()?;
        let target = room.to_owned();
        blocking(&live.store, move |s| s.set_draft(&target, Some(&text))).await
    }

    /// The user has seen `room` up to `offset` (the read position only moves forward).
    pub async fn mark_read(&self, room: &str, offset: u64) -> Result<()> {
        valid_room_id(room)?;
        let live = self.live()?;
        let moved = self
            .with_chat(&live, |c| c.rooms.mark_read(room, offset))
            .flatten();
        if let Some(read) = moved {
            self.emit_rooms_of(&live);
            let target = room.to_owned();
            blocking(&live.store, move |s| s.mark_read(&target, read)).await?;
        }
        Ok(())
    }

    /// Turns desktop notifications on or off.
    pub async fn set_notifications(&self, enabled: bool) -> Result<()> {
        let settings = self
            .settings
            .clone()
            .ok_or_else(|| Error::Storage("settings are unavailable".to_owned()))?;
        settings.set("notifications", json!(enabled));
        persist(settings).await
    }

    /// Opens a web link from a message in the system browser (http and https only).
    pub fn open_link(&self, url: &str) -> Result<()> {
        let url = safe_link(url)?;
        self.platform.open_url(&url).map_err(|_| Error::Browser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_web_links_are_opened() {
        for ok in ["https://example.com/a?b=c", "http://127.0.0.1:8080/x"] {
            assert!(
                safe_link(ok).is_ok(),
                "{ok} is a web link and may be opened"
            );
        }
        for bad in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "dev.confab.chat:/oauth/callback?code=x",
            "https://user:pw@example.com/",
            "not a url",
        ] {
            assert!(
                matches!(safe_link(bad), Err(Error::UnsafeLink)),
                "{bad} must not be opened"
            );
        }
    }

    #[test]
    fn notifications_only_for_others_while_unfocused_and_enabled() {
        assert!(
            should_notify(false, false, true),
            "someone else's message while away"
        );
        assert!(
            !should_notify(true, false, true),
            "never for the user's own message"
        );
        assert!(
            !should_notify(false, true, true),
            "not while the window has focus"
        );
        assert!(!should_notify(false, false, false), "not when turned off");
    }

    #[test]
    fn events_have_the_shape_the_ui_reads() {
        let entry = ChatEntry::new(
            "general",
            7,
            Uuid::nil(),
            "bob",
            "",
            "<img src=x onerror=alert(1)>",
            5,
        );
        let v = serde_json::to_value(ChatEvent::Message(MessageView {
            entry,
            own: false,
            at_us: 9,
        }))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "message", "room": "general", "offset": 7, "id": Uuid::nil(),
                   "author": "bob", "text": "<img src=x onerror=alert(1)>", "ts": 5,
                   "own": false, "at_us": 9}),
            "message events are flat, carry the text verbatim and nothing secret"
        );
        let v = serde_json::to_value(ChatEvent::ConnectionState(ConnectionState::Reconnecting {
            in_secs: 3,
        }))
        .expect("serializable");
        assert_eq!(
            v,
            json!({"type": "connection-state", "state": "reconnecting", "in_secs": 3}),
            "connection states keep the relay's shape"
        );
        // One vocabulary: kebab-case types and values, the same word for "signed out" on
        // both channels, errors as {code, message}.
        let chat = serde_json::to_value(ChatEvent::ConnectionState(ConnectionState::SignedOut))
            .expect("serializable");
        let signin = serde_json::to_value(crate::events::UiEvent::SignedOut {
            reason: crate::events::SignedOutReason::SignedOut,
        })
        .expect("serializable");
        assert_eq!(
            chat,
            json!({"type": "connection-state", "state": "signed-out"})
        );
        assert_eq!(
            signin,
            json!({"type": "signed-out", "reason": "signed-out"})
        );
        let error = serde_json::to_value(ChatEvent::Error {
            code: Code::OpenRoom,
            message: "could not open the room".to_owned(),
        })
        .expect("serializable");
        assert_eq!(
            error,
            json!({"type": "error", "code": "open-room", "message": "could not open the room"})
        );
    }

    #[test]
    fn long_notification_text_is_cut_with_an_ellipsis() {
        assert_eq!(
            truncate_chars("héllo", 10),
            "héllo",
            "short text stays whole"
        );
        assert_eq!(
            truncate_chars("héllo", 2),
            "hé…",
            "long text is cut on a character"
        );
    }

    #[test]
    fn room_ids_are_checked_before_reaching_the_relay() {
        assert!(valid_room_id("general").is_ok(), "plain ids pass");
        for bad in ["", "a b", "../x", &"x".repeat(65)] {
            assert!(valid_room_id(bad).is_err(), "{bad:?} is refused");
        }
    }
}
