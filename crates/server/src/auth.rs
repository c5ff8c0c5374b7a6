//! Connection token verification: JWT access tokens from the configured issuer, checked
//! against the issuer's JWKS (discovered, cached, refetched on an unknown `kid` at most once
//! per interval). A refetch runs outside the key cache: tokens signed with cached keys keep
//! verifying while it waits on the issuer, and concurrent unknown `kid`s share one refetch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// Algorithms accepted for connection tokens. `none` and HMAC are never accepted.
pub const ALLOWED_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a token was refused. Only [`AuthError::Expired`] lets a client retry with a fresh token
/// on the same terms (reply 109); everything else is an invalid token (disconnect 3500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// Anything else: malformed, wrong algorithm, unknown key, bad signature, wrong iss/aud, nbf.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The key set could not be fetched (server-side problem).
    #[error("key set unavailable")]
    KeysUnavailable,
}

/// The identity a verified token establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub user: String,
    /// `exp` in Unix seconds.
    pub expires_at: u64,
    /// The display name the token carries (`name`, else `preferred_username`), if any.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// What only the task fetching keys touches (one at a time).
struct Fetcher {
    jwks_uri: Option<String>,
    last_fetch: Option<Instant>,
}

/// Verifies connection tokens for one issuer and audience.
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    leeway: u64,
    refetch_interval: Duration,
    http: reqwest::Client,
    /// The current key set: read by every verification, replaced whole after a fetch.
    keys: RwLock<Arc<JwkSet>>,
    /// Held across a fetch: later unknown `kid`s wait for it instead of fetching again.
    fetcher: Mutex<Fetcher>,
    /// Fetches finished (either way); a task that saw this change while it waited for the
    /// fetcher takes that fetch's outcome instead of starting another.
    fetches: AtomicU64,
}

impl TokenVerifier {
    /// A verifier; keys are fetched lazily on first use.
    pub fn new(
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
        refetch_interval: Duration,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Discovery(e.to_string()))?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            leeway: leeway_secs,
            refetch_interval,
            http,
            keys: RwLock::new(Arc::new(JwkSet { keys: Vec::new() })),
            fetcher: Mutex::new(Fetcher {
                jwks_uri: None,
                last_fetch: None,
            }),
            fetches: AtomicU64::new(0),
        })
    }

    /// Fetches discovery and the key set now (used at start so a bad issuer fails early).
    pub async fn prefetch(&self) -> Result<()> {
        let mut fetcher = self.fetcher.lock().await;
        self.fetch(&mut fetcher).await
    }

    /// The key set as last fetched (a poisoned lock still holds a whole set).
    fn current_keys(&self) -> Arc<JwkSet> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    async fn fetch(&self, fetcher: &mut Fetcher) -> Result<()> {
        let r = self.fetch_now(fetcher).await;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        r
    }

    async fn fetch_now(&self, fetcher: &mut Fetcher) -> Result<()> {
        fetcher.last_fetch = Some(Instant::now());
        let jwks_uri = match &fetcher.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let doc: Discovery = self.get_json(&url).await?;
                if doc.issuer.trim_end_matches('/') != self.issuer {
                    return Err(Error::Discovery(format!(
                        "discovery document names issuer {:?}, expected {:?}",
                        doc.issuer, self.issuer
                    )));
                }
                fetcher.jwks_uri = Some(doc.jwks_uri.clone());
                doc.jwks_uri
            }
        };
        let keys: JwkSet = self.get_json(&jwks_uri).await?;
        tracing::info!(keys = keys.keys.len(), "fetched issuer key set");
        let keys = Arc::new(keys);
        match self.keys.write() {
            Ok(mut k) => *k = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Discovery(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::Discovery(format!(
                "GET {url}: HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map_err(|e| Error::Discovery(format!("GET {url}: {e}")))
    }

    /// The key for a token from the cached set; `None` when the set has no such key.
    fn cached_key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Option<Jwk>, AuthError> {
        let keys = self.current_keys();
        if let Some(jwk) = find_key(&keys, kid, alg) {
            return Ok(Some(jwk));
        }
        if kid.is_some() && keys.keys.iter().any(|k| k.common.key_id.as_deref() == kid) {
            return Err(AuthError::Invalid("algorithm does not match key"));
        }
        Ok(None)
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, AuthError> {
        if let Some(jwk) = self.cached_key(kid, alg)? {
            return Ok(jwk);
        }
        let seen = self.fetches.load(Ordering::SeqCst);
        let mut fetcher = self.fetcher.lock().await;
        // A fetch that finished while this task waited may have brought the key; if it did
        // not, the key set is as fresh as a fetch of this task's own would make it.
        if let Some(jwk) = self.cached_key(kid, alg)? {
            return Ok(jwk);
        }
        if self.fetches.load(Ordering::SeqCst) != seen {
            return Err(AuthError::KeysUnavailable);
        }
        let may_refetch = fetcher
            .last_fetch
            .is_none_or(|t| t.elapsed() >= self.refetch_interval);
        if !may_refetch {
            // Possibly a key the issuer just rotated in: a temporary refusal lets the client
            // retry after the interval instead of treating its token as invalid for good.
            return Err(AuthError::KeysUnavailable);
        }
        if let Err(e) = self.fetch(&mut fetcher).await {
            tracing::warn!(error = %e, "cannot refresh issuer key set");
            return Err(AuthError::KeysUnavailable);
        }
        drop(fetcher);
        self.cached_key(kid, alg)?
            .ok_or(AuthError::Invalid("unknown signing key"))
    }

    /// Verifies signature, algorithm, `iss`, `aud`, `exp`, `nbf` and returns the identity.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token or unsupported algorithm"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Invalid("algorithm not allowed"));
        }
        // Tokens of other issuers are refused before any key lookup, so they cannot trigger
        // JWKS refetches (the signature is still verified below for our own issuer).
        if !self.claims_issuer_matches(token) {
            return Err(AuthError::Invalid("wrong issuer"));
        }
        let jwk = self.key_for(header.kid.as_deref(), header.alg).await?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::Invalid("unusable signing key"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer, &format!("{}/", self.issuer)]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| refusal(&e))?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty subject"));
        }
        let name = display_name(data.claims.name, data.claims.preferred_username);
        Ok(Identity {
            user: data.claims.sub,
            expires_at: data.claims.exp,
            name,
        })
    }
}

