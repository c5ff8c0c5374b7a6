//! `SignInFlow`: drives one sign-in at a time — opens the browser, waits for the redirect (deep
//! link or loopback), completes it with confab-auth, and reports progress to the UI.
//!
//! It also owns the vault (opened at start, with the keychain key or a passphrase the user types)
//! and the session (`confab_session::TokenManager`, which keeps the refresh token in the vault):
//! silent restore at start, hand-over after a browser sign-in, sign-out.
//!
//! Tokens never leave Rust: the UI only ever receives [`UiEvent`]s.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use confab_auth::{AuthClient, AuthConfig, LoopbackListener, RedirectTarget};
use confab_backends::SimpleJwtClient;
use confab_config::{AppConfig, CredentialProfile, VaultKeyMode};
use confab_session::{
    AuthLog, EndpointError, RefreshTokenStore, SessionEvent, TokenEndpoint, TokenManager,
};
use confab_vault::{AccountId, KeySource, SecretString, StrongholdStore};
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use url::Url;

use crate::account::{self, LastAccount};
use crate::accounts::{Generation, Registry};
use crate::adapters::{self, store_key, AuthEndpoint, PasswordEndpoint, VaultSlot};
use crate::error::{Code, Error, Result};
use crate::events::{unix_millis, RedirectKind, SignedOutReason, UiEvent, UserView};
use crate::platform::{AppPaths, Platform};
use crate::revocations::{same_issuer, PendingRevocations};
use crate::Subscriber;

/// File name of the vault snapshot in the data dir.
pub const VAULT_FILE: &str = "vault.stronghold";
/// File name of the auth event log (JSON lines, no secrets) in the log dir.
pub const AUTH_LOG_FILE: &str = "auth.jsonl";

/// Fewest characters of a new vault passphrase (an existing vault opens with whatever it has).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// How long signing out waits for the provider to revoke a stored refresh token.
const REVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long signing in waits for the vault that is still being opened at start.
const VAULT_OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How the redirect comes back to this app, decided once at start by the shell (desktop:
/// whether the scheme could be registered; mobile: always the scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPlan {
    /// Private-use scheme delivered as a deep link.
    Scheme,
    /// Loopback listener on 127.0.0.1 with an ephemeral port.
    Loopback,
}

/// What a starting session hands the chat of the account's vault entry.
pub struct AccountVault {
    /// The chat token tier's refresh-token slot (ChatSDK).
    pub chat_slot: Arc<dyn RefreshTokenStore>,
    /// The key of the account's encrypted local store (or why it could not be had).
    pub store_key: std::result::Result<confab_store::StoreKey, String>,
}

/// Told when an account's session starts (sign-in or restore) and ends (sign-out, session
/// ended, vault reset). The chat hub uses it to run each account's relay.
pub trait SessionObserver: Send + Sync {
    /// Run `run` of `account`'s session (`user`) is running; `manager` hands out its access
    /// tokens, `vault` is what the chat needs of the account's vault entry. The account is the
    /// one the UI shows.
    fn session_started(
        self: Arc<Self>,
        account: &AccountId,
        run: Generation,
        manager: &TokenManager,
        user: &confab_session::User,
        vault: AccountVault,
    );
    /// Run `run` of `account`'s session ended (a newer run of the account is left alone).
    fn session_ended(self: Arc<Self>, account: &AccountId, run: Generation);
    /// The UI shows `account` now (an account still running, after the shown one ended).
    fn account_shown(self: Arc<Self>, account: &AccountId);
    /// The user signed out of `account` and chose to remove its local data: once its chat has
    /// stopped, everything the chat kept of it on this device is deleted.
    fn remove_local_data(
        self: Arc<Self>,
        account: AccountId,
    ) -> futures_util::future::BoxFuture<'static, std::result::Result<(), String>>;
}

/// What runs for one account in the flow: its token manager (once started) and who it is.
struct Running {
    /// Holds the tokens (never serialized, never logged). `None` while starting.
    manager: Option<TokenManager>,
    /// Set by the session's `signed-in` event (or the remembered profile when offline).
    user: Option<UserView>,
    /// The non-secret profile, remembered (`account.json`) while this account is shown.
    profile: confab_session::User,
}

/// The app's sign-in state machine, shared by every command of the sign-in channel.
pub struct SignInFlow {
    config: std::result::Result<AppConfig, String>,
    paths: AppPaths,
    /// Decided off the start-up path (registering the scheme runs OS tools); `None` until then.
    plan: tokio::sync::watch::Receiver<Option<RedirectPlan>>,
    platform: Arc<dyn Platform>,
    /// The runtime its background tasks run on (callers may be on a thread outside it).
    rt: Handle,
    /// Discovered lazily (the provider may be down at start); a failed discovery is retried.
    client: tokio::sync::Mutex<Option<Arc<AuthClient>>>,
    /// The password profile's backend client, made on first use.
    password: Mutex<Option<Arc<SimpleJwtClient>>>,
    state: Mutex<State>,
    subscribers: Mutex<Vec<Subscriber<UiEvent>>>,
    observer: std::sync::OnceLock<Arc<dyn SessionObserver>>,
    /// True once the latest attempt to open the vault at start has finished (opened or not).
    vault_attempted: tokio::sync::watch::Sender<bool>,
}

struct State {
    /// The last status event, replayed to new subscribers.
    view: UiEvent,
    /// Increases with every sign-in attempt; stale timers and listeners check it.
    attempt: u64,
    /// The timeout timer and loopback listener of the current attempt.
    tasks: Vec<JoinHandle<()>>,
    /// The open vault (None while locked, opening or broken).
    vault: Option<Arc<StrongholdStore>>,
    /// Its list of revocations still owed (with the vault).
    pending: Option<PendingRevocations>,
    /// The sessions, one per account; the active one is what the UI shows. A generation per
    /// run: events of a replaced or ended session are ignored.
    sessions: Registry<Running>,
}

