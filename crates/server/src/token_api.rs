//! The backend role's HTTP endpoints.
//!
//! - `POST /api/chat/token` with `Authorization: Bearer <the user's access token from the
//!   identity provider>` → `{"token": <connection JWT>, "expires_in": N}`. The access token is
//!   verified as today's connect tokens are (the issuer's JWKS, audience, expiry). Refusals are
//!   401 with `WWW-Authenticate: Bearer error="invalid_token"` and `{"error", "error_description"}`
//!   (RFC 6750); too many requests from one user are 429 with `Retry-After`; keys the server
//!   cannot fetch are 503. Nothing is minted on any refusal.
//! - `GET /api/chat/jwks` → the public key set minted tokens verify with.
//! - `POST /api/centrifugo/subscribe`: Centrifugo's subscribe proxy (its HTTP JSON format:
//!   `{client, user, channel, ...}` → `{"result": {}}` or `{"error": {code, message}}`): room
//!   membership decides, as on this server's own connections (102 for an unknown room or a
//!   private room of others, 103 for a non-member). Only calls carrying the configured
//!   `X-Confab-Proxy-Secret` are answered (401 otherwise; 404 with no secret configured).

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
    let identity = match state.verifier.verify(access).await {
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
    match state.chat_tokens.mint(&identity) {
        Ok(minted) => {
            tracing::info!(user = ?identity.user, expires_in = minted.expires_in, "chat token minted");
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

/// `POST /api/centrifugo/subscribe`.
pub(crate) async fn subscribe_proxy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(secret) = &state.config.centrifugo_proxy_secret else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get("x-confab-proxy-secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !confab_types::constant_time_eq(given, secret.expose_secret()) {
        tracing::warn!("a proxy call without the right secret was refused");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(req) = serde_json::from_slice::<SubscribeProxyRequest>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "not a subscribe proxy request"})),
        )
            .into_response();
    };
    if req.user.is_empty() {
        return Json(json!({"error": {"code": 103, "message": "permission denied"}}))
            .into_response();
    }
    match state.room_access(&req.channel, &req.user).await {
        Ok(()) => Json(json!({"result": {}})).into_response(),
        Err(code) => {
            let e = confab_protocol::ErrorReply::from_code(code);
            Json(json!({"error": {"code": e.code, "message": e.message, "temporary": e.temporary}}))
                .into_response()
        }
    }
}

/// `GET /api/chat/jwks`.
pub(crate) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.chat_tokens.jwks())
}
