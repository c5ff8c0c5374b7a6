//! Errors of this crate.
//!
//! Every [`Error`] has a stable, serializable [`ErrorCode`] the UI can branch on, and a
//! `Display` text in plain words. No message ever contains an authorization code, a `state`
//! value, a PKCE verifier or a token: only fixed sentences and, where the identity provider
//! explained itself, its `error_description` restricted to the characters RFC 6749 allows and
//! truncated.

use serde::Serialize;

/// Longest provider-supplied description we keep, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// Why an ID token was rejected. Coarse on purpose: enough to tell a user and a support person
/// what went wrong without echoing claim values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdTokenProblem {
    /// The token response carried no ID token.
    Missing,
    /// The token could not be parsed as a signed JWT.
    Malformed,
    /// The signature did not verify against the provider's JWKS (or no key matched).
    Signature,
    /// `iss` is not the discovered issuer.
    Issuer,
    /// `aud` does not contain (only) our client id.
    Audience,
    /// `nonce` does not match the one sent with this login.
    Nonce,
    /// `exp` is in the past.
    Expired,
    /// `at_hash` does not match the access token.
    AccessTokenHash,
    /// Anything else the verifier refused (unsupported algorithm, bad subject, ...).
    Other,
}

impl IdTokenProblem {
    fn as_words(self) -> &'static str {
        match self {
            Self::Missing => "the provider sent no ID token",
            Self::Malformed => "the ID token is malformed",
            Self::Signature => "the ID token signature is not valid",
            Self::Issuer => "the ID token was issued by someone else",
            Self::Audience => "the ID token is meant for another application",
            Self::Nonce => "the ID token belongs to a different sign-in attempt",
            Self::Expired => "the ID token has expired",
            Self::AccessTokenHash => "the ID token does not match the access token",
            Self::Other => "the ID token was not accepted",
        }
    }
}

impl std::fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_words())
    }
}

