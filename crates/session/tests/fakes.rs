//! Pure-logic tests of the token manager against an in-process fake provider that behaves
//! like oidc-provider with rotation (reuse of a spent refresh token revokes the grant).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use confab_session::{
    AuthLog, EndpointError, Error, MemoryTokenStore, Phase, RefreshTokenStore, Secret,
    SessionConfig, SessionEvent, ShiftedWallClock, SignOutReason, TokenEndpoint, TokenManager,
    Tokens, User, WallClock,
};
use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;
use url::Url;

#[derive(Default)]
struct FakeState {
    valid: HashSet<String>,
    spent: HashSet<String>,
    issued: usize,
    revoked: Vec<String>,
}

struct FakeIdp {
    state: Mutex<FakeState>,
    failures: Mutex<VecDeque<EndpointError>>,
    lifetime: Duration,
    delay: Duration,
    requests: AtomicUsize,
    request_times: Mutex<Vec<std::time::Instant>>,
    fail_revoke: bool,
    /// The user a refresh's (validated) ID token names; `None`: no ID token profile.
    user_on_refresh: Mutex<Option<User>>,
}

impl FakeIdp {
    fn new(lifetime: Duration, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            failures: Mutex::new(VecDeque::new()),
            lifetime,
            delay,
            requests: AtomicUsize::new(0),
            request_times: Mutex::new(Vec::new()),
            fail_revoke: false,
            user_on_refresh: Mutex::new(None),
        })
    }

    /// A fresh grant: returns its first refresh token.
    fn grant(&self) -> Secret {
        let mut s = self.state.lock().unwrap();
        s.issued += 1;
        let rt = format!("rt-{}", s.issued);
        s.valid.insert(rt.clone());
        Secret::new(rt)
    }

    fn tokens(&self) -> Tokens {
        let mut s = self.state.lock().unwrap();
        s.issued += 1;
        let rt = format!("rt-{}", s.issued);
        s.valid.insert(rt.clone());
        Tokens {
            access_token: Secret::new(format!("at-{}", s.issued)),
            lifetime: self.lifetime,
            refresh_token: Some(Secret::new(rt)),
            id_token: Some(Secret::new("id-token".into())),
            user: self.user_on_refresh.lock().unwrap().clone(),
        }
    }

    fn fail_next(&self, errors: impl IntoIterator<Item = EndpointError>) {
        self.failures.lock().unwrap().extend(errors);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn is_valid(&self, rt: &str) -> bool {
        self.state.lock().unwrap().valid.contains(rt)
    }

    fn reuse_detected(&self) -> bool {
        let s = self.state.lock().unwrap();
        s.valid.is_empty() && !s.spent.is_empty()
    }
}

impl TokenEndpoint for FakeIdp {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
    ) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::SeqCst);
            self.request_times
                .lock()
                .unwrap()
                .push(std::time::Instant::now());
            tokio::time::sleep(self.delay).await;
            if let Some(err) = self.failures.lock().unwrap().pop_front() {
                return Err(err);
            }
            let rt = refresh_token.expose_secret().to_owned();
            {
                let mut s = self.state.lock().unwrap();
                if s.spent.contains(&rt) {
                    s.valid.clear();
                    return Err(EndpointError::InvalidGrant);
                }
                if !s.valid.remove(&rt) {
                    return Err(EndpointError::InvalidGrant);
                }
                s.spent.insert(rt);
            }
            Ok(self.tokens())
        })
    }

    fn revoke<'a>(&'a self, refresh_token: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        Box::pin(async move {
            if self.fail_revoke {
                return Err(EndpointError::Transient {
                    retry_after: None,
                    reason: "revocation endpoint down".into(),
                });
            }
            let mut s = self.state.lock().unwrap();
            s.valid.remove(refresh_token.expose_secret());
            s.revoked.push(refresh_token.expose_secret().to_owned());
            Ok(())
        })
    }

    fn end_session_url(&self, id_token_hint: Option<&Secret>) -> Option<Url> {
        let mut url = Url::parse("http://idp.test/session/end").unwrap();
        if id_token_hint.is_some() {
            url.query_pairs_mut()
                .append_pair("id_token_hint", "present");
        }
        Some(url)
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        recheck_interval: Duration::from_millis(50),
        wait_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        ..SessionConfig::default()
    }
}

