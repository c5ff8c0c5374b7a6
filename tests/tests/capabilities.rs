//! E2E: the webview is untrusted (DESIGN §1). Its capability grants Confab's own commands only:
//! a script in the page cannot reach the stronghold vault, the store, the opener or deep-link
//! plugins, and gets nothing secret from Confab's commands.

use confab_e2e::{AppOptions, AppUnderTest};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webview_cannot_call_plugins_directly() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");
    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("the app is up");

    let result = app
        .client
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            const attempts = [
              ['plugin:stronghold|initialize', { snapshotPath: 'x.hold', password: 'x' }],
              ['plugin:stronghold|save', { snapshotPath: 'x.hold' }],
              ['plugin:store|load', { path: 'x.json' }],
              ['plugin:opener|open_url', { url: 'https://example.test/' }],
              ['plugin:deep-link|get_current', {}],
              ['plugin:deep-link|register', { protocol: 'evil.example.scheme' }],
            ];
            Promise.all(attempts.map(([cmd, args]) =>
              window.__TAURI__.core.invoke(cmd, args).then(
                () => `${cmd} => ALLOWED`,
                (e) => `${cmd} => denied: ${typeof e === 'string' ? e : JSON.stringify(e)}`)))
              .then(done);
            "#,
            vec![],
        )
        .await
        .expect("the script runs");
    let outcomes: Vec<String> = serde_json::from_value(result).expect("a list of outcomes");
    assert_eq!(
        outcomes.len(),
        6,
        "every attempt reports back: {outcomes:?}"
    );
    for outcome in &outcomes {
        assert!(
            outcome.contains("denied") && outcome.contains("not allowed"),
            "the webview must not be allowed to call plugin commands: {outcome}"
        );
    }

    let user = app
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             window.__TAURI__.core.invoke('current_user').then((u) => done(JSON.stringify(u)), (e) => done('error: ' + e));",
            vec![],
        )
        .await
        .expect("the script runs");
    assert_eq!(
        user.as_str(),
        Some("null"),
        "Confab's own commands stay callable, and report no user before sign-in"
    );

    app.close().await.expect("the session ends");
}
