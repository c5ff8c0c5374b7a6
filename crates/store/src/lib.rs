//! One encrypted local store per account: a SQLCipher database (`account.sqlite3` in the
//! account's directory) keyed by a random 256-bit key that the app keeps in the account's vault
//! entry. It holds the relay's outbox (the relay opens the same file with the same key),
//! drafts, the last open room, read positions, each room's stream position and a history cache
//! of the newest messages per room. Files are owner-only; a store that cannot be read is kept
//! aside and replaced; the plaintext files of earlier versions are moved in and removed.
//!
//! Plain Rust (no Tauri). Calls block on disk I/O: async callers use `spawn_blocking`, and the
//! history cache is written by [`CacheWriter`]'s thread.

pub mod error;
mod fsperm;
mod key;
mod migrate;
mod store;
mod writer;

pub use error::{Error, Result};
pub use fsperm::{owner_only_dir, owner_only_file, remove_dir_securely, remove_securely};
pub use key::StoreKey;
pub use migrate::{Migrated, LEGACY_OUTBOX_FILE, LEGACY_UI_STATE_FILE};
pub use store::{
    AccountStore, CachedMessage, Change, Opened, Position, StoreOptions, DEFAULT_CACHE_PER_ROOM,
    LAST_ROOM_KEY, STORE_FILE,
};
pub use writer::CacheWriter;
