//! Operator commands of the native binary: creating a project (its first
//! signing secret never comes from an unauthenticated route) and minting
//! project tokens.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use durable_streams_api::types::ProjectConfig;
use durable_streams_api::Scope;
use durable_streams_service::auth::{sign_hs256, Claims};
use durable_streams_service::projects::{valid_project_name, validate};

use crate::projects::SqliteProjects;

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// 32 random bytes from the OS, hex-encoded (a 64-character secret).
fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A token for `project` with `scope`, signed with `secret`.
pub fn token_for(project: &str, scope: Scope, stream_id: Option<&str>, ttl_s: u64, secret: &str) -> String {
    let mut claims = Claims::project(project, scope, now_s() + ttl_s);
    if let Some(stream) = stream_id {
        claims = claims.for_stream(stream);
    }
    sign_hs256(&claims, secret.as_bytes())
}

/// `durable-streams project create NAME`: stores a fresh secret and prints it
/// with a manage token.
pub fn create_project(data_dir: &Path, name: &str, cors_origins: Vec<String>, token_ttl_s: u64) -> Result<String, String> {
    if !valid_project_name(name) {
        return Err(format!("{name:?} is not a valid project name (letters, digits, `.`, `_`, `~`, `-`)"));
    }
    let store = SqliteProjects::open(data_dir).map_err(|e| e.to_string())?;
    if store.load_sync(name).map_err(|e| e.to_string())?.is_some() {
        return Err(format!("project {name} exists; rotate its secrets with PUT /v1/config/{name}"));
    }
    let secret = new_secret()?;
    let config = ProjectConfig { signing_secrets: vec![secret.clone()], cors_origins, is_public: None };
    validate(&config)?;
    store.save_sync(name, &config).map_err(|e| e.to_string())?;
    let token = token_for(name, Scope::Manage, None, token_ttl_s, &secret);
    Ok(format!("project: {name}\nsecret: {secret}\nmanage token (valid {token_ttl_s} s): {token}"))
}

/// `durable-streams token PROJECT --scope S`: a token signed with the project's newest secret.
pub fn mint_token(data_dir: &Path, project: &str, scope: &str, stream_id: Option<&str>, ttl_s: u64) -> Result<String, String> {
    let scope = Scope::parse(scope).ok_or_else(|| format!("unknown scope {scope:?} (read, write, manage)"))?;
    let store = SqliteProjects::open(data_dir).map_err(|e| e.to_string())?;
    let config = store.load_sync(project).map_err(|e| e.to_string())?.ok_or_else(|| format!("no project {project}"))?;
    let secret = config.signing_secrets.first().ok_or_else(|| format!("project {project} has no signing secret"))?;
    Ok(token_for(project, scope, stream_id, ttl_s, secret))
}

/// `durable-streams token PROJECT --secret S`: a token signed with a given secret.
pub fn mint_token_with(secret: &str, project: &str, scope: &str, stream_id: Option<&str>, ttl_s: u64) -> Result<String, String> {
    let scope = Scope::parse(scope).ok_or_else(|| format!("unknown scope {scope:?} (read, write, manage)"))?;
    Ok(token_for(project, scope, stream_id, ttl_s, secret))
}
