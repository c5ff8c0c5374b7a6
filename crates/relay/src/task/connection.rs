//! The connect/reconnect loop: dial and authenticate, serve the connection, back off after it
//! ends (unless the network comes back), stop where the server or the token source says so.

use std::sync::Arc;

use confab_protocol::{
    decode_replies, Command as WireCommand, ConnectRequest, Disconnect, ErrorCode,
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Cmd, Core, End, Pending};
use crate::config::RelayConfig;
use crate::error::Error;
use crate::events::ConnectionState;
use crate::token::{TokenError, TokenSource};
use crate::transport::{Connection, Connector, Inbound};

fn is_terminal(code: u16) -> bool {
    !Disconnect::new(code, "").reconnect()
}

impl Core {
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
                    self.told_tls = None;
                    let up = Instant::now();
                    let end = self.serve(conn, result, &mut cmds).await;
                    // Only a connection that stayed up resets the backoff: one that dies soon
                    // after it is made (e.g. killed by a reply too large to read) must not
                    // reconnect at the shortest delay forever.
                    attempt = self.config.attempt_after_connection(attempt, up.elapsed());
                    end
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
            .connect(
                &config.url,
                config.max_read_bytes.max(config.max_frame_bytes),
            )
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
