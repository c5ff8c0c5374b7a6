//! The backend role's side of a Centrifugo deployment: Centrifugo's server HTTP API (publish
//! with an idempotency key, unsubscribe) and `messages.send` answered through its RPC proxy.
//!
//! The backend is the source of truth, as Centrifugo's design guidance has it: a message is
//! committed to this server's store first (deduplicated by its client message id, with the
//! author and display name written here), queued for Centrifugo in the same transaction, and
//! then
//! published through the server API with the message id as `idempotency_key`. Only after
//! Centrifugo accepted it is the sender told where it landed (`{offset, epoch}` of
//! Centrifugo's stream), so the client's outbox keeps it until then and sends it again with
//! the same id; a message stored but not yet published is published by that retry, or before
//! the next message of its room (one room's messages are published one at a time and in store
//! order, so every subscriber sees the store's order). A send runs in a task of its own: when
//! Centrifugo gives up on the proxy call (its timeout) and the request is dropped, the send
//! still finishes its publishes instead of stopping between two of them.
//!
//! The crate `cent` (the Centrifugo team's Rust server SDK) was judged and not used: the two
//! calls needed here are a few lines on the `reqwest` client the server already has, while
//! `cent` would bring a second TLS and crypto stack (aws-lc-rs, a C build) beside the
//! workspace's ring, and only its 0.1.0 release was reachable from the project's registry.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use confab_protocol::{
    room_channel, room_id, ChatMessage, ClientInfo, ErrorCode, ErrorReply, SendMessage, Sent,
};
use confab_types::SecretString;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use url::Url;

use crate::auth::unix_now_ms;
use crate::error::{Error, Result};
use crate::writer::{Job, PublishJob};
use crate::AppState;

/// Locks that keep one room's publishes in order (rooms share them by hash).
const ROOM_LOCKS: usize = 64;
/// Queued publications published per store read.
const RELAY_BATCH: usize = 100;

/// What went wrong with a server API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer, or not one of Centrifugo's.
    #[error("Centrifugo's server API cannot be reached: {0}")]
    Unreachable(String),
    /// Centrifugo answered with an error.
    #[error("Centrifugo refused the call: {code} {message}")]
    Refused {
        /// Centrifugo's error code.
        code: u32,
        /// Its message.
        message: String,
    },
}

/// A client of Centrifugo's server HTTP API, on one node or several.
pub struct CentrifugoApi {
    http: reqwest::Client,
    bases: Vec<Url>,
    /// The node that answered last: asked first next time.
    preferred: AtomicUsize,
    key: SecretString,
}

