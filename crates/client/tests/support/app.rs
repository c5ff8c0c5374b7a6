//! One app instance's sign-in flow over a temporary data dir, with a fake OS that records the
//! URLs it is asked to open (the test plays the browser with them).
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_client::platform::{AppPaths, KeyValueStore, MemoryStore, Platform};
use confab_client::{Core, RedirectPlan, SignInFlow, UiEvent};
use confab_config::{AppConfig, CredentialProfile, VaultKeyMode};
use confab_testkit::{
    headless_login, headless_login_as, Idp, CHAT_RESOURCE, CLIENT_ID, PRIVATE_USE_REDIRECT_URI,
};
use confab_vault::{AccountId, KeySource, SecretStore, SecretString, StrongholdStore};
use tokio::sync::watch;
use url::Url;

pub const WAIT: Duration = Duration::from_secs(30);
pub const PASSPHRASE: &str = "correct horse battery staple";

/// The OS as far as the flow is concerned: URLs it opens are recorded (the test plays the
/// browser with them), notifications are dropped, stores live in memory.
pub struct FakeOs {
    opened: watch::Sender<Vec<Url>>,
    notified: watch::Sender<Vec<(String, String)>>,
    /// When set, opening a URL fails the way launchers do: with a text that quotes the URL.
    fail_open: Arc<AtomicBool>,
}

impl Platform for FakeOs {
    fn open_url(&self, url: &Url) -> Result<(), String> {
        self.opened.send_modify(|v| v.push(url.clone()));
        if self.fail_open.load(Ordering::SeqCst) {
            return Err(format!(
                "xdg-open: no handler for \"{url}\" (exit status 4)"
            ));
        }
        Ok(())
    }
    fn notify(&self, title: &str, body: &str) {
        self.notified
            .send_modify(|v| v.push((title.to_owned(), body.to_owned())));
    }
    fn open_store(&self, path: &std::path::Path) -> Result<Arc<dyn KeyValueStore>, String> {
        Ok(Arc::new(MemoryStore::load(path)))
    }
}

/// One app instance over a data dir: its flow, what it opened, what it told the UI.
pub struct App {
    pub flow: Arc<SignInFlow>,
    /// The whole core, when started with [`start_core`] (the chat hub runs with the flow).
    pub core: Option<Arc<Core>>,
    /// Notifications shown, as (title, body).
    pub notified: watch::Receiver<Vec<(String, String)>>,
    /// Makes the fake browser launcher fail (with the URL in its error text).
    pub fail_open: Arc<AtomicBool>,
    pub opened: watch::Receiver<Vec<Url>>,
    pub events: watch::Receiver<Vec<UiEvent>>,
    pub data_dir: std::path::PathBuf,
}

pub fn config(idp: &Idp) -> AppConfig {
    AppConfig {
        issuer: idp.issuer(),
        client_id: CLIENT_ID.to_owned(),
        chat_resource: CHAT_RESOURCE.to_owned(),
        redirect_scheme: PRIVATE_USE_REDIRECT_URI
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned(),
        login_hint: Some("alice".to_owned()),
        vault_key: VaultKeyMode::Passphrase,
        ..AppConfig::default()
    }
}

pub fn start_app(idp: &Idp, dir: &std::path::Path) -> App {
    start(config(idp), dir, None, RedirectPlan::Scheme)
}

/// A flow whose workspace signs in with a password at the SimpleJWT backend `backend` (the
/// Django test backend's base URL).
pub fn start_password_app(backend: &Url, dir: &std::path::Path) -> App {
    start(password_config(backend), dir, None, RedirectPlan::Scheme)
}

/// The password profile at `backend` (passphrase vault).
pub fn password_config(backend: &Url) -> AppConfig {
    AppConfig {
        credential: CredentialProfile::Password {
            backend: backend.clone(),
            settings: Box::default(),
        },
        vault_key: VaultKeyMode::Passphrase,
        ..AppConfig::default()
    }
}