impl State {
    /// Makes the first account whose session is running the active one, and returns it.
    fn activate_running(&mut self) -> Option<AccountId> {
        let account = self
            .sessions
            .iter()
            .find(|(_, r)| r.manager.is_some())
            .map(|(account, _)| account.clone())?;
        self.sessions.set_active(&account);
        Some(account)
    }
}

impl SignInFlow {
    /// A flow for `config` (or the config error to show), redirecting per `plan`, with its
    /// background tasks on `rt`.
    pub fn new(
        config: std::result::Result<AppConfig, String>,
        paths: AppPaths,
        plan: tokio::sync::watch::Receiver<Option<RedirectPlan>>,
        platform: Arc<dyn Platform>,
        rt: Handle,
    ) -> Arc<Self> {
        let view = match &config {
            Ok(_) => UiEvent::Starting,
            Err(message) => UiEvent::failed(&Error::Config(message.clone())),
        };
        Arc::new(Self {
            config,
            paths,
            plan,
            platform,
            rt,
            client: tokio::sync::Mutex::new(None),
            password: Mutex::new(None),
            state: Mutex::new(State {
                view,
                attempt: 0,
                tasks: Vec::new(),
                vault: None,
                pending: None,
                sessions: Registry::default(),
            }),
            subscribers: Mutex::new(Vec::new()),
            observer: std::sync::OnceLock::new(),
            vault_attempted: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Sets the observer of session starts and ends (once, at setup).
    pub fn set_observer(&self, observer: Arc<dyn SessionObserver>) {
        if self.observer.set(observer).is_err() {
            tracing::warn!("a session observer was already set");
        }
    }

    fn session_ended(&self, account: &AccountId, run: Generation) {
        if let Some(o) = self.observer.get() {
            Arc::clone(o).session_ended(account, run);
        }
    }

    /// The shown account ended: shows another account that is still running (its chat, its
    /// user; it becomes the remembered one) and returns true, or returns false when none is.
    fn show_next_account(&self) -> bool {
        let next = {
            let mut st = self.state();
            let account = st.activate_running();
            account.and_then(|account| {
                let running = st.sessions.get(&account)?;
                Some((account, running.user.clone(), running.profile.clone()))
            })
        };
        let Some((account, user, profile)) = next else {
            return false;
        };
        if let Err(e) = account::save(&self.paths.data_dir, &LastAccount::from(&profile)) {
            tracing::warn!("could not remember the account: {e}");
        }
        if let Some(o) = self.observer.get() {
            Arc::clone(o).account_shown(&account);
        }
        let user = user.unwrap_or_else(|| UserView::from(&profile));
        self.publish(UiEvent::SignedIn { user });
        true
    }

    /// Forgets the remembered account (`account.json`) if it is `account`.
    fn forget_if_remembered(&self, account: &AccountId) {
        if account::load(&self.paths.data_dir).is_some_and(|last| last.account_id() == *account) {
            account::forget(&self.paths.data_dir);
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the app, so keep going with the inner value.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a UI subscriber and immediately sends it the current status. The status is read
    /// and sent while the subscriber list is locked, so a status published at the same moment
    /// (at start, the first screen) reaches the new subscriber after it, never not at all.
    /// (Lock order: subscribers, then state; nothing publishes while holding the state.)
    pub fn subscribe(&self, subscriber: Subscriber<UiEvent>) {
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let view = self.state().view.clone();
        if subscriber(view) {
            subscribers.push(subscriber);
        }
    }

    /// Records `event` as the current status and sends it to every subscriber.
    fn publish(&self, event: UiEvent) {
        self.state().view = event.clone();
        self.notify(event);
    }

    /// Sends `event` to every subscriber without making it the status (progress notes).
    fn notify(&self, event: UiEvent) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|s| s(event.clone()));
    }

    fn fail(&self, e: Error) -> Error {
        tracing::warn!(code = %e.code(), "sign-in failed: {e}");
        self.publish(UiEvent::failed(&e));
        e
    }

    /// Who is signed in on the active account, if anyone.
    pub fn current_user(&self) -> Option<UserView> {
        self.state()
            .sessions
            .active_value()
            .and_then(|r| r.user.clone())
    }

    async fn client(&self) -> Result<Arc<AuthClient>> {
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let mut extra_auth_params = Vec::new();
        if let Some(hint) = &config.login_hint {
            extra_auth_params.push(("login_hint".to_owned(), hint.clone()));
        }
        let client = Arc::new(
            AuthClient::discover(AuthConfig {
                scopes: config.scopes.clone(),
                resource: config.resource_indicator().map(str::to_owned),
                login_timeout: config.login_timeout,
                extra_auth_params,
                ..AuthConfig::new(config.issuer.clone(), config.client_id.clone())
            })
            .await?,
        );
        *slot = Some(client.clone());
        Ok(client)
    }

    /// How this configuration's accounts sign in: `"browser"` (OpenID Connect) or
    /// `"password"` (a first-party backend's form). Not secret; the window is told at creation.
    pub fn sign_in_method(&self) -> &'static str {
        match self.config.as_ref().map(|c| &c.credential) {
            Ok(CredentialProfile::Password { .. }) => "password",
            _ => "browser",
        }
    }

    /// The password profile's backend client, or `None` under another profile.
    fn password_client(&self) -> Result<Option<Arc<SimpleJwtClient>>> {
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        let CredentialProfile::Password { backend, settings } = &config.credential else {
            return Ok(None);
        };
        let mut slot = self.password.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref() {
            return Ok(Some(client.clone()));
        }
        let client = Arc::new(SimpleJwtClient::new(backend.clone(), (**settings).clone())?);
        *slot = Some(client.clone());
        Ok(Some(client))
    }

    /// The session's token endpoint for an OpenID Connect `client`: refresh, revocation (noted
    /// in the pending list until it succeeds) and the provider's logout page.
    fn oidc_endpoint(&self, client: Arc<AuthClient>) -> Result<Arc<dyn TokenEndpoint>> {
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        let post_logout = Url::parse(&format!("{}:/oauth/logout", config.redirect_scheme)).ok();
        let mut endpoint = AuthEndpoint::new(client, post_logout);
        if let Some(pending) = self.state().pending.clone() {
            endpoint = endpoint.with_pending(pending);
        }
        Ok(Arc::new(endpoint))
    }

    /// The session's token endpoint of this configuration's credential profile.
    async fn session_endpoint(&self) -> Result<Arc<dyn TokenEndpoint>> {
        if let Some(client) = self.password_client()? {
            let mut endpoint = PasswordEndpoint::new(client);
            if let Some(pending) = self.state().pending.clone() {
                endpoint = endpoint.with_pending(pending);
            }
            return Ok(Arc::new(endpoint));
        }
        let client = self.client().await?;
        self.oidc_endpoint(client)
    }

    /// Revokes `token` of `issuer` where it was issued: the password backend's blacklist when
    /// it is that backend's, else the identity provider of `issuer`. The outer error: the
    /// revocation could not even be tried.
    async fn revoke_at(
        &self,
        issuer: &str,
        token: &SecretString,
    ) -> Result<std::result::Result<(), EndpointError>> {
        if let Some(client) = self.password_client()? {
            if same_issuer(issuer, &client.issuer()) {
                let outcome = client.blacklist(token).await;
                return Ok(outcome.map_err(|e| adapters::classify_backend(&e)));
            }
        }
        let client = self.client_for(issuer).await?;
        Ok(client
            .revoke(token)
            .await
            .map_err(|e| adapters::classify(&e)))
    }

    /// The client to revoke a token of `issuer` with: the configured provider's, or for a token
    /// of another provider (the configuration changed since) a client discovered for that one,
    /// so a token is only ever sent to the provider that issued it.
    async fn client_for(&self, issuer: &str) -> Result<Arc<AuthClient>> {
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        if same_issuer(issuer, config.issuer.as_str()) {
            return self.client().await;
        }
        let url = Url::parse(issuer)
            .map_err(|_| Error::Config(format!("the issuer `{issuer}` is not a URL")))?;
        tracing::info!(issuer, "revoking a token at the provider that issued it");
        Ok(Arc::new(
            AuthClient::discover(AuthConfig::new(url, config.client_id.clone())).await?,
        ))
    }

    /// Starts a sign-in (replacing any pending one): opens the browser and waits for the redirect.
    ///
    /// With a remembered account whose restore failed for a transient reason (no session is
    /// running), this first retries the silent restore instead of opening the browser.
    pub async fn sign_in(self: &Arc<Self>) -> Result<()> {
        let retry_restore = self.state().vault.is_some() && !self.has_session();
        if retry_restore {
            // Only an account of the configured provider can be restored; for one of another
            // provider this opens the browser (and the new account replaces it).
            let configured = self.config.as_ref().map(AppConfig::account_issuer);
            let last = account::load(&self.paths.data_dir).filter(|last| {
                configured
                    .as_ref()
                    .is_ok_and(|issuer| same_issuer(&last.issuer, issuer))
            });
            if let Some(last) = last {
                self.restore(last).await;
                return Ok(());
            }
        }
        if self.sign_in_method() == "password" {
            // Nothing to open: the sign-in form is the way in.
            self.publish(UiEvent::SignedOut {
                reason: SignedOutReason::NotSignedIn,
            });
            return Ok(());
        }
        self.start().await.map_err(|e| self.fail(e))
    }

    /// Waits for the vault that is still being opened at start (the sign-in screen can be up
    /// meanwhile); `VaultLocked` when it did not open.
    async fn vault_ready(&self) -> Result<()> {
        if self.state().vault.is_none() {
            let mut attempted = self.vault_attempted.subscribe();
            let _ = tokio::time::timeout(VAULT_OPEN_WAIT, attempted.wait_for(|done| *done)).await;
            if self.state().vault.is_none() {
                return Err(Error::VaultLocked);
            }
        }
        Ok(())
    }

    /// Signs in with the password profile's backend: `login` (email or username) and
    /// `password` go to its login view once; the password is dropped (zeroized) right after
    /// and never stored or logged. A refusal (wrong password, inactive account, rate limit,
    /// backend down) is returned for the form to show, and nothing is stored; success starts
    /// the session like a browser sign-in (refresh token into the vault first).
    pub async fn sign_in_password(
        self: &Arc<Self>,
        login: &str,
        password: SecretString,
    ) -> Result<()> {
        let client = self.password_client()?.ok_or_else(|| {
            Error::Config("this workspace signs in through the browser, not with a password".into())
        })?;
        self.vault_ready().await?;
        let outcome = client.login(login, &password).await;
        drop(password);
        let signed_in = outcome.map_err(|e| {
            tracing::warn!(code = %Code::of_backend(&e), "password sign-in refused: {e}");
            Error::from(e)
        })?;
        let (user, tokens) = adapters::password_handoff(&client.issuer(), signed_in);
        let previous = account::load(&self.paths.data_dir).map(|last| last.account_id());
        let account = user.account_id();
        let endpoint = self.session_endpoint().await?;
        self.start_session(endpoint, user.clone(), |b| b.sign_in(user, tokens))
            .await
            .inspect_err(|e| tracing::warn!(code = %e.code(), "password sign-in failed: {e}"))?;
        tracing::info!("signed in with a password");
        if let Some(previous) = previous.filter(|p| *p != account) {
            self.replaced(previous);
        }
        Ok(())
    }

    async fn start(self: &Arc<Self>) -> Result<()> {
        self.vault_ready().await?;
        let client = self.client().await?;
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        let attempt = {
            let mut st = self.state();
            st.tasks.drain(..).for_each(|t| t.abort());
            st.attempt += 1;
            st.attempt
        };
        let plan = self.redirect_plan().await;
        let (target, listener) = match plan {
            RedirectPlan::Scheme => (
                RedirectTarget::private_use(&config.scheme_redirect_uri())?,
                None,
            ),
            RedirectPlan::Loopback => {
                let listener = LoopbackListener::bind().await?;
                (listener.redirect_target(), Some(listener))
            }
        };
        let redirect = match plan {
            RedirectPlan::Scheme => RedirectKind::PrivateUseScheme,
            RedirectPlan::Loopback => RedirectKind::Loopback,
        };
        let login = client.begin(target)?;
        if self.platform.open_url(&login.authorize_url).is_err() {
            // The launcher's error may quote the URL (state, nonce): not logged, not shown.
            tracing::warn!(
                origin = %login.authorize_url.origin().ascii_serialization(),
                "the system browser could not be opened"
            );
            client.cancel();
            return Err(Error::Browser);
        }
        let deadline = login.deadline;

        let mut tasks = Vec::new();
        let this = self.clone();
        tasks.push(self.rt.spawn(async move {
            this.expire_at(attempt, deadline).await;
        }));
        if let Some(listener) = listener {
            let this = self.clone();
            let pending = client.clone();
            tasks.push(self.rt.spawn(async move {
                // Only the callback of this sign-in ends the wait: a local page that guesses
                // the port cannot break it.
                let ours = move |url: &Url| pending.is_for_pending(url.as_str());
                match listener.wait_until_matching(deadline, ours).await {
                    Ok(url) => this.complete(url.as_str()).await,
                    Err(e) => {
                        if this.state().attempt == attempt {
                            this.fail(e.into());
                        }
                    }
                }
            }));
        }
        {
            let mut st = self.state();
            if st.attempt != attempt {
                tasks.into_iter().for_each(|t| t.abort());
                return Ok(());
            }
            st.tasks = tasks;
        }
        self.publish(UiEvent::SignInPending {
            deadline: deadline_millis(deadline),
            redirect,
        });
        Ok(())
    }

    /// Ends the attempt when its deadline passes without a redirect.
    async fn expire_at(&self, attempt: u64, deadline: Instant) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
        let still_pending = {
            let st = self.state();
            st.attempt == attempt && matches!(st.view, UiEvent::SignInPending { .. })
        };
        if still_pending {
            // The pending login stays in confab-auth, which refuses it as expired by itself: a
            // late redirect then gets the same "took too long" answer, and no token request.
            self.fail(confab_auth::Error::LoginExpired.into());
        }
    }

    /// Handles a redirect delivered by the OS (deep link) or the loopback listener.
    pub async fn complete(self: &Arc<Self>, callback_url: &str) {
        let client = self.client.lock().await.clone();
        let signed_in_already = self.current_user().is_some();
        let Some(client) = client else {
            // Nothing was started in this process (e.g. the app was launched by a stale link).
            if !signed_in_already {
                self.fail(confab_auth::Error::NoPendingLogin.into());
            }
            return;
        };
        match client.complete(callback_url).await {
            Ok(signed_in) => {
                // The timer and listener of this attempt end here. This may run inside the
                // listener task itself, so abort them only after the last await below.
                let tasks: Vec<_> = {
                    let mut st = self.state();
                    st.attempt += 1;
                    st.tasks.drain(..).collect()
                };
                let (user, tokens) = adapters::handoff(&signed_in);
                drop(signed_in);
                let previous = account::load(&self.paths.data_dir).map(|last| last.account_id());
                let account = user.account_id();
                let started = match self.oidc_endpoint(client) {
                    Ok(endpoint) => {
                        self.start_session(endpoint, user.clone(), |b| b.sign_in(user, tokens))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match started {
                    Ok(()) => {
                        tracing::info!("signed in");
                        if let Some(previous) = previous.filter(|p| *p != account) {
                            self.replaced(previous);
                        }
                    }
                    Err(e) => {
                        self.fail(e);
                    }
                }
                tasks.into_iter().for_each(|t| t.abort());
            }
            Err(e) => {
                let e = Error::from(e);
                let waiting = matches!(self.state().view, UiEvent::SignInPending { .. });
                if client.pending().is_some() || (waiting && is_stray(e.code())) {
                    // The callback was refused before it touched the pending login (a forged
                    // or stale link: another state, a replay, a malformed URL), or while the
                    // genuine one is being exchanged. No token request was made for it and
                    // the sign-in goes on: the pending screen, its deadline and (loopback) its
                    // listener stay, with a notice.
                    tracing::warn!(code = %e.code(), "refused a redirect that is not for the pending sign-in");
                    self.notify(UiEvent::RedirectRefused {
                        code: e.code(),
                        message: e.to_string(),
                    });
                    return;
                }
                self.state().tasks.drain(..).for_each(|t| t.abort());
                if signed_in_already {
                    // Rejected (no token request was made); keep showing the signed-in user.
                    tracing::warn!(code = %e.code(), "ignored a stray sign-in response");
                } else {
                    self.fail(e);
                }
            }
        }
    }

    /// Cancels a pending sign-in. Returns whether one was pending.
    pub async fn cancel(&self) -> bool {
        let was_pending = {
            let mut st = self.state();
            st.tasks.drain(..).for_each(|t| t.abort());
            st.attempt += 1;
            matches!(st.view, UiEvent::SignInPending { .. })
        };
        if let Some(client) = self.client.lock().await.as_ref() {
            client.cancel();
        }
        if self.current_user().is_none() {
            self.publish(UiEvent::SignedOut {
                reason: SignedOutReason::Cancelled,
            });
        }
        was_pending
    }

    /// The redirect plan, once the start-up registration has decided it (the scheme if that
    /// task is gone without deciding).
    async fn redirect_plan(&self) -> RedirectPlan {
        let mut rx = self.plan.clone();
        let plan = match rx.wait_for(Option::is_some).await {
            Ok(plan) => *plan,
            Err(_) => None,
        };
        plan.unwrap_or(RedirectPlan::Scheme)
    }

    /// The accounts with a session (running or starting), the shown one included.
    pub fn accounts(&self) -> Vec<AccountId> {
        self.state()
            .sessions
            .iter()
            .map(|(account, _)| account.clone())
            .collect()
    }

    /// Whether the active account's session is running (never exposes a token).
    pub fn has_session(&self) -> bool {
        self.state()
            .sessions
            .active_value()
            .is_some_and(|r| r.manager.is_some())
    }

    fn vault_path(&self) -> PathBuf {
        self.paths.data_dir.join(VAULT_FILE)
    }

    /// No remembered account (and the vault key from the keychain, so no passphrase to ask
    /// first): the first screen is "Sign in" whatever the vault holds, so it is shown at once,
    /// while the keychain and the vault (created on a first run) are opened; signing in waits
    /// for the vault, and if the vault then cannot be opened, the unlock or reset screen
    /// replaces it. Publishes that status if nothing else is on screen yet (`Starting`) and
    /// returns whether "Sign in" is the first screen. Called at start (before the window is
    /// created, which is told the same) and whenever the vault is opened again.
    pub fn show_sign_in_first(&self) -> bool {
        let keychain = self
            .config
            .as_ref()
            .is_ok_and(|c| c.vault_key != VaultKeyMode::Passphrase);
        if !keychain || account::load(&self.paths.data_dir).is_some() {
            return false;
        }
        if matches!(self.state().view, UiEvent::Starting) {
            self.publish(UiEvent::SignedOut {
                reason: SignedOutReason::NotSignedIn,
            });
        }
        true
    }

    /// Opens the vault at start (off the main thread): with the keychain key unless the config
    /// forces a passphrase; when the keychain is unreachable or the vault is passphrase-protected,
    /// asks for the passphrase. Then restores the last session, if any.
    pub async fn open_vault(self: &Arc<Self>) {
        self.vault_attempted.send_replace(false);
        self.open_vault_inner().await;
        self.vault_attempted.send_replace(true);
    }

    async fn open_vault_inner(self: &Arc<Self>) {
        let Ok(config) = &self.config else { return };
        let path = self.vault_path();
        let first_run = !StrongholdStore::exists(&path);
        if config.vault_key == VaultKeyMode::Passphrase {
            self.publish(UiEvent::VaultLocked { first_run });
            return;
        }
        self.show_sign_in_first();
        match open_blocking(path, KeySource::keychain()).await {
            Ok(store) => self.vault_opened(store).await,
            Err(confab_vault::Error::KeychainUnavailable(reason)) => {
                tracing::warn!("OS keychain unavailable, asking for a passphrase: {reason}");
                self.publish(UiEvent::VaultLocked { first_run });
            }
            Err(confab_vault::Error::KeySourceMismatch {
                expected: "passphrase",
                ..
            }) => self.publish(UiEvent::VaultLocked { first_run: false }),
            Err(e) => self.vault_broken(&e.into()),
        }
    }

    /// Unlocks (or, on first run, creates) the vault with a passphrase. The passphrase is
    /// zeroized when the key source is dropped; it is never stored, logged or sent back.
    pub async fn unlock(
        self: &Arc<Self>,
        passphrase: SecretString,
        confirmation: Option<SecretString>,
    ) -> Result<()> {
        if self.state().vault.is_some() {
            return Ok(());
        }
        let path = self.vault_path();
        if !StrongholdStore::exists(&path) {
            let same = confirmation
                .as_ref()
                .is_some_and(|c| c.expose_secret() == passphrase.expose_secret());
            if !same {
                return Err(Error::PassphraseMismatch);
            }
            if passphrase.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
                return Err(Error::PassphraseTooShort {
                    min: MIN_PASSPHRASE_CHARS,
                });
            }
        }
        drop(confirmation);
        match open_blocking(path, KeySource::passphrase(passphrase)).await {
            Ok(store) => {
                self.vault_opened(store).await;
                Ok(())
            }
            Err(confab_vault::Error::WrongKey) => {
                tracing::info!("vault unlock: wrong passphrase");
                Err(Error::WrongPassphrase)
            }
            Err(e @ confab_vault::Error::EmptyPassphrase) => Err(e.into()),
            Err(e) => {
                let e = Error::from(e);
                self.vault_broken(&e);
                Err(e)
            }
        }
    }

    /// "Reset vault and sign in again" (the UI asked for confirmation): ends any session, moves
    /// the vault files aside, deletes the old snapshot (its tokens can be neither read nor
    /// revoked) and starts with a fresh vault.
    pub async fn reset_vault(self: &Arc<Self>) -> Result<()> {
        let ended = {
            let mut st = self.state();
            st.vault = None;
            st.pending = None;
            st.sessions.end_all()
        };
        account::forget(&self.paths.data_dir);
        for (account, run, _) in &ended {
            self.session_ended(account, *run);
        }
        let path = self.vault_path();
        let moved = tokio::task::spawn_blocking(move || {
            let moved = StrongholdStore::reset(path)?;
            // The user confirmed: the old snapshot's tokens can never be read again (its key
            // is lost or it is damaged), nor revoked; delete it instead of keeping secrets on
            // disk. Its key-info file (salt and key check, no secret) stays beside it.
            let deleted = match &moved {
                Some(old) => match std::fs::remove_file(old) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("could not delete the old vault: {e}");
                        false
                    }
                },
                None => false,
            };
            Ok::<_, confab_vault::Error>(deleted)
        })
        .await
        .map_err(|e| Error::Vault(confab_vault::Error::Stronghold(e.to_string())))??;
        tracing::warn!(old_vault_deleted = moved, "vault reset by the user");
        self.publish(UiEvent::Starting);
        self.open_vault().await;
        Ok(())
    }

