//! Server configuration: a TOML file, overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_types::SecretString;
use serde::Deserialize;

use crate::error::{Error, Result};

/// All tunables of the server. Every field has a default except `issuer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:8000`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// OpenID issuer whose JWKS signs connection tokens (required).
    pub issuer: String,
    /// Required `aud` of connection tokens.
    pub audience: String,
    /// SQLite database file.
    pub db: PathBuf,
    /// Server ping interval in seconds (0 disables pings).
    pub ping_interval_secs: u64,
    /// Seconds to wait for a pong after a ping before disconnecting with 3012.
    pub pong_timeout_secs: u64,
    /// Seconds a new socket may stay unauthenticated before disconnecting with 3502.
    pub connect_timeout_secs: u64,
    /// Milliseconds after token expiry before disconnecting with 3005 (grace for an in-flight refresh).
    pub expired_close_delay_ms: u64,
    /// Allowed clock skew in seconds for `exp`/`nbf`.
    pub token_leeway_secs: u64,
    /// Minimum seconds between JWKS refetches triggered by unknown `kid`s.
    pub jwks_refetch_interval_secs: u64,
    /// Maximum size of one incoming WebSocket message in bytes.
    pub max_frame_bytes: usize,
    /// Commands per second one connection may run, sustained (token bucket). Commands over
    /// the rate wait for their turn instead of being refused: the connection reads its next
    /// frame only once its earlier commands have run.
    pub commands_per_second: u32,
    /// Commands one connection may run at once before `commands_per_second` paces it (the
    /// bucket's size): bursts of an SDK, e.g. a reconnect that resubscribes and reads the
    /// history of 128 rooms, run without waiting.
    pub commands_burst: u32,
    /// Connections allowed per user.
    pub max_connections_per_user: usize,
    /// Sockets allowed in total.
    pub max_connections_total: usize,
    /// Sockets that have not sent a valid `connect` yet, at once (a flood of idle sockets
    /// cannot use up `max_connections_total`).
    pub max_pending_connections: usize,
    /// Sockets per peer IP address (0 turns it off: behind a reverse proxy every socket comes
    /// from the proxy's address, so limit per client address there instead).
    pub max_connections_per_address: usize,
    /// Channels one connection may subscribe to.
    pub max_channels_per_connection: usize,
    /// Publications kept per channel (older ones are trimmed; recovery past them fails cleanly).
    pub history_size: usize,
    /// Rooms created at start if missing (anyone may join them).
    pub default_rooms: Vec<String>,
    /// Outgoing queue length per connection; a client that falls further behind is disconnected (3008).
    pub client_queue_len: usize,
    /// Encoded bytes of publications one reply carries at most: a history page or a
    /// recovering subscribe is cut to fit (recovery that does not fit answers
    /// `recovered: false`). At least `max_frame_bytes` + 4096, so one publication always fits.
    pub max_reply_bytes: usize,
    /// Rooms one user may create.
    pub max_rooms_per_user: usize,
    /// Rooms on the server in total (the default rooms count, but are always created).
    pub max_rooms_total: usize,
    /// The Ed25519 key (PKCS#8 PEM) chat tokens are signed with; created owner-only if missing.
    /// Default: the database path with `.chat-token-key.pem` appended.
    pub chat_token_key: Option<PathBuf>,
    /// `iss` of minted chat tokens (what a Centrifugo deployment's token config names).
    pub chat_token_issuer: String,
    /// Longest life of a minted chat token in seconds (never past the access token's `exp`).
    pub chat_token_max_ttl_secs: u64,
    /// Chat tokens one user may get per minute (then 429 with Retry-After).
    pub chat_tokens_per_minute: u32,
    /// The secret Centrifugo sends (header `X-Confab-Proxy-Secret`) on its proxy calls to
    /// `/api/centrifugo/*`; unset turns those endpoints off (404). Set it from the environment
    /// (`CONFAB_CENTRIFUGO_PROXY_SECRET`) rather than the file.
    #[serde(deserialize_with = "secret")]
    pub centrifugo_proxy_secret: Option<SecretString>,
    /// Centrifugo's server HTTP API (e.g. `http://127.0.0.1:8000/api`), where the backend role
    /// publishes the messages sent through the RPC proxy and ends subscriptions of users who
    /// left a room: one URL, or a list of the nodes' APIs (a node that cannot be reached is
    /// skipped; the idempotency key makes a publish safe to repeat on another node). Empty:
    /// `messages.send` through the RPC proxy answers "not available".
    #[serde(deserialize_with = "one_or_many")]
    pub centrifugo_api_url: Vec<url::Url>,
    /// The key of that API (`X-API-Key`); set it from the environment
    /// (`CONFAB_CENTRIFUGO_API_KEY`).
    #[serde(deserialize_with = "secret")]
    pub centrifugo_api_key: Option<SecretString>,
    /// This server's client id at the identity provider, for RFC 7662 introspection of opaque
    /// access tokens (tokens that are not JWTs). Unset: only JWT access tokens are accepted.
    pub introspection_client_id: Option<String>,
    /// Its client secret; from the environment (`CONFAB_INTROSPECTION_CLIENT_SECRET`).
    #[serde(deserialize_with = "secret")]
    pub introspection_client_secret: Option<SecretString>,
    /// The introspection endpoint, when the provider's discovery or RFC 8414 metadata does
    /// not name one.
    pub introspection_endpoint: Option<url::Url>,
    /// Clients whose opaque tokens are accepted (the token's `client_id`); empty: any client
    /// of the provider.
    pub introspection_allowed_clients: Vec<String>,
}

