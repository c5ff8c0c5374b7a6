//! E2E: signing out of the chat. Alice (passphrase vault, so the test can read the vault) signs
//! in, chats in `general`, then signs out from the user menu, choosing to remove her local data:
//! the sign-in screen comes back and the chat screen goes; the vault holds no refresh token and
//! no store key any more, her account's store is gone from the data dir, no file in her HOME
//! holds the old token in plain text, and the IdP refuses the old refresh token.

use std::path::Path;

use confab_e2e::{files_containing, AppOptions, AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};
use confab_vault::{AccountId, KeySource, SecretStore, SecretString, StrongholdStore};

const PASSPHRASE: &str = "chat sign-out passphrase";

/// The vault account the app remembered (issuer + subject in the non-secret account.json).
fn remembered_account(data_dir: &Path) -> AccountId {
    let account: serde_json::Value = serde_json::from_slice(
        &std::fs::read(data_dir.join("account.json")).expect("the app remembers the account"),
    )
    .expect("account.json is JSON");
    AccountId::new(
        account["issuer"].as_str().expect("issuer"),
        account["subject"].as_str().expect("subject"),
    )
}

/// The refresh token the app keeps in its vault (the test knows the passphrase).
fn stored_refresh_token(data_dir: &Path, id: &AccountId) -> Option<String> {
    vault_entry(data_dir, id, "refresh_token")
}

/// The vault entry `name` of `id`.
fn vault_entry(data_dir: &Path, id: &AccountId, name: &str) -> Option<String> {
    let source = KeySource::passphrase(SecretString::new(PASSPHRASE.to_owned()));
    let vault = StrongholdStore::open(data_dir.join("vault.stronghold"), &source)
        .expect("the vault opens with the passphrase the user chose");
    vault
        .get(id, name)
        .expect("the vault can be read")
        .map(|s| s.expose_secret().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_from_chat_returns_to_sign_in_and_kills_the_refresh_token() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let mut options: AppOptions = AppUnderTest::chat_options(&server, "alice");
    options
        .extra_env
        .push(("CONFAB_VAULT_KEY".into(), "passphrase".into()));
    let app = AppUnderTest::launch(&idp.issuer(), options)
        .await
        .expect("the app starts");
    app.wait_for_text("#unlock-title", "Choose a passphrase")
        .await
        .expect("the passphrase vault asks for a passphrase");
    app.type_into("#passphrase", PASSPHRASE)
        .await
        .expect("type");
    app.type_into("#passphrase-confirm", PASSPHRASE)
        .await
        .expect("type");
    app.click("#unlock").await.expect("submit");
    app.sign_in_as("alice").await.expect("alice signs in");
    app.wait_for_chat_screen()
        .await
        .expect("signed in, the chat screen is shown");
    app.open_room("general").await.expect("alice opens general");
    let text = "Signing off soon";
    app.send_message(text).await.expect("send");
    app.wait_for_message(text, Some("sent"))
        .await
        .expect("chat works before signing out");

    let data_dir = app.data_dir();
    let account = remembered_account(&data_dir);
    let refresh = stored_refresh_token(&data_dir, &account)
        .expect("while signed in, the vault holds the refresh token");
    let revocations_before = idp.stats().await.expect("stats").revocations;

    app.click("#user-menu-button").await.expect("open the menu");
    app.wait_for_text("#sign-out", "Sign out")
        .await
        .expect("the user menu offers Sign out");
    app.screenshot("chat-user-menu").await.expect("screenshot");
    app.click("#sign-out").await.expect("Sign out is clickable");
    app.wait_for_text("#sign-out-dialog-title", "Sign out of Alice Example?")
        .await
        .expect("sign-out asks what to do with the account's local data");
    app.screenshot("chat-sign-out-dialog")
        .await
        .expect("screenshot");
    let account_dir = data_dir.join("chat").join(account.dir_name());
    assert!(account_dir.exists(), "the account's store is there before");
    app.click("#sign-out-remove").await.expect("choose remove");
    app.click("#sign-out-confirm").await.expect("confirm");
    app.wait_for_text("#sign-in", "Sign in")
        .await
        .expect("sign-out returns to the sign-in screen");
    assert!(
        !app.is_displayed("#screen-chat").await.expect("read"),
        "after sign-out the chat screen is no longer shown"
    );
    app.screenshot("chat-signed-out").await.expect("screenshot");

    assert_eq!(
        stored_refresh_token(&data_dir, &account),
        None,
        "after sign-out the vault holds no refresh token"
    );
    assert!(
        !account_dir.exists(),
        "\"remove\" leaves nothing of the account's local data"
    );
    assert_eq!(
        vault_entry(&data_dir, &account, "store_key"),
        None,
        "and its store key is out of the vault"
    );
    let leaks = files_containing(app.home(), refresh.as_bytes());
    assert!(
        leaks.is_empty(),
        "no file in the app's HOME holds the old refresh token in plain text: {leaks:?}"
    );
    app.poll("the IdP to see the revocation", || async {
        Ok((idp.stats().await?.revocations > revocations_before).then_some(()))
    })
    .await
    .expect("sign-out revokes the refresh token at the IdP");
    assert!(
        idp.refresh(&refresh).await.is_err(),
        "the IdP refuses the signed-out refresh token"
    );
    assert!(
        !app.page_contents().await.expect("page").contains(text),
        "after sign-out the page no longer shows the chat history"
    );
    app.close().await.expect("the session ends");
}
