//! Shared helpers for the server's integration tests: an in-process server, a WebSocket
//! protocol client, and token forgeries built from real IdP tokens.
#![allow(dead_code)]

pub mod issuer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use confab_protocol::{decode_replies, Reply};
use confab_server::{Config, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expectation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A config for tests: loopback, port 0, a database in `dir`, pings off unless asked.
pub fn test_config(issuer: &str, dir: &Path) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        issuer: issuer.trim_end_matches('/').to_owned(),
        audience: "confab-chat".into(),
        db: dir.join("confab.sqlite3"),
        ping_interval_secs: 0,
        expired_close_delay_ms: 0,
        jwks_refetch_interval_secs: 1,
        token_leeway_secs: 0,
        ..Config::default()
    }
}

/// An in-process server; dropping it stops nothing, call `shutdown` for a graceful stop.
pub struct TestServer {
    pub url: String,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<confab_server::Result<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let server = Server::bind(config).await.expect("server binds");
        let url = server.websocket_url().expect("bound address");
        let addr = server.local_addr().expect("bound address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        Self {
            url,
            addr,
            stop: Some(tx),
            task,
        }
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let res = tokio::time::timeout(DEADLINE, &mut self.task).await;
        assert!(
            matches!(res, Ok(Ok(Ok(())))),
            "server shuts down cleanly within the deadline"
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw protocol client over tokio-tungstenite.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    buffered: VecDeque<Reply>,
    next_id: u32,
    /// Server pings seen (empty replies).
    pub pings: usize,
    /// Answer server pings automatically.
    pub auto_pong: bool,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Client {
    pub async fn open(url: &str) -> Self {
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket connect within deadline")
            .expect("websocket handshake succeeds");
        Self {
            ws,
            buffered: VecDeque::new(),
            next_id: 0,
            pings: 0,
            auto_pong: true,
        }
    }

    /// Opens and sends `connect`; returns the reply.
    pub async fn connect(url: &str, token: &str) -> (Self, Reply) {
        let mut c = Self::open(url).await;
        let r = c
            .call(json!({"connect": {"token": token, "name": "rust-test"}}))
            .await;
        (c, r)
    }

    /// Opens and connects, asserting success.
    pub async fn connected(url: &str, token: &str) -> Self {
        let (c, r) = Self::connect(url, token).await;
        assert!(
            r.connect.is_some(),
            "connect with a valid token succeeds, got {r:?}"
        );
        c
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send frame");
    }

    /// Sends a text frame whose payload is `bytes` as they are (not checked for UTF-8).
    pub async fn send_raw_text(&mut self, bytes: &[u8]) {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        let frame = Frame::message(bytes.to_vec(), OpCode::Data(Data::Text), true);
        self.ws
            .send(Message::Frame(frame))
            .await
            .expect("send raw frame");
    }

    /// Sends a command with a fresh id, returns the id.
    pub async fn send_cmd(&mut self, mut cmd: Value) -> u32 {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        self.send_text(&cmd.to_string()).await;
        id
    }

    /// Sends a command and waits for its reply (pushes are buffered for `next_push`).
    pub async fn call(&mut self, cmd: Value) -> Reply {
        let id = self.send_cmd(cmd).await;
        self.reply_to(id).await
    }

    pub async fn reply_to(&mut self, id: u32) -> Reply {
        let deadline = Instant::now() + DEADLINE;
        if let Some(pos) = self.buffered.iter().position(|r| r.id == id) {
            return self.buffered.remove(pos).expect("position is valid");
        }
        loop {
            let r = self.read_one(deadline).await.unwrap_or_else(|c| {
                panic!("connection closed while waiting for reply {id}: {c:?}")
            });
            if r.id == id {
                return r;
            }
            self.buffered.push_back(r);
        }
    }

    /// The next push (id 0, non-ping).
    pub async fn next_push(&mut self) -> confab_protocol::Push {
        self.try_next_push(DEADLINE)
            .await
            .expect("a push arrives within the deadline")
    }

    pub async fn try_next_push(&mut self, within: Duration) -> Option<confab_protocol::Push> {
        if let Some(pos) = self.buffered.iter().position(|r| r.push.is_some()) {
            return self.buffered.remove(pos).and_then(|r| r.push);
        }
        let deadline = Instant::now() + within;
        loop {
            // read_one panics at its own deadline; give it a later one so that this timeout
            // (an expected outcome here) fires first.
            match tokio::time::timeout_at(deadline, self.read_one(deadline + DEADLINE)).await {
                Ok(Ok(r)) if r.push.is_some() => return r.push,
                Ok(Ok(r)) => self.buffered.push_back(r),
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    async fn read_one(&mut self, deadline: Instant) -> Result<Reply, Closed> {
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => panic!("nothing received before the deadline"),
                Ok(None) => {
                    return Err(Closed {
                        code: 1006,
                        reason: "eof".into(),
                    })
                }
                Ok(Some(Err(e))) => {
                    return Err(Closed {
                        code: 1006,
                        reason: e.to_string(),
                    })
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => {
                    let replies =
                        decode_replies(t.as_bytes(), usize::MAX).expect("server frames decode");
                    let mut out = None;
                    for r in replies {
                        if r.is_ping() {
                            self.pings += 1;
                            if self.auto_pong {
                                self.send_text("{}").await;
                            }
                            continue;
                        }
                        if out.is_none() {
                            out = Some(r);
                        } else {
                            self.buffered.push_back(r);
                        }
                    }
                    if let Some(r) = out {
                        return Ok(r);
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Err(Closed { code, reason });
                }
                _ => {}
            }
        }
    }

    /// Waits for the server to close the connection; returns the close code and reason.
    pub async fn expect_close(&mut self) -> Closed {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.read_one(deadline).await {
                Err(c) => return c,
                Ok(r) => self.buffered.push_back(r),
            }
        }
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}

/// Error code of a reply, if it is an error.
pub fn error_code(r: &Reply) -> Option<u32> {
    r.error.as_ref().map(|e| e.code)
}

/// A chat message payload.
pub fn chat(text: &str) -> Value {
    json!({"id": uuid::Uuid::new_v4(), "author": "", "text": text, "ts": 1})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Splits a JWT into decoded header, decoded payload and the raw signature part.
pub fn jwt_parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let h = it.next().expect("jwt header");
    let p = it.next().expect("jwt payload");
    let s = it.next().expect("jwt signature").to_owned();
    let dec = |x: &str| {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(x).expect("base64url")).expect("json")
    };
    (dec(h), dec(p), s)
}

/// The same token with a modified payload and the original signature.
pub fn tamper(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (h, mut p, s) = jwt_parts(token);
    edit(&mut p);
    format!("{}.{}.{}", b64(&h), b64(&p), s)
}

/// An unsigned token (`alg: none`) with the given payload.
pub fn alg_none(token: &str) -> String {
    let (mut h, p, _) = jwt_parts(token);
    h["alg"] = json!("none");
    format!("{}.{}.", b64(&h), b64(&p))
}

/// The classic key-confusion forgery: HS256 with the issuer's RSA public key (PEM) as secret.
pub async fn hs256_with_public_key(issuer: &str, token: &str) -> String {
    use rsa::pkcs8::EncodePublicKey;
    let (h, p, _) = jwt_parts(token);
    let discovery: Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .await
    .expect("discovery fetch")
    .json()
    .await
    .expect("discovery json");
    let jwks: Value = reqwest::get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .await
        .expect("jwks fetch")
        .json()
        .await
        .expect("jwks json");
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == h["kid"]).or(keys.first()))
        .expect("issuer publishes a key")
        .clone();
    let n = URL_SAFE_NO_PAD
        .decode(key["n"].as_str().expect("rsa n"))
        .expect("n b64");
    let e = URL_SAFE_NO_PAD
        .decode(key["e"].as_str().expect("rsa e"))
        .expect("e b64");
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .expect("rsa key");
    let pem = public
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .expect("pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = h["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &p,
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .expect("hs256 signs")
}

/// Polls `f` until it returns Some, failing after `within`.
pub async fn poll<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
