//! [`AuthClient`]: discovery, the pending login, code exchange, refresh, revocation, logout URL.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use confab_types::constant_time_eq;
use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdToken,
    CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AsyncHttpClient, AuthorizationCode, ClaimsVerificationError, ClientId,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, JsonWebKeySetUrl,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse, TokenUrl,
};
use serde::Serialize;
use url::{Host, Url};

use crate::callback::{parse_callback, CallbackParams, RedirectKind, RedirectTarget};
use crate::error::{sanitize_provider_text, Error, IdTokenProblem, Result};
use crate::provider::{rfc8414_metadata_url, DiscoveredMetadata, ProviderInfo, Rfc8414Metadata};
use crate::SecretString;

/// Default time a user has to finish signing in in the browser.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default timeout of each HTTP request to the provider.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Assumed access-token lifetime when the provider omits `expires_in` (deliberately short).
pub const ASSUMED_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Longest access-token lifetime believed: a larger `expires_in` (up to 2^64 - 1 s, which would
/// overflow the clock) is taken as this.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Least time between two JWKS re-fetches triggered by an unknown signing key.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How many finished logins are remembered to recognise replayed callbacks.
const FINISHED_MEMORY: usize = 8;
/// Authorization parameters this crate sets itself; `extra_auth_params` may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "resource",
];

/// What the app configures; everything else comes from discovery.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The issuer, e.g. `https://id.example.com` (plain `http` only for loopback hosts).
    /// A lone trailing `/` is ignored, because `url::Url` always adds one to an empty path.
    pub issuer: Url,
    /// The public client id, e.g. `confab-desktop`.
    pub client_id: String,
    /// Scopes to request; `openid` is always sent. `offline_access` also sends `prompt=consent`
    /// (providers such as `oidc-provider` only grant a refresh token with explicit consent).
    pub scopes: Vec<String>,
    /// RFC 8707 `resource` (the chat service's audience) for JWT access tokens.
    pub resource: Option<String>,
    /// How long a login may stay pending (default 10 minutes).
    pub login_timeout: Duration,
    /// Extra authorization parameters, e.g. `("login_hint", "alice")`. Parameters this crate
    /// sets itself (`state`, `nonce`, `code_challenge`, `redirect_uri`, ...) are refused.
    pub extra_auth_params: Vec<(String, String)>,
    /// Timeout of each HTTP request (discovery, JWKS, token, revocation); default 30 s.
    pub http_timeout: Duration,
}

impl AuthConfig {
    /// Defaults: scopes `openid profile email offline_access`, 10-minute login, 30 s HTTP timeout.
    pub fn new(issuer: Url, client_id: impl Into<String>) -> Self {
        Self {
            issuer,
            client_id: client_id.into(),
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(String::from)
                .to_vec(),
            resource: None,
            login_timeout: DEFAULT_LOGIN_TIMEOUT,
            extra_auth_params: Vec::new(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// Source of monotonic "now" ([`Instant`]) for login deadlines; injectable so tests need no
/// sleeps. Monotonic, not wall-clock time: a deadline measures how long the login has been
/// pending, which a change of the system clock must not shorten or extend. (Token expiry is
/// wall-clock time: confab-session's `WallClock`.)
pub trait MonotonicClock: Send + Sync + std::fmt::Debug {
    /// The current monotonic time.
    fn now(&self) -> Instant;
}

/// The real monotonic clock ([`Instant::now`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMonotonicClock;
impl MonotonicClock for SystemMonotonicClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A monotonic clock that only moves when told to (for tests).
#[derive(Debug)]
pub struct ManualMonotonicClock {
    base: Instant,
    offset: Mutex<Duration>,
}
impl ManualMonotonicClock {
    /// Starts at the real "now".
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }
    /// Move the clock forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.offset) += by;
    }
}
impl Default for ManualMonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}
impl MonotonicClock for ManualMonotonicClock {
    fn now(&self) -> Instant {
        self.base + *lock(&self.offset)
    }
}

/// A started login, to be opened in the system browser.
pub struct LoginStart {
    /// The authorization URL. It carries the one-time `state`: open it, don't log it.
    pub authorize_url: Url,
    /// Non-secret identifier of this login (for UI and logs).
    pub login_id: u64,
    /// After this instant the callback is refused with [`Error::LoginExpired`].
    pub deadline: Instant,
}

impl std::fmt::Debug for LoginStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginStart")
            .field("authorize_url", &"[redacted]")
            .field("login_id", &self.login_id)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Non-secret view of the pending login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingInfo {
    /// See [`LoginStart::login_id`].
    pub login_id: u64,
    /// See [`LoginStart::deadline`].
    pub deadline: Instant,
    /// Which redirect the login waits for.
    pub redirect: RedirectKind,
}

/// Who signed in, from the validated ID token. The only sign-in data the UI may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `name`, if released.
    pub name: Option<String>,
    /// `email`, if released.
    pub email: Option<String>,
}

