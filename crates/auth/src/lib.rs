//! OpenID Connect sign-in for native apps (RFC 8252): discovery, PKCE S256, one-time `state`,
//! `nonce`, RFC 9207 `iss` check, callback parsing and validation, code exchange, ID token
//! validation, refresh, RFC 7009 revocation and the RP-initiated logout URL.
//!
//! Secrets (code, verifier, tokens) only ever live in [`SecretString`] (confab-types' secret
//! type, made with its `new_secret_type!`) or `openidconnect`'s secret types; the UI may see
//! [`UserInfo`], [`ProviderInfo`], [`PendingInfo`] and [`ErrorCode`]s.
//!
//! Login deadlines are monotonic time, read from an injectable [`MonotonicClock`].

pub mod callback;
pub mod client;
pub mod error;
pub mod loopback;
pub mod provider;

pub use callback::{
    parse_callback, CallbackParams, ProviderErrorParams, RedirectKind, RedirectTarget,
};
pub use client::{
    AuthClient, AuthConfig, LoginStart, ManualMonotonicClock, MonotonicClock, PendingInfo,
    SignedIn, SystemMonotonicClock, TokenSet, UserInfo, ASSUMED_TOKEN_LIFETIME, MAX_RETRY_AFTER,
    MAX_TOKEN_LIFETIME,
};
/// The secret string tokens, codes and `state`s travel in: confab-types' one secret type
/// (re-exported by confab-vault too, so a token goes into the vault without conversion).
pub use confab_types::SecretString;
pub use error::{Error, ErrorCode, IdTokenProblem, Result};
pub use loopback::LoopbackListener;
pub use provider::{ExtraProviderMetadata, ProviderInfo};
