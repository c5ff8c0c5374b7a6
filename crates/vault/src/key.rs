//! Where the vault key comes from: the OS keychain, a passphrase (Argon2id), or raw bytes.
//!
//! Whatever the source, it yields 32 bytes of key material ([`VaultKey`]). From it two
//! independent values are derived with HMAC-SHA256 under fixed labels: the Stronghold snapshot
//! key, and a *key check* stored in the vault's key-info file so a wrong key is told apart from a
//! corrupt snapshot without touching the snapshot.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Error, Result, SecretString};

/// Keychain service name of the vault key.
pub const KEYCHAIN_SERVICE: &str = "dev.confab.chat";
/// Keychain account (user) name of the vault key.
pub const KEYCHAIN_ACCOUNT: &str = "vault-key";

/// Argon2id memory cost in KiB (64 MiB), used for new passphrase vaults.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id iterations, used for new passphrase vaults.
pub const ARGON2_T: u32 = 3;
/// Argon2id lanes, used for new passphrase vaults.
pub const ARGON2_P: u32 = 1;
/// Salt length in bytes for new passphrase vaults.
pub const SALT_LEN: usize = 16;

const KEY_LEN: usize = 32;
const LABEL_SNAPSHOT: &[u8] = b"confab-vault/v1/snapshot-key";
const LABEL_CHECK: &[u8] = b"confab-vault/v1/key-check";

/// 32 bytes of key material. Zeroized on drop, `Debug` is redacted.
pub(crate) struct VaultKey(Zeroizing<[u8; KEY_LEN]>);

impl VaultKey {
    fn random() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self(k)
    }

    fn mac(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        // HMAC accepts keys of any length, so new_from_slice cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC-SHA256 accepts a 32-byte key");
        mac.update(label);
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The Stronghold snapshot key.
    pub(crate) fn snapshot_key(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.mac(LABEL_SNAPSHOT).to_vec())
    }

    /// The non-secret check value stored in the key-info file.
    pub(crate) fn check_value(&self) -> [u8; 32] {
        *self.mac(LABEL_CHECK)
    }

    /// Constant-time comparison with a stored check value.
    pub(crate) fn matches(&self, check: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC-SHA256 accepts a 32-byte key");
        mac.update(LABEL_CHECK);
        mac.verify_slice(check).is_ok()
    }
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey([redacted])")
    }
}

/// Argon2id parameters as recorded in a vault's key-info file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Argon2Record {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    /// base64 salt
    pub salt: String,
}

/// The key-info file: non-secret facts needed to get the key for an existing vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyInfo {
    pub format: String,
    pub key_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argon2: Option<Argon2Record>,
    /// base64 HMAC-SHA256(key, "confab-vault/v1/key-check")
    pub key_check: String,
}

pub(crate) const KEY_INFO_FORMAT: &str = "confab-vault-keyinfo/1";

/// Where the vault key comes from. Pick [`KeySource::keychain`] by default; fall back to
/// [`KeySource::passphrase`] when it fails with [`Error::KeychainUnavailable`] or when the user
/// chose a passphrase. Drop the source after opening: the store keeps only the derived key.
#[derive(Debug)]
pub enum KeySource {
    /// 32 random bytes in the OS keychain, created on first use.
    Keychain(KeychainKey),
    /// A passphrase stretched with Argon2id.
    Passphrase(PassphraseKey),
    /// Raw key bytes supplied by the caller (tests, benchmarks, embedding with another keystore).
    Raw(RawKey),
}

impl KeySource {
    /// The OS keychain under the app's service name ([`KEYCHAIN_SERVICE`]/[`KEYCHAIN_ACCOUNT`]).
    pub fn keychain() -> Self {
        KeySource::Keychain(KeychainKey::default())
    }

    /// A passphrase; it is zeroized when the source is dropped.
    pub fn passphrase(passphrase: SecretString) -> Self {
        KeySource::Passphrase(PassphraseKey::new(passphrase))
    }

    /// Raw 32-byte key material.
    pub fn raw(key: [u8; 32]) -> Self {
        KeySource::Raw(RawKey(Zeroizing::new(key)))
    }