impl CentrifugoApi {
    /// A client for the APIs at `bases` (e.g. `http://127.0.0.1:8000/api`, one per node) with
    /// their API key.
    pub fn new(bases: &[Url], key: SecretString) -> Result<Self> {
        if bases.is_empty() {
            return Err(Error::Config("no Centrifugo API URL".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the Centrifugo API client: {e}")))?;
        let bases = bases
            .iter()
            .map(|b| {
                let mut base = b.clone();
                if !base.path().ends_with('/') {
                    let path = format!("{}/", base.path());
                    base.set_path(&path);
                }
                base
            })
            .collect();
        Ok(Self {
            http,
            bases,
            preferred: AtomicUsize::new(0),
            key,
        })
    }

    /// Calls `method` on the preferred node, then on the others while a node cannot be
    /// reached. An answer (result or error) from any node ends the search.
    async fn call(&self, method: &str, body: &Value) -> std::result::Result<Value, ApiError> {
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last = ApiError::Unreachable("no node".into());
        for i in 0..self.bases.len() {
            let n = (first + i) % self.bases.len();
            match self.call_node(&self.bases[n], method, body).await {
                Err(e @ ApiError::Unreachable(_)) => {
                    tracing::warn!(node = n, error = %e, "a Centrifugo node's API did not answer");
                    last = e;
                }
                answered => {
                    self.preferred.store(n, Ordering::Relaxed);
                    return answered;
                }
            }
        }
        Err(last)
    }

    async fn call_node(
        &self,
        base: &Url,
        method: &str,
        body: &Value,
    ) -> std::result::Result<Value, ApiError> {
        let url = base
            .join(method)
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let resp = self
            .http
            .post(url)
            .header("X-API-Key", self.key.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ApiError::Unreachable(format!("HTTP {status}")));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ApiError::Unreachable(format!("not JSON: {}", e.without_url())))?;
        if let Some(e) = body.get("error") {
            return Err(ApiError::Refused {
                code: e
                    .get("code")
                    .and_then(Value::as_u64)
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(ErrorCode::INTERNAL),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        Ok(body.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Publishes `data` into `channel` once per `idempotency_key` (within Centrifugo's
    /// idempotent result window, 5 minutes by default); answers its place in the stream.
    pub async fn publish(
        &self,
        channel: &str,
        data: &Value,
        idempotency_key: &str,
    ) -> std::result::Result<Sent, ApiError> {
        let result = self
            .call(
                "publish",
                &json!({"channel": channel, "data": data, "idempotency_key": idempotency_key}),
            )
            .await?;
        serde_json::from_value(result)
            .map_err(|e| ApiError::Unreachable(format!("unexpected publish result: {e}")))
    }

    /// Ends `user`'s subscriptions to `channel` on every node (unsubscribe push code 2000).
    pub async fn unsubscribe(
        &self,
        user: &str,
        channel: &str,
    ) -> std::result::Result<(), ApiError> {
        self.call("unsubscribe", &json!({"user": user, "channel": channel}))
            .await
            .map(|_| ())
    }
}

/// The backend role's publishing side: the API client and the per-room order.
pub struct Backend {
    api: CentrifugoApi,
    locks: Vec<tokio::sync::Mutex<()>>,
}

fn unavailable(message: &str) -> ErrorReply {
    ErrorReply {
        temporary: true,
        ..ErrorReply::with_message(ErrorCode::INTERNAL, message)
    }
}

fn storage(e: impl std::fmt::Display) -> ErrorReply {
    tracing::error!(error = %e, "storage error in messages.send");
    ErrorReply::from_code(ErrorCode::INTERNAL)
}

impl Backend {
    /// A backend publishing through `api`.
    pub fn new(api: CentrifugoApi) -> Self {
        Self {
            api,
            locks: (0..ROOM_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The server API client.
    pub fn api(&self) -> &CentrifugoApi {
        &self.api
    }

    fn lock_of(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        channel.hash(&mut h);
        let i = usize::try_from(h.finish() % ROOM_LOCKS as u64).unwrap_or(0);
        &self.locks[i]
    }

    /// `messages.send` for `user` on Centrifugo connection `client`: stores, then publishes
    /// (see the module docs), in a task that finishes even if the caller stops waiting.
    /// Answers the place in Centrifugo's stream.
    pub(crate) async fn send(
        self: std::sync::Arc<Self>,
        state: AppState,
        user: String,
        client: String,
        data: Option<Value>,
    ) -> std::result::Result<Sent, ErrorReply> {
        tokio::spawn(async move { self.send_now(&state, &user, &client, data).await })
            .await
            .map_err(storage)?
    }

    async fn send_now(
        &self,
        state: &AppState,
        user: &str,
        client: &str,
        data: Option<Value>,
    ) -> std::result::Result<Sent, ErrorReply> {
        let Some(args) = data.and_then(|d| serde_json::from_value::<SendMessage>(d).ok()) else {
            return Err(ErrorReply::with_message(
                ErrorCode::BAD_REQUEST,
                "bad request: messages.send takes {room, id, text, ts}",
            ));
        };
        let channel = room_channel(&args.room);
        if room_id(&channel).is_none() {
            return Err(ErrorReply::from_code(ErrorCode::UNKNOWN_CHANNEL));
        }
        let store = state.store.clone();
        let who = user.to_owned();
        let name = tokio::task::spawn_blocking(move || store.display_name(&who))
            .await
            .map_err(storage)?
            .map_err(storage)?;
        let message = ChatMessage {
            id: args.id,
            author: user.to_owned(),
            name,
            text: args.text,
            ts: args.ts,
        };
        let _order = self.lock_of(&channel).lock().await;
        // 1. Durable in this server's store and queued for Centrifugo, in one transaction (the
        //    writer checks membership and the text, and answers the stored one for an id sent
        //    before).
        let (tx, rx) = oneshot::channel();
        let job = Job::Publish(PublishJob {
            id: 0,
            channel: channel.clone(),
            room: args.room.clone(),
            user: user.to_owned(),
            info: ClientInfo {
                user: user.to_owned(),
                client: client.to_owned(),
                ..ClientInfo::default()
            },
            message: Some(message),
            time: unix_now_ms(),
            relay: true,
            reply: tx,
        });
        state.writer.submit(job).await.map_err(storage)?;
        let reply = rx.await.map_err(storage)?;
        if let Some(e) = reply.error {
            return Err(e);
        }
        let Some(stored) = reply.publish else {
            return Err(storage("the writer answered without a result"));
        };
        // 2. Published already (a repeated send): where it landed.
        let store = state.store.clone();
        let ch = channel.clone();
        let offset = stored.offset;
        let done = tokio::task::spawn_blocking(move || store.relayed(&ch, offset))
            .await
            .map_err(storage)?
            .map_err(storage)?;
        if let Some(sent) = done {
            return Ok(sent);
        }
        // 3. Published: everything queued before it in this room first, in store order.
        self.relay_queued(state, &channel, offset).await
    }

    /// Publishes `channel`'s queued publications in order up to and including `until`;
    /// answers where `until` landed.
    async fn relay_queued(
        &self,
        state: &AppState,
        channel: &str,
        until: u64,
    ) -> std::result::Result<Sent, ErrorReply> {
        loop {
            let store = state.store.clone();
            let ch = channel.to_owned();
            let batch = tokio::task::spawn_blocking(move || store.pending_relays(&ch, RELAY_BATCH))
                .await
                .map_err(storage)?
                .map_err(storage)?;
            if batch.is_empty() {
                return Err(storage("a queued message vanished before it was published"));
            }
            for pending in batch {
                let sent = match self
                    .api
                    .publish(channel, &pending.data, &pending.msg_id)
                    .await
                {
                    Ok(sent) => sent,
                    Err(e) => {
                        tracing::warn!(error = %e, "publish to Centrifugo failed; the message stays queued");
                        return Err(unavailable(
                            "the chat service did not take the message yet; it is kept and sent again",
                        ));
                    }
                };
                let store = state.store.clone();
                let (ch, s) = (channel.to_owned(), sent.clone());
                tokio::task::spawn_blocking(move || store.mark_relayed(&ch, pending.offset, &s))
                    .await
                    .map_err(storage)?
                    .map_err(storage)?;
                if pending.offset == until {
                    return Ok(sent);
                }
                if pending.offset > until {
                    return Err(storage("the queue skipped the message being sent"));
                }
            }
        }
    }
}
