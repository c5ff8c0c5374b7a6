//! Confab app configuration: a TOML file in the app's config dir with environment overrides.
//!
//! Precedence (later wins): built-in defaults → `config.toml` → `CONFAB_*` environment variables.
//! The defaults point at the embedded default setup on loopback (`cargo xtask demo`):
//! identity provider [`DEFAULT_ISSUER`], chat server [`DEFAULT_CHAT_URL`].
//!
//! The file is strict: an unknown key or a value of the wrong type is an error that names the
//! file, the line and the key, so a typo never silently falls back to a default.

pub mod error;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

pub use error::{Error, Result};

/// Name of the config file inside the app's config dir.
pub const CONFIG_FILE_NAME: &str = "config.toml";
/// Default issuer: the local identity provider that `cargo xtask demo` starts.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8400";
/// Default chat server WebSocket URL: the local reference server that `cargo xtask demo` starts.
pub const DEFAULT_CHAT_URL: &str = "ws://127.0.0.1:8401/connection/websocket";
/// Default OAuth client id (a public native client).
pub const DEFAULT_CLIENT_ID: &str = "confab-desktop";
/// Default private-use URI scheme for the redirect (reverse-DNS form, RFC 8252 §7.1).
pub const DEFAULT_REDIRECT_SCHEME: &str = "dev.confab.chat";
/// Default audience (`aud` claim) of access tokens for the chat service.
pub const DEFAULT_CHAT_AUDIENCE: &str = "confab-chat";
/// Default RFC 8707 resource indicator of the chat service (an absolute URI), sent as `resource=`.
pub const DEFAULT_CHAT_RESOURCE: &str = "urn:confab:chat";
/// Default time a pending sign-in waits for the browser.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Messages kept per room in each account's encrypted history cache unless configured.
pub const DEFAULT_HISTORY_CACHE_PER_ROOM: usize = 2_000;
/// Most messages per room the history cache may be configured to keep.
pub const MAX_HISTORY_CACHE_PER_ROOM: usize = 1_000_000;
/// Default scopes: OpenID Connect identity plus a refresh token.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Environment variable: explicit config file path (must exist).
pub const ENV_CONFIG: &str = "CONFAB_CONFIG";
/// Environment variable: data directory (vault, store); lets tests isolate runs.
pub const ENV_DATA_DIR: &str = "CONFAB_DATA_DIR";
/// Environment variable overriding [`AppConfig::issuer`].
pub const ENV_ISSUER: &str = "CONFAB_ISSUER";
/// Environment variable overriding [`AppConfig::client_id`].
pub const ENV_CLIENT_ID: &str = "CONFAB_CLIENT_ID";
/// Environment variable overriding [`AppConfig::scopes`] (space- or comma-separated).
pub const ENV_SCOPES: &str = "CONFAB_SCOPES";
/// Environment variable overriding [`AppConfig::chat_url`].
pub const ENV_CHAT_URL: &str = "CONFAB_CHAT_URL";
/// Environment variable setting [`AppConfig::chat_token_endpoint`].
pub const ENV_CHAT_TOKEN_ENDPOINT: &str = "CONFAB_CHAT_TOKEN_ENDPOINT";
/// Environment variable setting the chat token endpoint's answer shape (`confab`, `chatsdk`,
/// `chatkit`).
pub const ENV_CHAT_TOKEN_SHAPE: &str = "CONFAB_CHAT_TOKEN_SHAPE";
/// Environment variable setting the chat token tier's refresh endpoint (ChatSDK, ChatKit).
pub const ENV_CHAT_TOKEN_REFRESH_ENDPOINT: &str = "CONFAB_CHAT_TOKEN_REFRESH_ENDPOINT";
/// Environment variable setting the chat token tier's logout endpoint (ChatSDK).
pub const ENV_CHAT_TOKEN_LOGOUT_ENDPOINT: &str = "CONFAB_CHAT_TOKEN_LOGOUT_ENDPOINT";
/// Environment variable overriding [`AppConfig::chat_audience`].
pub const ENV_CHAT_AUDIENCE: &str = "CONFAB_CHAT_AUDIENCE";
/// Environment variable overriding [`AppConfig::chat_resource`].
pub const ENV_CHAT_RESOURCE: &str = "CONFAB_CHAT_RESOURCE";
/// Environment variable overriding [`AppConfig::redirect_mode`] (`auto`, `scheme`, `loopback`).
pub const ENV_REDIRECT_MODE: &str = "CONFAB_REDIRECT_MODE";
/// Environment variable overriding [`AppConfig::history_cache_per_room`].
pub const ENV_HISTORY_CACHE_PER_ROOM: &str = "CONFAB_HISTORY_CACHE_PER_ROOM";
/// Environment variable overriding [`AppConfig::login_timeout`] (whole seconds).
pub const ENV_LOGIN_TIMEOUT_SECS: &str = "CONFAB_LOGIN_TIMEOUT_SECS";
/// Environment variable setting [`AppConfig::login_hint`] (demo and tests).
pub const ENV_LOGIN_HINT: &str = "CONFAB_LOGIN_HINT";
/// Environment variable overriding [`AppConfig::vault_key`] (`keychain`, `passphrase`).
pub const ENV_VAULT_KEY: &str = "CONFAB_VAULT_KEY";
/// Environment variable choosing the credential profile (`oidc`, `password`).
pub const ENV_CREDENTIAL_PROFILE: &str = "CONFAB_CREDENTIAL_PROFILE";
/// Environment variable setting the password profile's backend URL (`[password] backend`).
pub const ENV_PASSWORD_BACKEND: &str = "CONFAB_PASSWORD_BACKEND";

pub use confab_backends::SimpleJwtSettings;

/// How the account signs in: the credential backend of its profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CredentialProfile {
    /// OpenID Connect: code + PKCE in the system browser (the default; RFC 9700).
    #[default]
    Oidc,
    /// A first-party Django REST Framework + SimpleJWT backend: email or username and password
    /// in Confab's own form (opt-in, for an organisation's own backend only).
    Password {
        /// The backend's base URL (https; http only on this machine).
        backend: Url,
        /// Its endpoints' paths and field names (the seed's by default).
        settings: Box<SimpleJwtSettings>,
    },
}

