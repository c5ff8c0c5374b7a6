//! The backend role's HTTP endpoints.
//!
//! - `POST /api/chat/token` with `Authorization: Bearer <the user's access token from the
//!   identity provider>` → `{"token": <connection JWT>, "expires_in": N}`. The access token is
//!   verified as today's connect tokens are (the issuer's JWKS, audience, expiry). Refusals are
//!   401 with `WWW-Authenticate: Bearer error="invalid_token"` and `{"error", "error_description"}`
//!   (RFC 6750); too many requests from one user are 429 with `Retry-After`; keys the server
//!   cannot fetch are 503. Nothing is minted on any refusal. Minting does what a connect does
//!   on this server's own connections: the user joins the default rooms; their display name
//!   (`name`, else `preferred_username`) is kept for the messages the backend publishes.
//! - `GET /api/chat/jwks` → the public key set minted tokens verify with.
//! - `POST /api/centrifugo/subscribe`: Centrifugo's subscribe proxy (its HTTP JSON format:
//!   `{client, user, channel, ...}` → `{"result": {}}` or `{"error": {code, message}}`): room
//!   membership decides, as on this server's own connections (102 for an unknown room or a
//!   private room of others, 103 for a non-member). Only calls carrying the configured
//!   `X-Confab-Proxy-Secret` are answered (401 otherwise; 404 with no secret configured).
//! - `POST /api/centrifugo/rpc`: Centrifugo's RPC proxy (`{client, user, method, data}` →
//!   `{"result": {"data": ...}}` or `{"error": {code, message, temporary?}}`), same secret. The
//!   rooms methods answer as on this server's own connections (leaving or removing a member
//!   also ends that user's subscriptions through Centrifugo's server API); `messages.send`
//!   stores the message, then publishes it through the server API ([`crate::centrifugo`]);
//!   any other method is 104 "method not found", an anonymous caller 103.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::auth::AuthError;
use crate::mint::Refused;
use crate::AppState;

fn refused(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(r#"Bearer error="{error}", error_description="{description}""#);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /api/chat/token`.
pub(crate) async fn chat_token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(access) = bearer else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "send the access token as Authorization: Bearer",
        );
    };
    // Only the identity provider's tokens buy a chat token, not a chat token itself.
    let identity = match state.verify_access_token(access).await {
        Ok(i) => i,
        Err(AuthError::Expired) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token has expired",
            )
        }
        Err(AuthError::Invalid(why)) => {
            tracing::info!(why, "chat token refused");
            return refused(StatusCode::UNAUTHORIZED, "invalid_token", why);
        }
        Err(AuthError::KeysUnavailable) => {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the identity provider's keys cannot be fetched; try again",
            )
        }
    };
    // What a connect does on this server's own connections: the user joins the default rooms,
    // and their display name is kept for the messages the backend publishes for them.
    let (store, user, name) = (
        state.store.clone(),
        identity.user.clone(),
        identity.name.clone(),
    );
    let default_rooms = state.config.default_rooms.clone();
    let saved = tokio::task::spawn_blocking(move || -> crate::Result<()> {
        for room in &default_rooms {
            store.join_room(room, &user)?;
        }
        if let Some(name) = name {
            store.set_display_name(&user, &name)?;
        }
        Ok(())
    })
    .await;
    if !matches!(saved, Ok(Ok(()))) {
        tracing::error!("cannot add the user to the default rooms");
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the chat backend cannot store the user; try again",
        );
    }
    match state.chat_tokens.mint(&identity) {
        Ok(minted) => {
            let verified_by = if crate::auth::looks_like_jwt(access) {
                "jwks"
            } else {
                "introspection"
            };
            tracing::info!(user = ?identity.user, expires_in = minted.expires_in, verified_by, "chat token minted");
            let mut resp = Json(json!({"token": minted.token, "expires_in": minted.expires_in}))
                .into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(Refused::Expired) => refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token expires too soon",
        ),
        Err(Refused::TooMany(secs)) => {
            let mut resp = refused(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many chat tokens for this user; try again later",
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

/// What Centrifugo's subscribe proxy sends (the fields this server reads).
#[derive(serde::Deserialize)]
pub(crate) struct SubscribeProxyRequest {
    #[serde(default)]
    user: String,
    channel: String,
}

/// Why a proxy call is not answered.
enum ProxyRefusal {
    /// Proxy calls are off (404) or the secret is wrong (401).
    Status(StatusCode),
    /// The body is not the request this proxy reads (400 naming it).
    NotA(&'static str),
}

impl IntoResponse for ProxyRefusal {
    fn into_response(self) -> Response {
        match self {
            Self::Status(status) => status.into_response(),
            Self::NotA(what) => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("not {what}") })),
            )
                .into_response(),
        }
    }
}

