//! Reference chat server speaking the Centrifugo client protocol v2 (JSON) over WebSocket.
//!
//! [`app`] builds the router (`/connection/websocket`, `/health`, and the backend role's
//! `POST /api/chat/token` and `GET /api/chat/jwks`) so tests can drive it;
//! [`Server`] binds, serves and shuts down gracefully (disconnect code 3001 to every client).

pub mod auth;
pub mod centrifugo;
pub mod config;
mod conn;
pub mod error;
pub mod hub;
pub mod introspect;
pub mod mint;
mod rpc;
pub mod store;
mod token_api;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use confab_protocol::Disconnect;
use tracing::Instrument;

pub use config::Config;
pub use conn::SERVER_VERSION;
pub use error::{Error, Result};

use crate::auth::TokenVerifier;
use crate::hub::Hub;
use crate::store::Store;

/// Shared server state.
#[derive(Clone)]
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Token verifier for the configured issuer.
    pub verifier: Arc<TokenVerifier>,
    /// RFC 7662 introspection of opaque access tokens (when a client id is configured).
    pub introspector: Option<Arc<introspect::Introspector>>,
    /// The chat tokens this server mints and accepts.
    pub chat_tokens: Arc<mint::ChatTokens>,
    /// Durable store.
    pub store: Store,
    /// Live connections and subscriptions.
    pub hub: Arc<Hub>,
    /// The backend role's publishing to Centrifugo (when `centrifugo_api_url` is set).
    pub centrifugo: Option<Arc<centrifugo::Backend>>,
    /// Group-commit writer: publishes and subscription snapshots.
    writer: writer::Writer,
    shutdown: Arc<AtomicBool>,
}

impl AppState {
    /// Opens the store, creates default rooms and prepares the verifier (no network yet).
    pub fn new(config: Config) -> Result<Self> {
        config.validate()?;
        let store =
            Store::open(&config.db, config.history_size)?.with_limits(config.store_limits());
        for room in &config.default_rooms {
            store.create_room(room, room, "", false, auth::unix_now_ms())?;
        }
        let verifier = TokenVerifier::new(
            &config.issuer,
            &config.audience,
            config.token_leeway_secs,
            Duration::from_secs(config.jwks_refetch_interval_secs),
        )?;
        let hub = Arc::new(Hub::new(hub::HubLimits {
            total: config.max_connections_total,
            per_user: config.max_connections_per_user,
            pending: config.max_pending_connections,
            per_address: config.max_connections_per_address,
        }));
        let writer = writer::Writer::start(&store, hub.clone())?;
        let chat_tokens = mint::ChatTokens::open(
            &config.chat_token_key_path(),
            &config.chat_token_issuer,
            &config.audience,
            Duration::from_secs(config.chat_token_max_ttl_secs),
            config.chat_tokens_per_minute,
        )?;
        let centrifugo = match &config.centrifugo_api_key {
            Some(key) if !config.centrifugo_api_url.is_empty() => {
                Some(Arc::new(centrifugo::Backend::new(
                    centrifugo::CentrifugoApi::new(&config.centrifugo_api_url, key.clone())?,
                )))
            }
            _ => None,
        };
        let introspector = match (
            &config.introspection_client_id,
            &config.introspection_client_secret,
        ) {
            (Some(id), Some(secret)) => Some(Arc::new(introspect::Introspector::new(
                introspect::IntrospectionSettings {
                    issuer: config.issuer.clone(),
                    client_id: id.clone(),
                    client_secret: secret.clone(),
                    endpoint: config.introspection_endpoint.clone(),
                    allowed_clients: config.introspection_allowed_clients.clone(),
                },
            )?)),
            _ => None,
        };
        Ok(Self {
            hub,
            introspector,
            centrifugo,
            writer,
            chat_tokens: Arc::new(chat_tokens),
            config: Arc::new(config),
            verifier: Arc::new(verifier),
            store,
            shutdown: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Verifies a connection token: one this server minted (its `iss` says so), or the
    /// identity provider's own JWT access token.
    pub async fn verify_connection_token(
        &self,
        token: &str,
    ) -> std::result::Result<auth::Identity, auth::AuthError> {
        if auth::unverified_issuer(token).as_deref() == Some(self.chat_tokens.issuer()) {
            return self
                .chat_tokens
                .verify(token, self.config.token_leeway_secs);
        }
        self.verify_access_token(token).await
    }

    /// Verifies an identity provider's access token: a JWT against the issuer's JWKS, any
    /// other token by RFC 7662 introspection when that is configured.
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> std::result::Result<auth::Identity, auth::AuthError> {
        if let Some(introspector) = &self.introspector {
            if !auth::looks_like_jwt(token) {
                return introspector.verify(token).await;
            }
        }
        self.verifier.verify(token).await
    }

    /// Whether `user` may read and write the room channel `channel`: 102 for a non-room, an
    /// unknown room or a private room of others, 103 for a non-member of a public room, 100 for
    /// storage errors.
    pub async fn room_access(&self, channel: &str, user: &str) -> std::result::Result<(), u32> {
        use confab_protocol::ErrorCode;
        let Some(room) = confab_protocol::room_id(channel) else {
            return Err(ErrorCode::UNKNOWN_CHANNEL);
        };
        let store = self.store.clone();
        let (room, user) = (room.to_owned(), user.to_owned());
        let res = tokio::task::spawn_blocking(move || -> Result<(bool, bool)> {
            let Some(found) = store.room(&room)? else {
                return Ok((false, false));
            };
            let member = store.is_member(&room, &user)?;
            // A private room is not there for anyone outside it.
            Ok((member || !found.private, member))
        })
        .await;
        match res {
            Ok(Ok((false, _))) => Err(ErrorCode::UNKNOWN_CHANNEL),
            Ok(Ok((true, false))) => Err(ErrorCode::PERMISSION_DENIED),
            Ok(Ok((true, true))) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "storage error");
                Err(ErrorCode::INTERNAL)
            }
            Err(e) => {
                tracing::error!(error = %e, "storage task failed");
                Err(ErrorCode::INTERNAL)
            }
        }
    }

    /// Disconnects every client with 3001 (shutdown) and refuses new ones.
    pub fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.hub.shutdown(Disconnect::SHUTDOWN);
    }
}

