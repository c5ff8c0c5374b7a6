//! The lower crates know only their own traits; the composition happens here: confab-auth's
//! client (or a confab-backends password backend) as confab-session's token endpoint, a confab-vault entry as its refresh-token store,
//! and the session's token manager as confab-relay's token source (directly, or through the
//! backend's chat token endpoint).

pub mod minted;
pub mod password;
pub mod relay;
pub mod session;

pub use minted::MintedTokens;
pub use password::{classify_backend, password_handoff, PasswordEndpoint};
pub use relay::SessionTokens;
pub use session::{
    classify, handoff, store_key, tokens_from, user_from, AuthEndpoint, VaultSlot, STORE_KEY_ENTRY,
};
