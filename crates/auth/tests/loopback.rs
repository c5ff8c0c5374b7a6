//! The loopback redirect receiver over real sockets: bound to 127.0.0.1 only, answers exactly
//! one callback, ignores everything else, gives up at its deadline.

use std::time::Duration;

use confab_auth::{ErrorCode, LoopbackListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send raw bytes, return the whole response as text.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the listener accepts connections while waiting");
    s.write_all(request).await.expect("write request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read response");
    String::from_utf8_lossy(&out).into_owned()
}

fn status(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn only_the_callback_consumes_the_listener_then_it_closes() {
    let listener = LoopbackListener::bind().await.expect("bind");
    let port = listener.port();
    let waiting = tokio::spawn(listener.wait());

    let r = raw(port, b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&r), "404", "other paths get 404");
    let r = raw(port, b"GET /callback HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(
        status(&r),
        "404",
        "a /callback request without state or error is not a sign-in response"
    );
    let r = raw(port, b"POST /callback?state=s HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&r), "405", "only GET delivers the callback");
    let r = raw(port, b"garbage\r\n\r\n").await;
    assert_eq!(status(&r), "400", "a malformed request gets 400");
    let huge = format!(
        "GET /callback?state={} HTTP/1.1\r\n\r\n",
        "x".repeat(20_000)
    );
    // The server stops reading at its cap, so the close may reach us as a reset before the
    // 400; either way the request must not count as the callback.
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
        let _ = s.write_all(huge.as_bytes()).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let r = String::from_utf8_lossy(&out);
        assert!(
            r.is_empty() || status(&r) == "400",
            "an oversized request head is refused"
        );
    }
    assert!(
        !waiting.is_finished(),
        "none of these requests consumed the listener"
    );

    let r = raw(
        port,
        b"GET /callback?code=secret-code-value&state=secret-state-value HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), "200", "the callback gets the done page");
    assert!(
        r.contains("You can close this tab and return to Confab"),
        "the page tells the user to return to the app"
    );
    assert!(
        !r.contains("secret-code-value") && !r.contains("secret-state-value"),
        "the page never echoes the code or state"
    );
    assert!(
        r.to_ascii_lowercase().contains("cache-control: no-store"),
        "the page is not cached"
    );
    let url = waiting
        .await
        .expect("task")
        .expect("wait returns the callback");
    assert_eq!(
        url.as_str(),
        format!("http://127.0.0.1:{port}/callback?code=secret-code-value&state=secret-state-value"),
        "wait returns the full callback URL"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "after answering once the port is closed"
    );
}

#[tokio::test]
async fn binds_to_127_0_0_1_only() {
    let listener = LoopbackListener::bind().await.expect("bind");
    let port = listener.port();
    assert_eq!(
        listener.redirect_url().host_str(),
        Some("127.0.0.1"),
        "the redirect names 127.0.0.1, not localhost"
    );
    // On Linux all of 127.0.0.0/8 reaches the host: a socket bound to 0.0.0.0 would accept this.
    assert!(
        TcpStream::connect(("127.0.0.2", port)).await.is_err(),
        "the listener is bound to 127.0.0.1 only, never to all interfaces"
    );
    drop(listener);
}

#[tokio::test]
async fn gives_up_at_the_deadline() {
    let listener = LoopbackListener::bind()
        .await
        .expect("bind")
        .with_timeout(Duration::from_millis(50));
    let port = listener.port();
    let err = listener.wait().await.expect_err("no callback arrives");
    assert_eq!(
        err.code(),
        ErrorCode::Loopback,
        "a listener without callback ends with a loopback error at its deadline"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "after the deadline the port is closed"
    );
}

#[tokio::test]
async fn a_callback_for_another_sign_in_does_not_end_the_wait() {
    let listener = LoopbackListener::bind().await.expect("bind");
    let port = listener.port();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let waiting = tokio::spawn(listener.wait_until_matching(deadline, |url| {
        url.query_pairs().any(|(k, v)| k == "state" && v == "ours")
    }));

    // A local page guessing the port sends its own callback: refused, the wait goes on.
    let r = raw(
        port,
        b"GET /callback?code=evil&state=theirs HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), "400", "{r}");
    assert!(r.contains("Not this sign-in") && !r.contains("evil") && !r.contains("theirs"));
    assert!(!waiting.is_finished(), "the listener is still waiting");

    let r = raw(
        port,
        b"GET /callback?code=good&state=ours HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), "200");
    let url = waiting
        .await
        .expect("the wait task ends")
        .expect("the matching callback ends the wait");
    assert!(url.as_str().contains("code=good"));
}
