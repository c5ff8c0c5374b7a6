//! Redirect targets and the pure callback parser.

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use url::{Host, Url};

use crate::error::{sanitize_provider_text, Error, Result};
use crate::SecretString;

/// Longest callback URL accepted, in bytes. Real ones are a few hundred bytes.
pub const MAX_CALLBACK_LEN: usize = 8 * 1024;
/// Most query parameters accepted in a callback.
pub const MAX_CALLBACK_PARAMS: usize = 32;
/// Longest `code` / `state` / `iss` value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 2048;
/// The only path a loopback redirect may use.
pub const LOOPBACK_PATH: &str = "/callback";

/// Where the identity provider sends the browser back to (RFC 8252 §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTarget {
    /// A private-use URI scheme in reverse-DNS form, e.g. `dev.confab.chat:/oauth/callback`,
    /// delivered by the OS as a deep link.
    PrivateUseScheme(Url),
    /// `http://127.0.0.1:{port}/callback`, answered by a [`crate::LoopbackListener`].
    Loopback(Url),
}

/// Which kind of redirect a login uses (non-secret, fine for the UI and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectKind {
    /// [`RedirectTarget::PrivateUseScheme`]
    PrivateUseScheme,
    /// [`RedirectTarget::Loopback`]
    Loopback,
}

impl RedirectTarget {
    /// A private-use scheme redirect; checks the reverse-DNS form and that there is no host.
    pub fn private_use(url: &str) -> Result<Self> {
        let url = Url::parse(url).map_err(|_| Error::Config("the redirect URI is not a URL"))?;
        let t = Self::PrivateUseScheme(url);
        t.validate()?;
        Ok(t)
    }

    /// `http://127.0.0.1:{port}/callback`.
    pub fn loopback(port: u16) -> Result<Self> {
        let url = Url::parse(&format!("http://127.0.0.1:{port}{LOOPBACK_PATH}"))
            .map_err(|_| Error::Config("the loopback redirect URI is not a URL"))?;
        let t = Self::Loopback(url);
        t.validate()?;
        Ok(t)
    }

    /// The redirect URI exactly as sent in the authorization and token requests.
    pub fn url(&self) -> &Url {
        match self {
            Self::PrivateUseScheme(u) | Self::Loopback(u) => u,
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> RedirectKind {
        match self {
            Self::PrivateUseScheme(_) => RedirectKind::PrivateUseScheme,
            Self::Loopback(_) => RedirectKind::Loopback,
        }
    }

    /// Check the target is something RFC 8252 allows for a native app.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::PrivateUseScheme(u) => {
                let scheme = u.scheme();
                if !scheme.contains('.') || matches!(scheme, "http" | "https") {
                    return Err(Error::Config(
                        "a private-use redirect scheme must be reverse-DNS (e.g. com.example.app)",
                    ));
                }
                if u.host().is_some() || !u.path().starts_with('/') {
                    return Err(Error::Config(
                        "a private-use redirect must look like scheme:/path (one slash, no host)",
                    ));
                }
                if u.query().is_some() || u.fragment().is_some() {
                    return Err(Error::Config(
                        "a redirect URI must not carry a query or fragment",
                    ));
                }
            }
            Self::Loopback(u) => {
                if u.scheme() != "http"
                    || u.host() != Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
                    || u.port().unwrap_or(0) == 0
                    || u.path() != LOOPBACK_PATH
                    || u.query().is_some()
                    || u.fragment().is_some()
                {
                    return Err(Error::Config(
                        "a loopback redirect must be http://127.0.0.1:{port}/callback",
                    ));
                }
            }
        }
        if !u_credentials_empty(self.url()) {
            return Err(Error::Config("a redirect URI must not carry credentials"));
        }
        Ok(())
    }
}

fn u_credentials_empty(u: &Url) -> bool {
    u.username().is_empty() && u.password().is_none()
}

/// An `error=` answer from the authorization endpoint (RFC 6749 §4.1.2.1), sanitized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderErrorParams {
    /// `error`, e.g. `access_denied`.
    pub error: String,
    /// `error_description`, if any.
    pub description: Option<String>,
}

/// What a callback URL carried. Secrets stay in [`SecretString`].
#[derive(Debug)]
pub struct CallbackParams {
    /// `state`. Required: a callback without it cannot be tied to a login.
    pub state: SecretString,
    /// `code`, if the provider granted access.
    pub code: Option<SecretString>,
    /// `iss` (RFC 9207), if present.
    pub iss: Option<String>,
    /// `error` / `error_description`, if the provider refused.
    pub error: Option<ProviderErrorParams>,
}

