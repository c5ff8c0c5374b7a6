//! The background task: one connection at a time, reconnects, subscriptions, outbox.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use confab_protocol::{
    decode_replies, encode_batches, room_channel, room_id, ChatMessage, Command as WireCommand,
    ConnectRequest, Disconnect, ErrorCode, ErrorReply, FrameError, HistoryRequest, Publication,
    PublishRequest, RefreshRequest, Reply, RpcRequest, StreamPosition, SubscribeRequest, Token,
};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::config::RelayConfig;
use crate::error::{Error, Result};
use crate::events::{ChatEntry, ConnectionState, Event, RoomPage, SendState};
use crate::outbox::{Outbox, OutboxItem, Remover};
use crate::outlet::Outlet;
use crate::push_line::{self, PubData, PubLine};
use crate::token::{TokenError, TokenSource};
use crate::transport::{Connection, Connector, Inbound, Utf8Bytes};

/// Frames sent to the server are batched up to this size (the server's default limit is 64 KiB).
const MAX_OUT_FRAME: usize = 60 * 1024;
/// Publications held for a room while its subscription or reset is in flight; more means the
/// room is far behind and a reconnect (with recovery) is cheaper than holding them.
const MAX_SYNC_BUFFER: usize = 10_000;
/// Delay before retrying publishes the server refused temporarily (rate limit, internal error).
const PUBLISH_RETRY: Duration = Duration::from_secs(1);
/// How often stale rooms (events dropped for a slow UI) are checked for a reset.
const STALE_CHECK: Duration = Duration::from_millis(200);

/// Commands from handles.
pub(crate) enum Cmd {
    Rpc {
        method: &'static str,
        data: Value,
        reply: oneshot::Sender<Result<Value>>,
    },
    OpenRoom {
        room: String,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    LoadOlder {
        room: String,
        before: u64,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    Queued(OutboxItem),
    Retry {
        id: Uuid,
        reply: oneshot::Sender<Result<()>>,
    },
    NetworkUp,
    Reconnect,
    Shutdown(oneshot::Sender<()>),
}

/// Results of work spawned off the task (token fetches).
enum Internal {
    RefreshToken(std::result::Result<Token, TokenError>),
}

/// What a pending command id is waiting for.
enum Pending {
    Subscribe(String),
    Publish(Uuid),
    Reset(String),
    Older {
        room: String,
        reply: oneshot::Sender<Result<RoomPage>>,
    },
    Rpc(oneshot::Sender<Result<Value>>),
    Refresh {
        retried: bool,
    },
}

#[derive(Default)]
struct Room {
    epoch: String,
    offset: u64,
    known: bool,
    subscribed: bool,
    syncing: bool,
    needs_reset: bool,
    buffer: Vec<Arrival>,
    waiters: Vec<oneshot::Sender<Result<RoomPage>>>,
}

/// Why a connection ended.
enum End {
    Closed { code: Option<u16>, reason: String },
    Transport(String),
    Protocol(String),
    Dead,
    TokenRejected,
    SignedOut,
    Shutdown(Option<oneshot::Sender<()>>),
}

pub(crate) struct Core {
    config: RelayConfig,
    source: Arc<dyn TokenSource>,
    connector: Arc<dyn Connector>,
    outbox: Outbox,
    remover: Remover,
    outlet: Outlet,
    rooms: BTreeMap<String, Room>,
    /// Pending (not in flight, not failed) outbox messages by send order.
    queue: BTreeMap<u64, Uuid>,
    items: HashMap<Uuid, (u64, OutboxItem)>,
    in_flight: HashSet<Uuid>,
    next_seq: u64,
    deferred: Vec<Cmd>,
    /// The TLS failure last told to the UI since the last connection (told once per cause).
    told_tls: Option<String>,
    // per connection
    pending: HashMap<u32, Pending>,
    out: Vec<WireCommand>,
    next_id: u32,
    refresh_at: Option<Instant>,
    refresh_in_flight: bool,
    dead_at: Option<Instant>,
    ping_window: Option<Duration>,
    answer_pings: bool,
    publish_retry_at: Option<Instant>,
    stale_checked: Instant,
    last_seen: Instant,
    end: Option<End>,
    internal_tx: mpsc::UnboundedSender<Internal>,
    internal_rx: mpsc::UnboundedReceiver<Internal>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn new_item(room: &str, text: &str) -> OutboxItem {
    OutboxItem {
        id: Uuid::new_v4(),
        room: room.to_owned(),
        text: text.to_owned(),
        ts: now_ms(),
        failed: None,
    }
}

fn server_error(e: &ErrorReply) -> Error {
    Error::Server {
        code: e.code,
        message: e.message.clone(),
    }
}

/// A publication reduced to what the relay uses: its offset and the chat message (`None` when
/// its data is not one).
struct Arrival {
    offset: u64,
    message: Option<ChatEntry>,
}

impl Arrival {
    fn of(room: &str, p: &Publication) -> Self {
        Self {
            offset: p.offset,
            message: entry(room, p),
        }
    }
}

/// Frames handled per wake-up of the connection loop before it looks at commands and timers
/// again (a burst of pushes is decoded without a round through `select!` per frame). A turn
/// also ends once its batch of events holds a quarter of the event stream's capacity
/// (`Outlet::batch_is_large`), so a burst is handed to the UI in
/// pieces it can take while the next one is decoded instead of overflowing the stream at once.
const FRAMES_PER_TURN: usize = 1024;

/// The serde_json fast path for the hot line type, `{"push":{"channel":"room:…","pub":{…}}}`,
/// decoded straight into borrowed, typed fields (no `serde_json::Value`, no second decode of
/// `data`). Lines in the server's exact shape are read before this by the hand-written
/// [`push_line`](crate::push_line); this path takes the other publication pushes.
/// It accepts a subset of what the generic [`Reply`] path accepts, with the same meaning:
/// no other keys in the line or the push (`deny_unknown_fields`), the publication's fields
/// typed as in [`Publication`] (`info` as [`confab_protocol::ClientInfo`], `tags` a string map)
/// and `data` a valid [`ChatMessage`]. Anything else fails here and goes the generic way, so
/// errors and edge cases behave exactly as before.
pub(crate) mod fast {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use serde::de::IgnoredAny;
    use serde::Deserialize;
    use uuid::Uuid;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct PushLine<'a> {
        #[serde(borrow)]
        pub push: PubPush<'a>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct PubPush<'a> {
        #[serde(borrow)]
        pub channel: Cow<'a, str>,
        #[serde(rename = "pub", borrow)]
        pub publication: Pub<'a>,
    }

    #[derive(Deserialize)]
    pub(crate) struct Pub<'a> {
        #[serde(borrow)]
        pub data: Chat<'a>,
        #[serde(default, borrow)]
        #[allow(dead_code)] // validated like the generic path, not used
        info: Option<Info<'a>>,
        #[serde(default)]
        pub offset: u64,
        #[serde(default, borrow)]
        #[allow(dead_code)]
        tags: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
        #[serde(default)]
        #[allow(dead_code)]
        time: i64,
    }

    /// Mirrors `ClientInfo` (all fields default; the JSON ones accept any value).
    #[derive(Deserialize, Default)]
    #[serde(default)]
    #[allow(dead_code)]
    struct Info<'a> {
        #[serde(borrow)]
        user: Cow<'a, str>,
        #[serde(borrow)]
        client: Cow<'a, str>,
        conn_info: Option<IgnoredAny>,
        chan_info: Option<IgnoredAny>,
    }

    /// Mirrors `ChatMessage`.
    #[derive(Deserialize)]
    pub(crate) struct Chat<'a> {
        pub id: Uuid,
        #[serde(default, borrow)]
        pub author: Cow<'a, str>,
        #[serde(borrow)]
        pub text: Cow<'a, str>,
        pub ts: i64,
    }

