//! [`TokenManager`]: the access token in memory, the refresh token in the store, and the
//! background task that keeps them fresh.
//!
//! # Rotation safety
//!
//! Each refresh runs in this order, inside one critical section (the `secrets` lock):
//!
//! 1. read the refresh token `R1` from memory (it equals the stored one);
//! 2. send it to the token endpoint, which answers with `A2` and a rotated `R2`;
//! 3. **save `R2` to the store** (durable when `save` returns);
//! 4. only then replace `R1` in memory (dropping it zeroizes it) and publish `A2`.
//!
//! A crash before step 2 leaves `R1` stored and unused: the restart uses it, fine. A crash after
//! step 3 leaves `R2` stored: the restart uses `R2`, fine; `A2` was never handed out before `R2`
//! was safe, so no caller can hold a token whose refresh token is lost. The store replaces
//! atomically, so a crash during step 3 leaves either `R1` or `R2`, never a torn value.
//!
//! The residual window is between the moment the provider commits the rotation (during step 2)
//! and the end of step 3: a crash there leaves `R1` stored although the provider has already
//! spent it, and the restart presents `R1` again; a provider with reuse detection then revokes
//! the grant and the user has to sign in again. No client can close that window alone (the new
//! token exists only in the response). It is kept as short as possible: the save is the very first
//! thing done with a response, nothing else (no event, no log write, no publish) comes before it,
//! and the store's write is a single atomic replace (the one check before it, in memory, is that a
//! new ID token names the session's user, OpenID Connect Core §12.2; if it names another, nothing
//! of the response is kept and the session ends). If the save fails, `R2` is kept in memory,
//! the access token is still published (the old `R1` is dead either way), and the save is retried
//! before the next refresh.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use serde_json::json;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;
use url::Url;

use crate::clock::{SystemWallClock, WallClock};
use crate::config::SessionConfig;
use crate::endpoint::{EndpointError, TokenEndpoint, Tokens};
use crate::events::{format_time, AuthLog, SessionEvent, SignOutReason, User};
use crate::secret::Secret;
use crate::store::RefreshTokenStore;
use crate::{Error, Result};

/// Shortest time between two scheduled refreshes, whatever lifetime the server claims.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(500);
/// Longest access-token lifetime believed: a larger one (an endpoint answering `expires_in` of
/// 2^63 s) would overflow the clock; it is taken as this.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// An access token handed to callers. `Debug` prints `[redacted]`; zeroized when the last
/// reference is dropped.
pub struct AccessToken {
    value: Secret,
    expires_at: SystemTime,
    usable_until: SystemTime,
    refresh_at: SystemTime,
}

impl AccessToken {
    /// The bearer token. Use it only for the request that needs it; never log it.
    pub fn expose_secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// When the token expires (as measured by the manager's clock).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"[redacted]")
            .field("expires_at", &format_time(self.expires_at))
            .finish()
    }
}

/// What the manager is doing; watch it with [`TokenManager::phase`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// A valid token is held; the next refresh is scheduled.
    Active,
    /// A token request is in flight.
    Refreshing,
    /// The last refresh failed temporarily; the next attempt is at `next_try`.
    Backoff {
        /// Failed attempts so far.
        attempt: u32,
        /// When the next attempt happens.
        next_try: SystemTime,
    },
    /// No session.
    SignedOut(SignOutReason),
}

struct Secrets {
    refresh: Option<Secret>,
    id_token: Option<Secret>,
    /// The in-memory refresh token could not be saved yet (save is retried before each refresh).
    unsaved: bool,
}

struct Shared {
    clock: Arc<dyn WallClock>,
    config: SessionConfig,
    endpoint: Arc<dyn TokenEndpoint>,
    store: Arc<dyn RefreshTokenStore>,
    current: ArcSwapOption<AccessToken>,
    phase: watch::Sender<Phase>,
    wake: Notify,
    urgent: AtomicBool,
    force: AtomicBool,
    retry_now: AtomicBool,
    stop: AtomicBool,
    announced: AtomicBool,
    events: broadcast::Sender<SessionEvent>,
    log: Option<AuthLog>,
    user: Mutex<User>,
    /// Held for the whole of a refresh, so sign-out waits for one in flight.
    secrets: tokio::sync::Mutex<Secrets>,
}

