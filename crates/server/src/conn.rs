//! One WebSocket connection: decodes frames, runs commands in order, writes replies and
//! pushes, sends pings, enforces expiry and limits.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use confab_protocol::{
    decode_commands, room_channel, room_id, ChatMessage, ClientInfo, Command, CommandError,
    ConnectRequest, ConnectResult, Disconnect, Empty, ErrorCode, ErrorReply, FrameError,
    HistoryRequest, HistoryResult, Incoming, PresenceResult, PresenceStatsResult, RefreshRequest,
    RefreshResult, Reply, Request, RpcResult, SendMessage, SubscribeRequest, SubscribeResult,
    SEND_METHOD,
};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::{ttl_secs, unix_now_ms, AuthError};
use crate::hub::Line;
use crate::writer::{Job, PublishJob, SubscribeJob};
use crate::AppState;

/// Server version reported in connect results.
pub const SERVER_VERSION: &str = concat!("confab-server ", env!("CARGO_PKG_VERSION"));

/// Outcome of handling a command that ends the connection.
type Outcome<T> = std::result::Result<T, Disconnect>;

struct Session {
    user: String,
    /// Display name from the token (written into the messages this connection sends).
    name: Option<String>,
    info: ClientInfo,
    /// Disconnect at this instant unless refreshed (token expiry + grace).
    expires_at: Option<Instant>,
}

/// Token bucket of one connection's commands. A command over the rate is not refused (as
/// Centrifugo has no such limit, SDKs do not retry a 111): it waits for its token, and the
/// connection reads no further frame meanwhile, so a flooding client slows only itself.
struct RateLimiter {
    capacity: f64,
    tokens: f64,
    per_sec: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(per_sec: u32, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            capacity,
            tokens: capacity,
            per_sec: f64::from(per_sec.max(1)),
            last: Instant::now(),
        }
    }

    /// Takes a token, or tells when the next one will be there.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }
}

/// Commands of a backlog run in one turn of the connection's loop; between turns it writes
/// what is queued for it, so a frame of many commands does not hold up its pushes.
const COMMANDS_PER_TURN: usize = 32;

/// A publish reply that arrives once the writer has committed the publication.
struct Acked {
    id: u32,
    rx: oneshot::Receiver<Reply>,
    /// Answer as the `messages.send` RPC (its result is [`confab_protocol::Sent`]) rather than
    /// as a `publish`.
    as_rpc: bool,
}

impl Future for Acked {
    type Output = Reply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let (id, as_rpc) = (self.id, self.as_rpc);
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            let reply = r.unwrap_or_else(|_| err(id, ErrorCode::INTERNAL));
            if as_rpc {
                publish_as_rpc(reply)
            } else {
                reply
            }
        })
    }
}

/// A publish reply turned into the reply of `messages.send`: `{offset, epoch}`.
fn publish_as_rpc(reply: Reply) -> Reply {
    match reply.publish {
        Some(p) => Reply {
            id: reply.id,
            rpc: Some(RpcResult {
                data: serde_json::to_value(confab_protocol::Sent {
                    offset: p.offset,
                    epoch: p.epoch,
                })
                .ok(),
            }),
            ..Reply::default()
        },
        None => reply,
    }
}

/// How long a server-side disconnect waits for publishes already handed to the writer, so
/// their acknowledgements still reach the client before the close frame.
const SETTLE_ON_CLOSE: Duration = Duration::from_secs(2);

struct Conn {
    state: AppState,
    client: String,
    session: Option<Session>,
    /// Publishes handed to the writer, in command order. Consecutive publishes are pipelined
    /// (the writer commits them together); any other command first waits for these.
    inflight: FuturesOrdered<Acked>,
    subs: HashSet<String>,
    limiter: RateLimiter,
    /// Commands of the frames read so far not run yet: they wait for the rate limiter, until
    /// `not_before`. No further frame is read while any wait.
    backlog: VecDeque<Result<Incoming, CommandError>>,
    not_before: Instant,
    connect_deadline: Instant,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
}

fn err(id: u32, code: u32) -> Reply {
    Reply::error(id, ErrorReply::from_code(code))
}

fn err_msg(id: u32, code: u32, message: &str) -> Reply {
    Reply::error(id, ErrorReply::with_message(code, message))
}

