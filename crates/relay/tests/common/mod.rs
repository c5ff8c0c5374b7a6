//! Shared helpers for the relay's integration tests: a token source backed by the real test
//! IdP, the real confab-server in-process (restartable on the same SQLite file), a TCP proxy
//! that cuts connections, a TLS-terminating proxy with a test CA, and an event collector that
//! builds each room's view.
#![allow(dead_code)]

pub mod pki;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_protocol::{ChatMessage, Token};
use confab_relay::{
    BoxFuture, ChatEntry, ConnectionState, Connector, Event, RelayConfig, RelayHandle, SendState,
    TokenError, TokenSource, WsConnector,
};
use confab_server::{Config, Server};
use confab_testkit::{Idp, IdpOptions};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

/// Polls `cond` every 20 ms until it holds or `within` passes; panics with `what` otherwise.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn start_idp(access_ttl: Duration) -> Arc<Idp> {
    Arc::new(
        Idp::start(IdpOptions {
            access_ttl,
            ..IdpOptions::default()
        })
        .await
        .expect("the test IdP starts (node and tests/idp/node_modules are required)"),
    )
}

// ------------------------------------------------------------------ tokens

struct Held {
    access: String,
    refresh: String,
    obtained: Instant,
    lifetime: Duration,
}

/// Access tokens from the real IdP: logs `user` in once, then refreshes (rotating the refresh
/// token) when less than half the lifetime is left, or when the server rejected the token.
pub struct IdpTokens {
    idp: Arc<Idp>,
    held: tokio::sync::Mutex<Held>,
    changes: watch::Sender<u64>,
    pub refreshes: AtomicU64,
    pub rejections: AtomicU64,
}

impl IdpTokens {
    pub async fn login(idp: Arc<Idp>, user: &str) -> Arc<Self> {
        let set = idp
            .login(user)
            .await
            .expect("headless login at the test IdP");
        let held = Held {
            access: set.access_token.clone(),
            refresh: set
                .refresh_token
                .clone()
                .expect("a refresh token is issued"),
            obtained: Instant::now(),
            lifetime: Duration::from_secs(set.expires_in.unwrap_or(300)),
        };
        Arc::new(Self {
            idp,
            held: tokio::sync::Mutex::new(held),
            changes: watch::channel(0).0,
            refreshes: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
        })
    }

    /// The current access token (for a raw client).
    pub async fn current(&self) -> String {
        self.held.lock().await.access.clone()
    }

    async fn get(&self, force: bool) -> Result<Token, TokenError> {
        let mut held = self.held.lock().await;
        let left = held.lifetime.saturating_sub(held.obtained.elapsed());
        if force || left < held.lifetime / 2 {
            let started = Instant::now();
            let set = self
                .idp
                .refresh(&held.refresh)
                .await
                .map_err(|e| TokenError::Unavailable(e.to_string()))?;
            held.access = set.access_token.clone();
            held.refresh = set
                .refresh_token
                .clone()
                .ok_or_else(|| TokenError::Unavailable("no refresh token".into()))?;
            held.obtained = started;
            held.lifetime = Duration::from_secs(set.expires_in.unwrap_or(300));
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(Token::new(held.access.clone()))
    }
}

impl TokenSource for IdpTokens {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(self.get(false))
    }
    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        self.rejections.fetch_add(1, Ordering::SeqCst);
        Box::pin(self.get(true))
    }
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changes.subscribe())
    }
}

// ------------------------------------------------------------------ server

/// Server config for tests: loopback, port 0, pings every `ping` s, strict token expiry, and
/// limits high enough for the load the tests generate.
pub fn server_config(idp: &Idp, db: &Path, ping: u64) -> Config {
    server_config_for(&idp.issuer_str(), db, ping)
}

/// [`server_config`] for tokens of any issuer (a backend minting chat tokens with its own key).
pub fn server_config_for(issuer: &str, db: &Path, ping: u64) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        issuer: issuer.trim_end_matches('/').to_owned(),
        db: db.to_owned(),
        ping_interval_secs: ping,
        expired_close_delay_ms: 0,
        token_leeway_secs: 0,
        jwks_refetch_interval_secs: 1,
        commands_per_second: 100_000,
        history_size: 100_000,
        client_queue_len: 100_000,
        ..Config::default()
    }
}

