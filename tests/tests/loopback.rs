//! E2E: the desktop fallback. With `redirect_mode = loopback` the app listens on 127.0.0.1 with
//! an ephemeral port; the browser's redirect to it completes the sign-in and the browser tab gets
//! a small "you can close this tab" page.

use confab_e2e::{browser_get, query_param, AppOptions, AppUnderTest};
use confab_testkit::{headless_login, Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_redirect_signs_in() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let options = AppOptions {
        redirect_mode: "loopback".into(),
        login_hint: "bob".into(),
        ..AppOptions::default()
    };
    let app = AppUnderTest::launch(&idp.issuer(), options)
        .await
        .expect("the app starts under WebDriver");

    app.click("#sign-in").await.expect("Sign in is clickable");
    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("clicking Sign in opens the authorization URL");
    let redirect = query_param(&authorize, "redirect_uri").expect("redirect_uri is sent");
    let redirect_url = url::Url::parse(&redirect).expect("redirect_uri is a URL");
    assert_eq!(
        (
            redirect_url.scheme(),
            redirect_url.host_str(),
            redirect_url.path()
        ),
        ("http", Some("127.0.0.1"), "/callback"),
        "the loopback redirect is http://127.0.0.1:{{port}}/callback (RFC 8252 §7.3)"
    );
    assert!(
        redirect_url.port().is_some_and(|p| p != 0),
        "the loopback redirect names its ephemeral port"
    );

    let callback = headless_login(&authorize, &redirect)
        .await
        .expect("the IdP logs bob in and redirects to the loopback listener");
    let (status, body) = browser_get(&callback)
        .await
        .expect("the app's loopback listener answers the browser");
    assert_eq!(status, 200, "the browser tab gets a page, not an error");
    assert!(
        body.to_lowercase().contains("close this tab"),
        "the browser tab tells the user they can close it: {body}"
    );
    let code = query_param(&callback, "code").expect("the redirect carries a code");
    assert!(
        !body.contains(&code),
        "the page shown in the browser does not echo the code"
    );

    app.wait_for_text("#signed-in-as", "Signed in as Bob Example")
        .await
        .expect("the loopback redirect signs bob in");
    app.screenshot("signed-in-loopback")
        .await
        .expect("screenshot");

    let again = browser_get(&callback).await.ok().map(|(status, _)| status);
    assert_ne!(
        again,
        Some(200),
        "the loopback listener answers one request, then closes"
    );

    app.close().await.expect("the session ends");
}
