//! A connection token on the wire, kept out of Debug output and wiped on drop.

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// A bearer token (the IdP's JWT access token). `Debug` prints `[redacted]`; the bytes are
/// zeroized when dropped. Read it with [`Token::secret`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// Wraps a token string.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token text, for the verifier or the socket only.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// True when no token was sent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}
