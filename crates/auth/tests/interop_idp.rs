//! confab-auth against the real test IdP configured like other providers (`tests/idp`'s
//! interoperability switches): revocation published only in RFC 8414 metadata, or nowhere;
//! RFC 8414 metadata for another issuer; only https resource indicators; error responses
//! without `iss`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use confab_auth::{AuthClient, AuthConfig, Error, ErrorCode, RedirectTarget};
use confab_testkit::{
    headless_login, headless_login_as, jwt_claims, CallbackParams, Idp, IdpOptions, CHAT_RESOURCE,
    CLIENT_ID, DEFAULT_AUDIENCE, PRIVATE_USE_REDIRECT_URI,
};
use url::Url;

async fn start_idp(switches: &[(&str, &str)]) -> Idp {
    let options = switches
        .iter()
        .fold(IdpOptions::default(), |o, (k, v)| o.with_env(k, v));
    Idp::start(options)
        .await
        .expect("the test IdP must start (node 20+ and `npm ci` in tests/idp; `cargo xtask test` sets both up)")
}

async fn client_with(idp: &Idp, resource: Option<&str>, user: &str) -> AuthClient {
    let mut config = AuthConfig::new(idp.issuer(), CLIENT_ID);
    config.resource = resource.map(str::to_owned);
    config.extra_auth_params = vec![("login_hint".to_owned(), user.to_owned())];
    AuthClient::discover(config)
        .await
        .expect("discovery against the test IdP succeeds")
}

fn private_use() -> RedirectTarget {
    RedirectTarget::private_use(PRIVATE_USE_REDIRECT_URI).expect("registered redirect is valid")
}

/// A full login; returns the refresh token.
async fn login(client: &AuthClient) -> confab_auth::SecretString {
    let start = client.begin(private_use()).expect("begin succeeds");
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("headless login reaches the redirect URI");
    client
        .complete(callback.as_str())
        .await
        .expect("the login completes")
        .tokens
        .refresh_token
        .expect("a refresh token is issued")
}

