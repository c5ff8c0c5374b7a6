//! [`SecretString`]: the one type tokens and codes travel in.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A string that must never be logged, displayed, serialized or sent to the UI.
///
/// `Debug` prints `[redacted]`, there is no `Display` and no `Serialize`, and the bytes are
/// overwritten when the value is dropped. Read it with [`SecretString::expose_secret`] exactly
/// where it has to leave the process (an HTTP request, the vault).
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wrap a secret. The argument is moved, so no plain copy stays behind.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself. Use only to hand it to an HTTP request or a secret store.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretString::new("super-secret-refresh-token".into());
        let dbg = format!("{s:?} {:?}", Some(&s));
        assert!(
            !dbg.contains("super-secret"),
            "Debug output must never contain the secret"
        );
        assert!(
            dbg.contains("[redacted]"),
            "Debug output says the value is redacted"
        );
        assert_eq!(
            s.expose_secret(),
            "super-secret-refresh-token",
            "expose_secret returns the value"
        );
    }
}
