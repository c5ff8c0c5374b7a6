//! Test hooks, compiled into debug builds only (`cfg(debug_assertions)`): release builds, the
//! ones that ship, cannot be steered by these variables.
//!
//! `CONFAB_TEST_OPEN_URL_FILE=<path>`: instead of launching the system browser, write the
//! authorization URL to `<path>` (atomically: temp file + rename). The E2E harness plays the
//! browser: it reads the URL, completes the login over HTTP and delivers the redirect the way the
//! OS does. The URL holds only public request parameters (state, PKCE challenge, nonce), never
//! a verifier or token.
//!
//! `CONFAB_TEST_NOTIFY_FILE=<path>`: desktop notifications are appended to `<path>` as JSON
//! lines `{"title", "body"}` instead of being shown (the test display has no notification
//! daemon).

use std::path::PathBuf;
use std::sync::OnceLock;

use url::Url;

/// Environment variable naming the file that receives authorization URLs.
pub const TEST_OPEN_URL_FILE: &str = "CONFAB_TEST_OPEN_URL_FILE";

/// With [`TEST_OPEN_URL_FILE`] set: writes `url` to that file instead of opening a browser and
/// returns the outcome; `None` when the hook is not set.
pub fn open_url(url: &Url) -> Option<Result<(), String>> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    let path = PATH
        .get_or_init(|| {
            let path = PathBuf::from(std::env::var_os(TEST_OPEN_URL_FILE)?);
            tracing::warn!(
                "test hook {TEST_OPEN_URL_FILE} is set: authorization URLs go to a file, not the browser"
            );
            Some(path)
        })
        .as_ref()?;
    let tmp = path.with_extension("tmp");
    Some(
        std::fs::write(&tmp, url.as_str())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("test hook could not write {}: {e}", path.display())),
    )
}

/// Environment variable naming the file that receives notifications.
pub const TEST_NOTIFY_FILE: &str = "CONFAB_TEST_NOTIFY_FILE";

/// Appends a notification to the [`TEST_NOTIFY_FILE`] file; false when the hook is not set.
pub fn record_notification(title: &str, body: &str) -> bool {
    let Some(path) = std::env::var_os(TEST_NOTIFY_FILE) else {
        return false;
    };
    let line = serde_json::json!({ "title": title, "body": body }).to_string() + "\n";
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        tracing::warn!("test hook could not record a notification: {e}");
    }
    true
}
