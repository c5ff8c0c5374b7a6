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
}