fn alice() -> User {
    User::new("http://idp.test", "alice")
}

async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Moves the clock 56 minutes on (past refresh time for 1-hour tokens), tells the manager (as on
/// resume) and returns the next session event.
async fn event_at_refresh_time(manager: &TokenManager, clock: &ShiftedWallClock) -> SessionEvent {
    let mut events = manager.subscribe();
    clock.advance(Duration::from_secs(56 * 60));
    manager.notify_resume();
    tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .unwrap()
        .unwrap()
}

/// Moves the clock to refresh time and checks that the refresh ends the session: a
/// `SignedOut(SessionEnded)` event, callers get `SignedOut`, no refresh token left in the store.
async fn refresh_ends_the_session(
    manager: &TokenManager,
    clock: &ShiftedWallClock,
    store: &MemoryTokenStore,
    why: &str,
) {
    let event = event_at_refresh_time(manager, clock).await;
    assert_eq!(
        event,
        SessionEvent::SignedOut {
            reason: SignOutReason::SessionEnded
        },
        "{why}: the session ends with a reason"
    );
    assert!(
        matches!(
            manager.access_token().await,
            Err(Error::SignedOut(SignOutReason::SessionEnded))
        ),
        "{why}: after the session ended, callers get SignedOut"
    );
    assert!(
        store.load().await.unwrap().is_none(),
        "{why}: no refresh token is left in the store"
    );
}

async fn signed_in(idp: &Arc<FakeIdp>, store: &Arc<MemoryTokenStore>) -> TokenManager {
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    TokenManager::builder(idp.clone(), store.clone())
        .config(config())
        .restore(alice())
        .await
        .expect("restore with a valid stored token signs in")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_at_expiry_share_one_refresh() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::from_millis(200));
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(SessionConfig {
            recheck_interval: Duration::from_secs(3600),
            ..config()
        })
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    let first = manager.access_token().await.unwrap();
    let before = idp.requests();
    // Jump past expiry without telling the task: callers discover it themselves.
    clock.advance(Duration::from_secs(3601));
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let manager = manager.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            manager.access_token().await
        }));
    }
    gate.add_permits(10_000);
    for task in tasks {
        let token = task.await.unwrap().expect("every caller gets a token");
        assert_ne!(
            token.expose_secret(),
            first.expose_secret(),
            "callers after expiry must get the new token, not the expired one"
        );
    }
    assert_eq!(
        idp.requests() - before,
        1,
        "10,000 concurrent callers at expiry must cause exactly one token request"
    );
}

#[tokio::test]
async fn clock_jump_of_two_hours_refreshes_immediately() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(SessionConfig {
            recheck_interval: Duration::from_secs(30),
            ..config()
        })
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    let before = idp.requests();
    let mut events = manager.subscribe();
    clock.advance(Duration::from_secs(2 * 3600));
    manager.notify_resume();
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("a refresh must follow a +2 h clock jump at once, not after the monotonic timer")
        .unwrap();
    assert!(
        matches!(event, SessionEvent::Refreshed { .. }),
        "the event after the jump is a refresh"
    );
    assert_eq!(
        idp.requests() - before,
        1,
        "exactly one refresh for the jump"
    );
    let token = manager
        .try_access_token()
        .expect("fresh token is valid at once");
    assert!(
        token.expires_at() > clock.now() + Duration::from_secs(3000),
        "the new token's expiry is measured on the jumped wall clock"
    );
}

#[tokio::test]
async fn clock_jump_is_noticed_by_the_periodic_recheck_without_a_resume_hint() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    let _manager = TokenManager::builder(idp.clone(), store.clone())
        .config(SessionConfig {
            recheck_interval: Duration::from_millis(100),
            ..config()
        })
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    let before = idp.requests();
    clock.advance(Duration::from_secs(2 * 3600));
    wait_for(
        "refresh after the wall clock jumped",
        Duration::from_secs(3),
        || idp.requests() > before,
    )
    .await;
}

