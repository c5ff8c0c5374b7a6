//! A first-party Django REST Framework backend with SimpleJWT (seed 004): password sign-in at
//! its login view, refresh through SimpleJWT's `TokenRefreshView`, sign-out through
//! `TokenBlacklistView`.
//!
//! - **Login**: `POST {base}/{login_path}` with `{"email": <email or username>, "password"}` →
//!   `{"username", "email", "first_name", "last_name", "access_token", "refresh_token"}`.
//! - **Refresh**: `POST {base}/{refresh_path}` with `{"refresh"}` → `{"access"}` and, with
//!   `ROTATE_REFRESH_TOKENS`, a new `{"refresh"}`. A 401 `token_not_valid` (expired,
//!   blacklisted, rotated away) is [`Error::TokenRefused`]: the session is over.
//! - **Sign-out**: `POST {base}/{blacklist_path}` with `{"refresh"}`.
//!
//! Paths and field names are [`SimpleJwtSettings`], with the seed's as defaults. The access
//! token's `exp` is read (not verified: the backend verifies its own tokens) to schedule the
//! refresh. The password travels once, in a body kept in a zeroizing buffer, over https (plain
//! http only to a loopback host); it is never stored or logged.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use confab_types::SecretString;
use serde::Deserialize;
use serde_json::Value;
use url::{Host, Url};

use crate::body::secret_body;
use crate::error::{Error, Result};

/// How long one request to the backend may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Wait after a 429 without a readable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Longest backend text quoted in an error.
const MAX_DETAIL_CHARS: usize = 200;

/// Where the endpoints are and what their fields are called. Every field has the seed's value
/// as its default, so a profile names only what its backend does differently.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimpleJwtSettings {
    /// The login view, relative to the backend's base URL.
    pub login_path: String,
    /// SimpleJWT's `TokenRefreshView`, relative to the base URL.
    pub refresh_path: String,
    /// SimpleJWT's `TokenBlacklistView`, relative to the base URL (empty: none; sign-out then
    /// only forgets the tokens).
    pub blacklist_path: String,
    /// The login request's field carrying the email or username.
    pub login_field: String,
    /// The login request's password field.
    pub password_field: String,
    /// The login response's access token field.
    pub access_field: String,
    /// The login response's refresh token field.
    pub refresh_field: String,
    /// The refresh (and blacklist) request's refresh token field.
    pub refresh_request_field: String,
    /// The refresh response's access token field.
    pub refreshed_access_field: String,
    /// The refresh response's rotated refresh token field.
    pub refreshed_refresh_field: String,
    /// The access token claim naming the user as the chat knows them (the `sub` of the chat
    /// tokens the backend mints: Confab recognises the person's own messages by it). Empty (the
    /// default): the login view's `username`, which seed 004's chat tokens carry. A claim the
    /// token lacks also falls back to the username.
    pub user_id_claim: String,
}

impl Default for SimpleJwtSettings {
    fn default() -> Self {
        Self {
            login_path: "api/authuser/login/".to_owned(),
            refresh_path: "api/token/refresh/".to_owned(),
            blacklist_path: "api/token/blacklist/".to_owned(),
            login_field: "email".to_owned(),
            password_field: "password".to_owned(),
            access_field: "access_token".to_owned(),
            refresh_field: "refresh_token".to_owned(),
            refresh_request_field: "refresh".to_owned(),
            refreshed_access_field: "access".to_owned(),
            refreshed_refresh_field: "refresh".to_owned(),
            user_id_claim: String::new(),
        }
    }
}

/// Who signed in, as the login view describes them (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Who the user is to the chat: the username, or the access token's
    /// [`SimpleJwtSettings::user_id_claim`] when one is configured.
    pub id: String,
    /// The username.
    pub username: String,
    /// The email address, if the backend gave one.
    pub email: Option<String>,
    /// "First Last", if the backend gave a name.
    pub name: Option<String>,
}

/// An access token, when it expires, and the refresh token when the backend sent one.
#[derive(Debug)]
pub struct Tokens {
    /// The access token (a SimpleJWT JWT).
    pub access: SecretString,
    /// Its `exp`.
    pub expires_at: SystemTime,
    /// The refresh token: always after a login, after a refresh only when rotated.
    pub refresh: Option<SecretString>,
}

/// A completed login.
#[derive(Debug)]
pub struct Login {
    /// Who signed in.
    pub profile: Profile,
    /// Their tokens.
    pub tokens: Tokens,
}

