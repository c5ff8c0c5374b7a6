//! Test helper for the outbox crash test (not used by the app).
//!
//! Reads an access token from the first line of stdin, starts a relay against `--url` with
//! the outbox at `--outbox`, sends `--count` messages to `--room` and prints
//! `QUEUED <uuid>` after each one is in the outbox, then waits to be killed.

use std::sync::Arc;

use confab_protocol::Token;
use confab_relay::{RelayConfig, RelayHandle, StaticToken};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let (Some(url), Some(outbox), Some(room)) = (arg("--url"), arg("--outbox"), arg("--room"))
    else {
        eprintln!("usage: relay-outbox-child --url URL --outbox FILE --room ROOM [--count N]");
        return std::process::ExitCode::FAILURE;
    };
    let count: usize = arg("--count").and_then(|c| c.parse().ok()).unwrap_or(1);
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("relay-outbox-child: no token on stdin");
        return std::process::ExitCode::FAILURE;
    }
    let token = Token::new(line.trim().to_owned());
    let config = RelayConfig::builder(url, outbox).build();
    let (relay, mut events) = match RelayHandle::start(config, Arc::new(StaticToken::new(token))) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("relay-outbox-child: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    for i in 0..count {
        match relay.send(&room, &format!("crash-test {i}")).await {
            Ok(id) => println!("QUEUED {id}"),
            Err(e) => {
                eprintln!("relay-outbox-child: send failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    println!("DONE");
    std::future::pending::<()>().await;
    std::process::ExitCode::SUCCESS
}
