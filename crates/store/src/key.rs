//! The store key: 32 random bytes, kept in the account's vault entry as 64 hex digits and given
//! to SQLCipher as a raw key (`x'…'`), so no key derivation runs at open.

use confab_types::SecretString;
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

/// A store's key. Its `Debug` shows nothing of it; it is wiped from memory when dropped.
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// A fresh random key (the OS's random source).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// The key as kept in the vault (64 lowercase hex digits).
    pub fn to_secret(&self) -> SecretString {
        SecretString::new(hex(self.0.as_ref()).to_string())
    }

    /// The key read back from the vault.
    pub fn from_secret(secret: &SecretString) -> crate::Result<Self> {
        let text = secret.expose_secret().as_bytes();
        if text.len() != 64 {
            return Err(crate::Error::BadKey);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (i, pair) in text.chunks_exact(2).enumerate() {
            let hi = nibble(pair[0]).ok_or(crate::Error::BadKey)?;
            let lo = nibble(pair[1]).ok_or(crate::Error::BadKey)?;
            bytes[i] = (hi << 4) | lo;
        }
        Ok(Self(bytes))
    }

    /// The `PRAGMA key` statement that opens a SQLCipher file with this key (a secret: the
    /// caller runs it and lets it drop, which wipes it).
    pub fn pragma(&self) -> Zeroizing<String> {
        let mut sql = Zeroizing::new(String::with_capacity(80));
        sql.push_str("PRAGMA key = \"x'");
        sql.push_str(&hex(self.0.as_ref()));
        sql.push_str("'\";");
        sql
    }

    /// The key in the form SQLCipher reads from `PRAGMA key` (`x'<hex>'`), for a second
    /// connection to the same file opened elsewhere (the relay's outbox).
    pub fn sqlcipher_key(&self) -> SecretString {
        let mut text = Zeroizing::new(String::with_capacity(68));
        text.push_str("x'");
        text.push_str(&hex(self.0.as_ref()));
        text.push('\'');
        SecretString::new(std::mem::take(&mut *text))
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

fn hex(bytes: &[u8]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_the_round_trip_through_the_vault_form() {
        let key = StoreKey::generate();
        let secret = key.to_secret();
        assert_eq!(secret.expose_secret().len(), 64);
        let back = StoreKey::from_secret(&secret).expect("read back");
        assert_eq!(back.0.as_ref(), key.0.as_ref());
        assert_ne!(
            StoreKey::generate().0.as_ref(),
            key.0.as_ref(),
            "each key is fresh"
        );
        assert!(key.pragma().starts_with("PRAGMA key = \"x'"));
        assert_eq!(format!("{key:?}"), "StoreKey(..)", "Debug shows nothing");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in ["", "abc", &"g".repeat(64), &"0".repeat(63), &"0".repeat(66)] {
            assert!(
                matches!(
                    StoreKey::from_secret(&SecretString::new(bad.to_owned())),
                    Err(crate::Error::BadKey)
                ),
                "{bad:?} is refused"
            );
        }
    }
}
