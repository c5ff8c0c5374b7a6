//! Test helper for the crash tests (`tests/crash.rs`); not part of the app.
//!
//! Usage: `store-crash-child cache <dir>` opens the store in `<dir>` with a fixed test key and
//! writes history-cache batches in a loop, printing `wrote <n>` after each, until killed;
//! `store-crash-child migrate <dir>` prints `opening`, opens the store (which moves the old
//! plaintext files in), prints `opened` and exits.

use std::io::Write;

use confab_store::{AccountStore, CachedMessage, Change, Position, StoreKey, StoreOptions};
use confab_types::SecretString;

/// The key the crash tests use (test data, not a real key).
pub const TEST_KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(mode), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: store-crash-child cache|migrate <dir>".into());
    };
    let key = StoreKey::from_secret(&SecretString::new(TEST_KEY_HEX.to_owned()))?;
    let dir = std::path::PathBuf::from(dir);
    let mut out = std::io::stdout().lock();
    match mode.to_str() {
        Some("migrate") => {
            writeln!(out, "opening")?;
            out.flush()?;
            AccountStore::open(&dir, &key, StoreOptions::default())?;
            writeln!(out, "opened")?;
            out.flush()?;
            Ok(())
        }
        Some("cache") => {
            let store = AccountStore::open(
                &dir,
                &key,
                StoreOptions {
                    cache_per_room: 300,
                },
            )?
            .store;
            let mut offset = 0u64;
            for n in 1u64.. {
                let messages = (0..50)
                    .map(|_| {
                        offset += 1;
                        CachedMessage {
                            offset,
                            id: uuid::Uuid::new_v4(),
                            ts: 1,
                            author: "alice".into(),
                            name: "Alice".into(),
                            text: format!("cache line {offset} {}", "x".repeat(200)),
                        }
                    })
                    .collect();
                store.apply(&[
                    Change::Append {
                        room: "general".into(),
                        messages,
                    },
                    Change::Position {
                        room: "general".into(),
                        position: Position {
                            epoch: "e".into(),
                            offset,
                        },
                    },
                ])?;
                writeln!(out, "wrote {n}")?;
                out.flush()?;
            }
            Ok(())
        }
        _ => Err("mode must be cache or migrate".into()),
    }
}
