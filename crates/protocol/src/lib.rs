//! Wire types of the Centrifugo client protocol v2 (JSON), shared by client and server.

pub mod error;

pub use error::{Error, Result};
