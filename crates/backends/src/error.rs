//! What a credential backend can fail with, in words a person can act on.

use std::time::Duration;

/// A failed request to a credential backend. Messages never carry a password or a token; the
/// backend's own `detail` text may appear (cut to 200 characters, control characters removed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The profile is unusable (a URL that is not https off loopback, a path that is not one).
    #[error("the sign-in configuration is unusable: {0}")]
    Config(String),
    /// The login form was incomplete (nothing sent).
    #[error("{0}")]
    MissingField(&'static str),
    /// Wrong email/username or password.
    #[error("that email, username or password is not right")]
    WrongCredentials,
    /// The account exists but is deactivated.
    #[error("this account is deactivated; ask your administrator")]
    Inactive,
    /// The backend refused the form's values (its own words).
    #[error("the server refused the sign-in form: {0}")]
    Invalid(String),
    /// Too many attempts: the backend asks to wait.
    #[error("too many attempts. Try again in {} s", .retry_after.as_secs().max(1))]
    RateLimited {
        /// How long the backend asked to wait (capped).
        retry_after: Duration,
    },
    /// The refresh token is not (or no longer) valid: expired, blacklisted or rotated away
    /// (SimpleJWT's 401 `token_not_valid`). The session is over, as with `invalid_grant`.
    #[error("the server ended this sign-in; sign in again")]
    TokenRefused,
    /// The backend could not be reached (connection refused, DNS, TLS, timeout).
    #[error("the server could not be reached: {0}")]
    Unreachable(String),
    /// The backend refused the request for another reason (a 4xx that is not one of the above:
    /// a wrong path or field name in the profile, most likely). Not retried.
    #[error("the server refused the request: {0}")]
    Refused(String),
    /// The backend failed (5xx) or answered something Confab does not expect.
    #[error("the server failed: {0}")]
    Server(String),
}

impl Error {
    /// Whether trying again later may succeed (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Server(_) | Self::RateLimited { .. }
        )
    }

    /// The wait a 429 asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