    impl<'a> From<PubPush<'a>> for crate::push_line::PubLine<'a> {
        fn from(push: PubPush<'a>) -> Self {
            let p = push.publication;
            Self {
                channel: push.channel,
                publication: crate::push_line::PubData {
                    offset: p.offset,
                    id: p.data.id,
                    author: p.data.author,
                    text: p.data.text,
                    ts: p.data.ts,
                },
            }
        }
    }
}

/// One decoded line of a server frame.
enum Line<'a> {
    Publication(PubLine<'a>),
    Reply(Box<Reply>),
}

/// One non-blank line: the hand-written reader, then serde_json's typed fast path, then the
/// generic `Reply`. `number` is the line's 1-based position, for the error.
fn decode_line(line: &str, number: usize) -> std::result::Result<Line<'_>, FrameError> {
    if let Some(p) = push_line::parse(line) {
        return Ok(Line::Publication(p));
    }
    decode_line_with_serde(line, number)
}

/// [`decode_line`] after the hand-written reader gave up on `line`.
fn decode_line_with_serde(line: &str, number: usize) -> std::result::Result<Line<'_>, FrameError> {
    if let Ok(p) = serde_json::from_str::<fast::PushLine<'_>>(line) {
        return Ok(Line::Publication(p.push.into()));
    }
    let reply = serde_json::from_str::<Reply>(line).map_err(|source| FrameError::InvalidJson {
        line: number,
        source,
    })?;
    Ok(Line::Reply(Box::new(reply)))
}

/// The decoded lines of one frame, in order. The first is held inline: most frames are one
/// push, and their decode then allocates nothing for the list.
#[derive(Default)]
struct Lines<'a> {
    first: Option<Line<'a>>,
    rest: std::collections::VecDeque<Line<'a>>,
}

impl<'a> Lines<'a> {
    fn push(&mut self, line: Line<'a>) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(line);
        } else {
            self.rest.push_back(line);
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        self.first.take().or_else(|| self.rest.pop_front())
    }
}

/// Like `decode_replies`, with the fast path for publication pushes: the whole frame is decoded
/// before anything is applied, and any invalid line fails the frame, as before.
fn decode_lines(text: &str, max_bytes: usize) -> std::result::Result<Lines<'_>, FrameError> {
    if text.len() > max_bytes {
        return Err(FrameError::TooLarge {
            size: text.len(),
            max: max_bytes,
        });
    }
    let mut out = Lines::default();
    // Most frames are one publication push: the hand-written reader takes the whole frame at
    // once. It accepts no newline and no surrounding whitespace, so this reads such a frame
    // exactly as the split below would, without the scan for newlines.
    if let Some(p) = push_line::parse(text) {
        out.push(Line::Publication(p));
        return Ok(out);
    }
    // Lines split with memchr's SIMD search (std's `split` scans a one-line frame bytewise).
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain(std::iter::once(text.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        let line = text[start..end].trim();
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        // A frame that is this one line was already offered to the hand-written reader above.
        let decoded = if line.len() == text.len() {
            decode_line_with_serde(line, i + 1)
        } else {
            decode_line(line, i + 1)
        };
        out.push(decoded?);
    }
    if out.first.is_none() {
        return Err(FrameError::Empty);
    }
    Ok(out)
}

/// For the throughput bench only: decodes one server frame the way the connection loop does
/// (lines, the publication fast path, the generic path otherwise) and builds the chat entries
/// it would emit, without a connection. Returns how many entries that made.
#[doc(hidden)]
pub fn decode_frame_for_bench(frame: &Utf8Bytes) -> usize {
    let Ok(lines) = decode_lines(frame, usize::MAX) else {
        return 0;
    };
    lines
        .into_iter()
        .filter_map(|line| match line {
            Line::Publication(p) => Some(fast_entry(frame, room_id(&p.channel)?, p.publication)),
            Line::Reply(_) => None,
        })
        .count()
}

/// The chat entry of a publication decoded by a fast path from `frame`: its strings are slices
/// of the frame when they were read without unescaping (no copy, no allocation).
fn fast_entry(frame: &Utf8Bytes, room: &str, p: PubData<'_>) -> ChatEntry {
    ChatEntry::in_frame(frame, room, p.offset, p.id, &p.author, &p.text, p.ts)
}

fn entry(room: &str, p: &Publication) -> Option<ChatEntry> {
    let m = ChatMessage::deserialize(&p.data).ok()?;
    Some(ChatEntry::new(
        room, p.offset, m.id, &m.author, &m.text, m.ts,
    ))
}

fn is_terminal(code: u16) -> bool {
    !Disconnect::new(code, "").reconnect()
}

