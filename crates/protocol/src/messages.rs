//! Commands (client → server), replies and pushes (server → client), JSON encoding.
//!
//! Field names follow `definitions/client.proto` of centrifugal/protocol. In the JSON encoding
//! `bytes` fields (`data`, `conn_info`, `chan_info`) carry embedded JSON, so they are
//! [`serde_json::Value`] here. Default values are omitted when serializing, as the reference
//! encoder does, and every field is optional when deserializing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codes::ErrorReply;
use crate::token::Token;

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// An empty JSON object (`{}`), used by `ping` requests/results and unsubscribe/publish results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// A client command. Exactly one request field is set, except for the pong (`{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Command {
    /// Command id, echoed in the reply; 0 only for `send` and the pong.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub id: u32,
    /// Authenticate the connection.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub connect: Option<ConnectRequest>,
    /// Subscribe to a channel.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub subscribe: Option<SubscribeRequest>,
    /// Leave a channel.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub unsubscribe: Option<UnsubscribeRequest>,
    /// Publish into a channel.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub publish: Option<PublishRequest>,
    /// Who is in a channel.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub presence: Option<PresenceRequest>,
    /// How many are in a channel.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub presence_stats: Option<PresenceStatsRequest>,
    /// Read a channel's history.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub history: Option<HistoryRequest>,
    /// Client-initiated ping (protocol v1 style; v2 uses server pings).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub ping: Option<Empty>,
    /// Asynchronous message without reply.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub send: Option<SendRequest>,
    /// Remote procedure call.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub rpc: Option<RpcRequest>,
    /// Replace the connection token.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub refresh: Option<RefreshRequest>,
    /// Replace a subscription token.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub sub_refresh: Option<SubRefreshRequest>,
}

/// What a decoded [`Command`] asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `connect`
    Connect(ConnectRequest),
    /// `subscribe`
    Subscribe(SubscribeRequest),
    /// `unsubscribe`
    Unsubscribe(UnsubscribeRequest),
    /// `publish`
    Publish(PublishRequest),
    /// `presence`
    Presence(PresenceRequest),
    /// `presence_stats`
    PresenceStats(PresenceStatsRequest),
    /// `history`
    History(HistoryRequest),
    /// `ping`
    Ping,
    /// `send` (no reply)
    Send(SendRequest),
    /// `rpc`
    Rpc(RpcRequest),
    /// `refresh`
    Refresh(RefreshRequest),
    /// `sub_refresh`
    SubRefresh(SubRefreshRequest),
}

/// A command sorted into what the server must do with it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `{}`: the answer to a server ping.
    Pong,
    /// A request; `id` is 0 only for `send`.
    Request {
        /// Command id to echo.
        id: u32,
        /// The request.
        request: Request,
    },
}

/// Why a command is not a valid request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// More than one request field is set.
    #[error("command sets more than one method")]
    MultipleMethods,
    /// A non-empty command without a known method.
    #[error("command has an id but no method")]
    NoMethod,
    /// A method that needs a reply was sent with id 0.
    #[error("command without id")]
    MissingId,
}

impl Command {
    /// Sorts the command into a pong or exactly one request.
    pub fn into_incoming(self) -> Result<Incoming, CommandError> {
        let id = self.id;
        let mut found: Vec<Request> = Vec::with_capacity(1);
        if let Some(r) = self.connect {
            found.push(Request::Connect(r));
        }
        if let Some(r) = self.subscribe {
            found.push(Request::Subscribe(r));
        }
        if let Some(r) = self.unsubscribe {
            found.push(Request::Unsubscribe(r));
        }
        if let Some(r) = self.publish {
            found.push(Request::Publish(r));
        }
        if let Some(r) = self.presence {
            found.push(Request::Presence(r));
        }
        if let Some(r) = self.presence_stats {
            found.push(Request::PresenceStats(r));
        }
        if let Some(r) = self.history {
            found.push(Request::History(r));
        }
        if self.ping.is_some() {
            found.push(Request::Ping);
        }
        if let Some(r) = self.send {
            found.push(Request::Send(r));
        }
        if let Some(r) = self.rpc {
            found.push(Request::Rpc(r));
        }
        if let Some(r) = self.refresh {
            found.push(Request::Refresh(r));
        }
        if let Some(r) = self.sub_refresh {
            found.push(Request::SubRefresh(r));
        }
        if found.len() > 1 {
            return Err(CommandError::MultipleMethods);
        }
        match found.pop() {
            None if id == 0 => Ok(Incoming::Pong),
            None => Err(CommandError::NoMethod),
            Some(request @ Request::Send(_)) => Ok(Incoming::Request { id, request }),
            Some(_) if id == 0 => Err(CommandError::MissingId),
            Some(request) => Ok(Incoming::Request { id, request }),
        }
    }
}

