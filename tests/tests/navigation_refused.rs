//! E2E: the webview cannot be steered away from the app. A script (an injected one, say) that
//! sets `location` to a web page, or opens a new window, is refused in Rust by the navigation
//! and new-window handlers, not only by the UI's click handlers (each refusal is logged, and the
//! test waits for that before it looks): the window keeps showing the app, with its state, and
//! no second window appears.

use confab_e2e::{AppOptions, AppUnderTest};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_cannot_navigate_the_window_or_open_another() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");
    app.wait_displayed("#sign-in")
        .await
        .expect("the first screen is shown");
    let start = app.client.current_url().await.expect("the app's URL");
    // A marker in the page's own memory: a navigation would lose it.
    app.client
        .execute("window.__confabMarker = 'still here'; return true", vec![])
        .await
        .expect("set a marker");
    let windows = app.client.windows().await.expect("windows").len();

    // The IdP's own page: a real, reachable web page the webview would happily show.
    let target = idp.issuer_str().to_owned();
    let refusals = |log: &str| {
        log.matches("refused a navigation away from the app")
            .count()
            + log.matches("refused a new window").count()
    };
    for script in [
        "location.href = arguments[0]; return true",
        "location.assign(arguments[0]); return true",
        "document.body.insertAdjacentHTML('beforeend', '<a id=\"x-self\" href=\"' + arguments[0] + '\">x</a>'); document.getElementById('x-self').click(); return true",
    ] {
        let before = refusals(&app.log());
        app.client
            .execute(script, vec![serde_json::Value::String(target.clone())])
            .await
            .expect("the script runs");
        // Wait for the decision (the app logs each refusal), so what follows is checked after
        // it, not before a navigation that is still on its way.
        app.poll(&format!("the refusal of {script:?}"), || async {
            Ok((refusals(&app.log()) > before).then_some(()))
        })
        .await
        .expect("the app refuses it in Rust and logs that");
        // Still the app: the marker survives (a navigation would have dropped the page), and
        // the URL is the app's.
        let marker = app
            .client
            .execute("return window.__confabMarker || null", vec![])
            .await
            .expect("the page answers");
        assert_eq!(marker, "still here", "{script}: the app page stays loaded");
        let url = app.client.current_url().await.expect("url");
        assert_eq!(url, start, "{script}: the window still shows the app");
        assert_eq!(
            app.client.windows().await.expect("windows").len(),
            windows,
            "{script}: no new window"
        );
    }
    // window.open from a script: no window object comes back and no window appears.
    let opened = app
        .client
        .execute(
            "return window.open(arguments[0], '_blank') === null",
            vec![serde_json::Value::String(target.clone())],
        )
        .await
        .expect("the script runs");
    assert_eq!(opened, true, "window.open gets no window");
    assert_eq!(
        app.client.windows().await.expect("windows").len(),
        windows,
        "window.open: no new window"
    );
    assert!(
        app.is_displayed("#sign-in").await.expect("query"),
        "the app's screen is intact"
    );
}