    /// Name of the source kind as recorded in the key-info file.
    pub fn kind(&self) -> &'static str {
        match self {
            KeySource::Keychain(_) => "keychain",
            KeySource::Passphrase(_) => "passphrase",
            KeySource::Raw(_) => "raw",
        }
    }

    /// Key and key-info for a new vault.
    pub(crate) fn new_key(&self) -> Result<(VaultKey, KeyInfo)> {
        let (key, argon2) = match self {
            KeySource::Keychain(k) => (k.load_or_create()?, None),
            KeySource::Passphrase(p) => {
                let mut salt = [0u8; SALT_LEN];
                rand::rngs::OsRng.fill_bytes(&mut salt);
                let record = Argon2Record {
                    m_kib: ARGON2_M_KIB,
                    t: ARGON2_T,
                    p: ARGON2_P,
                    salt: B64.encode(salt),
                };
                (p.derive(&record)?, Some(record))
            }
            KeySource::Raw(r) => (VaultKey(r.0.clone()), None),
        };
        let info = KeyInfo {
            format: KEY_INFO_FORMAT.to_owned(),
            key_source: self.kind().to_owned(),
            argon2,
            key_check: B64.encode(key.check_value()),
        };
        Ok((key, info))
    }

    /// Key for an existing vault described by `info` (kind already checked by the caller).
    pub(crate) fn existing_key(
        &self,
        info: &KeyInfo,
        info_path: &std::path::Path,
    ) -> Result<VaultKey> {
        match self {
            KeySource::Keychain(k) => k.load(),
            KeySource::Passphrase(p) => {
                let record = info.argon2.as_ref().ok_or_else(|| Error::Corrupt {
                    path: info_path.to_owned(),
                    reason: "passphrase vault without Argon2 parameters".into(),
                })?;
                p.derive(record).map_err(|e| match e {
                    Error::Kdf(reason) => Error::Corrupt {
                        path: info_path.to_owned(),
                        reason: format!("unusable Argon2 parameters: {reason}"),
                    },
                    other => other,
                })
            }
            KeySource::Raw(r) => Ok(VaultKey(r.0.clone())),
        }
    }
}

/// The system keychain this build stores the vault key in on this platform: Secret Service
/// (Linux, FreeBSD, OpenBSD), the Apple keychain (macOS, iOS), Credential Manager (Windows).
/// `None` elsewhere (Android among them), where keyring would silently use its in-memory mock:
/// a key kept there is gone at the next start. There the keychain is reported unavailable, so
/// the app offers the passphrase instead.
pub const KEYCHAIN_BACKEND: Option<&str> = if cfg!(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd"
)) {
    Some("secret-service")
} else if cfg!(any(target_os = "macos", target_os = "ios")) {
    Some("apple-keychain")
} else if cfg!(target_os = "windows") {
    Some("windows-credential-manager")
} else {
    None
};

/// Whether keyring's store for `entry` is its in-memory mock (nothing survives the process).
fn is_mock(entry: &keyring::Entry) -> bool {
    entry.get_credential().is::<keyring::mock::MockCredential>()
}

/// The vault key kept in the OS keychain (see [`KEYCHAIN_BACKEND`]) as base64 text.
#[derive(Clone, Debug)]
pub struct KeychainKey {
    service: String,
    account: String,
}

impl Default for KeychainKey {
    fn default() -> Self {
        Self::new(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT)
    }
}

impl KeychainKey {
    /// A keychain entry with a custom service/account (tests, several profiles).
    pub fn new(service: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            account: account.into(),
        }
    }

    fn entry(&self) -> Result<keyring::Entry> {
        if KEYCHAIN_BACKEND.is_none() {
            return Err(Error::KeychainUnavailable(format!(
                "this platform ({}) has no system keychain Confab can use",
                std::env::consts::OS
            )));
        }
        let entry = keyring::Entry::new(&self.service, &self.account).map_err(map_keyring)?;
        if is_mock(&entry) {
            // keyring's default store changed under us: never keep the vault key in memory.
            return Err(Error::KeychainUnavailable(
                "the keychain library offers only an in-memory store here".into(),
            ));
        }
        Ok(entry)
    }

    /// Reads the key; [`Error::KeyMissing`] if there is none.
    pub(crate) fn load(&self) -> Result<VaultKey> {
        let text = Zeroizing::new(self.entry()?.get_password().map_err(map_keyring)?);
        let bytes = Zeroizing::new(B64.decode(text.trim()).map_err(|_| Error::KeyMalformed)?);
        if bytes.len() != KEY_LEN {
            return Err(Error::KeyMalformed);
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(&bytes);
        Ok(VaultKey(k))
    }

    /// Reads the key, or creates and stores 32 random bytes if there is none (or the entry is not
    /// a valid key). An existing valid key is reused, never replaced: another vault may need it.
    pub(crate) fn load_or_create(&self) -> Result<VaultKey> {
        match self.load() {
            Ok(k) => Ok(k),
            Err(Error::KeyMissing | Error::KeyMalformed) => {
                let key = VaultKey::random();
                let text = Zeroizing::new(B64.encode(key.0.as_ref()));
                self.entry()?.set_password(&text).map_err(map_keyring)?;
                Ok(key)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the keychain entry (after a reset, or in tests). Missing entry is not an error.
    pub fn delete(&self) -> Result<()> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring(e)),
        }
    }
}

