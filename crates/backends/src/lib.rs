//! Credential backends besides OpenID Connect, as plain Rust clients the app core composes:
//!
//! - [`simplejwt`]: a first-party Django REST Framework backend with SimpleJWT (seed 004):
//!   password sign-in, rotating refresh, blacklist at sign-out.
//!
//! - [`body`]: JSON request bodies carrying a secret, in a buffer wiped after sending (also
//!   used by the app core's chat token tier).
//!
//! Secrets travel only in confab-types' [`SecretString`](confab_types::SecretString); errors are
//! [`Error`]s worded for a person, never carrying a password or a token.

pub mod body;
pub mod error;
pub mod simplejwt;

pub use error::{Error, Result};
pub use simplejwt::{Login, Profile, SimpleJwtClient, SimpleJwtSettings, Tokens};
