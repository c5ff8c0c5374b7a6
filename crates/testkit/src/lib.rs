//! Test support: runs the test identity provider and completes logins headlessly.

pub mod error;

pub use error::{Error, Result};
