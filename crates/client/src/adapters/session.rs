//! confab-session's traits over the real peers: [`AuthEndpoint`] over
//! `confab_auth::AuthClient`, and [`VaultSlot`] over a `confab_vault::SecretStore`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use confab_auth::{AuthClient, SecretString as AuthSecret};
use confab_vault::{AccountId, SecretStore, SecretString as VaultSecret};
use futures_util::future::BoxFuture;
use url::Url;

use confab_session::{EndpointError, RefreshTokenStore, Secret, TokenEndpoint, Tokens, User};

use crate::revocations::PendingRevocations;

/// Name of the refresh-token entry in the vault (per account).
pub const REFRESH_TOKEN_ENTRY: &str = "refresh_token";
/// Name of the chat token tier's refresh-token entry (ChatSDK's `refreshToken`, per account).
pub const CHAT_REFRESH_TOKEN_ENTRY: &str = "chat_refresh_token";
/// The vault entry holding the key of the account's encrypted local store (confab-store).
pub const STORE_KEY_ENTRY: &str = "store_key";

/// The key of `account`'s local store, made (and saved in the vault, durably, before any
/// store uses it) on the account's first start. Blocking: call on the blocking pool.
pub fn store_key(
    vault: &dyn SecretStore,
    account: &AccountId,
) -> Result<confab_store::StoreKey, String> {
    let stored = vault
        .get(account, STORE_KEY_ENTRY)
        .map_err(|e| format!("cannot read the local store's key: {e}"))?;
    if let Some(secret) = stored {
        return confab_store::StoreKey::from_secret(&secret).map_err(|e| e.to_string());
    }
    let key = confab_store::StoreKey::generate();
    vault
        .put(account, STORE_KEY_ENTRY, &key.to_secret())
        .map_err(|e| format!("cannot save the local store's key: {e}"))?;
    Ok(key)
}

/// [`TokenEndpoint`] backed by confab-auth (refresh with ID-token validation, RFC 7009
/// revocation, RP-initiated logout).
/// A 429/503's `Retry-After` (exposed by confab-auth) is passed on, so the manager waits at
/// least that long.
///
/// With [`AuthEndpoint::with_pending`], a revocation is noted in the vault's pending
/// revocations before it is tried and forgotten once the provider answered for good: one that
/// fails for a transient reason (or is cut off by the session's timeout) is retried at the next
/// start.
#[derive(Clone)]
pub struct AuthEndpoint {
    client: Arc<AuthClient>,
    post_logout: Option<Url>,
    pending: Option<PendingRevocations>,
}

impl AuthEndpoint {
    /// Wraps a discovered client. `post_logout` is the optional `post_logout_redirect_uri`.
    pub fn new(client: Arc<AuthClient>, post_logout: Option<Url>) -> Self {
        Self {
            client,
            post_logout,
            pending: None,
        }
    }

    /// Keeps revocations that fail for a transient reason in `pending`, for a retry later.
    pub fn with_pending(mut self, pending: PendingRevocations) -> Self {
        self.pending = Some(pending);
        self
    }
}

impl std::fmt::Debug for AuthEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEndpoint").finish_non_exhaustive()
    }
}

fn to_auth(secret: &Secret) -> AuthSecret {
    AuthSecret::new(secret.expose_secret().to_owned())
}

fn from_auth(secret: &AuthSecret) -> Secret {
    Secret::new(secret.expose_secret().to_owned())
}

/// Classifies a confab-auth error for the retry logic.
pub fn classify(err: &confab_auth::Error) -> EndpointError {
    match err {
        confab_auth::Error::InvalidGrant { .. } => EndpointError::InvalidGrant,
        e if e.is_transient() => EndpointError::Transient {
            retry_after: e.retry_after(),
            reason: e.to_string(),
        },
        e => EndpointError::Fatal(e.to_string()),
    }
}

/// Turns confab-auth's token set into [`Tokens`] (lifetime measured from now).
pub fn tokens_from(set: &confab_auth::TokenSet, user: Option<User>) -> Tokens {
    Tokens {
        access_token: from_auth(&set.access_token),
        lifetime: set
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
        refresh_token: set.refresh_token.as_ref().map(from_auth),
        id_token: set.id_token.as_ref().map(from_auth),
        user,
    }
}

