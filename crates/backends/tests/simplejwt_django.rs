//! confab-backends' SimpleJWT client against the real Django + DRF + SimpleJWT test backend
//! (`tests/backends/django`, started by confab-testkit): what a person signing in, and an
//! attacker replaying a token, would see.

use std::time::Duration;

use confab_backends::{Error, SimpleJwtClient, SimpleJwtSettings};
use confab_testkit::{Django, DjangoOptions};
use confab_types::SecretString;

fn client_of(django: &Django) -> SimpleJwtClient {
    SimpleJwtClient::new(django.base_url(), SimpleJwtSettings::default())
        .expect("a loopback backend is accepted")
}

fn pw(text: &str) -> SecretString {
    SecretString::from(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_username_or_email_then_rotate_and_blacklist() {
    let django = Django::start(DjangoOptions::default())
        .await
        .expect("the Django backend starts");
    let client = client_of(&django);
    assert_eq!(
        client.issuer(),
        django.base_url().as_str().trim_end_matches('/')
    );

    let by_name = client
        .login("alice", &pw("alice-password"))
        .await
        .expect("alice signs in by username");
    assert_eq!(by_name.profile.username, "alice");
    assert_eq!(by_name.profile.email.as_deref(), Some("alice@example.test"));
    assert_eq!(by_name.profile.name.as_deref(), Some("Alice Example"));
    let by_mail = client
        .login("  alice@example.test ", &pw("alice-password"))
        .await
        .expect("alice signs in by email (surrounding spaces trimmed)");
    assert_eq!(
        by_mail.profile.id, by_name.profile.id,
        "one user, one id, however they typed it"
    );
    assert_eq!(
        by_mail.profile.id, "alice",
        "the id is the username the chat tokens carry, not what was typed"
    );
    let by_claim = SimpleJwtClient::new(
        django.base_url(),
        SimpleJwtSettings {
            user_id_claim: "user_id".to_owned(),
            ..SimpleJwtSettings::default()
        },
    )
    .expect("client")
    .login("alice", &pw("alice-password"))
    .await
    .expect("alice signs in");
    assert_ne!(
        by_claim.profile.id, "alice",
        "a configured claim names the user instead (SimpleJWT's user_id)"
    );
    let left = by_name
        .tokens
        .expires_at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        left > Duration::from_secs(5) && left <= Duration::from_secs(11),
        "expiry read from the 10 s access token's exp: {left:?}"
    );

    let first = by_name.tokens.refresh.expect("login gives a refresh token");
    let rotated = client.refresh(&first).await.expect("refresh works");
    let second = rotated
        .refresh
        .expect("ROTATE_REFRESH_TOKENS hands out a new refresh token");
    assert_ne!(second, first, "the refresh token rotated");
    assert_eq!(
        client.refresh(&first).await.unwrap_err(),
        Error::TokenRefused,
        "a rotated refresh token replayed is refused (BLACKLIST_AFTER_ROTATION)"
    );

    client
        .blacklist(&second)
        .await
        .expect("sign-out blacklists the current refresh token");
    assert_eq!(
        client.refresh(&second).await.unwrap_err(),
        Error::TokenRefused,
        "the backend refuses a blacklisted token afterwards"
    );
    client
        .blacklist(&second)
        .await
        .expect("blacklisting a token that is already refused is not an error");
    let stats = django.stats().await.expect("stats");
    assert_eq!(stats.refresh_ok, 1);
    assert_eq!(stats.refresh_refused, 2);
    assert!(stats.blacklist_ok >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_worded_and_the_wait_is_the_backends() {
    let django = Django::start(DjangoOptions {
        login_rate: "4/m".to_owned(),
        ..DjangoOptions::default()
    })
    .await
    .expect("the Django backend starts");
    let client = client_of(&django);

    let wrong = client.login("bob", &pw("not-bobs")).await.unwrap_err();
    assert_eq!(wrong, Error::WrongCredentials);
    assert_eq!(
        wrong.to_string(),
        "that email, username or password is not right"
    );
    let unknown = client
        .login("nobody@example.test", &pw("x"))
        .await
        .unwrap_err();
    assert_eq!(
        unknown,
        Error::WrongCredentials,
        "an unknown user reads like a wrong password (no account probing)"
    );
    let inactive = client
        .login("carol", &pw("carol-password"))
        .await
        .unwrap_err();
    assert_eq!(inactive, Error::Inactive, "a deactivated account is told");
    assert!(
        client.login("", &pw("x")).await.unwrap_err().to_string() == "enter your email or username",
        "an empty login is refused before anything is sent"
    );
    let before = django.stats().await.expect("stats").login_attempts;
    assert!(matches!(
        client.login("bob", &pw("")).await.unwrap_err(),
        Error::MissingField(_)
    ));
    assert_eq!(
        django.stats().await.expect("stats").login_attempts,
        before,
        "an incomplete form never reaches the backend"
    );

    // Four attempts a minute (django-ratelimit's fixed windows): the fifth is limited, or a
    // few later when a window boundary passed meanwhile. Wrong passwords only, so an attempt
    // that is let through never signs in.
    let mut limited = None;
    for _ in 0..5 {
        let refused = client.login("bob", &pw("not-bobs")).await.unwrap_err();
        if refused != Error::WrongCredentials {
            limited = Some(refused);
            break;
        }
    }
    let limited = limited.expect("the rate limit answers within five more attempts");
    let Error::RateLimited { retry_after } = limited else {
        panic!("too many attempts in a minute are rate limited: {limited:?}");
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60),
        "the wait is the backend's Retry-After, within its one-minute window: {retry_after:?}"
    );
    assert!(limited
        .to_string()
        .starts_with("too many attempts. Try again in "));
    assert!(limited.is_transient());

    let base = django.base_url();
    django.stop().await.expect("the backend stops");
    let down = SimpleJwtClient::new(base, SimpleJwtSettings::default())
        .expect("client")
        .login("bob", &pw("bob-password"))
        .await
        .unwrap_err();
    assert!(
        matches!(down, Error::Unreachable(_)),
        "a backend that is down is unreachable, not a wrong password: {down:?}"
    );
    assert!(down.is_transient());
}
