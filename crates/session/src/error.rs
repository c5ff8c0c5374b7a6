//! Errors of this crate.

use std::time::SystemTime;

use crate::events::SignOutReason;

/// Everything that can go wrong in the token lifecycle. `Display` texts contain no secrets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The access token has expired and a new one is not available yet (a refresh is in flight
    /// beyond the wait bound, or retries are backing off). Try again shortly.
    #[error("the session is being renewed, please try again shortly")]
    Refreshing {
        /// When the next refresh attempt is scheduled, if one is waiting.
        next_try: Option<SystemTime>,
    },
    /// There is no session: never signed in, signed out, or the identity provider ended it.
    #[error("{0}")]
    SignedOut(SignOutReason),
    /// The token response carried no refresh token, so the session could not be kept.
    #[error("the identity provider did not issue a refresh token")]
    NoRefreshToken,
    /// The secret store failed.
    #[error("secret store: {0}")]
    Store(String),
    /// The token endpoint failed in a way that is not a transient network problem.
    #[error("token endpoint: {0}")]
    Endpoint(String),
    /// Writing the auth event log failed.
    #[error("auth event log: {0}")]
    Log(#[from] std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
