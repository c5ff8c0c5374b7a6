//! Token lifecycle benchmarks (plain `main`, no harness): `cargo bench -p confab-session`.
//!
//! 1. `access_token()` fast path (valid token): median ns per call, one thread and two threads.
//! 2. 10,000 concurrent callers at expiry: time from release until every caller holds the
//!    refreshed token, with an in-process endpoint (manager overhead only) and with the real
//!    test IdP (tests/idp via confab-testkit; needs node, like the tests).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_client::adapters::handoff;
use confab_client::adapters::AuthEndpoint;
use confab_session::{
    EndpointError, MemoryTokenStore, Secret, SessionConfig, ShiftedWallClock, TokenEndpoint,
    TokenManager, Tokens, User,
};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::Semaphore;
use url::Url;

struct InstantEndpoint {
    requests: AtomicUsize,
}

impl TokenEndpoint for InstantEndpoint {
    fn refresh<'a>(&'a self, _: &'a Secret) -> BoxFuture<'a, Result<Tokens, EndpointError>> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            Ok(Tokens {
                access_token: Secret::new(format!("access-{n}")),
                lifetime: Duration::from_secs(3600),
                refresh_token: Some(Secret::new(format!("refresh-{n}"))),
                id_token: None,
                user: None,
            })
        })
    }
    fn revoke<'a>(&'a self, _: &'a Secret) -> BoxFuture<'a, Result<(), EndpointError>> {
        Box::pin(async { Ok(()) })
    }
    fn end_session_url(&self, _: Option<&Secret>) -> Option<Url> {
        None
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p) as usize]
}

async fn manager(clock: Arc<ShiftedWallClock>) -> (TokenManager, Arc<InstantEndpoint>) {
    let endpoint = Arc::new(InstantEndpoint {
        requests: AtomicUsize::new(0),
    });
    let store = Arc::new(MemoryTokenStore::with_token(Secret::new(
        "refresh-start".into(),
    )));
    let manager = TokenManager::builder(endpoint.clone(), store)
        .clock(clock)
        .config(SessionConfig {
            recheck_interval: Duration::from_secs(3600),
            ..SessionConfig::default()
        })
        .restore(User::new("https://idp.example", "bench"))
        .await
        .expect("restore with the in-process endpoint");
    (manager, endpoint)
}

fn fast_path(rt: &tokio::runtime::Runtime) {
    let clock = Arc::new(ShiftedWallClock::new());
    let (manager, _) = rt.block_on(manager(clock));
    const BATCH: usize = 10_000;
    for (label, threads) in [("1 thread", 1usize), ("2 threads concurrently", 2)] {
        let mut async_ns = Vec::new();
        let mut sync_ns = Vec::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let manager = manager.clone();
                    s.spawn(move || {
                        let mut a = Vec::new();
                        let mut b = Vec::new();
                        for _ in 0..300 {
                            let start = Instant::now();
                            for _ in 0..BATCH {
                                let token = manager
                                    .access_token()
                                    .now_or_never()
                                    .expect("fast path completes without waiting")
                                    .expect("valid token");
                                std::hint::black_box(&token);
                            }
                            a.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
                            let start = Instant::now();
                            for _ in 0..BATCH {
                                let token = manager.try_access_token().expect("valid token");
                                std::hint::black_box(&token);
                            }
                            b.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
                        }
                        (a, b)
                    })
                })
                .collect();
            for h in handles {
                let (a, b) = h.join().expect("bench thread");
                async_ns.extend(a);
                sync_ns.extend(b);
            }
        });
        println!(
            "fast path, {label}: access_token().await median {:.1} ns/call (p90 {:.1}); try_access_token() median {:.1} ns/call (p90 {:.1})",
            median(async_ns.clone()),
            percentile(async_ns, 0.9),
            median(sync_ns.clone()),
            percentile(sync_ns, 0.9),
        );
    }
}