    fn vault_broken(&self, e: &Error) {
        tracing::error!(code = %e.code(), "the vault cannot be opened: {e}");
        self.publish(UiEvent::VaultBroken {
            code: e.code(),
            message: e.to_string(),
        });
    }

    /// The vault is open: restore the remembered session, or show the sign-in screen.
    async fn vault_opened(self: &Arc<Self>, store: StrongholdStore) {
        let store = Arc::new(store);
        {
            let mut st = self.state();
            st.pending = Some(PendingRevocations::new(store.clone()));
            st.vault = Some(store);
        }
        tracing::info!("vault opened");
        self.rt.spawn(Arc::clone(self).retry_pending_revocations());
        let Some(last) = account::load(&self.paths.data_dir) else {
            // Keep what happened meanwhile on screen (e.g. a stale redirect that launched us).
            let starting = matches!(
                self.state().view,
                UiEvent::Starting | UiEvent::VaultLocked { .. }
            );
            if starting {
                self.publish(UiEvent::SignedOut {
                    reason: SignedOutReason::NotSignedIn,
                });
            }
            return;
        };
        self.restore(last).await;
    }

    /// Silent restore of the remembered account (no browser). A refusal by the provider shows
    /// the sign-in screen with the reason and forgets the account; any other failure (provider
    /// unreachable at discovery) shows the error and keeps it, so "Try again" restores again.
    async fn restore(self: &Arc<Self>, last: LastAccount) {
        if let Ok(config) = &self.config {
            let configured = config.account_issuer();
            if !same_issuer(&last.issuer, &configured) {
                // The configuration now names another provider: its refresh token is not sent
                // anywhere (the account and its vault entry stay, for that provider).
                tracing::warn!(
                    remembered = %last.issuer,
                    %configured,
                    "the remembered account belongs to another identity provider: not restored"
                );
                self.publish(UiEvent::SignedOut {
                    reason: SignedOutReason::NotSignedIn,
                });
                return;
            }
        }
        self.publish(UiEvent::Restoring {
            name: last.name.clone(),
        });
        let restored = async {
            let endpoint = self.session_endpoint().await?;
            let user = confab_session::User::from(&last);
            self.start_session(endpoint, user.clone(), |b| b.restore(user))
                .await
        }
        .await;
        match restored {
            Ok(()) => {
                // Offline at start: the session is kept and retried; show who is signed in.
                let user = UserView::from(&confab_session::User::from(&last));
                let unseen = {
                    let mut st = self.state();
                    match st.sessions.get_mut(&last.account_id()) {
                        Some(running) if running.user.is_none() => {
                            running.user = Some(user.clone());
                            true
                        }
                        _ => false,
                    }
                };
                if unseen {
                    self.publish(UiEvent::SignedIn { user });
                }
            }
            Err(Error::Session(confab_session::Error::SignedOut(reason))) => {
                account::forget(&self.paths.data_dir);
                self.publish(UiEvent::SignedOut {
                    reason: SignedOutReason::from(&reason),
                });
            }
            Err(e) => {
                self.fail(e);
            }
        }
    }

