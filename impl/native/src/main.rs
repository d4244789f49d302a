//! `durable-streams serve`: the native Durable Streams server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use durable_streams_server::config::{Durability, ServerConfig};
use durable_streams_server::estuaries::NativeEstuaries;
use durable_streams_server::host::NativeHost;
use durable_streams_server::http::{self, HttpState};
use durable_streams_server::operator;
use durable_streams_server::projects::SqliteProjects;
use durable_streams_server::service::Service;
use durable_streams_api::{CorsOrigins, Gate};
use durable_streams_service::auth::{AuthGate, BearerTokenAuth, ByMethod, JwtSessionAuth, NoAuth, ProjectJwtAuth};
use durable_streams_service::projects::Projects;
use std::sync::Arc;

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
    /// Operator commands for projects (run on the server's machine).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Mint a project token (HS256 JWT) with a project's newest signing secret.
    Token(TokenArgs),
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project: generate its first signing secret, store it, print
    /// the secret and a manage token. Refuses an existing project.
    Create {
        name: String,
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Browser origins allowed to call the project (repeatable).
        #[arg(long = "cors-origin")]
        cors_origins: Vec<String>,
        /// Lifetime of the printed manage token, in seconds.
        #[arg(long, default_value_t = 86_400)]
        token_ttl: u64,
    },
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The project (the token's `sub`).
    project: String,
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// read, write or manage.
    #[arg(long, default_value = "read")]
    scope: String,
    /// Limit the token to one stream (its path within the project).
    #[arg(long)]
    stream_id: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3_600)]
    ttl: u64,
    /// Sign with this secret instead of the project's newest one in `--data-dir`
    /// (e.g. for a Workers deployment whose secrets live in KV).
    #[arg(long)]
    secret: Option<String>,
}

/// Who may call the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AuthMode {
    /// Project JWTs (HS256; secrets from `durable-streams project create` / the config API).
    Jwt,
    /// No authentication at all (local development only).
    None,
    /// The seeds' strategies: a static token for mutations (`--auth-token`) and
    /// session JWTs for reads of `session:{id}` streams (`--read-jwt-secret`).
    Seed,
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
    /// An estuary lives this long after its last subscribe.
    #[arg(long, default_value_t = 86_400)]
    estuary_ttl_seconds: u64,
    /// Authentication: jwt (default), none (local development), seed.
    #[arg(long, value_enum, default_value = "jwt")]
    auth: AuthMode,
    /// `--auth seed`: the token mutations must present.
    #[arg(long, env = "AUTH_TOKEN")]
    auth_token: Option<String>,
    /// `--auth seed`: the HS256 secret of session read tokens.
    #[arg(long, env = "READ_JWT_SECRET")]
    read_jwt_secret: Option<String>,
    /// Browser origins allowed for every project (repeatable; `*` for any).
    /// Default: `*` with `--auth none`, otherwise only each project's corsOrigins.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
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
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Project(ProjectCommand::Create { name, data_dir, cors_origins, token_ttl }) => {
            return report(operator::create_project(&data_dir, &name, cors_origins, token_ttl));
        }
        Command::Token(t) => {
            return report(match &t.secret {
                Some(secret) => operator::mint_token_with(secret, &t.project, &t.scope, t.stream_id.as_deref(), t.ttl),
                None => operator::mint_token(&t.data_dir, &t.project, &t.scope, t.stream_id.as_deref(), t.ttl),
            });
        }
    };
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
        estuary_ttl: Duration::from_secs(args.estuary_ttl_seconds.max(1)),
        ..ServerConfig::default()
    };
    let (service, writer_thread) = Service::start(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| format!("{}: {e}", args.listen))?;
    tracing::info!(listen = %args.listen, data_dir = %service.config.data_dir.display(), "durable-streams listening");
    let projects: Projects = Arc::new(SqliteProjects::open(&service.config.data_dir).map_err(|e| e.to_string())?);
    let api = durable_streams_service::StreamsService::new(NativeHost(service.clone()))
        .with_projects(projects.clone())
        .with_estuaries(Arc::new(NativeEstuaries(service.clone())));
    let cors = match (args.cors_origins.is_empty(), args.auth) {
        (true, AuthMode::None) => CorsOrigins::Any,
        (true, _) => CorsOrigins::None,
        (false, _) if args.cors_origins.iter().any(|o| o == "*") => CorsOrigins::Any,
        (false, _) => CorsOrigins::List(args.cors_origins.clone()),
    };
    let gate: Box<dyn Gate> = match args.auth {
        AuthMode::Jwt => Box::new(AuthGate::new(ProjectJwtAuth, Some(projects))),
        AuthMode::None => Box::new(AuthGate::new(NoAuth, Some(projects))),
        AuthMode::Seed => {
            let (Some(token), Some(secret)) = (&args.auth_token, &args.read_jwt_secret) else {
                return Err("--auth seed needs --auth-token (AUTH_TOKEN) and --read-jwt-secret (READ_JWT_SECRET)".into());
            };
            let authorizer = ByMethod { read: JwtSessionAuth::new(secret.as_bytes()), mutation: BearerTokenAuth::new(token) };
            Box::new(AuthGate::new(authorizer, Some(projects)))
        }
    };
    tracing::info!(auth = ?args.auth, "authentication");
    let service_config = durable_streams_api::ServiceConfig { cors };
    let max_body_bytes = usize::try_from(args.max_append_bytes).unwrap_or(usize::MAX);
    let app = http::router(Arc::new(HttpState::new(api, gate, service_config, max_body_bytes, None)));
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

fn report(result: Result<String, String>) -> std::process::ExitCode {
    match result {
        Ok(out) => {
            println!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
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
