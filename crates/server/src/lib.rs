//! Reference chat server speaking the Centrifugo client protocol v2 (JSON).

pub mod error;

pub use error::{Error, Result};
