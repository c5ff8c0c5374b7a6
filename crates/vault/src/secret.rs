//! Secret values and account identifiers.

use std::fmt;
use zeroize::Zeroizing;

/// A text secret (refresh token, …). Zeroized on drop; `Debug` prints `[redacted]`;
/// deliberately neither `Display` nor `Serialize`. Read it with [`SecretString::expose_secret`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret; the string is moved, not copied.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret text. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Length in bytes (handy for checks that must not print the value).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// The account a secret belongs to: the OpenID issuer and the subject (`sub`) at that issuer.
/// Several accounts coexist in one store; their secrets never mix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    /// Issuer URL, exactly as in the ID token's `iss`.
    pub issuer: String,
    /// Subject identifier, exactly as in the ID token's `sub`.
    pub subject: String,
}

impl AccountId {
    /// Builds an account id.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// Unambiguous storage key for `(issuer, subject, name)`: every part is length-prefixed, so no
    /// choice of issuer/subject/name can collide with another account's entry.
    pub(crate) fn record_key(&self, name: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(16 + self.issuer.len() + self.subject.len() + name.len());
        key.extend_from_slice(b"confab/v1/");
        for part in [self.issuer.as_str(), self.subject.as_str(), name] {
            key.extend_from_slice(part.len().to_string().as_bytes());
            key.push(b':');
            key.extend_from_slice(part.as_bytes());
        }
        key
    }

    /// Prefix shared by all record keys of this account.
    pub(crate) fn record_prefix(&self) -> Vec<u8> {
        let mut key = self.record_key("");
        // drop the trailing "0:" of the empty name
        key.truncate(key.len() - 2);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_never_collide_across_accounts() {
        let a = AccountId::new("https://i/a", "b:c");
        let b = AccountId::new("https://i/a:b", "c");
        assert_ne!(
            a.record_key("x"),
            b.record_key("x"),
            "length prefixes keep (issuer, subject) pairs apart"
        );
        assert!(
            a.record_key("refresh_token")
                .starts_with(&a.record_prefix()),
            "every key of an account starts with its prefix"
        );
        assert!(
            !b.record_key("x").starts_with(&a.record_prefix()),
            "another account's keys never match this account's prefix (sign-out wipes only it)"
        );
        let short = AccountId::new("https://i", "1");
        let longer = AccountId::new("https://i", "12");
        assert!(
            !longer.record_key("x").starts_with(&short.record_prefix()),
            "a subject that extends another subject is not matched by its prefix"
        );
    }
}
