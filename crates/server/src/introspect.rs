//! RFC 7662 token introspection, for identity providers that issue opaque access tokens (which
//! no chat server can verify by itself).
//!
//! A token that is not a JWT is sent to the provider's introspection endpoint (from its OIDC
//! discovery document, else its RFC 8414 metadata, else configured) with this server's own
//! client credentials (HTTP Basic, RFC 7662 §2.1). It is accepted when the answer is
//! `active: true` with a `sub` and an `exp`, from this issuer (`iss` when present), an access
//! token (`token_type` Bearer, DPoP or access_token, else Keycloak's `typ` Bearer: RFC 7662
//! makes `token_type` optional, but without it a refresh token's answer looks exactly like an
//! access token's, as oidc-provider's does), and issued to an allowed client (`client_id`,
//! when `introspection_allowed_clients` names any). The display name is `name`, else
//! `username`. At most [`MAX_CONCURRENT`] introspections run at once, so a flood of made-up
//! tokens cannot turn into a flood on the provider.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

use crate::auth::{AuthError, Identity};
use crate::error::{Error, Result};
use confab_types::SecretString;

/// Introspection requests in flight at most; more wait.
pub const MAX_CONCURRENT: usize = 16;

/// The settings of an [`Introspector`].
pub struct IntrospectionSettings {
    /// The provider's issuer (discovery is under it; `iss` must match).
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: SecretString,
    /// The endpoint, when it is not to be discovered.
    pub endpoint: Option<Url>,
    /// Clients whose tokens are accepted (`client_id` of the token); empty: any.
    pub allowed_clients: Vec<String>,
}

/// Verifies opaque access tokens at the provider.
pub struct Introspector {
    settings: IntrospectionSettings,
    http: reqwest::Client,
    endpoint: OnceCell<Url>,
    permits: Semaphore,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    #[serde(default)]
    introspection_endpoint: Option<Url>,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Introspector {
    /// An introspector; the endpoint is discovered on first use.
    pub fn new(settings: IntrospectionSettings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Discovery(e.to_string()))?;
        Ok(Self {
            settings: IntrospectionSettings {
                issuer: settings.issuer.trim_end_matches('/').to_owned(),
                ..settings
            },
            http,
            endpoint: OnceCell::new(),
            permits: Semaphore::new(MAX_CONCURRENT),
        })
    }

