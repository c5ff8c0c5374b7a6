//! The transport under the protocol: a [`Connector`] dials and returns a [`Connection`] (a frame
//! sink and a frame stream). [`WsConnector`] is the real one (tokio-tungstenite, with TLS by
//! rustls for `wss://`); tests can provide their own.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::batch::{Reading, Spares};
use crate::token::BoxFuture;

/// A transport failure (dial, read or write).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// How every TLS failure's text begins (see [`TransportError::is_tls`]).
const TLS_FAILURE: &str = "connect: TLS ";

impl TransportError {
    /// The TLS handshake with `host` failed (an untrusted or wrong certificate, say).
    fn tls(host: &str, why: impl std::fmt::Display) -> Self {
        Self(format!("{TLS_FAILURE}with {host}: {why}"))
    }

    /// A failed handshake with `host`: what it means for the user first, rustls' words after.
    fn handshake(host: &str, e: &std::io::Error) -> Self {
        use rustls::CertificateError as C;
        let rustls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let meaning = match rustls {
            Some(rustls::Error::InvalidCertificate(c)) => Some(match c {
                C::UnknownIssuer => {
                    "the server's certificate is not from an authority this app trusts"
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "the server's certificate is for another name"
                }
                C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired",
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet (is this device's clock right?)"
                }
                C::Revoked => "the server's certificate was revoked",
                _ => "the server's certificate was refused",
            }),
            _ => None,
        };
        match meaning {
            Some(m) => Self::tls(host, format_args!("{m} ({e})")),
            None => Self::tls(host, e),
        }
    }

    /// True for a failed TLS handshake: a problem with the server's certificate or TLS setup,
    /// not a network outage, so worth telling the user rather than only retrying.
    pub fn is_tls(&self) -> bool {
        self.0.starts_with(TLS_FAILURE)
    }
}

/// Something the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame (one or more JSON replies separated by `\n`). [`Utf8Bytes`] is checked
    /// UTF-8 that shares the buffer it was read into (no copy per frame; `String` and `&str`
    /// convert with `into()`).
    Text(Utf8Bytes),
    /// The server closed the connection, with the close code and reason if any.
    Closed {
        /// WebSocket close code (3000–3999 are protocol disconnects).
        code: Option<u16>,
        /// Reason text.
        reason: String,
    },
}

/// Outgoing frames.
pub type FrameSink = Pin<Box<dyn Sink<String, Error = TransportError> + Send>>;
/// Incoming frames; `None` when the transport ended without a close frame.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Inbound, TransportError>> + Send>>;

/// An open connection.
pub struct Connection {
    /// Where to write frames.
    pub sink: FrameSink,
    /// Where frames arrive.
    pub stream: FrameStream,
}

/// Opens connections to the chat server.
pub trait Connector: Send + Sync + 'static {
    /// Dials `url`. `max_frame_bytes` bounds one incoming message.
    fn connect<'a>(
        &'a self,
        url: &'a str,
        max_frame_bytes: usize,
    ) -> BoxFuture<'a, Result<Connection, TransportError>>;
}

/// The real transport: WebSocket over tokio-tungstenite, `ws://` or `wss://`.
///
/// `wss://` is TLS by rustls (TLS 1.2 and 1.3, ring's algorithms, ALPN `http/1.1`), the server's
/// certificate checked against its name and, by default, against the Mozilla root certificates
/// that webpki-roots carries: the same roots the sign-in's HTTP client (reqwest with rustls)
/// trusts. [`WsConnector::with_root_certificates`] trusts given roots instead (a private CA).
#[derive(Clone, Default)]
pub struct WsConnector {
    /// `None`: the default roots, made once per process on the first `wss://` dial.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for WsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConnector")
            .field(
                "roots",
                &if self.tls.is_some() {
                    "given"
                } else {
                    "webpki-roots"
                },
            )
            .finish()
    }
}

