//! Per-project configuration: signing secrets (newest first — rotation adds
//! a secret at the front and later drops the old one), browser origins, and
//! the default public flag of new streams. Stored by the host (SQLite
//! natively, the `REGISTRY` KV namespace on Workers) behind [`ProjectStore`];
//! served by the config API (`GET|PUT /v1/config/{project}`, manage scope).

use std::sync::Arc;

use durable_streams_api::operations::*;
use durable_streams_api::types::ProjectConfig;
use durable_streams_api::{ApiError, Problem, RequestContext};
use durable_streams_engine::StorageError;

/// Most signing secrets a project keeps at once.
pub const SECRETS_MAX: usize = 16;
/// Shortest accepted signing secret, in bytes (HS256 wants at least 256 bits).
pub const SECRET_BYTES_MIN: usize = 32;
/// Longest accepted signing secret, in bytes (a JSON JWK fits easily).
pub const SECRET_BYTES_MAX: usize = 4096;
/// Most CORS origins a project lists.
pub const ORIGINS_MAX: usize = 64;
/// Longest accepted origin, in bytes.
pub const ORIGIN_BYTES_MAX: usize = 512;

/// Where the hosts keep project configurations.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait ProjectStore: durable_streams_api::context::MaybeSendSync {
    async fn load(&self, project: &str) -> Result<Option<ProjectConfig>, StorageError>;
    async fn save(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError>;
}

/// A shared store.
pub type Projects = Arc<dyn ProjectStore>;

/// The stored form, accepting the seed system's legacy single `signingSecret`.
#[derive(serde::Deserialize)]
struct Stored {
    #[serde(rename = "signingSecrets", default)]
    signing_secrets: Vec<String>,
    #[serde(rename = "signingSecret", default)]
    signing_secret: Option<String>,
    #[serde(rename = "corsOrigins", default)]
    cors_origins: Vec<String>,
    #[serde(rename = "isPublic", default)]
    is_public: Option<bool>,
}

/// Parses a stored configuration (a legacy `signingSecret` becomes the only secret).
pub fn parse_stored(json: &[u8]) -> Result<ProjectConfig, StorageError> {
    let stored: Stored =
        serde_json::from_slice(json).map_err(|e| StorageError::new(format!("stored project config is invalid: {e}")))?;
    let mut signing_secrets = stored.signing_secrets;
    if signing_secrets.is_empty() {
        signing_secrets.extend(stored.signing_secret);
    }
    Ok(ProjectConfig { signing_secrets, cors_origins: stored.cors_origins, is_public: stored.is_public })
}

/// The rules a configuration must satisfy before it is stored.
pub fn validate(config: &ProjectConfig) -> Result<(), String> {
    if config.signing_secrets.is_empty() {
        return Err("signingSecrets must list at least one secret".to_owned());
    }
    if config.signing_secrets.len() > SECRETS_MAX {
        return Err(format!("at most {SECRETS_MAX} signing secrets"));
    }
    if let Some(i) = config.signing_secrets.iter().position(|s| s.len() < SECRET_BYTES_MIN || s.len() > SECRET_BYTES_MAX) {
        // Never echo the secret itself.
        return Err(format!(
            "signingSecrets[{i}] must be {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes long"
        ));
    }
    if config.cors_origins.len() > ORIGINS_MAX {
        return Err(format!("at most {ORIGINS_MAX} CORS origins"));
    }
    for origin in &config.cors_origins {
        let valid = origin == "*"
            || ((origin.starts_with("https://") || origin.starts_with("http://"))
                && origin.len() <= ORIGIN_BYTES_MAX
                && !origin.trim_start_matches("https://").trim_start_matches("http://").contains('/')
                && origin.bytes().all(|b| b.is_ascii_graphic()));
        if !valid {
            return Err(format!("corsOrigins: {origin:?} is not `*` or a scheme://host[:port] origin"));
        }
    }
    Ok(())
}

/// A project name: one stream-path segment (`[A-Za-z0-9._~-]`, 1–128 bytes, not `.`/`..`/`__ds`).
pub fn valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name != durable_streams_api::stream_path::RESERVED_SEGMENT
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn problem(status: u16, title: &str, detail: String) -> Problem {
    Problem { type_: "about:blank".to_owned(), title: title.to_owned(), status, detail: Some(detail) }
}

