//! Value types every Confab crate shares, so each exists exactly once:
//!
//! - [`new_secret_type!`]: the one implementation of a secret string. It defines a newtype whose
//!   `Debug` prints `Name([redacted])`, that has no `Display` and no `Serialize`, that is
//!   zeroized on drop (`zeroize::Zeroizing`), compares in constant time (`subtle`) and is read
//!   only through `expose_secret()`. [`SecretString`] is the general-purpose secret defined
//!   with it (confab-auth and confab-vault re-export it); crates define their own named
//!   secrets with it (confab-session's `Secret`, confab-protocol's `Token`).
//! - [`constant_time_eq`]: the comparison those types use, for other comparisons with secrets.
//! - [`AccountId`]: an account, i.e. an OpenID issuer and the subject at that issuer.
//! - [`retry_after::parse`]: the one reading of an HTTP `Retry-After` value (delta-seconds,
//!   HTTP-date, or an epoch timestamp in seconds or milliseconds).
//!
//! No I/O and no errors here (hence no `error` module): every operation is infallible, and the
//! crate only depends on `zeroize`, `subtle`, `uuid` and `httpdate`, so every other crate can
//! use it.

pub mod account;
pub mod retry_after;
pub mod secret;

pub use account::AccountId;
pub use secret::{constant_time_eq, SecretString};

/// What [`new_secret_type!`] expands to refers to, so callers need no `zeroize` dependency of
/// their own. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use zeroize::{ZeroizeOnDrop, Zeroizing};
}
