//! A plain HTTP forward proxy (`HTTP_PROXY`) between the app and the real IdP that can make the
//! provider's revocation endpoint fail with a 503, as a provider that is down would. Discovery,
//! the issuer and every other request pass through unchanged.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy's switch and counters.
#[derive(Default)]
pub struct Proxy {
    /// While set, `POST /token/revocation` is answered 503 and not forwarded.
    pub fail_revocations: AtomicBool,
    /// Revocation requests answered 503.
    pub failed_revocations: AtomicU64,
}

/// Starts the proxy on 127.0.0.1 and points this process's HTTP clients at it (every client
/// built from now on). The test binary must hold one test only: the environment is shared.
pub async fn start() -> Arc<Proxy> {
    let proxy = Arc::new(Proxy::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
    let addr = listener.local_addr().expect("proxy address");
    let state = Arc::clone(&proxy);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(handle(conn, Arc::clone(&state)));
        }
    });
    for var in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        std::env::remove_var(var);
    }
    std::env::set_var("HTTP_PROXY", format!("http://{addr}"));
    std::env::set_var("http_proxy", format!("http://{addr}"));
    proxy
}

/// Reads one request (head + Content-Length body): request line, header lines, body.
pub async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<String>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next()?.to_owned();
    let headers: Vec<String> = lines.map(str::to_owned).collect();
    let length = headers
        .iter()
        .find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((request_line, headers, body))
}

async fn handle(mut conn: TcpStream, proxy: Arc<Proxy>) {
    let Some((request_line, headers, body)) = read_request(&mut conn).await else {
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
    if method == "POST"
        && url.path() == "/token/revocation"
        && proxy.fail_revocations.load(Ordering::SeqCst)
    {
        proxy.failed_revocations.fetch_add(1, Ordering::SeqCst);
        let body = r#"{"error":"temporarily_unavailable"}"#;
        let _ = conn
            .write_all(
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return;
    }
    forward(conn, method, &url, &headers, &body).await;
}

/// Sends a request read from `conn` on to its origin (origin-form, one request per
/// connection) and copies the answer back.
pub async fn forward(
    mut conn: TcpStream,
    method: &str,
    url: &url::Url,
    headers: &[String],
    body: &[u8],
) {
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(mut upstream) = TcpStream::connect((host.as_str(), port)).await else {
        let _ = conn
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        let name = h.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if name != "connection" && name != "proxy-connection" && name != "keep-alive" {
            head.push_str(h);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    if upstream.write_all(head.as_bytes()).await.is_err() || upstream.write_all(body).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy(&mut upstream, &mut conn).await;
    let _ = conn.shutdown().await;
}
