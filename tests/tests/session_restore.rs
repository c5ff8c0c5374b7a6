//! E2E: the vault and the session in the real app, with the passphrase key source
//! (`CONFAB_VAULT_KEY=passphrase`), across a restart:
//! - first start asks to choose a passphrase (with confirmation; a mismatch is refused);
//! - sign-in stores the refresh token in the vault only: no file in the temp HOME (data, config,
//!   log, cache dirs) holds it or any JWT in plain text;
//! - a restart asks for the passphrase (a wrong one says so and allows a retry) and then shows
//!   the signed-in user without a browser: the IdP saw a refresh, not a second code exchange;
//! - sign-out (user menu) returns to the sign-in screen, opens the provider's logout page, leaves
//!   no refresh token in the vault, and the old refresh token is refused by the IdP.

use std::path::Path;

use confab_e2e::{files_containing, files_with_jwt, AppOptions, AppUnderTest, SCHEME_REDIRECT};
use confab_testkit::{headless_login, Idp, IdpOptions};
use confab_vault::{AccountId, KeySource, SecretStore, SecretString, StrongholdStore};

const PASSPHRASE: &str = "correct horse battery staple";

fn options() -> AppOptions {
    AppOptions {
        extra_env: vec![("CONFAB_VAULT_KEY".into(), "passphrase".into())],
        ..AppOptions::default()
    }
}

/// The vault account the app remembered (issuer + subject in the non-secret account.json).
fn remembered_account(data_dir: &Path) -> AccountId {
    let account: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data_dir.join("account.json")).expect("the app remembers the account"),
    )
    .expect("account.json is JSON");
    assert!(
        account.get("refresh_token").is_none() && account.get("access_token").is_none(),
        "the remembered account holds no token"
    );
    AccountId::new(
        account["issuer"].as_str().expect("issuer"),
        account["subject"].as_str().expect("subject"),
    )
}

