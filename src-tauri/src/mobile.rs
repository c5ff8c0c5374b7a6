//! Mobile (Android, iOS): the OS delivers the redirect to the app; there is no loopback fallback
//! and no second process, so no single-instance plugin.
//!
//! Mobile apps are suspended in the background: timers stand still and sockets die while the
//! process sleeps. [`on_window_event`] turns the OS's resume (Android `onResume`, iOS
//! `applicationWillEnterForeground`, delivered as `WindowEvent::Resumed`) into [`resume`], which
//! asks the token manager to re-check its refresh schedule against the wall clock at once.
//!
//! Not compiled on the Linux machine this was written on (no Android/iOS targets or SDKs there);
//! see docs/platforms.md for what was verified and how to build for mobile.

use std::sync::Arc;

use confab_config::AppConfig;
use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};

use crate::signin::{RedirectPlan, SignInFlow};

/// Mobile always uses the private-use scheme (declared for mobile under
/// `plugins.deep-link.mobile` in tauri.conf.json, so Android gets an intent filter and iOS a
/// `CFBundleURLTypes` entry at build time).
pub fn redirect_plan<R: Runtime>(_app: &AppHandle<R>, _config: &AppConfig) -> RedirectPlan {
    RedirectPlan::Scheme
}

/// Window events that matter only on mobile; call it from `run()`'s `on_window_event`.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::Resumed = event {
        resume(window.app_handle());
    }
}

/// The app is back in the foreground after a suspension.
///
/// The session re-checks its refresh schedule now (a token may have expired while the monotonic
/// timer stood still) instead of waiting for its next periodic wall-clock check.
/// The relay belongs here too once the app manages one: its handle's `notify_network_up()` skips
/// the pending reconnect delay (confab-relay); it is not wired into the app yet.
pub fn resume<R: Runtime>(app: &AppHandle<R>) {
    tracing::info!("resumed from the background: re-checking the session");
    if let Some(flow) = app.try_state::<Arc<SignInFlow>>() {
        flow.notify_resume();
    }
}
