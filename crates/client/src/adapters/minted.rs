//! Chat tokens from the organisation's backend: [`MintedTokens`] is a relay [`TokenSource`]
//! that exchanges the sign-in's access token (from an inner source, the session) at a chat token
//! endpoint (`POST`, Bearer) for a short-lived connection token, the way a Centrifugo deployment
//! (or confab-server's backend role) wants it. The endpoint's answer comes in one of three
//! shapes ([`ChatTokenShape`]):
//!
//! - **confab**: `{"token", "expires_in"}`; renewed by minting again.
//! - **ChatSDK** (seed 003): `{"accessToken", "refreshToken", "expiresAt"}` (`expiresAt` in epoch
//!   milliseconds). Renewed at the refresh endpoint with the chat refresh token (`{"refreshToken"}`
//!   → a new triple); each rotated one is saved in the vault before the new access token is used;
//!   one the backend refuses (reused, revoked, expired) is dropped and a new one minted through
//!   the first tier. Sign-out: the token leaves the vault, then the logout endpoint invalidates it.
//! - **ChatKit** (seed 002): `{"client_secret", "expires_at"}` (`expires_at` in seconds or
//!   milliseconds: a value from 10¹² on is milliseconds). Renewed at the refresh endpoint with the
//!   current secret (`{"client_secret"}`), falling back to a new session when it is refused. The
//!   secret lives in memory only.
//!
//! For all three:
//! - **Single-flight, renewed ahead of expiry.** One request at a time however many callers wait;
//!   a token is reused until `min(5 min, half its life)` before it expires (the relay's own
//!   in-band refresh comes at half the server's ttl, and then gets a new one).
//! - **401/403** from the mint: the sign-in's access token is refreshed once (the inner
//!   source's `rejected`) and the mint tried again; a second one is a temporary failure (the
//!   relay backs off), not a sign-out.
//! - **429**: no request before `Retry-After` (any form confab-types reads, epoch milliseconds
//!   included; 5 s without one, 5 min at most) has passed.
//! - Tokens never reach a log or an error text; the endpoint's own `error_description` may.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use confab_backends::body::secret_body;
use confab_config::ChatTokenShape;
use confab_protocol::Token;
use confab_relay::{BoxFuture, TokenError, TokenSource};
use confab_session::{RefreshTokenStore, Secret};
use confab_types::SecretString;
use serde_json::Value;
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;
use url::Url;

/// How long a request to the chat token tier may take.
const MINT_TIMEOUT: Duration = Duration::from_secs(15);
/// Wait after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured (a larger one is cut to this).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Renew this long before expiry at most (seed 003: five minutes); shorter-lived tokens are
/// renewed at half their life.
const RENEW_AHEAD: Duration = Duration::from_secs(300);
/// `expires_at` values from here on are epoch milliseconds (ChatKit sends either).
const EPOCH_MILLIS_FROM: u64 = 1_000_000_000_000;

/// A token in use: the token, when it was obtained and when it expires.
struct Held {
    token: Token,
    obtained: Instant,
    expires: Instant,
}

impl Held {
    /// Whether its renewal is not due yet (`min(5 min, half its life)` before it expires).
    fn fresh(&self) -> bool {
        let life = self.expires.saturating_duration_since(self.obtained);
        Instant::now() + RENEW_AHEAD.min(life / 2) < self.expires
    }
}

#[derive(Default)]
struct Cache {
    held: Option<Held>,
    not_before: Option<Instant>,
    /// ChatSDK: the chat refresh token (read from the store on first use).
    refresh: Option<Secret>,
    loaded: bool,
}

/// What one answer of the tier gave.
struct Minted {
    token: Token,
    life: Duration,
    refresh: Option<Secret>,
}

enum Mint {
    Unauthorized(String),
    TooMany(Duration),
    Failed(String),
}

