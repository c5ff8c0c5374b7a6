//! Vault open and save with each key source; prints medians of repeated runs as a Markdown table.
//!
//! Release: `cargo bench -p confab-vault`. Dev profile (what `cargo run`/`cargo test` use):
//! `cargo bench -p confab-vault --profile dev`.
//! The keychain rows need `dbus-daemon` and `gnome-keyring-daemon` (Debian `dbus`,
//! `gnome-keyring`): the bench starts a private Secret Service like the keychain test does.

#[path = "../tests/support/secret_service.rs"]
mod secret_service;

use std::time::{Duration, Instant};

use confab_vault::{AccountId, KeySource, SecretStore, SecretString, StrongholdStore};

const OPENS: usize = 21;
const SAVES: usize = 41;

fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn bench_source(label: &str, make: &dyn Fn() -> KeySource, dir: &std::path::Path) {
    let path = dir.join(format!("{label}.stronghold"));
    let account = AccountId::new("https://idp.example", "bench");
    let token = SecretString::new("r".repeat(1024));

    let create_start = Instant::now();
    let store = StrongholdStore::create(&path, &make()).expect("create");
    let create = create_start.elapsed();
    store.put(&account, "refresh_token", &token).expect("put");

    let mut saves = Vec::with_capacity(SAVES);
    for _ in 0..SAVES {
        let t = Instant::now();
        store.put(&account, "refresh_token", &token).expect("put");
        saves.push(t.elapsed());
    }
    drop(store);

    let mut opens = Vec::with_capacity(OPENS);
    for _ in 0..OPENS {
        let source = make();
        let t = Instant::now();
        let store = StrongholdStore::open(&path, &source).expect("open");
        let value = store.get(&account, "refresh_token").expect("get");
        opens.push(t.elapsed());
        assert!(value.is_some(), "the benchmarked vault holds the token");
    }
    let (omin, omed, omax) = median(opens);
    let (smin, smed, smax) = median(saves);
    println!(
        "| {label} | {} | {} ({}–{}) | {} ({}–{}) |",
        ms(create),
        ms(omed),
        ms(omin),
        ms(omax),
        ms(smed),
        ms(smin),
        ms(smax)
    );
}

/// For comparison: a snapshot written with Stronghold's stock work factor (19), as
/// tauri-plugin-stronghold does by default. Opening costs the factor it was written with.
fn bench_stock_work_factor(dir: &std::path::Path) {
    use iota_stronghold::{KeyProvider, SnapshotPath, Stronghold};
    use zeroize::Zeroizing;
    let path = SnapshotPath::from_path(dir.join("stock.stronghold"));
    let key = || KeyProvider::try_from(Zeroizing::new(vec![7u8; 32])).expect("32-byte key");
    iota_stronghold::engine::snapshot::try_set_encrypt_work_factor(19).expect("work factor");
    let t = Instant::now();
    let stronghold = Stronghold::default();
    let client = stronghold.create_client(b"c").expect("client");
    client
        .store()
        .insert(b"k".to_vec(), vec![b'r'; 1024], None)
        .expect("insert");
    stronghold
        .commit_with_keyprovider(&path, &key())
        .expect("commit");
    let create = t.elapsed();
    let mut opens = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let s = Stronghold::default();
        s.load_client_from_snapshot(b"c", &key(), &path)
            .expect("load");
        opens.push(t.elapsed());
    }
    let (omin, omed, omax) = median(opens);
    println!(
        "| stock Stronghold, work factor 19 (3 opens, 1 save) | {} | {} ({}–{}) | ≈ create |",
        ms(create),
        ms(omed),
        ms(omin),
        ms(omax)
    );
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let dir = tempfile::tempdir().expect("tempdir");
    println!("confab-vault bench, {profile} profile, median (min–max) in ms; open = open + read one secret, save = put of a 1 KiB secret (write, fsync, rename, dir fsync); {OPENS} opens, {SAVES} saves");
    println!();
    println!("| key source | create | open | save |");
    println!("|---|---|---|---|");
    bench_source("raw", &|| KeySource::raw([7; 32]), dir.path());
    bench_source(
        "passphrase",
        &|| KeySource::passphrase(SecretString::from("bench passphrase")),
        dir.path(),
    );
    let service_dir = tempfile::tempdir().expect("tempdir");
    let _service = secret_service::PrivateSecretService::start(service_dir.path());
    bench_source("keychain", &KeySource::keychain, dir.path());
    bench_stock_work_factor(dir.path());
}