/// `connect` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    /// The connection token (a JWT access token from the IdP).
    #[serde(skip_serializing_if = "Token::is_empty")]
    pub token: Token,
    /// Custom connect data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Server-side subscriptions requested at connect (not supported by confab-server).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "crate::strict::map"
    )]
    pub subs: BTreeMap<String, SubscribeRequest>,
    /// Client name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Client version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Emulated headers (not used).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `connect` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    /// Unique client (connection) id.
    pub client: String,
    /// Server version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Whether the connection expires (token has `exp`).
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until the connection expires; the client should `refresh` before.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    /// Custom data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Server-side subscriptions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subs: BTreeMap<String, SubscribeResult>,
    /// Server ping interval in seconds.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ping: u32,
    /// Whether the server expects a pong to each ping.
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
    /// Session id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// Node name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Server time, Unix milliseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
}

/// `refresh` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    /// The new token.
    pub token: Token,
}

/// `refresh` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    /// Client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client: String,
    /// Server version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Whether the connection expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until it expires.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}

/// `subscribe` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    /// Channel name, e.g. `room:general`.
    pub channel: String,
    /// Subscription token (not used by confab-server: membership is checked instead).
    #[serde(skip_serializing_if = "Token::is_empty")]
    pub token: Token,
    /// Ask for the publications missed since `offset`/`epoch`.
    #[serde(skip_serializing_if = "is_false")]
    pub recover: bool,
    /// Epoch of the last seen position.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Offset of the last seen publication.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Custom subscribe data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Ask for a positioned stream (offsets in every publication).
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    /// Ask for a recoverable stream.
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    /// Ask for join/leave pushes.
    #[serde(skip_serializing_if = "is_false")]
    pub join_leave: bool,
    /// Delta compression format (not supported, ignored).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub delta: String,
}

/// `subscribe` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubscribeResult {
    /// Whether the subscription expires.
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    /// Seconds until it expires.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    /// Whether the stream can be recovered later.
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    /// Current epoch of the channel stream.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Recovered publications, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// Whether every missed publication was returned.
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    /// Current top offset of the stream.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Whether the stream is positioned.
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    /// Custom data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Whether the client asked for recovery.
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
    /// Whether delta compression is on.
    #[serde(skip_serializing_if = "is_false")]
    pub delta: bool,
}

/// `sub_refresh` request (subscription tokens are not used by confab-server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    /// Channel.
    pub channel: String,
    /// New subscription token.
    #[serde(skip_serializing_if = "Token::is_empty")]
    pub token: Token,
}

/// `unsubscribe` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnsubscribeRequest {
    /// Channel.
    pub channel: String,
}

/// `publish` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishRequest {
    /// Channel.
    pub channel: String,
    /// Publication payload (a [`crate::ChatMessage`] in `room:` channels).
    pub data: Value,
}

/// `publish` result. The reference protocol's result is empty; confab-server adds the
/// stream position of the stored publication (a Confab extension that other clients ignore).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishResult {
    /// Offset of the publication (Confab extension; 0 = not reported).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Epoch of the stream (Confab extension).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
}

/// `presence` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceRequest {
    /// Channel.
    pub channel: String,
}

/// `presence` result: client id → info.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceResult {
    /// Who is subscribed, keyed by client id.
    pub presence: BTreeMap<String, ClientInfo>,
}

