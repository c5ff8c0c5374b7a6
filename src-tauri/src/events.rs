//! Events the core sends to the UI over a Tauri `Channel`. None of them carries a secret.

use serde::Serialize;

/// What the UI shows about the signed-in user (from the validated ID token).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UserView {
    /// Display name (`name` claim), if the provider sent one.
    pub name: Option<String>,
    /// E-mail address (`email` claim), if the provider sent one.
    pub email: Option<String>,
    /// The issuer the user signed in with.
    pub issuer: String,
}

impl From<&confab_auth::UserInfo> for UserView {
    fn from(u: &confab_auth::UserInfo) -> Self {
        Self {
            name: u.name.clone(),
            email: u.email.clone(),
            issuer: u.issuer.clone(),
        }
    }
}

/// One event for the UI, serialized as `{ "type": "sign-in-pending", ... }`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UiEvent {
    /// The browser was opened; waiting for the redirect until `deadline` (Unix time, ms).
    SignInPending {
        /// When the pending sign-in expires, in milliseconds since the Unix epoch.
        deadline: u64,
        /// `private-use-scheme` or `loopback`.
        redirect: &'static str,
    },
    /// Sign-in completed.
    SignedIn {
        /// Who is signed in.
        user: UserView,
    },
    /// Sign-in failed; `message` is plain words for a person.
    SignInFailed {
        /// Stable error code (kebab-case).
        code: String,
        /// What went wrong, in plain words.
        message: String,
    },
    /// Not signed in (at start, after cancel or sign-out).
    SignedOut {
        /// `not-signed-in`, `cancelled` or `signed-out`.
        reason: &'static str,
    },
}

impl UiEvent {
    /// The failure event for an error.
    pub fn failed(e: &crate::error::Error) -> Self {
        Self::SignInFailed {
            code: e.code(),
            message: e.to_string(),
        }
    }
}
