//! RPC methods: the room list, creating, joining and leaving rooms, invitations and members.
//!
//! Rooms are public (everyone sees and may join them) or private (only members and invited
//! users see them; joining needs an invitation). A private room someone may not see answers
//! like a missing one (102), so its existence is not revealed.
//!
//! - `rooms.list` `{"after"?, "limit"?}` → `{"rooms":[{"id","name","member","private",
//!   "invited"}], "next"?}`: one page of the rooms the user may see, in id order
//!   ([`DEFAULT_ROOMS_PAGE`] rooms, `limit` up to [`MAX_ROOMS_PAGE`]); `next` is the `after` of
//!   the following page and is absent on the last one. A full page of the longest ids and names
//!   is about 100 KiB, inside the reply cap.
//! - `rooms.create` `{"id"?, "name", "private"?}` → `{"room":{"id","name","private"}}` (the
//!   creator becomes a member and the room's owner; without `id` one is generated; `private`
//!   defaults to false; an existing id is error 107 "room already exists"; error 106 when the
//!   creator's or the server's room cap is reached)
//! - `rooms.join` `{"id"}` → `{"room":{...}}` (a private room needs an invitation, which the
//!   join uses up; 102 for an unknown or unseen room)
//! - `rooms.invite` `{"id", "user"}` → `{}`: a member invites `user` (the `sub` of their token)
//! - `rooms.leave` `{"id"}` → `{}`: the caller leaves; their subscriptions to the room end with
//!   an unsubscribe push (code 2000). The default rooms cannot be left (107).
//! - `rooms.remove` `{"id", "user"}` → `{}`: the room's owner removes a member (and any
//!   invitation); that user's subscriptions end the same way (103 for anyone but the owner)
//! - `rooms.members` `{"id", "after"?, "limit"?}` → `{"members":[user], "owner", "next"?}`: for
//!   members only, paged like `rooms.list`

use confab_protocol::{room_channel, room_id, ErrorCode, ErrorReply, Reply, RpcRequest, RpcResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::unix_now_ms;
use crate::store::{Changed, Created, Joined, Room};
use crate::AppState;

/// Rooms in a `rooms.list` page without `limit`.
pub const DEFAULT_ROOMS_PAGE: usize = 100;
/// Most rooms (or members) in one page.
pub const MAX_ROOMS_PAGE: usize = 200;
/// Longest user id `rooms.invite` and `rooms.remove` accept, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// Unsubscribe push code for a room the user no longer belongs to (Centrifugo's server
/// unsubscribe: the client must not subscribe again).
pub const UNSUBSCRIBE_NOT_MEMBER: u32 = 2000;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct CreateArgs {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize)]
struct RoomArgs {
    id: String,
}

