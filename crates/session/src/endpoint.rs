//! What the manager needs from the identity provider: [`TokenEndpoint`].

use std::time::Duration;

use futures_util::future::BoxFuture;
use url::Url;

use crate::events::User;
use crate::secret::Secret;

/// Tokens returned by a successful refresh (or a sign-in).
#[derive(Debug)]
pub struct Tokens {
    /// The new access token.
    pub access_token: Secret,
    /// Its lifetime as reported by the server (`expires_in`). The manager turns it into an
    /// expiry time with its own clock, measured from when the request started.
    pub lifetime: Duration,
    /// The new refresh token, when the server rotated it.
    pub refresh_token: Option<Secret>,
    /// A new ID token, when the server sent one (kept for the end-session hint).
    pub id_token: Option<Secret>,
    /// Updated user profile, when the endpoint could read it from a validated ID token.
    pub user: Option<User>,
}

/// A failed token request, classified by what the manager should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Connection error, timeout, 5xx or 429: try again later (`retry_after` from the server).
    #[error("temporary failure: {reason}")]
    Transient {
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// Short description without secrets.
        reason: String,
    },
    /// `invalid_grant`: the refresh token is not (or no longer) valid.
    #[error("the refresh token was rejected (invalid_grant)")]
    InvalidGrant,
    /// Anything else (misconfiguration, malformed response). Retried with backoff, logged loudly.
    #[error("token endpoint error: {0}")]
    Fatal(String),
}

/// The identity provider's token, revocation and end-session endpoints.
///
/// The app core (confab-client) implements it over `confab_auth::AuthClient`; tests fake it.
pub trait TokenEndpoint: Send + Sync + 'static {
    /// Refresh-token grant.
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>>;

    /// RFC 7009 revocation of a refresh token.
    fn revoke<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>>;

    /// RP-initiated logout URL for the browser, if the provider supports it.
    fn end_session_url(&self, id_token_hint: Option<&Secret>) -> Option<Url>;
}
