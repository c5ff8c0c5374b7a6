//! The transport under the protocol: a [`Connector`] dials and returns a [`Connection`] (a frame
//! sink and a frame stream). [`WsConnector`] is the real one (tokio-tungstenite); tests can
//! provide their own.

use std::pin::Pin;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::token::BoxFuture;

/// A transport failure (dial, read or write).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Something the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text frame (one or more JSON replies separated by `\n`).
    Text(String),
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
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .map_err(|e| TransportError(format!("connect: {e}")))?;
            let (sink, stream) = ws.split();
            let sink = sink
                .sink_map_err(|e| TransportError(format!("write: {e}")))
                .with(|text: String| async move { Ok::<_, TransportError>(Message::text(text)) });
            let stream = stream.filter_map(|item| async move {
                match item {
                    Ok(Message::Text(t)) => Some(Ok(Inbound::Text(t.as_str().to_owned()))),
                    Ok(Message::Binary(b)) => {
                        Some(Ok(Inbound::Text(String::from_utf8_lossy(&b).into_owned())))
                    }
                    Ok(Message::Close(frame)) => Some(Ok(Inbound::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame
                            .map(|f| f.reason.as_str().to_owned())
                            .unwrap_or_default(),
                    })),
                    Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => None,
                    Err(e) => Some(Err(TransportError(format!("read: {e}")))),
                }
            });
            Ok(Connection {
                sink: Box::pin(sink),
                stream: Box::pin(stream),
            })
        })
    }
}
