//! E2E: the real app, two users, on the scale-out deployment: nginx in front of two Centrifugo
//! v6.9.1 nodes on Redis, confab-server as their backend (chat tokens, subscribe and RPC
//! proxies, every message stored by it and then published through the nodes' server API).
//! alice and bob sign in through the deep-link flow, get chat tokens from the backend, connect
//! to nginx, meet in `general`, talk, and open a new room through the RPC proxy; each sees the
//! whole conversation once, in order, under the display names the backend attested, and the
//! messages are in Centrifugo's history (nothing went to the backend's own WebSocket).
//!
//! The same runs with the identity provider issuing opaque access tokens (oidc-provider with
//! resource indicators off): the backend checks them by RFC 7662 introspection.

use confab_e2e::{AppOptions, AppUnderTest, ChatServer};
use confab_testkit::cluster::{Centrifugo, Nginx, Redis, API_KEY, PROXY_SECRET};
use confab_testkit::desktop::free_port;
use confab_testkit::{Idp, IdpOptions};

/// The cluster and its backend; every process stops when this is dropped.
struct Deployment {
    _redis: Redis,
    nodes: Vec<Centrifugo>,
    nginx: Nginx,
    server: ChatServer,
}

async fn deploy(idp: &Idp, introspection: bool) -> Deployment {
    let redis = Redis::start()
        .await
        .expect("Redis starts (apt redis-server)");
    let ports = [free_port().expect("port"), free_port().expect("port")];
    let apis = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/api"))
        .collect::<Vec<_>>()
        .join(",");
    let mut env = vec![
        (
            "CONFAB_CENTRIFUGO_PROXY_SECRET".to_owned(),
            PROXY_SECRET.to_owned(),
        ),
        ("CONFAB_CENTRIFUGO_API_URL".to_owned(), apis),
        ("CONFAB_CENTRIFUGO_API_KEY".to_owned(), API_KEY.to_owned()),
    ];
    if introspection {
        // The test IdP's confidential client for the chat backend (a public test fixture).
        env.push((
            "CONFAB_INTROSPECTION_CLIENT_ID".to_owned(),
            "confab-backend".to_owned(),
        ));
        env.push((
            "CONFAB_INTROSPECTION_CLIENT_SECRET".to_owned(),
            "confab-backend-test-secret".to_owned(),
        ));
    }
    let server = ChatServer::start_with(&idp.issuer_str(), env)
        .await
        .expect("confab-server starts in its backend role");
    let backend = format!("http://127.0.0.1:{}", server.port());
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        nodes.push(
            Centrifugo::start_on(*port, &backend, Some(&redis), &format!("node-{}", i + 1))
                .await
                .expect("a Centrifugo node starts (cargo xtask setup builds it)"),
        );
    }
    let nginx = Nginx::start(&ports)
        .await
        .expect("nginx starts (apt nginx)");
    Deployment {
        _redis: redis,
        nodes,
        nginx,
        server,
    }
}

/// The app of `user` pointed at nginx, with the backend's token endpoint.
fn options(d: &Deployment, user: &str) -> AppOptions {
    AppOptions {
        login_hint: user.to_owned(),
        chat_url: Some(d.nginx.url()),
        extra_env: vec![(
            "CONFAB_CHAT_TOKEN_ENDPOINT".to_owned(),
            format!("http://127.0.0.1:{}/api/chat/token", d.server.port()),
        )],
        ..AppOptions::default()
    }
}

async fn launch(idp: &Idp, d: &Deployment, user: &str) -> AppUnderTest {
    let app = AppUnderTest::launch(&idp.issuer(), options(d, user))
        .await
        .unwrap_or_else(|e| panic!("{user}'s app starts: {e}"));
    app.sign_in_as(user)
        .await
        .unwrap_or_else(|e| panic!("{user} signs in: {e}"));
    app.wait_for_chat_screen()
        .await
        .unwrap_or_else(|e| panic!("{user} reaches the chat screen: {e}"));
    app
}

