//! Confab app configuration: TOML file in the config dir with environment overrides.

pub mod error;

pub use error::{Error, Result};
