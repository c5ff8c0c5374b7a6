//! Secret storage for Confab: a [`SecretStore`] trait with a Stronghold-backed implementation
//! ([`StrongholdStore`]) whose snapshot key comes from the OS keychain or a passphrase
//! ([`KeySource`]), and an in-memory implementation ([`MemoryStore`]) for tests.
//!
//! No tauri here: the engine is `iota_stronghold`, the same one tauri-plugin-stronghold wraps.
//! See the crate README for file format, parameters and error handling.

pub mod error;
mod fsutil;
mod key;
mod record;
mod store;
mod stronghold;

/// The account an entry belongs to (confab-types' one `AccountId`); entries are namespaced by
/// it.
pub use confab_types::AccountId;
/// The secret string entries and the passphrase travel in (confab-types' one secret type, also
/// re-exported by confab-auth).
pub use confab_types::SecretString;
pub use error::{Error, Result};
pub use key::{
    KeySource, KeychainKey, PassphraseKey, RawKey, ARGON2_M_KIB, ARGON2_P, ARGON2_T,
    KEYCHAIN_ACCOUNT, KEYCHAIN_BACKEND, KEYCHAIN_SERVICE, SALT_LEN,
};
pub use store::{MemoryStore, SecretStore};
pub use stronghold::{key_info_path, StrongholdStore, KEY_INFO_SUFFIX, SNAPSHOT_WORK_FACTOR};
