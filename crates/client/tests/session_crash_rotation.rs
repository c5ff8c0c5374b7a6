//! Rotation safety under crashes: a child process (`session-crash-child`) restores the session
//! from a Stronghold vault file and refreshes every ~0.5 s against the real IdP (1 s access
//! tokens, refresh-token rotation with reuse detection). It is SIGKILLed at a random moment,
//! restarted from the vault, killed again — 26 times in each of two independent sessions
//! (alice and bob, run concurrently). If any restart presented a spent refresh token, the IdP
//! would revoke the grant and the next restore would fail; the grants must stay valid to the end.
//!
//! The kill moment is random (0–1.5 s after start) but is deferred while a refresh is between
//! "request sent" and "rotated token saved": a crash there is the documented residual window no
//! client can close (the IdP has spent the old token, the new one exists only in the lost
//! response). Everywhere else — startup, discovery, vault open, idle, between save and publish,
//! after publish — is fair game.

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use confab_client::adapters::handoff;
use confab_client::adapters::VaultSlot;
use confab_session::{RefreshTokenStore, TokenManager, User};
use confab_vault::{AccountId, KeySource, StrongholdStore};
use rand::{Rng, SeedableRng};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Same test key as the child's `TEST_KEY` (test data, not a real key).
const TEST_KEY: [u8; 32] = [0x3c; 32];
const KILLS_PER_SESSION: usize = 26;

async fn crash_loop(
    idp: Arc<confab_testkit::Idp>,
    user: &'static str,
    dir: std::path::PathBuf,
    seed: u64,
) -> usize {
    let client = auth_client_as(&idp, user).await;
    let signed_in = login(&client).await;
    let (_, tokens) = handoff(&signed_in);
    let issuer = idp.issuer_str().trim_end_matches('/').to_owned();
    let account = AccountId::new(issuer.clone(), user);
    let vault_path = dir.join(format!("{user}.hold"));
    {
        let vault = Arc::new(
            StrongholdStore::create(&vault_path, &KeySource::raw(TEST_KEY)).expect("vault created"),
        );
        VaultSlot::new(vault, account.clone())
            .save(
                tokens
                    .refresh_token
                    .as_ref()
                    .expect("login issued a refresh token"),
            )
            .await
            .expect("initial refresh token saved");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0;
    for round in 0..KILLS_PER_SESSION {
        let kill_after: u64 = rng.gen_range(0..1500);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_session-crash-child"))
            .arg(idp.issuer_str())
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
                 IdP log:\n{}",
                idp.log()
            );
        }
        child.kill().await.expect("SIGKILL the child");
        kills += 1;
    }
    // The grant is still valid: a last restore from the vault, in this process.
    let vault = Arc::new(
        StrongholdStore::open(&vault_path, &KeySource::raw(TEST_KEY)).expect("vault opens"),
    );
    let endpoint = Arc::new(confab_client::adapters::AuthEndpoint::new(
        client.clone(),
        None,
    ));
    let manager = TokenManager::builder(endpoint, Arc::new(VaultSlot::new(vault, account)))
        .config(test_config())
        .restore(User::new(issuer, user))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{user}: after {kills} SIGKILLs the stored refresh token must still work: {e}\nIdP log:\n{}",
                idp.log()
            )
        });
    assert!(
        manager.access_token().await.is_ok(),
        "{user}: signed in after the crash loop"
    );
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_never_replays_a_rotated_refresh_token() {
    let idp = Arc::new(start_idp(Duration::from_secs(1)).await);
    let dir = tempfile::tempdir().expect("temp dir");
    let seed: u64 = rand::random();
    eprintln!("crash_rotation seed: {seed}");
    let a = tokio::spawn(crash_loop(
        idp.clone(),
        "alice",
        dir.path().to_owned(),
        seed,
    ));
    let b = tokio::spawn(crash_loop(
        idp.clone(),
        "bob",
        dir.path().to_owned(),
        seed.wrapping_add(1),
    ));
    let kills = a.await.expect("alice's loop") + b.await.expect("bob's loop");
    assert!(kills >= 50, "at least 50 SIGKILLs ({kills})");
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
