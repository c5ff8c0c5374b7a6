//! confab-session's [`TokenEndpoint`] over a password credential backend:
//! [`PasswordEndpoint`] over confab-backends' SimpleJWT client (seed 004's Django backend).
//! Refresh is SimpleJWT's `TokenRefreshView` (rotated refresh tokens are handed to the manager,
//! which saves them in the vault before using them), revocation its `TokenBlacklistView`,
//! there is no browser logout page.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confab_backends::SimpleJwtClient;
use confab_session::{EndpointError, Secret, TokenEndpoint, Tokens, User};
use confab_types::SecretString;
use futures_util::future::BoxFuture;
use url::Url;

use crate::revocations::PendingRevocations;

/// See the module documentation. With [`PasswordEndpoint::with_pending`] a blacklisting that
/// fails for a transient reason is noted in the vault and retried at the next start, as for an
/// identity provider's revocation.
#[derive(Clone)]
pub struct PasswordEndpoint {
    client: Arc<SimpleJwtClient>,
    pending: Option<PendingRevocations>,
}

impl PasswordEndpoint {
    /// Wraps a backend client.
    pub fn new(client: Arc<SimpleJwtClient>) -> Self {
        Self {
            client,
            pending: None,
        }
    }

    /// Keeps blacklistings that fail for a transient reason in `pending`, for a retry later.
    pub fn with_pending(mut self, pending: PendingRevocations) -> Self {
        self.pending = Some(pending);
        self
    }
}

impl std::fmt::Debug for PasswordEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordEndpoint").finish_non_exhaustive()
    }
}

/// Classifies a backend error for the retry logic: a refused refresh token ends the session
/// (as `invalid_grant` does), network, 5xx and 429 are retried, the rest is fatal.
pub fn classify_backend(err: &confab_backends::Error) -> EndpointError {
    match err {
        confab_backends::Error::TokenRefused => EndpointError::InvalidGrant,
        e if e.is_transient() => EndpointError::Transient {
            retry_after: e.retry_after(),
            reason: e.to_string(),
        },
        e => EndpointError::Fatal(e.to_string()),
    }
}

/// The session's tokens from the backend's (lifetime measured from now, as the manager wants).
fn tokens_of(tokens: confab_backends::Tokens, user: Option<User>) -> Tokens {
    Tokens {
        lifetime: tokens
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
        access_token: Secret::new(tokens.access.expose_secret().to_owned()),
        refresh_token: tokens
            .refresh
            .map(|r| Secret::new(r.expose_secret().to_owned())),
        id_token: None,
        user,
    }
}

/// Sign-in handoff of a completed password login: the user (issuer = the backend's URL) and
/// the tokens, ready for [`confab_session::TokenManagerBuilder::sign_in`].
pub fn password_handoff(issuer: &str, login: confab_backends::Login) -> (User, Tokens) {
    let profile = login.profile;
    let user = User {
        issuer: issuer.to_owned(),
        subject: profile.id,
        name: profile.name.or(Some(profile.username)),
        email: profile.email,
    };
    let tokens = tokens_of(login.tokens, Some(user.clone()));
    (user, tokens)
}

impl TokenEndpoint for PasswordEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        Box::pin(async move {
            let token = SecretString::new(refresh_token.expose_secret().to_owned());
            let tokens = self
                .client
                .refresh(&token)
                .await
                .map_err(|e| classify_backend(&e))?;
            Ok(tokens_of(tokens, None))
        })
    }

    fn revoke<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        Box::pin(async move {
            let token = SecretString::new(refresh_token.expose_secret().to_owned());
            let pending = self.pending.as_ref().filter(|_| self.client.can_revoke());
            if let Some(pending) = pending {
                if let Err(e) = pending.add(&self.client.issuer(), &token).await {
                    tracing::warn!("could not note the revocation for a retry: {e}");
                }
            }
            let outcome = self
                .client
                .blacklist(&token)
                .await
                .map_err(|e| classify_backend(&e));
            if let Some(pending) = pending {
                pending.settle(&token, &outcome).await;
            }
            outcome
        })
    }

    fn end_session_url(&self, _id_token_hint: Option<&Secret>) -> Option<Url> {
        None
    }
}
