//! Rotation safety under crashes: a child process (`session-crash-child`) restores the session
//! from a Stronghold vault file and refreshes every ~0.5 s against a real backend with
//! refresh-token rotation (1 s access tokens). It is SIGKILLed at a random moment, restarted
//! from the vault, killed again — 26 times in each of two independent sessions (alice and bob,
//! run concurrently). If any restart presented a spent refresh token, the backend would refuse
//! it and the next restore would fail; the sessions must stay valid to the end. Two backends:
//!
//! - the test IdP (oidc-provider), whose reuse detection revokes the whole grant;
//! - the Django + SimpleJWT backend (`ROTATE_REFRESH_TOKENS`, `BLACKLIST_AFTER_ROTATION`): a
//!   restart must never be left holding a blacklisted token.
//!
//! The kill moment is random (0–1.5 s after start) but is deferred while a refresh is between
//! "request sent" and "rotated token saved": a crash there is the documented residual window no
//! client can close (the backend has spent the old token, the new one exists only in the lost
//! response). Everywhere else — startup, discovery, vault open, idle, between save and publish,
//! after publish — is fair game.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use confab_backends::{SimpleJwtClient, SimpleJwtSettings};
use confab_client::adapters::{handoff, AuthEndpoint, PasswordEndpoint, VaultSlot};
use confab_session::{RefreshTokenStore, Secret, TokenEndpoint, TokenManager, User};
use confab_testkit::{Django, DjangoOptions, Idp};
use confab_types::SecretString;
use confab_vault::{AccountId, KeySource, StrongholdStore};
use rand::{Rng, SeedableRng};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Same test key as the child's `TEST_KEY` (test data, not a real key).
const TEST_KEY: [u8; 32] = [0x3c; 32];
const KILLS_PER_SESSION: usize = 26;

/// The backend a crash loop runs against.
#[derive(Clone)]
enum Backend {
    Idp(Arc<Idp>),
    Django(Arc<Django>),
}

impl Backend {
    /// The child's profile argument.
    fn profile(&self) -> &'static str {
        match self {
            Self::Idp(_) => "oidc",
            Self::Django(_) => "password",
        }
    }

    /// The issuer (or backend URL) the child is given and the vault entry is keyed by.
    fn issuer(&self) -> String {
        let url = match self {
            Self::Idp(idp) => idp.issuer_str(),
            Self::Django(django) => django.base_url().to_string(),
        };
        url.trim_end_matches('/').to_owned()
    }

    fn log(&self) -> String {
        match self {
            Self::Idp(idp) => idp.log(),
            Self::Django(django) => django.log(),
        }
    }

    /// Signs `user` in and returns the session's token endpoint and the first refresh token.
    async fn sign_in(&self, user: &str) -> (Arc<dyn TokenEndpoint>, Secret) {
        match self {
            Self::Idp(idp) => {
                let client = auth_client_as(idp, user).await;
                let signed_in = login(&client).await;
                let (_, tokens) = handoff(&signed_in);
                let refresh = tokens
                    .refresh_token
                    .expect("the login issued a refresh token");
                (Arc::new(AuthEndpoint::new(client, None)), refresh)
            }
            Self::Django(django) => {
                let client = SimpleJwtClient::new(django.base_url(), SimpleJwtSettings::default())
                    .expect("a loopback backend");
                let password = SecretString::new(format!("{user}-password"));
                let signed_in = client
                    .login(user, &password)
                    .await
                    .expect("the password login works");
                let refresh = signed_in
                    .tokens
                    .refresh
                    .expect("the login issued a refresh token");
                (
                    Arc::new(PasswordEndpoint::new(Arc::new(client))),
                    Secret::new(refresh.expose_secret().to_owned()),
                )
            }
        }
    }
}