/// Tokens from the token endpoint. Never serialized; `Debug` redacts every secret.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token (a JWT for the chat service when `resource` is configured).
    pub access_token: SecretString,
    /// The refresh token. After [`AuthClient::refresh`], `None` means the provider did not
    /// rotate it: keep using the old one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires (from `expires_in`, or [`ASSUMED_TOKEN_LIFETIME`]).
    pub expires_at: SystemTime,
    /// The raw, validated ID token (for `id_token_hint` at logout). Always present after a
    /// login; after a refresh only if the provider sent a new one (then it was validated too).
    pub id_token: Option<SecretString>,
    /// Granted scopes (the requested ones if the provider did not say).
    pub scope: Vec<String>,
}

/// A completed login.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who signed in.
    pub user: UserInfo,
    /// The tokens (keep them out of the UI).
    pub tokens: TokenSet,
}

type OidcClient = CoreClient<
    EndpointSet,      // authorization
    EndpointNotSet,   // device authorization
    EndpointNotSet,   // introspection
    EndpointNotSet,   // revocation (done by hand: oauth2 refuses http even on loopback)
    EndpointSet,      // token
    EndpointMaybeSet, // userinfo
>;

struct PendingLogin {
    id: u64,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    redirect: RedirectTarget,
    deadline: Instant,
}

struct JwksCache {
    keys: CoreJsonWebKeySet,
    /// When the keys were last re-fetched because of an unknown key (not set at discovery).
    fetched_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Used,
    Cancelled,
    Superseded,
}

struct Finished {
    state: CsrfToken,
    redirect: RedirectTarget,
    outcome: Outcome,
}

#[derive(Default)]
struct LoginSlot {
    next_id: u64,
    pending: Option<PendingLogin>,
    finished: VecDeque<Finished>,
}

impl LoginSlot {
    fn remember(&mut self, login: &PendingLogin, outcome: Outcome) {
        if self.finished.len() >= FINISHED_MEMORY {
            self.finished.pop_front();
        }
        self.finished.push_back(Finished {
            state: login.state.clone(),
            redirect: login.redirect.clone(),
            outcome,
        });
    }

    fn finished_outcome(&self, state: &SecretString) -> Option<Outcome> {
        self.finished
            .iter()
            .rev()
            .find(|f| constant_time_eq(f.state.secret(), state.expose_secret()))
            .map(|f| f.outcome)
    }
}