/// The whole core under `config`, chatting on `chat_url`.
pub fn start_core_with(config: AppConfig, dir: &std::path::Path, chat_url: &str) -> App {
    start(config, dir, Some(chat_url), RedirectPlan::Scheme)
}

/// A flow redirecting per `plan`, with its configuration changed by `tweak`.
pub fn start_app_with(
    idp: &Idp,
    dir: &std::path::Path,
    plan: RedirectPlan,
    tweak: impl FnOnce(&mut AppConfig),
) -> App {
    let mut app_config = config(idp);
    tweak(&mut app_config);
    start(app_config, dir, None, plan)
}

/// The whole core (sign-in flow and chat hub) with the chat server at `chat_url`.
pub fn start_core(idp: &Idp, dir: &std::path::Path, chat_url: &str) -> App {
    start(config(idp), dir, Some(chat_url), RedirectPlan::Scheme)
}

fn start(
    app_config: AppConfig,
    dir: &std::path::Path,
    chat_url: Option<&str>,
    plan: RedirectPlan,
) -> App {
    let (opened_tx, opened) = watch::channel(Vec::new());
    let (notified_tx, notified) = watch::channel(Vec::new());
    let fail_open = Arc::new(AtomicBool::new(false));
    let platform = Arc::new(FakeOs {
        opened: opened_tx,
        notified: notified_tx,
        fail_open: fail_open.clone(),
    });
    let (_plan_tx, plan) = watch::channel(Some(plan));
    let paths = AppPaths {
        data_dir: dir.join("data"),
        log_dir: dir.join("logs"),
    };
    let data_dir = paths.data_dir.clone();
    std::fs::create_dir_all(&paths.data_dir).expect("data dir");
    let rt = tokio::runtime::Handle::current();
    let (flow, core) = match chat_url {
        None => (
            SignInFlow::new(Ok(app_config), paths, plan, platform, rt),
            None,
        ),
        Some(url) => {
            let mut config = app_config;
            config.chat_url = Url::parse(url).expect("chat URL");
            let core = Arc::new(Core::new(Ok(config), paths, plan, platform, rt));
            (core.flow.clone(), Some(core))
        }
    };
    let (events_tx, events) = watch::channel(Vec::new());
    let events_tx = Mutex::new(events_tx);
    flow.subscribe(Box::new(move |e| {
        if let Ok(tx) = events_tx.lock() {
            tx.send_modify(|v| v.push(e));
        }
        true
    }));
    App {
        flow,
        core,
        notified,
        fail_open,
        opened,
        events,
        data_dir,
    }
}