impl TokenVerifier {
    /// Reads `iss` from the unverified payload (only to reject early; never to accept).
    fn claims_issuer_matches(&self, token: &str) -> bool {
        unverified_issuer(token).is_some_and(|iss| iss.trim_end_matches('/') == self.issuer)
    }
}

/// The display name a provider's claims give: `name`, else the other claim it names a user by
/// (`preferred_username`, `username`); one that is blank, longer than 256 bytes or holds a
/// control character is none.
pub(crate) fn display_name(name: Option<String>, other: Option<String>) -> Option<String> {
    name.or(other)
        .filter(|n| !n.trim().is_empty() && n.len() <= 256 && !n.chars().any(char::is_control))
}

/// Why jsonwebtoken refused a token, as this server says it (every verifier of the server).
pub(crate) fn refusal(e: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => AuthError::Expired,
        K::InvalidSignature => AuthError::Invalid("bad signature"),
        K::InvalidIssuer => AuthError::Invalid("wrong issuer"),
        K::InvalidAudience => AuthError::Invalid("wrong audience"),
        K::ImmatureSignature => AuthError::Invalid("not valid yet"),
        K::InvalidAlgorithm => AuthError::Invalid("algorithm does not match key"),
        K::MissingRequiredClaim(_) => AuthError::Invalid("missing claim"),
        _ => AuthError::Invalid("malformed token"),
    }
}

/// Whether `token` has the shape of a JWS (three parts, a header that parses); opaque tokens
/// do not.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && jsonwebtoken::decode_header(token).is_ok()
}

/// The `iss` of a JWT's payload, unverified: only to pick the key set to verify it with.
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

/// A key matching `kid` (or the only key usable for `alg` when the token has no `kid`).
fn find_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let usable = |k: &&Jwk| {
        let alg_ok = match k.common.key_algorithm {
            Some(ka) => ka == jsonwebtoken::jwk::KeyAlgorithm::from(alg),
            None => true,
        };
        let use_ok = !matches!(
            k.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        );
        alg_ok && use_ok
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(usable)
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => {
            let mut it = set.keys.iter().filter(usable);
            match (it.next(), it.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `ttl` to report for a connection whose token expires at `expires_at` (Unix seconds):
/// the whole seconds left, but at least 1. A token accepted in its last second (or within the
/// leeway after `exp`) still has `expires: true`, and the protocol encodes a ttl of 0 by leaving
/// the field out, which clients read as "no ttl" (centrifuge-python fails on it). 1 tells the
/// client to refresh at once.
pub fn ttl_secs(expires_at: u64) -> u32 {
    ttl_at(expires_at, unix_now())
}

fn ttl_at(expires_at: u64, now: u64) -> u32 {
    u32::try_from(expires_at.saturating_sub(now))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::ttl_at;

    #[test]
    fn ttl_is_the_seconds_left_but_never_zero() {
        assert_eq!(ttl_at(1_000, 700), 300, "seconds left");
        assert_eq!(
            ttl_at(1_000, 1_000),
            1,
            "expiring this second: refresh at once"
        );
        assert_eq!(
            ttl_at(1_000, 1_003),
            1,
            "accepted within the leeway after exp"
        );
        assert_eq!(ttl_at(u64::MAX, 0), u32::MAX, "far future saturates");
    }
}