/// Everything that can go wrong while signing in, refreshing or revoking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad issuer URL, reserved extra parameter, bad redirect).
    #[error("the sign-in configuration is invalid: {0}")]
    Config(&'static str),

    /// Fetching or validating the discovery document or the JWKS failed.
    #[error("could not load the identity provider's configuration: {0}")]
    Discovery(String),

    /// The callback URL is not a well-formed redirect for this app.
    #[error("the sign-in response is malformed: {0}")]
    MalformedCallback(&'static str),

    /// The callback URL is well formed but not addressed to the redirect URI we registered.
    #[error("the sign-in response was sent to an unexpected address")]
    RedirectMismatch,

    /// No login is in progress (none started, or it already finished).
    #[error("no sign-in is in progress")]
    NoPendingLogin,

    /// The callback's `state` does not belong to the pending login (possible CSRF or a stale tab).
    #[error("the sign-in response does not belong to the sign-in in progress")]
    StateMismatch,

    /// The callback belongs to a login that already finished: a second callback or a replay.
    #[error("this sign-in response was already used")]
    CallbackReplayed,

    /// The callback belongs to a login the user cancelled.
    #[error("this sign-in was cancelled")]
    Cancelled,

    /// The callback arrived after the login's deadline.
    #[error("the sign-in took too long; please start again")]
    LoginExpired,

    /// The provider answered `error=access_denied`.
    #[error("sign-in was denied at the identity provider{}", describe(.description))]
    AccessDenied {
        /// The provider's `error_description`, sanitized and truncated.
        description: Option<String>,
    },

    /// The provider answered with another `error=` code in the callback.
    #[error("the identity provider reported an error ({error}){}", describe(.description))]
    ProviderError {
        /// The `error` code, sanitized (RFC 6749 characters only) and truncated.
        error: String,
        /// The provider's `error_description`, sanitized and truncated.
        description: Option<String>,
    },

    /// The callback has neither a `code` nor an `error`.
    #[error("the sign-in response has no authorization code")]
    MissingCode,

    /// The callback's `iss` is missing (when the provider promises it, RFC 9207) or wrong.
    #[error("the sign-in response came from a different identity provider")]
    IssuerMismatch,

    /// An error response (`error=`, no `iss`) from a provider that promises `iss` in every
    /// authorization response (RFC 9207): it cannot be told apart from a forged one, so it is
    /// refused like an `iss` mismatch, but said for what it is. The provider's `error` code is
    /// logged, not shown.
    #[error(
        "the identity provider's answer could not be verified (it reported an error without \
         naming itself); please try again"
    )]
    UnverifiedErrorResponse {
        /// The provider's `error` code, sanitized (RFC 6749 characters only) and truncated.
        error: String,
    },

    /// The provider refused the RFC 8707 `resource` indicator (`invalid_target`), at the
    /// authorization redirect or the token endpoint: the configured resource is wrong for it.
    #[error(
        "the identity provider refused the chat resource indicator (invalid_target): check \
         `chat_resource` in the configuration"
    )]
    ResourceRefused {
        /// The provider's `error_description`, sanitized and truncated (for logs).
        description: Option<String>,
    },

    /// The ID token failed validation after the code exchange.
    #[error("the identity token was rejected: {0}")]
    IdTokenInvalid(IdTokenProblem),

    /// The token endpoint answered `invalid_grant` (code or refresh token invalid, expired,
    /// already used, revoked, or PKCE/redirect mismatch).
    #[error("the identity provider refused the grant{}", describe(.description))]
    InvalidGrant {
        /// The provider's `error_description`, sanitized and truncated.
        description: Option<String>,
    },

    /// The token or revocation endpoint answered with another error, or an unreadable response.
    #[error("the identity provider's token service failed ({error}){}", describe(.description))]
    TokenEndpoint {
        /// HTTP status if known.
        status: Option<u16>,
        /// How long the provider asked us to wait (`Retry-After` of a 429 or 503), capped at
        /// [`crate::MAX_RETRY_AFTER`].
        retry_after: Option<std::time::Duration>,
        /// The OAuth `error` code (sanitized) or a short word for non-OAuth failures.
        error: String,
        /// The provider's `error_description`, sanitized and truncated.
        description: Option<String>,
    },

    /// The provider does not offer what was asked (e.g. no revocation or end-session endpoint).
    #[error("the identity provider does not support {0}")]
    NotSupported(&'static str),

    /// The HTTP request could not be completed (connection, timeout, TLS, redirect refused).
    #[error("could not reach the identity provider")]
    Network(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// The loopback listener failed (bind, accept) or timed out.
    #[error("the local sign-in receiver failed: {0}")]
    Loopback(&'static str, #[source] Option<std::io::Error>),
}

fn describe(description: &Option<String>) -> String {
    match description {
        Some(d) if !d.is_empty() => format!(": {d}"),
        _ => String::new(),
    }
}

/// Stable identifier of an error for the UI (`{code, message}`), serialized in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// [`Error::Config`]
    Config,
    /// [`Error::Discovery`]
    Discovery,
    /// [`Error::MalformedCallback`]
    MalformedCallback,
    /// [`Error::RedirectMismatch`]
    RedirectMismatch,
    /// [`Error::NoPendingLogin`]
    NoPendingLogin,
    /// [`Error::StateMismatch`]
    StateMismatch,
    /// [`Error::CallbackReplayed`]
    CallbackReplayed,
    /// [`Error::Cancelled`]
    Cancelled,
    /// [`Error::LoginExpired`]
    LoginExpired,
    /// [`Error::AccessDenied`]
    AccessDenied,
    /// [`Error::ProviderError`]
    ProviderError,
    /// [`Error::MissingCode`]
    MissingCode,
    /// [`Error::IssuerMismatch`]
    IssuerMismatch,
    /// [`Error::ResourceRefused`]
    ResourceRefused,
    /// [`Error::IdTokenInvalid`]
    IdTokenInvalid,
    /// [`Error::InvalidGrant`]
    InvalidGrant,
    /// [`Error::TokenEndpoint`]
    TokenEndpoint,
    /// [`Error::NotSupported`]
    NotSupported,
    /// [`Error::Network`]
    Network,
    /// [`Error::Loopback`]
    Loopback,
}

impl ErrorCode {
    /// The kebab-case wire form, e.g. `"state-mismatch"`.
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
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable code the UI branches on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Config(_) => ErrorCode::Config,
            Self::Discovery(_) => ErrorCode::Discovery,
            Self::MalformedCallback(_) => ErrorCode::MalformedCallback,
            Self::RedirectMismatch => ErrorCode::RedirectMismatch,
            Self::NoPendingLogin => ErrorCode::NoPendingLogin,
            Self::StateMismatch => ErrorCode::StateMismatch,
            Self::CallbackReplayed => ErrorCode::CallbackReplayed,
            Self::Cancelled => ErrorCode::Cancelled,
            Self::LoginExpired => ErrorCode::LoginExpired,
            Self::AccessDenied { .. } => ErrorCode::AccessDenied,
            Self::ProviderError { .. } => ErrorCode::ProviderError,
            Self::MissingCode => ErrorCode::MissingCode,
            Self::IssuerMismatch | Self::UnverifiedErrorResponse { .. } => {
                ErrorCode::IssuerMismatch
            }
            Self::ResourceRefused { .. } => ErrorCode::ResourceRefused,
            Self::IdTokenInvalid(_) => ErrorCode::IdTokenInvalid,
            Self::InvalidGrant { .. } => ErrorCode::InvalidGrant,
            Self::TokenEndpoint { .. } => ErrorCode::TokenEndpoint,
            Self::NotSupported(_) => ErrorCode::NotSupported,
            Self::Network(_) => ErrorCode::Network,
            Self::Loopback(..) => ErrorCode::Loopback,
        }
    }

    /// The wait the provider asked for (`Retry-After` of a 429/503 token response), if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::TokenEndpoint { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for failures worth retrying later (network trouble, provider 5xx/429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::TokenEndpoint {
                status: Some(s), ..
            } => *s >= 500 || *s == 429,
            Self::TokenEndpoint { error, .. } => error == "temporarily_unavailable",
            _ => false,
        }
    }
}