/// The sign-in client: discovered provider, configured `openidconnect` client, an HTTP client
/// that never follows redirects, and at most one pending login.
pub struct AuthClient {
    config: AuthConfig,
    info: ProviderInfo,
    /// The issuer string exactly as discovered (RFC 9207 compares strings, not URLs).
    issuer: String,
    oidc: OidcClient,
    /// The provider's keys; re-fetched when a token is signed by a key not in this set.
    jwks: Mutex<JwksCache>,
    jwks_url: JsonWebKeySetUrl,
    id_token_algs: Vec<CoreJwsSigningAlgorithm>,
    http: reqwest::Client,
    clock: Arc<dyn MonotonicClock>,
    slot: Mutex<LoginSlot>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("issuer", &self.info.issuer.as_str())
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the slot half-updated in a way that matters
    // more than refusing every later login would, so keep going with the inner value.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `https`, or plain `http` to a loopback host only.
fn is_acceptable_endpoint(u: &Url) -> bool {
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

fn issuer_string(u: &Url) -> String {
    let s = u.as_str();
    if u.path() == "/" && u.query().is_none() && u.fragment().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

fn network<E: std::error::Error + Send + Sync + 'static>(e: E) -> Error {
    Error::Network(Box::new(e))
}

impl AuthClient {
    /// Fetch the discovery document and JWKS, check them, and build the client.
    #[tracing::instrument(skip_all, fields(issuer = %config.issuer))]
    pub async fn discover(config: AuthConfig) -> Result<Self> {
        if !is_acceptable_endpoint(&config.issuer) {
            return Err(Error::Config(
                "the issuer must use https (plain http only on a loopback address)",
            ));
        }
        if config.client_id.is_empty() {
            return Err(Error::Config("the client id is empty"));
        }
        for (name, _) in &config.extra_auth_params {
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(Error::Config(
                    "an extra authorization parameter overrides one this client sets itself",
                ));
            }
        }
        let http = reqwest::Client::builder()
            // SSRF and open-redirect protection: never follow a redirect from the provider.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("confab-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(network)?;
        let issuer = IssuerUrl::new(issuer_string(&config.issuer))
            .map_err(|_| Error::Config("the issuer is not a URL"))?;
        let metadata = DiscoveredMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Request(inner) => network(inner),
                other => Error::Discovery(other.to_string()),
            })?;
        let issuer = metadata.issuer().to_string();
        let fallback = if metadata.additional_metadata().revocation_endpoint.is_none() {
            rfc8414_endpoints(&http, metadata.issuer().url(), &issuer).await
        } else {
            None
        };
        let info = provider_info(&metadata, fallback)?;
        let jwks = JwksCache {
            keys: metadata.jwks().clone(),
            fetched_at: None,
        };
        let jwks_url = metadata.jwks_uri().clone();
        let id_token_algs = metadata.id_token_signing_alg_values_supported().clone();
        let token_url = TokenUrl::from_url(info.token_endpoint.clone());
        let oidc = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            None,
        )
        .set_token_uri(token_url);
        tracing::info!(
            iss_parameter = info.iss_parameter_supported,
            revocation = info.revocation_endpoint.is_some(),
            end_session = info.end_session_endpoint.is_some(),
            "discovered identity provider"
        );
        if info.revocation_endpoint.is_none() {
            tracing::warn!(
                "the identity provider offers no revocation endpoint (neither in OIDC discovery \
                 nor in RFC 8414 metadata): refresh tokens cannot be revoked at sign-out"
            );
        }
        Ok(Self {
            config,
            info,
            issuer,
            oidc,
            jwks: Mutex::new(jwks),
            jwks_url,
            id_token_algs,
            http,
            clock: Arc::new(SystemMonotonicClock),
            slot: Mutex::new(LoginSlot::default()),
        })
    }

    /// Replace the clock used for login deadlines (tests).
    pub fn with_clock(mut self, clock: Arc<dyn MonotonicClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The discovered provider (endpoints, capabilities).
    pub fn metadata(&self) -> &ProviderInfo {
        &self.info
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Start a login: fresh PKCE S256 verifier, one-time `state`, `nonce`, and a deadline.
    /// Replaces (cancels) any previous pending login.
    #[tracing::instrument(skip_all, fields(redirect = ?redirect.kind()))]
    pub fn begin(&self, redirect: RedirectTarget) -> Result<LoginStart> {
        redirect.validate()?;
        let redirect_url = RedirectUrl::new(redirect.url().to_string())
            .map_err(|_| Error::Config("the redirect URI is not a URL"))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .oidc
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect_url));
        for scope in self.config.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        if self.config.scopes.iter().any(|s| s == "offline_access") {
            req = req.add_prompt(CoreAuthPrompt::Consent);
        }
        if let Some(resource) = self.config.resource.as_ref().filter(|r| !r.is_empty()) {
            req = req.add_extra_param("resource", resource.clone());
        }
        for (k, v) in &self.config.extra_auth_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (authorize_url, state, nonce) = req.url();

        let deadline = self.clock.now() + self.config.login_timeout;
        let mut slot = lock(&self.slot);
        slot.next_id += 1;
        let id = slot.next_id;
        if let Some(previous) = slot.pending.take() {
            tracing::info!(
                login_id = previous.id,
                "pending login replaced by a new one"
            );
            slot.remember(&previous, Outcome::Superseded);
        }
        slot.pending = Some(PendingLogin {
            id,
            state,
            nonce,
            verifier,
            redirect,
            deadline,
        });
        tracing::info!(login_id = id, "login started");
        Ok(LoginStart {
            authorize_url,
            login_id: id,
            deadline,
        })
    }

    /// Cancel the pending login. Returns true if there was one.
    pub fn cancel(&self) -> bool {
        let mut slot = lock(&self.slot);
        match slot.pending.take() {
            Some(p) => {
                slot.remember(&p, Outcome::Cancelled);
                tracing::info!(login_id = p.id, "login cancelled");
                true
            }
            None => false,
        }
    }

    /// The pending login, if any (non-secret).
    pub fn pending(&self) -> Option<PendingInfo> {
        lock(&self.slot).pending.as_ref().map(|p| PendingInfo {
            login_id: p.id,
            deadline: p.deadline,
            redirect: p.redirect.kind(),
        })
    }

    /// Whether `callback_url` carries the `state` of the sign-in in progress (compared in
    /// constant time; nothing else is checked here, [`Self::complete`] does the rest). For the
    /// loopback listener, so that only that callback ends its wait.
    pub fn is_for_pending(&self, callback_url: &str) -> bool {
        let Ok(url) = Url::parse(callback_url) else {
            return false;
        };
        let Some(state) = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
        else {
            return false;
        };
        lock(&self.slot)
            .pending
            .as_ref()
            .is_some_and(|p| constant_time_eq(p.state.secret(), &state))
    }

    /// Validate a callback URL and, if it is good, exchange the code and validate the ID token.
    ///
    /// Refused **without any token request**: a malformed callback or one for another
    /// redirect URI, no pending login, an unknown `state` (the pending login stays), a
    /// callback of an already finished login (replay / second callback), an expired login,
    /// a wrong or (when RFC 9207 is advertised) missing `iss`, `error=...`, no `code`.
    /// After the exchange the ID token must verify (JWKS signature, `iss`, `aud`, `exp`,
    /// `nonce`, `at_hash` when present). A callback whose `state` matches consumes the pending
    /// login whether it then succeeds or fails.
    #[tracing::instrument(skip_all)]
    pub async fn complete(&self, callback_url: &str) -> Result<SignedIn> {
        let (login, params) = self.take_matching_login(callback_url)?;
        let result = self.finish(&login, params).await;
        match &result {
            Ok(_) => tracing::info!(login_id = login.id, "login completed"),
            Err(e) => tracing::warn!(login_id = login.id, code = %e.code(), "login failed"),
        }
        result
    }

    fn take_matching_login(&self, callback_url: &str) -> Result<(PendingLogin, CallbackParams)> {
        let mut slot = lock(&self.slot);
        let Some(pending) = slot.pending.as_ref() else {
            // Nothing pending: tell a replay of a finished login apart from a stray callback.
            for f in slot.finished.iter().rev() {
                if let Ok(p) = parse_callback(callback_url, &f.redirect) {
                    if let Some(outcome) = slot.finished_outcome(&p.state) {
                        return Err(outcome_error(outcome));
                    }
                }
            }
            return Err(Error::NoPendingLogin);
        };
        let params = parse_callback(callback_url, &pending.redirect)?;
        if !constant_time_eq(pending.state.secret(), params.state.expose_secret()) {
            return Err(match slot.finished_outcome(&params.state) {
                Some(outcome) => outcome_error(outcome),
                None => Error::StateMismatch,
            });
        }
        let login = slot.pending.take().ok_or(
            Error::NoPendingLogin, /* unreachable: checked above under the same lock */
        )?;
        slot.remember(&login, Outcome::Used);
        Ok((login, params))
    }

    async fn finish(&self, login: &PendingLogin, params: CallbackParams) -> Result<SignedIn> {
        if self.clock.now() >= login.deadline {
            return Err(Error::LoginExpired);
        }
        // RFC 9207: compare `iss` by simple string comparison; required when advertised.
        match (&params.iss, self.info.iss_parameter_supported) {
            (Some(iss), _) if *iss != self.issuer => return Err(Error::IssuerMismatch),
            (None, true) => {
                return Err(match params.error {
                    // An error answer without `iss`: refused all the same (anyone can forge
                    // one), but it is most likely the provider's own, so say that and log its
                    // code (sanitized by the parser; the description is never logged).
                    Some(err) => {
                        tracing::warn!(
                            login_id = login.id,
                            provider_error = %err.error,
                            "refused an error response without iss from a provider that \
                             promises iss (RFC 9207)"
                        );
                        Error::UnverifiedErrorResponse { error: err.error }
                    }
                    None => Error::IssuerMismatch,
                });
            }
            _ => {}
        }
        if let Some(err) = params.error {
            return Err(if err.error == "access_denied" {
                Error::AccessDenied {
                    description: err.description,
                }
            } else if err.error == "invalid_target" {
                Error::ResourceRefused {
                    description: err.description,
                }
            } else {
                Error::ProviderError {
                    error: err.error,
                    description: err.description,
                }
            });
        }
        let code = params.code.ok_or(Error::MissingCode)?;
        let redirect_url = RedirectUrl::new(login.redirect.url().to_string())
            .map_err(|_| Error::Config("the redirect URI is not a URL"))?;
        let verifier = PkceCodeVerifier::new(login.verifier.secret().clone());
        let response = self
            .oidc
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
            .set_pkce_verifier(verifier)
            .set_redirect_uri(Cow::Owned(redirect_url))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let (user, id_token) = self
            .validate_id_token(&response, Some(&login.nonce))
            .await?;
        let user = user.ok_or(Error::IdTokenInvalid(IdTokenProblem::Missing))?;
        Ok(SignedIn {
            user,
            tokens: self.token_set(&response, id_token),
        })
    }

    /// Verify the ID token in a token response (when `nonce` is given it is required and
    /// must match). Returns the user and the raw token. If the signature does not verify,
    /// the JWKS is fetched again once (the provider may have rotated its keys) and the check
    /// repeated with the fresh keys.
    async fn validate_id_token(
        &self,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
    ) -> Result<(Option<UserInfo>, Option<SecretString>)> {
        let Some(id_token) = response.id_token() else {
            return match nonce {
                Some(_) => Err(Error::IdTokenInvalid(IdTokenProblem::Missing)),
                None => Ok((None, None)),
            };
        };
        let keys = lock(&self.jwks).keys.clone();
        match self.verify_id_token(id_token, response, nonce, keys) {
            Err(Error::IdTokenInvalid(IdTokenProblem::Signature)) => {}
            other => return other.map(|(u, t)| (Some(u), Some(t))),
        }
        let Some(fresh) = self.refetch_jwks().await else {
            return Err(Error::IdTokenInvalid(IdTokenProblem::Signature));
        };
        self.verify_id_token(id_token, response, nonce, fresh)
            .map(|(u, t)| (Some(u), Some(t)))
    }

    /// Fetch the JWKS again unless that happened very recently. Returns the new keys if they
    /// differ from the cached ones.
    async fn refetch_jwks(&self) -> Option<CoreJsonWebKeySet> {
        {
            let mut cache = lock(&self.jwks);
            let now = self.clock.now();
            if cache
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < JWKS_REFETCH_INTERVAL)
            {
                return None;
            }
            cache.fetched_at = Some(now);
        }
        let fresh = match CoreJsonWebKeySet::fetch_async(&self.jwks_url, &self.http).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(error = %e, "re-fetching the provider's JWKS failed");
                return None;
            }
        };
        let mut cache = lock(&self.jwks);
        let old = serde_json::to_string(&cache.keys).ok();
        if serde_json::to_string(&fresh).ok() == old {
            return None;
        }
        tracing::info!("provider keys changed; JWKS updated");
        cache.keys = fresh.clone();
        Some(fresh)
    }

    fn verify_id_token(
        &self,
        id_token: &CoreIdToken,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
        keys: CoreJsonWebKeySet,
    ) -> Result<(UserInfo, SecretString)> {
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.config.client_id.clone()),
            IssuerUrl::new(self.issuer.clone())
                .map_err(|_| Error::IdTokenInvalid(IdTokenProblem::Issuer))?,
            keys,
        )
        .set_allowed_algs(self.id_token_algs.clone());
        let claims = match nonce {
            Some(n) => id_token.claims(&verifier, n),
            // Refresh: no nonce was sent. Providers may repeat the original one (oidc-provider
            // does), and the token comes straight from our own token request, so any is fine.
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| Error::IdTokenInvalid(claims_problem(&e)))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|_| Error::IdTokenInvalid(IdTokenProblem::Signature))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|_| Error::IdTokenInvalid(IdTokenProblem::Signature))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|_| Error::IdTokenInvalid(IdTokenProblem::AccessTokenHash))?;
            if !constant_time_eq(&actual, expected) {
                return Err(Error::IdTokenInvalid(IdTokenProblem::AccessTokenHash));
            }
        }
        let user = UserInfo {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: claims.email().map(|e| e.to_string()),
        };
        Ok((user, SecretString::new(id_token.to_string())))
    }

    fn token_set(&self, r: &CoreTokenResponse, id_token: Option<SecretString>) -> TokenSet {
        let expires_at = expiry(SystemTime::now(), r.expires_in());
        TokenSet {
            access_token: SecretString::new(r.access_token().secret().clone()),
            refresh_token: r
                .refresh_token()
                .map(|t| SecretString::new(t.secret().clone())),
            expires_at,
            id_token,
            scope: match r.scopes() {
                Some(s) => s.iter().map(|s| s.to_string()).collect(),
                None => self.config.scopes.clone(),
            },
        }
    }

    /// Use a refresh token. A new ID token in the response is validated (without nonce).
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet> {
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        // The token client hides the response of a failed request; this wrapper notes the
        // status and Retry-After of a 429/503 so the caller can honour them.
        // (Owned captures: the future must be `Send` for any borrow, as Tauri commands need.)
        let throttle: Arc<Mutex<Option<Throttle>>> = Arc::default();
        let (seen, client) = (Arc::clone(&throttle), self.http.clone());
        let http = move |request: openidconnect::HttpRequest| {
            let (seen, client) = (Arc::clone(&seen), client.clone());
            async move {
                let response = client.call(request).await?;
                let status = response.status().as_u16();
                if status == 429 || status == 503 {
                    let wait = throttle_of(status, response.headers());
                    if let Ok(mut t) = seen.lock() {
                        *t = Some((status, wait));
                    }
                }
                Ok::<_, openidconnect::HttpClientError<reqwest::Error>>(response)
            }
        };
        let response = self
            .oidc
            .exchange_refresh_token(&token)
            .request_async(&http)
            .await
            .map_err(|e| {
                let observed = throttle.lock().ok().and_then(|t| *t);
                with_throttle(token_error(e), observed)
            })?;
        let (_, id_token) = self.validate_id_token(&response, None).await?;
        tracing::info!(
            rotated = response.refresh_token().is_some(),
            "tokens refreshed"
        );
        Ok(self.token_set(&response, id_token))
    }

    /// Revoke a refresh token (RFC 7009, `token_type_hint=refresh_token`). Per RFC 7009 the
    /// provider answers 200 even for unknown tokens, so success means "not usable any more".
    #[tracing::instrument(skip_all)]
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<()> {
        let Some(endpoint) = self.info.revocation_endpoint.clone() else {
            tracing::warn!(
                "the refresh token was not revoked: the identity provider offers no revocation \
                 endpoint (it stays valid there until it expires)"
            );
            return Err(Error::NotSupported(
                "token revocation (it offers no revocation endpoint)",
            ));
        };
        let form = [
            ("token", refresh_token.expose_secret()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.config.client_id.as_str()),
        ];
        let response = self
            .http
            .post(endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| network(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            tracing::info!("refresh token revoked");
            return Ok(());
        }
        let retry_after = throttle_of(status.as_u16(), response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let parsed: Option<OAuthErrorBody> = serde_json::from_slice(&body).ok();
        Err(Error::TokenEndpoint {
            status: Some(status.as_u16()),
            retry_after,
            error: parsed
                .as_ref()
                .map(|p| sanitize_provider_text(&p.error))
                .unwrap_or_else(|| "revocation_failed".to_owned()),
            description: parsed
                .as_ref()
                .and_then(|p| p.error_description.as_deref())
                .map(sanitize_provider_text),
        })
    }

    /// RP-initiated logout URL (to open in the system browser), or `None` if the provider
    /// offers no end-session endpoint or the hint is not a well-formed ID token.
    pub fn end_session_url(
        &self,
        id_token_hint: &SecretString,
        post_logout: Option<Url>,
    ) -> Option<Url> {
        let endpoint = self.info.end_session_endpoint.clone()?;
        let endpoint = openidconnect::EndSessionUrl::from_url(endpoint);
        let id_token: CoreIdToken = id_token_hint.expose_secret().parse().ok()?;
        let mut req = LogoutRequest::from(endpoint)
            .set_id_token_hint(&id_token)
            .set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Some(p) = post_logout {
            req = req.set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(p));
        }
        Some(req.http_get_url())
    }
}