impl Core {
    pub(crate) fn new(
        config: RelayConfig,
        source: Arc<dyn TokenSource>,
        connector: Arc<dyn Connector>,
        outbox: Outbox,
        outlet: Outlet,
    ) -> Result<Self> {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        let mut core = Self {
            config,
            source,
            connector,
            remover: outbox.remover(),
            outbox,
            outlet,
            rooms: BTreeMap::new(),
            queue: BTreeMap::new(),
            items: HashMap::new(),
            in_flight: HashSet::new(),
            next_seq: 0,
            deferred: Vec::new(),
            pending: HashMap::new(),
            out: Vec::new(),
            next_id: 0,
            refresh_at: None,
            refresh_in_flight: false,
            dead_at: None,
            ping_window: None,
            answer_pings: false,
            publish_retry_at: None,
            stale_checked: Instant::now(),
            last_seen: Instant::now(),
            end: None,
            internal_tx,
            internal_rx,
            told_tls: None,
        };
        for item in core.outbox.list()? {
            let state = match &item.failed {
                None => SendState::Pending,
                Some(reason) => SendState::Failed {
                    reason: reason.clone(),
                },
            };
            core.outlet.emit(Event::MessageState {
                id: item.id,
                room: item.room.clone(),
                state,
            });
            core.track(item);
        }
        Ok(core)
    }