    /// Builds a token manager for `user` and starts it with `start` (restore or sign-in
    /// hand-over), forwarding its events to the UI.
    async fn start_session<F, Fut>(
        self: &Arc<Self>,
        endpoint: Arc<dyn TokenEndpoint>,
        user: confab_session::User,
        start: F,
    ) -> Result<()>
    where
        F: FnOnce(confab_session::TokenManagerBuilder) -> Fut,
        Fut: std::future::Future<Output = confab_session::Result<TokenManager>>,
    {
        let vault = self.state().vault.clone().ok_or(Error::VaultLocked)?;
        let account = user.account_id();
        let slot = Arc::new(VaultSlot::new(vault.clone(), account.clone()));
        let (events, rx) = broadcast::channel(64);
        let mut builder = TokenManager::builder(endpoint, slot).events(events);
        match AuthLog::open(self.paths.log_dir.join(AUTH_LOG_FILE)) {
            Ok(log) => builder = builder.auth_log(log),
            Err(e) => tracing::warn!("auth event log unavailable: {e}"),
        }
        // A new run for this account (what ran before for it is dropped; other accounts'
        // sessions are untouched).
        let (gen, _replaced) = self.state().sessions.begin(
            account.clone(),
            Running {
                manager: None,
                user: None,
                profile: user.clone(),
            },
        );
        self.forward_session_events(account.clone(), gen, rx);
        let manager = match start(builder).await {
            Ok(manager) => manager,
            Err(e) => {
                let mut st = self.state();
                if st.sessions.end_if_current(&account, gen).is_some() {
                    // Back to an account still running, if any (its chat never stopped).
                    st.activate_running();
                }
                return Err(e.into());
            }
        };
        // The session's `signed-in` event may have come while it was starting: it was held
        // back (see `on_session_event`) and is told now, once the session runs.
        let (current, held_back) = {
            let mut st = self.state();
            let shown = st.sessions.active() == Some(&account);
            match st.sessions.current_mut(&account, gen) {
                Some(running) => {
                    running.manager = Some(manager.clone());
                    (true, running.user.clone().filter(|_| shown))
                }
                None => (false, None),
            }
        };
        if current {
            if let Some(o) = self.observer.get() {
                let chat_slot = Arc::new(VaultSlot::chat(vault.clone(), account.clone()));
                let store_key = {
                    let (vault, account) = (vault.clone(), account.clone());
                    tokio::task::spawn_blocking(move || store_key(vault.as_ref(), &account))
                        .await
                        .unwrap_or_else(|e| Err(format!("vault task failed: {e}")))
                };
                let vault = AccountVault {
                    chat_slot,
                    store_key,
                };
                Arc::clone(o).session_started(&account, gen, &manager, &user, vault);
                // Signed out or replaced meanwhile: the end may have reached the observer
                // before this start did; end it again so nothing runs for it.
                if !self.state().sessions.is_current(&account, gen) {
                    Arc::clone(o).session_ended(&account, gen);
                }
            }
            if let Some(user) = held_back {
                self.publish(UiEvent::SignedIn { user });
            }
        }
        Ok(())
    }

