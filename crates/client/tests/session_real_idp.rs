//! The token lifecycle against the real test IdP (tests/idp, oidc-provider with refresh-token
//! rotation and reuse detection), through confab-auth and confab-vault.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use confab_client::adapters::VaultSlot;
use confab_session::{
    Error, MemoryTokenStore, RefreshTokenStore, SessionConfig, SessionEvent, ShiftedWallClock,
    SignOutReason, TokenManager, WallClock,
};
use confab_testkit::Idp;
use confab_vault::{AccountId, KeySource, StrongholdStore};
use support::*;
use tokio::sync::Semaphore;

async fn refreshes(idp: &Idp) -> u64 {
    idp.stats().await.expect("IdP stats").refresh_requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes_of_ten_second_tokens_never_hand_out_an_expired_token() {
    let idp = start_idp(Duration::from_secs(10)).await;
    let client = auth_client(&idp).await;
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in_manager(&client, store, |b| b).await;
    let mut events = manager.subscribe();
    let before = refreshes(&idp).await;
    let started = Instant::now();
    let run_for = Duration::from_secs(120);

    let calls = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..2 {
        let (manager, calls) = (manager.clone(), calls.clone());
        callers.push(tokio::spawn(async move {
            let mut last: Option<(String, SystemTime)> = None;
            while started.elapsed() < run_for {
                for _ in 0..200 {
                    let token = manager
                        .access_token()
                        .await
                        .expect("access_token() never fails while the IdP is reachable");
                    let now = SystemTime::now();
                    let exp = match &last {
                        Some((value, exp)) if value == token.expose_secret() => *exp,
                        _ => {
                            let exp = jwt_exp(token.expose_secret());
                            last = Some((token.expose_secret().to_owned(), exp));
                            exp
                        }
                    };
                    assert!(
                        now < exp,
                        "a caller must never receive an expired access token (exp {exp:?}, now {now:?})"
                    );
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                // Yield the (shared, 2-core) CPU between bursts of calls.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    let mut refreshed_events = 0u64;
    while started.elapsed() < run_for {
        match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
            Ok(Ok(SessionEvent::Refreshed { .. })) => refreshed_events += 1,
            Ok(Ok(other)) => panic!("no other session event is expected, got {other:?}"),
            Ok(Err(e)) => panic!("event channel failed: {e}"),
            Err(_) => {}
        }
    }
    for caller in callers {
        caller.await.expect("caller task completes");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The manager keeps refreshing after the loop above stopped counting: take the events of
    // every refresh the IdP has seen so far (each follows its refresh within moments), reading
    // the IdP again until both sides agree.
    let deadline = Instant::now() + Duration::from_secs(30);
    let at_idp = loop {
        let at_idp = refreshes(&idp).await - before;
        while refreshed_events < at_idp {
            assert!(
                Instant::now() < deadline,
                "the IdP counted {at_idp} refreshes but only {refreshed_events} Refreshed events came"
            );
            match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
                Ok(Ok(SessionEvent::Refreshed { .. })) => refreshed_events += 1,
                Ok(Ok(other)) => panic!("no other session event is expected, got {other:?}"),
                Ok(Err(e)) => panic!("event channel failed: {e}"),
                Err(_) => {}
            }
        }
        if refreshed_events == at_idp {
            break at_idp;
        }
        // An event beyond the count read: a refresh landed since; read the IdP again.
        assert!(Instant::now() < deadline, "the counts never settled");
    };
    // 10 s tokens refresh at half their lifetime: one refresh every 5 s.
    let expected = elapsed / 5.0;
    assert!(
        (at_idp as f64) >= expected - 2.0 && (at_idp as f64) <= expected + 1.0,
        "refresh count at the IdP ({at_idp}) must match the schedule (≈{expected:.1} in {elapsed:.0} s)"
    );
    assert_eq!(
        refreshed_events, at_idp,
        "every refresh at the IdP is one Refreshed event, no more"
    );
    assert!(
        calls.load(Ordering::Relaxed) > 10_000,
        "callers ran continuously ({} calls)",
        calls.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_callers_at_expiry_cause_exactly_one_token_request() {
    let idp = start_idp(Duration::from_secs(300)).await;
    let client = auth_client(&idp).await;
    let clock = Arc::new(ShiftedWallClock::new());
    let manager = signed_in_manager(&client, Arc::new(MemoryTokenStore::new()), |b| {
        b.clock(clock.clone()).config(SessionConfig {
            recheck_interval: Duration::from_secs(3600),
            ..test_config()
        })
    })
    .await;
    let old = manager.access_token().await.expect("token after sign-in");
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let (manager, gate) = (manager.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            gate.acquire().await.expect("gate open").forget();
            manager.access_token().await
        }));
    }
    idp.reset_stats().await.expect("reset IdP stats");
    // The token expires (as after a sleep the task has not noticed yet), then all callers go.
    clock.advance(Duration::from_secs(301));
    gate.add_permits(10_000);
    for task in tasks {
        let token = task
            .await
            .expect("caller completes")
            .expect("every caller gets a token");
        assert_ne!(
            token.expose_secret(),
            old.expose_secret(),
            "callers at expiry get the new token"
        );
    }
    let stats = idp.stats().await.expect("IdP stats");
    assert_eq!(
        stats.token_requests, 1,
        "10,000 concurrent callers at expiry must cause exactly one token request at the IdP"
    );
}

#[tokio::test]
async fn clock_jump_of_two_hours_triggers_an_immediate_refresh() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let client = auth_client(&idp).await;
    let clock = Arc::new(ShiftedWallClock::new());
    let manager = signed_in_manager(&client, Arc::new(MemoryTokenStore::new()), |b| {
        b.clock(clock.clone()).config(SessionConfig {
            recheck_interval: Duration::from_secs(30),
            ..test_config()
        })
    })
    .await;
    let mut events = manager.subscribe();
    let before = refreshes(&idp).await;
    let jumped = Instant::now();
    clock.advance(Duration::from_secs(2 * 3600));
    manager.notify_resume();
    next_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, SessionEvent::Refreshed { .. })
    })
    .await;
    assert!(
        jumped.elapsed() < Duration::from_secs(5),
        "the refresh follows the jump at once, not after the 30 s re-check"
    );
    assert_eq!(
        refreshes(&idp).await - before,
        1,
        "one refresh request at the IdP for the jump"
    );
    let token = manager
        .try_access_token()
        .expect("a valid token right after");
    assert!(
        token.expires_at() > clock.now(),
        "the new token is valid on the jumped clock"
    );
}

#[tokio::test]
async fn revoked_grant_leads_to_signed_out_with_the_reason() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let client = auth_client(&idp).await;
    let clock = Arc::new(ShiftedWallClock::new());
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in_manager(&client, store.clone(), |b| b.clock(clock.clone())).await;
    let mut events = manager.subscribe();
    let revoked = idp.revoke_grants("alice").await.expect("admin revoke");
    assert!(revoked >= 1, "(setup) the IdP revoked alice's grant");
    clock.advance(Duration::from_secs(56 * 60));
    manager.notify_resume();
    let event = next_event(&mut events, Duration::from_secs(10), |e| {
        matches!(e, SessionEvent::SignedOut { .. })
    })
    .await;
    assert_eq!(
        event,
        SessionEvent::SignedOut {
            reason: SignOutReason::SessionEnded
        },
        "a revoked grant (invalid_grant) ends the session with the reason"
    );
    assert_eq!(
        SignOutReason::SessionEnded.message(),
        "Your session ended, please sign in again",
        "the reason the UI shows"
    );
    assert!(
        matches!(
            manager.access_token().await,
            Err(Error::SignedOut(SignOutReason::SessionEnded))
        ),
        "no token after the session ended"
    );
    assert!(
        store.load().await.expect("store readable").is_none(),
        "the dead refresh token is wiped"
    );
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_at_the_idp() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let client = auth_client(&idp).await;
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in_manager(&client, store.clone(), |b| b).await;
    let old = store
        .load()
        .await
        .expect("store readable")
        .expect("the refresh token is stored after sign-in");
    let url = manager.sign_out().await.expect("sign-out succeeds");
    let url = url.expect("the IdP offers RP-initiated logout");
    assert!(
        url.as_str()
            .starts_with(idp.issuer_str().trim_end_matches('/')),
        "the end-session URL points at the IdP"
    );
    assert!(
        url.query().unwrap_or_default().contains("id_token_hint"),
        "the end-session URL carries the ID token hint"
    );
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        1,
        "sign-out calls the revocation endpoint once"
    );
    let reuse = idp.refresh(old.expose_secret()).await;
    assert!(
        matches!(&reuse, Err(confab_testkit::Error::TokenEndpoint { error, .. }) if error == "invalid_grant"),
        "after sign-out the old refresh token is unusable at the IdP"
    );
    assert!(
        store.load().await.expect("store").is_none(),
        "the store entry is wiped"
    );
}