/// Keep only the characters RFC 6749 allows in `error` / `error_description`
/// (`%x20-21 / %x23-5B / %x5D-7E`), drop everything else (controls, quotes, backslashes,
/// non-ASCII look-alikes), collapse nothing else, and truncate to [`MAX_DESCRIPTION_CHARS`].
pub(crate) fn sanitize_provider_text(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .filter(|c| matches!(*c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .take(MAX_DESCRIPTION_CHARS + 1)
        .collect();
    if out.chars().count() > MAX_DESCRIPTION_CHARS {
        out = out.chars().take(MAX_DESCRIPTION_CHARS - 3).collect();
        out.push_str("...");
    }
    out.trim().to_owned()
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_kebab_case() {
        let json = serde_json::to_string(&ErrorCode::StateMismatch).unwrap();
        assert_eq!(
            json, "\"state-mismatch\"",
            "codes are kebab-case on the wire"
        );
        for code in [
            ErrorCode::AccessDenied,
            ErrorCode::IdTokenInvalid,
            ErrorCode::CallbackReplayed,
            ErrorCode::ResourceRefused,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", code.as_str()),
                "serde form and as_str agree"
            );
        }
    }

    #[test]
    fn sanitize_drops_controls_quotes_and_unicode_and_truncates() {
        let s = sanitize_provider_text("bad\u{0}\n\"x\"\\ \u{202e}evil\u{1F600}");
        assert_eq!(
            s, "badx evil",
            "only RFC 6749 description characters survive"
        );
        let long = "a".repeat(5000);
        let s = sanitize_provider_text(&long);
        assert!(
            s.chars().count() <= MAX_DESCRIPTION_CHARS,
            "provider text is truncated"
        );
        assert!(s.ends_with("..."), "truncation is visible");
    }

    #[test]
    fn display_has_no_placeholders_for_secrets() {
        let e = Error::AccessDenied {
            description: Some("user said no".into()),
        };
        assert_eq!(
            e.to_string(),
            "sign-in was denied at the identity provider: user said no",
            "access denied message carries the sanitized description"
        );
        assert_eq!(e.code(), ErrorCode::AccessDenied, "code matches variant");
    }

    #[test]
    fn an_unverifiable_error_response_is_not_called_another_provider() {
        let e = Error::UnverifiedErrorResponse {
            error: "server_error".into(),
        };
        assert_eq!(
            e.code(),
            ErrorCode::IssuerMismatch,
            "refused as RFC 9207 says"
        );
        let text = e.to_string();
        assert!(
            text.contains("could not be verified") && !text.contains("different identity provider"),
            "says what happened, not a mix-up: {text}"
        );
        assert!(
            !text.contains("server_error"),
            "the provider's code goes to the log, not the message: {text}"
        );
        assert_eq!(
            Error::IssuerMismatch.to_string(),
            "the sign-in response came from a different identity provider",
            "a real iss mismatch keeps its message"
        );
    }

    #[test]
    fn a_refused_resource_says_which_setting_to_check() {
        let e = Error::ResourceRefused { description: None };
        assert_eq!(e.code().as_str(), "resource-refused");
        assert_eq!(
            e.to_string(),
            "the identity provider refused the chat resource indicator (invalid_target): check \
             `chat_resource` in the configuration"
        );
    }
}