impl CredentialProfile {
    /// The profile's name as configured (`oidc`, `password`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Password { .. } => "password",
        }
    }
}

/// The file's `credential_profile` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ProfileKind {
    Oidc,
    Password,
}

impl std::str::FromStr for ProfileKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "oidc" => Ok(Self::Oidc),
            "password" => Ok(Self::Password),
            other => Err(format!(
                "unknown credential profile `{other}`; expected oidc or password"
            )),
        }
    }
}

/// The file's `[password]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordTable {
    backend: Option<Url>,
    #[serde(default)]
    simplejwt: SimpleJwtSettings,
}

/// Where the vault's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultKeyMode {
    /// The OS keychain; the app falls back to a passphrase when no keychain is reachable.
    Keychain,
    /// Always a passphrase the user types (Argon2id).
    Passphrase,
}

impl std::str::FromStr for VaultKeyMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "keychain" => Ok(Self::Keychain),
            "passphrase" => Ok(Self::Passphrase),
            other => Err(format!(
                "unknown vault key source `{other}`; expected keychain or passphrase"
            )),
        }
    }
}

/// How the authorization response comes back to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectMode {
    /// Private-use scheme; fall back to loopback where the scheme cannot be registered.
    Auto,
    /// Private-use scheme only.
    Scheme,
    /// Loopback redirect on `http://127.0.0.1:{ephemeral}/callback` only (desktop).
    Loopback,
}

impl std::str::FromStr for RedirectMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "scheme" => Ok(Self::Scheme),
            "loopback" => Ok(Self::Loopback),
            other => Err(format!(
                "unknown redirect mode `{other}`; expected auto, scheme or loopback"
            )),
        }
    }
}

/// The app's configuration. Contains no secrets (a public client has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppConfig {
    /// OpenID Connect issuer URL (discovery is fetched from it).
    pub issuer: Url,
    /// OAuth client id of this app.
    pub client_id: String,
    /// Scopes requested at sign-in; always contains `openid`.
    pub scopes: Vec<String>,
    /// Private-use URI scheme for the redirect, e.g. `dev.confab.chat`.
    pub redirect_scheme: String,
    /// Chat server WebSocket URL.
    pub chat_url: Url,
    /// Where the chat connection's tokens come from; see [`AppConfig::token_endpoint`].
    pub chat_token_endpoint: ChatTokenEndpoint,
    /// What the chat token endpoint answers (and how its tokens are renewed).
    pub chat_token_shape: ChatTokenShape,
    /// Audience (`aud` claim) of access tokens for the chat server.
    pub chat_audience: String,
    /// RFC 8707 resource indicator sent at sign-in so the access token is a JWT for the chat
    /// server. Empty (`chat_resource = ""` in the file) means: send no `resource` (for providers
    /// that refuse it or issue chat tokens without it); see [`AppConfig::resource_indicator`].
    pub chat_resource: String,
    /// How long a pending sign-in waits for the browser.
    pub login_timeout: Duration,
    /// Messages kept per room in each account's encrypted history cache (the oldest are
    /// evicted): `history_cache_per_room`, 1 to 1,000,000, default 2,000.
    pub history_cache_per_room: usize,
    /// How the redirect reaches the app.
    pub redirect_mode: RedirectMode,
    /// Optional `login_hint` sent with the authorization request (demo and tests).
    pub login_hint: Option<String>,
    /// Where the vault key comes from (default: the OS keychain).
    pub vault_key: VaultKeyMode,
    /// How the account signs in (default: OpenID Connect in the browser).
    pub credential: CredentialProfile,
    /// The config file that was read, if any (for diagnostics).
    pub loaded_from: Option<PathBuf>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            issuer: parse_default(DEFAULT_ISSUER),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            scopes: DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            redirect_scheme: DEFAULT_REDIRECT_SCHEME.to_owned(),
            chat_url: parse_default(DEFAULT_CHAT_URL),
            chat_token_endpoint: ChatTokenEndpoint::ChatServer,
            chat_token_shape: ChatTokenShape::Confab,
            chat_audience: DEFAULT_CHAT_AUDIENCE.to_owned(),
            chat_resource: DEFAULT_CHAT_RESOURCE.to_owned(),
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            history_cache_per_room: DEFAULT_HISTORY_CACHE_PER_ROOM,
            redirect_mode: RedirectMode::Auto,
            login_hint: None,
            vault_key: VaultKeyMode::Keychain,
            credential: CredentialProfile::Oidc,
            loaded_from: None,
        }
    }
}

fn parse_default(s: &str) -> Url {
    #[allow(clippy::expect_used)]
    Url::parse(s).expect("built-in default URLs are valid constants (checked by a unit test)")
}

/// Where the chat connection's tokens come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTokenEndpoint {
    /// The chat server's own token endpoint, `/api/chat/token` on the chat URL's host (`ws` →
    /// `http`, `wss` → `https`), as confab-server serves it: the default, so the embedded
    /// server and a Centrifugo deployment with confab-server as its backend connect the same
    /// way (configured as `"chat-server"`, or left out).
    ChatServer,
    /// No token endpoint: the chat connects with the provider's access token itself
    /// (configured as `"none"`).
    None,
    /// The backend's endpoint at this URL (`POST`, the provider's access token as Bearer → a
    /// short-lived connection token).
    Url(Url),
}

impl std::str::FromStr for ChatTokenEndpoint {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "none" => Ok(Self::None),
            "chat-server" => Ok(Self::ChatServer),
            url => Url::parse(url)
                .map(Self::Url)
                .map_err(|e| format!("not a URL ({e}); use a URL, \"chat-server\" or \"none\"")),
        }
    }
}

