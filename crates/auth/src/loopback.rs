//! Desktop fallback redirect receiver on `http://127.0.0.1:{ephemeral}/callback` (RFC 8252 §7.3).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use url::Url;

use crate::callback::{RedirectTarget, LOOPBACK_PATH, MAX_CALLBACK_LEN};
use crate::client::DEFAULT_LOGIN_TIMEOUT;
use crate::error::{Error, Result};

/// How long one connection may take to send its request head.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

const DONE_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Confab</title></head><body style=\"font-family:sans-serif;text-align:center;margin-top:4em\">\
<h1>Signed in</h1><p>You can close this tab and return to Confab.</p></body></html>";

/// A one-shot HTTP receiver bound to `127.0.0.1` on an ephemeral port (never `0.0.0.0`).
///
/// [`LoopbackListener::wait`] answers requests until one arrives for `/callback` carrying a
/// `state` or `error` parameter; that one gets a small "you can close this tab" page (nothing
/// from the request is echoed), the listener closes, and its full URL is returned for
/// [`crate::AuthClient::complete`]. Other paths get 404 and do not consume the listener.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    port: u16,
    target: RedirectTarget,
    timeout: Duration,
}

impl LoopbackListener {
    /// Bind `127.0.0.1:0`. The default deadline for [`Self::wait`] is 10 minutes.
    pub async fn bind() -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| Error::Loopback("could not listen on 127.0.0.1", Some(e)))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Loopback("could not read the listening port", Some(e)))?
            .port();
        Ok(Self {
            listener,
            port,
            target: RedirectTarget::loopback(port)?,
            timeout: DEFAULT_LOGIN_TIMEOUT,
        })
    }

    /// Change how long [`Self::wait`] waits.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}/callback`.
    pub fn redirect_url(&self) -> Url {
        self.redirect_target().url().clone()
    }

    /// The redirect target to pass to [`crate::AuthClient::begin`].
    pub fn redirect_target(&self) -> RedirectTarget {
        self.target.clone()
    }

    /// Wait (up to the configured timeout) for the callback request; returns its full URL.
    pub async fn wait(self) -> Result<Url> {
        let deadline = Instant::now() + self.timeout;
        self.wait_until(deadline).await
    }

    /// Wait until `deadline` (e.g. [`crate::LoginStart::deadline`]) for the callback request.
    pub async fn wait_until(self, deadline: Instant) -> Result<Url> {
        self.wait_until_matching(deadline, |_| true).await
    }

    /// Like [`Self::wait_until`], but only a callback that `accept` takes (e.g.
    /// [`crate::AuthClient::is_for_pending`]: the `state` of the sign-in in progress) ends the
    /// wait. Any other callback (a local page guessing the port, a stale tab) gets a 400 page
    /// and the listener keeps listening, so it cannot break the sign-in.
    pub async fn wait_until_matching(
        self,
        deadline: Instant,
        accept: impl Fn(&Url) -> bool + Send + Sync + 'static,
    ) -> Result<Url> {
        let accept: std::sync::Arc<dyn Fn(&Url) -> bool + Send + Sync> =
            std::sync::Arc::new(accept);
        let port = self.port;
        let mut connections = JoinSet::new();
        let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    match accepted {
                        Ok((stream, _peer)) => {
                            connections.spawn(handle_connection(stream, port, accept.clone()));
                        }
                        // Per-connection accept errors (e.g. the peer reset) are not fatal.
                        Err(e) => tracing::debug!(error = %e, "loopback accept failed"),
                    }
                }
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Ok(Some(url)) = done {
                        // Dropping self.listener closes the port; abort stragglers.
                        connections.abort_all();
                        tracing::info!("loopback callback received");
                        return Ok(url);
                    }
                }
                () = &mut sleep => {
                    connections.abort_all();
                    return Err(Error::Loopback("no sign-in response arrived in time", None));
                }
            }
        }
    }
}

/// Page for a callback that is not for the sign-in in progress (nothing from it is echoed).
const NOT_THIS_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Confab</title></head><body style=\"font-family:sans-serif;text-align:center;margin-top:4em\">\
<h1>Not this sign-in</h1><p>This response is not for the sign-in Confab is waiting for. \
Finish signing in in the tab Confab opened.</p></body></html>";

/// Serve one connection. Returns the callback URL if this was the callback `accept` takes.
async fn handle_connection(
    mut stream: TcpStream,
    port: u16,
    accept: std::sync::Arc<dyn Fn(&Url) -> bool + Send + Sync>,
) -> Option<Url> {
    let head = match tokio::time::timeout(REQUEST_READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => {
            let _ = respond(&mut stream, "400 Bad Request", "text/plain", "bad request").await;
            return None;
        }
    };
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(target), Some(version)) = (method, target, version) else {
        let _ = respond(&mut stream, "400 Bad Request", "text/plain", "bad request").await;
        return None;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || parts.next().is_some() {
        let _ = respond(&mut stream, "400 Bad Request", "text/plain", "bad request").await;
        return None;
    }
    let url = Url::parse(&format!("http://127.0.0.1:{port}{target}")).ok();
    let is_callback = url.as_ref().is_some_and(|u| {
        u.path() == LOOPBACK_PATH && u.query_pairs().any(|(k, _)| k == "state" || k == "error")
    });
    if !is_callback {
        let _ = respond(&mut stream, "404 Not Found", "text/plain", "not found").await;
        return None;
    }
    if method != "GET" {
        let _ = respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed",
        )
        .await;
        return None;
    }
    if !url.as_ref().is_some_and(|u| accept(u)) {
        tracing::warn!("loopback: refused a callback that is not for the sign-in in progress");
        let _ = respond(
            &mut stream,
            "400 Bad Request",
            "text/html; charset=utf-8",
            NOT_THIS_PAGE,
        )
        .await;
        return None;
    }
    let _ = respond(&mut stream, "200 OK", "text/html; charset=utf-8", DONE_PAGE).await;
    url
}

/// Read up to the end of the request head, refusing heads over the callback length cap.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).ok();
        }
        if buf.len() > MAX_CALLBACK_LEN + 1024 {
            return None;
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