/// Log lines written while the guard lives (this thread's default subscriber; the tests run
/// on the current-thread runtime, so everything the client logs lands here).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut all) = self.0.lock() {
            all.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .map(|all| String::from_utf8_lossy(&all).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn revocation_published_only_in_rfc8414_metadata_is_found_and_used() {
    let idp = start_idp(&[("IDP_REVOCATION_IN", "rfc8414")]).await;
    let client = client_with(&idp, Some(CHAT_RESOURCE), "alice").await;
    assert_eq!(
        client.metadata().revocation_endpoint,
        Some(idp.endpoint("/token/revocation")),
        "OIDC discovery lacks it; the RFC 8414 metadata supplies it"
    );
    assert_eq!(
        client.metadata().introspection_endpoint,
        Some(idp.endpoint("/token/introspection")),
        "introspection comes along from the same document"
    );
    let refresh = login(&client).await;
    client
        .revoke(&refresh)
        .await
        .expect("revocation at the RFC 8414 endpoint succeeds");
    assert_eq!(idp.stats().await.expect("stats").revocations, 1);
    assert!(
        idp.refresh(refresh.expose_secret()).await.is_err(),
        "the IdP refuses the revoked refresh token"
    );
}

#[tokio::test]
async fn rfc8414_metadata_naming_another_issuer_is_ignored() {
    let idp = start_idp(&[("IDP_REVOCATION_IN", "rfc8414-foreign")]).await;
    let (logs, _guard) = Captured::start();
    let client = client_with(&idp, Some(CHAT_RESOURCE), "alice").await;
    assert_eq!(
        client.metadata().revocation_endpoint,
        None,
        "an endpoint from metadata of another issuer is not believed"
    );
    let text = logs.text();
    assert!(
        text.contains("ignored RFC 8414 metadata that names another issuer"),
        "the log says why: {text}"
    );
    let refresh = login(&client).await;
    let err = client
        .revoke(&refresh)
        .await
        .expect_err("nothing to revoke at");
    assert_eq!(err.code(), ErrorCode::NotSupported);
    assert_eq!(
        idp.stats().await.expect("stats").revocations,
        0,
        "the token was sent nowhere"
    );
}

#[tokio::test]
async fn no_revocation_endpoint_anywhere_is_said_in_the_log() {
    let idp = start_idp(&[("IDP_REVOCATION_IN", "none")]).await;
    let (logs, _guard) = Captured::start();
    let client = client_with(&idp, Some(CHAT_RESOURCE), "alice").await;
    assert_eq!(client.metadata().revocation_endpoint, None);
    let refresh = login(&client).await;
    let err = client
        .revoke(&refresh)
        .await
        .expect_err("no endpoint to revoke at");
    assert_eq!(err.code(), ErrorCode::NotSupported);
    assert!(
        err.to_string().contains("no revocation endpoint"),
        "the error says why: {err}"
    );
    let text = logs.text();
    assert!(
        text.contains("WARN")
            && text.contains("the refresh token was not revoked")
            && text.contains("no revocation endpoint"),
        "a warning at revocation time says the token was not revoked and why: {text}"
    );
    assert!(
        !text.contains(refresh.expose_secret()),
        "the token itself is never logged"
    );
}

#[tokio::test]
async fn a_provider_that_takes_only_https_resources_is_told_apart() {
    let idp = start_idp(&[("IDP_RESOURCE_HTTPS_ONLY", "1")]).await;
    let client = client_with(&idp, Some(CHAT_RESOURCE), "alice").await;
    let start = client.begin(private_use()).expect("begin");
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back with an error");
    assert_eq!(
        CallbackParams::parse(&callback).error.as_deref(),
        Some("invalid_target"),
        "the IdP refuses urn:confab:chat"
    );
    let err = client
        .complete(callback.as_str())
        .await
        .expect_err("a refused resource never signs in");
    assert!(matches!(err, Error::ResourceRefused { .. }), "{err:?}");
    assert_eq!(err.code().as_str(), "resource-refused");
    assert!(
        err.to_string().contains("chat_resource"),
        "the message names the setting to check: {err}"
    );
    assert_eq!(
        idp.stats().await.expect("stats").token_requests,
        0,
        "no token request"
    );

    // Without `resource` the same provider signs in, and the token is for the chat service.
    let client = client_with(&idp, None, "alice").await;
    let start = client.begin(private_use()).expect("begin");
    assert!(
        !start
            .authorize_url
            .query_pairs()
            .any(|(k, _)| k == "resource"),
        "no resource parameter is sent"
    );
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("login");
    let signed = client.complete(callback.as_str()).await.expect("signed in");
    let claims = jwt_claims(signed.tokens.access_token.expose_secret()).expect("a JWT");
    assert_eq!(claims["aud"], DEFAULT_AUDIENCE);
}

#[tokio::test]
async fn an_error_response_without_iss_is_refused_as_unverifiable() {
    let idp = start_idp(&[("IDP_ERROR_WITHOUT_ISS", "1")]).await;
    let (logs, _guard) = Captured::start();
    let client = client_with(&idp, Some(CHAT_RESOURCE), "alice").await;
    assert!(client.metadata().iss_parameter_supported);
    let start = client.begin(private_use()).expect("begin");
    let callback = headless_login_as(&start.authorize_url, "mallory", PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("the IdP redirects back with an error for an unknown user");
    let params = CallbackParams::parse(&callback);
    assert_eq!(params.error.as_deref(), Some("access_denied"));
    assert_eq!(params.iss, None, "the IdP left iss out of its error");
    let err = client
        .complete(callback.as_str())
        .await
        .expect_err("an unverifiable answer is refused");
    assert_eq!(
        err.code(),
        ErrorCode::IssuerMismatch,
        "refused like a missing iss"
    );
    let message = err.to_string();
    assert!(
        message.contains("could not be verified") && !message.contains("different"),
        "not called another provider's answer: {message}"
    );
    let text = logs.text();
    assert!(
        text.contains("provider_error=access_denied"),
        "the provider's error code is logged: {text}"
    );
    assert!(
        !text.contains("unknown test user"),
        "its description is not: {text}"
    );

    // A success response still carries iss and signs in.
    let start = client.begin(private_use()).expect("begin");
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("login");
    assert!(CallbackParams::parse(&callback).iss.is_some());
    client.complete(callback.as_str()).await.expect("signed in");

    // A real mismatch keeps its message.
    let start = client.begin(private_use()).expect("begin");
    let callback = headless_login(&start.authorize_url, PRIVATE_USE_REDIRECT_URI)
        .await
        .expect("login");
    let mut forged = Url::parse(callback.as_str()).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "https://other.example".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let err = client.complete(forged.as_str()).await.expect_err("mix-up");
    assert_eq!(
        err.to_string(),
        "the sign-in response came from a different identity provider"
    );
}