/// Serves one upgraded socket until it closes.
pub async fn serve_socket(
    socket: WebSocket,
    state: AppState,
    client: String,
    peer: std::net::IpAddr,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Line>(state.config.client_queue_len);
    let (kill_tx, mut kill_rx) = watch::channel::<Option<Disconnect>>(None);
    if let Err(refused) = state.hub.open(&client, Some(peer), tx, kill_tx) {
        let d = if state.hub_shutting_down() {
            Disconnect::SHUTDOWN
        } else {
            tracing::warn!(?refused, "connection refused");
            Disconnect::CONNECTION_LIMIT
        };
        close(&mut sink, &mut stream, d).await;
        return;
    }
    let mut conn = Conn {
        client: client.clone(),
        session: None,
        inflight: FuturesOrdered::new(),
        subs: HashSet::new(),
        limiter: RateLimiter::new(
            state.config.commands_per_second,
            state.config.commands_burst,
        ),
        backlog: VecDeque::new(),
        not_before: Instant::now(),
        connect_deadline: Instant::now() + Duration::from_secs(state.config.connect_timeout_secs),
        next_ping: None,
        pong_deadline: None,
        state: state.clone(),
    };
    let disconnect: Option<Disconnect> = loop {
        let deadline = conn.next_deadline();
        tokio::select! {
            biased;
            changed = kill_rx.changed() => {
                match changed {
                    Ok(()) => {
                        let d = *kill_rx.borrow();
                        if let Some(d) = d {
                            break Some(d);
                        }
                    }
                    Err(_) => break Some(Disconnect::SHUTDOWN),
                }
            }
            msg = stream.next(), if conn.backlog.is_empty() => {
                let bytes = match msg {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Err(e)) => break transport_disconnect(&e),
                    Some(Ok(Message::Text(t))) => t.as_str().as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(_)) => continue,
                };
                match conn.handle_frame(&bytes).await {
                    Ok(replies) => {
                        if !replies.is_empty() && write_replies(&mut sink, &replies, conn.state.config.max_frame_bytes).await.is_err() {
                            break None;
                        }
                    }
                    Err((replies, d)) => {
                        let _ = write_replies(&mut sink, &replies, conn.state.config.max_frame_bytes).await;
                        break Some(d);
                    }
                }
            }
            Some(first) = conn.inflight.next(), if !conn.inflight.is_empty() => {
                let mut replies = vec![first];
                while let Some(Some(r)) = conn.inflight.next().now_or_never() {
                    replies.push(r);
                }
                if write_replies(&mut sink, &replies, conn.state.config.max_frame_bytes).await.is_err() {
                    break None;
                }
            }
            Some(line) = rx.recv() => {
                let mut lines = vec![line];
                while lines.len() < 256 {
                    match rx.try_recv() {
                        Ok(l) => lines.push(l),
                        Err(_) => break,
                    }
                }
                if write_lines(&mut sink, &lines, conn.state.config.max_frame_bytes).await.is_err() {
                    break None;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                match conn.on_timer() {
                    Ok(true) => {
                        if write_lines(&mut sink, &[Line::from("{}")], usize::MAX).await.is_err() {
                            break None;
                        }
                    }
                    Ok(false) => {}
                    Err(d) => break Some(d),
                }
            }
            // Last: pushes, acknowledgements and pings go out between turns of the backlog.
            () = tokio::time::sleep_until(conn.not_before), if !conn.backlog.is_empty() => {
                match conn.run_backlog().await {
                    Ok(replies) => {
                        if !replies.is_empty() && write_replies(&mut sink, &replies, conn.state.config.max_frame_bytes).await.is_err() {
                            break None;
                        }
                    }
                    Err((replies, d)) => {
                        let _ = write_replies(&mut sink, &replies, conn.state.config.max_frame_bytes).await;
                        break Some(d);
                    }
                }
            }
        }
    };
    state.hub.close(&client);
    if let Some(d) = disconnect {
        tracing::info!(code = d.code, reason = d.reason, "disconnecting");
        if !conn.inflight.is_empty() {
            let max = conn.state.config.max_frame_bytes;
            let _ = tokio::time::timeout(SETTLE_ON_CLOSE, async {
                let replies: Vec<Reply> = conn.inflight.by_ref().collect().await;
                write_replies(&mut sink, &replies, max).await
            })
            .await;
        }
        close(&mut sink, &mut stream, d).await;
    } else {
        tracing::debug!("connection closed by client");
    }
}

