//! Confab's app core: everything the app does that is not the Tauri shell.
//!
//! It composes the lower crates (confab-auth, confab-vault, confab-session, confab-relay) into
//! the sign-in flow with the vault lifecycle and the sessions ([`signin`]), the chat hub
//! ([`chat`]), the accounts registry both keep their per-account state in ([`accounts`]), the
//! remembered account ([`account`]) and the prefs ([`prefs`]); [`Core`] puts them together for
//! one app. What it needs from the operating system (open a URL, show a
//! notification, the store's persistence) comes through the small traits in [`platform`], which
//! the shell (`src-tauri`) implements. No tauri here: everything is tested without a webview.

pub mod account;
pub mod accounts;
pub mod adapters;
pub mod chat;
pub mod core;
pub mod error;
pub mod events;
pub mod logging;
pub mod platform;
pub mod prefs;
pub mod revocations;
pub mod signin;

pub use crate::core::Core;
pub use error::{Code, Error, Result, UiError};
pub use events::{SignedOutReason, UiEvent, UserView};
pub use platform::{AppPaths, KeyValueStore, Platform};
pub use signin::{RedirectPlan, SignInFlow};

/// Receives events for the UI; returns `false` when the receiver is gone (then it is dropped).
pub type Subscriber<E> = Box<dyn Fn(E) -> bool + Send + Sync>;
