//! Where connection tokens come from.

use std::future::Future;
use std::pin::Pin;

use confab_protocol::Token;
use tokio::sync::watch;

/// A boxed future, as returned by [`TokenSource`] and [`crate::Connector`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The user is signed out: the relay stops and reports `signed-out`.
    #[error("signed out")]
    SignedOut,
    /// A temporary failure (network, IdP down): the relay backs off and retries.
    #[error("token temporarily unavailable: {0}")]
    Unavailable(String),
}

/// Supplies access tokens for the chat connection.
///
/// `token` is called before every connection attempt and for each in-band `refresh`; it should
/// return a token with a useful lifetime left (the session layer refreshes ahead of expiry).
/// `rejected` is called when the server refused a token as expired or invalid; it should get a
/// new one. `changes` optionally notifies when a new token is available, so the relay can send
/// `refresh` at once instead of waiting for its own timer.
pub trait TokenSource: Send + Sync + 'static {
    /// The current access token.
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>>;
    /// The server rejected the token last handed out; return a fresh one.
    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>>;
    /// A counter that changes whenever a new token is available (optional).
    fn changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// A fixed token: for tools and tests that get a token elsewhere. `rejected` returns the same
/// token (so a rejection ends in backoff, and finally in the server's terminal disconnect).
pub struct StaticToken(Token);

impl StaticToken {
    /// Wraps a token.
    pub fn new(token: Token) -> Self {
        Self(token)
    }
}

impl TokenSource for StaticToken {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        self.token()
    }
}
