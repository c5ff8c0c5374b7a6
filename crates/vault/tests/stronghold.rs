//! StrongholdStore behaviour a user or an attacker would notice: persistence, isolation, typed
//! errors on bad input with the file left untouched, atomic saves, no plaintext on disk.

use std::fs;
use std::path::{Path, PathBuf};

use confab_vault::{
    key_info_path, AccountId, Error, KeySource, SecretStore, SecretString, StrongholdStore,
};
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [0x11; 32];
const OTHER_KEY: [u8; 32] = [0x22; 32];

fn alice() -> AccountId {
    AccountId::new("https://idp.example", "alice")
}

fn bob() -> AccountId {
    AccountId::new("https://idp.example", "bob")
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

fn vault_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("vault.stronghold")
}

fn sha(path: &Path) -> Vec<u8> {
    Sha256::digest(fs::read(path).expect("read file for hashing")).to_vec()
}

fn get(store: &StrongholdStore, account: &AccountId, name: &str) -> Option<String> {
    store
        .get(account, name)
        .expect("get must succeed")
        .map(|s| s.expose_secret().to_owned())
}

/// A vault with one stored refresh token; returns its path.
fn vault_with_token(dir: &tempfile::TempDir) -> PathBuf {
    let path = vault_path(dir);
    let store = StrongholdStore::create(&path, &KeySource::raw(KEY)).expect("create vault");
    store
        .put(&alice(), "refresh_token", &secret("rt-alice-1"))
        .expect("put");
    path
}

#[test]
fn round_trip_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("reopen");
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("rt-alice-1"),
        "a stored secret must be readable after reopening the vault (no forced re-login)"
    );
    store
        .put(&alice(), "refresh_token", &secret("rt-alice-2"))
        .expect("overwrite");
    drop(store);
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("reopen");
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("rt-alice-2"),
        "put replaces the previous value durably"
    );
    assert_eq!(
        get(&store, &alice(), "never-stored"),
        None,
        "an absent secret reads as None, not an error"
    );
}

#[test]
fn accounts_are_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_path(&dir);
    let store = StrongholdStore::create(&path, &KeySource::raw(KEY)).expect("create");
    store
        .put(&alice(), "refresh_token", &secret("A"))
        .expect("put");
    store
        .put(&bob(), "refresh_token", &secret("B"))
        .expect("put");
    // names that would collide under naive concatenation
    let tricky1 = AccountId::new("https://idp.example/a", "b:c");
    let tricky2 = AccountId::new("https://idp.example/a:b", "c");
    store.put(&tricky1, "x", &secret("T1")).expect("put");
    store.put(&tricky2, "x", &secret("T2")).expect("put");
    let other_issuer = AccountId::new("https://other.example", "alice");
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("A"),
        "alice sees only her token"
    );
    assert_eq!(
        get(&store, &bob(), "refresh_token").as_deref(),
        Some("B"),
        "bob sees only his token"
    );
    assert_eq!(
        get(&store, &tricky1, "x").as_deref(),
        Some("T1"),
        "length-prefixed keys cannot collide"
    );
    assert_eq!(
        get(&store, &tricky2, "x").as_deref(),
        Some("T2"),
        "length-prefixed keys cannot collide"
    );
    assert_eq!(
        get(&store, &other_issuer, "refresh_token"),
        None,
        "the same subject at another issuer is another account"
    );

    assert_eq!(
        store.delete_account(&alice()).expect("delete_account"),
        1,
        "sign-out removes alice's one secret"
    );
    drop(store);
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("reopen");
    assert_eq!(
        get(&store, &alice(), "refresh_token"),
        None,
        "alice's secrets are gone after sign-out"
    );
    assert_eq!(
        get(&store, &bob(), "refresh_token").as_deref(),
        Some("B"),
        "signing alice out keeps bob signed in"
    );
}

#[test]
fn delete_is_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("open");
    assert!(
        store.delete(&alice(), "refresh_token").expect("delete"),
        "delete reports an existing secret"
    );
    assert!(
        !store.delete(&alice(), "refresh_token").expect("delete"),
        "deleting twice reports absence"
    );
    drop(store);
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("reopen");
    assert_eq!(
        get(&store, &alice(), "refresh_token"),
        None,
        "a deleted secret stays deleted after reopen"
    );
}

#[test]
fn wrong_key_is_typed_and_leaves_files_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let before = (sha(&path), sha(&key_info_path(&path)));
    let err =
        StrongholdStore::open(&path, &KeySource::raw(OTHER_KEY)).expect_err("wrong key must fail");
    assert!(
        matches!(err, Error::WrongKey),
        "a wrong key is reported as WrongKey, got {err:?}"
    );
    let err = StrongholdStore::open_or_create(&path, &KeySource::raw(OTHER_KEY))
        .expect_err("wrong key must fail");
    assert!(
        matches!(err, Error::WrongKey),
        "open_or_create never replaces a vault it cannot open, got {err:?}"
    );
    assert_eq!(
        before,
        (sha(&path), sha(&key_info_path(&path))),
        "a failed open leaves the vault files byte-identical"
    );
    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("right key still opens");
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("rt-alice-1"),
        "retry with the right key works"
    );
}