/// Status and `Retry-After` of a 429/503 token response, noted by the refresh HTTP wrapper.
type Throttle = (u16, Option<Duration>);

/// Longest `Retry-After` honoured; a provider asking for more gets this (the user can still
/// sign in again, and the session keeps retrying).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The `Retry-After` of a 429/503 response (confab-types' one reading: delta-seconds, an
/// HTTP-date or an epoch timestamp), capped at [`MAX_RETRY_AFTER`]; `None` for other statuses
/// or a missing/unreadable header.
fn throttle_of(status: u16, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if status != 429 && status != 503 {
        return None;
    }
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    confab_types::retry_after::parse(value, SystemTime::now()).map(|w| w.min(MAX_RETRY_AFTER))
}

/// Adds what the HTTP wrapper observed (status, Retry-After) to a token-endpoint error.
fn with_throttle(mut err: Error, observed: Option<Throttle>) -> Error {
    if let (
        Error::TokenEndpoint {
            status,
            retry_after,
            ..
        },
        Some((seen, wait)),
    ) = (&mut err, observed)
    {
        status.get_or_insert(seen);
        *retry_after = wait;
    }
    err
}

/// An RFC 6749 §5.2 error body.
#[derive(serde::Deserialize)]
struct OAuthErrorBody {
    error: String,
    error_description: Option<String>,
}