/// The refresh token the app keeps in its vault (the test knows the passphrase).
fn stored_refresh_token(data_dir: &Path, id: &AccountId) -> Option<String> {
    let source = KeySource::passphrase(SecretString::new(PASSPHRASE.to_owned()));
    let vault = StrongholdStore::open(data_dir.join("vault.stronghold"), &source)
        .expect("the vault opens with the passphrase the user chose");
    vault
        .get(id, "refresh_token")
        .expect("the vault can be read")
        .map(|s| s.expose_secret().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_vault_restart_restores_and_sign_out_revokes() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");

    // --- first start: choose a passphrase, sign in ---
    let app = AppUnderTest::launch(&idp.issuer(), options())
        .await
        .expect("the app starts under WebDriver");
    app.wait_for_text("#unlock-title", "Choose a passphrase")
        .await
        .expect("without a vault, the passphrase path asks to choose a passphrase");
    app.screenshot("unlock-choose-passphrase")
        .await
        .expect("screenshot");
    app.type_into("#passphrase", PASSPHRASE)
        .await
        .expect("type");
    app.type_into("#passphrase-confirm", "something else")
        .await
        .expect("type");
    app.click("#unlock").await.expect("submit");
    app.wait_for_text("#unlock-error", "not the same")
        .await
        .expect("a confirmation that differs is refused");
    app.type_into("#passphrase", PASSPHRASE)
        .await
        .expect("type");
    app.type_into("#passphrase-confirm", PASSPHRASE)
        .await
        .expect("type");
    app.click("#unlock").await.expect("submit");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("with the vault created, the app offers Sign in");

    app.click("#sign-in").await.expect("Sign in is clickable");
    let authorize = app
        .wait_for_authorize_url(None)
        .await
        .expect("Sign in opens the authorization URL");
    let callback = headless_login(&authorize, SCHEME_REDIRECT)
        .await
        .expect("the IdP logs alice in");
    app.deliver_redirect(callback.as_str())
        .await
        .expect("the redirect reaches the app");
    app.wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("sign-in completes");
    assert!(
        !app.page_contents()
            .await
            .expect("page")
            .contains(PASSPHRASE),
        "the passphrase is never echoed into the page"
    );
    let home = app.quit().await.expect("the app quits");

    // --- nothing in plain text on disk ---
    let data_dir = home.path().join("data");
    let account = remembered_account(&data_dir);
    let refresh_1 = stored_refresh_token(&data_dir, &account)
        .expect("after sign-in the refresh token is stored in the vault");
    assert!(
        refresh_1.len() >= 20,
        "oidc-provider's refresh tokens are long opaque strings"
    );
    // The check itself must be able to fail: a planted copy is found.
    let plant = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(plant.path().join("nested")).expect("mkdir");
    std::fs::write(
        plant.path().join("nested/leak.json"),
        format!("{{\"rt\":\"{refresh_1}\",\"at\":\"eyJhbGciOi\"}}"),
    )
    .expect("plant");
    assert_eq!(
        files_containing(plant.path(), refresh_1.as_bytes()).len(),
        1,
        "the scan finds a planted refresh token (so an empty result below means something)"
    );
    assert_eq!(
        files_with_jwt(plant.path()).len(),
        1,
        "the scan finds a planted JWT"
    );
    let leaks = files_containing(home.path(), refresh_1.as_bytes());
    assert!(
        leaks.is_empty(),
        "no file in the app's data, config, cache or log dirs may hold the refresh token in plain text: {leaks:?}"
    );
    let jwts = files_with_jwt(home.path());
    assert!(
        jwts.is_empty(),
        "no file in the app's dirs may hold a JWT (access or ID token) in plain text: {jwts:?}"
    );
    let auth_logs: Vec<_> = files_containing(home.path(), b"\"event\":\"signed_in\"")
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "auth.jsonl"))
        .collect();
    assert_eq!(
        auth_logs.len(),
        1,
        "the auth event log (JSON lines in the app's log dir) records the sign-in"
    );
    let stats_before = idp.stats().await.expect("stats");

    // --- restart: unlock, silent restore ---
    let app = AppUnderTest::launch_in(&idp.issuer(), options(), home)
        .await
        .expect("the app starts again in the same HOME");
    app.wait_for_text("#unlock-title", "Unlock Confab")
        .await
        .expect("an existing passphrase vault asks for its passphrase");
    app.type_into("#passphrase", "not the passphrase")
        .await
        .expect("type");
    app.click("#unlock").await.expect("submit");
    app.wait_for_text("#unlock-error", "not right")
        .await
        .expect("a wrong passphrase says so and stays on the unlock screen");
    app.screenshot("unlock-wrong-passphrase")
        .await
        .expect("screenshot");
    app.type_into("#passphrase", PASSPHRASE)
        .await
        .expect("type");
    app.click("#unlock").await.expect("submit");
    app.wait_for_text("#signed-in-as", "Signed in as Alice Example")
        .await
        .expect("after unlocking, the stored session signs alice in without the browser");
    let stats = idp.stats().await.expect("stats");
    assert_eq!(
        stats.authorization_code_requests, stats_before.authorization_code_requests,
        "the restart did not exchange a new authorization code (no browser sign-in)"
    );
    assert!(
        stats.refresh_requests > stats_before.refresh_requests,
        "the restart restored the session with a refresh-token request"
    );
    assert_eq!(
        stats.authorization_requests, stats_before.authorization_requests,
        "the restart never sent the user to the authorization endpoint"
    );
    let refresh_2 = stored_refresh_token(&app.data_dir(), &account)
        .expect("the rotated refresh token is in the vault");
    assert_ne!(
        refresh_2, refresh_1,
        "the refresh rotated the token and the vault holds the new one"
    );

    // --- sign out from the user menu ---
    app.click("#user-menu-button").await.expect("open the menu");
    app.wait_for_text("#sign-out", "Sign out")
        .await
        .expect("the user menu offers Sign out");
    app.wait_for_text("#menu-account", "alice@example.test")
        .await
        .expect("the menu names the account");
    app.screenshot("signed-in-user-menu")
        .await
        .expect("screenshot");
    app.sign_out(false).await.expect("Sign out is clickable");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("sign-out returns to the sign-in screen");
    app.wait_for_text("#sign-in-notice", "You signed out")
        .await
        .expect("the sign-in screen says why");
    app.screenshot("signed-out").await.expect("screenshot");
    let logout = app
        .wait_for_authorize_url(Some(&authorize))
        .await
        .expect("sign-out opens the provider's logout page in the browser");
    assert!(
        logout.path().contains("session/end")
            && logout.query().is_some_and(|q| q.contains("id_token_hint")),
        "the page opened is the end-session endpoint with an id_token_hint: {}",
        logout.path()
    );
    assert_eq!(
        stored_refresh_token(&app.data_dir(), &account),
        None,
        "after sign-out the vault holds no refresh token"
    );
    assert!(
        idp.stats().await.expect("stats").revocations > stats.revocations,
        "sign-out revoked the refresh token at the IdP"
    );
    assert!(
        idp.refresh(&refresh_2).await.is_err(),
        "the IdP refuses the signed-out refresh token"
    );
    app.close().await.expect("the session ends");
}