    fn forward_session_events(
        self: &Arc<Self>,
        account: AccountId,
        gen: Generation,
        mut rx: broadcast::Receiver<SessionEvent>,
    ) {
        let this = Arc::clone(self);
        self.rt.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(event) => this.on_session_event(&account, gen, event),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    fn on_session_event(&self, account: &AccountId, gen: Generation, event: SessionEvent) {
        if !self.state().sessions.is_current(account, gen) {
            return; // a session that was replaced or signed out
        }
        // Only the shown account's session speaks to the UI and is the remembered one; the
        // others run on unseen.
        let shown = self.state().sessions.active() == Some(account);
        match &event {
            SessionEvent::SignedIn { user } => {
                let view = UserView::from(user);
                // Remembered before the user is recorded below: whoever tells the UI (here or
                // `start_session`) does so after the account is on disk.
                if shown {
                    if let Err(e) = account::save(&self.paths.data_dir, &LastAccount::from(user)) {
                        tracing::warn!("could not remember the account: {e}");
                    }
                }
                // While the session is still starting, `start_session` tells the UI once it
                // runs (so whoever sees `signed-in` finds the session there).
                let starting = match self.state().sessions.current_mut(account, gen) {
                    Some(running) => {
                        running.user = Some(view.clone());
                        running.profile = user.clone();
                        running.manager.is_none()
                    }
                    None => false,
                };
                if shown && !starting {
                    self.publish(UiEvent::SignedIn { user: view });
                }
            }
            SessionEvent::SignedOut { reason } => {
                let (ended, was_shown) = {
                    let mut st = self.state();
                    let was_shown = st.sessions.active() == Some(account);
                    (st.sessions.end_if_current(account, gen), was_shown)
                };
                if ended.is_none() {
                    return; // ended or replaced meanwhile
                }
                self.forget_if_remembered(account);
                self.session_ended(account, gen);
                tracing::info!(reason = reason.code(), shown = was_shown, "session ended");
                if was_shown && !self.show_next_account() {
                    self.publish(UiEvent::SignedOut {
                        reason: SignedOutReason::from(reason),
                    });
                }
            }
            other => {
                if shown {
                    if let Some(ui) = UiEvent::from_session_progress(other) {
                        self.notify(ui);
                    }
                }
            }
        }
    }

    /// A sign-in replaced the remembered account `previous` (`account.json` remembers one). If
    /// it is not running (its restore failed, or it belongs to another provider), nothing would
    /// ever use or revoke its stored refresh token: wipe it and revoke it, as a sign-out without
    /// a session does (in the background). A running account (side by side) is left alone.
    fn replaced(self: &Arc<Self>, previous: AccountId) {
        if self.state().sessions.get(&previous).is_some() {
            return;
        }
        tracing::info!("a new sign-in replaced the remembered account: its token is revoked");
        let this = Arc::clone(self);
        self.rt.spawn(async move {
            if let Err(e) = this.sign_out_stored(previous).await {
                tracing::warn!(code = %e.code(), "could not wipe the replaced account's token: {e}");
            }
        });
    }

    /// Signs out: revokes the refresh token, wipes it from the vault and memory, forgets the
    /// account, and opens the provider's logout page in the system browser.
    ///
    /// With no session running (its restore failed, e.g. the provider was unreachable at
    /// start, or is still under way), the refresh token stored for the account is still wiped
    /// from the vault, and revoked when the provider can be reached. Other accounts keep
    /// running: the UI then shows one of them.
    pub async fn sign_out(self: &Arc<Self>) -> Result<()> {
        self.sign_out_with(false).await
    }

    /// [`SignInFlow::sign_out`], and with `remove_local_data` the account's local data (its
    /// encrypted store: history, drafts, unsent messages) is deleted from this device with the
    /// store's key, before the sign-in screen is shown. Without it the store stays, unreadable
    /// without the key in the vault, for the account's next sign-in on this device.
    pub async fn sign_out_with(self: &Arc<Self>, remove_local_data: bool) -> Result<()> {
        let (ended, vault_open) = {
            let mut st = self.state();
            let active = st.sessions.active().cloned();
            let ended = active.and_then(|account| {
                st.sessions
                    .end(&account)
                    .map(|(run, running)| (account, run, running.manager))
            });
            (ended, st.vault.is_some())
        };
        let (account, session) = match ended {
            Some((account, run, manager)) => {
                self.session_ended(&account, run);
                (Some(account), manager)
            }
            None => (
                account::load(&self.paths.data_dir).map(|last| last.account_id()),
                None,
            ),
        };
        if session.is_none() && !vault_open && account.is_some() {
            // Nothing can be wiped from a locked vault: keep the account, say so.
            return Err(Error::VaultLocked);
        }
        if let Some(account) = &account {
            self.forget_if_remembered(account);
        }
        let removed_account = account.clone();
        let result = match (session, account) {
            (Some(manager), _) => manager.sign_out().await.map_err(Error::from),
            (None, Some(account)) => self.sign_out_stored(account).await.map(|()| None),
            (None, None) => Ok(None),
        };
        let removal = match (remove_local_data, &removed_account) {
            (true, Some(account)) => self.remove_local_data(account).await,
            _ => Ok(()),
        };
        if !self.show_next_account() {
            self.publish(UiEvent::SignedOut {
                reason: SignedOutReason::SignedOut,
            });
        }
        tracing::info!("signed out");
        if let Ok(Some(url)) = &result {
            if self.platform.open_url(url).is_err() {
                // Its text may quote the URL, which carries the ID token: never logged.
                tracing::warn!(
                    origin = %url.origin().ascii_serialization(),
                    "could not open the provider's logout page"
                );
            }
        }
        // The sign-out stands either way; a removal that failed is told after it.
        result.map(|_| ())?;
        removal.map_err(|e| {
            Error::Storage(format!(
                "Signed out, but this account's local data could not be removed: {e}"
            ))
        })
    }

    /// Deletes `account`'s local data (the chat's store, once its chat stopped) and then the
    /// store's key from the vault (not when the store could not be deleted: the key stays with
    /// what it opens).
    async fn remove_local_data(
        self: &Arc<Self>,
        account: &AccountId,
    ) -> std::result::Result<(), String> {
        if let Some(o) = self.observer.get() {
            if let Err(e) = Arc::clone(o).remove_local_data(account.clone()).await {
                tracing::warn!("could not remove the account's local data: {e}");
                return Err(e);
            }
        }
        let vault = self.state().vault.clone();
        if let Some(vault) = vault {
            let account = account.clone();
            let deleted = tokio::task::spawn_blocking(move || {
                confab_vault::SecretStore::delete(
                    vault.as_ref(),
                    &account,
                    adapters::STORE_KEY_ENTRY,
                )
            })
            .await;
            if !matches!(deleted, Ok(Ok(_))) {
                tracing::warn!("could not delete the local store's key from the vault");
                return Err("its key could not be deleted from the vault".to_owned());
            }
        }
        tracing::info!("removed the account's local data");
        Ok(())
    }

    /// Wipes the refresh token stored for `account` without a running session, then revokes
    /// it from memory at the provider that issued it (discovery included, [`REVOKE_TIMEOUT`] at
    /// most). The wipe comes first, after noting the token in the vault's pending revocations:
    /// a provider that cannot be reached, or an app quit meanwhile, leaves the token noted there
    /// (and retried at the next start), never in the account's slot.
    async fn sign_out_stored(self: &Arc<Self>, account: AccountId) -> Result<()> {
        let (vault, pending) = {
            let st = self.state();
            (st.vault.clone(), st.pending.clone())
        };
        let Some(vault) = vault else {
            return Err(Error::VaultLocked);
        };
        let issuer = account.issuer.clone();
        // The chat token tier's refresh token (ChatSDK) goes with the account; without a
        // running chat it cannot be invalidated at the backend, only forgotten.
        if let Err(e) = VaultSlot::chat(vault.clone(), account.clone())
            .delete()
            .await
        {
            tracing::warn!("could not delete the chat refresh token: {e}");
        }
        let slot = VaultSlot::new(vault, account);
        let stored = slot
            .load()
            .await
            .map(|t| t.map(|t| SecretString::new(t.expose_secret().to_owned())));
        if let (Ok(Some(token)), Some(pending)) = (&stored, &pending) {
            if let Err(e) = pending.add(&issuer, token).await {
                tracing::warn!("could not note the revocation for a retry: {e}");
            }
        }
        let wiped = slot.delete().await;
        wiped.map_err(|e| Error::Session(confab_session::Error::Store(e)))?;
        let token = match stored {
            Ok(Some(token)) => token,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!("the stored refresh token could not be read to revoke it: {e}");
                return Ok(());
            }
        };
        self.revoke_owed(&issuer, &token, pending.as_ref()).await;
        Ok(())
    }