fn outcome_error(outcome: Outcome) -> Error {
    match outcome {
        Outcome::Used => Error::CallbackReplayed,
        Outcome::Cancelled => Error::Cancelled,
        Outcome::Superseded => Error::StateMismatch,
    }
}

/// Revocation and introspection endpoints from RFC 8414 metadata, for a provider whose OIDC
/// discovery lists no revocation endpoint. Best effort: a missing or unreadable document, or one
/// for another issuer (ignored, with a log line), gives `None`.
async fn rfc8414_endpoints(
    http: &reqwest::Client,
    issuer_url: &Url,
    issuer: &str,
) -> Option<Rfc8414Metadata> {
    let url = rfc8414_metadata_url(issuer_url);
    let fetched = async {
        let response = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?
            .error_for_status()?;
        response.json::<Rfc8414Metadata>().await
    }
    .await;
    let metadata = match fetched {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(
                error = %e.without_url(),
                "no usable RFC 8414 metadata (looked for a revocation endpoint there)"
            );
            return None;
        }
    };
    if metadata.issuer != issuer {
        tracing::warn!(
            metadata_issuer = %sanitize_provider_text(&metadata.issuer),
            issuer,
            "ignored RFC 8414 metadata that names another issuer"
        );
        return None;
    }
    if metadata.revocation_endpoint.is_some() {
        tracing::info!("revocation endpoint taken from RFC 8414 metadata");
    }
    Some(metadata)
}