#[tokio::test]
async fn refresh_happens_at_half_lifetime_for_short_tokens() {
    let idp = FakeIdp::new(Duration::from_millis(800), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in(&idp, &store).await;
    let first = manager.access_token().await.unwrap();
    let issued = SystemTime::now();
    let mut events = manager.subscribe();
    let event = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .unwrap()
        .unwrap();
    let elapsed = issued.elapsed().unwrap();
    assert!(
        matches!(event, SessionEvent::Refreshed { .. }),
        "the background task refreshes without any caller"
    );
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "refresh at expires_at - lifetime/2 (≈400 ms), not earlier (took {elapsed:?})"
    );
    let second = manager.access_token().await.unwrap();
    assert_ne!(
        first.expose_secret(),
        second.expose_secret(),
        "callers get the refreshed token"
    );
}

#[tokio::test]
async fn transient_failures_back_off_while_the_valid_token_keeps_serving() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(config())
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    let serving = manager.access_token().await.unwrap();
    let mut events = manager.subscribe();
    idp.fail_next([
        EndpointError::Transient {
            retry_after: None,
            reason: "HTTP 500".into(),
        },
        EndpointError::Transient {
            retry_after: None,
            reason: "connection reset".into(),
        },
        EndpointError::Transient {
            retry_after: Some(Duration::from_millis(300)),
            reason: "HTTP 429".into(),
        },
    ]);
    // Into the refresh window (55 min), still valid.
    clock.advance(Duration::from_secs(56 * 60));
    manager.notify_resume();
    let mut attempts = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("events keep coming until recovery")
            .unwrap();
        match event {
            SessionEvent::Retrying { attempt, .. } => {
                attempts.push(attempt);
                let token = manager
                    .try_access_token()
                    .expect("while retrying, the still-valid token keeps serving");
                assert_eq!(
                    token.expose_secret(),
                    serving.expose_secret(),
                    "the old token serves until a new one exists"
                );
            }
            SessionEvent::Refreshed { .. } => break,
            other => panic!("unexpected event while retrying: {other:?}"),
        }
    }
    assert_eq!(
        attempts,
        vec![1, 2, 3],
        "each failure is one numbered retry"
    );
    let times = idp.request_times.lock().unwrap().clone();
    let n = times.len();
    assert!(
        times[n - 1] - times[n - 2] >= Duration::from_millis(300),
        "a 429 with Retry-After is not retried earlier than the server asked"
    );
    assert!(
        matches!(*manager.phase().borrow(), Phase::Active),
        "after recovery the session is active"
    );
}

#[tokio::test]
async fn expired_token_during_backoff_gives_a_typed_refreshing_error_not_a_hang() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    let rt = idp.grant();
    store.save(&rt).await.unwrap();
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(SessionConfig {
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(30),
            ..config()
        })
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    idp.fail_next((0..100).map(|_| EndpointError::Transient {
        retry_after: Some(Duration::from_secs(20)),
        reason: "HTTP 503".into(),
    }));
    clock.advance(Duration::from_secs(2 * 3600));
    manager.notify_resume();
    let mut phase = manager.phase();
    tokio::time::timeout(
        Duration::from_secs(3),
        phase.wait_for(|p| matches!(p, Phase::Backoff { .. })),
    )
    .await
    .unwrap()
    .unwrap();
    let started = std::time::Instant::now();
    let result = manager.access_token().await;
    assert!(
        matches!(result, Err(Error::Refreshing { next_try: Some(_) })),
        "an expired token while retries back off yields Error::Refreshing, got {result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the caller is answered at once, not left hanging"
    );
}