enum Outcome {
    Refreshed,
    Transient {
        retry_after: Option<Duration>,
        reason: String,
    },
    Ended,
}

/// Builds a [`TokenManager`] by silent restore or by sign-in handoff.
pub struct TokenManagerBuilder {
    endpoint: Arc<dyn TokenEndpoint>,
    store: Arc<dyn RefreshTokenStore>,
    config: SessionConfig,
    clock: Arc<dyn WallClock>,
    events: Option<broadcast::Sender<SessionEvent>>,
    log: Option<AuthLog>,
}

impl TokenManagerBuilder {
    /// Timing parameters (default: [`SessionConfig::default`]).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Wall clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn WallClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Event channel; pass one to receive the events sent while the manager is being built
    /// (`SignedIn`, or `SignedOut` when a restore fails).
    pub fn events(mut self, events: broadcast::Sender<SessionEvent>) -> Self {
        self.events = Some(events);
        self
    }

    /// Local auth event log (JSON lines, no secrets).
    pub fn auth_log(mut self, log: AuthLog) -> Self {
        self.log = Some(log);
        self
    }

    fn shared(self, user: User, refresh: Option<Secret>, id_token: Option<Secret>) -> Arc<Shared> {
        let events = self.events.unwrap_or_else(|| broadcast::channel(64).0);
        Arc::new(Shared {
            clock: self.clock,
            config: self.config,
            endpoint: self.endpoint,
            store: self.store,
            current: ArcSwapOption::empty(),
            phase: watch::Sender::new(Phase::Refreshing),
            wake: Notify::new(),
            urgent: AtomicBool::new(false),
            force: AtomicBool::new(false),
            retry_now: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            events,
            log: self.log,
            user: Mutex::new(user),
            secrets: tokio::sync::Mutex::new(Secrets {
                refresh,
                id_token,
                unsaved: false,
            }),
        })
    }

    /// Silent restore: signs `user` in with the refresh token in the store, without a browser.
    ///
    /// - no stored token: `Err(Error::SignedOut(NoStoredSession))`;
    /// - the provider rejects it (after re-reading the store once): the entry is wiped and the
    ///   result is `Err(Error::SignedOut(SessionEnded))`;
    /// - transient failure (offline at start): `Ok`, in [`Phase::Backoff`]; `SignedIn` follows
    ///   the first successful refresh.
    pub async fn restore(self, user: User) -> Result<TokenManager> {
        let stored = self.store.load().await.map_err(Error::Store)?;
        let shared = self.shared(user, stored, None);
        if shared.secrets.lock().await.refresh.is_none() {
            shared.end(SignOutReason::NoStoredSession);
            return Err(Error::SignedOut(SignOutReason::NoStoredSession));
        }
        shared.log("restore_started", json!({}));
        match shared.refresh_once().await {
            Outcome::Refreshed => Ok(TokenManager::spawn(shared, None)),
            Outcome::Ended => Err(Error::SignedOut(shared.reason())),
            Outcome::Transient {
                retry_after,
                reason,
            } => {
                let next = shared.schedule_retry(1, retry_after, &reason);
                Ok(TokenManager::spawn(shared, Some((1, next))))
            }
        }
    }

    /// Sign-in handoff: takes the tokens of a completed login (confab-auth's `SignedIn`),
    /// saves the refresh token durably, then publishes the access token and starts the
    /// background refresh.
    pub async fn sign_in(self, user: User, tokens: Tokens) -> Result<TokenManager> {
        let Tokens {
            access_token,
            lifetime,
            refresh_token,
            id_token,
            user: fresh_user,
        } = tokens;
        let refresh = refresh_token.ok_or(Error::NoRefreshToken)?;
        let started = self.clock.now();
        self.store.save(&refresh).await.map_err(Error::Store)?;
        let shared = self.shared(fresh_user.unwrap_or(user), Some(refresh), id_token);
        shared.publish(access_token, lifetime, started);
        Ok(TokenManager::spawn(shared, None))
    }
}