impl App {
    /// Waits until the latest status event matches `want` (the screen the UI shows).
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&UiEvent) -> bool) -> UiEvent {
        let latest = |v: &Vec<UiEvent>| v.iter().rev().find(|e| !is_progress(e)).is_some_and(&want);
        let found = match tokio::time::timeout(WAIT, self.events.wait_for(latest)).await {
            Ok(Ok(v)) => v.iter().rev().find(|e| !is_progress(e)).cloned(),
            _ => None,
        };
        match found {
            Some(event) => event,
            None => panic!(
                "timed out waiting for {what}; events: {:?}",
                self.events.borrow()
            ),
        }
    }

    /// The screen the UI shows now.
    pub fn screen(&self) -> Option<UiEvent> {
        self.events
            .borrow()
            .iter()
            .rev()
            .find(|e| !is_progress(e))
            .cloned()
    }

    /// Waits for the `n`th URL the flow opened in the browser (1-based).
    pub async fn opened_url(&mut self, n: usize) -> Url {
        match tokio::time::timeout(WAIT, self.opened.wait_for(|v| v.len() >= n)).await {
            Ok(Ok(v)) => v[n - 1].clone(),
            _ => panic!("the flow opened no browser (#{n})"),
        }
    }

    pub fn opened_count(&self) -> usize {
        self.opened.borrow().len()
    }

    pub async fn unlock(&self) {
        self.flow
            .unlock(
                SecretString::new(PASSPHRASE.to_owned()),
                Some(SecretString::new(PASSPHRASE.to_owned())),
            )
            .await
            .expect("the vault unlocks with the passphrase");
    }

    /// Signs in as `user` through the browser (another account beside any signed in).
    pub async fn sign_in_as(&mut self, user: &str) {
        let before = self.opened_count();
        self.flow.sign_in().await.expect("sign-in starts");
        let url = self.opened_url(before + 1).await;
        let callback = headless_login_as(&url, user, PRIVATE_USE_REDIRECT_URI)
            .await
            .expect("the IdP redirects back");
        let signed_in = self.events.borrow().len();
        self.flow.complete(callback.as_str()).await;
        let name = format!("signed-in as {user}");
        let found = tokio::time::timeout(
            WAIT,
            self.events.wait_for(|v| {
                v[signed_in.min(v.len())..]
                    .iter()
                    .any(|e| matches!(e, UiEvent::SignedIn { .. }))
            }),
        )
        .await;
        assert!(found.is_ok(), "timed out waiting for {name}");
    }

    /// Signs in through the browser: sign_in, play the browser, deliver the redirect.
    pub async fn sign_in_via_browser(&mut self) {
        self.flow.sign_in().await.expect("sign-in starts");
        self.wait_for("sign-in-pending", |e| {
            matches!(e, UiEvent::SignInPending { .. })
        })
        .await;
        let url = self.opened_url(self.opened_count().max(1)).await;
        let callback = headless_login(&url, PRIVATE_USE_REDIRECT_URI)
            .await
            .expect("the IdP redirects back");
        self.flow.complete(callback.as_str()).await;
        self.wait_for("signed-in", |e| matches!(e, UiEvent::SignedIn { .. }))
            .await;
    }
}

/// Notes that do not change the screen (progress, refused redirects).
pub fn is_progress(e: &UiEvent) -> bool {
    matches!(
        e,
        UiEvent::SessionRefreshed { .. }
            | UiEvent::SessionRetrying { .. }
            | UiEvent::RedirectRefused { .. }
    )
}

/// The refresh token stored for `subject` in the vault file of `app`, opened afresh.
pub async fn stored_refresh_token(app: &App, idp: &Idp, subject: &str) -> Option<String> {
    stored_refresh_token_of(app, &idp.issuer_str(), subject).await
}

/// The refresh token stored for the account (`issuer`, `subject`) in the vault file of `app`.
pub async fn stored_refresh_token_of(app: &App, issuer: &str, subject: &str) -> Option<String> {
    stored_entry(app, issuer, subject, false).await
}

/// The chat token tier's refresh token (ChatSDK) stored for (`issuer`, `subject`).
pub async fn stored_chat_refresh_token(app: &App, issuer: &str, subject: &str) -> Option<String> {
    stored_entry(app, issuer, subject, true).await
}

async fn stored_entry(app: &App, issuer: &str, subject: &str, chat: bool) -> Option<String> {
    let name = if chat {
        "chat_refresh_token"
    } else {
        "refresh_token"
    };
    vault_entry(app, issuer, subject, name).await
}

/// The vault entry `name` of the account (`issuer`, `subject`) in the vault file of `app`.
pub async fn vault_entry(app: &App, issuer: &str, subject: &str, name: &str) -> Option<String> {
    let path = app.data_dir.join(confab_client::signin::VAULT_FILE);
    let account = AccountId::new(issuer.to_owned(), subject.to_owned());
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let store = StrongholdStore::open_or_create(
            path,
            &KeySource::passphrase(SecretString::new(PASSPHRASE.to_owned())),
        )
        .expect("the vault opens");
        store
            .get(&account, &name)
            .expect("the vault entry reads")
            .map(|t| t.expose_secret().to_owned())
    })
    .await
    .expect("vault task")
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}

/// Whether the IdP still accepts `refresh_token` (a refresh grant, as another client would).
pub async fn idp_accepts(idp: &Idp, refresh_token: &str) -> bool {
    idp.refresh(refresh_token).await.is_ok()
}