#[tokio::test]
async fn new_refresh_token_is_saved_before_the_new_access_token_is_handed_out() {
    struct GatedStore {
        inner: MemoryTokenStore,
        gate: Semaphore,
        saves: AtomicUsize,
    }
    impl RefreshTokenStore for GatedStore {
        fn load(&self) -> BoxFuture<'_, Result<Option<Secret>, String>> {
            self.inner.load()
        }
        fn save<'a>(&'a self, token: &'a Secret) -> BoxFuture<'a, Result<(), String>> {
            Box::pin(async move {
                self.saves.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
                self.inner.save(token).await
            })
        }
        fn delete(&self) -> BoxFuture<'_, Result<(), String>> {
            self.inner.delete()
        }
    }
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(GatedStore {
        inner: MemoryTokenStore::with_token(idp.grant()),
        gate: Semaphore::new(0),
        saves: AtomicUsize::new(0),
    });
    let clock = Arc::new(ShiftedWallClock::new());
    let restoring = tokio::spawn({
        let (idp, store, clock) = (idp.clone(), store.clone(), clock.clone());
        async move {
            TokenManager::builder(idp, store)
                .config(config())
                .clock(clock)
                .restore(alice())
                .await
        }
    });
    wait_for("first save", Duration::from_secs(2), || {
        store.saves.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(
        !restoring.is_finished(),
        "no access token is handed out while the rotated refresh token is not yet saved"
    );
    store.gate.add_permits(1);
    let manager = restoring.await.unwrap().unwrap();
    let first = manager.access_token().await.unwrap();
    // Next rotation: hold the save, check callers still see the old token.
    clock.advance(Duration::from_secs(56 * 60));
    manager.notify_resume();
    wait_for("second save", Duration::from_secs(2), || {
        store.saves.load(Ordering::SeqCst) == 2
    })
    .await;
    let during = manager.access_token().await.unwrap();
    assert_eq!(
        during.expose_secret(),
        first.expose_secret(),
        "while the new refresh token is being saved, the new access token is not published"
    );
    let stored = store.inner.load().await.unwrap().unwrap();
    assert!(
        idp.state
            .lock()
            .unwrap()
            .spent
            .contains(stored.expose_secret()),
        "(setup) the store still holds the spent token while the save is pending"
    );
    store.gate.add_permits(1);
    wait_for("new token published", Duration::from_secs(2), || {
        manager
            .try_access_token()
            .is_ok_and(|t| t.expose_secret() != first.expose_secret())
    })
    .await;
    let stored = store.inner.load().await.unwrap().unwrap();
    assert!(
        idp.is_valid(stored.expose_secret()),
        "after publishing, the store holds the live refresh token"
    );
}

#[tokio::test]
async fn invalid_grant_rereads_the_store_and_uses_a_token_rotated_by_another_process() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    store.save(&idp.grant()).await.unwrap();
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(config())
        .clock(clock.clone())
        .restore(alice())
        .await
        .unwrap();
    // A second instance rotated the token behind our back (with a grant of its own here, so
    // that the fake's reuse detection does not fire).
    let theirs = idp.grant();
    store.save(&theirs).await.unwrap();
    let ours = idp
        .state
        .lock()
        .unwrap()
        .valid
        .iter()
        .find(|t| *t != theirs.expose_secret())
        .cloned()
        .unwrap();
    idp.state.lock().unwrap().valid.remove(&ours);
    let event = event_at_refresh_time(&manager, &clock).await;
    assert!(
        matches!(event, SessionEvent::Refreshed { .. }),
        "after invalid_grant, a different token in the store is tried once and succeeds: {event:?}"
    );
    assert!(
        manager.try_access_token().is_ok(),
        "the user stays signed in"
    );
}

#[tokio::test]
async fn invalid_grant_signs_out_with_the_reason_and_wipes_the_store() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let clock = Arc::new(ShiftedWallClock::new());
    store.save(&idp.grant()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("auth.jsonl");
    let manager = TokenManager::builder(idp.clone(), store.clone())
        .config(config())
        .clock(clock.clone())
        .auth_log(AuthLog::open(&log_path).unwrap())
        .restore(alice())
        .await
        .unwrap();
    idp.state.lock().unwrap().valid.clear();
    refresh_ends_the_session(&manager, &clock, &store, "invalid_grant").await;
    assert_eq!(
        SignOutReason::SessionEnded.to_string(),
        "Your session ended, please sign in again",
        "the reason the UI shows"
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"event\":\"invalid_grant\""),
        "the log records invalid_grant"
    );
    assert!(
        log.contains("\"event\":\"signed_out\""),
        "the log records the sign-out"
    );
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each log line is JSON");
        assert!(
            v["ts"].as_str().is_some_and(|t| t.ends_with('Z')),
            "each line has a UTC timestamp"
        );
    }
    assert!(
        !log.contains("rt-") && !log.contains("at-") && !log.contains("id-token"),
        "the auth log never contains a token"
    );
}

