//! Fault injection between the app and the real IdP: a small HTTP proxy in this test answers
//! refresh requests with a 500, a connection reset, a hang (timeout) and a 429 with
//! Retry-After before letting one through. The user must stay signed in throughout.
//!
//! The proxy is a plain HTTP forward proxy (`HTTP_PROXY`), so discovery, the issuer and the ID
//! token's `iss` stay exactly the IdP's. This test is its own binary because it sets the
//! process environment.

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use confab_session::{MemoryTokenStore, SessionConfig, SessionEvent, ShiftedWallClock};
use futures_util::FutureExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Status500,
    Reset,
    Hang,
    TooManyRequests { retry_after_secs: u64 },
}

#[derive(Default)]
struct ProxyState {
    faults: VecDeque<Fault>,
    /// Refresh requests seen: when, and which fault (None = forwarded).
    refreshes: Vec<(Instant, Option<Fault>)>,
}

type Shared = Arc<Mutex<ProxyState>>;

async fn start_proxy(state: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(conn, state.clone()));
        }
    });
    format!("http://{addr}")
}

async fn handle(mut conn: TcpStream, state: Shared) {
    let Some((request_line, headers, body)) = proxy::read_request(&mut conn).await else {
        return;
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(url) = url::Url::parse(target) else {
        let _ = conn
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    let is_refresh = method == "POST"
        && url.path() == "/token"
        && String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
    if is_refresh {
        let fault = {
            let mut s = state.lock().expect("proxy state");
            let fault = s.faults.pop_front();
            s.refreshes.push((Instant::now(), fault));
            fault
        };
        match fault {
            Some(Fault::Status500) => {
                let body = r#"{"error":"server_error","error_description":"injected"}"#;
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
            Some(Fault::Reset) => {
                // SO_LINGER 0: closing sends RST instead of FIN.
                let _ = conn.set_zero_linger();
                drop(conn);
                return;
            }
            Some(Fault::Hang) => {
                // Never answer; wait until the client gives up and closes.
                let mut sink = [0u8; 64];
                while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Some(Fault::TooManyRequests { retry_after_secs }) => {
                let body = r#"{"error":"slow_down"}"#;
                let _ = conn
                    .write_all(
                        format!(
                            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after_secs}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                return;
            }
            None => {}
        }
    }
    proxy::forward(conn, method, &url, &headers, &body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_stays_signed_in_through_500s_resets_timeouts_and_429s() {
    let state: Shared = Arc::default();
    let proxy = start_proxy(state.clone()).await;
    // Every HTTP client created from here on (IdP admin, confab-auth) goes through the proxy.
    for var in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::remove_var(var);
    }
    std::env::set_var("HTTP_PROXY", &proxy);
    std::env::set_var("http_proxy", &proxy);

    let idp = start_idp(Duration::from_secs(20)).await;
    let client = auth_client(&idp).await;
    let clock = Arc::new(ShiftedWallClock::new());
    let manager = signed_in_manager(&client, Arc::new(MemoryTokenStore::new()), |b| {
        b.clock(clock.clone()).config(SessionConfig {
            request_timeout: Duration::from_millis(1500),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(400),
            ..test_config()
        })
    })
    .await;
    assert!(
        state.lock().expect("state").refreshes.is_empty(),
        "(setup) no refresh yet; login went through the proxy unharmed"
    );
    idp.reset_stats().await.expect("reset stats");
    state.lock().expect("state").faults.extend([
        Fault::Status500,
        Fault::Reset,
        Fault::Hang,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    ]);

    // A caller keeps asking for the token the whole time.
    let recovered = Arc::new(tokio::sync::Notify::new());
    let poller = {
        let (manager, recovered) = (manager.clone(), recovered.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let stop = recovered.notified();
            tokio::pin!(stop);
            // Until recovery is announced, then a little longer with the new token.
            let mut end: Option<Instant> = None;
            while end.is_none_or(|end| Instant::now() < end) {
                if end.is_none() && (&mut stop).now_or_never().is_some() {
                    end = Some(Instant::now() + Duration::from_millis(300));
                }
                let token = manager
                    .access_token()
                    .await
                    .expect("the user stays signed in and gets a token while refreshes fail");
                assert!(
                    SystemTime::now() < jwt_exp(token.expose_secret()),
                    "the token handed out is never expired"
                );
                if seen.last() != Some(&token.expose_secret().to_owned()) {
                    seen.push(token.expose_secret().to_owned());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen.len()
        })
    };

    let mut events = manager.subscribe();
    // Enter the refresh window (20 s token refreshes 10 s before expiry).
    clock.advance(Duration::from_secs(11));
    manager.notify_resume();
    let mut retries = Vec::new();
    loop {
        let event = next_event(&mut events, Duration::from_secs(10), |_| true).await;
        match event {
            SessionEvent::Retrying { attempt, .. } => retries.push(attempt),
            SessionEvent::Refreshed { .. } => {
                recovered.notify_one();
                break;
            }
            other => panic!("the session must not end during transient failures: {other:?}"),
        }
    }
    assert_eq!(
        retries,
        vec![1, 2, 3, 4],
        "500, reset, timeout and 429 are each one retried transient failure"
    );
    let distinct_tokens = poller.await.expect("poller completes");
    assert_eq!(
        distinct_tokens, 2,
        "callers saw the old token, then the refreshed one"
    );
    let seen: Vec<Option<Fault>> = state
        .lock()
        .expect("state")
        .refreshes
        .iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(
        seen,
        vec![
            Some(Fault::Status500),
            Some(Fault::Reset),
            Some(Fault::Hang),
            Some(Fault::TooManyRequests {
                retry_after_secs: 1
            }),
            None
        ],
        "every failure was retried and the fifth attempt went through"
    );
    assert_eq!(
        idp.stats().await.expect("stats").refresh_requests,
        1,
        "only the successful attempt reached the IdP: no refresh token was spent by a failed try"
    );
    assert!(
        manager.try_access_token().is_ok(),
        "signed in after recovery"
    );
}