#[test]
fn another_key_source_kind_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let err =
        StrongholdStore::open(&path, &KeySource::passphrase(secret("pw"))).expect_err("must fail");
    assert!(
        matches!(
            err,
            Error::KeySourceMismatch {
                expected: "raw",
                offered: "passphrase"
            }
        ),
        "opening with another kind of key source says which one the vault needs, got {err:?}"
    );
}

fn assert_corrupt_and_untouched(path: &Path, what: &str) {
    let before = sha(path);
    for attempt in ["open", "open_or_create"] {
        let res = if attempt == "open" {
            StrongholdStore::open(path, &KeySource::raw(KEY))
        } else {
            StrongholdStore::open_or_create(path, &KeySource::raw(KEY))
        };
        let err = res.expect_err("a damaged snapshot must not open");
        assert!(
            matches!(err, Error::Corrupt { .. }),
            "{what}: {attempt} reports Corrupt (not a silent reset), got {err:?}"
        );
        assert!(
            err.to_string().contains("corrupt"),
            "{what}: the message says the vault is corrupt"
        );
    }
    assert_eq!(
        before,
        sha(path),
        "{what}: the damaged file is left byte-identical"
    );
}

#[test]
fn truncated_snapshot_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let bytes = fs::read(&path).expect("read");
    for len in [0, 3, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        fs::write(&path, &bytes[..len]).expect("truncate");
        assert_corrupt_and_untouched(&path, &format!("truncated to {len} bytes"));
    }
}

#[test]
fn bit_flipped_snapshot_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let bytes = fs::read(&path).expect("read");
    for pos in [0, 6, 20, 120, bytes.len() / 2, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[pos] ^= 0x01;
        fs::write(&path, &flipped).expect("flip");
        assert_corrupt_and_untouched(&path, &format!("bit flipped at byte {pos}"));
    }
    fs::write(&path, &bytes).expect("restore");
    StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("the restored original opens again");
}

#[test]
fn missing_key_info_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    fs::remove_file(key_info_path(&path)).expect("remove key info");
    let err = StrongholdStore::open_or_create(&path, &KeySource::raw(KEY)).expect_err("must fail");
    assert!(
        matches!(err, Error::Corrupt { .. }),
        "a snapshot without key info is Corrupt, got {err:?}"
    );
    assert!(path.exists(), "the snapshot is not replaced");
}

#[test]
fn missing_vault_is_not_found_and_open_or_create_creates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub").join("vault.stronghold");
    let err = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect_err("nothing to open");
    assert!(
        matches!(err, Error::NotFound { .. }),
        "no vault yet is NotFound, got {err:?}"
    );
    assert!(
        err.to_string().contains("no vault yet"),
        "the message says there is no vault yet"
    );
    let store = StrongholdStore::open_or_create(&path, &KeySource::raw(KEY)).expect("creates");
    assert!(
        StrongholdStore::exists(&path),
        "open_or_create writes the new vault at once"
    );
    assert_eq!(
        get(&store, &alice(), "refresh_token"),
        None,
        "a new vault is empty"
    );
    let err =
        StrongholdStore::create(&path, &KeySource::raw(KEY)).expect_err("create never overwrites");
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "create refuses an existing vault, got {err:?}"
    );
}

/// Tests run as root in CI, where permission bits do not stop writes; a path whose parent is a
/// regular file (ENOTDIR) is an unwritable location that root cannot write either.
#[test]
fn unwritable_location_gives_io_error_with_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    fs::write(&blocker, b"plain file").expect("write");
    let path = blocker.join("vault.stronghold");
    let err = StrongholdStore::create(&path, &KeySource::raw(KEY))
        .expect_err("cannot create under a file");
    match &err {
        Error::Io { path: p, .. } => assert!(
            p.starts_with(&blocker),
            "the error names the unwritable path, got {p:?}"
        ),
        other => panic!("an unwritable location is an Io error, got {other:?}"),
    }
    let err = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect_err("nothing to open");
    assert!(
        matches!(err, Error::Io { .. } | Error::NotFound { .. }),
        "opening under a file is a clear error, got {err:?}"
    );
}