fn provider_info(m: &DiscoveredMetadata, rfc8414: Option<Rfc8414Metadata>) -> Result<ProviderInfo> {
    let token_endpoint = m
        .token_endpoint()
        .map(|t| t.url().clone())
        .ok_or_else(|| Error::Discovery("the provider has no token endpoint".into()))?;
    let extra = m.additional_metadata();
    let info = ProviderInfo {
        issuer: m.issuer().url().clone(),
        authorization_endpoint: m.authorization_endpoint().url().clone(),
        token_endpoint,
        jwks_uri: m.jwks_uri().url().clone(),
        revocation_endpoint: extra
            .revocation_endpoint
            .as_ref()
            .map(|u| u.url().clone())
            .or_else(|| rfc8414.as_ref()?.revocation_endpoint.clone()),
        introspection_endpoint: extra
            .introspection_endpoint
            .clone()
            .or_else(|| rfc8414.as_ref()?.introspection_endpoint.clone()),
        end_session_endpoint: extra.end_session_endpoint.as_ref().map(|u| u.url().clone()),
        iss_parameter_supported: extra.authorization_response_iss_parameter_supported,
        s256_advertised: extra
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|ms| ms.iter().any(|c| c == "S256")),
    };
    if extra.code_challenge_methods_supported.is_some() && !info.s256_advertised {
        return Err(Error::Discovery(
            "the provider does not support PKCE with S256".into(),
        ));
    }
    let endpoints = [
        Some(&info.authorization_endpoint),
        Some(&info.token_endpoint),
        Some(&info.jwks_uri),
        info.revocation_endpoint.as_ref(),
        info.introspection_endpoint.as_ref(),
        info.end_session_endpoint.as_ref(),
    ];
    if endpoints
        .into_iter()
        .flatten()
        .any(|u| !is_acceptable_endpoint(u))
    {
        return Err(Error::Discovery(
            "the provider advertises an endpoint without https".into(),
        ));
    }
    Ok(info)
}

