//! `durable-streams serve`: the native Durable Streams server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use durable_streams_server::config::{Durability, ServerConfig};
use durable_streams_server::host::NativeHost;
use durable_streams_server::http::{self, HttpState};
use durable_streams_server::service::Service;

#[derive(Parser)]
#[command(name = "durable-streams", version, about = "Durable Streams server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Durable Streams HTTP protocol.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:4437")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 30_000)]
    long_poll_timeout_ms: u64,
    #[arg(long, default_value_t = 60_000)]
    sse_reconnect_ms: u64,
    #[arg(long, default_value_t = 1000)]
    segment_max_messages: u64,
    #[arg(long, default_value_t = 4 << 20)]
    segment_max_bytes: u64,
    #[arg(long, default_value_t = 16 << 20)]
    max_append_bytes: u64,
    #[arg(long, default_value_t = 1 << 20)]
    read_chunk_bytes: u64,
    /// fsync (default: ack after the group commit is fsynced), relaxed, none.
    #[arg(long, default_value = "fsync")]
    durability: Durability,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let Command::Serve(args) = cli.command;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = ServerConfig {
        data_dir: args.data_dir,
        long_poll_timeout: Duration::from_millis(args.long_poll_timeout_ms),
        sse_reconnect_interval: Duration::from_millis(args.sse_reconnect_ms.max(100)),
        segment_max_messages: args.segment_max_messages.max(1),
        segment_max_bytes: args.segment_max_bytes.max(1),
        max_append_bytes: args.max_append_bytes,
        read_chunk_bytes: args.read_chunk_bytes.max(1),
        durability: args.durability,
        ..ServerConfig::default()
    };
    let (service, writer_thread) = Service::start(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("{}: {e}", args.listen))?;
    tracing::info!(listen = %args.listen, data_dir = %service.config.data_dir.display(), "durable-streams listening");
    let api = durable_streams_service::StreamsService::new(NativeHost(service.clone()));
    let service_config = durable_streams_api::ServiceConfig { cors: durable_streams_api::CorsOrigins::Any };
    let max_body_bytes = usize::try_from(args.max_append_bytes).unwrap_or(usize::MAX);
    let app = http::router(std::sync::Arc::new(HttpState::new(api, service_config, max_body_bytes, None)));
    let svc = service.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            svc.begin_shutdown();
        })
        .await
        .map_err(|e| e.to_string())?;
    service.begin_shutdown();
    drop(service);
    // The writer finishes its queue once the last handle is gone; don't hang on stragglers.
    let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    tracing::info!("stopped");
    Ok(())
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
        _ = ctrl_c => {},
        _ = term => {},
    }
}