/// The real confab-server, in-process, restartable on the same database file.
pub struct TestServer {
    config: Config,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    pub addr: Option<SocketAddr>,
    pub starts: u32,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let mut s = Self {
            config,
            running: None,
            addr: None,
            starts: 0,
        };
        s.restart().await;
        s
    }

    pub fn db(&self) -> PathBuf {
        self.config.db.clone()
    }

    pub fn url(&self) -> String {
        format!(
            "ws://{}/connection/websocket",
            self.addr.expect("server is running")
        )
    }

    /// Starts it (again) on the same database; the port may change (use the proxy).
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Server::bind(self.config.clone())
            .await
            .expect("confab-server binds");
        self.addr = Some(server.local_addr().expect("bound address"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .run(
                    async move {
                        let _ = rx.await;
                    },
                    Duration::from_secs(1),
                )
                .await;
        });
        self.running = Some((tx, task));
        self.starts += 1;
    }

    /// Graceful stop (clients get 3001 and reconnect).
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.running.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self.addr = None;
    }

    /// The server's stored history of a room, in order: (offset, message id).
    pub fn history(&self, room: &str) -> Vec<(u64, Uuid)> {
        history_of(&self.config.db, room)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
    }
}

pub fn history_of(db: &Path, room: &str) -> Vec<(u64, Uuid)> {
    let store = confab_server::store::Store::open(db, 1_000_000).expect("open server store");
    store
        .read(&format!("room:{room}"), None, false, u64::MAX / 2)
        .expect("read history")
        .into_iter()
        .map(|p| {
            let m: ChatMessage = serde_json::from_value(p.data).expect("stored chat message");
            (p.offset, m.id)
        })
        .collect()
}

// ------------------------------------------------------------------ proxy

/// A TCP proxy in front of the server: clients keep one address while the server restarts,
/// and the test can cut every connection at once.
pub struct Proxy {
    pub addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
    pub accepted: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let (cut, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let (up, cut_tx, acc) = (upstream.clone(), cut.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let target = *up.lock().expect("proxy lock");
                let mut cut_rx = cut_tx.subscribe();
                tokio::spawn(async move {
                    let Some(target) = target else { return };
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            upstream,
            cut,
            task,
            accepted,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    pub fn set_upstream(&self, addr: Option<SocketAddr>) {
        *self.upstream.lock().expect("proxy lock") = addr;
    }

    /// Drops every proxied connection abruptly (no close frame).
    pub fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS-terminating proxy in front of the server: `wss://localhost:<port>` outside, with a
/// certificate from a test CA of its own, plain TCP to the server inside.
pub struct TlsProxy {
    pub addr: SocketAddr,
    pub pki: pki::TestPki,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let pki = pki::TestPki::new(&["localhost"]);
        let acceptor = pki.acceptor();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("TLS proxy binds");
        let addr = listener.local_addr().expect("TLS proxy address");
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return; // the client refused the certificate
                    };
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Self { addr, pki, task }
    }

    pub fn url(&self) -> String {
        format!("wss://localhost:{}/connection/websocket", self.addr.port())
    }

    /// A connector that trusts this proxy's CA (and nothing else).
    pub fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(WsConnector::with_root_certificates([self.pki.ca.clone()]).expect("test CA"))
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ------------------------------------------------------------------ client + events

/// What a client's UI would show, built from the relay's events.
#[derive(Default)]
pub struct View {
    /// Per room: messages in arrival order (a RoomReset replaces the list).
    pub rooms: BTreeMap<String, Vec<ChatEntry>>,
    /// Per room: whether the last reset said older messages exist.
    pub has_older: BTreeMap<String, bool>,
    /// Same (room, offset) delivered twice since the last reset.
    pub duplicates: Vec<(String, u64)>,
    /// A message arrived with an offset not above the previous one.
    pub out_of_order: Vec<(String, u64)>,
    pub states: HashMap<Uuid, SendState>,
    pub connection: Vec<ConnectionState>,
    pub errors: Vec<(String, String)>,
    pub resets: u64,
    /// RoomFailed events: room, message, retry_in, and when it arrived.
    pub failed: Vec<(String, String, Duration, std::time::Instant)>,
    /// RoomClosed events: room and reason.
    pub closed: Vec<(String, String)>,
    /// Per room: the stream position (epoch of the last reset, offset of the last message or
    /// reset), what an app saves to recover from after a restart.
    pub positions: BTreeMap<String, (String, u64)>,
}

impl View {
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::Message(m) => {
                let list = self.rooms.entry(m.room().to_owned()).or_default();
                if list.iter().any(|e| e.offset == m.offset) {
                    self.duplicates.push((m.room().to_owned(), m.offset));
                } else if list.last().is_some_and(|l| l.offset >= m.offset) {
                    self.out_of_order.push((m.room().to_owned(), m.offset));
                }
                if let Some(p) = self.positions.get_mut(m.room()) {
                    p.1 = p.1.max(m.offset);
                }
                list.push(m);
            }
            Event::RoomReset {
                room,
                messages,
                has_older,
                epoch,
                offset,
                ..
            } => {
                self.resets += 1;
                self.positions.insert(room.clone(), (epoch, offset));
                self.has_older.insert(room.clone(), has_older);
                self.rooms.insert(room, messages);
            }
            Event::MessageState { id, state, .. } => {
                self.states.insert(id, state);
            }
            Event::RoomFailed {
                room,
                message,
                retry_in,
            } => self
                .failed
                .push((room, message, retry_in, std::time::Instant::now())),
            Event::RoomClosed { room, reason } => self.closed.push((room, reason)),
            Event::ConnectionState(s) => self.connection.push(s),
            Event::Error { kind, message } => self.errors.push((kind, message)),
        }
    }

    pub fn connected(&self) -> bool {
        self.connection.last() == Some(&ConnectionState::Connected)
    }

    pub fn ids(&self, room: &str) -> Vec<(u64, Uuid)> {
        self.rooms
            .get(room)
            .map(|l| l.iter().map(|e| (e.offset, e.id)).collect())
            .unwrap_or_default()
    }
}

pub struct Client {
    pub relay: RelayHandle,
    pub view: Arc<Mutex<View>>,
    pub tokens: Arc<dyn TokenSource>,
}

/// Test relay config: fast backoff, short ping grace.
pub fn relay_config(url: &str, outbox: &Path) -> RelayConfig {
    RelayConfig::builder(url, outbox)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .ping_grace(Duration::from_secs(3))
        .connect_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(20))
        .event_capacity(8192)
        .build()
}

/// `owner` creates room `id`, `other` joins it, and both open it (each gets its page).
pub async fn shared_room(owner: &Client, other: &Client, id: &str) {
    owner
        .relay
        .create_room(id, Some(id), false)
        .await
        .unwrap_or_else(|e| panic!("create room {id}: {e}"));
    other
        .relay
        .join_room(id)
        .await
        .unwrap_or_else(|e| panic!("join room {id}: {e}"));
    for c in [owner, other] {
        c.relay
            .open_room(id)
            .await
            .unwrap_or_else(|e| panic!("open room {id}: {e}"));
    }
}

impl Client {
    pub fn start(config: RelayConfig, tokens: Arc<dyn TokenSource>) -> Self {
        Self::start_with(config, tokens, Arc::new(WsConnector::default()))
    }