/// A client of one SimpleJWT backend. See the module documentation.
#[derive(Debug, Clone)]
pub struct SimpleJwtClient {
    http: reqwest::Client,
    base: Url,
    settings: SimpleJwtSettings,
}

impl SimpleJwtClient {
    /// A client of the backend at `base` (https, or http to a loopback host).
    pub fn new(base: Url, settings: SimpleJwtSettings) -> Result<Self> {
        if !is_https_or_loopback(&base) {
            return Err(Error::Config(format!(
                "the backend address must use https (plain http only on a loopback address): {}",
                base.origin().ascii_serialization()
            )));
        }
        if base.cannot_be_a_base() || base.query().is_some() || base.fragment().is_some() {
            return Err(Error::Config(
                "the backend address must be a plain https URL".to_owned(),
            ));
        }
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                // A redirect would re-send the password elsewhere: never followed.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
            base,
            settings,
        };
        for path in [&client.settings.login_path, &client.settings.refresh_path] {
            client.endpoint(path)?;
        }
        Ok(client)
    }

    /// The backend's base URL as the accounts' issuer (no trailing slash).
    pub fn issuer(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Config(format!("the path `{path}` is not a URL path ({e})")))?;
        if url.origin() != self.base.origin() {
            return Err(Error::Config(format!(
                "the path `{path}` leaves the backend's address"
            )));
        }
        Ok(url)
    }

    /// Signs in with an email or username and a password.
    pub async fn login(&self, login: &str, password: &SecretString) -> Result<Login> {
        let login = login.trim();
        if login.is_empty() {
            return Err(Error::MissingField("enter your email or username"));
        }
        if password.is_empty() {
            return Err(Error::MissingField("enter your password"));
        }
        let body = secret_body(
            &[(&self.settings.login_field, login)],
            &self.settings.password_field,
            password,
        )?;
        let resp = self.post(&self.settings.login_path, body).await?;
        let status = resp.status();
        if !status.is_success() {
            let err = error_of(resp).await;
            return Err(login_error(status.as_u16(), err));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|_| Error::Server("the sign-in answer is not JSON".to_owned()))?;
        let access = field(&v, &self.settings.access_field)?;
        let refresh = field(&v, &self.settings.refresh_field)?;
        let claims = claims_of(&access)?;
        let text = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let username = text("username").unwrap_or_else(|| login.to_owned());
        let claim = Some(self.settings.user_id_claim.as_str()).filter(|c| !c.is_empty());
        let id = match claim.and_then(|c| claims.get(c)) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => username.clone(),
        };
        let name = [text("first_name"), text("last_name")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Login {
            profile: Profile {
                id,
                username,
                email: text("email"),
                name: Some(name).filter(|n| !n.is_empty()),
            },
            tokens: Tokens {
                expires_at: expiry_of(&claims)?,
                access,
                refresh: Some(refresh),
            },
        })
    }

    /// Exchanges a refresh token for a new access token (and, with rotation, a new refresh
    /// token, which replaces the old one: the old one is blacklisted by the backend).
    pub async fn refresh(&self, refresh: &SecretString) -> Result<Tokens> {
        let body = secret_body(&[], &self.settings.refresh_request_field, refresh)?;
        let resp = self.post(&self.settings.refresh_path, body).await?;
        let status = resp.status();
        if !status.is_success() {
            let err = error_of(resp).await;
            return Err(token_error(status.as_u16(), err));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|_| Error::Server("the refresh answer is not JSON".to_owned()))?;
        let access = field(&v, &self.settings.refreshed_access_field)?;
        let claims = claims_of(&access)?;
        let refresh = match v.get(&self.settings.refreshed_refresh_field) {
            None | Some(Value::Null) => None,
            Some(_) => Some(field(&v, &self.settings.refreshed_refresh_field)?),
        };
        Ok(Tokens {
            expires_at: expiry_of(&claims)?,
            access,
            refresh,
        })
    }

    /// Whether the profile has a blacklist endpoint (sign-out can revoke).
    pub fn can_revoke(&self) -> bool {
        !self.settings.blacklist_path.is_empty()
    }

    /// Blacklists a refresh token (sign-out). A token the backend already refuses is as good
    /// as blacklisted: `Ok`.
    pub async fn blacklist(&self, refresh: &SecretString) -> Result<()> {
        if !self.can_revoke() {
            return Ok(());
        }
        let body = secret_body(&[], &self.settings.refresh_request_field, refresh)?;
        let resp = self.post(&self.settings.blacklist_path, body).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let err = error_of(resp).await;
        match token_error(status.as_u16(), err) {
            Error::TokenRefused => Ok(()),
            e => Err(e),
        }
    }

    async fn post(&self, path: &str, body: reqwest::Body) -> Result<reqwest::Response> {
        let url = self.endpoint(path)?;
        self.http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Error::Unreachable(describe(&e)))
    }
}

