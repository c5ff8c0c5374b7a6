//! OpenID Connect sign-in for native apps: discovery, PKCE, callback validation, code exchange.

pub mod error;

pub use error::{Error, Result};
