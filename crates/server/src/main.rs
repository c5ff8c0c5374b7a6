//! `confab-server`: the reference chat server binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use confab_server::{Config, Server};

/// Reference chat server speaking the Centrifugo client protocol v2 (JSON).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML config file; flags override its values.
    #[arg(long, env = "CONFAB_SERVER_CONFIG")]
    config: Option<PathBuf>,
    /// OpenID issuer URL whose keys sign connection tokens.
    #[arg(long, env = "CONFAB_SERVER_ISSUER")]
    issuer: Option<String>,
    /// Required token audience.
    #[arg(long, env = "CONFAB_SERVER_AUDIENCE")]
    audience: Option<String>,
    /// SQLite database file.
    #[arg(long, env = "CONFAB_SERVER_DB")]
    db: Option<PathBuf>,
    /// Listen address (port 0 = any free port).
    #[arg(long, env = "CONFAB_SERVER_LISTEN")]
    listen: Option<SocketAddr>,
    /// Server ping interval in seconds (0 = off).
    #[arg(long)]
    ping_interval: Option<u64>,
    /// Milliseconds after token expiry before disconnecting with 3005.
    #[arg(long)]
    expired_close_delay_ms: Option<u64>,
    /// Publications kept per channel.
    #[arg(long)]
    history_size: Option<usize>,
    /// Commands per second per connection.
    #[arg(long)]
    commands_per_second: Option<u32>,
    /// Connections per user.
    #[arg(long)]
    max_connections_per_user: Option<usize>,
    /// The secret Centrifugo's proxy calls carry (`X-Confab-Proxy-Secret`); turns them on.
    #[arg(long, env = "CONFAB_CENTRIFUGO_PROXY_SECRET", hide_env_values = true)]
    centrifugo_proxy_secret: Option<String>,
    /// Centrifugo's server API URL (e.g. http://127.0.0.1:8000/api), for the backend role;
    /// several (comma-separated) for the nodes of a cluster.
    #[arg(long, env = "CONFAB_CENTRIFUGO_API_URL", value_delimiter = ',')]
    centrifugo_api_url: Vec<url::Url>,
    /// This server's client id at the identity provider (RFC 7662 introspection).
    #[arg(long, env = "CONFAB_INTROSPECTION_CLIENT_ID")]
    introspection_client_id: Option<String>,
    /// Its client secret.
    #[arg(
        long,
        env = "CONFAB_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true
    )]
    introspection_client_secret: Option<String>,
    /// Centrifugo's server API key.
    #[arg(long, env = "CONFAB_CENTRIFUGO_API_KEY", hide_env_values = true)]
    centrifugo_api_key: Option<String>,
    /// Seconds to wait for clients to close on shutdown.
    #[arg(long, default_value_t = 5)]
    shutdown_grace: u64,
}

fn config_from(args: &Args) -> confab_server::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(v) = &args.issuer {
        config.issuer = v.clone();
    }
    if let Some(v) = &args.audience {
        config.audience = v.clone();
    }
    if let Some(v) = &args.db {
        config.db = v.clone();
    }
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.ping_interval {
        config.ping_interval_secs = v;
    }
    if let Some(v) = args.expired_close_delay_ms {
        config.expired_close_delay_ms = v;
    }
    if let Some(v) = args.history_size {
        config.history_size = v;
    }
    if let Some(v) = args.commands_per_second {
        config.commands_per_second = v;
    }
    if let Some(v) = args.max_connections_per_user {
        config.max_connections_per_user = v;
    }
    if let Some(v) = &args.centrifugo_proxy_secret {
        config.centrifugo_proxy_secret = Some(confab_types::SecretString::new(v.clone()));
    }
    if let Some(v) = &args.introspection_client_id {
        config.introspection_client_id = Some(v.clone());
    }
    if let Some(v) = &args.introspection_client_secret {
        config.introspection_client_secret = Some(confab_types::SecretString::new(v.clone()));
    }
    if !args.centrifugo_api_url.is_empty() {
        config
            .centrifugo_api_url
            .clone_from(&args.centrifugo_api_url);
    }
    if let Some(v) = &args.centrifugo_api_key {
        config.centrifugo_api_key = Some(confab_types::SecretString::new(v.clone()));
    }
    config.validate()?;
    Ok(config)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "confab-server failed");
            eprintln!("confab-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> confab_server::Result<()> {
    let config = config_from(&args)?;
    tracing::info!(issuer = %config.issuer, audience = %config.audience, db = %config.db.display(), "starting");
    let server = Server::bind(config).await?;
    let url = server.websocket_url()?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "CONFAB_SERVER_READY url={url}");
        let _ = out.flush();
    }
    tracing::info!(%url, "ready");
    server
        .run(shutdown_signal(), Duration::from_secs(args.shutdown_grace))
        .await
}
