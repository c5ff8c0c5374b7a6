//! E2E: message text is rendered as text. Bob sends markup and a `javascript:` link; in alice's
//! window (and his own) they are inert: `.msg-text` shows exactly what was typed, there is no
//! `img` in the history, no anchor with a `javascript:` href, and no alert dialog opened. An
//! `https:` URL in a message does become a link.

use confab_e2e::{AppUnderTest, ChatServer};
use confab_testkit::{Idp, IdpOptions};

const IMG: &str = "<img src=x onerror=alert(1)>";
const JS_LINK: &str = "click javascript:alert(1) now";
const SCRIPT: &str = "<script>alert(2)</script><a href=\"javascript:alert(3)\">x</a>";
const HTTPS_URL: &str = "https://example.test/docs?q=1";

/// Checks the open room's DOM in `app` (who = the viewer) for anything active.
async fn assert_inert(who: &str, app: &AppUnderTest) {
    for text in [IMG, JS_LINK, SCRIPT] {
        let row = app
            .wait_for_message(text, None)
            .await
            .expect("the message is shown");
        assert_eq!(
            row.text, text,
            "{who}: the .msg-text textContent equals exactly what was typed"
        );
    }
    let dom = app
        .js(
            "const m = document.querySelector('#messages');
             return {
               imgs: m.querySelectorAll('img').length,
               scripts: m.querySelectorAll('script').length,
               js_links: Array.from(document.querySelectorAll('a[href]')).filter(a => /^\\s*javascript:/i.test(a.getAttribute('href'))).length,
               handlers: Array.from(m.querySelectorAll('*')).filter(e => Array.from(e.attributes).some(a => /^on/i.test(a.name))).length,
             };",
        )
        .await
        .expect("inspect the DOM");
    assert_eq!(
        dom["imgs"], 0,
        "{who}: markup in a message never becomes an img element in #messages"
    );
    assert_eq!(
        dom["scripts"], 0,
        "{who}: markup in a message never becomes a script element"
    );
    assert_eq!(
        dom["js_links"], 0,
        "{who}: no anchor anywhere has a javascript: href"
    );
    assert_eq!(
        dom["handlers"], 0,
        "{who}: no element in #messages carries an on* event handler attribute"
    );
    match app.client.get_alert_text().await {
        Err(e) if e.is_no_such_alert() => {}
        Err(e) => {
            panic!("{who}: asking WebDriver for an alert must fail with 'no such alert', got: {e}")
        }
        Ok(text) => panic!("{who}: a message opened an alert dialog: {text:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_and_javascript_links_in_messages_render_as_inert_text() {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts");
    let server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts");
    let alice = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "alice")
        .await
        .expect("alice signs in");
    let bob = AppUnderTest::launch_signed_in(&idp.issuer(), &server, "bob")
        .await
        .expect("bob signs in");
    alice
        .open_room("general")
        .await
        .expect("alice opens general");
    bob.open_room("general").await.expect("bob opens general");

    for text in [IMG, JS_LINK, SCRIPT, HTTPS_URL] {
        bob.send_message(text).await.expect("bob sends");
        bob.wait_for_message(text, Some("sent"))
            .await
            .expect("bob's message is sent");
    }
    alice
        .wait_for_message(HTTPS_URL, None)
        .await
        .expect("alice receives bob's messages");
    alice
        .screenshot("chat-xss-inert")
        .await
        .expect("screenshot");

    assert_inert("alice (receiver)", &alice).await;
    assert_inert("bob (sender)", &bob).await;

    // The check can fail: an https URL is turned into an anchor.
    let links = alice
        .js(&format!(
            "return Array.from(document.querySelectorAll('#messages .msg-text a[href]')).map(a => a.getAttribute('href')).filter(h => h.startsWith({:?}));",
            "https://example.test/docs"
        ))
        .await
        .expect("inspect links");
    assert_eq!(
        links.as_array().map(Vec::len),
        Some(1),
        "an https URL in a message is rendered as one anchor (the link check above is not vacuous): {links}"
    );
    let link_text = alice
        .js("const a = document.querySelector('#messages .msg-text a[href^=\"https://example.test/\"]'); return a ? a.textContent : null;")
        .await
        .expect("read link");
    assert_eq!(
        link_text.as_str(),
        Some(HTTPS_URL),
        "the anchor shows the URL as its text"
    );
    alice.close().await.expect("alice's session ends");
    bob.close().await.expect("bob's session ends");
}
