//! The backend role's chat tokens: short-lived connection JWTs the server mints for a user whose
//! identity-provider access token it verified, signed with the server's own Ed25519 key (kept in
//! a file beside the database, created owner-only on first start) whose public half it serves
//! as a JWKS. A Centrifugo deployment reads that JWKS (its `client.token.jwks_public_endpoint`);
//! the embedded server accepts the same tokens on `connect` and `refresh`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::{unix_now, AuthError, Identity};
use crate::error::{Error, Result};

/// What a minted token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    iss: String,
    aud: String,
    /// Centrifugo's connection info: what other clients see as the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    info: Option<Value>,
}

/// A minted token and its lifetime.
#[derive(Debug)]
pub struct Minted {
    /// The connection JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Why a token was not minted for this caller right now.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The access token expires too soon to mint anything useful.
    Expired,
    /// This user asked too often; try again after this many seconds.
    TooMany(u64),
}

/// The server's signing key, its JWKS, and the per-user mint rate.
pub struct ChatTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
    kid: String,
    issuer: String,
    audience: String,
    max_ttl: Duration,
    per_minute: u32,
    /// User → (window start, tokens minted in it).
    minted: Mutex<HashMap<String, (Instant, u32)>>,
}

impl std::fmt::Debug for ChatTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokens")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Reads the PKCS#8 PEM key at `path`, or creates one there (owner-only) if there is none.
fn load_or_create_key(path: &Path) -> Result<SigningKey> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Config(format!("{}: not an Ed25519 key: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let pem = key
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| Error::Config(format!("cannot encode the chat token key: {e}")))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(path = %path.display(), "created the chat token signing key");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

impl ChatTokens {
    /// The minting side of the server: key from `key_path` (created if missing), tokens for
    /// `issuer`/`audience` living at most `max_ttl`, at most `per_minute` per user.
    pub fn open(
        key_path: &Path,
        issuer: &str,
        audience: &str,
        max_ttl: Duration,
        per_minute: u32,
    ) -> Result<Self> {
        let key = load_or_create_key(key_path)?;
        let public = key.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        let kid = URL_SAFE_NO_PAD.encode(&public[..9]);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"});
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| Error::Config(format!("cannot encode the chat token key: {e}")))?;
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|e| Error::Config(format!("unusable chat token key: {e}")))?;
        let parsed: Jwk = serde_json::from_value(jwk.clone())
            .map_err(|e| Error::Config(format!("chat token JWK: {e}")))?;
        let decoding = DecodingKey::from_jwk(&parsed)
            .map_err(|e| Error::Config(format!("chat token JWK: {e}")))?;
        Ok(Self {
            encoding,
            decoding,
            jwk,
            kid,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            max_ttl,
            per_minute,
            minted: Mutex::new(HashMap::new()),
        })
    }

    /// The public key set (`GET /api/chat/jwks`).
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// The `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Counts one mint for `user`; `Err(seconds)` when over the rate.
    fn admit(&self, user: &str) -> std::result::Result<(), u64> {
        let mut minted = self.minted.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if minted.len() > 100_000 {
            minted.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = minted.entry(user.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            let wait = Duration::from_secs(60).saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }

    /// A token for `who` (verified), living until the access token's `exp` at most and
    /// `max_ttl` at most; `info.name` is the display name when the provider gave one.
    pub fn mint(&self, who: &Identity) -> std::result::Result<Minted, Refused> {
        let now = unix_now();
        let exp = who.expires_at.min(now + self.max_ttl.as_secs());
        if exp <= now + 1 {
            return Err(Refused::Expired);
        }
        self.admit(&who.user).map_err(Refused::TooMany)?;
        let claims = Claims {
            sub: who.user.clone(),
            exp,
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            info: who.name.as_ref().map(|n| json!({ "name": n })),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| {
            tracing::error!("cannot sign a chat token: {e}");
            Refused::Expired
        })?;
        Ok(Minted {
            token,
            expires_in: exp - now,
        })
    }

    /// Verifies a token this server minted (signature, `iss`, `aud`, `exp`).
    pub fn verify(&self, token: &str, leeway: u64) -> std::result::Result<Identity, AuthError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = leeway;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| crate::auth::refusal(&e))?;
        if data.claims.sub.is_empty() {
            return Err(AuthError::Invalid("empty subject"));
        }
        let name = data
            .claims
            .info
            .as_ref()
            .and_then(|i| i.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Identity {
            user: data.claims.sub,
            expires_at: data.claims.exp,
            name,
        })
    }
}