/// `https`, or plain `http` to a loopback host only.
pub fn is_https_or_loopback(u: &Url) -> bool {
    match u.scheme() {
        "https" => true,
        "http" => match u.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

/// A string field of a JSON answer as a secret; missing or empty is a server error.
fn field(v: &Value, name: &str) -> Result<SecretString> {
    match v.get(name).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(SecretString::from(s)),
        _ => Err(Error::Server(format!("the answer has no `{name}`"))),
    }
}

/// The claims of a JWT, read without verifying it (the backend verifies its own tokens; the
/// client only needs `exp` and the user id).
fn claims_of(token: &SecretString) -> Result<serde_json::Map<String, Value>> {
    let bad = || Error::Server("the access token is not a JWT".to_owned());
    let payload = token.expose_secret().split('.').nth(1).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad()),
    }
}

fn expiry_of(claims: &serde_json::Map<String, Value>) -> Result<SystemTime> {
    claims
        .get("exp")
        .and_then(Value::as_u64)
        .map(|exp| UNIX_EPOCH + Duration::from_secs(exp))
        .ok_or_else(|| Error::Server("the access token has no expiry (`exp`)".to_owned()))
}

/// What an error answer said: its `code`, its words, and a `Retry-After`.
struct ErrorBody {
    code: Option<String>,
    words: Option<String>,
    retry_after: Option<Duration>,
}

async fn error_of(resp: reqwest::Response) -> ErrorBody {
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| confab_types::retry_after::parse(v, SystemTime::now()));
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    let code = v.get("code").and_then(Value::as_str).map(str::to_owned);
    ErrorBody {
        code,
        words: words_of(&v),
        retry_after,
    }
}

/// DRF's error shapes in words: `{"detail": "..."}`, or field errors
/// `{"email": ["This field is required."], "non_field_errors": [...]}`.
fn words_of(v: &Value) -> Option<String> {
    if let Some(detail) = v.get("detail").and_then(Value::as_str) {
        return Some(clean(detail));
    }
    let map = v.as_object()?;
    let mut parts = Vec::new();
    for (key, value) in map {
        if key == "code" || key == "messages" {
            continue;
        }
        let texts: Vec<&str> = match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if texts.is_empty() {
            continue;
        }
        let joined = texts.join(" ");
        if key == "non_field_errors" {
            parts.push(joined);
        } else {
            parts.push(format!("{key}: {joined}"));
        }
    }
    Some(clean(&parts.join("; "))).filter(|s| !s.is_empty())
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_DETAIL_CHARS)
        .collect()
}

fn rate_limited(err: &ErrorBody) -> Error {
    Error::RateLimited {
        retry_after: err
            .retry_after
            .unwrap_or(DEFAULT_RETRY_AFTER)
            .min(MAX_RETRY_AFTER),
    }
}

/// Another failure: a 4xx is refused for good, anything else may pass.
fn other_error(status: u16, err: &ErrorBody) -> Error {
    let text = match &err.words {
        Some(words) => format!("HTTP {status}: {words}"),
        None => format!("HTTP {status}"),
    };
    if (400..500).contains(&status) {
        Error::Refused(text)
    } else {
        Error::Server(text)
    }
}

fn login_error(status: u16, err: ErrorBody) -> Error {
    let inactive = err.code.as_deref().is_some_and(|c| c.contains("inactive"))
        || err
            .words
            .as_deref()
            .is_some_and(|w| w.to_ascii_lowercase().contains("inactive"));
    match status {
        400 | 422 => match err.words {
            Some(words) => Error::Invalid(words),
            None => Error::Invalid(format!("HTTP {status}")),
        },
        401 => Error::WrongCredentials,
        403 if inactive => Error::Inactive,
        403 => Error::Invalid(err.words.unwrap_or_else(|| "HTTP 403".to_owned())),
        429 => rate_limited(&err),
        _ => other_error(status, &err),
    }
}

fn token_error(status: u16, err: ErrorBody) -> Error {
    match status {
        401 => Error::TokenRefused,
        400 if err.code.as_deref() == Some("token_not_valid") => Error::TokenRefused,
        429 => rate_limited(&err),
        _ => other_error(status, &err),
    }
}

