//! Secret storage: Stronghold vault with keys from the OS keychain or a passphrase.

pub mod error;

pub use error::{Error, Result};
