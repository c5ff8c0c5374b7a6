//! Events of the sign-in channel: what the core tells the UI about signing in, the vault and
//! the session. None of them carries a secret. Event `type`s and every enumerated value are
//! kebab-case, on this channel and the chat channel alike (docs/ui-contract.md).

use serde::Serialize;

use crate::error::{Code, Error};

/// Why nobody is signed in.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SignedOutReason {
    /// Nobody has signed in yet (or the remembered account is gone).
    NotSignedIn,
    /// The user cancelled the pending sign-in.
    Cancelled,
    /// The user signed out.
    SignedOut,
    /// The identity provider ended the session ("Your session ended, please sign in again").
    SessionEnded,
}

impl From<&confab_session::SignOutReason> for SignedOutReason {
    fn from(reason: &confab_session::SignOutReason) -> Self {
        match reason {
            confab_session::SignOutReason::UserRequested => Self::SignedOut,
            confab_session::SignOutReason::SessionEnded => Self::SessionEnded,
            confab_session::SignOutReason::NoStoredSession => Self::NotSignedIn,
        }
    }
}

/// How the redirect of a pending sign-in comes back.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectKind {
    /// A private-use URI scheme, delivered as a deep link.
    PrivateUseScheme,
    /// A loopback listener on 127.0.0.1.
    Loopback,
}

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

impl From<&confab_session::User> for UserView {
    fn from(u: &confab_session::User) -> Self {
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
        /// How the redirect comes back.
        redirect: RedirectKind,
    },
    /// Sign-in completed.
    SignedIn {
        /// Who is signed in.
        user: UserView,
    },
    /// Sign-in failed; `message` is plain words for a person.
    SignInFailed {
        /// Stable error code.
        code: Code,
        /// What went wrong, in plain words.
        message: String,
    },
    /// A redirect arrived that is not for the pending sign-in (a forged or stale link, a
    /// replay, a malformed URL) and was refused without a token request. A notice: the
    /// pending sign-in and its screen stay.
    RedirectRefused {
        /// Why it was refused (e.g. `state-mismatch`).
        code: Code,
        /// What happened, in plain words (never the link's code or state).
        message: String,
    },
    /// Not signed in (at start, after cancel or sign-out).
    SignedOut {
        /// Why.
        reason: SignedOutReason,
    },
    /// The app is starting: opening the vault.
    Starting,
    /// The vault needs a passphrase (no keychain, or the passphrase was chosen).
    VaultLocked {
        /// No vault exists yet: the user chooses a passphrase (with confirmation).
        first_run: bool,
    },
    /// The vault cannot be opened (wrong key, corrupt snapshot, ...): offer a reset.
    VaultBroken {
        /// Stable error code.
        code: Code,
        /// What went wrong, in plain words.
        message: String,
    },
    /// Signing in silently with the stored session (no browser).
    Restoring {
        /// The remembered display name, if any.
        name: Option<String>,
    },
    /// A new access token is in use (not recorded as the status).
    SessionRefreshed {
        /// Its expiry, in milliseconds since the Unix epoch.
        expires_at: u64,
    },
    /// Renewing the session failed for now and will be retried (not recorded as the status).
    SessionRetrying {
        /// 1 for the first retry.
        attempt: u32,
        /// When the next attempt happens, in milliseconds since the Unix epoch.
        next_try: u64,
    },
}

impl UiEvent {
    /// The failure event for an error.
    pub fn failed(e: &Error) -> Self {
        Self::SignInFailed {
            code: e.code(),
            message: e.to_string(),
        }
    }

    /// The UI event for a session event, if the UI shows it. `None` for events the flow
    /// handles itself (signed-in, signed-out).
    pub fn from_session_progress(event: &confab_session::SessionEvent) -> Option<Self> {
        match event {
            confab_session::SessionEvent::Refreshed { expires_at } => {
                Some(Self::SessionRefreshed {
                    expires_at: unix_millis(*expires_at),
                })
            }
            confab_session::SessionEvent::Retrying { attempt, next_try } => {
                Some(Self::SessionRetrying {
                    attempt: *attempt,
                    next_try: unix_millis(*next_try),
                })
            }
            _ => None,
        }
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_have_the_shape_the_ui_reads() {
        let pending = UiEvent::SignInPending {
            deadline: 1_700_000_000_000,
            redirect: RedirectKind::PrivateUseScheme,
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
                reason: SignedOutReason::Cancelled
            })
            .unwrap(),
            json!({"type": "signed-out", "reason": "cancelled"}),
            "signed-out carries its reason"
        );
    }

    #[test]
    fn vault_and_session_events_have_the_shape_the_ui_reads() {
        assert_eq!(
            serde_json::to_value(UiEvent::VaultLocked { first_run: true }).unwrap(),
            json!({"type": "vault-locked", "first_run": true}),
            "the unlock screen knows whether to ask for a new passphrase"
        );
        assert_eq!(
            serde_json::to_value(UiEvent::Restoring { name: None }).unwrap(),
            json!({"type": "restoring", "name": null}),
            "restoring carries only the remembered name"
        );
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let retry = confab_session::SessionEvent::Retrying {
            attempt: 2,
            next_try: at,
        };
        assert_eq!(
            serde_json::to_value(UiEvent::from_session_progress(&retry)).unwrap(),
            json!({"type": "session-retrying", "attempt": 2, "next_try": 1_700_000_000_123u64}),
            "a retry is forwarded with its attempt and next try (Unix ms), and nothing else"
        );
        let signed_out = confab_session::SessionEvent::SignedOut {
            reason: confab_session::SignOutReason::SessionEnded,
        };
        assert_eq!(
            UiEvent::from_session_progress(&signed_out),
            None,
            "sign-in state changes are handled by the flow, not forwarded as progress"
        );
    }

    #[test]
    fn failure_event_carries_code_and_plain_message() {
        let e = Error::from(confab_auth::Error::StateMismatch);
        assert_eq!(
            serde_json::to_value(UiEvent::failed(&e)).unwrap(),
            json!({"type": "sign-in-failed", "code": "state-mismatch", "message": e.to_string()}),
            "sign-in-failed carries the auth error's stable code and its plain-words message"
        );
    }
}