/// The close to send for a read error the client caused: a message over the transport limit
/// (`max_frame_bytes`) is 3501 like any oversize frame, text that is not UTF-8 is 1007 (RFC
/// 6455 §7.4.1); anything else (the socket is gone) gets no close frame. The WebSocket layer's
/// error is only available as text (axum hides its type).
fn transport_disconnect(e: &axum::Error) -> Option<Disconnect> {
    let text = e.to_string();
    if text.contains("Space limit exceeded") || text.contains("too long") {
        tracing::info!("frame over the transport limit");
        Some(FRAME_TOO_LARGE)
    } else if text.contains("UTF-8") {
        tracing::info!("text frame that is not UTF-8");
        Some(Disconnect::new(1007, "invalid UTF-8 in a text frame"))
    } else {
        tracing::debug!(error = %e, "socket read failed");
        None
    }
}

/// The close for any frame over `max_frame_bytes`.
const FRAME_TOO_LARGE: Disconnect =
    Disconnect::new(Disconnect::BAD_REQUEST.code, "bad request: frame too large");

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

async fn close(sink: &mut Sink, stream: &mut Stream, d: Disconnect) {
    let frame = CloseFrame {
        code: d.code,
        reason: d.reason.into(),
    };
    let sent = tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    // Give the client a moment to answer the close handshake, then drop the socket.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn write_replies(sink: &mut Sink, replies: &[Reply], max: usize) -> Result<(), axum::Error> {
    let lines: Vec<Line> = replies
        .iter()
        .map(|r| Arc::from(serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned())))
        .collect();
    write_lines(sink, &lines, max).await
}

/// A peer that accepts no data for this long is dropped, so a stalled reader cannot pin its
/// connection task (its queue overflowing has already asked it to go with 3008 slow).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

async fn write_lines(sink: &mut Sink, lines: &[Line], max: usize) -> Result<(), axum::Error> {
    match tokio::time::timeout(WRITE_TIMEOUT, write_lines_now(sink, lines, max)).await {
        Ok(r) => r,
        Err(_) => Err(axum::Error::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        ))),
    }
}

async fn write_lines_now(sink: &mut Sink, lines: &[Line], max: usize) -> Result<(), axum::Error> {
    let mut frame = String::new();
    for line in lines {
        if !frame.is_empty() && frame.len() + 1 + line.len() > max {
            sink.feed(Message::Text(std::mem::take(&mut frame).into()))
                .await?;
        }
        if !frame.is_empty() {
            frame.push('\n');
        }
        frame.push_str(line);
    }
    if !frame.is_empty() {
        sink.feed(Message::Text(frame.into())).await?;
    }
    sink.flush().await
}

