//! Mobile (Android, iOS): the OS delivers the redirect to the app; there is no loopback fallback
//! and no second process, so no single-instance plugin.
//!
//! Mobile apps are suspended in the background: timers stand still and sockets die while the
//! process sleeps. [`on_window_event`] turns the OS's resume (Android `onResume`, iOS
//! `applicationWillEnterForeground`, delivered as `WindowEvent::Resumed`) into
//! `Core::resumed`, which makes the token manager re-check its refresh schedule against the
//! wall clock at once.
//!
//! Not compiled on the Linux machine this was written on (no Android/iOS targets or SDKs there);
//! see docs/platforms.md for what was verified and how to build for mobile.

use std::sync::Arc;

use confab_client::{Core, RedirectPlan};
use confab_config::AppConfig;
use tauri::{AppHandle, Manager, Runtime, Window, WindowEvent};

/// Mobile always uses the private-use scheme (declared for mobile under
/// `plugins.deep-link.mobile` in tauri.conf.json, so Android gets an intent filter and iOS a
/// `CFBundleURLTypes` entry at build time).
pub fn redirect_plan<R: Runtime>(_app: &AppHandle<R>, _config: &AppConfig) -> RedirectPlan {
    RedirectPlan::Scheme
}

/// Window events that matter only on mobile; call it from `run()`'s `on_window_event`.
pub fn on_window_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    if let WindowEvent::Resumed = event {
        if let Some(core) = window.app_handle().try_state::<Arc<Core>>() {
            core.resumed();
        }
    }
}