/// Releases 10,000 waiting callers just after expiry; returns ms until all have the new token.
async fn stampede(manager: &TokenManager, clock: &ShiftedWallClock, jump: Duration) -> f64 {
    let gate = Arc::new(Semaphore::new(0));
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let (manager, gate) = (manager.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            gate.acquire().await.expect("gate").forget();
            manager.access_token().await.map(|_| ())
        }));
    }
    tokio::task::yield_now().await;
    clock.advance(jump);
    let start = Instant::now();
    gate.add_permits(10_000);
    for t in tasks {
        t.await.expect("caller").expect("token");
    }
    start.elapsed().as_secs_f64() * 1000.0
}

fn concurrent_in_process(rt: &tokio::runtime::Runtime) {
    let mut times = Vec::new();
    let mut requests = 0;
    for _ in 0..20 {
        let clock = Arc::new(ShiftedWallClock::new());
        let (manager, endpoint) = rt.block_on(manager(clock.clone()));
        let before = endpoint.requests.load(Ordering::SeqCst);
        let ms = rt.block_on(stampede(&manager, &clock, Duration::from_secs(3601)));
        requests = requests.max(endpoint.requests.load(Ordering::SeqCst) - before);
        times.push(ms);
    }
    println!(
        "10,000 concurrent callers at expiry, in-process endpoint: median {:.1} ms until all hold the new token (max {:.1} ms over 20 runs); token requests per run: {requests}",
        median(times.clone()),
        percentile(times, 1.0)
    );
}

fn concurrent_real_idp(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let idp = confab_testkit::Idp::start(confab_testkit::IdpOptions::default())
            .await
            .expect("the test IdP must start (node 20+ and `npm ci` in tests/idp)");
        let mut config =
            confab_auth::AuthConfig::new(idp.issuer(), confab_testkit::CLIENT_ID);
        config.resource = Some(confab_testkit::CHAT_RESOURCE.to_owned());
        let client = Arc::new(
            confab_auth::AuthClient::discover(config)
                .await
                .expect("discovery"),
        );
        let mut times = Vec::new();
        let mut single_refresh = Vec::new();
        for _ in 0..10 {
            let redirect =
                confab_auth::RedirectTarget::private_use(confab_testkit::PRIVATE_USE_REDIRECT_URI)
                    .expect("redirect");
            let start = client.begin(redirect).expect("begin");
            let callback = confab_testkit::headless_login_as(
                &start.authorize_url,
                "alice",
                confab_testkit::PRIVATE_USE_REDIRECT_URI,
            )
            .await
            .expect("login");
            let signed_in = client.complete(callback.as_str()).await.expect("complete");
            let (user, tokens) = handoff(&signed_in);
            let clock = Arc::new(ShiftedWallClock::new());
            let manager = TokenManager::builder(
                Arc::new(AuthEndpoint::new(client.clone(), None)),
                Arc::new(MemoryTokenStore::new()),
            )
            .clock(clock.clone())
            .config(SessionConfig {
                recheck_interval: Duration::from_secs(3600),
                ..SessionConfig::default()
            })
            .sign_in(user, tokens)
            .await
            .expect("sign in");
            idp.reset_stats().await.expect("reset");
            let ms = stampede(&manager, &clock, Duration::from_secs(301)).await;
            let stats = idp.stats().await.expect("stats");
            assert_eq!(stats.token_requests, 1, "one token request per stampede");
            times.push(ms);
            // One refresh alone, for comparison.
            let token = manager.access_token().await.expect("token");
            let t = Instant::now();
            manager.refresh_rejected(&token).await.expect("refresh");
            single_refresh.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "10,000 concurrent callers at expiry, real test IdP: median {:.1} ms until all hold the new token (max {:.1} ms over 10 runs), exactly 1 token request each; a single refresh alone: median {:.1} ms",
            median(times.clone()),
            percentile(times, 1.0),
            median(single_refresh)
        );
    });
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    fast_path(&rt);
    concurrent_in_process(&rt);
    concurrent_real_idp(&rt);
}