/// What the chat token endpoint answers, and how its tokens are renewed and given up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ChatTokenShape {
    /// `{"token", "expires_in"}` (confab-server's endpoint); renewed by minting again.
    #[default]
    Confab,
    /// ChatSDK (seed 003): `{"accessToken", "refreshToken", "expiresAt"}` with `expiresAt` in
    /// epoch milliseconds; renewed at `refresh` with the (rotated) chat refresh token, which is
    /// kept in the vault; given up at `logout` when signing out.
    ChatSdk {
        /// `POST {"refreshToken"}` → a new triple.
        refresh: Url,
        /// `POST {"refreshToken"}`: invalidates it at sign-out (none: only forgotten).
        logout: Option<Url>,
    },
    /// ChatKit (seed 002): `{"client_secret", "expires_at"}` with `expires_at` in seconds or
    /// milliseconds; renewed at `refresh` with the current secret, falling back to a new
    /// session; the secret is kept in memory only.
    ChatKit {
        /// `POST {"client_secret"}` → a new pair (none: always a new session).
        refresh: Option<Url>,
    },
}

impl ChatTokenShape {
    /// The shape's name as configured.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Confab => "confab",
            Self::ChatSdk { .. } => "chatsdk",
            Self::ChatKit { .. } => "chatkit",
        }
    }

    fn build(
        name: &str,
        refresh: Option<Url>,
        logout: Option<Url>,
    ) -> std::result::Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "confab" => Ok(Self::Confab),
            "chatsdk" => Ok(Self::ChatSdk {
                refresh: refresh.ok_or(
                    "the chatsdk shape needs `chat_token_refresh_endpoint` (where its refresh token is exchanged)",
                )?,
                logout,
            }),
            "chatkit" => Ok(Self::ChatKit { refresh }),
            other => Err(format!(
                "unknown chat token shape `{other}`; expected confab, chatsdk or chatkit"
            )),
        }
    }

    fn endpoints(&self) -> Vec<&Url> {
        match self {
            Self::Confab => Vec::new(),
            Self::ChatSdk { refresh, logout } => std::iter::once(refresh).chain(logout).collect(),
            Self::ChatKit { refresh } => refresh.iter().collect(),
        }
    }
}

/// The file's shape: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    issuer: Option<Url>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    redirect_scheme: Option<String>,
    chat_url: Option<Url>,
    chat_token_endpoint: Option<String>,
    chat_token_shape: Option<String>,
    chat_token_refresh_endpoint: Option<Url>,
    chat_token_logout_endpoint: Option<Url>,
    chat_audience: Option<String>,
    chat_resource: Option<String>,
    login_timeout_secs: Option<u64>,
    history_cache_per_room: Option<usize>,
    redirect_mode: Option<RedirectMode>,
    login_hint: Option<String>,
    vault_key: Option<VaultKeyMode>,
    credential_profile: Option<ProfileKind>,
    password: Option<PasswordTable>,
}

impl AppConfig {
    /// The chat token endpoint in force: the configured one, the chat server's own (see
    /// [`ChatTokenEndpoint::ChatServer`]), or none.
    pub fn token_endpoint(&self) -> Option<Url> {
        match &self.chat_token_endpoint {
            ChatTokenEndpoint::None => None,
            ChatTokenEndpoint::Url(u) => Some(u.clone()),
            ChatTokenEndpoint::ChatServer => {
                let mut u = self.chat_url.clone();
                let scheme = if u.scheme() == "wss" { "https" } else { "http" };
                u.set_scheme(scheme).ok()?;
                u.set_path("/api/chat/token");
                u.set_query(None);
                u.set_fragment(None);
                Some(u)
            }
        }
    }

    /// Loads `config.toml` from `config_dir` (or the file named by `CONFAB_CONFIG`) and applies
    /// the process environment's `CONFAB_*` overrides. A missing default file means defaults.
    pub fn load(config_dir: &Path) -> Result<Self> {
        Self::load_with_env(config_dir, |name| std::env::var(name).ok())
    }

