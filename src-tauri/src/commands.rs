//! Commands the UI may call: one-line forwards to the core (`confab-client`). None returns a
//! secret. The passphrase arrives only in `unlock_vault`, the password of the password profile
//! only in `sign_in_password`; each goes straight into a zeroizing `SecretString` and is never
//! stored, logged or sent back. The contract: docs/ui-contract.md.

use std::sync::Arc;

use confab_client::chat::{ChatEvent, MembersView, OlderPage, OpenedRoom, RoomView};
use confab_client::{Core, Result, UiEvent, UserView};
use confab_vault::SecretString;
use tauri::ipc::Channel;
use tauri::State;

type App<'a> = State<'a, Arc<Core>>;

/// Streams sign-in [`UiEvent`]s to this window, starting with the current status.
#[tauri::command]
pub(crate) fn subscribe_events(core: App<'_>, channel: Channel<UiEvent>) {
    core.flow
        .subscribe(Box::new(move |e| channel.send(e).is_ok()));
}

/// Starts signing in: opens the system browser and waits for the redirect.
#[tauri::command]
pub(crate) async fn sign_in(core: App<'_>) -> Result<()> {
    core.flow.sign_in().await
}

/// Signs in with the password profile's backend. The password goes straight into a zeroizing
/// `SecretString`, is sent once to the backend and never stored, logged or sent back.
#[tauri::command]
pub(crate) async fn sign_in_password(core: App<'_>, login: String, password: String) -> Result<()> {
    core.flow
        .sign_in_password(&login, SecretString::new(password))
        .await
}

/// Cancels the pending sign-in, if any.
#[tauri::command]
pub(crate) async fn cancel_sign_in(core: App<'_>) -> Result<bool> {
    Ok(core.flow.cancel().await)
}

/// Restarts the pending sign-in with a fresh request and opens the browser again.
#[tauri::command]
pub(crate) async fn open_browser_again(core: App<'_>) -> Result<()> {
    core.flow.sign_in().await
}

/// The signed-in user (name, email, issuer), if any.
#[tauri::command]
pub(crate) fn current_user(core: App<'_>) -> Option<UserView> {
    core.flow.current_user()
}

/// Unlocks the vault with a passphrase (first run: creates it; `confirmation` must match).
#[tauri::command]
pub(crate) async fn unlock_vault(
    core: App<'_>,
    passphrase: String,
    confirmation: Option<String>,
) -> Result<()> {
    let confirmation = confirmation.map(SecretString::new);
    core.flow
        .unlock(SecretString::new(passphrase), confirmation)
        .await
}

/// Deletes the unusable vault and starts afresh (the UI asked the user first).
#[tauri::command]
pub(crate) async fn reset_vault(core: App<'_>) -> Result<()> {
    core.flow.reset_vault().await
}

/// Signs out: revoke, wipe the vault entry and memory, open the provider's logout page; with
/// `remove_local_data` the account's encrypted local store and its key go too.
#[tauri::command]
pub(crate) async fn sign_out(core: App<'_>, remove_local_data: Option<bool>) -> Result<()> {
    core.flow
        .sign_out_with(remove_local_data.unwrap_or(false))
        .await
}

/// Streams chat events to this window, starting with the current state.
#[tauri::command]
pub(crate) fn subscribe_chat(core: App<'_>, channel: Channel<ChatEvent>) {
    core.chat
        .subscribe(Box::new(move |e| channel.send(e).is_ok()));
}

/// The room list (from the server), with unread counts.
#[tauri::command]
pub(crate) async fn list_rooms(core: App<'_>) -> Result<Vec<RoomView>> {
    core.chat.list_rooms().await
}

/// Creates a room named `name` (private: only people invited see it); the user owns it.
#[tauri::command]
pub(crate) async fn create_room(core: App<'_>, name: String, private: bool) -> Result<RoomView> {
    core.chat.create_room(&name, private).await
}

/// Invites `user` to `room`.
#[tauri::command]
pub(crate) async fn invite(core: App<'_>, room: String, user: String) -> Result<()> {
    core.chat.invite(&room, &user).await
}

/// Leaves `room`.
#[tauri::command]
pub(crate) async fn leave_room(core: App<'_>, room: String) -> Result<()> {
    core.chat.leave_room(&room).await
}

/// Removes `user` from `room` (its owner only).
#[tauri::command]
pub(crate) async fn remove_member(core: App<'_>, room: String, user: String) -> Result<()> {
    core.chat.remove_member(&room, &user).await
}

/// The members of `room`.
#[tauri::command]
pub(crate) async fn room_members(core: App<'_>, room: String) -> Result<MembersView> {
    core.chat.members(&room).await
}

/// Joins the room `id`.
#[tauri::command]
pub(crate) async fn join_room(core: App<'_>, id: String) -> Result<RoomView> {
    core.chat.join_room(&id).await
}

/// Opens a room; its latest page follows on the chat channel.
#[tauri::command]
pub(crate) async fn open_room(core: App<'_>, room: String) -> Result<OpenedRoom> {
    core.chat.open_room(room).await
}

/// The page of messages before `before_offset` in an open room.
#[tauri::command]
pub(crate) async fn load_older(
    core: App<'_>,
    room: String,
    before_offset: u64,
) -> Result<OlderPage> {
    core.chat.load_older(&room, before_offset).await
}

/// Sends a message (durable in the outbox when this returns) and clears the room's draft.
#[tauri::command]
pub(crate) async fn send_message(core: App<'_>, room: String, text: String) -> Result<String> {
    core.chat.send_message(&room, &text).await
}

/// Publishes a failed message again.
#[tauri::command]
pub(crate) async fn retry_message(core: App<'_>, id: String) -> Result<()> {
    core.chat.retry_message(&id).await
}

/// Saves the composer's draft for `room` (durable when this returns; "" removes it).
#[tauri::command]
pub(crate) async fn save_draft(core: App<'_>, room: String, text: String) -> Result<()> {
    core.chat.save_draft(&room, text).await
}

/// The user has seen `room` up to `offset` (the read position only moves forward).
#[tauri::command]
pub(crate) async fn mark_read(core: App<'_>, room: String, offset: u64) -> Result<()> {
    core.chat.mark_read(&room, offset).await
}

/// Turns desktop notifications on or off.
#[tauri::command]
pub(crate) async fn set_notifications(core: App<'_>, enabled: bool) -> Result<()> {
    core.chat.set_notifications(enabled).await
}

/// Opens a web link from a message in the system browser (http and https only).
#[tauri::command]
pub(crate) fn open_link(core: App<'_>, url: String) -> Result<()> {
    core.chat.open_link(&url)
}