#[derive(Deserialize)]
struct UserArgs {
    id: String,
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersArgs {
    id: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

enum RpcError {
    Code(u32),
    Message(u32, &'static str),
}

/// What a successful RPC answers, and whose subscriptions to a room it ends.
pub(crate) struct Done {
    /// The result.
    pub data: Value,
    /// `(channel, user, reason)`: that user's subscriptions to the channel must end.
    pub ends: Option<(String, String, &'static str)>,
}

impl From<Value> for Done {
    fn from(data: Value) -> Self {
        Self { data, ends: None }
    }
}

fn parse<T: serde::de::DeserializeOwned>(data: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(data.unwrap_or(Value::Null)).map_err(|_| {
        RpcError::Message(ErrorCode::BAD_REQUEST, "bad request: invalid rpc arguments")
    })
}

fn page_limit(limit: Option<usize>) -> Result<usize, RpcError> {
    match limit {
        None => Ok(DEFAULT_ROOMS_PAGE),
        Some(n @ 1..=MAX_ROOMS_PAGE) => Ok(n),
        Some(_) => Err(RpcError::Message(
            ErrorCode::BAD_REQUEST,
            "bad request: limit must be 1-200",
        )),
    }
}

fn check_user_id(user: &str) -> Result<(), RpcError> {
    if user.is_empty() || user.len() > MAX_USER_ID_BYTES || user.chars().any(char::is_control) {
        return Err(RpcError::Message(
            ErrorCode::BAD_REQUEST,
            "bad request: user must be 1-256 bytes without control characters",
        ));
    }
    Ok(())
}

fn room_json(r: &Room) -> Value {
    json!({"id": r.id, "name": r.name, "private": r.private})
}

/// Runs one RPC for `user` on this server's connections and builds the reply to command `id`.
pub async fn handle(state: &AppState, user: &str, id: u32, req: RpcRequest) -> Reply {
    match run(state, user, req.method, req.data).await {
        Ok(done) => {
            if let Some((channel, whose, reason)) = done.ends {
                state
                    .hub
                    .end_subscriptions(&channel, &whose, UNSUBSCRIBE_NOT_MEMBER, reason);
            }
            Reply {
                id,
                rpc: Some(RpcResult {
                    data: Some(done.data),
                }),
                ..Reply::default()
            }
        }
        Err(e) => Reply::error(id, e),
    }
}

/// Runs one of the rooms methods for `user` (the caller ends the subscriptions `ends` names).
pub(crate) async fn run(
    state: &AppState,
    user: &str,
    method: String,
    data: Option<Value>,
) -> Result<Done, ErrorReply> {
    let store = state.store.clone();
    let user = user.to_owned();
    let req = RpcRequest { method, data };
    let method = req.method.clone();
    let default_rooms = state.config.default_rooms.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Done, RpcError> {
        let internal = |e: crate::Error| {
            tracing::error!(error = %e, "storage error in rpc");
            RpcError::Code(ErrorCode::INTERNAL)
        };
        match method.as_str() {
            "rooms.list" => {
                let args: ListArgs = match req.data {
                    None | Some(Value::Null) => ListArgs::default(),
                    data => parse(data)?,
                };
                let limit = page_limit(args.limit)?;
                let page = store
                    .rooms(&user, args.after.as_deref(), limit)
                    .map_err(internal)?;
                let rooms: Vec<Value> = page
                    .rooms
                    .into_iter()
                    .map(|l| {
                        json!({"id": l.room.id, "name": l.room.name, "member": l.member,
                            "private": l.room.private, "invited": l.invited})
                    })
                    .collect();
                Ok(match page.next {
                    Some(next) => json!({ "rooms": rooms, "next": next }),
                    None => json!({ "rooms": rooms }),
                }
                .into())
            }
            "rooms.create" => {
                let args: CreateArgs = parse(req.data)?;
                let id = args
                    .id
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
                if room_id(&room_channel(&id)).is_none() {
                    return Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        "bad request: room id must be 1-64 of [A-Za-z0-9_-]",
                    ));
                }
                let name = args.name.trim();
                if let Err(problem) = confab_protocol::check_room_name(name) {
                    use confab_protocol::RoomNameError as R;
                    return Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        match problem {
                            R::Empty | R::TooLong => {
                                "bad request: room name must be 1-100 characters"
                            }
                            R::ControlCharacter => {
                                "bad request: room name must not contain control characters"
                            }
                            R::Bidi => {
                                "bad request: room name must not contain bidirectional formatting characters"
                            }
                        },
                    ));
                }
                match store
                    .create_room(&id, name, &user, args.private, unix_now_ms())
                    .map_err(internal)?
                {
                    Created::Created => Ok(json!({"room": {"id": id, "name": name,
                        "private": args.private}})
                    .into()),
                    Created::Exists => Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        "bad request: room already exists",
                    )),
                    Created::UserLimit => Err(RpcError::Message(
                        ErrorCode::LIMIT_EXCEEDED,
                        "limit exceeded: you have created as many rooms as this server allows",
                    )),
                    Created::TotalLimit => Err(RpcError::Message(
                        ErrorCode::LIMIT_EXCEEDED,
                        "limit exceeded: this server holds as many rooms as it allows",
                    )),
                }
            }
            "rooms.join" => {
                let args: RoomArgs = parse(req.data)?;
                if store.join_room(&args.id, &user).map_err(internal)? == Joined::NotFound {
                    return Err(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL));
                }
                let room = store
                    .room(&args.id)
                    .map_err(internal)?
                    .ok_or(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL))?;
                Ok(json!({"room": room_json(&room)}).into())
            }
            "rooms.invite" => {
                let args: UserArgs = parse(req.data)?;
                check_user_id(&args.user)?;
                match store.invite(&args.id, &user, &args.user).map_err(internal)? {
                    Changed::Done | Changed::NotMember => Ok(json!({}).into()),
                    Changed::NotFound => Err(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL)),
                    Changed::Forbidden => Err(RpcError::Message(
                        ErrorCode::PERMISSION_DENIED,
                        "permission denied: only members can invite",
                    )),
                }
            }
            "rooms.leave" => {
                let args: RoomArgs = parse(req.data)?;
                if default_rooms.contains(&args.id) {
                    return Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        "bad request: everyone belongs to the server's default rooms",
                    ));
                }
                if !store.leave(&args.id, &user).map_err(internal)? {
                    return Err(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL));
                }
                Ok(Done {
                    data: json!({}),
                    ends: Some((room_channel(&args.id), user.clone(), "left the room")),
                })
            }
            "rooms.remove" => {
                let args: UserArgs = parse(req.data)?;
                check_user_id(&args.user)?;
                if args.user == user {
                    return Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        "bad request: to leave a room, use rooms.leave",
                    ));
                }
                match store
                    .remove_member(&args.id, &user, &args.user)
                    .map_err(internal)?
                {
                    Changed::Done => Ok(Done {
                        data: json!({}),
                        ends: Some((
                            room_channel(&args.id),
                            args.user,
                            "removed from the room",
                        )),
                    }),
                    Changed::NotFound => Err(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL)),
                    Changed::Forbidden => Err(RpcError::Message(
                        ErrorCode::PERMISSION_DENIED,
                        "permission denied: only the room's owner can remove members",
                    )),
                    Changed::NotMember => Err(RpcError::Message(
                        ErrorCode::BAD_REQUEST,
                        "bad request: that user is not a member",
                    )),
                }
            }
            "rooms.members" => {
                let args: MembersArgs = parse(req.data)?;
                let limit = page_limit(args.limit)?;
                let page = store
                    .members(&args.id, &user, args.after.as_deref(), limit)
                    .map_err(internal)?
                    .ok_or(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL))?;
                let mut data = json!({"members": page.members, "owner": page.room.owner});
                if let Some(next) = page.next {
                    data["next"] = json!(next);
                }
                Ok(data.into())
            }
            _ => Err(RpcError::Code(ErrorCode::METHOD_NOT_FOUND)),
        }
    })
    .await;
    match result {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(RpcError::Code(code))) => Err(ErrorReply::from_code(code)),
        Ok(Err(RpcError::Message(code, m))) => Err(ErrorReply::with_message(code, m)),
        Err(e) => {
            tracing::error!(error = %e, "rpc task failed");
            Err(ErrorReply::from_code(ErrorCode::INTERNAL))
        }
    }
}