#[tokio::test]
async fn a_refresh_whose_id_token_names_another_user_ends_the_session_and_keeps_nothing() {
    for other in [
        User::new("http://idp.test", "mallory"),
        User::new("http://other-idp.test", "alice"),
    ] {
        let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
        let store = Arc::new(MemoryTokenStore::new());
        let clock = Arc::new(ShiftedWallClock::new());
        store.save(&idp.grant()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("auth.jsonl");
        // The same user with a profile update is accepted as before.
        let mut renamed = alice();
        renamed.name = Some("Alice Example".into());
        *idp.user_on_refresh.lock().unwrap() = Some(renamed.clone());
        let manager = TokenManager::builder(idp.clone(), store.clone())
            .config(config())
            .clock(clock.clone())
            .auth_log(AuthLog::open(&log_path).unwrap())
            .restore(alice())
            .await
            .expect("the same user's refresh signs in");
        assert_eq!(manager.user(), renamed, "the profile follows the ID token");
        let before = manager.access_token().await.unwrap();

        *idp.user_on_refresh.lock().unwrap() = Some(other.clone());
        // Ended: the access token of that response is never handed out, and neither the spent
        // nor the rotated refresh token stays in the store.
        let why = format!("an ID token for {other:?} after alice's");
        refresh_ends_the_session(&manager, &clock, &store, &why).await;
        assert_eq!(
            manager.user(),
            renamed,
            "the session's user is not replaced"
        );
        assert_ne!(before.expose_secret(), "", "a token was handed out before");
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(
            log.contains("\"event\":\"subject_changed\""),
            "the log records why: {log}"
        );
    }
}

#[tokio::test]
async fn restore_without_a_stored_token_is_signed_out_with_a_reason() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let (tx, mut rx) = tokio::sync::broadcast::channel(8);
    let result = TokenManager::builder(idp.clone(), store)
        .config(config())
        .events(tx)
        .restore(alice())
        .await;
    assert!(
        matches!(
            result,
            Err(Error::SignedOut(SignOutReason::NoStoredSession))
        ),
        "no stored token: signed out, not an error page"
    );
    assert_eq!(
        rx.try_recv().unwrap(),
        SessionEvent::SignedOut {
            reason: SignOutReason::NoStoredSession
        },
        "the UI hears why"
    );
    assert_eq!(idp.requests(), 0, "no token request without a token");
}

#[tokio::test]
async fn restore_while_offline_stays_signed_in_and_recovers() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    store.save(&idp.grant()).await.unwrap();
    idp.fail_next([EndpointError::Transient {
        retry_after: None,
        reason: "connection refused".into(),
    }]);
    let (tx, mut rx) = tokio::sync::broadcast::channel(8);
    let manager = TokenManager::builder(idp.clone(), store)
        .config(config())
        .events(tx)
        .restore(alice())
        .await
        .expect("a network failure at start is not a sign-out");
    assert!(
        matches!(
            rx.recv().await.unwrap(),
            SessionEvent::Retrying { attempt: 1, .. }
        ),
        "the UI hears that the refresh is retried"
    );
    assert_eq!(
        rx.recv().await.unwrap(),
        SessionEvent::SignedIn { user: alice() },
        "signed in once the provider answers"
    );
    assert!(
        manager.access_token().await.is_ok(),
        "the token is served after recovery"
    );
}

#[tokio::test]
async fn sign_out_revokes_wipes_and_returns_the_end_session_url() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in(&idp, &store).await;
    let live = store.load().await.unwrap().unwrap();
    let mut events = manager.subscribe();
    let url = manager.sign_out().await.expect("sign-out succeeds");
    assert_eq!(
        url.as_ref().map(|u| u.path()),
        Some("/session/end"),
        "sign-out returns the end-session URL for the browser"
    );
    assert!(
        url.unwrap()
            .query()
            .unwrap_or_default()
            .contains("id_token_hint"),
        "the end-session URL carries the ID token hint"
    );
    assert!(
        !idp.is_valid(live.expose_secret()),
        "the refresh token is revoked at the provider"
    );
    assert!(
        store.load().await.unwrap().is_none(),
        "the store entry is wiped"
    );
    assert_eq!(
        events.recv().await.unwrap(),
        SessionEvent::SignedOut {
            reason: SignOutReason::UserRequested
        },
        "the UI hears about the sign-out"
    );
    assert!(
        matches!(manager.access_token().await, Err(Error::SignedOut(_))),
        "no token after sign-out"
    );
    let requests = idp.requests();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(idp.requests(), requests, "the refresh task has stopped");
}