/// Sign-in handoff: the user and tokens of a completed confab-auth login, ready for
/// [`confab_session::TokenManagerBuilder::sign_in`].
pub fn handoff(signed_in: &confab_auth::SignedIn) -> (User, Tokens) {
    let user = user_from(&signed_in.user);
    let tokens = tokens_from(&signed_in.tokens, Some(user.clone()));
    (user, tokens)
}

/// confab-auth's user info as this crate's [`User`].
pub fn user_from(info: &confab_auth::UserInfo) -> User {
    User {
        issuer: info.issuer.clone(),
        subject: info.subject.clone(),
        name: info.name.clone(),
        email: info.email.clone(),
    }
}

impl TokenEndpoint for AuthEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        Box::pin(async move {
            let set = self
                .client
                .refresh(&to_auth(refresh_token))
                .await
                .map_err(|e| classify(&e))?;
            Ok(tokens_from(&set, None))
        })
    }

    fn revoke<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        Box::pin(async move {
            let token = to_auth(refresh_token);
            // Nothing to retry with a provider that cannot revoke at all.
            let pending = self
                .pending
                .as_ref()
                .filter(|_| self.client.metadata().revocation_endpoint.is_some());
            if let Some(pending) = pending {
                let issuer = self.client.metadata().issuer.as_str();
                if let Err(e) = pending.add(issuer, &token).await {
                    tracing::warn!("could not note the revocation for a retry: {e}");
                }
            }
            let outcome = self.client.revoke(&token).await.map_err(|e| classify(&e));
            if let Some(pending) = pending {
                pending.settle(&token, &outcome).await;
            }
            outcome
        })
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>) -> Option<Url> {
        let hint = id_token_hint?;
        self.client
            .end_session_url(&to_auth(hint), self.post_logout.clone())
    }
}

/// [`RefreshTokenStore`] backed by one account's entry in a confab-vault [`SecretStore`]
/// (the vault's writes are atomic and durable when they return). Blocking vault calls run on
/// tokio's blocking pool.
#[derive(Clone)]
pub struct VaultSlot {
    store: Arc<dyn SecretStore>,
    account: AccountId,
    entry: &'static str,
}

impl VaultSlot {
    /// The refresh-token slot of `account` in `store`.
    pub fn new(store: Arc<dyn SecretStore>, account: AccountId) -> Self {
        Self {
            store,
            account,
            entry: REFRESH_TOKEN_ENTRY,
        }
    }

    /// The chat token tier's refresh-token slot of `account` in `store` (ChatSDK).
    pub fn chat(store: Arc<dyn SecretStore>, account: AccountId) -> Self {
        Self {
            store,
            account,
            entry: CHAT_REFRESH_TOKEN_ENTRY,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore, &AccountId) -> confab_vault::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = Arc::clone(&self.store);
        let account = self.account.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref(), &account))
            .await
            .map_err(|e| format!("vault task failed: {e}"))?
            .map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for VaultSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSlot")
            .field("account", &self.account)
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

impl RefreshTokenStore for VaultSlot {
    fn load(&self) -> BoxFuture<'_, Result<Option<Secret>, String>> {
        Box::pin(async move {
            let entry = self.entry;
            let value = self.blocking(move |s, a| s.get(a, entry)).await?;
            Ok(value.map(|v| Secret::new(v.expose_secret().to_owned())))
        })
    }

    fn save<'a>(&'a self, token: &'a Secret) -> BoxFuture<'a, Result<(), String>> {
        let value = VaultSecret::new(token.expose_secret().to_owned());
        let entry = self.entry;
        Box::pin(async move { self.blocking(move |s, a| s.put(a, entry, &value)).await })
    }

    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        let entry = self.entry;
        Box::pin(async move {
            self.blocking(move |s, a| s.delete(a, entry).map(|_| ()))
                .await
        })
    }
}