fn map_keyring(e: keyring::Error) -> Error {
    match e {
        keyring::Error::NoEntry => Error::KeyMissing,
        keyring::Error::BadEncoding(_) => Error::KeyMalformed,
        other => Error::KeychainUnavailable(other.to_string()),
    }
}

/// A passphrase, stretched with Argon2id (m = 64 MiB, t = 3, p = 1, 16-byte random salt for new
/// vaults; existing vaults use the parameters recorded in their key-info file).
pub struct PassphraseKey {
    passphrase: SecretString,
}

impl PassphraseKey {
    /// Wraps the passphrase; it is zeroized when this value is dropped.
    pub fn new(passphrase: SecretString) -> Self {
        Self { passphrase }
    }

    fn derive(&self, record: &Argon2Record) -> Result<VaultKey> {
        if self.passphrase.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        // Bounds keep a tampered key-info file from making us allocate gigabytes or spin forever.
        if !(8 * 1024..=1024 * 1024).contains(&record.m_kib)
            || !(1..=16).contains(&record.t)
            || !(1..=16).contains(&record.p)
        {
            return Err(Error::Kdf("parameters out of bounds".into()));
        }
        let salt = B64
            .decode(&record.salt)
            .map_err(|_| Error::Kdf("salt is not base64".into()))?;
        let params = Params::new(record.m_kib, record.t, record.p, Some(KEY_LEN))
            .map_err(|e| Error::Kdf(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(
                self.passphrase.expose_secret().as_bytes(),
                &salt,
                k.as_mut(),
            )
            .map_err(|e| Error::Kdf(e.to_string()))?;
        Ok(VaultKey(k))
    }
}

impl fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassphraseKey([redacted])")
    }
}

/// Raw 32-byte key material supplied by the caller. Zeroized on drop.
pub struct RawKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store keyring picks on this target with the crate's features: a real keychain on
    /// every target family that has one (and `KEYCHAIN_BACKEND` names it), never the mock.
    #[test]
    fn the_default_store_is_the_platform_keychain_never_the_mock() {
        let expected = if cfg!(any(
            target_os = "linux",
            target_os = "freebsd",
            target_os = "openbsd"
        )) {
            Some("secret-service")
        } else if cfg!(any(target_os = "macos", target_os = "ios")) {
            Some("apple-keychain")
        } else if cfg!(target_os = "windows") {
            Some("windows-credential-manager")
        } else {
            None // Android and the rest: keyring's default there is the mock
        };
        assert_eq!(KEYCHAIN_BACKEND, expected);
        let entry = keyring::Entry::new("confab-vault-unit-test", "probe").expect("entry");
        assert_eq!(
            is_mock(&entry),
            KEYCHAIN_BACKEND.is_none(),
            "keyring's default store is the mock exactly where no backend is named"
        );
    }

    /// Where keyring would fall back to its mock, the keychain is unavailable (the app then
    /// offers the passphrase) rather than a store that forgets the key at exit.
    #[test]
    fn without_a_backend_the_keychain_is_unavailable() {
        let key = KeychainKey::new("confab-vault-unit-test", "probe");
        let r = key.entry();
        if KEYCHAIN_BACKEND.is_none() {
            assert!(matches!(r, Err(Error::KeychainUnavailable(_))), "{r:?}");
        } else {
            assert!(r.is_ok(), "an entry of the real keychain: {r:?}");
        }
    }
}