impl WsConnector {
    /// Trusts exactly `roots` (DER certificates) for `wss://`, instead of the default roots.
    pub fn with_root_certificates(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Self, TransportError> {
        let mut store = rustls::RootCertStore::empty();
        for cert in roots {
            store
                .add(cert)
                .map_err(|e| TransportError(format!("TLS root certificate: {e}")))?;
        }
        if store.is_empty() {
            return Err(TransportError("TLS: no root certificate given".into()));
        }
        Ok(Self {
            tls: Some(Arc::new(client_config(store)?)),
        })
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, TransportError> {
        if let Some(tls) = &self.tls {
            return Ok(Arc::clone(tls));
        }
        static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, TransportError>> =
            OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                let store = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                client_config(store).map(Arc::new)
            })
            .clone()
    }
}

fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The WebSocket handshake is HTTP/1.1: a server that would pick h2 must not.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The byte stream under the WebSocket: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Whether `host` (a name or an address, without brackets) is this machine.
fn is_loopback_host(host: &str) -> bool {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl Connector for WsConnector {
    fn connect<'a>(
        &'a self,
        url: &'a str,
        max_frame_bytes: usize,
    ) -> BoxFuture<'a, Result<Connection, TransportError>> {
        Box::pin(async move {
            let config = WebSocketConfig::default()
                .max_message_size(Some(max_frame_bytes))
                .max_frame_size(Some(max_frame_bytes));
            let request = url
                .into_client_request()
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            let uri = request.uri();
            let (tls, default_port) = match uri.scheme_str() {
                Some("ws") => (false, 80),
                Some("wss") => (true, 443),
                _ => {
                    return Err(TransportError(format!(
                        "connect: only ws:// and wss:// URLs are supported, not {url}"
                    )))
                }
            };
            let host = uri
                .host()
                .ok_or_else(|| TransportError(format!("connect: no host in {url}")))?;
            // `[::1]` in a URL is `::1` to the resolver and to the certificate check.
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            if !tls && !is_loopback_host(&host) {
                // The connect and refresh commands carry the access token: never in clear text
                // over a network.
                return Err(TransportError(format!(
                    "connect: ws:// is only for a chat server on this machine; use wss:// for {host}"
                )));
            }
            let port = uri.port_u16().unwrap_or(default_port);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            let io: Box<dyn Io> = if tls {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| TransportError::tls(&host, e))?;
                let stream = tokio_rustls::TlsConnector::from(self.tls()?)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| TransportError::handshake(&host, &e))?;
                Box::new(stream)
            } else {
                Box::new(tcp)
            };
            // tungstenite reads the socket into what is left of its frame buffer, which is
            // small while earlier frames (shared slices of it) are still being decoded: a few
            // KiB per read. Reading through a buffer of our own keeps each `recv` large.
            let io = tokio::io::BufReader::with_capacity(SOCKET_READ_BYTES, io);
            let (ws, _) = tokio_tungstenite::client_async_with_config(request, io, Some(config))
                .await
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            let (sink, stream) = ws.split();
            let sink = sink
                .sink_map_err(|e| TransportError(format!("write: {e}")))
                .with(|text: String| async move { Ok::<_, TransportError>(Message::text(text)) });
            let stream = ReadAhead::spawn(stream);
            Ok(Connection {
                sink: Box::pin(sink),
                stream: Box::pin(stream),
            })
        })
    }
}

/// Bytes asked of the socket per read (see [`WsConnector::connect`]).
const SOCKET_READ_BYTES: usize = 128 * 1024;

/// Frames read ahead are handed over in batches of at most this many frames…
/// (Each hand-over may wake a parked worker thread, which costs more than decoding a frame:
/// 1,024 against 64 took the relay from 2.3 to 2.6–2.8 M publications/s in the relay-only
/// bench; 4,096 frames or 1 MiB were slower again, the batches no longer fitting the cache.)
const READ_BATCH_FRAMES: usize = 1024;
/// …or this many bytes (whichever comes first)…
const READ_BATCH_BYTES: usize = 256 * 1024;
/// …with at most this many batches waiting. The read-ahead therefore holds at most
/// `READ_AHEAD_BATCHES + 1` batches (one being filled), each within the limits above plus one
/// frame (itself bounded by `max_frame_bytes`).
const READ_AHEAD_BATCHES: usize = 4;

