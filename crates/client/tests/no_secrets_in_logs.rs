//! With logging at `trace` and a browser launcher that fails with the URL in its error text,
//! no token, state, nonce or ID token reaches a log line or a UI event: sign-in, chat over a
//! real WebSocket (whose frames carry the access token), sign-out (whose logout URL carries the
//! ID token) and a failed sign-in. Against the real IdP, vault and chat server.
//!
//! The log capture is the process's global subscriber, so this file holds one test.

#[path = "../../relay/tests/common/mod.rs"]
mod common;
mod support;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_client::{Code, Error, UiEvent};
use support::app::{start_core, WAIT};

/// Every log line written, at the app's filter for `CONFAB_LOG=trace`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|all| String::from_utf8_lossy(&all).into_owned())
            .unwrap_or_default()
    }
}

fn query(url: &url::Url, key: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} in {url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_and_a_failing_launcher_leak_no_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter(confab_client::logging::log_filter(Some("trace")))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let dir = tempfile::tempdir().expect("temp dir");
    let idp = common::start_idp(Duration::from_secs(300)).await;
    let server = common::TestServer::start(common::server_config(
        &idp,
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let mut app = start_core(&idp, dir.path(), &server.url());
    app.flow.open_vault().await;
    app.unlock().await;

    // Sign in and chat: the relay's connect frame carries the access token.
    app.sign_in_as("alice").await;
    let login = app.opened_url(1).await;
    let (state, nonce) = (query(&login, "state"), query(&login, "nonce"));
    let core = app.core.clone().expect("core");
    let sent = core.chat.send_message("general", "hello").await;
    assert!(sent.is_ok(), "{sent:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !logs.text().contains("chat started") {
        assert!(tokio::time::Instant::now() < deadline, "no chat log line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Sign out with a launcher that fails quoting the logout URL (it carries the ID token).
    app.fail_open.store(true, Ordering::SeqCst);
    app.flow
        .sign_out()
        .await
        .expect("sign-out succeeds without a browser");
    let logout = app.opened_url(2).await;
    let id_token = query(&logout, "id_token_hint");

    // Sign in again with the launcher still failing: the error says so, without the URL.
    let failed = app.flow.sign_in().await;
    assert!(matches!(failed, Err(Error::Browser)), "{failed:?}");
    let attempt = app.opened_url(3).await;
    let (state2, nonce2) = (query(&attempt, "state"), query(&attempt, "nonce"));
    let screen = app.screen();
    let Some(UiEvent::SignInFailed { code, message }) = screen else {
        panic!("the failure is shown: {screen:?}");
    };
    assert_eq!(code, Code::Browser);

    let text = logs.text();
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "trace logging is on"
    );
    for (what, secret) in [
        ("the sign-in state", &state),
        ("the sign-in nonce", &nonce),
        ("the failed attempt's state", &state2),
        ("the failed attempt's nonce", &nonce2),
        ("the ID token", &id_token),
    ] {
        assert!(!text.contains(secret.as_str()), "{what} is in the logs");
        assert!(!message.contains(secret.as_str()), "{what} is in the UI");
    }
    assert!(
        !text.contains("eyJ"),
        "no JWT (access or ID token) in the logs at trace"
    );
    let events = format!("{:?}", app.events.borrow());
    assert!(!events.contains("eyJ") && !events.contains(&state2));
}
