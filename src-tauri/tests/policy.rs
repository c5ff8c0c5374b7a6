//! Static checks of the security policy the webview runs under: a strict CSP, a capability that
//! grants Confab's own commands only, and a UI that needs neither inline code nor eval.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    // The app package's manifest is the repository root's Cargo.toml.
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn tauri_conf() -> serde_json::Value {
    serde_json::from_str(&read("tauri.conf.json")).expect("tauri.conf.json is JSON")
}

#[test]
fn csp_is_strict() {
    let conf = tauri_conf();
    let csp = conf["app"]["security"]["csp"]
        .as_str()
        .expect("a CSP is configured");
    for forbidden in ["unsafe-inline", "unsafe-eval", "wasm-unsafe-eval", "*"] {
        assert!(
            !csp.split(|c: char| c.is_whitespace() || c == ';')
                .any(|t| t.trim_matches('\'') == forbidden),
            "the CSP must not allow {forbidden}: {csp}"
        );
    }
    for required in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(required), "the CSP must say {required}: {csp}");
    }
}

#[test]
fn capability_grants_only_confabs_commands() {
    let cap: serde_json::Value =
        serde_json::from_str(&read("src-tauri/capabilities/default.json")).expect("JSON");
    let mut permissions: Vec<&str> = cap["permissions"]
        .as_array()
        .expect("permissions list")
        .iter()
        .map(|p| p.as_str().expect("plain permission identifiers"))
        .collect();
    permissions.sort_unstable();
    assert_eq!(
        permissions,
        [
            "allow-cancel-sign-in",
            "allow-create-room",
            "allow-current-user",
            "allow-invite",
            "allow-join-room",
            "allow-leave-room",
            "allow-list-rooms",
            "allow-load-older",
            "allow-mark-read",
            "allow-open-browser-again",
            "allow-open-link",
            "allow-open-room",
            "allow-remove-member",
            "allow-reset-vault",
            "allow-retry-message",
            "allow-room-members",
            "allow-save-draft",
            "allow-send-message",
            "allow-set-notifications",
            "allow-sign-in",
            "allow-sign-in-password",
            "allow-sign-out",
            "allow-subscribe-chat",
            "allow-subscribe-events",
            "allow-unlock-vault",
        ],
        "the webview gets Confab's own commands and nothing else (no stronghold, store, notification, opener, deep-link)"
    );
    assert_eq!(
        cap["windows"],
        serde_json::json!(["main"]),
        "the capability applies to the main window only"
    );
    assert!(
        cap.get("remote").is_none(),
        "no remote origin may use the capability"
    );
}

#[test]
fn ui_has_no_inline_code() {
    let html = read("ui/index.html");
    let lower = html.to_lowercase();
    assert!(
        !lower.contains(" style="),
        "no inline style attributes (CSP style-src 'self')"
    );
    assert!(
        !lower.contains("<style"),
        "no inline <style> (CSP style-src 'self')"
    );
    for tag in lower.match_indices("<script").map(|(i, _)| &lower[i..]) {
        let open = &tag[..tag.find('>').expect("script tag closes")];
        assert!(open.contains(" src="), "every script is a file: {open}");
    }
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        " oninput=",
    ] {
        assert!(
            !lower.contains(handler),
            "no inline event handlers ({handler})"
        );
    }
    // Subfolders too: the chat part's modules live in ui/chat/.
    let mut scripts: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![root().join("ui")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("ui/ is readable") {
            let path = entry.expect("readable ui/ entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "js") {
                scripts.push(path);
            }
        }
    }
    assert!(!scripts.is_empty(), "the UI has scripts to check");
    for script in scripts {
        let js = std::fs::read_to_string(&script).expect("readable script");
        for forbidden in [
            "eval(",
            "new Function",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "localStorage",
            "sessionStorage",
            "indexedDB",
        ] {
            assert!(
                !js.contains(forbidden),
                "{} must not use {forbidden} (no eval, no HTML injection, nothing persisted in the webview)",
                script.display()
            );
        }
    }
}

#[test]
fn deep_link_scheme_matches_the_default_redirect() {
    let conf = tauri_conf();
    assert_eq!(
        conf["plugins"]["deep-link"]["desktop"]["schemes"],
        serde_json::json!([confab_config::DEFAULT_REDIRECT_SCHEME]),
        "the scheme the OS delivers must be the one the app redirects to"
    );
    assert_eq!(
        conf["identifier"].as_str(),
        Some(confab_config::DEFAULT_REDIRECT_SCHEME),
        "the bundle identifier (also the single-instance D-Bus name) is the reverse-DNS scheme"
    );
}