/// See the module documentation.
pub struct MintedTokens {
    inner: Arc<dyn TokenSource>,
    endpoint: Url,
    shape: ChatTokenShape,
    /// ChatSDK: where the chat refresh token is kept (the account's vault entry).
    store: Option<Arc<dyn RefreshTokenStore>>,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl MintedTokens {
    /// Chat tokens of the confab shape from `endpoint`, bought with the access tokens of `inner`.
    pub fn new(inner: Arc<dyn TokenSource>, endpoint: Url) -> Result<Self, TokenError> {
        Self::with_shape(inner, endpoint, ChatTokenShape::Confab, None)
    }

    /// Chat tokens of `shape` from `endpoint`; `store` keeps a ChatSDK chat refresh token
    /// (without one it lives in memory only, and a restart mints afresh).
    pub fn with_shape(
        inner: Arc<dyn TokenSource>,
        endpoint: Url,
        shape: ChatTokenShape,
        store: Option<Arc<dyn RefreshTokenStore>>,
    ) -> Result<Self, TokenError> {
        let http = reqwest::Client::builder()
            .timeout(MINT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TokenError::Unavailable(format!("chat token client: {e}")))?;
        Ok(Self {
            inner,
            endpoint,
            shape,
            store,
            http,
            cache: Mutex::new(Cache {
                loaded: false,
                ..Cache::default()
            }),
        })
    }

    /// `POST url`, with the sign-in's access token as Bearer or a JSON body of one secret field.
    async fn post(
        &self,
        url: &Url,
        bearer: Option<&Token>,
        field: Option<(&str, &SecretString)>,
    ) -> Result<reqwest::Response, Mint> {
        let mut request = self.http.post(url.clone());
        if let Some(access) = bearer {
            request = request.bearer_auth(access.expose_secret());
        }
        if let Some((name, secret)) = field {
            let body = secret_body(&[], name, secret).map_err(|e| Mint::Failed(e.to_string()))?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = request.send().await.map_err(|e| {
            Mint::Failed(format!(
                "the chat token endpoint is unreachable: {}",
                e.without_url()
            ))
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| confab_types::retry_after::parse(v, SystemTime::now()));
        let why = resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| {
                ["error_description", "detail", "error", "code"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
            })
            .map(|d| {
                d.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status.as_u16() {
            401 | 403 => Mint::Unauthorized(why),
            429 => Mint::TooMany(
                retry_after
                    .unwrap_or(DEFAULT_RETRY_AFTER)
                    .min(MAX_RETRY_AFTER),
            ),
            _ => Mint::Failed(format!("the chat token endpoint answered {why}")),
        })
    }

    /// Reads an answer of this tier's shape.
    async fn read(&self, resp: reqwest::Response) -> Result<Minted, Mint> {
        let bad = || Mint::Failed("the chat token endpoint's answer is not a token".into());
        let v: Value = resp.json().await.map_err(|_| bad())?;
        let text = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(bad)
        };
        let number = |name: &str| v.get(name).and_then(Value::as_u64).ok_or_else(bad);
        let until = |at: SystemTime| at.duration_since(SystemTime::now()).unwrap_or_default();
        let minted = match &self.shape {
            ChatTokenShape::Confab => Minted {
                token: Token::from(text("token")?),
                life: Duration::from_secs(number("expires_in")?),
                refresh: None,
            },
            ChatTokenShape::ChatSdk { .. } => Minted {
                token: Token::from(text("accessToken")?),
                life: until(UNIX_EPOCH + Duration::from_millis(number("expiresAt")?)),
                refresh: Some(Secret::from(text("refreshToken")?)),
            },
            ChatTokenShape::ChatKit { .. } => {
                let at = number("expires_at")?;
                let at = if at >= EPOCH_MILLIS_FROM {
                    UNIX_EPOCH + Duration::from_millis(at)
                } else {
                    UNIX_EPOCH + Duration::from_secs(at)
                };
                Minted {
                    token: Token::from(text("client_secret")?),
                    life: until(at),
                    refresh: None,
                }
            }
        };
        if minted.life.is_zero() {
            return Err(Mint::Failed(
                "the chat token endpoint gave a token that has already expired".into(),
            ));
        }
        Ok(minted)
    }

    /// Takes a token into use: a ChatSDK refresh token is saved before the access token is
    /// handed out (rotation-safe).
    async fn keep(&self, cache: &mut Cache, minted: Minted) -> Token {
        if let Some(refresh) = minted.refresh {
            if let Some(store) = &self.store {
                if let Err(e) = store.save(&refresh).await {
                    tracing::warn!("could not save the chat refresh token: {e}");
                }
            }
            cache.refresh = Some(refresh);
        }
        let now = Instant::now();
        cache.held = Some(Held {
            token: minted.token.clone(),
            obtained: now,
            expires: now + minted.life,
        });
        cache.not_before = None;
        minted.token
    }

    /// The ChatSDK refresh token, read from the store once.
    async fn stored_refresh(&self, cache: &mut Cache) -> Option<Secret> {
        if !cache.loaded {
            cache.loaded = true;
            if let Some(store) = &self.store {
                match store.load().await {
                    Ok(token) => cache.refresh = token,
                    Err(e) => tracing::warn!("could not read the chat refresh token: {e}"),
                }
            }
        }
        cache.refresh.clone()
    }

    /// Forgets the ChatSDK refresh token (memory and store).
    async fn drop_refresh(&self, cache: &mut Cache) {
        cache.refresh = None;
        if let Some(store) = &self.store {
            if let Err(e) = store.delete().await {
                tracing::warn!("could not delete the chat refresh token: {e}");
            }
        }
    }

    /// The second tier's own renewal (ChatSDK refresh token, ChatKit current secret): `None`
    /// when there is nothing to renew with or the backend refused it (then a new one is minted).
    async fn renew(&self, cache: &mut Cache) -> Option<Result<Token, Mint>> {
        let (url, field, secret) = match &self.shape {
            ChatTokenShape::Confab => return None,
            ChatTokenShape::ChatSdk { refresh, .. } => {
                let token = self.stored_refresh(cache).await?;
                (refresh, "refreshToken", token.expose_secret().to_owned())
            }
            ChatTokenShape::ChatKit { refresh } => {
                let url = refresh.as_ref()?;
                let held = cache.held.as_ref()?;
                (url, "client_secret", held.token.expose_secret().to_owned())
            }
        };
        let secret = SecretString::new(secret);
        let answer = match self.post(url, None, Some((field, &secret))).await {
            Ok(resp) => self.read(resp).await,
            Err(e) => Err(e),
        };
        drop(secret);
        match answer {
            Ok(minted) => Some(Ok(self.keep(cache, minted).await)),
            Err(Mint::Unauthorized(why)) => {
                tracing::info!("the chat token tier refused its renewal ({why}); minting anew");
                if matches!(self.shape, ChatTokenShape::ChatSdk { .. }) {
                    self.drop_refresh(cache).await;
                }
                cache.held = None;
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// A fresh token at the mint endpoint, bought with the sign-in's access token.
    async fn mint(&self, cache: &mut Cache) -> Result<Token, Mint> {
        let access = self.inner.token().await.map_err(|e| match e {
            TokenError::Unavailable(why) => Mint::Failed(why),
            other => Mint::Failed(other.to_string()),
        })?;
        let first = match self.post(&self.endpoint, Some(&access), None).await {
            Ok(resp) => self.read(resp).await,
            Err(e) => Err(e),
        };
        drop(access);
        let answer = match first {
            Err(Mint::Unauthorized(why)) => {
                tracing::info!(
                    "the chat token endpoint refused the access token ({why}); refreshing it once"
                );
                let fresh = self
                    .inner
                    .rejected()
                    .await
                    .map_err(|e| Mint::Failed(e.to_string()))?;
                match self.post(&self.endpoint, Some(&fresh), None).await {
                    Ok(resp) => self.read(resp).await,
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        Ok(self.keep(cache, answer?).await)
    }

    /// Obtains a token (the cache is held: one request at a time).
    async fn obtain(&self, cache: &mut Cache) -> Result<Token, TokenError> {
        let now = Instant::now();
        if let Some(wait) = cache.not_before.filter(|t| *t > now) {
            return Err(TokenError::Unavailable(format!(
                "the chat token endpoint asked to wait {} s",
                wait.duration_since(now).as_secs().max(1)
            )));
        }
        let result = match self.renew(cache).await {
            Some(result) => result,
            None => self.mint(cache).await,
        };
        result.map_err(|e| match e {
            Mint::Unauthorized(why) => TokenError::Unavailable(format!(
                "the chat token endpoint refused the sign-in: {why}"
            )),
            Mint::TooMany(wait) => {
                cache.not_before = Some(Instant::now() + wait);
                TokenError::Unavailable(format!(
                    "the chat token endpoint asked to wait {} s",
                    wait.as_secs().max(1)
                ))
            }
            Mint::Failed(why) => TokenError::Unavailable(why),
        })
    }

    /// Gives the tier's tokens up at sign-out (after the chat disconnected): a ChatSDK refresh
    /// token leaves the vault, then the backend's logout endpoint invalidates it (best effort:
    /// a failure is logged); every token is dropped from memory.
    pub async fn sign_out(&self) {
        let mut cache = self.cache.lock().await;
        cache.held = None;
        let ChatTokenShape::ChatSdk { logout, .. } = &self.shape else {
            return;
        };
        let token = self.stored_refresh(&mut cache).await;
        self.drop_refresh(&mut cache).await;
        let (Some(token), Some(url)) = (token, logout) else {
            return;
        };
        let secret = SecretString::new(token.expose_secret().to_owned());
        drop(token);
        match self.post(url, None, Some(("refreshToken", &secret))).await {
            Ok(_) => tracing::info!("the chat refresh token was invalidated at the backend"),
            Err(Mint::Unauthorized(_)) => {
                tracing::info!("the backend no longer knew the chat refresh token")
            }
            Err(Mint::TooMany(_)) | Err(Mint::Failed(_)) => {
                tracing::warn!("could not invalidate the chat refresh token at the backend")
            }
        }
    }
}

impl TokenSource for MintedTokens {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            if let Some(held) = cache.held.as_ref().filter(|h| h.fresh()) {
                return Ok(held.token.clone());
            }
            self.obtain(&mut cache).await
        })
    }

    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            cache.held = None;
            self.obtain(&mut cache).await
        })
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}
