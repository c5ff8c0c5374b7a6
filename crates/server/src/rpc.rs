//! RPC methods: the room list, creating and joining rooms.
//!
//! - `rooms.list` `{"after"?, "limit"?}` → `{"rooms":[{"id","name","member"}], "next"?}`: one
//!   page in id order ([`DEFAULT_ROOMS_PAGE`] rooms, `limit` up to [`MAX_ROOMS_PAGE`]); `next`
//!   is the `after` of the following page and is absent on the last one. A full page of the
//!   longest ids and names is about 100 KiB, inside the reply cap.
//! - `rooms.create` `{"id"?, "name"}` → `{"room":{"id","name"}}` (the creator becomes a member;
//!   without `id` one is generated; an existing id is error 107 "room already exists"; error
//!   106 when the creator's or the server's room cap is reached)
//! - `rooms.join` `{"id"}` → `{"room":{"id","name"}}` (error 102 for an unknown room)

use confab_protocol::{room_channel, room_id, ErrorCode, ErrorReply, Reply, RpcRequest, RpcResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::unix_now_ms;
use crate::store::Created;
use crate::AppState;

/// Rooms in a `rooms.list` page without `limit`.
pub const DEFAULT_ROOMS_PAGE: usize = 100;
/// Most rooms in one `rooms.list` page.
pub const MAX_ROOMS_PAGE: usize = 200;

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
}

#[derive(Deserialize)]
struct JoinArgs {
    id: String,
}

enum RpcError {
    Code(u32),
    Message(u32, &'static str),
}

fn parse<T: serde::de::DeserializeOwned>(data: Option<Value>) -> Result<T, RpcError> {
    serde_json::from_value(data.unwrap_or(Value::Null)).map_err(|_| {
        RpcError::Message(ErrorCode::BAD_REQUEST, "bad request: invalid rpc arguments")
    })
}

/// Runs one RPC for `user` and builds the reply to command `id`.
pub async fn handle(state: &AppState, user: &str, id: u32, req: RpcRequest) -> Reply {
    let store = state.store.clone();
    let user = user.to_owned();
    let method = req.method.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Value, RpcError> {
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
                let limit = match args.limit {
                    None => DEFAULT_ROOMS_PAGE,
                    Some(n @ 1..=MAX_ROOMS_PAGE) => n,
                    Some(_) => {
                        return Err(RpcError::Message(
                            ErrorCode::BAD_REQUEST,
                            "bad request: limit must be 1-200",
                        ))
                    }
                };
                let page = store
                    .rooms(&user, args.after.as_deref(), limit)
                    .map_err(internal)?;
                let rooms: Vec<Value> = page
                    .rooms
                    .into_iter()
                    .map(|(r, member)| json!({"id": r.id, "name": r.name, "member": member}))
                    .collect();
                Ok(match page.next {
                    Some(next) => json!({ "rooms": rooms, "next": next }),
                    None => json!({ "rooms": rooms }),
                })
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
                    .create_room(&id, name, &user, unix_now_ms())
                    .map_err(internal)?
                {
                    Created::Created => Ok(json!({"room": {"id": id, "name": name}})),
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
                let args: JoinArgs = parse(req.data)?;
                if !store.join_room(&args.id, &user).map_err(internal)? {
                    return Err(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL));
                }
                let room = store
                    .room(&args.id)
                    .map_err(internal)?
                    .ok_or(RpcError::Code(ErrorCode::UNKNOWN_CHANNEL))?;
                Ok(json!({"room": room}))
            }
            _ => Err(RpcError::Code(ErrorCode::METHOD_NOT_FOUND)),
        }
    })
    .await;
    match result {
        Ok(Ok(data)) => Reply {
            id,
            rpc: Some(RpcResult { data: Some(data) }),
            ..Reply::default()
        },
        Ok(Err(RpcError::Code(code))) => Reply::error(id, ErrorReply::from_code(code)),
        Ok(Err(RpcError::Message(code, m))) => Reply::error(id, ErrorReply::with_message(code, m)),
        Err(e) => {
            tracing::error!(error = %e, "rpc task failed");
            Reply::error(id, ErrorReply::from_code(ErrorCode::INTERNAL))
        }
    }
}
