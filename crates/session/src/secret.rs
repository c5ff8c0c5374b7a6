//! [`Secret`]: the type tokens travel in inside this crate.

use std::fmt;

use zeroize::Zeroizing;

/// A token (access, refresh or ID token). `Debug` prints `[redacted]`, there is no `Display`
/// and no `Serialize`, and the bytes are overwritten on drop. Read it with
/// [`Secret::expose_secret`] only where it has to leave the process (HTTP request, vault).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret; the string is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret text. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