    /// Like [`AppConfig::load`], with the environment supplied by `env` (tests pass a map).
    pub fn load_with_env(config_dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let (path, required) = match env(ENV_CONFIG) {
            Some(p) => (PathBuf::from(p), true),
            None => (config_dir.join(CONFIG_FILE_NAME), false),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text, &path)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(Error::Read { path, source }),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a config file's text onto the defaults; `path` is used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let file: FileConfig = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        let mut c = Self {
            loaded_from: Some(path.to_owned()),
            ..Self::default()
        };
        if let Some(v) = file.issuer {
            c.issuer = v;
        }
        if let Some(v) = file.client_id {
            c.client_id = v;
        }
        if let Some(v) = file.scopes {
            c.scopes = v;
        }
        if let Some(v) = file.redirect_scheme {
            c.redirect_scheme = v;
        }
        if let Some(v) = file.chat_url {
            c.chat_url = v;
        }
        if let Some(v) = file.chat_token_endpoint {
            c.chat_token_endpoint = v.parse().map_err(|message| Error::Invalid {
                origin: format!("{}: key `chat_token_endpoint`", path.display()),
                message,
            })?;
        }
        if let Some(name) = &file.chat_token_shape {
            c.chat_token_shape = ChatTokenShape::build(
                name,
                file.chat_token_refresh_endpoint.clone(),
                file.chat_token_logout_endpoint.clone(),
            )
            .map_err(|message| Error::Invalid {
                origin: format!("{}: key `chat_token_shape`", path.display()),
                message,
            })?;
        }
        if let Some(v) = file.chat_audience {
            c.chat_audience = v;
        }
        if let Some(v) = file.chat_resource {
            c.chat_resource = v;
        }
        if let Some(v) = file.history_cache_per_room {
            c.history_cache_per_room = v;
        }
        if let Some(v) = file.login_timeout_secs {
            c.login_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.redirect_mode {
            c.redirect_mode = v;
        }
        if let Some(v) = file.login_hint {
            c.login_hint = Some(v);
        }
        if let Some(v) = file.vault_key {
            c.vault_key = v;
        }
        let table = file.password.unwrap_or_default();
        c.credential = match file.credential_profile {
            None | Some(ProfileKind::Oidc) => CredentialProfile::Oidc,
            Some(ProfileKind::Password) => CredentialProfile::Password {
                backend: table.backend.ok_or_else(|| Error::Invalid {
                    origin: format!("{}: table `[password]`", path.display()),
                    message: "the password profile needs `backend`, the backend's URL".into(),
                })?,
                settings: Box::new(table.simplejwt),
            },
        };
        c.validate()?;
        Ok(c)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let invalid = |var: &str, message: String| Error::Invalid {
            origin: format!("environment variable {var}"),
            message,
        };
        if let Some(v) = env(ENV_ISSUER) {
            self.issuer = Url::parse(v.trim())
                .map_err(|e| invalid(ENV_ISSUER, format!("not a URL ({e})")))?;
        }
        if let Some(v) = env(ENV_CLIENT_ID) {
            self.client_id = v.trim().to_owned();
        }
        if let Some(v) = env(ENV_SCOPES) {
            self.scopes = v
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(v) = env(ENV_CHAT_URL) {
            self.chat_url = Url::parse(v.trim())
                .map_err(|e| invalid(ENV_CHAT_URL, format!("not a URL ({e})")))?;
        }
        if let Some(v) = env(ENV_CHAT_TOKEN_ENDPOINT) {
            self.chat_token_endpoint =
                v.parse().map_err(|m| invalid(ENV_CHAT_TOKEN_ENDPOINT, m))?;
        }
        let url_of = |var: &str| -> Result<Option<Url>> {
            env(var)
                .map(|v| Url::parse(v.trim()).map_err(|e| invalid(var, format!("not a URL ({e})"))))
                .transpose()
        };
        let refresh = url_of(ENV_CHAT_TOKEN_REFRESH_ENDPOINT)?;
        let logout = url_of(ENV_CHAT_TOKEN_LOGOUT_ENDPOINT)?;
        if let Some(name) = env(ENV_CHAT_TOKEN_SHAPE) {
            let (old_refresh, old_logout) = match &self.chat_token_shape {
                ChatTokenShape::ChatSdk { refresh, logout } => {
                    (Some(refresh.clone()), logout.clone())
                }
                ChatTokenShape::ChatKit { refresh } => (refresh.clone(), None),
                ChatTokenShape::Confab => (None, None),
            };
            self.chat_token_shape =
                ChatTokenShape::build(&name, refresh.or(old_refresh), logout.or(old_logout))
                    .map_err(|m| invalid(ENV_CHAT_TOKEN_SHAPE, m))?;
        }
        if let Some(v) = env(ENV_CHAT_AUDIENCE) {
            self.chat_audience = v.trim().to_owned();
        }
        if let Some(v) = env(ENV_CHAT_RESOURCE) {
            self.chat_resource = v.trim().to_owned();
        }
        if let Some(v) = env(ENV_REDIRECT_MODE) {
            self.redirect_mode = v.parse().map_err(|m| invalid(ENV_REDIRECT_MODE, m))?;
        }
        if let Some(v) = env(ENV_LOGIN_TIMEOUT_SECS) {
            let secs: u64 = v.trim().parse().map_err(|_| {
                invalid(
                    ENV_LOGIN_TIMEOUT_SECS,
                    format!("`{v}` is not a whole number of seconds"),
                )
            })?;
            self.login_timeout = Duration::from_secs(secs);
        }
        if let Some(v) = env(ENV_HISTORY_CACHE_PER_ROOM) {
            self.history_cache_per_room = v.trim().parse().map_err(|_| {
                invalid(
                    ENV_HISTORY_CACHE_PER_ROOM,
                    format!("`{v}` is not a whole number of messages"),
                )
            })?;
        }
        if let Some(v) = env(ENV_LOGIN_HINT) {
            self.login_hint = Some(v.trim().to_owned());
        }
        if let Some(v) = env(ENV_VAULT_KEY) {
            self.vault_key = v.parse().map_err(|m| invalid(ENV_VAULT_KEY, m))?;
        }
        let kind = match env(ENV_CREDENTIAL_PROFILE) {
            Some(v) => Some(
                v.parse::<ProfileKind>()
                    .map_err(|m| invalid(ENV_CREDENTIAL_PROFILE, m))?,
            ),
            None => None,
        };
        let backend = match env(ENV_PASSWORD_BACKEND) {
            Some(v) => Some(
                Url::parse(v.trim())
                    .map_err(|e| invalid(ENV_PASSWORD_BACKEND, format!("not a URL ({e})")))?,
            ),
            None => None,
        };
        let (backend, settings) = match (&self.credential, backend) {
            (_, Some(url)) => (Some(url), self.password_settings()),
            (CredentialProfile::Password { backend, settings }, None) => {
                (Some(backend.clone()), settings.clone())
            }
            (CredentialProfile::Oidc, None) => (None, Box::default()),
        };
        let password = kind == Some(ProfileKind::Password)
            || (kind.is_none() && matches!(self.credential, CredentialProfile::Password { .. }));
        self.credential = match (password, backend) {
            (false, _) => CredentialProfile::Oidc,
            (true, Some(backend)) => CredentialProfile::Password { backend, settings },
            (true, None) => {
                return Err(invalid(
                    ENV_CREDENTIAL_PROFILE,
                    format!("the password profile needs {ENV_PASSWORD_BACKEND}, the backend's URL"),
                ))
            }
        };
        Ok(())
    }

    /// Checks values that parse but make no sense; the origin names the file (if any).
    fn validate(&self) -> Result<()> {
        let origin = |key: &str| match &self.loaded_from {
            Some(p) => format!("{}: key `{key}`", p.display()),
            None => format!("key `{key}`"),
        };
        let fail = |key: &str, message: String| {
            Err(Error::Invalid {
                origin: origin(key),
                message,
            })
        };
        if !matches!(self.issuer.scheme(), "http" | "https") {
            return fail(
                "issuer",
                format!("`{}` must be an http(s) URL", self.issuer),
            );
        }
        if !matches!(self.chat_url.scheme(), "ws" | "wss") {
            return fail(
                "chat_url",
                format!("`{}` must be a ws(s) URL", self.chat_url),
            );
        }
        // Clear text only where nobody else can listen: a token must never cross a network
        // unencrypted.
        if self.issuer.scheme() == "http" && !is_loopback(&self.issuer) {
            return fail(
                "issuer",
                format!(
                    "`{}` must use https (http is only for a provider on this machine)",
                    self.issuer
                ),
            );
        }
        if let ChatTokenEndpoint::Url(endpoint) = &self.chat_token_endpoint {
            let https = endpoint.scheme() == "https";
            let local_http = endpoint.scheme() == "http" && is_loopback(endpoint);
            if !https && !local_http {
                return fail(
                    "chat_token_endpoint",
                    format!(
                        "`{endpoint}` must use https (http is only for a backend on this machine)"
                    ),
                );
            }
        }
        for endpoint in self.chat_token_shape.endpoints() {
            let https = endpoint.scheme() == "https";
            let local_http = endpoint.scheme() == "http" && is_loopback(endpoint);
            if !https && !local_http {
                return fail(
                    "chat_token_shape",
                    format!(
                        "`{endpoint}` must use https (http is only for a backend on this machine)"
                    ),
                );
            }
        }
        if self.chat_url.scheme() == "ws" && !is_loopback(&self.chat_url) {
            return fail(
                "chat_url",
                format!(
                    "`{}` must use wss (ws is only for a chat server on this machine)",
                    self.chat_url
                ),
            );
        }
        if let CredentialProfile::Password { backend, .. } = &self.credential {
            let https = backend.scheme() == "https";
            let local_http = backend.scheme() == "http" && is_loopback(backend);
            if !https && !local_http {
                return fail(
                    "password.backend",
                    format!(
                        "`{backend}` must use https (http is only for a backend on this machine): the password travels to it"
                    ),
                );
            }
        }
        if self.client_id.trim().is_empty() {
            return fail("client_id", "must not be empty".into());
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return fail("scopes", "must contain `openid`".into());
        }
        if !is_reverse_dns_scheme(&self.redirect_scheme) {
            return fail(
                "redirect_scheme",
                format!(
                    "`{}` must be a URI scheme in reverse-DNS form, like `dev.confab.chat`",
                    self.redirect_scheme
                ),
            );
        }
        if !self.chat_resource.is_empty() && Url::parse(&self.chat_resource).is_err() {
            return fail(
                "chat_resource",
                format!(
                    "`{}` must be an absolute URI (RFC 8707), or empty to send no resource",
                    self.chat_resource
                ),
            );
        }
        if self.login_timeout.is_zero() {
            return fail("login_timeout_secs", "must be at least 1 second".into());
        }
        if !(1..=MAX_HISTORY_CACHE_PER_ROOM).contains(&self.history_cache_per_room) {
            return fail(
                "history_cache_per_room",
                format!(
                    "must be between 1 and {MAX_HISTORY_CACHE_PER_ROOM} messages, not {}",
                    self.history_cache_per_room
                ),
            );
        }
        Ok(())
    }

    /// The password profile's settings (the defaults under another profile).
    fn password_settings(&self) -> Box<SimpleJwtSettings> {
        match &self.credential {
            CredentialProfile::Password { settings, .. } => settings.clone(),
            CredentialProfile::Oidc => Box::default(),
        }
    }

    /// The issuer of this configuration's accounts: the identity provider's, or under the
    /// password profile the backend's URL (no trailing slash). Accounts and vault entries are
    /// keyed by it.
    pub fn account_issuer(&self) -> String {
        let url = match &self.credential {
            CredentialProfile::Oidc => &self.issuer,
            CredentialProfile::Password { backend, .. } => backend,
        };
        url.as_str().trim_end_matches('/').to_owned()
    }

    /// The RFC 8707 `resource` to send at sign-in: `None` when `chat_resource` is empty.
    pub fn resource_indicator(&self) -> Option<&str> {
        Some(self.chat_resource.as_str()).filter(|r| !r.is_empty())
    }

    /// The private-use redirect URI, e.g. `dev.confab.chat:/oauth/callback`.
    pub fn scheme_redirect_uri(&self) -> String {
        format!("{}:/oauth/callback", self.redirect_scheme)
    }
}

/// Whether `url` points at this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// RFC 3986 scheme syntax plus at least one dot (RFC 8252 §7.1 reverse-DNS private-use scheme).
fn is_reverse_dns_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && s.contains('.')
        && !s.ends_with('.')
}

