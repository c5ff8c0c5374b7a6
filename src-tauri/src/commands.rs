//! Commands the UI may call. Each is a one-line forward to [`SignInFlow`]; none returns a secret.
//! The passphrase arrives only in `unlock_vault` and goes straight into a zeroizing
//! `SecretString`; it is never stored, logged or sent back.

use std::sync::Arc;

use tauri::ipc::Channel;
use tauri::State;

use confab_vault::SecretString;

use crate::error::Result;
use crate::events::{UiEvent, UserView};
use crate::signin::SignInFlow;

/// Streams [`UiEvent`]s to this window, starting with the current status.
#[tauri::command]
pub(crate) fn subscribe_events(flow: State<'_, Arc<SignInFlow>>, channel: Channel<UiEvent>) {
    flow.subscribe(Box::new(move |event| channel.send(event).is_ok()));
}

/// Starts signing in: opens the system browser and waits for the redirect.
#[tauri::command]
pub(crate) async fn sign_in(flow: State<'_, Arc<SignInFlow>>) -> Result<()> {
    flow.inner().clone().sign_in().await
}

/// Cancels the pending sign-in, if any.
#[tauri::command]
pub(crate) async fn cancel_sign_in(flow: State<'_, Arc<SignInFlow>>) -> Result<bool> {
    Ok(flow.cancel().await)
}

/// Restarts the pending sign-in with a fresh request and opens the browser again.
#[tauri::command]
pub(crate) async fn open_browser_again(flow: State<'_, Arc<SignInFlow>>) -> Result<()> {
    flow.inner().clone().sign_in().await
}

/// The signed-in user (name, email, issuer), if any.
#[tauri::command]
pub(crate) fn current_user(flow: State<'_, Arc<SignInFlow>>) -> Option<UserView> {
    flow.current_user()
}

/// Unlocks the vault with a passphrase (first run: creates it; `confirmation` must match).
#[tauri::command]
pub(crate) async fn unlock_vault(
    flow: State<'_, Arc<SignInFlow>>,
    passphrase: String,
    confirmation: Option<String>,
) -> Result<()> {
    let (passphrase, confirmation) = (
        SecretString::new(passphrase),
        confirmation.map(SecretString::new),
    );
    flow.inner().clone().unlock(passphrase, confirmation).await
}

/// Moves the unusable vault aside and starts afresh (the UI asked the user first).
#[tauri::command]
pub(crate) async fn reset_vault(flow: State<'_, Arc<SignInFlow>>) -> Result<()> {
    flow.inner().clone().reset_vault().await
}

/// Signs out: revoke, wipe the vault entry and memory, open the provider's logout page.
#[tauri::command]
pub(crate) async fn sign_out(flow: State<'_, Arc<SignInFlow>>) -> Result<()> {
    flow.inner().clone().sign_out().await
}
