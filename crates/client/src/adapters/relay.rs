//! confab-session's [`TokenManager`] as confab-relay's [`TokenSource`].

use std::sync::{Arc, Mutex};

use confab_protocol::Token;
use confab_session::{AccessToken, SessionEvent, TokenManager};
use tokio::sync::{broadcast, watch};

use confab_relay::{BoxFuture, TokenError, TokenSource};

/// Hands the session's access tokens to the relay and turns its `refreshed` events into
/// in-band `refresh` commands. Must be created inside a tokio runtime.
pub struct SessionTokens {
    manager: TokenManager,
    last: Mutex<Option<Arc<AccessToken>>>,
    changes: watch::Receiver<u64>,
}

fn map_err(e: confab_session::Error) -> TokenError {
    match e {
        confab_session::Error::SignedOut(_) => TokenError::SignedOut,
        other => TokenError::Unavailable(other.to_string()),
    }
}

impl SessionTokens {
    /// Wraps a token manager.
    pub fn new(manager: TokenManager) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let mut events = manager.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(SessionEvent::Refreshed { .. })
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tx.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                if tx.is_closed() {
                    break;
                }
            }
        });
        Self {
            manager,
            last: Mutex::new(None),
            changes: rx,
        }
    }

    fn keep(&self, t: Arc<AccessToken>) -> Token {
        let token = Token::new(t.expose_secret().to_owned());
        // A poisoned lock only means a panic elsewhere mid-assignment; the value is still usable.
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        token
    }
}

impl TokenSource for SessionTokens {
    fn token(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let t = self.manager.access_token().await.map_err(map_err)?;
            Ok(self.keep(t))
        })
    }

    fn rejected(&self) -> BoxFuture<'_, Result<Token, TokenError>> {
        Box::pin(async move {
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let t = match last {
                Some(last) => self.manager.refresh_rejected(&last).await,
                None => self.manager.access_token().await,
            }
            .map_err(map_err)?;
            Ok(self.keep(t))
        })
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changes.clone())
    }
}