#[tokio::test]
async fn failed_revocation_does_not_block_sign_out() {
    let idp = Arc::new(FakeIdp {
        fail_revoke: true,
        ..Arc::into_inner(FakeIdp::new(Duration::from_secs(3600), Duration::ZERO)).unwrap()
    });
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in(&idp, &store).await;
    manager
        .sign_out()
        .await
        .expect("sign-out completes although revocation failed");
    assert!(
        store.load().await.unwrap().is_none(),
        "the store entry is wiped anyway"
    );
}

#[tokio::test]
async fn refresh_rejected_replaces_the_token_once_for_many_callers() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::from_millis(50));
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in(&idp, &store).await;
    let rejected = manager.access_token().await.unwrap();
    let before = idp.requests();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (manager, rejected) = (manager.clone(), rejected.clone());
        tasks.push(tokio::spawn(async move {
            manager.refresh_rejected(&rejected).await
        }));
    }
    for t in tasks {
        let token = t.await.unwrap().unwrap();
        assert_ne!(
            token.expose_secret(),
            rejected.expose_secret(),
            "a rejected token is replaced"
        );
    }
    assert_eq!(
        idp.requests() - before,
        1,
        "many rejections of one token share one refresh"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secret = Secret::new("rt-super-secret".into());
    let tokens = Tokens {
        access_token: Secret::new("at-super-secret".into()),
        lifetime: Duration::from_secs(1),
        refresh_token: Some(secret.clone()),
        id_token: None,
        user: None,
    };
    let text = format!("{secret:?} {tokens:?}");
    assert!(
        !text.contains("super-secret"),
        "Debug output must not contain tokens: {text}"
    );
}

#[tokio::test]
async fn access_token_debug_and_events_carry_no_token() {
    let idp = FakeIdp::new(Duration::from_secs(3600), Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    let manager = signed_in(&idp, &store).await;
    let token = manager.access_token().await.unwrap();
    let text = format!("{token:?} {manager:?}");
    assert!(
        !text.contains("at-"),
        "AccessToken Debug is redacted: {text}"
    );
    let event = serde_json::to_string(&SessionEvent::Refreshed {
        expires_at: token.expires_at(),
    })
    .unwrap();
    assert!(
        !event.contains(token.expose_secret()),
        "serialized events carry no token"
    );
    assert!(
        !idp.reuse_detected(),
        "(sanity) no reuse in the normal flow"
    );
}

#[tokio::test]
async fn a_zero_lifetime_does_not_make_the_manager_hammer_the_provider() {
    let idp = FakeIdp::new(Duration::ZERO, Duration::ZERO);
    let store = Arc::new(MemoryTokenStore::new());
    store.save(&idp.grant()).await.unwrap();
    let started = std::time::Instant::now();
    let _manager = TokenManager::builder(idp.clone(), store)
        .config(config())
        .restore(alice())
        .await
        .unwrap();
    wait_for("a few refreshes", Duration::from_secs(5), || {
        idp.requests() >= 3
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "refreshes of zero-lifetime tokens are spaced at least 500 ms apart"
    );
}

#[tokio::test]
async fn an_absurd_lifetime_does_not_panic_and_the_token_serves() {
    // An endpoint answering `expires_in` of 2^63 s (or u64::MAX): taken as a year, no overflow.
    for lifetime in [Duration::from_secs(1 << 63), Duration::MAX] {
        let idp = FakeIdp::new(lifetime, Duration::ZERO);
        let store = Arc::new(MemoryTokenStore::new());
        store.save(&idp.grant()).await.unwrap();
        let manager = TokenManager::builder(idp.clone(), store)
            .config(config())
            .restore(alice())
            .await
            .unwrap();
        let token = manager.access_token().await.expect("the token serves");
        let year = std::time::SystemTime::now() + Duration::from_secs(366 * 24 * 3600);
        assert!(token.expires_at() <= year, "capped at a year");
        assert_eq!(idp.requests(), 1, "no refresh storm either");
    }
}