type Item = Result<Inbound, TransportError>;

/// The read side of a WebSocket, read by its own task: while the relay decodes one burst of
/// frames, the next one is already being read and checked (WebSocket framing, UTF-8) on the
/// other core. Frames that are already there are taken without waiting and passed on as one
/// batch, so the two tasks meet once per burst, not once per frame. The task stops when the
/// connection ends or fails (after passing that on) or when this stream is dropped.
struct ReadAhead {
    rx: mpsc::Receiver<Vec<Item>>,
    current: Reading<Item>,
}

impl ReadAhead {
    fn spawn<S>(mut ws: S) -> Self
    where
        S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin
            + Send
            + 'static,
    {
        let (tx, rx) = mpsc::channel::<Vec<Item>>(READ_AHEAD_BATCHES);
        let spares = Spares::default();
        let current = Reading::new(spares.clone());
        tokio::spawn(async move {
            loop {
                // `Some(read)` once a read completed; `read` is `None` at the end of the stream.
                let mut read = tokio::select! {
                    read = ws.next() => Some(read),
                    () = tx.closed() => return, // the relay dropped the connection
                };
                let mut batch = spares.take(READ_BATCH_FRAMES);
                let mut bytes = 0;
                let mut ended = false;
                while let Some(r) = read.take() {
                    let Some(r) = r else {
                        ended = true;
                        break;
                    };
                    if let Some(item) = inbound(r) {
                        let text_len = match &item {
                            Ok(Inbound::Text(t)) => Some(t.len()),
                            _ => None,
                        };
                        batch.push(item);
                        match text_len {
                            Some(n) => bytes += n,
                            None => {
                                ended = true; // closed or failed: nothing follows
                                break;
                            }
                        }
                    }
                    if batch.len() >= READ_BATCH_FRAMES || bytes >= READ_BATCH_BYTES {
                        break;
                    }
                    read = ws.next().now_or_never();
                }
                if !batch.is_empty() && tx.send(batch).await.is_err() {
                    return;
                }
                if ended {
                    return; // dropping `tx` ends the stream after what was sent
                }
            }
        });
        Self { rx, current }
    }
}

/// What the relay sees of one read (`None` for control frames, which tungstenite answers).
fn inbound(read: Result<Message, tokio_tungstenite::tungstenite::Error>) -> Option<Item> {
    match read {
        // The frame's text is a shared slice of tungstenite's read buffer: no copy here, and the
        // relay's task, which drops it, only releases a reference.
        Ok(Message::Text(t)) => Some(Ok(Inbound::Text(t))),
        Ok(Message::Binary(b)) => Some(Ok(Inbound::Text(
            String::from_utf8_lossy(&b).into_owned().into(),
        ))),
        Ok(Message::Close(frame)) => Some(Ok(Inbound::Closed {
            code: frame.as_ref().map(|f| u16::from(f.code)),
            reason: frame
                .map(|f| f.reason.as_str().to_owned())
                .unwrap_or_default(),
        })),
        Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
        Err(e) => Some(Err(TransportError(format!("read: {e}")))),
    }
}

