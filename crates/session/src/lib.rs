//! Token lifecycle: background refresh, single-flight, backoff, rotation-safe persistence.

pub mod error;

pub use error::{Error, Result};
