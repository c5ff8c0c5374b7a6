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
        }
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
}
