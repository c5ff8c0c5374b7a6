//! The keychain key source against a real Secret Service (see `support/secret_service.rs`:
//! a private `dbus-daemon` and `gnome-keyring-daemon` in a temporary directory).
//!
//! This file holds a single test on purpose: it points `DBUS_SESSION_BUS_ADDRESS` (process-wide)
//! at the private bus, which is only safe while no other test runs in the same process.
//! Needs the Debian packages `dbus` and `gnome-keyring` (installed by `cargo xtask test`); without
//! them the test fails with a message saying so.

#![cfg(all(unix, not(target_os = "macos")))]

#[path = "support/secret_service.rs"]
mod secret_service;

use confab_vault::{
    AccountId, Error, KeySource, KeychainKey, SecretStore, SecretString, StrongholdStore,
    KEYCHAIN_ACCOUNT, KEYCHAIN_SERVICE,
};
use secret_service::PrivateSecretService;

fn read(store: &StrongholdStore, account: &AccountId) -> Option<String> {
    store
        .get(account, "refresh_token")
        .expect("get")
        .map(|s| s.expose_secret().to_owned())
}

#[test]
fn keychain_key_source_against_a_real_secret_service() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = PrivateSecretService::start(tmp.path());

    let path = tmp.path().join("vault").join("vault.stronghold");
    let account = AccountId::new("https://idp.example", "alice");
    let token = "rt-keychain-canary-93f1";

    // First use: the key is created in the keychain (default service/account names).
    {
        let store = StrongholdStore::open_or_create(&path, &KeySource::keychain())
            .expect("create a keychain-protected vault");
        store
            .put(&account, "refresh_token", &SecretString::from(token))
            .expect("put");
    }
    let entry = keyring::Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT).expect("entry");
    let stored = entry
        .get_password()
        .expect("the vault key is in the keychain");
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(stored.trim())
        .expect("the keychain holds base64");
    assert_eq!(key.len(), 32, "the keychain holds 32 random key bytes");

    // Restart: the same key opens the vault.
    let store = StrongholdStore::open(&path, &KeySource::keychain()).expect("reopen");
    assert_eq!(
        read(&store, &account).as_deref(),
        Some(token),
        "the keychain key reopens the vault"
    );
    drop(store);

    // Neither the key nor the secret is on disk in plain text.
    for entry in std::fs::read_dir(path.parent().expect("dir")).expect("read dir") {
        let file = entry.expect("entry").path();
        let bytes = std::fs::read(&file).expect("read");
        for needle in [token.as_bytes(), key.as_slice(), stored.trim().as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{file:?} must contain neither the secret nor the vault key"
            );
        }
    }

    // A replaced keychain key is a wrong key; the vault stays as it is.
    entry
        .set_password("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .expect("replace key");
    let err = StrongholdStore::open(&path, &KeySource::keychain()).expect_err("wrong key");
    assert!(
        matches!(err, Error::WrongKey),
        "a foreign keychain key is WrongKey, got {err:?}"
    );
    entry.set_password(&stored).expect("restore key");

    // A deleted keychain entry is reported as such, never answered with a fresh key.
    KeychainKey::default().delete().expect("delete the key");
    let err = StrongholdStore::open_or_create(&path, &KeySource::keychain()).expect_err("no key");
    assert!(
        matches!(err, Error::KeyMissing),
        "a missing keychain key is KeyMissing, got {err:?}"
    );
    assert!(
        matches!(entry.get_password(), Err(keyring::Error::NoEntry)),
        "opening an existing vault never creates a new keychain key"
    );
    entry.set_password(&stored).expect("restore key");
    let store = StrongholdStore::open(&path, &KeySource::keychain()).expect("reopen");
    assert_eq!(
        read(&store, &account).as_deref(),
        Some(token),
        "with the key restored the vault opens"
    );
    drop(store);

    // No Secret Service reachable: a typed error the app turns into the passphrase unlock screen.
    drop(service);
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}", tmp.path().join("no-bus-here").display()),
    );
    let err = StrongholdStore::open(&path, &KeySource::keychain()).expect_err("no keychain");
    assert!(
        matches!(err, Error::KeychainUnavailable(_)),
        "an unreachable keychain is KeychainUnavailable, got {err:?}"
    );
    assert!(
        path.exists(),
        "an unreachable keychain leaves the vault in place"
    );
}
