//! The account's encrypted local store in the running core: history, drafts, the outbox and
//! positions kept across a sign-out that keeps local data, a room shown from the cache while the chat server
//! is down, what was missed recovered (not reloaded) once it is back, and nothing of it
//! readable in the data dir. Against the real test IdP, a real Stronghold vault and the
//! reference chat server.

#[path = "../../relay/tests/common/mod.rs"]
mod common;
mod support;

use std::time::Duration;

use serde_json::Value;

use support::app::{files_containing, start_core, vault_entry};
use support::chat::{messages_with, record_chat, wait_json};

const SAID: [&str; 3] = [
    "cached line one 5c1e",
    "cached line two 5c1e",
    "cached line three 5c1e",
];
const DRAFT: &str = "a draft kept encrypted 5c1e";
const MISSED: [&str; 2] = ["said while alice was away 5c1e", "and more while away 5c1e"];
const QUEUED: &str = "queued before signing out 5c1e";

fn resets_of(events: &[Value], room: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "room-reset" && e["room"] == room)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_cached_encrypted_shown_offline_and_what_was_missed_is_recovered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = common::start_idp(Duration::from_secs(300)).await;
    let mut server = common::TestServer::start(common::server_config(
        &idp,
        &dir.path().join("server.db"),
        5,
    ))
    .await;
    let proxy = common::Proxy::start().await;
    proxy.set_upstream(server.addr);
    let app = start_core(&idp, dir.path(), &proxy.url());
    let core = app.core.clone().expect("core");
    let mut chat = record_chat(&app);
    app.flow.open_vault().await;
    app.unlock().await;
    let mut app = app;
    app.sign_in_as("alice").await;
    wait_json("#general", &mut chat, 0, |e| {
        e["type"] == "room-reset" && e["room"] == "general"
    })
    .await;
    core.chat
        .open_room("general".into())
        .await
        .expect("open #general");
    for text in SAID {
        core.chat.send_message("general", text).await.expect("send");
    }
    wait_json("the last message", &mut chat, 0, |e| {
        e["type"] == "message" && e["text"] == SAID[2]
    })
    .await;

    // Cut off from the chat server, alice writes once more: the message waits in the outbox.
    proxy.set_upstream(None);
    proxy.cut_all();
    core.chat
        .send_message("general", QUEUED)
        .await
        .expect("queued offline");
    // (sending cleared the room's draft: the one typed next is kept)
    core.chat
        .save_draft("general", DRAFT.to_owned())
        .await
        .expect("draft");

    // Signing out keeps the local data (encrypted); bob talks meanwhile.
    app.flow.sign_out().await.expect("sign out");
    let bob = common::Client::start(
        common::relay_config(&server.url(), &dir.path().join("bob.sqlite3")),
        common::IdpTokens::login(idp.clone(), "bob").await,
    );
    for text in MISSED {
        bob.relay.send("general", text).await.expect("bob sends");
    }
    bob.wait_outbox_empty("bob", Duration::from_secs(30)).await;
    bob.relay.shutdown().await;

    // Nothing of it is readable in the data dir (the scan finds a planted copy first).
    let planted = app.data_dir.join("planted.txt");
    std::fs::write(&planted, SAID[0]).expect("plant");
    assert_eq!(
        files_containing(&app.data_dir, SAID[0]).len(),
        1,
        "the scan works"
    );
    std::fs::remove_file(&planted).expect("unplant");
    for needle in SAID.iter().chain([&DRAFT, &QUEUED]) {
        assert!(
            files_containing(&app.data_dir, needle).is_empty(),
            "{needle:?} is readable on disk"
        );
    }

    // Every directory the app made is owner-only, every file in them too.
    #[cfg(unix)]
    for root in [app.data_dir.clone(), dir.path().join("logs")] {
        use std::os::unix::fs::PermissionsExt;
        let mut stack = vec![root];
        let mut files = 0;
        while let Some(d) = stack.pop() {
            let mode = std::fs::metadata(&d).expect("dir").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{} is owner-only", d.display());
            for entry in std::fs::read_dir(&d).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let mode = std::fs::metadata(&path).expect("file").permissions().mode();
                    assert_eq!(mode & 0o777, 0o600, "{} is owner-only", path.display());
                    files += 1;
                }
            }
        }
        assert!(files > 0, "files were checked");
    }

    // The chat server is down; alice signs in again (the IdP is up): #general opens from the
    // cache with her messages and her draft.
    server.stop().await;
    proxy.set_upstream(None);
    let before = chat.borrow().len();
    app.sign_in_as("alice").await;
    wait_json("alice's chat again", &mut chat, before, |e| {
        e["type"] == "session" && e["last_room"] == "general"
    })
    .await;
    let opened = core
        .chat
        .open_room("general".into())
        .await
        .expect("open #general offline");
    assert_eq!(opened.draft, DRAFT, "the draft came back");
    wait_json("#general from the cache", &mut chat, before, |e| {
        e["type"] == "room-reset" && e["room"] == "general"
    })
    .await;
    let shown = resets_of(&chat.borrow()[before..], "general");
    let texts: Vec<String> = shown[0]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        SAID.iter().all(|s| texts.iter().any(|t| t == s)),
        "the cached history is shown without the server: {texts:?}"
    );
    let unsent: Vec<&str> = shown[0]["unsent"]
        .as_array()
        .expect("unsent")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(unsent, [QUEUED], "the outbox kept the queued message");
    assert!(
        !chat.borrow()[before..]
            .iter()
            .any(|e| e["type"] == "connection-state" && e["state"] == "connected"),
        "shown while offline"
    );

    // The server is back: the missed messages arrive as messages (recovered from the saved
    // position), no page is loaded, and each is shown once.
    server.restart().await;
    proxy.set_upstream(server.addr);
    core.window_focused(true); // a network-up hint: reconnect now
    wait_json("the queued message delivered", &mut chat, before, |e| {
        e["type"] == "message" && e["text"] == QUEUED
    })
    .await;
    for text in MISSED {
        wait_json("a missed message", &mut chat, before, |e| {
            e["type"] == "message" && e["text"] == text
        })
        .await;
        assert_eq!(messages_with(&chat.borrow()[before..], text).len(), 1);
    }
    assert_eq!(
        messages_with(&chat.borrow()[before..], QUEUED).len(),
        1,
        "the queued message is delivered once"
    );
    assert_eq!(
        resets_of(&chat.borrow()[before..], "general").len(),
        1,
        "recovered: the only reset of #general is the cached one"
    );

    // Signing out with "remove": nothing of the account's local data is left, nor its key.
    let account_dirs = || {
        std::fs::read_dir(app.data_dir.join("chat"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(account_dirs(), 1, "alice's store is there");
    let subject = confab_client::account::load(&app.data_dir)
        .map(|a| a.subject)
        .expect("alice is remembered");
    let issuer = idp.issuer_str();
    assert!(vault_entry(&app, &issuer, &subject, "store_key")
        .await
        .is_some());
    app.flow
        .sign_out_with(true)
        .await
        .expect("sign out, removing");
    assert_eq!(account_dirs(), 0, "the account's directory is gone");
    assert_eq!(
        vault_entry(&app, &issuer, &subject, "store_key").await,
        None,
        "its key is out of the vault"
    );
    for needle in SAID.iter().chain([&DRAFT]) {
        assert!(files_containing(&app.data_dir, needle).is_empty());
    }
    // Signing in again starts afresh: no draft.
    app.sign_in_as("alice").await;
    let opened = core
        .chat
        .open_room("general".into())
        .await
        .expect("open #general");
    assert_eq!(opened.draft, "", "nothing of the removed data came back");
}