fn claims_problem(e: &ClaimsVerificationError) -> IdTokenProblem {
    match e {
        ClaimsVerificationError::Expired(_) => IdTokenProblem::Expired,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenProblem::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenProblem::Issuer,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenProblem::Nonce,
        ClaimsVerificationError::SignatureVerification(_) => IdTokenProblem::Signature,
        ClaimsVerificationError::Unsupported(_) => IdTokenProblem::Malformed,
        _ => IdTokenProblem::Other,
    }
}

/// Map a token-endpoint failure. A body that failed to parse is dropped unread: it may be a
/// success response carrying tokens.
fn token_error<RE>(e: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>) -> Error
where
    RE: std::error::Error + Send + Sync + 'static,
{
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.error_description().map(|d| sanitize_provider_text(d));
            match r.error() {
                CoreErrorResponseType::InvalidGrant => Error::InvalidGrant { description },
                CoreErrorResponseType::Extension(e) if e == "invalid_target" => {
                    Error::ResourceRefused { description }
                }
                other => Error::TokenEndpoint {
                    status: None,
                    retry_after: None,
                    error: sanitize_provider_text(other.as_ref()),
                    description,
                },
            }
        }
        RequestTokenError::Request(inner) => network(inner),
        RequestTokenError::Parse(_, _) => Error::TokenEndpoint {
            status: None,
            retry_after: None,
            error: "unreadable_response".to_owned(),
            description: None,
        },
        RequestTokenError::Other(_) => Error::TokenEndpoint {
            status: None,
            retry_after: None,
            error: "unexpected_response".to_owned(),
            description: None,
        },
    }
}