/// Parse and classify a callback URL without side effects.
///
/// Accepts only a URL addressed to `expected` (same scheme and path; for loopback also
/// `127.0.0.1` and the port), with a well-formed query: valid percent-encoding, UTF-8, at most
/// [`MAX_CALLBACK_PARAMS`] parameters, no repeated `state`/`code`/`iss`/`error`, no fragment,
/// no credentials, at most [`MAX_CALLBACK_LEN`] bytes overall. Anything else is a typed error;
/// this function never panics.
pub fn parse_callback(url: &str, expected: &RedirectTarget) -> Result<CallbackParams> {
    if url.len() > MAX_CALLBACK_LEN {
        return Err(Error::MalformedCallback("it is too long"));
    }
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Error::MalformedCallback("it contains invalid characters"));
    }
    let parsed = Url::parse(url).map_err(|_| Error::MalformedCallback("it is not a URL"))?;
    check_addressed_to(&parsed, expected)?;
    if parsed.fragment().is_some() {
        return Err(Error::MalformedCallback("it has an unexpected fragment"));
    }
    let query = parsed
        .query()
        .ok_or(Error::MalformedCallback("it has no parameters"))?;

    let mut state = None;
    let mut code = None;
    let mut iss = None;
    let mut error = None;
    let mut description = None;
    let mut count = 0usize;
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_CALLBACK_PARAMS {
            return Err(Error::MalformedCallback("it has too many parameters"));
        }
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = form_decode(raw_name)?;
        let slot = match name.as_str() {
            "state" => &mut state,
            "code" => &mut code,
            "iss" => &mut iss,
            "error" => &mut error,
            "error_description" => &mut description,
            // Other parameters (session_state, scope, ...) are allowed and ignored, but
            // still decoded so a broken encoding anywhere is refused.
            _ => {
                form_decode(raw_value)?;
                continue;
            }
        };
        if slot.is_some() {
            return Err(Error::MalformedCallback("a parameter is repeated"));
        }
        *slot = Some(form_decode(raw_value)?);
    }

    let state = state.ok_or(Error::MalformedCallback("it has no state"))?;
    check_token_chars(&state, "the state value is not valid")?;
    let code = match code {
        Some(c) => {
            check_token_chars(&c, "the authorization code is not valid")?;
            Some(SecretString::new(c))
        }
        None => None,
    };
    if let Some(i) = &iss {
        check_token_chars(i, "the issuer value is not valid")?;
    }
    let error = match error {
        Some(e) => {
            let e = sanitize_provider_text(&e);
            if e.is_empty() {
                return Err(Error::MalformedCallback("the error value is not valid"));
            }
            Some(ProviderErrorParams {
                error: e,
                description: description
                    .map(|d| sanitize_provider_text(&d))
                    .filter(|d| !d.is_empty()),
            })
        }
        None => None,
    };
    Ok(CallbackParams {
        state: SecretString::new(state),
        code,
        iss,
        error,
    })
}

fn check_addressed_to(got: &Url, expected: &RedirectTarget) -> Result<()> {
    let want = expected.url();
    if !got.username().is_empty() || got.password().is_some() {
        return Err(Error::MalformedCallback("it carries credentials"));
    }
    let same = got.scheme() == want.scheme()
        && got.path() == want.path()
        && got.port_or_known_default() == want.port_or_known_default()
        && match expected {
            RedirectTarget::PrivateUseScheme(_) => got.host().is_none(),
            RedirectTarget::Loopback(_) => {
                got.host() == Some(Host::Ipv4(Ipv4Addr::LOCALHOST))
                    && matches!(want.host(), Some(Host::Ipv4(ip)) if IpAddr::V4(ip).is_loopback())
            }
        };
    if same {
        Ok(())
    } else {
        Err(Error::RedirectMismatch)
    }
}