/// The request (`what`, e.g. "an RPC proxy request") of a proxy call that may be answered: only calls carrying the
/// configured secret are read.
fn proxy_request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    what: &'static str,
) -> Result<T, ProxyRefusal> {
    let Some(secret) = &state.config.centrifugo_proxy_secret else {
        return Err(ProxyRefusal::Status(StatusCode::NOT_FOUND));
    };
    let given = headers
        .get("x-confab-proxy-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !confab_types::constant_time_eq(given, secret.expose_secret()) {
        tracing::warn!("a proxy call without the right secret was refused");
        return Err(ProxyRefusal::Status(StatusCode::UNAUTHORIZED));
    }
    serde_json::from_slice(body).map_err(|_| ProxyRefusal::NotA(what))
}

fn proxy_error(e: &confab_protocol::ErrorReply) -> Response {
    let mut error = json!({"code": e.code, "message": e.message});
    if e.temporary {
        error["temporary"] = json!(true);
    }
    Json(json!({ "error": error })).into_response()
}

/// What Centrifugo's RPC proxy sends (the fields this server reads).
#[derive(serde::Deserialize)]
pub(crate) struct RpcProxyRequest {
    #[serde(default)]
    client: String,
    #[serde(default)]
    user: String,
    method: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `POST /api/centrifugo/rpc`.
pub(crate) async fn rpc_proxy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use confab_protocol::{ErrorCode, ErrorReply};
    let req: RpcProxyRequest = match proxy_request(&state, &headers, &body, "an RPC proxy request")
    {
        Ok(req) => req,
        Err(refused) => return refused.into_response(),
    };
    if req.user.is_empty() {
        return proxy_error(&ErrorReply::from_code(ErrorCode::PERMISSION_DENIED));
    }
    if req.method == confab_protocol::SEND_METHOD {
        let Some(backend) = state.centrifugo.clone() else {
            return proxy_error(&ErrorReply::with_message(
                ErrorCode::NOT_AVAILABLE,
                "not available: this backend has no Centrifugo server API configured",
            ));
        };
        return match backend
            .send(state.clone(), req.user, req.client, req.data)
            .await
        {
            Ok(sent) => Json(json!({"result": {"data": sent}})).into_response(),
            Err(e) => proxy_error(&e),
        };
    }
    match crate::rpc::run(&state, &req.user, req.method, req.data).await {
        Ok(done) => {
            if let Some((channel, whose, reason)) = done.ends {
                state.hub.end_subscriptions(
                    &channel,
                    &whose,
                    crate::rpc::UNSUBSCRIBE_NOT_MEMBER,
                    reason,
                );
                if let Some(backend) = &state.centrifugo {
                    if let Err(e) = backend.api().unsubscribe(&whose, &channel).await {
                        // The membership is gone: the subscribe proxy refuses the user from now
                        // on, whatever happened to the live subscription.
                        tracing::warn!(error = %e, "cannot end a subscription in Centrifugo");
                    }
                }
            }
            Json(json!({"result": {"data": done.data}})).into_response()
        }
        Err(e) => proxy_error(&e),
    }
}

/// `POST /api/centrifugo/subscribe`.
pub(crate) async fn subscribe_proxy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use confab_protocol::{ErrorCode, ErrorReply};
    let req: SubscribeProxyRequest =
        match proxy_request(&state, &headers, &body, "a subscribe proxy request") {
            Ok(req) => req,
            Err(refused) => return refused.into_response(),
        };
    if req.user.is_empty() {
        return proxy_error(&ErrorReply::from_code(ErrorCode::PERMISSION_DENIED));
    }
    match state.room_access(&req.channel, &req.user).await {
        Ok(()) => Json(json!({"result": {}})).into_response(),
        Err(code) => proxy_error(&ErrorReply::from_code(code)),
    }
}

/// `GET /api/chat/jwks`.
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.chat_tokens.jwks())
}
