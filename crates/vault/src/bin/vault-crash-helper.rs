//! Test helper for the crash-safety test (`tests/crash.rs`); not part of the app.
//!
//! Usage: `vault-crash-helper <snapshot path>`. Opens (or creates) the vault with a fixed test key,
//! then saves an increasing counter in a loop, printing `saved <n>` after each durable save, until
//! it is killed.

use std::io::Write;

use confab_vault::{AccountId, KeySource, SecretStore, SecretString, StrongholdStore};

/// The raw key the crash test uses (test data, not a real key).
const TEST_KEY: [u8; 32] = [0x5a; 32];

fn value(n: u64) -> String {
    format!("refresh-{n:010}-{}", "r".repeat(256))
}

fn parse(v: &str) -> Option<u64> {
    v.strip_prefix("refresh-")?.get(..10)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .ok_or("usage: vault-crash-helper <snapshot path>")?;
    let store = StrongholdStore::open_or_create(&path, &KeySource::raw(TEST_KEY))?;
    let account = AccountId::new("https://idp.example", "crash-user");
    let mut n = match store.get(&account, "refresh_token")? {
        Some(v) => parse(v.expose_secret()).ok_or("stored value has an unexpected shape")?,
        None => 0,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {n}")?;
    out.flush()?;
    loop {
        n += 1;
        store.put(&account, "refresh_token", &SecretString::new(value(n)))?;
        writeln!(out, "saved {n}")?;
        out.flush()?;
    }
}