impl Conn {
    fn next_deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut d = far;
        if self.session.is_none() {
            d = d.min(self.connect_deadline);
        } else {
            if let Some(t) = self.next_ping {
                d = d.min(t);
            }
            if let Some(t) = self.pong_deadline {
                d = d.min(t);
            }
            if let Some(t) = self.session.as_ref().and_then(|s| s.expires_at) {
                d = d.min(t);
            }
        }
        d
    }

    /// Ok(true) = send a ping now.
    fn on_timer(&mut self) -> Outcome<bool> {
        let now = Instant::now();
        let Some(session) = &self.session else {
            return if now >= self.connect_deadline {
                Err(Disconnect::STALE)
            } else {
                Ok(false)
            };
        };
        if session.expires_at.is_some_and(|t| now >= t) {
            return Err(Disconnect::EXPIRED);
        }
        if !self.backlog.is_empty() {
            // Commands still waiting their turn prove the peer alive; its pong is behind them.
            self.pong_deadline = None;
        }
        if self.pong_deadline.is_some_and(|t| now >= t) {
            return Err(Disconnect::NO_PONG);
        }
        if let (Some(t), Some(interval)) = (self.next_ping, self.state.config.ping_interval()) {
            if now >= t {
                self.next_ping = Some(now + interval);
                if self.pong_deadline.is_none() {
                    self.pong_deadline =
                        Some(now + Duration::from_secs(self.state.config.pong_timeout_secs));
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Replies to write, or (replies to write first, disconnect).
    async fn handle_frame(&mut self, bytes: &[u8]) -> Result<Vec<Reply>, (Vec<Reply>, Disconnect)> {
        let commands = match decode_commands(bytes, self.state.config.max_frame_bytes) {
            Ok(c) => c,
            Err(FrameError::TooLarge { size, max }) => {
                tracing::info!(size, max, "frame too large");
                return Err((Vec::new(), FRAME_TOO_LARGE));
            }
            Err(e) => {
                tracing::info!(error = ?e, "malformed frame");
                return Err((Vec::new(), Disconnect::BAD_REQUEST));
            }
        };
        // Any frame proves the peer is alive.
        self.pong_deadline = None;
        self.backlog
            .extend(commands.into_iter().map(Command::into_incoming));
        self.run_backlog().await
    }

    /// Runs the backlog's commands in order while the rate limiter lets them, at most
    /// [`COMMANDS_PER_TURN`] at a time; the rest wait for `not_before`. Answers to a ping
    /// (`{}`) are free.
    async fn run_backlog(&mut self) -> Result<Vec<Reply>, (Vec<Reply>, Disconnect)> {
        let mut replies = Vec::new();
        let mut ran = 0;
        while let Some(next) = self.backlog.front() {
            if ran == COMMANDS_PER_TURN {
                // The connection's pushes go out before its next turn.
                self.not_before = Instant::now();
                break;
            }
            ran += 1;
            if matches!(next, Ok(Incoming::Request { .. })) {
                if let Err(at) = self.limiter.take(Instant::now()) {
                    self.not_before = at;
                    break;
                }
            }
            let Some(incoming) = self.backlog.pop_front() else {
                break;
            };
            match self.handle_command(incoming, &mut replies).await {
                Ok(Some(r)) => replies.push(r),
                Ok(None) => {}
                Err(d) => return Err((replies, d)),
            }
        }
        Ok(replies)
    }

    /// Waits for the pipelined publishes and appends their replies (command order).
    async fn settle_inflight(&mut self, replies: &mut Vec<Reply>) {
        while let Some(r) = self.inflight.next().await {
            replies.push(r);
        }
    }

    /// Handles one command. A publish is handed to the writer and answered later (through
    /// `inflight`); every other command first waits for earlier publishes, so it sees them.
    async fn handle_command(
        &mut self,
        incoming: Result<Incoming, CommandError>,
        replies: &mut Vec<Reply>,
    ) -> Outcome<Option<Reply>> {
        let incoming = incoming.map_err(|e| {
            tracing::info!(error = ?e, "invalid command");
            Disconnect::BAD_REQUEST
        })?;
        let (id, request) = match incoming {
            Incoming::Pong => return Ok(None),
            Incoming::Request { id, request } => (id, request),
        };
        let pipelined = match &request {
            Request::Publish(_) => true,
            Request::Rpc(r) => r.method == SEND_METHOD,
            _ => false,
        };
        if !pipelined {
            self.settle_inflight(replies).await;
        }
        if self.session.is_none() {
            return match request {
                Request::Connect(req) => self.connect(id, req).await.map(Some),
                _ => {
                    tracing::info!("command before connect");
                    Err(Disconnect::BAD_REQUEST)
                }
            };
        }
        let reply = match request {
            Request::Connect(_) => {
                tracing::info!("second connect on one connection");
                return Err(Disconnect::BAD_REQUEST);
            }
            Request::Refresh(req) => self.refresh(id, req).await?,
            Request::Subscribe(req) => self.subscribe(id, req).await,
            Request::Unsubscribe(req) => {
                if self.subs.remove(&req.channel) {
                    self.state.hub.unsubscribe(&req.channel, &self.client);
                }
                Reply {
                    id,
                    unsubscribe: Some(Empty {}),
                    ..Reply::default()
                }
            }
            Request::Publish(req) => {
                let message = serde_json::from_value::<ChatMessage>(req.data).ok();
                return Ok(self.publish(id, req.channel, message, false).await);
            }
            Request::Rpc(req) if req.method == SEND_METHOD => {
                let Some(args) = req
                    .data
                    .and_then(|d| serde_json::from_value::<SendMessage>(d).ok())
                else {
                    return Ok(Some(err_msg(
                        id,
                        ErrorCode::BAD_REQUEST,
                        "bad request: messages.send takes {room, id, text, ts}",
                    )));
                };
                let message = ChatMessage {
                    id: args.id,
                    author: String::new(),
                    name: None,
                    text: args.text,
                    ts: args.ts,
                };
                return Ok(self
                    .publish(id, room_channel(&args.room), Some(message), true)
                    .await);
            }
            Request::History(req) => self.history(id, req).await,
            Request::Presence(req) => match self.check_room_access(&req.channel).await {
                Err(code) => err(id, code),
                Ok(()) => Reply {
                    id,
                    presence: Some(PresenceResult {
                        presence: self.state.hub.presence(&req.channel),
                    }),
                    ..Reply::default()
                },
            },
            Request::PresenceStats(req) => match self.check_room_access(&req.channel).await {
                Err(code) => err(id, code),
                Ok(()) => {
                    let p = self.state.hub.presence(&req.channel);
                    let users: HashSet<&str> = p.values().map(|i| i.user.as_str()).collect();
                    Reply {
                        id,
                        presence_stats: Some(PresenceStatsResult {
                            num_clients: u32::try_from(p.len()).unwrap_or(u32::MAX),
                            num_users: u32::try_from(users.len()).unwrap_or(u32::MAX),
                        }),
                        ..Reply::default()
                    }
                }
            },
            Request::Rpc(req) => {
                let user = self.user().to_owned();
                crate::rpc::handle(&self.state, &user, id, req).await
            }
            Request::Send(_) => {
                tracing::debug!("async message ignored: no message handler");
                return Ok(None);
            }
            Request::Ping => Reply {
                id,
                ping: Some(Empty {}),
                ..Reply::default()
            },
            Request::SubRefresh(_) => err_msg(
                id,
                ErrorCode::NOT_AVAILABLE,
                "not available: subscription tokens are not used",
            ),
        };
        Ok(Some(reply))
    }

    fn user(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.user.as_str())
            .unwrap_or_default()
    }

    fn expiry_instant(&self, expires_at: u64) -> Instant {
        let now_ms = unix_now_ms();
        let exp_ms = i64::try_from(expires_at)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(1000);
        // The token is valid by this server's own check until exp + leeway; the close delay
        // is the grace for a refresh in flight after that.
        let delay = u64::try_from(exp_ms.saturating_sub(now_ms)).unwrap_or(0)
            + self.state.config.token_leeway_secs.saturating_mul(1000)
            + self.state.config.expired_close_delay_ms;
        Instant::now() + Duration::from_millis(delay)
    }

    async fn connect(&mut self, id: u32, req: ConnectRequest) -> Outcome<Reply> {
        if req.token.is_empty() {
            tracing::info!("connect without token");
            return Err(Disconnect::INVALID_TOKEN);
        }
        let identity = match self
            .state
            .verify_connection_token(req.token.expose_secret())
            .await
        {
            Ok(i) => i,
            Err(AuthError::Expired) => {
                tracing::info!("connect with expired token");
                return Ok(err(id, ErrorCode::TOKEN_EXPIRED));
            }
            Err(AuthError::KeysUnavailable) => return Ok(err(id, ErrorCode::INTERNAL)),
            Err(AuthError::Invalid(why)) => {
                tracing::info!(why, "connect with invalid token");
                return Err(Disconnect::INVALID_TOKEN);
            }
        };
        if let Err(a) = self.state.hub.authenticate(&self.client, &identity.user) {
            tracing::info!(user = ?identity.user, ?a, "connection limit");
            return Err(Disconnect::CONNECTION_LIMIT);
        }
        // Default rooms are open: every user is a member from the first connect on.
        let store = self.state.store.clone();
        let (rooms, user) = (
            self.state.config.default_rooms.clone(),
            identity.user.clone(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            rooms
                .iter()
                .try_for_each(|r| store.join_room(r, &user).map(|_| ()))
        })
        .await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("cannot add user to default rooms");
            return Ok(err(id, ErrorCode::INTERNAL));
        }
        let ttl = ttl_secs(identity.expires_at);
        tracing::info!(user = ?identity.user, ttl, "connected");
        self.session = Some(Session {
            info: ClientInfo {
                user: identity.user.clone(),
                client: self.client.clone(),
                ..ClientInfo::default()
            },
            user: identity.user,
            name: identity.name,
            expires_at: Some(self.expiry_instant(identity.expires_at)),
        });
        let ping = self.state.config.ping_interval();
        self.next_ping = ping.map(|p| Instant::now() + p);
        Ok(Reply {
            id,
            connect: Some(ConnectResult {
                client: self.client.clone(),
                version: SERVER_VERSION.to_owned(),
                expires: true,
                ttl,
                ping: ping
                    .map(|p| u32::try_from(p.as_secs()).unwrap_or(u32::MAX))
                    .unwrap_or(0),
                pong: ping.is_some(),
                ..ConnectResult::default()
            }),
            ..Reply::default()
        })
    }

    async fn refresh(&mut self, id: u32, req: RefreshRequest) -> Outcome<Reply> {
        let identity = match self
            .state
            .verify_connection_token(req.token.expose_secret())
            .await
        {
            Ok(i) => i,
            Err(AuthError::Expired) => return Ok(err(id, ErrorCode::TOKEN_EXPIRED)),
            Err(AuthError::KeysUnavailable) => return Ok(err(id, ErrorCode::INTERNAL)),
            Err(AuthError::Invalid(why)) => {
                tracing::info!(why, "refresh with invalid token");
                return Err(Disconnect::INVALID_TOKEN);
            }
        };
        if identity.user != self.user() {
            tracing::info!("refresh token for another user");
            return Err(Disconnect::INVALID_TOKEN);
        }
        let at = self.expiry_instant(identity.expires_at);
        if let Some(s) = self.session.as_mut() {
            s.expires_at = Some(at);
        }
        let ttl = ttl_secs(identity.expires_at);
        tracing::debug!(ttl, "token refreshed");
        Ok(Reply {
            id,
            refresh: Some(RefreshResult {
                client: self.client.clone(),
                version: SERVER_VERSION.to_owned(),
                expires: true,
                ttl,
            }),
            ..Reply::default()
        })
    }

    /// 102 for a non-room, an unknown room or a private room of others, 103 for a non-member
    /// of a public room, 100 for storage errors.
    async fn check_room_access(&self, channel: &str) -> Result<(), u32> {
        self.state.room_access(channel, self.user()).await
    }

    async fn subscribe(&mut self, id: u32, req: SubscribeRequest) -> Reply {
        if room_id(&req.channel).is_none() {
            return err(id, ErrorCode::UNKNOWN_CHANNEL);
        }
        // Subscriptions the server ended (the user left or was removed) are gone from the hub.
        let (hub, client) = (&self.state.hub, &self.client);
        self.subs.retain(|c| hub.is_subscribed(c, client));
        if self.subs.contains(&req.channel) {
            return err(id, ErrorCode::ALREADY_SUBSCRIBED);
        }
        if self.subs.len() >= self.state.config.max_channels_per_connection {
            return err_msg(
                id,
                ErrorCode::LIMIT_EXCEEDED,
                "limit exceeded: channels per connection",
            );
        }
        if let Err(code) = self.check_room_access(&req.channel).await {
            return err(id, code);
        }
        let info = self
            .session
            .as_ref()
            .map(|s| s.info.clone())
            .unwrap_or_default();
        // Through the writer: the snapshot and the registration happen between two commits.
        let (tx, rx) = oneshot::channel();
        let job = Job::Subscribe(SubscribeJob {
            channel: req.channel.clone(),
            client: self.client.clone(),
            info,
            join_leave: req.join_leave,
            recover: req.recover,
            epoch: req.epoch.clone(),
            offset: req.offset,
            reply: tx,
        });
        let res = match self.state.writer.submit(job).await {
            Ok(()) => rx
                .await
                .map_err(|_| "the writer dropped the job".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        let (top, recovered, publications) = match res {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) => {
                tracing::debug!("subscribe finished after the connection closed");
                return err(id, ErrorCode::INTERNAL);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storage error");
                return err(id, ErrorCode::INTERNAL);
            }
            Err(e) => {
                tracing::error!(error = %e, "storage task failed");
                return err(id, ErrorCode::INTERNAL);
            }
        };
        tracing::info!(
            channel = %req.channel,
            recover = req.recover,
            recovered,
            missed = publications.len(),
            "subscribed"
        );
        self.subs.insert(req.channel.clone());
        Reply {
            id,
            subscribe: Some(SubscribeResult {
                recoverable: true,
                positioned: true,
                epoch: top.epoch,
                offset: top.offset,
                publications,
                recovered,
                was_recovering: req.recover,
                ..SubscribeResult::default()
            }),
            ..Reply::default()
        }
    }

    /// Hands a publish (or a `messages.send`, `as_rpc`) to the writer. `Some` is an immediate
    /// error reply; `None` means the reply follows through `inflight` once the publication is
    /// durable (or refused). `message` is `None` when the data was not a chat message.
    async fn publish(
        &mut self,
        id: u32,
        channel: String,
        message: Option<ChatMessage>,
        as_rpc: bool,
    ) -> Option<Reply> {
        let Some(room) = room_id(&channel).map(str::to_owned) else {
            return Some(err(id, ErrorCode::UNKNOWN_CHANNEL));
        };
        let user = self.user().to_owned();
        let name = self.session.as_ref().and_then(|s| s.name.clone());
        // The author and the name are the server's; invalid data is answered by the writer
        // after the access check (103 before 107).
        let message = message.map(|mut m| {
            m.author.clone_from(&user);
            m.name = name;
            m
        });
        let info = self
            .session
            .as_ref()
            .map(|s| s.info.clone())
            .unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        let job = Job::Publish(PublishJob {
            id,
            channel,
            room,
            user,
            info,
            message,
            time: unix_now_ms(),
            relay: false,
            reply: tx,
        });
        if let Err(e) = self.state.writer.submit(job).await {
            tracing::error!(error = %e, "storage task failed");
            return Some(err(id, ErrorCode::INTERNAL));
        }
        self.inflight.push_back(Acked { id, rx, as_rpc });
        None
    }

    async fn history(&mut self, id: u32, req: HistoryRequest) -> Reply {
        if let Err(code) = self.check_room_access(&req.channel).await {
            return err(id, code);
        }
        let cap = u64::try_from(self.state.config.history_size).unwrap_or(u64::MAX);
        let limit = match req.limit {
            0 => 0,
            n if n < 0 => cap,
            n => u64::try_from(n).unwrap_or(cap).min(cap),
        };
        tracing::info!(
            channel = %req.channel,
            limit,
            older = req.since.is_some(),
            "history page"
        );
        let store = self.state.store.clone();
        let channel = req.channel.clone();
        let res =
            tokio::task::spawn_blocking(move || -> crate::Result<Result<HistoryResult, u32>> {
                let top = store.top(&channel)?;
                let from = match &req.since {
                    Some(since) => {
                        // An empty epoch means the current one, as in Centrifugo.
                        let other_epoch = !since.epoch.is_empty() && since.epoch != top.epoch;
                        if other_epoch || since.offset > top.offset {
                            return Ok(Err(ErrorCode::UNRECOVERABLE_POSITION));
                        }
                        if !req.reverse
                            && since.offset < top.offset
                            && since.offset + 1 < top.oldest
                        {
                            return Ok(Err(ErrorCode::UNRECOVERABLE_POSITION));
                        }
                        Some(since.offset)
                    }
                    None => None,
                };
                let publications = if limit == 0 {
                    Vec::new()
                } else {
                    store.read(&channel, from, req.reverse, limit)?
                };
                Ok(Ok(HistoryResult {
                    publications,
                    epoch: top.epoch,
                    offset: top.offset,
                }))
            })
            .await;
        match res {
            Ok(Ok(Ok(h))) => Reply {
                id,
                history: Some(h),
                ..Reply::default()
            },
            Ok(Ok(Err(code))) => err(id, code),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storage error");
                err(id, ErrorCode::INTERNAL)
            }
            Err(e) => {
                tracing::error!(error = %e, "storage task failed");
                err(id, ErrorCode::INTERNAL)
            }
        }
    }
}

impl AppState {
    fn hub_shutting_down(&self) -> bool {
        self.shutdown.load(std::sync::atomic::Ordering::SeqCst)
    }
}
