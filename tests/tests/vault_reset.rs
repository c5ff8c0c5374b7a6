//! E2E: the default (OS keychain) vault path with a corrupt vault. The app must say so clearly,
//! leave the file alone, and offer "Reset vault and sign in again" — which asks first, then
//! deletes the broken snapshot (its tokens can be neither read nor revoked) and starts afresh at
//! the sign-in screen.

use confab_e2e::{AppOptions, AppUnderTest};
use confab_testkit::{Idp, IdpOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_vault_is_reported_and_reset_only_after_confirmation() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp; cargo xtask test does this)");

    let app = AppUnderTest::launch(&idp.issuer(), AppOptions::default())
        .await
        .expect("the app starts under WebDriver");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("with the keychain reachable, the vault opens without asking anything");
    let vault = app.data_dir().join("vault.stronghold");
    let vault_path = &vault;
    // The sign-in screen shows while the vault is still being created (docs/ui-contract.md).
    app.poll("the first start creates the vault", || async move {
        Ok(vault_path.is_file().then_some(()))
    })
    .await
    .expect("the first start created the vault in the data dir");
    let home = app.quit().await.expect("the app quits");

    // Flip bytes in the middle of the snapshot (the encrypted payload).
    let mut bytes = std::fs::read(&vault).expect("read the vault");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8] {
        *b ^= 0xA5;
    }
    std::fs::write(&vault, &bytes).expect("corrupt the vault");

    let app = AppUnderTest::launch_in(&idp.issuer(), AppOptions::default(), home)
        .await
        .expect("the app starts again with the corrupt vault");
    app.wait_for_text("#vault-broken-title", "can't open your saved sign-in")
        .await
        .expect("a corrupt vault is reported in plain words");
    app.wait_for_text("#vault-error", "corrupt")
        .await
        .expect("the message says the vault is corrupt");
    assert_eq!(
        std::fs::read(&vault).expect("read the vault"),
        bytes,
        "the corrupt vault is left untouched until the user decides"
    );
    app.click("#reset-vault").await.expect("Reset is offered");
    app.wait_for_text("#reset-question", "Reset the vault?")
        .await
        .expect("reset asks for confirmation first");
    app.screenshot("vault-broken-confirm-reset")
        .await
        .expect("screenshot");
    assert_eq!(
        std::fs::read(&vault).expect("read the vault"),
        bytes,
        "asking is not doing: the file is unchanged before confirmation"
    );
    app.click("#reset-yes").await.expect("confirm the reset");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("after the reset the app offers Sign in with a fresh vault");
    let aside: Vec<_> = std::fs::read_dir(app.data_dir())
        .expect("list the data dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vault.stronghold.corrupt-"))
        .collect();
    assert!(
        aside.is_empty(),
        "once confirmed, the broken snapshot is deleted, not kept on disk: {aside:?}"
    );
    let vault_path = &vault;
    app.poll("a fresh vault is created after the reset", || async move {
        Ok(vault_path.is_file().then_some(()))
    })
    .await
    .expect("a fresh vault was created");
    app.close().await.expect("the session ends");
}
