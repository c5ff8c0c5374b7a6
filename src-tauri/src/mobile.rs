//! Mobile (Android, iOS): the OS delivers the redirect to the app; there is no loopback fallback
//! and no second process, so no single-instance plugin.

use confab_config::AppConfig;
use tauri::{AppHandle, Runtime};

use crate::signin::RedirectPlan;

/// Mobile always uses the private-use scheme (declared at build time by the deep-link plugin).
pub fn redirect_plan<R: Runtime>(_app: &AppHandle<R>, _config: &AppConfig) -> RedirectPlan {
    RedirectPlan::Scheme
}
