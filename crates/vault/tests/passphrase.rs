//! The passphrase key source with the real Argon2id: round trip, wrong passphrase, parameters.

use std::fs;

use confab_vault::{
    key_info_path, AccountId, Error, KeySource, SecretStore, SecretString, StrongholdStore,
    ARGON2_M_KIB, ARGON2_P, ARGON2_T,
};

const PASSPHRASE: &str = "correct horse battery staple";

fn pass(p: &str) -> KeySource {
    KeySource::passphrase(SecretString::from(p))
}

#[test]
fn passphrase_vault_round_trip_wrong_passphrase_and_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vault.stronghold");
    let account = AccountId::new("https://idp.example", "alice");
    {
        let store = StrongholdStore::create(&path, &pass(PASSPHRASE)).expect("create");
        store
            .put(
                &account,
                "refresh_token",
                &SecretString::from("rt-pass-canary-42"),
            )
            .expect("put");
    }
    let snapshot = fs::read(&path).expect("read");

    let err = StrongholdStore::open(&path, &pass("Correct horse battery staple"))
        .expect_err("a wrong passphrase must not open the vault");
    assert!(
        matches!(err, Error::WrongKey),
        "a wrong passphrase says WrongKey, got {err:?}"
    );
    assert!(
        err.to_string().contains("wrong key"),
        "the message tells the user the key is wrong"
    );
    assert_eq!(
        fs::read(&path).expect("read"),
        snapshot,
        "a wrong passphrase leaves the file untouched"
    );

    let err = StrongholdStore::open(&path, &pass("")).expect_err("empty passphrase");
    assert!(
        matches!(err, Error::EmptyPassphrase),
        "an empty passphrase is refused, got {err:?}"
    );

    let store =
        StrongholdStore::open(&path, &pass(PASSPHRASE)).expect("retry with the right passphrase");
    assert_eq!(
        store
            .get(&account, "refresh_token")
            .expect("get")
            .map(|s| s.expose_secret().to_owned())
            .as_deref(),
        Some("rt-pass-canary-42"),
        "after a wrong attempt the right passphrase opens the vault"
    );

    for entry in fs::read_dir(dir.path()).expect("read dir") {
        let file = entry.expect("entry").path();
        let bytes = fs::read(&file).expect("read");
        for needle in [PASSPHRASE.as_bytes(), b"rt-pass-canary-42"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{file:?} must contain neither the passphrase nor a secret in plain text"
            );
        }
    }
}

#[test]
fn key_info_records_argon2id_parameters_and_a_fresh_salt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.stronghold");
    let b = dir.path().join("b.stronghold");
    StrongholdStore::create(&a, &pass(PASSPHRASE)).expect("create a");
    StrongholdStore::create(&b, &pass(PASSPHRASE)).expect("create b");
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(key_info_path(p)).expect("read key info")).expect("json")
    };
    let (ia, ib) = (read(&a), read(&b));
    assert_eq!(
        ia["key_source"], "passphrase",
        "the key info says how the vault is unlocked"
    );
    assert_eq!(
        ia["argon2"]["m_kib"], ARGON2_M_KIB,
        "memory cost as documented (64 MiB)"
    );
    assert_eq!(ia["argon2"]["t"], ARGON2_T, "iterations as documented");
    assert_eq!(ia["argon2"]["p"], ARGON2_P, "parallelism as documented");
    assert_eq!(
        (ARGON2_M_KIB, ARGON2_T, ARGON2_P),
        (65536, 3, 1),
        "documented Argon2id parameters"
    );
    let salt = ia["argon2"]["salt"].as_str().expect("salt string");
    use base64::Engine as _;
    let salt_bytes = base64::engine::general_purpose::STANDARD
        .decode(salt)
        .expect("base64 salt");
    assert_eq!(salt_bytes.len(), 16, "the salt is 16 random bytes");
    assert_ne!(
        ia["argon2"]["salt"], ib["argon2"]["salt"],
        "every vault gets its own salt"
    );
    assert_ne!(
        ia["key_check"], ib["key_check"],
        "same passphrase, different salt: different keys"
    );
}

#[test]
fn tampered_argon2_parameters_are_corrupt_not_a_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vault.stronghold");
    StrongholdStore::create(&path, &pass(PASSPHRASE)).expect("create");
    let info_path = key_info_path(&path);
    let mut info: serde_json::Value =
        serde_json::from_slice(&fs::read(&info_path).expect("read")).expect("json");
    info["argon2"]["m_kib"] = serde_json::json!(u32::MAX);
    fs::write(&info_path, serde_json::to_vec(&info).expect("json")).expect("write");
    let err = StrongholdStore::open(&path, &pass(PASSPHRASE)).expect_err("must fail");
    assert!(
        matches!(err, Error::Corrupt { .. }),
        "absurd KDF parameters in the key info are reported as corruption, got {err:?}"
    );
}
