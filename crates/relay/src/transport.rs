//! The transport under the protocol: a [`Connector`] dials and returns a [`Connection`] (a frame
//! sink and a frame stream). [`WsConnector`] is the real one (tokio-tungstenite); tests can
//! provide their own.

use std::pin::Pin;

use std::task::{Context, Poll};

use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
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

/// The real transport: WebSocket over tokio-tungstenite (`ws://` only: TLS is not built in).
#[derive(Debug, Clone, Copy, Default)]
pub struct WsConnector;

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
            if uri.scheme_str() != Some("ws") {
                return Err(TransportError(format!(
                    "connect: only ws:// URLs are supported, not {url}"
                )));
            }
            let host = uri
                .host()
                .ok_or_else(|| TransportError(format!("connect: no host in {url}")))?;
            // `[::1]` in a URL is `::1` to the resolver.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(80);
            let tcp = tokio::net::TcpStream::connect((host, port))
                .await
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            // tungstenite reads the socket into what is left of its frame buffer, which is
            // small while earlier frames (shared slices of it) are still being decoded: a few
            // KiB per read. Reading through a buffer of our own keeps each `recv` large.
            let tcp = tokio::io::BufReader::with_capacity(SOCKET_READ_BYTES, tcp);
            let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
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
mod tests {
    use super::*;

    async fn dial_error(url: &str) -> String {
        match WsConnector.connect(url, 1 << 16).await {
            Ok(_) => panic!("{url} must not connect"),
            Err(e) => e.0,
        }
    }

    #[tokio::test]
    async fn urls_it_cannot_dial_get_an_error_that_names_the_problem() {
        for url in [
            "wss://chat.example/connection/websocket",
            "http://127.0.0.1:1/",
        ] {
            let e = dial_error(url).await;
            assert!(
                e.contains("only ws:// URLs are supported") && e.contains(url),
                "{url}: {e}"
            );
        }
        let e = dial_error("not a url").await;
        assert!(e.starts_with("connect: "), "an unparsable URL: {e}");
        // Nothing listens on port 1 of loopback: the dial itself fails, with the OS's reason.
        let e = dial_error("ws://127.0.0.1:1/connection/websocket").await;
        assert!(
            e.starts_with("connect: ") && e.len() > "connect: ".len(),
            "{e}"
        );
    }
}
