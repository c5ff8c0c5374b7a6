//! One live connection: bursts of frames read, commands written, timers (ping watchdog,
//! token refresh, publish retry, stale rooms).

use std::time::Duration;

use confab_protocol::{encode_batches, Command as WireCommand, RefreshRequest};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Cmd, Core, End, Internal, Pending};
use crate::events::ConnectionState;
use crate::token::TokenError;
use crate::transport::{Connection, Inbound};

/// Frames sent to the server are batched up to this size (the server's default limit is 64 KiB).
const MAX_OUT_FRAME: usize = 60 * 1024;
/// How often stale rooms (events dropped for a slow UI) are checked for a reset.
const STALE_CHECK: Duration = Duration::from_millis(200);

/// Frames handled per wake-up of the connection loop before it looks at commands and timers
/// again (a burst of pushes is decoded without a round through `select!` per frame). A turn
/// also ends once its batch of events holds a quarter of the event stream's capacity
/// (`Outlet::batch_is_large`), so a burst is handed to the UI in
/// pieces it can take while the next one is decoded instead of overflowing the stream at once.
const FRAMES_PER_TURN: usize = 1024;

impl Core {
    pub(super) async fn serve(
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
                let ready = self.rooms.get(&room).is_some_and(|r| {
                    r.subscribed && !r.syncing && r.reset_after.is_none_or(|t| t <= now)
                });
                if ready {
                    self.start_reset(&room);
                } else if !self.rooms.contains_key(&room) {
                    self.outlet.stale_rooms.remove(&room);
                }
            }
        }
    }

    pub(super) fn schedule_refresh(&mut self, expires: bool, ttl: u32) {
        self.refresh_at = (expires && ttl > 0).then(|| {
            // Refresh at half the remaining lifetime, like the session layer: a slow token
            // source still has half the lifetime. If the source returns the same token, the
            // server's next ttl is shorter and the timer simply fires again sooner (floor 250 ms).
            let ttl_ms = u64::from(ttl) * 1000;
            Instant::now() + Duration::from_millis((ttl_ms / 2).max(250))
        });
    }

    pub(super) fn start_refresh(&mut self, rejected: bool) {
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
}