/// A request error in words, without the URL (no secret is in it, but a query could be).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".to_owned();
    }
    if e.is_connect() {
        return "the connection was refused or failed".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    clean(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> SecretString {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        SecretString::new(format!(
            "{}.{}.sig",
            enc(r#"{"alg":"HS256","typ":"JWT"}"#),
            enc(claims)
        ))
    }

    #[test]
    fn only_https_or_loopback_http_is_a_backend() {
        for ok in [
            "https://api.example.org/",
            "http://127.0.0.1:8000/",
            "http://[::1]:8000/",
            "http://localhost:8000/",
        ] {
            let url = Url::parse(ok).unwrap();
            assert!(
                SimpleJwtClient::new(url, SimpleJwtSettings::default()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://api.example.org/",
            "ftp://127.0.0.1/",
            "https://a/?x=1",
        ] {
            let url = Url::parse(bad).unwrap();
            let err = SimpleJwtClient::new(url, SimpleJwtSettings::default()).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn paths_stay_on_the_backend() {
        let base = Url::parse("https://api.example.org/tenant").unwrap();
        let client = SimpleJwtClient::new(base, SimpleJwtSettings::default()).unwrap();
        assert_eq!(client.issuer(), "https://api.example.org/tenant");
        assert_eq!(
            client.endpoint("/api/token/refresh/").unwrap().as_str(),
            "https://api.example.org/tenant/api/token/refresh/",
            "paths are relative to the base, a leading slash or not"
        );
        let settings = SimpleJwtSettings {
            refresh_path: "https://evil.example/steal".to_owned(),
            ..SimpleJwtSettings::default()
        };
        let base = Url::parse("https://api.example.org/").unwrap();
        let err = SimpleJwtClient::new(base, settings).unwrap_err();
        assert!(err.to_string().contains("leaves"), "{err}");
    }

    #[test]
    fn claims_give_expiry_and_are_read_without_padding_or_signature() {
        let token = jwt(r#"{"exp":1800000000,"user_id":7}"#);
        let claims = claims_of(&token).unwrap();
        assert_eq!(
            expiry_of(&claims).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_800_000_000)
        );
        assert!(claims_of(&SecretString::from("opaque")).is_err());
        assert!(expiry_of(&claims_of(&jwt(r#"{"user_id":7}"#)).unwrap()).is_err());
    }

    #[test]
    fn drf_errors_read_as_words() {
        let v: Value = serde_json::json!({"email": ["This field is required."], "password": ["This field may not be blank."]});
        assert_eq!(
            words_of(&v).unwrap(),
            "email: This field is required.; password: This field may not be blank."
        );
        let v: Value = serde_json::json!({"detail": "Nope\u{7}", "code": "x"});
        assert_eq!(words_of(&v).unwrap(), "Nope");
        let v: Value = serde_json::json!({"non_field_errors": ["Bad pair."]});
        assert_eq!(words_of(&v).unwrap(), "Bad pair.");
    }

    fn body(code: Option<&str>, words: Option<&str>) -> ErrorBody {
        ErrorBody {
            code: code.map(str::to_owned),
            words: words.map(str::to_owned),
            retry_after: None,
        }
    }

    #[test]
    fn login_statuses_become_worded_errors() {
        assert_eq!(login_error(401, body(None, None)), Error::WrongCredentials);
        assert_eq!(
            login_error(403, body(Some("account_inactive"), None)),
            Error::Inactive
        );
        assert_eq!(
            login_error(403, body(None, Some("User is inactive"))),
            Error::Inactive
        );
        assert_eq!(
            login_error(400, body(None, Some("email: required"))),
            Error::Invalid("email: required".to_owned())
        );
        let limited = login_error(
            429,
            ErrorBody {
                retry_after: Some(Duration::from_secs(42)),
                ..body(None, None)
            },
        );
        assert_eq!(limited.to_string(), "too many attempts. Try again in 42 s");
        assert!(limited.is_transient());
        assert_eq!(
            login_error(429, body(None, None)).retry_after(),
            Some(DEFAULT_RETRY_AFTER)
        );
        assert!(login_error(502, body(None, None)).is_transient());
        assert!(matches!(
            login_error(404, body(None, None)),
            Error::Refused(_)
        ));
    }

    #[test]
    fn a_refused_refresh_ends_the_session_and_others_are_retried() {
        assert_eq!(
            token_error(401, body(Some("token_not_valid"), None)),
            Error::TokenRefused
        );
        assert_eq!(
            token_error(400, body(Some("token_not_valid"), None)),
            Error::TokenRefused
        );
        assert!(token_error(503, body(None, None)).is_transient());
        assert!(!token_error(400, body(None, Some("refresh: required"))).is_transient());
    }
}
