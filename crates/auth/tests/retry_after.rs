//! A token endpoint that asks the client to slow down (429 / 503 with `Retry-After`): the
//! refresh error is transient and carries the wait, so the session layer can honour it.

use std::time::Duration;

use confab_auth::{AuthClient, AuthConfig, Error, SecretString, MAX_RETRY_AFTER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A provider whose discovery and JWKS are fine and whose token endpoint always answers with
/// `token_head` (status line and extra headers) and `token_body`.
async fn provider(token_head: &'static str, token_body: &'static str) -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let discovery = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let discovery = discovery.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut len = 0;
                while len < buf.len() {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let (status, body) = match path.as_str() {
                    "/.well-known/openid-configuration" => ("200 OK", discovery),
                    "/jwks" => ("200 OK", r#"{"keys":[]}"#.to_owned()),
                    "/token" => (token_head, token_body.to_owned()),
                    _ => ("404 Not Found", String::new()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url::Url::parse(&issuer).expect("issuer url")
}

async fn refresh_error(token_head: &'static str, token_body: &'static str) -> Error {
    let issuer = provider(token_head, token_body).await;
    let client = AuthClient::discover(AuthConfig::new(issuer, "confab-desktop"))
        .await
        .expect("discovery against the fake provider");
    client
        .refresh(&SecretString::new("any-refresh-token".to_owned()))
        .await
        .expect_err("the token endpoint refuses")
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_transient_and_carries_the_wait() {
    let e = refresh_error(
        "429 Too Many Requests\r\nRetry-After: 7",
        r#"{"error":"slow_down"}"#,
    )
    .await;
    assert!(e.is_transient(), "a 429 is retried later: {e:?}");
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_secs(7)),
        "the provider's Retry-After reaches the caller"
    );
    assert!(
        matches!(
            e,
            Error::TokenEndpoint {
                status: Some(429),
                ..
            }
        ),
        "the status is kept: {e:?}"
    );
}

#[tokio::test]
async fn a_503_with_an_unreadable_body_is_still_transient_with_its_http_date() {
    let e = refresh_error(
        "503 Service Unavailable\r\nRetry-After: Fri, 31 Dec 2100 23:59:59 GMT",
        "<html>down for maintenance</html>",
    )
    .await;
    assert!(
        e.is_transient(),
        "a 503 is transient even when its body is not JSON: {e:?}"
    );
    assert_eq!(
        e.retry_after(),
        Some(MAX_RETRY_AFTER),
        "an HTTP-date far away is honoured but capped"
    );
}

#[tokio::test]
async fn a_429_without_retry_after_has_no_wait_and_other_errors_are_untouched() {
    let e = refresh_error("429 Too Many Requests", r#"{"error":"slow_down"}"#).await;
    assert!(e.is_transient(), "a 429 is transient: {e:?}");
    assert_eq!(e.retry_after(), None, "no header, no wait");
    let e = refresh_error(
        "400 Bad Request\r\nRetry-After: 5",
        r#"{"error":"invalid_grant"}"#,
    )
    .await;
    assert!(
        matches!(e, Error::InvalidGrant { .. }),
        "invalid_grant stays invalid_grant: {e:?}"
    );
    assert_eq!(e.retry_after(), None, "Retry-After only counts on 429/503");
}