    fn track(&mut self, item: OutboxItem) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if item.failed.is_none() {
            self.queue.insert(seq, item.id);
        }
        self.items.insert(item.id, (seq, item));
    }

    fn state(&mut self, s: ConnectionState) {
        self.outlet.emit(Event::ConnectionState(s));
    }

    fn error(&mut self, kind: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!(%kind, %message, "relay error");
        self.outlet.emit(Event::Error {
            kind: kind.to_owned(),
            message,
        });
    }

    // ---------------------------------------------------------------- main loop

    pub(crate) async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        let mut attempt: u32 = 0;
        let mut use_rejected = false;
        let mut stopped = false;
        loop {
            if stopped {
                match self.wait_while_stopped(&mut cmds).await {
                    Some(()) => {
                        stopped = false;
                        attempt = 0;
                    }
                    None => return,
                }
            }
            self.state(ConnectionState::Connecting);
            let outcome = {
                let connect = establish(
                    self.connector.clone(),
                    self.source.clone(),
                    self.config.clone(),
                    use_rejected,
                );
                tokio::pin!(connect);
                loop {
                    tokio::select! {
                        r = &mut connect => break Some(r),
                        cmd = cmds.recv() => match cmd {
                            None => break None,
                            Some(Cmd::Shutdown(done)) => {
                                self.state(ConnectionState::Offline { reason: "stopped".into() });
                                let _ = done.send(());
                                return;
                            }
                            Some(c) => self.on_command_offline(c),
                        },
                    }
                }
            };
            let Some(outcome) = outcome else { return };
            use_rejected = false;
            let end = match outcome {
                Ok((conn, result)) => {
                    attempt = 0;
                    self.told_tls = None;
                    self.serve(conn, result, &mut cmds).await
                }
                Err(Failure::SignedOut) => {
                    self.state(ConnectionState::SignedOut);
                    stopped = true;
                    continue;
                }
                Err(Failure::TokenExpired) => {
                    use_rejected = true;
                    End::TokenRejected
                }
                Err(Failure::Terminal(code, reason)) => End::Closed {
                    code: Some(code),
                    reason,
                },
                Err(Failure::Retry(why)) => {
                    tracing::info!(error = %why, "connect attempt failed");
                    End::Transport(why)
                }
                Err(Failure::Tls(why)) => {
                    // Not an outage but a certificate or TLS setup problem: the connection
                    // line alone would say "Reconnecting…" forever. Told once per cause; the
                    // relay keeps trying (the certificate may be fixed).
                    tracing::warn!(error = %why, "TLS handshake failed");
                    if self.told_tls.as_deref() != Some(why.as_str()) {
                        self.told_tls = Some(why.clone());
                        self.error("tls", format!("cannot connect securely: {why}"));
                    }
                    End::Transport(why)
                }
            };
            self.on_disconnected();
            match end {
                End::Shutdown(done) => {
                    self.state(ConnectionState::Offline {
                        reason: "stopped".into(),
                    });
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                End::Closed {
                    code: Some(code),
                    reason,
                } if is_terminal(code) => {
                    tracing::warn!(code, %reason, "server said not to reconnect");
                    self.state(ConnectionState::Offline {
                        reason: format!("disconnected by the server ({code} {reason})"),
                    });
                    stopped = true;
                    continue;
                }
                End::Closed { code, reason } => {
                    tracing::info!(?code, %reason, "connection closed");
                    if code == Some(Disconnect::EXPIRED.code) {
                        use_rejected = true;
                    }
                }
                End::SignedOut => {
                    self.state(ConnectionState::SignedOut);
                    stopped = true;
                    continue;
                }
                End::TokenRejected => use_rejected = true,
                End::Transport(why) => tracing::info!(error = %why, "connection lost"),
                End::Dead => tracing::info!("connection dead: no server ping"),
                End::Protocol(why) => {
                    tracing::warn!(error = %why, "protocol error; reconnecting");
                }
            }
            // Back off, unless the network comes back.
            let delay = self.config.backoff_delay(attempt);
            attempt = attempt.saturating_add(1);
            self.state(ConnectionState::Reconnecting {
                in_secs: delay.as_secs() + u64::from(delay.subsec_nanos() > 0),
            });
            let wake = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    cmd = cmds.recv() => match cmd {
                        None => return,
                        Some(Cmd::NetworkUp | Cmd::Reconnect) => { attempt = 0; break; }
                        Some(Cmd::Shutdown(done)) => {
                            self.state(ConnectionState::Offline { reason: "stopped".into() });
                            let _ = done.send(());
                            return;
                        }
                        Some(c) => self.on_command_offline(c),
                    },
                }
            }
        }
    }

    /// Waits for `reconnect()` (Some) or shutdown (None) while not connecting.
    async fn wait_while_stopped(&mut self, cmds: &mut mpsc::Receiver<Cmd>) -> Option<()> {
        loop {
            match cmds.recv().await? {
                Cmd::Reconnect => return Some(()),
                Cmd::Shutdown(done) => {
                    let _ = done.send(());
                    return None;
                }
                c => self.on_command_offline(c),
            }
        }
    }

    async fn serve(
        &mut self,
        mut conn: Connection,
        result: confab_protocol::ConnectResult,
        cmds: &mut mpsc::Receiver<Cmd>,
    ) -> End {
        self.next_id = 1;
        self.end = None;
        self.refresh_in_flight = false;
        self.answer_pings = result.pong;
        self.ping_window = (result.ping > 0)
            .then(|| Duration::from_secs(u64::from(result.ping)) + self.config.ping_grace);
        self.last_seen = Instant::now();
        self.dead_at = self.ping_window.map(|w| self.last_seen + w);
        self.schedule_refresh(result.expires, result.ttl);
        self.state(ConnectionState::Connected);
        let rooms: Vec<String> = self.rooms.keys().cloned().collect();
        for room in rooms {
            self.subscribe(&room);
        }
        for cmd in std::mem::take(&mut self.deferred) {
            self.on_command(cmd);
        }
        self.flush_outbox();
        let mut changes: Option<watch::Receiver<u64>> = self.source.changes();
        // One timer for the connection, moved only when the next deadline changes.
        let far = Instant::now() + Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(far);
        tokio::pin!(sleep);
        loop {
            if let Err(e) = self.write(&mut conn).await {
                return End::Transport(e);
            }
            if let Some(end) = self.end.take() {
                let _ = conn.sink.close().await;
                return end;
            }
            let timer = self.next_timer().unwrap_or(far);
            if sleep.deadline() != timer {
                sleep.as_mut().reset(timer);
            }
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => self.end = Some(End::Shutdown(None)),
                    Some(Cmd::Shutdown(done)) => self.end = Some(End::Shutdown(Some(done))),
                    Some(c) => self.on_command(c),
                },
                frame = conn.stream.next() => match frame {
                    Some(Ok(Inbound::Text(text))) => {
                        // Lazy watchdog: only the timestamp moves here (once per burst: the
                        // frames taken below were already there); the timer re-arms from it.
                        self.last_seen = Instant::now();
                        // The burst's events go to the UI as one batch (see outlet.rs).
                        self.outlet.begin_batch();
                        self.on_frame(&text);
                        // Frames that are already here are handled in the same turn.
                        for _ in 1..FRAMES_PER_TURN {
                            if self.end.is_some() || self.outlet.batch_is_large() {
                                break;
                            }
                            match conn.stream.next().now_or_never() {
                                Some(Some(Ok(Inbound::Text(text)))) => self.on_frame(&text),
                                Some(Some(Ok(Inbound::Closed { code, reason }))) => {
                                    self.end = Some(End::Closed { code, reason });
                                }
                                Some(Some(Err(e))) => {
                                    self.error("transport", e.0.clone());
                                    self.end = Some(End::Transport(e.0));
                                }
                                Some(None) => {
                                    self.end = Some(End::Transport("connection ended".into()));
                                }
                                None => break,
                            }
                        }
                        self.outlet.end_batch();
                    }
                    Some(Ok(Inbound::Closed { code, reason })) => {
                        self.end = Some(End::Closed { code, reason });
                    }
                    Some(Err(e)) => {
                        self.error("transport", e.0.clone());
                        self.end = Some(End::Transport(e.0));
                    }
                    None => self.end = Some(End::Transport("connection ended".into())),
                },
                Some(internal) = self.internal_rx.recv() => self.on_internal(internal),
                changed = async {
                    match changes.as_mut() {
                        Some(rx) => rx.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    if changed {
                        self.start_refresh(false);
                    } else {
                        changes = None;
                    }
                }
                () = &mut sleep => self.on_timer(),
            }
        }
    }

    async fn write(&mut self, conn: &mut Connection) -> std::result::Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let frames = encode_batches(&out, MAX_OUT_FRAME).map_err(|e| e.to_string())?;
        for frame in frames {
            conn.sink.feed(frame).await.map_err(|e| e.0)?;
        }
        conn.sink.flush().await.map_err(|e| e.0)
    }

    fn next_timer(&self) -> Option<Instant> {
        let stale = (!self.outlet.stale_rooms.is_empty()).then(|| self.stale_checked + STALE_CHECK);
        [self.refresh_at, self.dead_at, self.publish_retry_at, stale]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        self.stale_checked = now;
        if let (Some(t), Some(window)) = (self.dead_at, self.ping_window) {
            if t <= now {
                let due = self.last_seen + window;
                if due <= now {
                    self.error("transport", "no ping from the server in time");
                    self.end = Some(End::Dead);
                    return;
                }
                self.dead_at = Some(due);
            }
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.start_refresh(false);
        }
        if self.publish_retry_at.is_some_and(|t| t <= now) {
            self.publish_retry_at = None;
            self.flush_outbox();
        }
        if !self.outlet.stale_rooms.is_empty() && self.outlet.has_room() {
            let stale: Vec<String> = self.outlet.stale_rooms.iter().cloned().collect();
            for room in stale {
                let ready = self
                    .rooms
                    .get(&room)
                    .is_some_and(|r| r.subscribed && !r.syncing);
                if ready {
                    self.start_reset(&room);
                } else if !self.rooms.contains_key(&room) {
                    self.outlet.stale_rooms.remove(&room);
                }
            }
        }
    }

    fn schedule_refresh(&mut self, expires: bool, ttl: u32) {
        self.refresh_at = (expires && ttl > 0).then(|| {
            // Refresh at half the remaining lifetime, like the session layer: a slow token
            // source still has half the lifetime. If the source returns the same token, the
            // server's next ttl is shorter and the timer simply fires again sooner (floor 250 ms).
            let ttl_ms = u64::from(ttl) * 1000;
            Instant::now() + Duration::from_millis((ttl_ms / 2).max(250))
        });
    }

    fn start_refresh(&mut self, rejected: bool) {
        if self.refresh_in_flight {
            return;
        }
        self.refresh_in_flight = true;
        let source = self.source.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let r = if rejected {
                source.rejected().await
            } else {
                source.token().await
            };
            let _ = tx.send(Internal::RefreshToken(r));
        });
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::RefreshToken(Ok(token)) => {
                let id = self.push_cmd(WireCommand {
                    refresh: Some(RefreshRequest { token }),
                    ..WireCommand::default()
                });
                self.pending.insert(id, Pending::Refresh { retried: false });
            }
            Internal::RefreshToken(Err(TokenError::SignedOut)) => {
                self.refresh_in_flight = false;
                self.end = Some(End::SignedOut);
            }
            Internal::RefreshToken(Err(TokenError::Unavailable(why))) => {
                self.refresh_in_flight = false;
                self.error("token", format!("token refresh failed: {why}"));
                // Try again shortly; the server closes with 3005 only after expiry.
                self.refresh_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    fn push_cmd(&mut self, mut cmd: WireCommand) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        cmd.id = self.next_id;
        self.out.push(cmd);
        self.next_id
    }

    // ---------------------------------------------------------------- commands

    fn on_command_offline(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Queued(item) => self.on_queued(item),
            Cmd::Retry { id, reply } => {
                let _ = reply.send(self.on_retry(id));
            }
            Cmd::OpenRoom { room, reply } => {
                self.rooms.entry(room).or_default().waiters.push(reply);
            }
            Cmd::NetworkUp | Cmd::Reconnect | Cmd::Shutdown(_) => {}
            c @ (Cmd::Rpc { .. } | Cmd::LoadOlder { .. }) => {
                // Answered after the next connect (or the caller's timeout).
                self.deferred.retain(|d| match d {
                    Cmd::Rpc { reply, .. } => !reply.is_closed(),
                    Cmd::LoadOlder { reply, .. } => !reply.is_closed(),
                    _ => true,
                });
                self.deferred.push(c);
            }
        }
    }

    fn on_command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Rpc {
                method,
                data,
                reply,
            } => {
                if reply.is_closed() {
                    return;
                }
                let id = self.push_cmd(WireCommand {
                    rpc: Some(RpcRequest {
                        method: method.to_owned(),
                        data: Some(data),
                    }),
                    ..WireCommand::default()
                });
                self.pending.insert(id, Pending::Rpc(reply));
            }
            Cmd::OpenRoom { room, reply } => {
                let r = self.rooms.entry(room.clone()).or_default();
                r.waiters.push(reply);
                if !r.subscribed && !r.syncing {
                    self.subscribe(&room);
                } else if !r.syncing {
                    self.start_reset(&room);
                }
                // else: the sync in flight answers the waiter
            }
            Cmd::LoadOlder {
                room,
                before,
                reply,
            } => {
                let Some(r) = self.rooms.get(&room).filter(|r| r.known) else {
                    let _ = reply.send(Err(Error::RoomNotOpen));
                    return;
                };
                let epoch = r.epoch.clone();
                let id = self.push_cmd(WireCommand {
                    history: Some(HistoryRequest {
                        channel: room_channel(&room),
                        limit: i32::try_from(self.config.page_size).unwrap_or(i32::MAX),
                        since: Some(StreamPosition {
                            offset: before,
                            epoch,
                        }),
                        reverse: true,
                    }),
                    ..WireCommand::default()
                });
                self.pending.insert(id, Pending::Older { room, reply });
            }
            Cmd::Queued(item) => {
                self.on_queued(item);
                self.flush_outbox();
            }
            Cmd::Retry { id, reply } => {
                let _ = reply.send(self.on_retry(id));
                self.flush_outbox();
            }
            Cmd::NetworkUp | Cmd::Reconnect | Cmd::Shutdown(_) => {}
        }
    }

    fn on_queued(&mut self, item: OutboxItem) {
        self.outlet.emit(Event::MessageState {
            id: item.id,
            room: item.room.clone(),
            state: SendState::Pending,
        });
        self.track(item);
    }

    fn on_retry(&mut self, id: Uuid) -> Result<()> {
        let Some((seq, item)) = self.items.get_mut(&id) else {
            return Err(Error::UnknownMessage);
        };
        if item.failed.is_none() {
            return Ok(()); // already pending
        }
        if !self.outbox.mark_pending(id)? {
            return Err(Error::UnknownMessage);
        }
        item.failed = None;
        let room = item.room.clone();
        // Retried messages go to the end of the queue, like a new send.
        let new_seq = self.next_seq;
        self.next_seq += 1;
        *seq = new_seq;
        self.queue.insert(new_seq, id);
        self.outlet.emit(Event::MessageState {
            id,
            room,
            state: SendState::Pending,
        });
        Ok(())
    }

    fn flush_outbox(&mut self) {
        if self.publish_retry_at.is_some() {
            return; // the server asked us to slow down; the timer resumes
        }
        while self.in_flight.len() < self.config.max_in_flight {
            let Some((_, id)) = self.queue.pop_first() else {
                break;
            };
            let Some((_, item)) = self.items.get(&id) else {
                continue;
            };
            let msg = ChatMessage {
                id: item.id,
                author: String::new(),
                text: item.text.clone(),
                ts: item.ts,
            };
            let data = match serde_json::to_value(&msg) {
                Ok(v) => v,
                Err(e) => {
                    self.error("outbox", format!("cannot encode message: {e}"));
                    continue;
                }
            };
            let channel = room_channel(&item.room);
            let cmd_id = self.push_cmd(WireCommand {
                publish: Some(PublishRequest { channel, data }),
                ..WireCommand::default()
            });
            self.pending.insert(cmd_id, Pending::Publish(id));
            self.in_flight.insert(id);
        }
    }

    // ---------------------------------------------------------------- rooms

    fn subscribe(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = true;
        r.subscribed = false;
        r.buffer.clear();
        let req = SubscribeRequest {
            channel: room_channel(room),
            recover: r.known,
            epoch: if r.known {
                r.epoch.clone()
            } else {
                String::new()
            },
            offset: if r.known { r.offset } else { 0 },
            positioned: true,
            recoverable: true,
            ..SubscribeRequest::default()
        };
        let id = self.push_cmd(WireCommand {
            subscribe: Some(req),
            ..WireCommand::default()
        });
        self.pending.insert(id, Pending::Subscribe(room.to_owned()));
    }

    fn start_reset(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = true;
        r.needs_reset = true;
        let id = self.push_cmd(WireCommand {
            history: Some(HistoryRequest {
                channel: room_channel(room),
                limit: i32::try_from(self.config.page_size).unwrap_or(i32::MAX),
                since: None,
                reverse: true,
            }),
            ..WireCommand::default()
        });
        self.pending.insert(id, Pending::Reset(room.to_owned()));
    }

    fn on_subscribed(&mut self, room: &str, reply: Reply) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(e) = reply.error {
            r.syncing = false;
            let err_text = format!("cannot open room {room}: {}", e.message);
            for w in r.waiters.drain(..) {
                let _ = w.send(Err(server_error(&e)));
            }
            if e.temporary || e.code == ErrorCode::INTERNAL {
                self.error("server", err_text);
                self.end = Some(End::Protocol("temporary subscribe failure".into()));
            } else {
                // Not a member / unknown room: stop following it.
                self.rooms.remove(room);
                self.error("server", err_text);
            }
            return;
        }
        let Some(res) = reply.subscribe else {
            self.end = Some(End::Protocol("subscribe reply without result".into()));
            return;
        };
        r.subscribed = true;
        let recovered = r.known && res.recovered && res.epoch == r.epoch;
        if recovered {
            let pubs = res.publications;
            let wants_page = !r.waiters.is_empty() || r.needs_reset;
            r.syncing = false;
            for p in pubs {
                let a = Arrival::of(room, &p);
                self.on_publication(room, a);
            }
            self.drain_buffer(room);
            if wants_page {
                self.start_reset(room);
            }
        } else {
            if r.known {
                tracing::info!(room, "recovery failed; reloading recent history");
            }
            r.epoch = res.epoch;
            r.offset = res.offset;
            r.known = true;
            self.start_reset(room);
        }
    }

    fn on_reset(&mut self, room: &str, reply: Reply) {
        let unsent: Vec<OutboxItem> = self.unsent(room);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.syncing = false;
        match (reply.error, reply.history) {
            (Some(e), _) => {
                for w in r.waiters.drain(..) {
                    let _ = w.send(Err(server_error(&e)));
                }
                self.outlet.stale_rooms.insert(room.to_owned()); // retried by the stale check
                self.error("server", format!("cannot load room {room}: {}", e.message));
            }
            (None, Some(h)) => {
                let mut pubs = h.publications;
                pubs.reverse();
                let page_top = pubs.last().map(|p| p.offset).unwrap_or(0);
                if h.epoch != r.epoch {
                    r.epoch = h.epoch;
                    r.offset = h.offset.max(page_top);
                } else {
                    r.offset = r.offset.max(h.offset).max(page_top);
                }
                r.needs_reset = false;
                let has_older = pubs.first().is_some_and(|p| p.offset > 1);
                let messages: Vec<ChatEntry> = pubs.iter().filter_map(|p| entry(room, p)).collect();
                let page = RoomPage {
                    room: room.to_owned(),
                    messages: messages.clone(),
                    has_older,
                };
                for w in r.waiters.drain(..) {
                    let _ = w.send(Ok(page.clone()));
                }
                self.outlet.stale_rooms.remove(room);
                self.outlet.emit(Event::RoomReset {
                    room: room.to_owned(),
                    messages,
                    has_older,
                    unsent,
                });
            }
            (None, None) => {
                self.end = Some(End::Protocol("history reply without result".into()));
                return;
            }
        }
        self.drain_buffer(room);
    }

    fn unsent(&self, room: &str) -> Vec<OutboxItem> {
        let mut v: Vec<&(u64, OutboxItem)> = self
            .items
            .values()
            .filter(|(_, i)| i.room == room)
            .collect();
        v.sort_by_key(|(seq, _)| *seq);
        v.into_iter().map(|(_, i)| i.clone()).collect()
    }

    fn drain_buffer(&mut self, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.syncing {
            return;
        }
        let buffered = std::mem::take(&mut r.buffer);
        for p in buffered {
            self.on_publication(room, p);
        }
    }

    /// Applies one publication: dedupe by offset, detect gaps, emit.
    fn on_publication(&mut self, room: &str, p: Arrival) {
        let Some(r) = self.rooms.get_mut(room) else {
            return; // a room we no longer follow
        };
        if r.syncing {
            if r.buffer.len() >= MAX_SYNC_BUFFER {
                self.end = Some(End::Protocol("room too far behind".into()));
                return;
            }
            // Held until the room's page arrives: a copy of its own, so the frame's read
            // buffer is not kept with it.
            r.buffer.push(Arrival {
                offset: p.offset,
                message: p.message.map(|m| m.detached()),
            });
            return;
        }
        if p.offset == 0 {
            self.error(
                "protocol",
                format!("publication without offset in room {room}"),
            );
            return;
        }
        if p.offset <= r.offset {
            return; // seen already (recovery overlap, reset overlap or a resent push)
        }
        if p.offset > r.offset + 1 {
            // A gap: reconnecting recovers the missed publications from our position.
            self.end = Some(End::Protocol(format!(
                "gap in room {room}: expected offset {}, got {}",
                r.offset + 1,
                p.offset
            )));
            return;
        }
        r.offset = p.offset;
        match p.message {
            Some(e) => self.outlet.emit(Event::Message(e)),
            None => self.error("protocol", format!("undecodable message in room {room}")),
        }
    }

    // ---------------------------------------------------------------- frames

    fn on_frame(&mut self, frame: &Utf8Bytes) {
        let lines = match decode_lines(frame, self.config.max_frame_bytes) {
            Ok(r) => r,
            Err(e) => {
                self.error("protocol", format!("malformed frame from the server: {e}"));
                self.end = Some(End::Protocol(e.to_string()));
                return;
            }
        };
        for line in lines {
            if self.end.is_some() {
                return;
            }
            match line {
                Line::Publication(push) => self.on_fast_publication(frame, push),
                Line::Reply(reply) => self.on_reply(*reply),
            }
        }
    }

    /// A publication push from a fast path: the same steps as `on_push` → `on_publication`.
    fn on_fast_publication(&mut self, frame: &Utf8Bytes, push: PubLine<'_>) {
        let Some(room) = room_id(&push.channel) else {
            tracing::debug!("publication outside a room ignored");
            return;
        };
        if !self.rooms.contains_key(room) {
            return; // a room we no longer follow
        }
        let arrival = Arrival {
            offset: push.publication.offset,
            message: Some(fast_entry(frame, room, push.publication)),
        };
        self.on_publication(room, arrival);
    }

    fn on_reply(&mut self, reply: Reply) {
        if reply.id == 0 {
            if reply.is_ping() {
                if self.answer_pings {
                    self.out.push(WireCommand::default());
                }
                return;
            }
            let Some(push) = reply.push else {
                self.error("protocol", "reply without id or push");
                self.end = Some(End::Protocol("reply without id or push".into()));
                return;
            };
            self.on_push(push);
            return;
        }
        let Some(pending) = self.pending.remove(&reply.id) else {
            tracing::debug!(id = reply.id, "reply to an unknown command");
            return;
        };
        match pending {
            Pending::Subscribe(room) => self.on_subscribed(&room, reply),
            Pending::Reset(room) => self.on_reset(&room, reply),
            Pending::Publish(id) => self.on_published(id, reply),
            Pending::Older { room, reply: tx } => {
                let r = match (reply.error, reply.history) {
                    (Some(e), _) => Err(server_error(&e)),
                    (None, Some(h)) => {
                        let mut pubs = h.publications;
                        pubs.reverse();
                        Ok(RoomPage {
                            has_older: pubs.first().is_some_and(|p| p.offset > 1),
                            messages: pubs.iter().filter_map(|p| entry(&room, p)).collect(),
                            room,
                        })
                    }
                    (None, None) => Err(Error::Protocol("history reply without result".into())),
                };
                let _ = tx.send(r);
            }
            Pending::Rpc(tx) => {
                let r = match (reply.error, reply.rpc) {
                    (Some(e), _) => Err(server_error(&e)),
                    (None, Some(rpc)) => Ok(rpc.data.unwrap_or(Value::Null)),
                    (None, None) => Err(Error::Protocol("rpc reply without result".into())),
                };
                let _ = tx.send(r);
            }
            Pending::Refresh { retried } => match (reply.error, reply.refresh) {
                (None, Some(res)) => {
                    self.refresh_in_flight = false;
                    self.schedule_refresh(res.expires, res.ttl);
                }
                (Some(e), _) if e.code == ErrorCode::TOKEN_EXPIRED && !retried => {
                    // The source handed out a token the server finds expired: ask for a new one.
                    self.refresh_in_flight = false;
                    self.start_refresh(true);
                }
                (Some(e), _) => {
                    self.refresh_in_flight = false;
                    self.error("server", format!("token refresh refused: {}", e.message));
                    self.end = Some(End::TokenRejected);
                }
                (None, None) => {
                    self.refresh_in_flight = false;
                    self.end = Some(End::Protocol("refresh reply without result".into()));
                }
            },
        }
    }

    fn on_push(&mut self, push: confab_protocol::Push) {
        if let Some(d) = push.disconnect {
            let code = u16::try_from(d.code).ok();
            self.end = Some(End::Closed {
                code,
                reason: d.reason,
            });
            return;
        }
        let room = room_id(&push.channel).map(str::to_owned);
        if let Some(p) = push.publication {
            match room {
                Some(room) => {
                    let a = Arrival::of(&room, &p);
                    self.on_publication(&room, a);
                }
                None => tracing::debug!("publication outside a room ignored"),
            }
            return;
        }
        if push.unsubscribe.is_some() {
            if let Some(room) = room.filter(|r| self.rooms.contains_key(r)) {
                self.subscribe(&room); // resubscribe with recovery
            }
            return;
        }
        if push.join.is_some() || push.leave.is_some() || push.message.is_some() {
            return; // not used by the chat UI
        }
        self.error("protocol", "unknown push type from the server");
        self.end = Some(End::Protocol("unknown push type".into()));
    }

    fn on_published(&mut self, id: Uuid, reply: Reply) {
        self.in_flight.remove(&id);
        self.settle_publish(id, reply);
        if self.end.is_none() {
            self.flush_outbox(); // keep the pipeline full
        }
    }

    fn settle_publish(&mut self, id: Uuid, reply: Reply) {
        let Some((seq, item)) = self.items.get(&id).map(|(s, i)| (*s, i.clone())) else {
            return;
        };
        match (reply.error, reply.publish) {
            (None, Some(res)) => {
                if let Err(e) = self.remover.remove(id) {
                    // It stays in the outbox file and is re-published (and deduplicated by the
                    // server) after a restart; nothing is lost.
                    self.error("outbox", format!("cannot remove acknowledged message: {e}"));
                }
                self.items.remove(&id);
                self.outlet.emit(Event::MessageState {
                    id,
                    room: item.room,
                    state: SendState::Sent { offset: res.offset },
                });
            }
            (Some(e), _) if e.temporary || e.code == ErrorCode::INTERNAL => {
                self.queue.insert(seq, id);
                self.publish_retry_at = Some(Instant::now() + PUBLISH_RETRY);
            }
            (Some(e), _) => {
                if let Err(err) = self.outbox.mark_failed(id, &e.message) {
                    self.error("outbox", format!("cannot mark message failed: {err}"));
                }
                if let Some((_, i)) = self.items.get_mut(&id) {
                    i.failed = Some(e.message.clone());
                }
                self.outlet.emit(Event::MessageState {
                    id,
                    room: item.room,
                    state: SendState::Failed { reason: e.message },
                });
            }
            (None, None) => {
                self.queue.insert(seq, id);
                self.end = Some(End::Protocol("publish reply without result".into()));
            }
        }
    }

    fn on_disconnected(&mut self) {
        for id in std::mem::take(&mut self.in_flight) {
            if let Some((seq, _)) = self.items.get(&id) {
                self.queue.insert(*seq, id);
            }
        }
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Rpc(tx) => {
                    let _ = tx.send(Err(Error::ConnectionLost));
                }
                Pending::Older { reply, .. } => {
                    let _ = reply.send(Err(Error::ConnectionLost));
                }
                _ => {}
            }
        }
        for r in self.rooms.values_mut() {
            r.subscribed = false;
            r.syncing = false;
            r.buffer.clear();
        }
        self.out.clear();
        self.refresh_at = None;
        self.dead_at = None;
        self.publish_retry_at = None;
        self.refresh_in_flight = false;
        while self.internal_rx.try_recv().is_ok() {}
    }
}