    /// Revokes `token` of `issuer` ([`REVOKE_TIMEOUT`] at most, discovery included) and settles
    /// its entry in `pending`: forgotten once revoked or refused for good, kept when the provider
    /// could not be reached or answered with a transient failure.
    async fn revoke_owed(
        &self,
        issuer: &str,
        token: &SecretString,
        pending: Option<&PendingRevocations>,
    ) {
        let attempt = self.revoke_at(issuer, token);
        let outcome = match tokio::time::timeout(REVOKE_TIMEOUT, attempt).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                tracing::warn!(code = %e.code(), "could not reach the provider to revoke a refresh token: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!("revoking a refresh token timed out");
                return;
            }
        };
        match &outcome {
            Ok(()) => tracing::info!("revoked a refresh token no longer stored"),
            Err(e) => tracing::warn!("revoking a refresh token failed: {e}"),
        }
        // A vault reset meanwhile leaves the old list alone (its store is gone).
        let current = self.state().pending.clone();
        if let Some(pending) = pending.filter(|p| current.is_some_and(|c| c.same_list(p))) {
            pending.settle(token, &outcome).await;
        }
    }

    /// Retries the revocations an earlier run could not finish (the provider was unreachable or
    /// failed), once the vault is open; drops those older than
    /// [`crate::revocations::MAX_AGE`].
    async fn retry_pending_revocations(self: Arc<Self>) {
        let Some(pending) = self.state().pending.clone() else {
            return;
        };
        let due = match pending.due().await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("could not read the pending revocations: {e}");
                return;
            }
        };
        if due.is_empty() {
            return;
        }
        tracing::info!(
            count = due.len(),
            "retrying revocations left from an earlier run"
        );
        for owed in due {
            self.revoke_owed(&owed.issuer, &owed.token, Some(&pending))
                .await;
        }
    }

    /// How many refresh-token revocations are still owed (noted in the vault after a failed
    /// attempt, retried at the next start); `None` while the vault is not open. A count only,
    /// for diagnostics and tests.
    pub async fn pending_revocations(&self) -> Option<usize> {
        let pending = self.state().pending.clone()?;
        pending.len().await.ok()
    }

    /// The OS reported resume or the window came back: re-check the refresh schedule now.
    pub fn notify_resume(&self) {
        let st = self.state();
        for (_, running) in st.sessions.iter() {
            if let Some(manager) = &running.manager {
                manager.notify_resume();
            }
        }
    }
}

/// Whether a refused redirect was not for the sign-in in progress (as opposed to that sign-in's
/// own outcome: expired, denied, a failed exchange).
fn is_stray(code: Code) -> bool {
    matches!(
        code,
        Code::MalformedCallback
            | Code::RedirectMismatch
            | Code::NoPendingLogin
            | Code::StateMismatch
            | Code::CallbackReplayed
    )
}

/// Runs a vault open (Argon2id / Stronghold: blocking, CPU-heavy) on the blocking pool.
async fn open_blocking(
    path: PathBuf,
    source: KeySource,
) -> std::result::Result<StrongholdStore, confab_vault::Error> {
    tokio::task::spawn_blocking(move || StrongholdStore::open_or_create(path, &source))
        .await
        .unwrap_or_else(|e| {
            Err(confab_vault::Error::Stronghold(format!(
                "vault task failed: {e}"
            )))
        })
}

/// Wall-clock milliseconds of a monotonic deadline, for the UI's countdown.
fn deadline_millis(deadline: Instant) -> u64 {
    unix_millis(SystemTime::now() + deadline.saturating_duration_since(Instant::now()))
}