/// Whether `url` is https, or http to this machine (where nothing crosses a network).
fn https_or_loopback_http(url: &url::Url) -> bool {
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// One URL or a list of them.
fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<url::Url>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(url::Url),
        Many(Vec<url::Url>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(u) => vec![u],
        OneOrMany::Many(v) => v,
    })
}

/// A secret from the file, kept as a [`SecretString`] (redacted `Debug`, zeroized).
fn secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(d).map(|s| s.map(SecretString::new))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            issuer: String::new(),
            audience: "confab-chat".to_owned(),
            db: PathBuf::from("confab-server.sqlite3"),
            ping_interval_secs: 25,
            pong_timeout_secs: 8,
            connect_timeout_secs: 5,
            expired_close_delay_ms: 25_000,
            token_leeway_secs: 5,
            jwks_refetch_interval_secs: 10,
            max_frame_bytes: confab_protocol::DEFAULT_MAX_FRAME_BYTES,
            commands_per_second: 100,
            commands_burst: 300,
            max_connections_per_user: 16,
            max_connections_total: 20_000,
            max_pending_connections: 1_000,
            max_connections_per_address: 256,
            max_channels_per_connection: 128,
            history_size: 1_000,
            default_rooms: vec!["general".to_owned()],
            client_queue_len: 1_024,
            max_reply_bytes: confab_protocol::DEFAULT_MAX_REPLY_BYTES,
            max_rooms_per_user: 100,
            max_rooms_total: 10_000,
            chat_token_key: None,
            chat_token_issuer: "confab-server".to_owned(),
            chat_token_max_ttl_secs: 600,
            chat_tokens_per_minute: 30,
            centrifugo_proxy_secret: None,
            centrifugo_api_url: Vec::new(),
            centrifugo_api_key: None,
            introspection_client_id: None,
            introspection_client_secret: None,
            introspection_endpoint: None,
            introspection_allowed_clients: Vec::new(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() {
            return Err(Error::Config(
                "issuer is required (--issuer or `issuer` in the config file)".into(),
            ));
        }
        let url = url::Url::parse(&self.issuer)
            .map_err(|e| Error::Config(format!("issuer is not a URL: {e}")))?;
        if !https_or_loopback_http(&url) {
            return Err(Error::Config(
                "issuer must be https (http only for a loopback issuer)".into(),
            ));
        }
        if self.audience.is_empty() {
            return Err(Error::Config("audience must not be empty".into()));
        }
        if self.max_frame_bytes < 1024 {
            return Err(Error::Config(
                "max_frame_bytes must be at least 1024".into(),
            ));
        }
        if self.max_pending_connections == 0 {
            return Err(Error::Config(
                "max_pending_connections must be positive".into(),
            ));
        }
        if self.commands_per_second == 0
            || self.commands_burst == 0
            || self.history_size == 0
            || self.client_queue_len == 0
        {
            return Err(Error::Config(
                "commands_per_second, commands_burst, history_size and client_queue_len must be positive".into(),
            ));
        }
        if self.max_reply_bytes < self.max_frame_bytes.saturating_add(4096) {
            return Err(Error::Config(
                "max_reply_bytes must be at least max_frame_bytes + 4096 (one publication must fit in a reply)".into(),
            ));
        }
        if self.chat_token_issuer.is_empty()
            || self.chat_token_issuer.trim_end_matches('/') == self.issuer.trim_end_matches('/')
        {
            return Err(Error::Config(
                "chat_token_issuer must be set and differ from the identity provider's issuer"
                    .into(),
            ));
        }
        if self
            .centrifugo_proxy_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 16)
        {
            return Err(Error::Config(
                "centrifugo_proxy_secret must be at least 16 characters".into(),
            ));
        }
        if self.introspection_client_id.is_some() != self.introspection_client_secret.is_some() {
            return Err(Error::Config(
                "introspection_client_id and introspection_client_secret go together".into(),
            ));
        }
        if self
            .introspection_endpoint
            .as_ref()
            .is_some_and(|url| !https_or_loopback_http(url))
        {
            return Err(Error::Config(
                "introspection_endpoint must be https (http only on loopback)".into(),
            ));
        }
        if self.centrifugo_api_url.is_empty() == self.centrifugo_api_key.is_some() {
            return Err(Error::Config(
                "centrifugo_api_url and centrifugo_api_key go together".into(),
            ));
        }
        if !self.centrifugo_api_url.is_empty() && self.centrifugo_proxy_secret.is_none() {
            return Err(Error::Config(
                "centrifugo_api_url needs centrifugo_proxy_secret (the RPC proxy publishes through it)"
                    .into(),
            ));
        }
        if self.chat_token_max_ttl_secs < 10 || self.chat_tokens_per_minute == 0 {
            return Err(Error::Config(
                "chat_token_max_ttl_secs must be at least 10 and chat_tokens_per_minute positive"
                    .into(),
            ));
        }
        if self.max_rooms_per_user == 0 || self.max_rooms_total == 0 {
            return Err(Error::Config(
                "max_rooms_per_user and max_rooms_total must be positive".into(),
            ));
        }
        for room in &self.default_rooms {
            if confab_protocol::room_id(&confab_protocol::room_channel(room)).is_none() {
                return Err(Error::Config(format!(
                    "default room id {room:?} is invalid"
                )));
            }
        }
        Ok(())
    }

    /// Where the chat token signing key lives.
    pub fn chat_token_key_path(&self) -> PathBuf {
        self.chat_token_key.clone().unwrap_or_else(|| {
            let mut p = self.db.clone().into_os_string();
            p.push(".chat-token-key.pem");
            PathBuf::from(p)
        })
    }

    /// The store's limits from this configuration.
    pub fn store_limits(&self) -> crate::store::Limits {
        crate::store::Limits {
            reply_bytes: self.max_reply_bytes,
            rooms_per_user: self.max_rooms_per_user,
            rooms_total: self.max_rooms_total,
        }
    }

    /// Ping interval, if pings are on.
    pub fn ping_interval(&self) -> Option<Duration> {
        (self.ping_interval_secs > 0).then(|| Duration::from_secs(self.ping_interval_secs))
    }
}