    pub fn start_with(
        config: RelayConfig,
        tokens: Arc<dyn TokenSource>,
        connector: Arc<dyn Connector>,
    ) -> Self {
        let (relay, mut events) =
            RelayHandle::start_with(config, tokens.clone(), connector).expect("relay starts");
        let view = Arc::new(Mutex::new(View::default()));
        let v = view.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                v.lock().expect("view lock").apply(ev);
            }
        });
        Self {
            relay,
            view,
            tokens,
        }
    }

    pub fn view<T>(&self, f: impl FnOnce(&View) -> T) -> T {
        f(&self.view.lock().expect("view lock"))
    }

    pub async fn wait_connected(&self, within: Duration) {
        let view = self.view.clone();
        wait_until("relay connected", within, || {
            view.lock().expect("view lock").connected()
        })
        .await;
    }

    /// Waits until every message `name` sent is acknowledged (the outbox is empty).
    pub async fn wait_outbox_empty(&self, name: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.relay.outbox().await.expect("outbox").len();
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}'s outbox drains ({left} left after {within:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The full view of a room: if a reset trimmed it, older pages are loaded in front.
    pub async fn full_room(&self, room: &str) -> Vec<(u64, Uuid)> {
        let mut ids = self.view(|v| v.ids(room));
        while let Some(&(first, _)) = ids.first() {
            if first <= 1 {
                break;
            }
            let page = self
                .relay
                .load_older(room, first)
                .await
                .expect("older page loads");
            if page.messages.is_empty() {
                break;
            }
            let mut older: Vec<(u64, Uuid)> =
                page.messages.iter().map(|e| (e.offset, e.id)).collect();
            older.extend(ids);
            ids = older;
        }
        ids
    }
}
