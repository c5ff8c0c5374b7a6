//! Errors of the app core and the one `{code, message}` shape the UI sees.
//!
//! [`Code`] is the single vocabulary of error codes at the UI boundary: command errors,
//! `sign-in-failed`, `vault-broken` and the chat channel's `error` event all carry one. It is
//! an enum serialized in kebab-case, so a code the UI branches on cannot be misspelt here.

use serde::ser::SerializeStruct;
use serde::Serialize;

/// Everything a core operation can fail with. Messages are plain words and never contain a
/// token, an authorization code, a `state` value, a PKCE verifier or a passphrase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Signing in failed (discovery, callback validation, code exchange, ID token, ...).
    #[error(transparent)]
    Auth(#[from] confab_auth::Error),
    /// A password credential backend refused or failed the sign-in (wrong password, inactive
    /// account, rate limit, unreachable, ...).
    #[error(transparent)]
    Backend(#[from] confab_backends::Error),
    /// The configuration file or environment is invalid; the message names file, line and key.
    #[error("{0}")]
    Config(String),
    /// The system browser could not be opened. The launcher's own text is never kept: it may
    /// quote the URL, which carries the sign-in's state and nonce (or, at sign-out, the ID token).
    #[error("could not open your web browser")]
    Browser,
    /// The vault failed (corrupt, keychain, I/O, ...). Never carries key material.
    #[error(transparent)]
    Vault(#[from] confab_vault::Error),
    /// The passphrase does not open the vault; the user may try again.
    #[error("that passphrase is not right")]
    WrongPassphrase,
    /// The passphrase and its confirmation differ (first run).
    #[error("the two passphrases are not the same")]
    PassphraseMismatch,
    /// A new passphrase is shorter than [`crate::signin::MIN_PASSPHRASE_CHARS`] (first run).
    #[error("choose a passphrase of at least {min} characters")]
    PassphraseTooShort {
        /// Fewest characters accepted.
        min: usize,
    },
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
    /// A room name the server would refuse (empty, too long, control or bidi characters).
    #[error(transparent)]
    InvalidRoomName(confab_protocol::RoomNameError),
    /// A user id to invite that no server would accept.
    #[error("enter the person's user id (1-256 bytes, no control characters)")]
    InvalidUser,
    /// A link that is not a plain http(s) URL was not opened.
    #[error("only web links (http or https) can be opened")]
    UnsafeLink,
    /// Saving the app's own (non-secret) state failed.
    #[error("could not save: {0}")]
    Storage(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable identifier of an error for the UI, serialized in kebab-case (`"wrong-passphrase"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // Sign-in (confab-auth's codes, one for one).
    /// The sign-in configuration is unusable (also: the app's configuration file).
    Config,
    /// The provider's discovery document could not be fetched or is invalid.
    Discovery,
    /// The redirect could not be parsed.
    MalformedCallback,
    /// The redirect came back to another address than the one asked for.
    RedirectMismatch,
    /// A redirect arrived while no sign-in was pending.
    NoPendingLogin,
    /// The redirect's `state` is not the pending sign-in's (forged or stale).
    StateMismatch,
    /// The same redirect arrived twice.
    CallbackReplayed,
    /// The sign-in was cancelled.
    Cancelled,
    /// The sign-in took too long.
    LoginExpired,
    /// The user or the provider refused access.
    AccessDenied,
    /// The provider answered with another error.
    ProviderError,
    /// The redirect carried no authorization code.
    MissingCode,
    /// The redirect's `iss` is not the provider's (or an error answer could not be verified).
    IssuerMismatch,
    /// The provider refused the chat resource indicator (`invalid_target`).
    ResourceRefused,
    /// The ID token failed validation.
    IdTokenInvalid,
    /// The provider refused the grant.
    InvalidGrant,
    /// The token endpoint failed.
    TokenEndpoint,
    /// The provider lacks something Confab needs.
    NotSupported,
    /// The provider could not be reached.
    Network,
    /// The loopback redirect listener failed.
    Loopback,
    /// Another sign-in error (a code confab-auth added later).
    Auth,
    // Password sign-in (a credential backend).
    /// The email, username or password is wrong.
    WrongCredentials,
    /// The account is deactivated at the backend.
    AccountInactive,
    /// The sign-in form is incomplete or the backend refused its values.
    InvalidForm,
    /// Too many attempts; the message says how long to wait.
    RateLimited,
    /// The credential backend failed or refused the request.
    Backend,
    // The app around it.
    /// The system browser could not be opened.
    Browser,
    // Vault.
    /// The passphrase is not right.
    WrongPassphrase,
    /// The passphrase and its confirmation differ.
    PassphraseMismatch,
    /// A new passphrase is too short.
    PassphraseTooShort,
    /// The passphrase is empty.
    EmptyPassphrase,
    /// The vault is not open yet.
    VaultLocked,
    /// The vault key does not open the vault.
    WrongKey,
    /// The vault file is damaged.
    VaultCorrupt,
    /// The vault was made with another kind of key (keychain vs passphrase).
    KeySourceMismatch,
    /// The OS keychain cannot be reached.
    KeychainUnavailable,
    /// The vault's key is missing from the keychain or malformed.
    KeyMissing,
    /// Another vault failure.
    Vault,
    // Session.
    /// The token lifecycle failed.
    Session,
    /// The identity provider ended the session.
    SessionEnded,
    // Chat.
    /// A message's text is empty or too long.
    InvalidText,
    /// A room id is malformed.
    InvalidRoom,
    /// A room name is empty or too long.
    InvalidRoomName,
    /// A user id to invite is empty, too long or has control characters.
    InvalidUser,
    /// No queued message has that id.
    UnknownMessage,
    /// The chat server did not answer in time.
    Timeout,
    /// A chat command needs a signed-in user.
    NotSignedIn,
    /// The chat connection dropped before the answer.
    ConnectionLost,
    /// The room is not open.
    RoomNotOpen,
    /// The chat server refused the request.
    Server,
    /// The durable outbox failed.
    Outbox,
    /// The chat server spoke something Confab does not understand.
    Protocol,
    /// The chat server's answer was too large to load (that request failed; chat goes on).
    ReplyTooLarge,
    /// The chat server's certificate or TLS setup was refused.
    Tls,
    /// A room could not be opened.
    OpenRoom,
    /// Only web links can be opened.
    UnsafeLink,
    /// Saving the app's own state failed.
    Storage,
}

impl Code {
    /// The kebab-case wire form, as the UI sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Discovery => "discovery",
            Self::MalformedCallback => "malformed-callback",
            Self::RedirectMismatch => "redirect-mismatch",
            Self::NoPendingLogin => "no-pending-login",
            Self::StateMismatch => "state-mismatch",
            Self::CallbackReplayed => "callback-replayed",
            Self::Cancelled => "cancelled",
            Self::LoginExpired => "login-expired",
            Self::AccessDenied => "access-denied",
            Self::ProviderError => "provider-error",
            Self::MissingCode => "missing-code",
            Self::IssuerMismatch => "issuer-mismatch",
            Self::ResourceRefused => "resource-refused",
            Self::IdTokenInvalid => "id-token-invalid",
            Self::InvalidGrant => "invalid-grant",
            Self::TokenEndpoint => "token-endpoint",
            Self::NotSupported => "not-supported",
            Self::Network => "network",
            Self::Loopback => "loopback",
            Self::Auth => "auth",
            Self::WrongCredentials => "wrong-credentials",
            Self::AccountInactive => "account-inactive",
            Self::InvalidForm => "invalid-form",
            Self::RateLimited => "rate-limited",
            Self::Backend => "backend",
            Self::Browser => "browser",
            Self::WrongPassphrase => "wrong-passphrase",
            Self::PassphraseMismatch => "passphrase-mismatch",
            Self::PassphraseTooShort => "passphrase-too-short",
            Self::EmptyPassphrase => "empty-passphrase",
            Self::VaultLocked => "vault-locked",
            Self::WrongKey => "wrong-key",
            Self::VaultCorrupt => "vault-corrupt",
            Self::KeySourceMismatch => "key-source-mismatch",
            Self::KeychainUnavailable => "keychain-unavailable",
            Self::KeyMissing => "key-missing",
            Self::Vault => "vault",
            Self::Session => "session",
            Self::SessionEnded => "session-ended",
            Self::InvalidText => "invalid-text",
            Self::InvalidRoom => "invalid-room",
            Self::InvalidRoomName => "invalid-room-name",
            Self::InvalidUser => "invalid-user",
            Self::UnknownMessage => "unknown-message",
            Self::Timeout => "timeout",
            Self::NotSignedIn => "not-signed-in",
            Self::ConnectionLost => "connection-lost",
            Self::RoomNotOpen => "room-not-open",
            Self::Server => "server",
            Self::Outbox => "outbox",
            Self::Protocol => "protocol",
            Self::ReplyTooLarge => "reply-too-large",
            Self::Tls => "tls",
            Self::OpenRoom => "open-room",
            Self::UnsafeLink => "unsafe-link",
            Self::Storage => "storage",
        }
    }

    /// The code of a confab-auth error code.
    pub fn of_auth(code: confab_auth::ErrorCode) -> Self {
        use confab_auth::ErrorCode as A;
        match code {
            A::Config => Self::Config,
            A::Discovery => Self::Discovery,
            A::MalformedCallback => Self::MalformedCallback,
            A::RedirectMismatch => Self::RedirectMismatch,
            A::NoPendingLogin => Self::NoPendingLogin,
            A::StateMismatch => Self::StateMismatch,
            A::CallbackReplayed => Self::CallbackReplayed,
            A::Cancelled => Self::Cancelled,
            A::LoginExpired => Self::LoginExpired,
            A::AccessDenied => Self::AccessDenied,
            A::ProviderError => Self::ProviderError,
            A::MissingCode => Self::MissingCode,
            A::IssuerMismatch => Self::IssuerMismatch,
            A::ResourceRefused => Self::ResourceRefused,
            A::IdTokenInvalid => Self::IdTokenInvalid,
            A::InvalidGrant => Self::InvalidGrant,
            A::TokenEndpoint => Self::TokenEndpoint,
            A::NotSupported => Self::NotSupported,
            A::Network => Self::Network,
            A::Loopback => Self::Loopback,
            _ => Self::Auth,
        }
    }

    /// The code of a credential backend's error.
    pub fn of_backend(e: &confab_backends::Error) -> Self {
        use confab_backends::Error as B;
        match e {
            B::WrongCredentials => Self::WrongCredentials,
            B::Inactive => Self::AccountInactive,
            B::MissingField(_) | B::Invalid(_) => Self::InvalidForm,
            B::RateLimited { .. } => Self::RateLimited,
            B::TokenRefused => Self::SessionEnded,
            B::Unreachable(_) => Self::Network,
            B::Config(_) => Self::Config,
            B::Refused(_) | B::Server(_) => Self::Backend,
        }
    }

    /// The code of a vault error.
    pub fn of_vault(e: &confab_vault::Error) -> Self {
        use confab_vault::Error as V;
        match e {
            V::WrongKey => Self::WrongKey,
            V::Corrupt { .. } => Self::VaultCorrupt,
            V::KeySourceMismatch { .. } => Self::KeySourceMismatch,
            V::KeychainUnavailable(_) => Self::KeychainUnavailable,
            V::KeyMissing | V::KeyMalformed => Self::KeyMissing,
            V::EmptyPassphrase => Self::EmptyPassphrase,
            _ => Self::Vault,
        }
    }

    /// The code of a relay error.
    pub fn of_chat(e: &confab_relay::Error) -> Self {
        use confab_relay::Error as R;
        match e {
            R::InvalidText { .. } => Self::InvalidText,
            R::InvalidRoom => Self::InvalidRoom,
            R::UnknownMessage => Self::UnknownMessage,
            R::Timeout => Self::Timeout,
            R::Stopped => Self::NotSignedIn,
            R::ConnectionLost => Self::ConnectionLost,
            R::RoomNotOpen => Self::RoomNotOpen,
            R::Server { .. } => Self::Server,
            R::Outbox(_) | R::Join(_) => Self::Outbox,
            R::Protocol(_) => Self::Protocol,
            R::ReplyTooLarge { .. } => Self::ReplyTooLarge,
        }
    }

    /// The code of an error the relay reports as an event (its `kind`); `None` for kinds the
    /// connection line already tells (`transport`, `token`), which go to the log only.
    pub fn of_relay_event(kind: &str) -> Option<Self> {
        match kind {
            "transport" | "token" => None,
            "tls" => Some(Self::Tls),
            "server" => Some(Self::Server),
            "outbox" => Some(Self::Outbox),
            _ => Some(Self::Protocol),
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable code the UI branches on.
    pub fn code(&self) -> Code {
        match self {
            Self::Auth(e) => Code::of_auth(e.code()),
            Self::Backend(e) => Code::of_backend(e),
            Self::Config(_) => Code::Config,
            Self::Browser => Code::Browser,
            Self::Vault(e) => Code::of_vault(e),
            Self::WrongPassphrase => Code::WrongPassphrase,
            Self::PassphraseMismatch => Code::PassphraseMismatch,
            Self::PassphraseTooShort { .. } => Code::PassphraseTooShort,
            Self::VaultLocked => Code::VaultLocked,
            Self::Session(confab_session::Error::SignedOut(_)) => Code::SessionEnded,
            Self::Session(_) => Code::Session,
            Self::Chat(e) => Code::of_chat(e),
            Self::NotSignedIn => Code::NotSignedIn,
            Self::InvalidRoomName(_) => Code::InvalidRoomName,
            Self::InvalidUser => Code::InvalidUser,
            Self::UnsafeLink => Code::UnsafeLink,
            Self::Storage(_) => Code::Storage,
        }
    }

    /// The error as the UI sees it.
    pub fn to_ui(&self) -> UiError {
        UiError {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// An error as it crosses to the UI: `{ "code": "...", "message": "..." }`, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UiError {
    /// What went wrong, for the UI to branch on.
    pub code: Code,
    /// What went wrong, in plain words for a person.
    pub message: String,
}

/// Commands return errors to the UI as `{ "code": "...", "message": "..." }`.
impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Error", 2)?;
        s.serialize_field("code", &self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

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
    fn every_code_serializes_as_its_wire_form() {
        // One list of every variant: a new code without a wire form fails here.
        let all = [
            Code::Config,
            Code::Discovery,
            Code::MalformedCallback,
            Code::RedirectMismatch,
            Code::NoPendingLogin,
            Code::StateMismatch,
            Code::CallbackReplayed,
            Code::Cancelled,
            Code::LoginExpired,
            Code::AccessDenied,
            Code::ProviderError,
            Code::MissingCode,
            Code::IssuerMismatch,
            Code::ResourceRefused,
            Code::IdTokenInvalid,
            Code::InvalidGrant,
            Code::TokenEndpoint,
            Code::NotSupported,
            Code::Network,
            Code::Loopback,
            Code::Auth,
            Code::WrongCredentials,
            Code::AccountInactive,
            Code::InvalidForm,
            Code::RateLimited,
            Code::Backend,
            Code::Browser,
            Code::WrongPassphrase,
            Code::PassphraseMismatch,
            Code::PassphraseTooShort,
            Code::EmptyPassphrase,
            Code::VaultLocked,
            Code::WrongKey,
            Code::VaultCorrupt,
            Code::KeySourceMismatch,
            Code::KeychainUnavailable,
            Code::KeyMissing,
            Code::Vault,
            Code::Session,
            Code::SessionEnded,
            Code::InvalidText,
            Code::InvalidRoom,
            Code::InvalidRoomName,
            Code::InvalidUser,
            Code::UnknownMessage,
            Code::Timeout,
            Code::NotSignedIn,
            Code::ConnectionLost,
            Code::RoomNotOpen,
            Code::Server,
            Code::Outbox,
            Code::Protocol,
            Code::ReplyTooLarge,
            Code::Tls,
            Code::OpenRoom,
            Code::UnsafeLink,
            Code::Storage,
        ];
        for code in all {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                code.as_str(),
                "{code:?}: serde and as_str agree, so the UI sees one spelling"
            );
        }
    }

    #[test]
    fn auth_codes_map_one_for_one() {
        let errors: [fn() -> confab_auth::Error; 5] = [
            || confab_auth::Error::LoginExpired,
            || confab_auth::Error::StateMismatch,
            || confab_auth::Error::NoPendingLogin,
            || confab_auth::Error::CallbackReplayed,
            || confab_auth::Error::ResourceRefused { description: None },
        ];
        for e in errors {
            assert_eq!(
                Error::from(e()).code().as_str(),
                e().code().as_str(),
                "the app's code for an auth error is confab-auth's own code"
            );
        }
    }

    #[test]
    fn vault_errors_have_codes_the_unlock_and_reset_screens_use() {
        let codes = [
            (Error::WrongPassphrase, "wrong-passphrase"),
            (Error::PassphraseMismatch, "passphrase-mismatch"),
            (Error::PassphraseTooShort { min: 8 }, "passphrase-too-short"),
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
            assert_eq!(
                e.code().as_str(),
                code,
                "{e} has the code the UI branches on"
            );
        }
    }
}