/// When a token answered at `now` with `expires_in` expires: [`ASSUMED_TOKEN_LIFETIME`]
/// without one, at most [`MAX_TOKEN_LIFETIME`] (an absurd value must not overflow the clock).
fn expiry(now: SystemTime, expires_in: Option<Duration>) -> SystemTime {
    now + expires_in
        .unwrap_or(ASSUMED_TOKEN_LIFETIME)
        .min(MAX_TOKEN_LIFETIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_expires_in_is_capped_not_a_panic() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(expiry(now, None), now + ASSUMED_TOKEN_LIFETIME);
        assert_eq!(
            expiry(now, Some(Duration::from_secs(300))),
            now + Duration::from_secs(300)
        );
        for absurd in [Duration::from_secs(1 << 63), Duration::MAX] {
            assert_eq!(expiry(now, Some(absurd)), now + MAX_TOKEN_LIFETIME);
        }
    }

    #[test]
    fn invalid_target_at_the_token_endpoint_is_a_refused_resource() {
        let response = StandardErrorResponse::new(
            CoreErrorResponseType::Extension("invalid_target".to_owned()),
            Some("resource must be an https URL".to_owned()),
            None,
        );
        let err = token_error::<std::io::Error>(RequestTokenError::ServerResponse(response));
        assert_eq!(err.code(), crate::ErrorCode::ResourceRefused);
        let other = StandardErrorResponse::new(
            CoreErrorResponseType::Extension("slow_down".to_owned()),
            None,
            None,
        );
        assert_eq!(
            token_error::<std::io::Error>(RequestTokenError::ServerResponse(other)).code(),
            crate::ErrorCode::TokenEndpoint,
            "other extension errors stay token-endpoint errors"
        );
    }

    #[test]
    fn endpoint_policy() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:1",
            "http://localhost:3000",
        ] {
            assert!(
                is_acceptable_endpoint(&Url::parse(ok).unwrap()),
                "https and loopback http are allowed: {ok}"
            );
        }
        for bad in [
            "http://id.example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "http://127.0.0.1.evil.com",
        ] {
            assert!(
                !is_acceptable_endpoint(&Url::parse(bad).unwrap()),
                "plain http off loopback is refused: {bad}"
            );
        }
    }

    #[test]
    fn issuer_trailing_slash_is_dropped_only_for_empty_path() {
        assert_eq!(
            issuer_string(&Url::parse("http://127.0.0.1:5000").unwrap()),
            "http://127.0.0.1:5000",
            "url::Url's implicit slash is not part of the issuer"
        );
        assert_eq!(
            issuer_string(&Url::parse("https://id.example.com/realms/x").unwrap()),
            "https://id.example.com/realms/x",
            "a real path is kept as is"
        );
    }

    #[allow(dead_code)] // compile-time check only
    fn futures_are_send(c: &AuthClient, t: &SecretString) {
        fn send<T: Send>(_: T) {}
        send(c.complete("x"));
        send(c.refresh(t));
        send(c.revoke(t));
        send(AuthClient::discover(AuthConfig::new(
            Url::parse("https://example.com").unwrap(),
            "c",
        )));
    }

    #[test]
    fn client_is_shareable_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AuthClient>();
        send_sync::<crate::LoopbackListener>();
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualMonotonicClock::new();
        let a = c.now();
        assert_eq!(a, c.now(), "manual clock stands still");
        c.advance(Duration::from_secs(5));
        assert_eq!(
            c.now() - a,
            Duration::from_secs(5),
            "advance moves it exactly"
        );
    }
}