/// A save that cannot be written fails loudly and the store keeps serving the last durable value.
#[test]
fn failed_save_is_reported_and_memory_matches_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vdir = dir.path().join("data");
    let path = vdir.join("vault.stronghold");
    let store = StrongholdStore::create(&path, &KeySource::raw(KEY)).expect("create");
    store
        .put(&alice(), "refresh_token", &secret("old"))
        .expect("put");
    // Replace the vault's directory by a plain file: every later save hits ENOTDIR, even as root.
    let moved = dir.path().join("data-moved");
    fs::rename(&vdir, &moved).expect("move dir");
    fs::write(&vdir, b"now a file").expect("block");
    let err = store
        .put(&alice(), "refresh_token", &secret("new"))
        .expect_err("save must fail");
    match &err {
        Error::Io { path: p, .. } => assert!(
            p.starts_with(&vdir),
            "a failed save names the path it could not write, got {p:?}"
        ),
        other => panic!("a save into an unwritable location is an Io error, got {other:?}"),
    }
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("old"),
        "after a failed save the store still holds what is on disk"
    );
    fs::remove_file(&vdir).expect("unblock");
    fs::rename(&moved, &vdir).expect("restore dir");
    let reopened = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("reopen");
    assert_eq!(
        get(&reopened, &alice(), "refresh_token").as_deref(),
        Some("old"),
        "the disk still has the old value"
    );
}

#[test]
fn stray_temp_files_are_removed_and_never_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let old_snapshot = fs::read(&path).expect("read");
    {
        let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("open");
        store
            .put(&alice(), "refresh_token", &secret("rt-alice-2"))
            .expect("put");
    }
    // leftovers of an interrupted save: a valid older snapshot, garbage, and Stronghold's own temp
    let name = "vault.stronghold";
    let strays = [
        dir.path().join(format!("{name}.tmp-0123456789abcdef")),
        dir.path().join(format!("{name}.tmp-fedcba9876543210")),
        dir.path()
            .join(format!("{name}.tmp-00000000000000aa.a1b2c3d4e5f6")),
        dir.path()
            .join(format!("{name}.keyinfo.tmp-00000000000000bb")),
    ];
    fs::write(&strays[0], &old_snapshot).expect("write");
    fs::write(&strays[1], b"garbage").expect("write");
    fs::write(&strays[2], &old_snapshot[..10]).expect("write");
    fs::write(&strays[3], b"{").expect("write");
    let unrelated = dir.path().join("notes.tmp-1");
    fs::write(&unrelated, b"keep me").expect("write");

    let store = StrongholdStore::open(&path, &KeySource::raw(KEY)).expect("open with strays");
    assert_eq!(
        get(&store, &alice(), "refresh_token").as_deref(),
        Some("rt-alice-2"),
        "the vault is read from its own file, never from a temp file"
    );
    for s in &strays {
        assert!(!s.exists(), "stray temp file {s:?} is removed on open");
    }
    assert!(
        unrelated.exists(),
        "files not belonging to the vault are left alone"
    );
}

#[test]
fn reset_moves_files_aside_and_allows_a_fresh_vault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_with_token(&dir);
    let mut bytes = fs::read(&path).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&path, &bytes).expect("corrupt");
    let corrupt_hash = sha(&path);

    let aside = StrongholdStore::reset(&path)
        .expect("reset")
        .expect("a file was moved");
    assert!(!path.exists(), "after reset the vault path is free");
    assert!(
        aside
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("vault.stronghold.corrupt-")),
        "the old snapshot is kept as <name>.corrupt-<ts>, got {aside:?}"
    );
    assert_eq!(
        sha(&aside),
        corrupt_hash,
        "reset keeps the old bytes, it does not delete them"
    );
    let store =
        StrongholdStore::open_or_create(&path, &KeySource::raw(OTHER_KEY)).expect("fresh vault");
    assert_eq!(
        get(&store, &alice(), "refresh_token"),
        None,
        "the fresh vault is empty"
    );
    assert_eq!(
        StrongholdStore::reset(dir.path().join("none")).expect("reset"),
        None,
        "resetting nothing is fine"
    );
}

#[test]
fn no_file_in_the_vault_dir_contains_a_secret_in_plaintext() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = vault_path(&dir);
    let token = "rt-PLAINTEXT-CANARY-7c1e9a0b5d";
    {
        let store = StrongholdStore::create(&path, &KeySource::raw(KEY)).expect("create");
        store
            .put(&alice(), "refresh_token", &secret(token))
            .expect("put");
        store
            .put(&bob(), "refresh_token", &secret("rt-second-canary"))
            .expect("put");
    }
    let needles: [&[u8]; 4] = [token.as_bytes(), b"rt-second-canary", &KEY, b"CANARY"];
    let mut checked = 0;
    for entry in fs::read_dir(dir.path()).expect("read dir") {
        let file = entry.expect("entry").path();
        let bytes = fs::read(&file).expect("read");
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{file:?} must not contain a secret or the key in plain text"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "the snapshot and its key info were both checked"
    );
}

#[test]
fn secret_values_are_redacted_in_debug() {
    let s = secret("rt-very-secret");
    assert_eq!(
        format!("{s:?}"),
        "SecretString([redacted])",
        "Debug never prints a secret"
    );
    let src = KeySource::passphrase(secret("my passphrase"));
    assert!(
        !format!("{src:?}").contains("my passphrase"),
        "Debug of a key source never prints the passphrase"
    );
    let raw = KeySource::raw(KEY);
    assert!(
        format!("{raw:?}").contains("redacted"),
        "Debug of a raw key is redacted"
    );
}
