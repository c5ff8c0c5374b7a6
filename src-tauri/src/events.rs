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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_the_shape_the_ui_reads() {
        let pending = UiEvent::SignInPending {
            deadline: 1_700_000_000_000,
            redirect: "private-use-scheme",
        };
        assert_eq!(
            serde_json::to_value(&pending).unwrap(),
            json!({"type": "sign-in-pending", "deadline": 1_700_000_000_000u64, "redirect": "private-use-scheme"}),
            "ui/app.js switches on `type` and reads `deadline` in ms"
        );
        let signed_in = UiEvent::SignedIn {
            user: UserView {
                name: Some("Alice Example".into()),
                email: Some("alice@example.test".into()),
                issuer: "http://127.0.0.1:8400".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&signed_in).unwrap(),
            json!({"type": "signed-in", "user": {"name": "Alice Example", "email": "alice@example.test", "issuer": "http://127.0.0.1:8400"}}),
            "signed-in carries only name, email and issuer"
        );
        assert_eq!(
            serde_json::to_value(UiEvent::SignedOut {
                reason: "cancelled"
            })
            .unwrap(),
            json!({"type": "signed-out", "reason": "cancelled"}),
            "signed-out carries its reason"
        );
    }

    #[test]
    fn failure_event_carries_code_and_plain_message() {
        let e = crate::error::Error::from(confab_auth::Error::StateMismatch);
        assert_eq!(
            serde_json::to_value(UiEvent::failed(&e)).unwrap(),
            json!({"type": "sign-in-failed", "code": "state-mismatch", "message": e.to_string()}),
            "sign-in-failed carries the auth error's stable code and its plain-words message"
        );
    }
}