    async fn discover(&self) -> Result<Url> {
        if let Some(url) = &self.settings.endpoint {
            return Ok(url.clone());
        }
        let issuer = &self.settings.issuer;
        let mut last = String::new();
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let url = format!("{issuer}{path}");
            let doc = match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<Metadata>()
                    .await
                    .map_err(|e| Error::Discovery(format!("GET {url}: {}", e.without_url())))?,
                Ok(r) => {
                    last = format!("GET {url}: HTTP {}", r.status());
                    continue;
                }
                Err(e) => {
                    last = format!("GET {url}: {}", e.without_url());
                    continue;
                }
            };
            if doc.issuer.trim_end_matches('/') != issuer {
                return Err(Error::Discovery(format!(
                    "{url} names issuer {:?}, expected {issuer:?}",
                    doc.issuer
                )));
            }
            if let Some(endpoint) = doc.introspection_endpoint {
                return Ok(endpoint);
            }
            last = format!("{url} names no introspection_endpoint");
        }
        Err(Error::Discovery(format!(
            "no introspection endpoint found for {issuer}: {last}"
        )))
    }

    /// Asks the provider about `token`.
    pub async fn verify(&self, token: &str) -> std::result::Result<Identity, AuthError> {
        let endpoint = self
            .endpoint
            .get_or_try_init(|| self.discover())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot find the introspection endpoint");
                AuthError::KeysUnavailable
            })?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AuthError::KeysUnavailable)?;
        let resp = self
            .http
            .post(endpoint.clone())
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose_secret()),
            )
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e.without_url(), "introspection request failed");
                AuthError::KeysUnavailable
            })?;
        if !resp.status().is_success() {
            // 401 here means this server's own credentials were refused: a configuration
            // problem, not the user's token.
            tracing::error!(status = %resp.status(), "the provider refused the introspection request");
            return Err(AuthError::KeysUnavailable);
        }
        let answer: Answer = resp.json().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "introspection answer is not RFC 7662 JSON");
            AuthError::KeysUnavailable
        })?;
        self.judge(answer)
    }

    fn judge(&self, a: Answer) -> std::result::Result<Identity, AuthError> {
        if !a.active {
            return Err(AuthError::Invalid(
                "the provider says the token is not active (expired, revoked or unknown)",
            ));
        }
        if a.iss
            .as_deref()
            .is_some_and(|iss| iss.trim_end_matches('/') != self.settings.issuer)
        {
            return Err(AuthError::Invalid("wrong issuer"));
        }
        let access = match (a.token_type.as_deref(), a.typ.as_deref()) {
            (Some(t), _) => ["bearer", "dpop", "access_token"]
                .iter()
                .any(|k| t.eq_ignore_ascii_case(k)),
            (None, Some(typ)) => typ.eq_ignore_ascii_case("bearer"),
            (None, None) => false,
        };
        if !access {
            return Err(AuthError::Invalid("not an access token"));
        }
        let allowed = &self.settings.allowed_clients;
        if !allowed.is_empty() && !a.client_id.as_ref().is_some_and(|c| allowed.contains(c)) {
            return Err(AuthError::Invalid("token issued to another client"));
        }
        let Some(sub) = a.sub.filter(|s| !s.is_empty()) else {
            return Err(AuthError::Invalid("missing claim"));
        };
        let Some(exp) = a.exp else {
            return Err(AuthError::Invalid("missing claim"));
        };
        if exp <= crate::auth::unix_now() {
            return Err(AuthError::Expired);
        }
        Ok(Identity {
            user: sub,
            expires_at: exp,
            name: crate::auth::display_name(a.name, a.username),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn introspector(allowed: &[&str]) -> Introspector {
        Introspector::new(IntrospectionSettings {
            issuer: "https://idp.example/".into(),
            client_id: "backend".into(),
            client_secret: SecretString::new("s".into()),
            endpoint: None,
            allowed_clients: allowed.iter().map(|s| (*s).to_owned()).collect(),
        })
        .expect("introspector")
    }

    fn answer(v: serde_json::Value) -> Answer {
        serde_json::from_value(v).expect("answer")
    }

    #[test]
    fn only_active_access_tokens_of_this_issuer_and_allowed_clients_pass() {
        let i = introspector(&["confab-desktop"]);
        let exp = crate::auth::unix_now() + 60;
        let ok = serde_json::json!({"active": true, "sub": "u1", "exp": exp, "token_type": "Bearer",
            "iss": "https://idp.example", "client_id": "confab-desktop", "username": "Ann"});
        let id = i.judge(answer(ok.clone())).expect("accepted");
        assert_eq!(
            (id.user.as_str(), id.expires_at, id.name.as_deref()),
            ("u1", exp, Some("Ann"))
        );
        let with = |k: &str, v: serde_json::Value| {
            let mut a = ok.clone();
            a[k] = v;
            i.judge(answer(a))
        };
        assert!(matches!(
            with("active", false.into()),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            with("iss", "https://other.example".into()),
            Err(AuthError::Invalid("wrong issuer"))
        ));
        assert!(matches!(
            with("token_type", "refresh_token".into()),
            Err(AuthError::Invalid(_))
        ));
        let mut untyped = ok.clone();
        untyped.as_object_mut().map(|o| o.remove("token_type"));
        assert!(
            matches!(i.judge(answer(untyped.clone())), Err(AuthError::Invalid(_))),
            "no token_type: as a refresh token's answer looks"
        );
        untyped["typ"] = "Bearer".into();
        assert!(i.judge(answer(untyped)).is_ok(), "Keycloak's typ");
        assert!(matches!(
            with("client_id", "someone-else".into()),
            Err(AuthError::Invalid("token issued to another client"))
        ));
        assert!(matches!(with("sub", "".into()), Err(AuthError::Invalid(_))));
        assert!(matches!(with("exp", 5.into()), Err(AuthError::Expired)));
        let mut no_exp = ok.clone();
        no_exp.as_object_mut().map(|o| o.remove("exp"));
        assert!(matches!(
            i.judge(answer(no_exp)),
            Err(AuthError::Invalid(_))
        ));
        // Without an allow-list any client's token passes.
        let any = introspector(&[]);
        let mut other = ok;
        other["client_id"] = "someone-else".into();
        assert!(any.judge(answer(other)).is_ok());
    }
}