/// `presence_stats` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceStatsRequest {
    /// Channel.
    pub channel: String,
}

/// `presence_stats` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceStatsResult {
    /// Number of subscribed connections.
    pub num_clients: u32,
    /// Number of distinct users.
    pub num_users: u32,
}

/// A position in a channel stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamPosition {
    /// Offset of a publication (1-based; 0 = before the first).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Epoch of the stream.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
}

/// `history` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    /// Channel.
    pub channel: String,
    /// 0 = only the stream position, -1 = everything (up to the server's cap), n = at most n.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub limit: i32,
    /// Return publications after this position (or before it when `reverse`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::strict::option"
    )]
    pub since: Option<StreamPosition>,
    /// Newest first.
    #[serde(skip_serializing_if = "is_false")]
    pub reverse: bool,
}

/// `history` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryResult {
    /// Publications in the requested order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    /// Current epoch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// Current top offset.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
}

/// `rpc` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcRequest {
    /// Method arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Method name, e.g. `rooms.list`.
    pub method: String,
}

/// `rpc` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcResult {
    /// Method result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `send` request (asynchronous message).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    /// Payload.
    pub data: Value,
}

/// Information about a client: in presence, join/leave and publications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientInfo {
    /// User id (the token's `sub`).
    pub user: String,
    /// Client (connection) id.
    pub client: String,
    /// Connection info (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<Value>,
    /// Channel info (JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<Value>,
}

/// A publication in a channel stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Publication {
    /// Payload.
    pub data: Value,
    /// Publisher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    /// Stream offset (epoch is given in subscribe/history results).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    /// Tags.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Publication time, Unix milliseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
}

/// A reply to a command, or (with id 0) a push, or (empty) a server ping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// Id of the command this answers; 0 for pushes and pings.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub id: u32,
    /// Error instead of a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReply>,
    /// Asynchronous push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<Push>,
    /// `connect` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectResult>,
    /// `subscribe` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<SubscribeResult>,
    /// `unsubscribe` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<Empty>,
    /// `publish` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishResult>,
    /// `presence` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceResult>,
    /// `presence_stats` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_stats: Option<PresenceStatsResult>,
    /// `history` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryResult>,
    /// `ping` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ping: Option<Empty>,
    /// `rpc` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc: Option<RpcResult>,
    /// `refresh` result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshResult>,
}

impl Reply {
    /// An error reply to command `id`.
    pub fn error(id: u32, error: ErrorReply) -> Self {
        Self {
            id,
            error: Some(error),
            ..Self::default()
        }
    }

    /// A push (id 0).
    pub fn push(push: Push) -> Self {
        Self {
            push: Some(push),
            ..Self::default()
        }
    }

    /// The server ping: an empty object.
    pub fn ping() -> Self {
        Self::default()
    }

    /// True for the empty reply `{}` (a server ping).
    pub fn is_ping(&self) -> bool {
        *self == Self::default()
    }
}

/// A push: something that happened in a channel or to the connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Push {
    /// Channel the push belongs to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// A new publication.
    #[serde(rename = "pub", skip_serializing_if = "Option::is_none")]
    pub publication: Option<Publication>,
    /// Someone joined the channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<Join>,
    /// Someone left the channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave: Option<Leave>,
    /// The server unsubscribed the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe: Option<UnsubscribePush>,
    /// An asynchronous message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The server disconnects the client (also sent as a close frame).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnect: Option<DisconnectPush>,
}

/// Join push body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Join {
    /// Who joined.
    pub info: ClientInfo,
}

/// Leave push body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Leave {
    /// Who left.
    pub info: ClientInfo,
}

/// Unsubscribe push body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnsubscribePush {
    /// Unsubscribe code (2000–2999; see the protocol docs for which ask to resubscribe).
    pub code: u32,
    /// Reason.
    pub reason: String,
}

/// Message push body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Message {
    /// Payload.
    pub data: Value,
}

/// Disconnect push body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisconnectPush {
    /// Disconnect code.
    pub code: u32,
    /// Reason.
    pub reason: String,
    /// Whether the client should reconnect.
    pub reconnect: bool,
}