/// Sends `text` from `from` and waits until both `from` (sent) and `to` show it.
async fn say(from: &AppUnderTest, to: &AppUnderTest, text: &str) {
    from.send_message(text).await.expect("Enter sends");
    from.wait_for_message(text, Some("sent"))
        .await
        .expect("the sender's message becomes sent (the backend stored and published it)");
    to.wait_for_message(text, None)
        .await
        .expect("the other user receives it through the cluster");
}

async fn two_users_talk_on_the_cluster(idp_options: IdpOptions, introspection: bool) {
    confab_e2e::require_display().expect("the E2E tests need an X display");
    let idp = Idp::start(idp_options).await.expect("the test IdP starts");
    let d = deploy(&idp, introspection).await;
    let alice = launch(&idp, &d, "alice").await;
    let bob = launch(&idp, &d, "bob").await;
    for (app, who) in [(&alice, "alice"), (&bob, "bob")] {
        app.wait_for_room("general")
            .await
            .unwrap_or_else(|e| panic!("{who}'s room list comes from the RPC proxy: {e}"));
        app.open_room("general")
            .await
            .unwrap_or_else(|e| panic!("{who} opens general: {e}"));
        app.wait_for_connection("connected")
            .await
            .unwrap_or_else(|e| panic!("{who} connects to nginx with a chat token: {e}"));
    }

    let mut talk: Vec<(&str, String)> = Vec::new();
    for turn in 1..=2 {
        let line = format!("alice on the cluster ({turn})");
        say(&alice, &bob, &line).await;
        talk.push(("alice", line));
        let line = format!("bob on the cluster ({turn})");
        say(&bob, &alice, &line).await;
        talk.push(("bob", line));
    }
    for (app, viewer) in [(&alice, "alice"), (&bob, "bob")] {
        let history = app.all_rows().await.expect("history");
        let seen: Vec<(Option<&str>, &str, &str)> = history
            .rows
            .iter()
            .map(|r| {
                (
                    r.author.as_deref(),
                    r.shown_author.as_str(),
                    r.text.as_str(),
                )
            })
            .collect();
        let want: Vec<(Option<&str>, &str, &str)> = talk
            .iter()
            .map(|(who, text)| {
                let name = if *who == "alice" {
                    "Alice Example"
                } else {
                    "Bob Example"
                };
                (Some(*who), name, text.as_str())
            })
            .collect();
        assert_eq!(
            seen, want,
            "{viewer} sees the conversation once, in order, under the attested names"
        );
        assert!(
            history.duplicates.is_empty(),
            "{viewer}: no row twice: {:?}",
            history.duplicates
        );
    }
    // Through Centrifugo: the messages are in its history, as the backend published them.
    let published = d.nodes[1]
        .api(
            "history",
            &serde_json::json!({"channel": "room:general", "limit": 100}),
        )
        .await
        .expect("Centrifugo's history of general");
    let texts: Vec<&str> = published["publications"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["data"]["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let want: Vec<&str> = talk.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, want, "Centrifugo's history holds the conversation");

    // A room made in the app: rooms.create and rooms.join through the RPC proxy, membership
    // through the subscribe proxy.
    let room = alice
        .create_room("Cluster room")
        .await
        .expect("alice creates a room");
    bob.join_room_from_dialog(&room)
        .await
        .expect("bob joins it from the dialog");
    alice.open_room(&room).await.expect("alice opens it");
    say(&bob, &alice, "bob in the new room").await;

    // How the backend verified the access tokens it minted chat tokens for.
    let log = d.server.log();
    let how = if introspection {
        "verified_by=\"introspection\""
    } else {
        "verified_by=\"jwks\""
    };
    assert!(
        log.contains("chat token minted")
            && log
                .lines()
                .filter(|l| l.contains("chat token minted"))
                .all(|l| l.contains(how)),
        "every chat token was minted for an access token checked by {how}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_talk_through_nginx_on_a_centrifugo_cluster() {
    two_users_talk_on_the_cluster(IdpOptions::default(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_talk_on_the_cluster_with_opaque_access_tokens() {
    two_users_talk_on_the_cluster(
        IdpOptions::default().with_env("IDP_OPAQUE_ACCESS_TOKENS", "1"),
        true,
    )
    .await;
}
