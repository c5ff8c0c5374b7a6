//! Errors of the app layer and their `{code, message}` form for the UI.

use serde::ser::SerializeStruct;

/// Everything a command can fail with. Messages are plain words and never contain a token,
/// an authorization code, a `state` value or a PKCE verifier.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Signing in failed (discovery, callback validation, code exchange, ID token, ...).
    #[error(transparent)]
    Auth(#[from] confab_auth::Error),
    /// The configuration file or environment is invalid; the message names file, line and key.
    #[error("{0}")]
    Config(String),
    /// The system browser could not be opened.
    #[error("could not open your web browser ({0})")]
    Browser(String),
    /// The vault failed (corrupt, keychain, I/O, ...). Never carries key material.
    #[error(transparent)]
    Vault(#[from] confab_vault::Error),
    /// The passphrase does not open the vault; the user may try again.
    #[error("that passphrase is not right")]
    WrongPassphrase,
    /// The passphrase and its confirmation differ (first run).
    #[error("the two passphrases are not the same")]
    PassphraseMismatch,
    /// The vault is not open yet, so nothing can be stored.
    #[error("unlock Confab first")]
    VaultLocked,
    /// The token lifecycle failed (store, endpoint, session ended).
    #[error(transparent)]
    Session(#[from] confab_session::Error),
    /// The chat relay refused or failed a request (invalid text, server error, timeout, ...).
    #[error(transparent)]
    Chat(#[from] confab_relay::Error),
    /// A chat command needs a signed-in user.
    #[error("sign in first")]
    NotSignedIn,
    /// A room name is empty or longer than the server allows.
    #[error("a room name must be 1 to {max} characters")]
    InvalidRoomName {
        /// Longest name in characters.
        max: usize,
    },
    /// A link that is not a plain http(s) URL was not opened.
    #[error("only web links (http or https) can be opened")]
    UnsafeLink,
    /// Saving the app's own (non-secret) state failed.
    #[error("could not save: {0}")]
    Storage(String),
}

impl Error {
    /// Stable identifier the UI branches on (kebab-case, like confab-auth's codes).
    pub fn code(&self) -> String {
        match self {
            Self::Auth(e) => serde_json::to_value(e.code())
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "auth".to_owned()),
            Self::Config(_) => "config".to_owned(),
            Self::Browser(_) => "browser".to_owned(),
            Self::Vault(e) => vault_code(e).to_owned(),
            Self::WrongPassphrase => "wrong-passphrase".to_owned(),
            Self::PassphraseMismatch => "passphrase-mismatch".to_owned(),
            Self::VaultLocked => "vault-locked".to_owned(),
            Self::Session(confab_session::Error::SignedOut(_)) => "session-ended".to_owned(),
            Self::Session(_) => "session".to_owned(),
            Self::Chat(e) => chat_code(e).to_owned(),
            Self::NotSignedIn => "not-signed-in".to_owned(),
            Self::InvalidRoomName { .. } => "invalid-room-name".to_owned(),
            Self::UnsafeLink => "unsafe-link".to_owned(),
            Self::Storage(_) => "storage".to_owned(),
        }
    }
}

/// The UI's code for a vault error.
fn vault_code(e: &confab_vault::Error) -> &'static str {
    use confab_vault::Error as V;
    match e {
        V::WrongKey => "wrong-key",
        V::Corrupt { .. } => "vault-corrupt",
        V::KeySourceMismatch { .. } => "key-source-mismatch",
        V::KeychainUnavailable(_) => "keychain-unavailable",
        V::KeyMissing | V::KeyMalformed => "key-missing",
        V::EmptyPassphrase => "empty-passphrase",
        _ => "vault",
    }
}

/// The UI's code for a relay error.
fn chat_code(e: &confab_relay::Error) -> &'static str {
    use confab_relay::Error as R;
    match e {
        R::InvalidText { .. } => "invalid-text",
        R::InvalidRoom => "invalid-room",
        R::UnknownMessage => "unknown-message",
        R::Timeout => "timeout",
        R::Stopped => "not-signed-in",
        R::ConnectionLost => "connection-lost",
        R::RoomNotOpen => "room-not-open",
        R::Server { .. } => "server",
        R::Outbox(_) | R::Join(_) => "outbox",
        R::Protocol(_) => "protocol",
    }
}

/// Commands return errors to the UI as `{ "code": "...", "message": "..." }`.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Error", 2)?;
        s.serialize_field("code", &self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_code_and_message() {
        let v = serde_json::to_value(Error::from(confab_auth::Error::LoginExpired)).unwrap();
        assert_eq!(
            v["code"], "login-expired",
            "auth errors keep their kebab-case code"
        );
        assert_eq!(
            v["message"],
            confab_auth::Error::LoginExpired.to_string(),
            "the message is the plain-words Display text"
        );
        let v = serde_json::to_value(Error::Config("config.toml:3:1: key `isuer`".into())).unwrap();
        assert_eq!(v["code"], "config", "config errors have code `config`");
        assert!(
            v["message"].as_str().unwrap().contains("isuer"),
            "the config message names the key"
        );
        assert_eq!(
            v.as_object().unwrap().len(),
            2,
            "nothing but code and message crosses IPC"
        );
    }

    #[test]
    fn vault_errors_have_codes_the_unlock_and_reset_screens_use() {
        let codes = [
            (Error::WrongPassphrase, "wrong-passphrase"),
            (Error::PassphraseMismatch, "passphrase-mismatch"),
            (
                Error::from(confab_vault::Error::EmptyPassphrase),
                "empty-passphrase",
            ),
            (Error::from(confab_vault::Error::WrongKey), "wrong-key"),
            (
                Error::from(confab_vault::Error::Corrupt {
                    path: "vault.stronghold".into(),
                    reason: "truncated".into(),
                }),
                "vault-corrupt",
            ),
        ];
        for (e, code) in codes {
            assert_eq!(e.code(), code, "{e} has the code the UI branches on");
        }
    }
}