/// The router: `/connection/websocket` and `/health`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/connection/websocket", get(websocket))
        .route("/health", get(health))
        .route(
            "/api/chat/token",
            axum::routing::post(token_api::chat_token),
        )
        .route("/api/chat/jwks", get(token_api::jwks))
        .route(
            "/api/centrifugo/subscribe",
            axum::routing::post(token_api::subscribe_proxy),
        )
        .route(
            "/api/centrifugo/rpc",
            axum::routing::post(token_api::rpc_proxy),
        )
        .with_state(state)
}

async fn websocket(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    // The transport refuses a larger message from its header, before reading it (before login
    // too); the connection task answers that with the protocol's close 3501, like any
    // oversize frame.
    let transport_max = state.config.max_frame_bytes;
    // Small I/O buffers: the tungstenite defaults (128 KiB each) would cost ~150 KiB per idle
    // connection; chat frames are small and larger ones still work, just in more reads.
    ws.max_message_size(transport_max)
        .max_frame_size(transport_max)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .on_upgrade(move |socket| {
            let client = uuid::Uuid::new_v4().to_string();
            let span = tracing::info_span!("conn", client = %client);
            conn::serve_socket(socket, state, client, peer.ip()).instrument(span)
        })
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": if state.shutdown.load(Ordering::SeqCst) { "shutting_down" } else { "ok" },
        "connections": state.hub.socket_count(),
        "version": SERVER_VERSION,
    }))
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Binds the configured address and fetches the issuer's keys (fails early on a bad issuer).
    pub async fn bind(config: Config) -> Result<Self> {
        let state = AppState::new(config)?;
        if let Err(e) = state.verifier.prefetch().await {
            tracing::warn!(error = %e, "issuer keys not available yet; will retry on first connect");
        }
        let listener = tokio::net::TcpListener::bind(state.config.listen)
            .await
            .map_err(Error::Serve)?;
        Ok(Self { listener, state })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Serve)
    }

    /// The WebSocket URL clients use.
    pub fn websocket_url(&self) -> Result<String> {
        Ok(format!("ws://{}/connection/websocket", self.local_addr()?))
    }

    /// Serves until `shutdown` resolves, then disconnects every client with 3001 and waits
    /// (at most `grace`) for connections to close.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> Result<()> {
        let state = self.state.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let signal_state = state.clone();
        // Pushes are small frames that must leave at once: without TCP_NODELAY, Nagle's
        // algorithm holds a push back while an earlier segment waits for the client's
        // (possibly delayed) ACK, which cost deliveries up to tens of milliseconds.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set on a connection: {e}");
            }
        });
        let app = app(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: disconnecting clients with code 3001");
            signal_state.begin_shutdown();
            let _ = done_tx.send(());
        });
        let server = tokio::spawn(async move { serve.await });
        let _ = done_rx.await;
        let deadline = tokio::time::Instant::now() + grace;
        while state.hub.socket_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match tokio::time::timeout_at(deadline + Duration::from_millis(100), server).await {
            Ok(Ok(r)) => r.map_err(Error::Serve),
            Ok(Err(e)) => Err(Error::Serve(std::io::Error::other(e.to_string()))),
            Err(_) => Ok(()),
        }
    }
}