enum Failure {
    SignedOut,
    TokenExpired,
    Terminal(u16, String),
    Retry(String),
    /// The TLS handshake failed (retried like `Retry`, and told to the user).
    Tls(String),
}

/// Dials, authenticates and waits for the `connect` reply, within the connect timeout.
async fn establish(
    connector: Arc<dyn Connector>,
    source: Arc<dyn TokenSource>,
    config: RelayConfig,
    use_rejected: bool,
) -> std::result::Result<(Connection, confab_protocol::ConnectResult), Failure> {
    let token = if use_rejected {
        source.rejected().await
    } else {
        source.token().await
    };
    let token = match token {
        Ok(t) => t,
        Err(TokenError::SignedOut) => return Err(Failure::SignedOut),
        Err(TokenError::Unavailable(why)) => return Err(Failure::Retry(why)),
    };
    let attempt = async {
        let mut conn = connector
            .connect(&config.url, config.max_frame_bytes)
            .await
            .map_err(|e| {
                if e.is_tls() {
                    Failure::Tls(e.0)
                } else {
                    Failure::Retry(e.0)
                }
            })?;
        let cmd = WireCommand {
            id: 1,
            connect: Some(ConnectRequest {
                token,
                name: config.client_name.clone(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..ConnectRequest::default()
            }),
            ..WireCommand::default()
        };
        let text = serde_json::to_string(&cmd).map_err(|e| Failure::Retry(e.to_string()))?;
        conn.sink
            .send(text)
            .await
            .map_err(|e| Failure::Retry(e.0))?;
        loop {
            match conn.stream.next().await {
                Some(Ok(Inbound::Text(text))) => {
                    let replies = decode_replies(text.as_bytes(), config.max_frame_bytes)
                        .map_err(|e| Failure::Retry(format!("malformed connect reply: {e}")))?;
                    for r in replies {
                        if r.id != 1 {
                            continue;
                        }
                        if let Some(e) = r.error {
                            return Err(if e.code == ErrorCode::TOKEN_EXPIRED {
                                Failure::TokenExpired
                            } else {
                                Failure::Retry(format!("connect refused: {}", e.message))
                            });
                        }
                        return match r.connect {
                            Some(res) => Ok((conn, res)),
                            None => Err(Failure::Retry("connect reply without result".into())),
                        };
                    }
                }
                Some(Ok(Inbound::Closed { code, reason })) => {
                    return Err(match code {
                        Some(c) if is_terminal(c) => Failure::Terminal(c, reason),
                        _ => Failure::Retry(format!("closed during connect: {code:?} {reason}")),
                    });
                }
                Some(Err(e)) => return Err(Failure::Retry(e.0)),
                None => return Err(Failure::Retry("connection ended during connect".into())),
            }
        }
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Retry("connect timed out".into())),
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    const PUSH: &str = r#"{"push":{"channel":"room:r","pub":{"data":{"id":"00000000-0000-0000-0000-000000000001","author":"alice","text":"hi \"there\"","ts":5},"info":{"user":"alice","client":"c"},"offset":7,"time":9}}}"#;

    #[test]
    fn publication_pushes_take_the_fast_path_with_the_generic_meaning() {
        let lines = decode_lines(PUSH, 1 << 16)
            .expect("a valid push decodes")
            .collect::<Vec<_>>();
        let [Line::Publication(p)] = lines.as_slice() else {
            panic!("a plain publication push takes the typed fast path");
        };
        let generic = decode_replies(PUSH.as_bytes(), 1 << 16).expect("generic decode");
        let gp = generic[0]
            .push
            .as_ref()
            .and_then(|p| p.publication.as_ref())
            .expect("generic publication");
        let expected = entry("r", gp).expect("generic chat message");
        assert_eq!(
            (
                p.publication.offset,
                p.publication.id,
                &*p.publication.author
            ),
            (expected.offset, expected.id, expected.author()),
            "the fast path reads the same offset, id and author as the generic path"
        );
        assert_eq!(
            p.publication.text,
            expected.text(),
            "escaped text is unescaped the same way"
        );
    }

    #[test]
    fn anything_unusual_goes_the_generic_way_or_fails_the_frame_as_before() {
        let extra_key = PUSH.replacen(r#"{"push""#, r#"{"id":0,"push""#, 1);
        let lines = decode_lines(&extra_key, 1 << 16)
            .expect("still a valid reply")
            .collect::<Vec<_>>();
        assert!(
            matches!(lines.as_slice(), [Line::Reply(_)]),
            "a line with other keys is decoded generically"
        );
        let not_chat = PUSH.replace(r#""ts":5"#, r#""ts":"five""#);
        assert!(
            matches!(
                decode_lines(&not_chat, 1 << 16)
                    .expect("valid reply")
                    .collect::<Vec<_>>()
                    .as_slice(),
                [Line::Reply(_)]
            ),
            "data that is not a chat message goes the generic way (undecodable-message error)"
        );
        let bad_info = PUSH.replace(r#""info":{"user":"alice","client":"c"}"#, r#""info":5"#);
        assert!(
            decode_lines(&bad_info, 1 << 16).is_err(),
            "a publication the generic decoder rejects still fails the whole frame"
        );
        let mixed = format!("{PUSH}\nnot json");
        assert!(
            decode_lines(&mixed, 1 << 16).is_err(),
            "one invalid line fails the frame before anything in it is applied"
        );
        assert!(
            matches!(decode_lines(PUSH, 10), Err(FrameError::TooLarge { .. })),
            "the frame size limit applies first"
        );
    }

    #[test]
    fn a_frame_splits_into_lines_at_newlines_skipping_blank_ones() {
        let frame = format!("{PUSH}\n\n  {{}}\r\n{PUSH}\n");
        let lines = decode_lines(&frame, 1 << 16)
            .expect("three lines and blanks")
            .collect::<Vec<_>>();
        assert!(
            matches!(
                lines.as_slice(),
                [Line::Publication(_), Line::Reply(_), Line::Publication(_)]
            ),
            "every non-blank line is decoded, in order, with surrounding whitespace trimmed"
        );
        let bad = format!("{PUSH}\n\nnot json\n{PUSH}");
        assert!(
            matches!(
                decode_lines(&bad, 1 << 16),
                Err(FrameError::InvalidJson { line: 3, .. })
            ),
            "the error names the invalid line, counting blank ones"
        );
        assert!(
            matches!(decode_lines("\n \n", 1 << 16), Err(FrameError::Empty)),
            "a frame of blank lines is empty"
        );
    }
}
