//! Test helper for the rotation-safety test (`tests/crash_rotation.rs`); not part of the app.
//!
//! Usage: `session-crash-child <profile> <issuer> <vault path> <subject> <kill after ms>`, where
//! `<profile>` is `oidc` (`<issuer>` an identity provider) or `password` (`<issuer>` a SimpleJWT
//! backend's base URL).
//! Restores the session of `subject` from a Stronghold vault (fixed test key) and keeps it
//! refreshed. After `kill after ms` it prints `KILLME` and freezes, waiting for the parent's
//! SIGKILL. The freeze waits until no refresh is between "request sent" and "rotated token
//! saved" — the one window no client can make crash-safe (see the crate README) — so the kill
//! lands anywhere else: during startup, discovery, between refreshes, between save and publish.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_auth::{AuthClient, AuthConfig};
use confab_backends::{SimpleJwtClient, SimpleJwtSettings};
use confab_client::adapters::{AuthEndpoint, PasswordEndpoint, VaultSlot};
use confab_session::{
    EndpointError, RefreshTokenStore, Secret, SessionConfig, TokenEndpoint, TokenManager, Tokens,
    User,
};
use confab_vault::{AccountId, KeySource, StrongholdStore};
use futures_util::future::BoxFuture;
use tokio::sync::OwnedMutexGuard;
use url::Url;

/// The raw vault key the crash test uses (test data, not a real key).
pub const TEST_KEY: [u8; 32] = [0x3c; 32];

/// Held from "refresh request sent" until "rotated token saved" (or the request failed).
#[derive(Clone, Default)]
struct Window {
    lock: Arc<tokio::sync::Mutex<()>>,
    held: Arc<Mutex<Option<OwnedMutexGuard<()>>>>,
}

impl Window {
    async fn enter(&self) {
        let guard = Arc::clone(&self.lock).lock_owned().await;
        if let Ok(mut held) = self.held.lock() {
            *held = Some(guard);
        }
    }
    fn leave(&self) {
        if let Ok(mut held) = self.held.lock() {
            held.take();
        }
    }
}

struct WindowEndpoint {
    inner: Arc<dyn TokenEndpoint>,
    window: Window,
}

impl TokenEndpoint for WindowEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        Box::pin(async move {
            self.window.enter().await;
            let result = self.inner.refresh(refresh_token).await;
            if result.as_ref().map_or(true, |t| t.refresh_token.is_none()) {
                self.window.leave();
            }
            result
        })
    }
    fn revoke<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        self.inner.revoke(refresh_token)
    }
    fn end_session_url(&self, id_token_hint: Option<&Secret>) -> Option<Url> {
        self.inner.end_session_url(id_token_hint)
    }
}

struct WindowStore {
    inner: VaultSlot,
    window: Window,
}

impl RefreshTokenStore for WindowStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<Secret>, String>> {
        self.inner.load()
    }
    fn save<'a>(&'a self, token: &'a Secret) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let result = self.inner.save(token).await;
            self.window.leave();
            result
        })
    }
    fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
        self.inner.delete()
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: session-crash-child <oidc|password> <issuer> <vault path> <subject> <kill after ms>";
    let profile = args.next().ok_or(usage)?;
    let issuer: Url = args.next().ok_or(usage)?.parse()?;
    let vault_path = args.next().ok_or(usage)?;
    let subject = args.next().ok_or(usage)?;
    let kill_after: u64 = args.next().ok_or(usage)?.parse()?;

    let window = Window::default();
    {
        let window = window.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(kill_after)).await;
            let _frozen = Arc::clone(&window.lock).lock_owned().await;
            say("KILLME");
            std::future::pending::<()>().await;
        });
    }

    let issuer_str = issuer.as_str().trim_end_matches('/').to_owned();
    let endpoint: Arc<dyn TokenEndpoint> = match profile.as_str() {
        "oidc" => {
            let client = AuthClient::discover(AuthConfig::new(issuer, "confab-desktop")).await?;
            Arc::new(AuthEndpoint::new(Arc::new(client), None))
        }
        "password" => {
            let client = SimpleJwtClient::new(issuer, SimpleJwtSettings::default())?;
            Arc::new(PasswordEndpoint::new(Arc::new(client)))
        }
        _ => return Err(usage.into()),
    };
    let vault = Arc::new(StrongholdStore::open(
        &vault_path,
        &KeySource::raw(TEST_KEY),
    )?);
    let slot = VaultSlot::new(vault, AccountId::new(issuer_str.clone(), subject.clone()));
    let manager = TokenManager::builder(
        Arc::new(WindowEndpoint {
            inner: endpoint,
            window: window.clone(),
        }),
        Arc::new(WindowStore {
            inner: slot,
            window,
        }),
    )
    .config(SessionConfig {
        recheck_interval: Duration::from_millis(200),
        ..SessionConfig::default()
    })
    .restore(User::new(issuer_str, subject))
    .await;
    let manager = match manager {
        Ok(m) => m,
        Err(e) => {
            say(&format!("RESTORE_FAILED {e}"));
            std::process::exit(3);
        }
    };
    say("RESTORED");
    let mut events = manager.subscribe();
    loop {
        match events.recv().await {
            Ok(confab_session::SessionEvent::SignedOut { reason }) => {
                say(&format!("SIGNED_OUT {}", reason.code()));
                std::process::exit(4);
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
