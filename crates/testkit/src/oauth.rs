//! Plain OAuth helpers against the test IdP: a PKCE authorization request, the code exchange and
//! refresh, so tests of other crates can get real tokens in one call.
//!
//! These are deliberately hand-written and small; the product's own client lives in confab-auth.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::idp::{Idp, CLIENT_ID};
use crate::login::headless_login;

/// Scopes the helpers request.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// A prepared authorization request (authorization code + PKCE S256).
pub struct AuthorizationRequest {
    /// Full authorization URL to open.
    pub url: Url,
    /// Redirect URI the callback will go to.
    pub redirect_uri: String,
    /// One-time `state`.
    pub state: String,
    /// OIDC `nonce`.
    pub nonce: String,
    verifier: String,
}

impl AuthorizationRequest {
    /// PKCE code verifier for the token request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }
}

impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.path())
            .field("redirect_uri", &self.redirect_uri)
            .field("verifier", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for AuthorizationRequest {
    fn drop(&mut self) {
        self.verifier.zeroize();
    }
}

/// Token endpoint response. `Debug` never shows token values.
#[derive(Deserialize)]
pub struct TokenSet {
    /// JWT access token for the chat audience.
    pub access_token: String,
    /// Refresh token (always issued to `confab-desktop`).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// ID token (when `openid` was requested).
    #[serde(default)]
    pub id_token: Option<String>,
    /// Access token lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Granted scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// `Bearer` or `DPoP`.
    pub token_type: String,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
        self.id_token.zeroize();
    }
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// S256 code challenge of a verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Claims of a JWT, decoded WITHOUT verifying the signature (test inspection only).
pub fn jwt_claims(token: &str) -> Result<serde_json::Value> {
    jwt_part(token, 1)
}

/// Header of a JWT, decoded without verification (test inspection only).
pub fn jwt_header(token: &str) -> Result<serde_json::Value> {
    jwt_part(token, 0)
}

fn jwt_part(token: &str, index: usize) -> Result<serde_json::Value> {
    let part = token
        .split('.')
        .nth(index)
        .ok_or_else(|| Error::Unexpected("not a JWT (too few parts)".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| Error::Unexpected(format!("JWT part is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Unexpected(format!("JWT part is not JSON: {e}")))
}

impl Idp {
    /// Builds an authorization request for `confab-desktop` with fresh PKCE (S256), state and
    /// nonce. `login_hint` picks the user in auto mode. Extra query pairs (e.g. `prompt`,
    /// `resource`) can be appended to `url` before use.
    pub fn authorization_request(
        &self,
        redirect_uri: &str,
        login_hint: Option<&str>,
    ) -> AuthorizationRequest {
        let verifier = random_b64(32);
        let state = random_b64(16);
        let nonce = random_b64(16);
        let mut url = self.endpoint("/auth");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", CLIENT_ID)
                .append_pair("response_type", "code")
                .append_pair("scope", DEFAULT_SCOPE)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_challenge", &pkce_challenge(&verifier))
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("nonce", &nonce);
            if let Some(hint) = login_hint {
                q.append_pair("login_hint", hint);
            }
        }
        AuthorizationRequest {
            url,
            redirect_uri: redirect_uri.to_owned(),
            state,
            nonce,
            verifier,
        }
    }

    /// Exchanges an authorization code (token endpoint, public client, PKCE).
    pub async fn exchange_code(
        &self,
        code: &str,
        request: &AuthorizationRequest,
    ) -> Result<TokenSet> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("code", code),
            ("code_verifier", request.verifier()),
            ("redirect_uri", &request.redirect_uri),
        ])
        .await
    }

    /// Uses a refresh token. The response carries a new (rotated) refresh token; the one passed
    /// in is then spent, and presenting it again revokes the whole grant.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Signs `user` in (auto mode) through the real authorization endpoint and returns the
    /// tokens: the quickest way for a test to hold a valid access and refresh token.
    pub async fn login(&self, user: &str) -> Result<TokenSet> {
        let redirect_uri = "http://127.0.0.1:9/callback";
        let request = self.authorization_request(redirect_uri, Some(user));
        let callback = headless_login(&request.url, redirect_uri).await?;
        let params = CallbackParams::parse(&callback);
        if let Some(error) = &params.error {
            return Err(Error::Unexpected(format!(
                "authorization failed for {user}: {error} ({})",
                params.error_description.as_deref().unwrap_or_default()
            )));
        }
        if params.state.as_deref() != Some(request.state.as_str()) {
            return Err(Error::Unexpected("callback state does not match".into()));
        }
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| Error::Unexpected("callback carries no code".into()))?;
        self.exchange_code(code, &request).await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenSet> {
        let response = self
            .http_client()
            .post(self.endpoint("/token"))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        if status.is_success() {
            serde_json::from_str(&body)
                .map_err(|e| Error::Unexpected(format!("token response is not a token set: {e}")))
        } else {
            let err: OAuthError = serde_json::from_str(&body).map_err(|e| {
                Error::Unexpected(format!("token endpoint answered {status}: {body} ({e})"))
            })?;
            Err(Error::TokenEndpoint {
                status: status.as_u16(),
                error: err.error,
                description: err.error_description,
            })
        }
    }
}

/// Query parameters of an authorization callback URL.
#[derive(Default)]
pub struct CallbackParams {
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state)
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl CallbackParams {
    /// Reads the parameters from a callback URL.
    pub fn parse(url: &Url) -> Self {
        let mut out = Self::default();
        for (key, value) in url.query_pairs() {
            let value = Some(value.into_owned());
            match key.as_ref() {
                "code" => out.code = value,
                "state" => out.state = value,
                "iss" => out.iss = value,
                "error" => out.error = value,
                "error_description" => out.error_description = value,
                _ => {}
            }
        }
        out
    }
}

impl Drop for CallbackParams {
    fn drop(&mut self) {
        self.code.zeroize();
    }
}