/// `state`, `code` and `iss` are VSCHAR strings (RFC 6749 Appendix A): printable ASCII.
fn check_token_chars(v: &str, what: &'static str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_VALUE_LEN || !v.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::MalformedCallback(what));
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding that refuses what browsers never produce:
/// a `%` not followed by two hex digits, or bytes that are not UTF-8.
fn form_decode(raw: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(Error::MalformedCallback("it has a broken percent-encoding")),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::MalformedCallback("it is not valid UTF-8"))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn pu() -> RedirectTarget {
        RedirectTarget::private_use("dev.confab.chat:/oauth/callback").unwrap()
    }

    fn code_of(r: Result<CallbackParams>) -> ErrorCode {
        r.err().map(|e| e.code()).expect("expected an error")
    }

    #[test]
    fn accepts_private_use_callback() {
        let p = parse_callback(
            "dev.confab.chat:/oauth/callback?code=abc&state=xyz&iss=http%3A%2F%2F127.0.0.1%3A9",
            &pu(),
        )
        .expect("a well-formed private-use callback parses");
        assert_eq!(p.state.expose_secret(), "xyz", "state is decoded");
        assert_eq!(
            p.code.as_ref().map(|c| c.expose_secret()),
            Some("abc"),
            "code is decoded"
        );
        assert_eq!(
            p.iss.as_deref(),
            Some("http://127.0.0.1:9"),
            "iss is percent-decoded"
        );
        assert!(p.error.is_none(), "no error in a success callback");
    }

    #[test]
    fn accepts_loopback_callback_only_on_its_port() {
        let lb = RedirectTarget::loopback(4242).unwrap();
        assert!(
            parse_callback("http://127.0.0.1:4242/callback?code=a&state=b", &lb).is_ok(),
            "loopback callback on the expected port parses"
        );
        for bad in [
            "http://127.0.0.1:4243/callback?code=a&state=b",
            "http://localhost:4242/callback?code=a&state=b",
            "http://0.0.0.0:4242/callback?code=a&state=b",
            "https://127.0.0.1:4242/callback?code=a&state=b",
            "http://127.0.0.1:4242/other?code=a&state=b",
            "dev.confab.chat:/oauth/callback?code=a&state=b",
        ] {
            assert_eq!(
                code_of(parse_callback(bad, &lb)),
                ErrorCode::RedirectMismatch,
                "a callback not addressed to our loopback redirect is refused: {bad}"
            );
        }
    }

    #[test]
    fn refuses_wrong_private_use_shapes() {
        for bad in [
            "dev.confab.chat://oauth/callback?code=a&state=b",
            "dev.confab.chat:/oauth/callbackx?code=a&state=b",
            "com.evil.app:/oauth/callback?code=a&state=b",
            "https://confab.chat/oauth/callback?code=a&state=b",
        ] {
            assert_eq!(
                code_of(parse_callback(bad, &pu())),
                ErrorCode::RedirectMismatch,
                "a callback for another redirect URI is refused: {bad}"
            );
        }
    }

    #[test]
    fn refuses_duplicates_fragments_and_bad_encodings() {
        let cases = [
            "dev.confab.chat:/oauth/callback?code=a&state=b&state=c",
            "dev.confab.chat:/oauth/callback?code=a&code=a&state=b",
            "dev.confab.chat:/oauth/callback?code=a&state=b#frag",
            "dev.confab.chat:/oauth/callback?code=a&state=%zz",
            "dev.confab.chat:/oauth/callback?code=a&state=%ff",
            "dev.confab.chat:/oauth/callback?code=a&state=%",
            "dev.confab.chat:/oauth/callback?code=a&state=%E2%82",
            "dev.confab.chat:/oauth/callback?code=%00&state=b",
            "dev.confab.chat:/oauth/callback?code=a",
            "dev.confab.chat:/oauth/callback",
            "dev.confab.chat:/oauth/callback?code=a&state=",
            "dev.confab.chat:/oauth/callback?code=a&state=%C3%A9",
        ];
        for bad in cases {
            assert_eq!(
                code_of(parse_callback(bad, &pu())),
                ErrorCode::MalformedCallback,
                "malformed callback is a typed error: {bad}"
            );
        }
    }

    #[test]
    fn refuses_too_long_and_too_many_params() {
        let long = format!(
            "dev.confab.chat:/oauth/callback?code=a&state={}",
            "x".repeat(MAX_CALLBACK_LEN)
        );
        assert_eq!(
            code_of(parse_callback(&long, &pu())),
            ErrorCode::MalformedCallback,
            "callbacks over the length cap are refused"
        );
        let many = format!(
            "dev.confab.chat:/oauth/callback?code=a&state=b{}",
            "&x=1".repeat(MAX_CALLBACK_PARAMS)
        );
        assert_eq!(
            code_of(parse_callback(&many, &pu())),
            ErrorCode::MalformedCallback,
            "callbacks with too many parameters are refused"
        );
    }

    #[test]
    fn error_callback_is_sanitized() {
        let p = parse_callback(
            "dev.confab.chat:/oauth/callback?error=access_denied&error_description=No+way%0A%E2%80%AEspoof&state=s",
            &pu(),
        )
        .expect("error callbacks parse");
        let e = p.error.expect("error is reported");
        assert_eq!(e.error, "access_denied", "error code kept");
        assert_eq!(
            e.description.as_deref(),
            Some("No wayspoof"),
            "controls and bidi overrides are removed from the description"
        );
    }

    #[test]
    fn redirect_target_validation() {
        assert!(
            RedirectTarget::private_use("confab:/cb").is_err(),
            "scheme must be reverse-DNS"
        );
        assert!(
            RedirectTarget::private_use("dev.confab.chat://host/cb").is_err(),
            "no host in a private-use redirect"
        );
        assert!(
            RedirectTarget::loopback(0).is_err(),
            "loopback needs a real port"
        );
        assert!(
            RedirectTarget::Loopback(Url::parse("http://0.0.0.0:80/callback").unwrap())
                .validate()
                .is_err(),
            "loopback must be 127.0.0.1"
        );
    }
}