async fn crash_loop(
    backend: Backend,
    user: &'static str,
    dir: std::path::PathBuf,
    seed: u64,
) -> usize {
    let (endpoint, first) = backend.sign_in(user).await;
    let issuer = backend.issuer();
    let account = AccountId::new(issuer.clone(), user);
    let vault_path = dir.join(format!("{user}.hold"));
    {
        let vault = Arc::new(
            StrongholdStore::create(&vault_path, &KeySource::raw(TEST_KEY)).expect("vault created"),
        );
        VaultSlot::new(vault, account.clone())
            .save(&first)
            .await
            .expect("initial refresh token saved");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0;
    for round in 0..KILLS_PER_SESSION {
        let kill_after: u64 = rng.gen_range(0..1500);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_session-crash-child"))
            .arg(backend.profile())
            .arg(&issuer)
            .arg(&vault_path)
            .arg(user)
            .arg(kill_after.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the crash child starts");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            let mut restored = false;
            while let Some(line) = lines.next_line().await.expect("child stdout readable") {
                if line == "RESTORED" {
                    restored = true;
                } else if line == "KILLME" {
                    return Ok(restored);
                } else {
                    return Err(line);
                }
            }
            Err("child exited without asking to be killed".to_owned())
        })
        .await
        .expect("the child reaches its kill point within 30 s (a refresh that never finished saving would hold it)");
        if let Err(line) = outcome {
            panic!(
                "{user}, round {round} (seed {seed}): the restarted child lost the session: {line}\n\
                 backend log:\n{}",
                backend.log()
            );
        }
        child.kill().await.expect("SIGKILL the child");
        kills += 1;
    }
    // The grant is still valid: a last restore from the vault, in this process.
    let vault = Arc::new(
        StrongholdStore::open(&vault_path, &KeySource::raw(TEST_KEY)).expect("vault opens"),
    );
    let manager = TokenManager::builder(endpoint, Arc::new(VaultSlot::new(vault, account)))
        .config(test_config())
        .restore(User::new(issuer, user))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{user}: after {kills} SIGKILLs the stored refresh token must still work: {e}\nbackend log:\n{}",
                backend.log()
            )
        });
    assert!(
        manager.access_token().await.is_ok(),
        "{user}: signed in after the crash loop"
    );
    kills
}

/// Runs the crash loop for alice and bob at once against `backend`; returns the kills.
async fn crash_both(backend: Backend) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed: u64 = rand::random();
    eprintln!("crash_rotation ({}) seed: {seed}", backend.profile());
    let a = tokio::spawn(crash_loop(
        backend.clone(),
        "alice",
        dir.path().to_owned(),
        seed,
    ));
    let b = tokio::spawn(crash_loop(
        backend,
        "bob",
        dir.path().to_owned(),
        seed.wrapping_add(1),
    ));
    let kills = a.await.expect("alice's loop") + b.await.expect("bob's loop");
    assert!(kills >= 50, "at least 50 SIGKILLs ({kills})");
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_replays_a_rotated_refresh_token() {
    let idp = Arc::new(start_idp(Duration::from_secs(1)).await);
    let kills = crash_both(Backend::Idp(idp.clone())).await;
    let log = idp.log();
    assert!(
        !log.contains("already used") && !log.contains("grant.revoked"),
        "the IdP never saw a spent refresh token again (no reuse detection, no revoked grant)"
    );
    let stats = idp.stats().await.expect("stats");
    assert!(
        stats.refresh_requests >= kills as u64,
        "every restart refreshed at least once ({} refreshes for {kills} restarts)",
        stats.refresh_requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_leaves_a_blacklisted_simplejwt_token() {
    let django = Arc::new(
        Django::start(DjangoOptions {
            access_ttl: Duration::from_secs(1),
            ..DjangoOptions::default()
        })
        .await
        .expect("the Django backend starts with 1 s access tokens"),
    );
    let kills = crash_both(Backend::Django(django.clone())).await;
    let stats = django.stats().await.expect("stats");
    assert_eq!(
        stats.refresh_refused, 0,
        "no restart ever presented a blacklisted (rotated) refresh token"
    );
    assert!(
        stats.refresh_ok >= kills as u64,
        "every restart refreshed at least once ({} refreshes for {kills} restarts)",
        stats.refresh_ok
    );
    // Exactly one refresh token per user stays live: every rotation blacklisted the one
    // before it. (Polled: a refresh of the last manager, cut off when it was dropped, may still
    // be between SimpleJWT's blacklisting and its new token for a few milliseconds.)
    for user in ["alice", "bob"] {
        wait_until(
            &format!("{user}: exactly one live refresh token"),
            Duration::from_secs(10),
            || async { django.live_refresh_tokens(user).await.expect("live tokens") == 1 },
        )
        .await;
    }
}