/// Owns the session's tokens. Cheap to clone; all clones share one session and one background
/// task, which stops when the last clone is dropped or on [`TokenManager::sign_out`].
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(mut task) = self.task.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("phase", &*self.inner.shared.phase.borrow())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Starts building a manager around a token endpoint and a refresh-token store slot.
    pub fn builder(
        endpoint: Arc<dyn TokenEndpoint>,
        store: Arc<dyn RefreshTokenStore>,
    ) -> TokenManagerBuilder {
        TokenManagerBuilder {
            endpoint,
            store,
            config: SessionConfig::default(),
            clock: Arc::new(SystemWallClock),
            events: None,
            log: None,
        }
    }

    fn spawn(shared: Arc<Shared>, backoff: Option<(u32, SystemTime)>) -> Self {
        let task = tokio::spawn(Arc::clone(&shared).run(backoff));
        Self {
            inner: Arc::new(Inner {
                shared,
                task: Mutex::new(Some(task)),
            }),
        }
    }

    /// The current access token. Returns at once while the token is valid (a lock-free read
    /// and one clock read). When it has expired, waits for the single shared refresh (at most
    /// `wait_timeout`), or fails fast with [`Error::Refreshing`] while retries back off, or with
    /// [`Error::SignedOut`] when there is no session.
    pub async fn access_token(&self) -> Result<Arc<AccessToken>> {
        let shared = &self.inner.shared;
        if let Some(token) = shared.valid_token(shared.clock.now()) {
            return Ok(token);
        }
        self.slow_path().await
    }

    /// The current access token if it is valid right now, without waiting. An expired token
    /// makes the background task refresh at once.
    pub fn try_access_token(&self) -> Result<Arc<AccessToken>> {
        let shared = &self.inner.shared;
        if let Some(token) = shared.valid_token(shared.clock.now()) {
            return Ok(token);
        }
        let phase = shared.phase.borrow().clone();
        match phase {
            Phase::SignedOut(reason) => Err(Error::SignedOut(reason)),
            Phase::Backoff { next_try, .. } => Err(Error::Refreshing {
                next_try: Some(next_try),
            }),
            Phase::Active | Phase::Refreshing => {
                shared.kick();
                Err(Error::Refreshing { next_try: None })
            }
        }
    }

    #[cold]
    async fn slow_path(&self) -> Result<Arc<AccessToken>> {
        let shared = &self.inner.shared;
        let deadline = tokio::time::Instant::now() + shared.config.wait_timeout;
        let mut phase = shared.phase.subscribe();
        loop {
            // Mark the phase seen *before* looking at the token: the task publishes the token
            // and then changes the phase, so a publish after this point wakes `changed()`.
            let seen = phase.borrow_and_update().clone();
            if let Some(token) = shared.valid_token(shared.clock.now()) {
                return Ok(token);
            }
            match seen {
                Phase::SignedOut(reason) => return Err(Error::SignedOut(reason)),
                Phase::Backoff { next_try, .. } => {
                    return Err(Error::Refreshing {
                        next_try: Some(next_try),
                    })
                }
                Phase::Active | Phase::Refreshing => shared.kick(),
            }
            match tokio::time::timeout_at(deadline, phase.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(Error::Refreshing { next_try: None }),
            }
        }
    }

    /// Asks for a new access token because a server rejected `rejected` (e.g. the chat server
    /// says it is expired or invalid). Concurrent calls share one refresh; if the token was
    /// already replaced, the newer one is returned without a request.
    pub async fn refresh_rejected(&self, rejected: &Arc<AccessToken>) -> Result<Arc<AccessToken>> {
        let shared = &self.inner.shared;
        let mut phase = shared.phase.subscribe();
        phase.borrow_and_update();
        let same = shared
            .current
            .load()
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, rejected));
        if same {
            shared.current.store(None);
            shared.force.store(true, Ordering::SeqCst);
            shared.wake.notify_one();
        }
        self.access_token().await
    }

    /// The app resumed from sleep: re-check the schedule against the wall clock now.
    pub fn notify_resume(&self) {
        self.inner.shared.wake.notify_one();
    }

    /// The network changed (e.g. came back): re-check now and skip a pending retry delay.
    pub fn notify_network_change(&self) {
        self.inner.shared.retry_now.store(true, Ordering::SeqCst);
        self.inner.shared.wake.notify_one();
    }

    /// Subscribes to session events.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Watches the manager's phase.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.inner.shared.phase.subscribe()
    }

    /// The signed-in user (also after sign-out: the last one).
    pub fn user(&self) -> User {
        self.inner.shared.user()
    }

    /// Signs out: stops the background refresh (waiting for one in flight), revokes the refresh
    /// token (RFC 7009; a failure is logged and does not block), wipes the store entry and the
    /// tokens in memory, and returns the provider's end-session URL to open in the browser.
    /// A failure to wipe the store is returned after everything else has been done.
    pub async fn sign_out(&self) -> Result<Option<Url>> {
        let shared = &self.inner.shared;
        shared.stop.store(true, Ordering::SeqCst);
        shared.wake.notify_one();
        let (refresh, id_token) = {
            let mut secrets = shared.secrets.lock().await;
            (secrets.refresh.take(), secrets.id_token.take())
        };
        if let Ok(mut task) = self.inner.task.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
        shared.current.store(None);
        if let Some(refresh) = &refresh {
            let revoke = shared.endpoint.revoke(refresh);
            match tokio::time::timeout(shared.config.request_timeout, revoke).await {
                Ok(Ok(())) => shared.log("revoked", json!({})),
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "revoking the refresh token failed");
                    shared.log("revoke_failed", json!({ "error": err.to_string() }));
                }
                Err(_) => {
                    tracing::warn!("revoking the refresh token timed out");
                    shared.log("revoke_failed", json!({ "error": "timed out" }));
                }
            }
        }
        let wiped = shared.store.delete().await;
        let url = shared.endpoint.end_session_url(id_token.as_ref());
        shared.end(SignOutReason::UserRequested);
        wiped.map_err(Error::Store)?;
        Ok(url)
    }
}