fn unavailable(error: StorageError) -> ApiError {
    ApiError::from(problem(503, "Service Unavailable", format!("project store: {error}")))
}

/// The config API over a [`ProjectStore`]; the gate has already checked
/// the manage scope and `sub` = project.
pub async fn get_config(projects: &dyn ProjectStore, request: GetConfigRequest) -> Result<GetConfigResponse, ApiError> {
    match projects.load(&request.project).await.map_err(unavailable)? {
        Some(config) => Ok(GetConfigResponse::Ok(config)),
        None => Ok(GetConfigResponse::NotFound(problem(404, "Not Found", "no such project".to_owned()))),
    }
}

pub async fn put_config(
    projects: &dyn ProjectStore,
    _ctx: &RequestContext,
    request: PutConfigRequest,
) -> Result<PutConfigResponse, ApiError> {
    if !valid_project_name(&request.project) {
        return Ok(PutConfigResponse::BadRequest(problem(400, "Bad Request", "invalid project name".to_owned())));
    }
    if let Err(detail) = validate(&request.body) {
        return Ok(PutConfigResponse::BadRequest(problem(400, "Bad Request", detail)));
    }
    projects.save(&request.project, &request.body).await.map_err(unavailable)?;
    Ok(PutConfigResponse::Ok(request.body))
}

/// Projects in memory (tests, ephemeral hosts).
#[derive(Default)]
pub struct MemoryProjects {
    projects: std::sync::Mutex<std::collections::HashMap<String, ProjectConfig>>,
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ProjectStore for MemoryProjects {
    async fn load(&self, project: &str) -> Result<Option<ProjectConfig>, StorageError> {
        let projects = self.projects.lock().map_err(|_| StorageError::new("poisoned"))?;
        Ok(projects.get(project).cloned())
    }

    async fn save(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError> {
        let mut projects = self.projects.lock().map_err(|_| StorageError::new("poisoned"))?;
        projects.insert(project.to_owned(), config.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secrets: &[&str]) -> ProjectConfig {
        ProjectConfig {
            signing_secrets: secrets.iter().map(|s| s.to_string()).collect(),
            cors_origins: Vec::new(),
            is_public: None,
        }
    }

    #[test]
    fn legacy_single_secret_is_normalised() {
        let parsed = parse_stored(br#"{"signingSecret":"abc","corsOrigins":["https://a.example"]}"#).unwrap();
        assert_eq!(parsed.signing_secrets, vec!["abc".to_owned()]);
        assert_eq!(parsed.cors_origins, vec!["https://a.example".to_owned()]);
        let both = parse_stored(br#"{"signingSecrets":["new","old"],"signingSecret":"x"}"#).unwrap();
        assert_eq!(both.signing_secrets, vec!["new".to_owned(), "old".to_owned()], "the list wins");
        assert!(parse_stored(b"not json").is_err());
    }

    #[test]
    fn validation_bounds_everything_and_never_echoes_secrets() {
        let secret = "s".repeat(SECRET_BYTES_MIN);
        assert!(validate(&config(&[&secret])).is_ok());
        assert!(validate(&config(&[])).is_err());
        let short = validate(&config(&["tiny-secret"])).unwrap_err();
        assert!(!short.contains("tiny-secret"), "{short}");
        let many: Vec<&str> = (0..=SECRETS_MAX).map(|_| secret.as_str()).collect();
        assert!(validate(&config(&many)).is_err());
        let mut with_origins = config(&[&secret]);
        with_origins.cors_origins = vec!["https://app.example:8443".into(), "*".into()];
        assert!(validate(&with_origins).is_ok());
        with_origins.cors_origins = vec!["https://app.example/path".into()];
        assert!(validate(&with_origins).is_err());
        with_origins.cors_origins = vec!["javascript:alert(1)".into()];
        assert!(validate(&with_origins).is_err());
    }

    #[test]
    fn project_names_are_single_safe_segments() {
        assert!(valid_project_name("acme-prod_1"));
        for bad in ["", ".", "..", "__ds", "a/b", "a b", "ä"] {
            assert!(!valid_project_name(bad), "{bad:?}");
        }
    }
}
