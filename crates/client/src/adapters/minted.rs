//! Chat tokens from the organisation's backend: [`MintedTokens`] is a relay
//! [`TokenSource`] that exchanges the identity provider's access token (from an inner source,
//! the session) at a chat token endpoint (`POST`, Bearer → `{"token", "expires_in"}`) for a
//! short-lived connection token, the way a Centrifugo deployment (or confab-server's backend
//! role) wants it.
//!
//! - **Single-flight, renewed ahead of expiry.** One mint at a time; a token is reused until half
//!   its life is gone (the relay's own in-band refresh comes at half the server's ttl, and then
//!   gets a new one).
//! - **401** from the endpoint: the provider's token is refreshed once (the inner source's
//!   `rejected`) and the mint tried again; a second 401 is a temporary failure (the relay backs
//!   off), not a sign-out.
//! - **429**: no request before `Retry-After` (default 5 s) has passed.
//! - Tokens never reach a log or an error text; the endpoint's own `error_description` may.

use std::sync::Arc;
use std::time::Duration;

use confab_protocol::Token;
use confab_relay::{BoxFuture, TokenError, TokenSource};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;
use url::Url;

/// How long a mint request may take.
const MINT_TIMEOUT: Duration = Duration::from_secs(15);
/// Wait after a 429 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured (a larger one is cut to this).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Cache {
    token: Option<(Token, Instant, Instant)>,
    not_before: Option<Instant>,
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
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

impl MintedTokens {
    /// Chat tokens from `endpoint`, bought with the access tokens of `inner`.
    pub fn new(inner: Arc<dyn TokenSource>, endpoint: Url) -> Result<Self, TokenError> {
        let http = reqwest::Client::builder()
            .timeout(MINT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TokenError::Unavailable(format!("chat token client: {e}")))?;
        Ok(Self {
            inner,
            endpoint,
            http,
            cache: Mutex::new(Cache::default()),
        })
    }

    async fn post(&self, access: &Token) -> Result<(Token, Duration), Mint> {
        let resp = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(access.expose_secret())
            .send()
            .await
            .map_err(|e| {
                Mint::Failed(format!(
                    "the chat token endpoint is unreachable: {}",
                    e.without_url()
                ))
            })?;
        let status = resp.status();
        if status.is_success() {
            #[derive(serde::Deserialize)]
            struct Body {
                token: String,
                expires_in: u64,
            }
            let body: Body = resp.json().await.map_err(|_| {
                Mint::Failed("the chat token endpoint's answer is not a token".into())
            })?;
            if body.token.is_empty() || body.expires_in == 0 {
                return Err(Mint::Failed(
                    "the chat token endpoint gave an empty token".into(),
                ));
            }
            return Ok((Token::new(body.token), Duration::from_secs(body.expires_in)));
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| confab_types::retry_after::parse(v, std::time::SystemTime::now()));
        let why = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| {
                v.get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
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

    /// Mints a token (the cache is held: one mint at a time).
    async fn mint(&self, cache: &mut Cache) -> Result<Token, TokenError> {
        let now = Instant::now();
        if let Some(wait) = cache.not_before.filter(|t| *t > now) {
            return Err(TokenError::Unavailable(format!(
                "the chat token endpoint asked to wait {} s",
                wait.duration_since(now).as_secs().max(1)
            )));
        }
        let access = self.inner.token().await?;
        let first = self.post(&access).await;
        drop(access);
        let result = match first {
            Err(Mint::Unauthorized(why)) => {
                tracing::info!(
                    "the chat token endpoint refused the access token ({why}); refreshing it once"
                );
                let fresh = self.inner.rejected().await?;
                self.post(&fresh).await
            }
            other => other,
        };
        match result {
            Ok((token, life)) => {
                let now = Instant::now();
                cache.token = Some((token.clone(), now, now + life));
                cache.not_before = None;
                Ok(token)
            }
            Err(Mint::Unauthorized(why)) => Err(TokenError::Unavailable(format!(
                "the chat token endpoint refused the sign-in: {why}"
            ))),
            Err(Mint::TooMany(wait)) => {
                cache.not_before = Some(Instant::now() + wait);
                Err(TokenError::Unavailable(format!(
                    "the chat token endpoint asked to wait {} s",
                    wait.as_secs().max(1)
                )))
            }
            Err(Mint::Failed(why)) => Err(TokenError::Unavailable(why)),
        }
    }
}

impl TokenSource for MintedTokens {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            if let Some((token, minted, expires)) = &cache.token {
                let half = expires.duration_since(*minted) / 2;
                if Instant::now() + half < *expires {
                    return Ok(token.clone());
                }
            }
            self.mint(&mut cache).await
        })
    }

    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            cache.token = None;
            self.mint(&mut cache).await
        })
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}
