//! Token lifecycle for Confab: the access token lives in memory and is refreshed in the
//! background ahead of expiry; the refresh token lives in a durable store and is rotated
//! safely; concurrent callers share one refresh; transient failures back off with jitter;
//! `invalid_grant` ends the session with a reason the UI shows; sign-out revokes.
//!
//! Start with [`TokenManager::builder`], then [`TokenManagerBuilder::restore`] (app start) or
//! [`TokenManagerBuilder::sign_in`] (after a browser login).

pub mod clock;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod manager;
pub mod secret;
pub mod store;

pub use clock::{ShiftedWallClock, SystemWallClock, WallClock};
pub use config::SessionConfig;
pub use endpoint::{EndpointError, TokenEndpoint, Tokens};
pub use error::{Error, Result};
pub use events::{AuthLog, SessionEvent, SignOutReason, User};
pub use manager::{AccessToken, Phase, TokenManager, TokenManagerBuilder, MAX_TOKEN_LIFETIME};
pub use secret::Secret;
pub use store::{MemoryTokenStore, RefreshTokenStore};
