//! `SignInFlow`: drives one sign-in at a time — opens the browser, waits for the redirect (deep
//! link or loopback), completes it with confab-auth, and reports progress to the UI.
//!
//! Tokens stay here, in Rust memory, until the session layer takes them over; the UI only ever
//! receives [`UiEvent`]s.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use confab_auth::{AuthClient, AuthConfig, LoopbackListener, RedirectTarget, TokenSet};
use confab_config::AppConfig;
use tauri::async_runtime::JoinHandle;
use url::Url;

use crate::error::{Error, Result};
use crate::events::{UiEvent, UserView};

/// How the redirect comes back to this app, decided once at start (see `desktop.rs`/`mobile.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectPlan {
    /// Private-use scheme delivered as a deep link.
    Scheme,
    /// Loopback listener on 127.0.0.1 with an ephemeral port.
    Loopback,
}

/// Opens the authorization URL in the system browser (or, in debug builds, the E2E test hook).
pub type BrowserOpener = Arc<dyn Fn(&Url) -> std::result::Result<(), String> + Send + Sync>;

/// Receives UI events; returns `false` when the receiver is gone (then it is dropped).
pub type Subscriber = Box<dyn Fn(UiEvent) -> bool + Send + Sync>;

/// The app's sign-in state machine, managed by Tauri and shared by all commands.
pub struct SignInFlow {
    config: std::result::Result<AppConfig, String>,
    plan: RedirectPlan,
    open_browser: BrowserOpener,
    /// Discovered lazily (the provider may be down at start); a failed discovery is retried.
    client: tokio::sync::Mutex<Option<Arc<AuthClient>>>,
    state: Mutex<State>,
    subscribers: Mutex<Vec<Subscriber>>,
}

struct State {
    /// The last status event, replayed to new subscribers.
    view: UiEvent,
    /// Increases with every sign-in attempt; stale timers and listeners check it.
    attempt: u64,
    /// The timeout timer and loopback listener of the current attempt.
    tasks: Vec<JoinHandle<()>>,
    user: Option<UserView>,
    /// Held in memory only until the vault/session layer lands. Never serialized, never logged.
    tokens: Option<TokenSet>,
}

impl SignInFlow {
    /// A flow for `config` (or the config error to show), redirecting per `plan`.
    pub fn new(
        config: std::result::Result<AppConfig, String>,
        plan: RedirectPlan,
        open_browser: BrowserOpener,
    ) -> Arc<Self> {
        let view = match &config {
            Ok(_) => UiEvent::SignedOut {
                reason: "not-signed-in",
            },
            Err(message) => UiEvent::failed(&Error::Config(message.clone())),
        };
        Arc::new(Self {
            config,
            plan,
            open_browser,
            client: tokio::sync::Mutex::new(None),
            state: Mutex::new(State {
                view,
                attempt: 0,
                tasks: Vec::new(),
                user: None,
                tokens: None,
            }),
            subscribers: Mutex::new(Vec::new()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than losing the app, so keep going with the inner value.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a UI subscriber and immediately sends it the current status.
    pub fn subscribe(&self, subscriber: Subscriber) {
        let view = self.state().view.clone();
        if subscriber(view) {
            self.subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(subscriber);
        }
    }

    /// Records `event` as the current status and sends it to every subscriber.
    fn publish(&self, event: UiEvent) {
        self.state().view = event.clone();
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

    /// Who is signed in, if anyone.
    pub fn current_user(&self) -> Option<UserView> {
        self.state().user.clone()
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
                resource: Some(config.chat_resource.clone()),
                login_timeout: config.login_timeout,
                extra_auth_params,
                ..AuthConfig::new(config.issuer.clone(), config.client_id.clone())
            })
            .await?,
        );
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Starts a sign-in (replacing any pending one): opens the browser and waits for the redirect.
    pub async fn sign_in(self: &Arc<Self>) -> Result<()> {
        self.start().await.map_err(|e| self.fail(e))
    }

    async fn start(self: &Arc<Self>) -> Result<()> {
        let client = self.client().await?;
        let config = self.config.as_ref().map_err(|m| Error::Config(m.clone()))?;
        let attempt = {
            let mut st = self.state();
            st.tasks.drain(..).for_each(|t| t.abort());
            st.attempt += 1;
            st.attempt
        };
        let (target, listener) = match self.plan {
            RedirectPlan::Scheme => (
                RedirectTarget::private_use(&config.scheme_redirect_uri())?,
                None,
            ),
            RedirectPlan::Loopback => {
                let listener = LoopbackListener::bind().await?;
                (listener.redirect_target(), Some(listener))
            }
        };
        let redirect = match self.plan {
            RedirectPlan::Scheme => "private-use-scheme",
            RedirectPlan::Loopback => "loopback",
        };
        let login = client.begin(target)?;
        if let Err(e) = (self.open_browser)(&login.authorize_url) {
            client.cancel();
            return Err(Error::Browser(e));
        }
        let deadline = login.deadline;

        let mut tasks = Vec::new();
        let this = self.clone();
        tasks.push(tauri::async_runtime::spawn(async move {
            this.expire_at(attempt, deadline).await;
        }));
        if let Some(listener) = listener {
            let this = self.clone();
            tasks.push(tauri::async_runtime::spawn(async move {
                match listener.wait_until(deadline).await {
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
            deadline: unix_millis(deadline),
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
    pub async fn complete(&self, callback_url: &str) {
        let client = self.client.lock().await.clone();
        let signed_in_already = self.state().user.is_some();
        let Some(client) = client else {
            // Nothing was started in this process (e.g. the app was launched by a stale link).
            if !signed_in_already {
                self.fail(confab_auth::Error::NoPendingLogin.into());
            }
            return;
        };
        match client.complete(callback_url).await {
            Ok(signed_in) => {
                let user = UserView::from(&signed_in.user);
                {
                    let mut st = self.state();
                    st.tasks.drain(..).for_each(|t| t.abort());
                    st.user = Some(user.clone());
                    st.tokens = Some(signed_in.tokens);
                }
                tracing::info!("signed in");
                self.publish(UiEvent::SignedIn { user });
            }
            Err(e) => {
                if client.pending().is_none() {
                    self.state().tasks.drain(..).for_each(|t| t.abort());
                }
                if signed_in_already {
                    // Rejected (no token request was made); keep showing the signed-in user.
                    tracing::warn!(code = %Error::from(e).code(), "ignored a stray sign-in response");
                } else {
                    self.fail(e.into());
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
        if self.state().user.is_none() {
            self.publish(UiEvent::SignedOut {
                reason: "cancelled",
            });
        }
        was_pending
    }

    /// Whether tokens are held (for diagnostics; never exposes them).
    pub fn has_tokens(&self) -> bool {
        self.state().tokens.is_some()
    }
}

/// Wall-clock milliseconds of a monotonic deadline, for the UI's countdown.
fn unix_millis(deadline: Instant) -> u64 {
    let wall = SystemTime::now() + deadline.saturating_duration_since(Instant::now());
    wall.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