impl Stream for ReadAhead {
    type Item = Item;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            if let Some(item) = self.current.next() {
                return Poll::Ready(Some(item));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.current.start(batch),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
#[path = "../tests/common/pki.rs"]
mod pki;

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn clear_text_is_refused_off_this_machine() {
        assert!(is_loopback_host("127.0.0.1") && is_loopback_host("::1"));
        assert!(is_loopback_host("localhost") && !is_loopback_host("chat.example.test"));
        let refused = WsConnector::default()
            .connect("ws://chat.example.test/connection/websocket", 65536)
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(refused.0.contains("use wss://"), "{}", refused.0);
    }

    use super::pki::TestPki;
    use super::*;

    async fn dial_error(url: &str) -> String {
        dial_error_with(&WsConnector::default(), url).await
    }

    async fn dial_error_with(connector: &WsConnector, url: &str) -> String {
        match connector.connect(url, 1 << 16).await {
            Ok(_) => panic!("{url} must not connect"),
            Err(e) => e.0,
        }
    }

    #[tokio::test]
    async fn urls_it_cannot_dial_get_an_error_that_names_the_problem() {
        for url in ["http://127.0.0.1:1/", "ftp://chat.example/"] {
            let e = dial_error(url).await;
            assert!(
                e.contains("only ws:// and wss:// URLs are supported") && e.contains(url),
                "{url}: {e}"
            );
        }
        let e = dial_error("not a url").await;
        assert!(e.starts_with("connect: "), "an unparsable URL: {e}");
        // Nothing listens on port 1 of loopback: the dial itself fails, with the OS's reason.
        for url in [
            "ws://127.0.0.1:1/connection/websocket",
            "wss://127.0.0.1:1/connection/websocket",
        ] {
            let e = dial_error(url).await;
            assert!(
                e.starts_with("connect: ") && e.len() > "connect: ".len(),
                "{url}: {e}"
            );
            assert!(
                !TransportError(e.clone()).is_tls(),
                "an outage is not a TLS problem: {e}"
            );
        }
    }

    /// A WebSocket server behind TLS on loopback that greets each client with one text frame.
    async fn tls_greeter(pki: &TestPki) -> u16 {
        let acceptor = pki.acceptor();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return; // the client refused the certificate
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    let _ = ws.send(Message::text("hello over TLS")).await;
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn wss_checks_the_servers_certificate_and_then_carries_frames() {
        let pki = TestPki::new(&["localhost"]);
        let port = tls_greeter(&pki).await;
        let url = format!("wss://localhost:{port}/connection/websocket");

        let trusting = WsConnector::with_root_certificates([pki.ca.clone()]).expect("roots");
        let mut conn = trusting.connect(&url, 1 << 16).await.expect("wss connects");
        match conn.stream.next().await {
            Some(Ok(Inbound::Text(t))) => assert_eq!(t.as_str(), "hello over TLS"),
            other => panic!("the server's frame arrives over TLS, got {other:?}"),
        }

        // The default roots do not include the test CA: refused, and the error says why.
        let e = dial_error(&url).await;
        assert!(
            e.contains("TLS with localhost") && e.contains("invalid peer certificate"),
            "an unknown CA: {e}"
        );
        assert!(TransportError(e.clone()).is_tls(), "{e}");
        assert!(
            e.contains("not from an authority this app trusts") && e.contains("UnknownIssuer"),
            "the meaning first, rustls' words after: {e}"
        );

        // A trusted certificate for another name: refused too.
        let e = dial_error_with(
            &trusting,
            &format!("wss://127.0.0.1:{port}/connection/websocket"),
        )
        .await;
        assert!(
            e.contains("invalid peer certificate")
                && e.contains("127.0.0.1")
                && e.contains("for another name"),
            "a certificate for another name: {e}"
        );
    }

    #[test]
    fn root_certificates_must_be_given_and_be_certificates() {
        let none = WsConnector::with_root_certificates([]);
        assert!(
            matches!(&none, Err(e) if e.0.contains("no root certificate")),
            "an empty set of roots would trust nothing: {none:?}"
        );
        let junk = WsConnector::with_root_certificates([CertificateDer::from(vec![1, 2, 3])]);
        assert!(
            matches!(&junk, Err(e) if e.0.starts_with("TLS root certificate")),
            "{junk:?}"
        );
    }
}