/// The data directory: `CONFAB_DATA_DIR` when set, else `default` (the platform's app data dir).
pub fn data_dir(default: PathBuf) -> PathBuf {
    data_dir_with_env(default, |name| std::env::var(name).ok())
}

/// Like [`data_dir`], with the environment supplied by `env`.
pub fn data_dir_with_env(default: PathBuf, env: impl Fn(&str) -> Option<String>) -> PathBuf {
    env(ENV_DATA_DIR)
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
        .unwrap_or(default)
}

/// Turns a toml error into one naming file, line, column and (when it can be told) the key.
fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> Error {
    let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    let message = e.message().trim().to_owned();
    let key = unknown_field_name(&message).or_else(|| {
        let line_text = text[line_start..].lines().next().unwrap_or("");
        line_text
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').trim_matches('\'').to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('#'))
    });
    Error::Parse {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// Extracts `foo` from serde's "unknown field `foo`, expected ..." message.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join(CONFIG_FILE_NAME);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_point_at_the_local_demo_setup() {
        let dir = tempfile::tempdir().unwrap();
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.issuer.as_str(),
            "http://127.0.0.1:8400/",
            "default issuer is the demo IdP on loopback"
        );
        assert_eq!(
            c.chat_url.as_str(),
            DEFAULT_CHAT_URL,
            "default chat URL is the demo server on loopback"
        );
        assert_eq!(
            c.client_id, "confab-desktop",
            "default client is the public desktop client"
        );
        assert_eq!(
            c.scopes,
            ["openid", "profile", "email", "offline_access"],
            "default scopes ask for identity and a refresh token"
        );
        assert_eq!(
            c.redirect_scheme, "dev.confab.chat",
            "default scheme is reverse-DNS"
        );
        assert_eq!(
            c.scheme_redirect_uri(),
            "dev.confab.chat:/oauth/callback",
            "redirect URI uses the private-use scheme"
        );
        assert_eq!(
            c.redirect_mode,
            RedirectMode::Auto,
            "scheme first, loopback fallback by default"
        );
        assert_eq!(
            c.login_timeout,
            Duration::from_secs(600),
            "a pending sign-in waits 10 minutes by default"
        );
        assert_eq!(
            c.chat_resource, "urn:confab:chat",
            "default resource indicator is the chat service's URI"
        );
        assert_eq!(c.login_hint, None, "no login hint unless asked for");
        assert_eq!(
            c.loaded_from, None,
            "a missing config file means defaults, not an error"
        );
    }

    #[test]
    fn file_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "issuer = \"https://id.example.test\"\nscopes = [\"openid\"]\nlogin_timeout_secs = 30\nredirect_mode = \"loopback\"\n",
        );
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.issuer.as_str(),
            "https://id.example.test/",
            "issuer comes from the file"
        );
        assert_eq!(c.scopes, ["openid"], "scopes come from the file");
        assert_eq!(
            c.login_timeout,
            Duration::from_secs(30),
            "timeout comes from the file"
        );
        assert_eq!(
            c.redirect_mode,
            RedirectMode::Loopback,
            "redirect mode comes from the file"
        );
        assert_eq!(
            c.client_id, DEFAULT_CLIENT_ID,
            "keys absent from the file keep their defaults"
        );
        assert_eq!(c.loaded_from, Some(path), "the file read is recorded");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "issuer = \"https://id.example.test\"\nclient_id = \"from-file\"\n",
        );
        let c = AppConfig::load_with_env(
            dir.path(),
            env_of(&[
                (ENV_ISSUER, "http://127.0.0.1:9999"),
                (ENV_SCOPES, "openid, email profile"),
                (ENV_CHAT_URL, "wss://chat.example.test/connection/websocket"),
                (ENV_REDIRECT_MODE, "Scheme"),
                (ENV_LOGIN_HINT, "alice"),
                (ENV_LOGIN_TIMEOUT_SECS, "5"),
                (ENV_HISTORY_CACHE_PER_ROOM, "300"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.history_cache_per_room, 300,
            "CONFAB_HISTORY_CACHE_PER_ROOM sets the cache size"
        );
        assert_eq!(
            c.issuer.as_str(),
            "http://127.0.0.1:9999/",
            "CONFAB_ISSUER wins over the file"
        );
        assert_eq!(
            c.client_id, "from-file",
            "keys without an env override keep the file's value"
        );
        assert_eq!(
            c.scopes,
            ["openid", "email", "profile"],
            "CONFAB_SCOPES splits on commas and spaces"
        );
        assert_eq!(
            c.chat_url.as_str(),
            "wss://chat.example.test/connection/websocket",
            "CONFAB_CHAT_URL wins"
        );
        assert_eq!(
            c.redirect_mode,
            RedirectMode::Scheme,
            "CONFAB_REDIRECT_MODE is case-insensitive"
        );
        assert_eq!(
            c.login_hint.as_deref(),
            Some("alice"),
            "CONFAB_LOGIN_HINT sets the hint"
        );
        assert_eq!(
            c.login_timeout,
            Duration::from_secs(5),
            "CONFAB_LOGIN_TIMEOUT_SECS sets the timeout"
        );
    }

    #[test]
    fn explicit_config_path_is_used_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("elsewhere.toml");
        std::fs::write(&other, "client_id = \"explicit\"\n").unwrap();
        let c =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CONFIG, other.to_str().unwrap())]))
                .unwrap();
        assert_eq!(
            c.client_id, "explicit",
            "CONFAB_CONFIG names the file to read"
        );

        let missing = dir.path().join("missing.toml");
        let err = AppConfig::load_with_env(
            dir.path(),
            env_of(&[(ENV_CONFIG, missing.to_str().unwrap())]),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Read { .. }),
            "an explicitly named file that is missing is an error, got {err:?}"
        );
        assert!(
            err.to_string().contains("missing.toml"),
            "the error names the file: {err}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "client_id = \"x\"\n\nisuer = \"http://127.0.0.1:1\"\n",
        );
        let err = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(CONFIG_FILE_NAME),
            "error names the file: {msg}"
        );
        assert!(msg.contains(":3:"), "error names line 3: {msg}");
        assert!(
            msg.contains("key `isuer`"),
            "error names the unknown key: {msg}"
        );
        assert!(
            msg.contains("unknown field"),
            "error says the key is unknown: {msg}"
        );
    }

    #[test]
    fn the_password_profile_names_its_backend_and_may_rename_fields() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "credential_profile = \"password\"\n[password]\nbackend = \"https://api.example.org/\"\n[password.simplejwt]\nlogin_path = \"auth/login/\"\n",
        );
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        let CredentialProfile::Password { backend, settings } = &c.credential else {
            panic!("password profile expected: {:?}", c.credential);
        };
        assert_eq!(backend.as_str(), "https://api.example.org/");
        assert_eq!(settings.login_path, "auth/login/");
        assert_eq!(
            settings.refresh_path,
            SimpleJwtSettings::default().refresh_path,
            "what the file leaves out keeps the seed's default"
        );
        assert_eq!(c.account_issuer(), "https://api.example.org");

        let oidc =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CREDENTIAL_PROFILE, "oidc")]))
                .unwrap();
        assert_eq!(
            oidc.credential,
            CredentialProfile::Oidc,
            "the environment wins"
        );
        assert_eq!(oidc.account_issuer(), "http://127.0.0.1:8400");
    }

    #[test]
    fn the_password_profile_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let c = AppConfig::load_with_env(
            dir.path(),
            env_of(&[
                (ENV_CREDENTIAL_PROFILE, "password"),
                (ENV_PASSWORD_BACKEND, "http://127.0.0.1:8000"),
            ]),
        )
        .unwrap();
        assert_eq!(c.credential.name(), "password");
        assert_eq!(c.account_issuer(), "http://127.0.0.1:8000");

        let err =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CREDENTIAL_PROFILE, "password")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains(ENV_PASSWORD_BACKEND), "{err}");
        let err = AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CREDENTIAL_PROFILE, "saml")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected oidc or password"), "{err}");
    }

    #[test]
    fn the_password_profile_refuses_what_would_leak_or_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "credential_profile = \"password\"\n[password]\nbackend = \"http://api.example.org/\"\n",
        );
        let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("password.backend") && err.contains("must use https"),
            "a password is never sent in clear text off this machine: {err}"
        );
        write(dir.path(), "credential_profile = \"password\"\n");
        let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs `backend`"), "{err}");
        write(
            dir.path(),
            "[password]\nbackend = \"https://a.example/\"\n[password.simplejwt]\nlogin_pth = \"x\"\n",
        );
        let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("login_pth") && err.contains(":4:"),
            "a misspelt field name is named with its line: {err}"
        );
    }

    #[test]
    fn chat_token_shapes_name_their_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "chat_token_shape = \"chatsdk\"\nchat_token_refresh_endpoint = \"https://b.example/chatsdk/refresh\"\nchat_token_logout_endpoint = \"https://b.example/chatsdk/logout\"\n",
        );
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        let ChatTokenShape::ChatSdk { refresh, logout } = &c.chat_token_shape else {
            panic!("chatsdk expected: {:?}", c.chat_token_shape);
        };
        assert_eq!(refresh.path(), "/chatsdk/refresh");
        assert_eq!(logout.as_ref().map(Url::path), Some("/chatsdk/logout"));

        let c = AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CHAT_TOKEN_SHAPE, "chatkit")]))
            .unwrap();
        assert_eq!(c.chat_token_shape.name(), "chatkit", "the environment wins");

        write(dir.path(), "chat_token_shape = \"chatsdk\"\n");
        let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("chat_token_refresh_endpoint"), "{err}");
        write(
            dir.path(),
            "chat_token_shape = \"chatkit\"\nchat_token_refresh_endpoint = \"http://b.example/r\"\n",
        );
        let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("must use https"), "{err}");
        write(dir.path(), "");
        let err =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_CHAT_TOKEN_SHAPE, "sendbird")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("expected confab, chatsdk or chatkit"), "{err}");
    }

    #[test]
    fn the_history_cache_size_is_read_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "");
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(c.history_cache_per_room, DEFAULT_HISTORY_CACHE_PER_ROOM);
        write(dir.path(), "history_cache_per_room = 500\n");
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(c.history_cache_per_room, 500);
        for bad in ["0", "1000001"] {
            write(dir.path(), &format!("history_cache_per_room = {bad}\n"));
            let err = AppConfig::load_with_env(dir.path(), env_of(&[]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("history_cache_per_room") && err.contains("between 1 and"),
                "{bad}: {err}"
            );
        }
        write(dir.path(), "");
        let err =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_HISTORY_CACHE_PER_ROOM, "lots")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("not a whole number of messages"), "{err}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "# timeouts\nlogin_timeout_secs = \"ten\"\n");
        let err = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Parse { line: 2, .. }),
            "type error is a parse error on line 2: {err:?}"
        );
        assert!(
            msg.contains("key `login_timeout_secs`"),
            "error names the key: {msg}"
        );
        assert!(
            msg.contains("invalid type"),
            "error says the type is wrong: {msg}"
        );
    }

    #[test]
    fn bad_url_and_bad_enum_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "issuer = \"not a url\"\n");
        let msg = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(":1:") && msg.contains("key `issuer`"),
            "bad URL names line and key: {msg}"
        );

        write(dir.path(), "redirect_mode = \"carrier-pigeon\"\n");
        let msg = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("key `redirect_mode`") && msg.contains("carrier-pigeon"),
            "bad enum names key and value: {msg}"
        );
    }

    #[test]
    fn toml_syntax_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "client_id = \"ok\"\nscopes = [\"openid\"\n");
        let err = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap_err();
        assert!(
            matches!(err, Error::Parse { .. }),
            "syntax error is a parse error: {err:?}"
        );
        assert!(
            err.to_string().contains(CONFIG_FILE_NAME),
            "error names the file: {err}"
        );
    }

    #[test]
    fn values_that_parse_but_make_no_sense_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("issuer = \"ftp://id.example.test\"\n", "issuer"),
            ("chat_url = \"http://127.0.0.1:8401\"\n", "chat_url"),
            ("scopes = [\"profile\"]\n", "scopes"),
            ("redirect_scheme = \"confab\"\n", "redirect_scheme"),
            ("login_timeout_secs = 0\n", "login_timeout_secs"),
            ("client_id = \" \"\n", "client_id"),
            ("chat_resource = \"confab-chat\"\n", "chat_resource"),
            // Clear text off this machine would carry tokens unencrypted.
            ("issuer = \"http://id.example.test\"\n", "issuer"),
            (
                "chat_url = \"ws://chat.example.test/connection/websocket\"\n",
                "chat_url",
            ),
        ] {
            write(dir.path(), text);
            let msg = AppConfig::load_with_env(dir.path(), env_of(&[]))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(CONFIG_FILE_NAME) && msg.contains(&format!("key `{key}`")),
                "invalid `{key}` names file and key: {msg}"
            );
        }
    }

    #[test]
    fn an_empty_chat_resource_sends_none_and_a_non_uri_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.resource_indicator(),
            Some(DEFAULT_CHAT_RESOURCE),
            "the chat resource is sent by default"
        );
        write(dir.path(), "chat_resource = \"\"\n");
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.resource_indicator(),
            None,
            "`chat_resource = \"\"` turns the resource parameter off"
        );
        write(
            dir.path(),
            "chat_resource = \"https://chat.example.test/\"\n",
        );
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(c.resource_indicator(), Some("https://chat.example.test/"));
        for bad in ["confab-chat", " "] {
            write(dir.path(), &format!("chat_resource = \"{bad}\"\n"));
            let msg = AppConfig::load_with_env(dir.path(), env_of(&[]))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("key `chat_resource`") && msg.contains("absolute URI"),
                "a set resource must still be an absolute URI: {msg}"
            );
        }
    }

    #[test]
    fn clear_text_is_only_for_this_machine() {
        for (url, local) in [
            ("http://127.0.0.1:8400", true),
            ("http://127.3.4.5", true),
            ("http://localhost:8400", true),
            ("http://[::1]:8400", true),
            ("http://id.example.test", false),
            ("http://10.0.0.1", false),
            ("http://localhost.example.test", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), local, "{url}");
        }
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "issuer = \"https://id.example.test\"\nchat_url = \"wss://chat.example.test/c\"\n",
        );
        assert!(AppConfig::load_with_env(dir.path(), env_of(&[])).is_ok());
        let msg = AppConfig::load_with_env(
            dir.path(),
            env_of(&[("CONFAB_CHAT_URL", "ws://chat.example.test/c")]),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(msg.contains("must use wss"), "{msg}");
        let msg = AppConfig::load_with_env(
            dir.path(),
            env_of(&[(
                ENV_CHAT_TOKEN_ENDPOINT,
                "http://backend.example.test/api/chat/token",
            )]),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("chat_token_endpoint") && msg.contains("must use https"),
            "{msg}"
        );
        let local = AppConfig::load_with_env(
            dir.path(),
            env_of(&[(
                ENV_CHAT_TOKEN_ENDPOINT,
                "http://127.0.0.1:8000/api/chat/token",
            )]),
        )
        .expect("a backend on this machine may use http");
        assert_eq!(
            local.token_endpoint().map(|u| u.to_string()),
            Some("http://127.0.0.1:8000/api/chat/token".to_owned())
        );
    }

    #[test]
    fn the_token_endpoint_defaults_to_the_chat_servers_own_and_none_turns_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let load = |vars: &[(&str, &str)]| {
            AppConfig::load_with_env(dir.path(), env_of(vars))
                .expect("loads")
                .token_endpoint()
                .map(|u| u.to_string())
        };
        assert_eq!(
            load(&[]),
            Some("http://127.0.0.1:8401/api/chat/token".to_owned()),
            "the embedded default: the chat server's own endpoint"
        );
        assert_eq!(
            load(&[
                ("CONFAB_ISSUER", "https://id.example.test"),
                (
                    "CONFAB_CHAT_URL",
                    "wss://chat.example.test:8443/connection/websocket?x=1"
                ),
            ]),
            Some("https://chat.example.test:8443/api/chat/token".to_owned()),
            "wss gives https on the chat URL's host"
        );
        assert_eq!(
            load(&[(ENV_CHAT_TOKEN_ENDPOINT, "none")]),
            None,
            "none: the provider's token itself"
        );
        write(dir.path(), "chat_token_endpoint = \"none\"\n");
        assert_eq!(load(&[]), None, "none in the file");
        write(dir.path(), "chat_token_endpoint = \"chat-server\"\n");
        assert_eq!(
            load(&[]),
            Some("http://127.0.0.1:8401/api/chat/token".to_owned())
        );
        write(dir.path(), "chat_token_endpoint = \"somewhere\"\n");
        let msg = AppConfig::load_with_env(dir.path(), env_of(&[]))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("chat_token_endpoint") && msg.contains("\"none\""),
            "a bad value says what is accepted: {msg}"
        );
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        for (var, value) in [
            (ENV_ISSUER, "::nope"),
            (ENV_CHAT_URL, "nope"),
            (ENV_REDIRECT_MODE, "sometimes"),
            (ENV_LOGIN_TIMEOUT_SECS, "soon"),
        ] {
            let msg = AppConfig::load_with_env(dir.path(), env_of(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(msg.contains(var), "a bad {var} names the variable: {msg}");
        }
        let msg = AppConfig::load_with_env(dir.path(), env_of(&[(ENV_SCOPES, "email")]))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("openid"),
            "scopes without openid are rejected even from the environment: {msg}"
        );
    }

    #[test]
    fn data_dir_override() {
        let default = PathBuf::from("default-dir");
        assert_eq!(
            data_dir_with_env(default.clone(), env_of(&[])),
            default,
            "no override keeps the platform dir"
        );
        assert_eq!(
            data_dir_with_env(default, env_of(&[(ENV_DATA_DIR, "isolated")])),
            PathBuf::from("isolated"),
            "CONFAB_DATA_DIR isolates test runs"
        );
    }

    #[test]
    fn vault_key_defaults_to_keychain_and_can_be_forced_to_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.vault_key,
            VaultKeyMode::Keychain,
            "the vault key comes from the OS keychain by default"
        );
        let c =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_VAULT_KEY, "passphrase")])).unwrap();
        assert_eq!(
            c.vault_key,
            VaultKeyMode::Passphrase,
            "CONFAB_VAULT_KEY=passphrase forces the passphrase"
        );
        write(dir.path(), "vault_key = \"passphrase\"\n");
        let c = AppConfig::load_with_env(dir.path(), env_of(&[])).unwrap();
        assert_eq!(
            c.vault_key,
            VaultKeyMode::Passphrase,
            "the file can choose it too"
        );
        let e =
            AppConfig::load_with_env(dir.path(), env_of(&[(ENV_VAULT_KEY, "usb")])).unwrap_err();
        assert!(
            e.to_string().contains("CONFAB_VAULT_KEY"),
            "an unknown key source names the variable: {e}"
        );
    }
}
