//! OpenID Connect sign-in for native apps (RFC 8252): discovery, PKCE S256, one-time `state`,
//! `nonce`, RFC 9207 `iss` check, callback parsing and validation, code exchange, ID token
//! validation, refresh, RFC 7009 revocation and the RP-initiated logout URL.
//!
//! Secrets (code, verifier, tokens) only ever live in [`SecretString`] or `openidconnect`'s
//! secret types; the UI may see [`UserInfo`], [`ProviderInfo`], [`PendingInfo`] and
//! [`ErrorCode`]s.

pub mod callback;
pub mod client;
pub mod error;
pub mod loopback;
pub mod provider;
pub mod secret;

pub use callback::{
    parse_callback, CallbackParams, ProviderErrorParams, RedirectKind, RedirectTarget,
};
pub use client::{
    AuthClient, AuthConfig, Clock, LoginStart, ManualClock, PendingInfo, SignedIn, SystemClock,
    TokenSet, UserInfo, MAX_RETRY_AFTER,
};
pub use error::{Error, ErrorCode, IdTokenProblem, Result};
pub use loopback::LoopbackListener;
pub use provider::{ExtraProviderMetadata, ProviderInfo};
pub use secret::SecretString;
