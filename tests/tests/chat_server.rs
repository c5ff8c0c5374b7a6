//! The harness's chat server: it starts on a free port and prints its URL, and after a stop it
//! comes back on the same port with the same database (what the reconnect test relies on). No
//! app involved; this only proves the harness.

use confab_e2e::ChatServer;
use confab_testkit::{Idp, IdpOptions};

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_server_restarts_on_the_same_port_with_the_same_database() {
    let idp = Idp::start(IdpOptions::default())
        .await
        .expect("the test IdP starts (run `npm ci` in tests/idp)");
    let mut server = ChatServer::start(&idp.issuer_str())
        .await
        .expect("the chat server starts (cargo build -p confab-server --bin confab-server)");
    let url = server.url().to_owned();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/connection/websocket"),
        "the server prints its WebSocket URL: {url}"
    );
    assert!(
        accepts(server.port()).await,
        "the server listens on its port"
    );
    assert!(
        server.db().is_file(),
        "the server created its database file"
    );

    server.stop();
    assert!(!server.is_running(), "stop ends the server");
    assert!(
        !accepts(server.port()).await,
        "a stopped server no longer accepts connections"
    );

    server.restart().await.expect("the server starts again");
    assert_eq!(server.url(), url, "the restarted server has the same URL");
    assert!(
        accepts(server.port()).await,
        "the restarted server listens again"
    );
    assert!(server.db().is_file(), "the database is still there");
}