#[tokio::test]
async fn silent_restore_from_the_vault_signs_in_without_a_browser() {
    let idp = start_idp(Duration::from_secs(3600)).await;
    let client = auth_client(&idp).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let vault_path = dir.path().join("vault.hold");
    let key = [7u8; 32];
    let account = AccountId::new(idp.issuer_str(), "alice");
    let vault = Arc::new(
        StrongholdStore::open_or_create(&vault_path, &KeySource::raw(key)).expect("vault opens"),
    );
    let manager = signed_in_manager(
        &client,
        Arc::new(VaultSlot::new(vault, account.clone())),
        |b| b,
    )
    .await;
    let user = manager.user();
    drop(manager);
    let logins = idp.stats().await.expect("stats").authorization_requests;

    // "Restart": a new vault handle from the file, a new manager.
    let vault = Arc::new(StrongholdStore::open(&vault_path, &KeySource::raw(key)).expect("reopen"));
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let endpoint = Arc::new(confab_client::adapters::AuthEndpoint::new(
        client.clone(),
        None,
    ));
    let restored = TokenManager::builder(
        endpoint.clone(),
        Arc::new(VaultSlot::new(vault.clone(), account.clone())),
    )
    .config(test_config())
    .events(tx)
    .restore(user.clone())
    .await
    .expect("silent restore with the stored refresh token succeeds");
    assert_eq!(
        rx.recv().await.expect("event"),
        SessionEvent::SignedIn { user: user.clone() },
        "restore announces the signed-in user"
    );
    assert!(
        restored.access_token().await.is_ok(),
        "a token right after restore"
    );
    assert_eq!(
        idp.stats().await.expect("stats").authorization_requests,
        logins,
        "no browser login for a restore"
    );

    // After sign-out, a restart finds nothing and shows the sign-in screen with a reason.
    restored.sign_out().await.expect("sign-out");
    let again = TokenManager::builder(endpoint, Arc::new(VaultSlot::new(vault, account)))
        .config(test_config())
        .restore(user)
        .await;
    assert!(
        matches!(again, Err(Error::SignedOut(SignOutReason::NoStoredSession))),
        "after sign-out the vault holds no session"
    );
}
