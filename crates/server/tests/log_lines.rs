//! The server's log cannot be forged by what a user controls: a token subject with a newline
//! (any identity provider may issue one) is logged escaped, on the one line of its event.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::issuer::{new_key, sign, start_issuer};
use common::*;
use serde_json::json;

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

#[tokio::test]
async fn a_subject_with_a_newline_cannot_forge_a_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only subscriber of this test binary");

    let issuer = start_issuer().await;
    let key = new_key("k1");
    issuer.keys.lock().expect("keys").push(key.jwk.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(&issuer.url, dir.path())).await;
    let forged = "mallory\n2026-01-01T00:00:00Z  INFO confab_server: admin signed in as root";
    let token = sign(&key, &issuer.url, json!({ "sub": forged }));
    let mut c = Client::connected(&server.url, &token).await;
    let r = c.call(json!({"rpc": {"method": "rooms.list"}})).await;
    assert!(r.error.is_none(), "the user is connected: {:?}", r.error);

    let log = captured.text();
    assert!(
        log.lines()
            .any(|l| l.contains("connected") && l.contains(r#"mallory\n2026"#)),
        "the connect line names the subject escaped, on one line:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "no line of the log starts with the subject's forged text:\n{log}"
    );
}