impl Shared {
    #[inline]
    fn valid_token(&self, now: SystemTime) -> Option<Arc<AccessToken>> {
        let guard = self.current.load();
        match guard.as_ref() {
            Some(token) if now < token.usable_until => Some(Arc::clone(token)),
            _ => None,
        }
    }

    fn kick(&self) {
        if !self.urgent.swap(true, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    fn user(&self) -> User {
        match self.user.lock() {
            Ok(user) => user.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn reason(&self) -> SignOutReason {
        match &*self.phase.borrow() {
            Phase::SignedOut(reason) => reason.clone(),
            _ => SignOutReason::SessionEnded,
        }
    }

    fn log(&self, event: &str, fields: serde_json::Value) {
        if let Some(log) = &self.log {
            log.record(self.clock.now(), event, fields);
        }
    }

    fn emit(&self, event: SessionEvent) {
        // No receivers is fine: nobody is listening yet.
        let _ = self.events.send(event);
    }

    /// Publishes a new access token: memory first, then the phase change that wakes waiters.
    fn publish(&self, value: Secret, lifetime: Duration, started: SystemTime) {
        let lifetime = lifetime.min(MAX_TOKEN_LIFETIME);
        let expires_at = started + lifetime;
        let usable_until = expires_at - self.config.margin(lifetime);
        let refresh_at = (expires_at - self.config.refresh_point(lifetime))
            .min(usable_until)
            // A server answering with a (near) zero lifetime must not make us hammer it.
            .max(started + MIN_REFRESH_INTERVAL);
        let token = AccessToken {
            value,
            expires_at,
            usable_until,
            refresh_at,
        };
        self.current.store(Some(Arc::new(token)));
        self.phase.send_replace(Phase::Active);
        if !self.announced.swap(true, Ordering::SeqCst) {
            let user = self.user();
            self.log(
                "signed_in",
                json!({ "issuer": user.issuer, "subject": user.subject }),
            );
            self.emit(SessionEvent::SignedIn { user });
        }
        self.log(
            "refreshed",
            json!({ "expires_at": format_time(expires_at) }),
        );
        self.emit(SessionEvent::Refreshed { expires_at });
    }

    fn end(&self, reason: SignOutReason) {
        self.current.store(None);
        self.stop.store(true, Ordering::SeqCst);
        self.log(
            "signed_out",
            json!({ "reason": reason.code(), "message": reason.message() }),
        );
        self.phase.send_replace(Phase::SignedOut(reason.clone()));
        self.emit(SessionEvent::SignedOut { reason });
    }

    fn schedule_retry(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        reason: &str,
    ) -> SystemTime {
        let delay = self.config.backoff_delay(attempt, retry_after);
        let next_try = self.clock.now() + delay;
        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, %reason, "token refresh failed, retrying");
        self.log(
            "refresh_failed",
            json!({ "attempt": attempt, "error": reason, "next_try": format_time(next_try) }),
        );
        self.phase
            .send_replace(Phase::Backoff { attempt, next_try });
        self.emit(SessionEvent::Retrying { attempt, next_try });
        next_try
    }

    /// One refresh, with the rotation-safe ordering described in the module docs.
    async fn refresh_once(&self) -> Outcome {
        let mut secrets = self.secrets.lock().await;
        if self.stop.load(Ordering::SeqCst) {
            return Outcome::Ended;
        }
        if secrets.unsaved {
            if let Some(refresh) = &secrets.refresh {
                if let Err(err) = self.store.save(refresh).await {
                    return Outcome::Transient {
                        retry_after: None,
                        reason: format!("saving the refresh token failed: {err}"),
                    };
                }
            }
            secrets.unsaved = false;
        }
        let Some(refresh) = secrets.refresh.clone() else {
            self.end(SignOutReason::NoStoredSession);
            return Outcome::Ended;
        };
        self.phase.send_replace(Phase::Refreshing);
        let started = self.clock.now();
        match self.request(&refresh).await {
            Ok(tokens) => self.accept(&mut secrets, tokens, started).await,
            Err(EndpointError::InvalidGrant) => {
                // Another process (a second instance) may have rotated the token: if the store
                // holds a different one, try that once before giving up.
                let stored = self.store.load().await;
                if let Ok(Some(stored)) = &stored {
                    if *stored != refresh {
                        self.log("invalid_grant_retry_with_stored", json!({}));
                        secrets.refresh = Some(stored.clone());
                        let started = self.clock.now();
                        match self.request(stored).await {
                            Ok(tokens) => return self.accept(&mut secrets, tokens, started).await,
                            Err(EndpointError::InvalidGrant) => {}
                            Err(other) => return transient(other),
                        }
                    }
                }
                self.log("invalid_grant", json!({}));
                // Wipe the entry unless it changed meanwhile (then it is not ours to delete).
                let current = secrets.refresh.take();
                let unchanged = match self.store.load().await {
                    Ok(Some(now_stored)) => Some(&now_stored) == current.as_ref(),
                    Ok(None) => false,
                    Err(_) => true,
                };
                if unchanged {
                    if let Err(err) = self.store.delete().await {
                        tracing::warn!(error = %err, "could not wipe the rejected refresh token");
                    }
                }
                secrets.id_token = None;
                self.end(SignOutReason::SessionEnded);
                Outcome::Ended
            }
            Err(other) => transient(other),
        }
    }

    async fn request(&self, refresh: &Secret) -> Result<Tokens, EndpointError> {
        match tokio::time::timeout(self.config.request_timeout, self.endpoint.refresh(refresh))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(EndpointError::Transient {
                retry_after: None,
                reason: "token request timed out".into(),
            }),
        }
    }

    async fn accept(&self, secrets: &mut Secrets, tokens: Tokens, started: SystemTime) -> Outcome {
        let Tokens {
            access_token,
            lifetime,
            refresh_token,
            id_token,
            user,
        } = tokens;
        if let Some(fresh) = &user {
            // OpenID Connect Core §12.2: a refreshed ID token must name the same user (`iss`
            // and `sub`) as the one the session began with. If not, nothing of this response
            // is kept (the access token is never handed out, the rotated refresh token never
            // stored) and the session ends: the grant no longer stands for this user.
            let same = self
                .user
                .lock()
                .map(|u| u.account_id() == fresh.account_id())
                .unwrap_or(false);
            if !same {
                tracing::error!("a refreshed ID token names another user; ending the session");
                self.log("subject_changed", json!({}));
                secrets.refresh = None;
                secrets.id_token = None;
                if let Err(err) = self.store.delete().await {
                    tracing::warn!(error = %err, "could not wipe the stored refresh token");
                }
                self.end(SignOutReason::SessionEnded);
                return Outcome::Ended;
            }
        }
        if let Some(rotated) = refresh_token {
            // Durable first (see module docs); a couple of quick retries for I/O hiccups.
            let mut saved = Err(String::new());
            for _ in 0..3 {
                saved = self.store.save(&rotated).await;
                if saved.is_ok() {
                    break;
                }
            }
            if let Err(err) = saved {
                tracing::error!(error = %err, "could not save the rotated refresh token; keeping it in memory");
                self.log("store_failed", json!({ "error": err }));
                secrets.unsaved = true;
            } else {
                secrets.unsaved = false;
            }
            secrets.refresh = Some(rotated);
        }
        if let Some(id_token) = id_token {
            secrets.id_token = Some(id_token);
        }
        if let Some(user) = user {
            if let Ok(mut slot) = self.user.lock() {
                *slot = user;
            }
        }
        self.publish(access_token, lifetime, started);
        Outcome::Refreshed
    }

    /// The background task: refresh when due, back off on transient failures, re-check the wall
    /// clock at least every `recheck_interval`.
    async fn run(self: Arc<Self>, backoff: Option<(u32, SystemTime)>) {
        let (mut attempt, mut next_try) = match backoff {
            Some((attempt, next_try)) => (attempt, Some(next_try)),
            None => (0, None),
        };
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            self.urgent.store(false, Ordering::SeqCst);
            let now = self.clock.now();
            let token = self.current.load_full();
            let forced = self.force.swap(false, Ordering::SeqCst);
            let retry_now = self.retry_now.swap(false, Ordering::SeqCst);
            let due = match (next_try, &token) {
                (Some(at), _) => at,
                (None, Some(token)) => token.refresh_at,
                (None, None) => now,
            };
            if forced || now >= due || (retry_now && next_try.is_some()) {
                match self.refresh_once().await {
                    Outcome::Refreshed => {
                        attempt = 0;
                        next_try = None;
                    }
                    Outcome::Ended => return,
                    Outcome::Transient {
                        retry_after,
                        reason,
                    } => {
                        attempt = attempt.saturating_add(1);
                        next_try = Some(self.schedule_retry(attempt, retry_after, &reason));
                    }
                }
                continue;
            }
            let wait = due
                .duration_since(now)
                .unwrap_or_default()
                .min(self.config.recheck_interval);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

fn transient(err: EndpointError) -> Outcome {
    match err {
        EndpointError::Transient {
            retry_after,
            reason,
        } => Outcome::Transient {
            retry_after,
            reason,
        },
        EndpointError::Fatal(reason) => {
            tracing::error!(%reason, "token endpoint error");
            Outcome::Transient {
                retry_after: None,
                reason,
            }
        }
        EndpointError::InvalidGrant => Outcome::Transient {
            retry_after: None,
            reason: "invalid_grant".into(),
        },
    }
}
