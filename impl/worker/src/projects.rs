//! Project configurations of the Workers host: the `REGISTRY` KV namespace,
//! key `{project}` → `{signingSecrets, corsOrigins?, isPublic?}` (the seed
//! system's layout; a legacy single `signingSecret` is accepted).
//!
//! The first secret is stored by an operator, never by an unauthenticated
//! route: `wrangler kv key put --binding REGISTRY <project> '<json>'`
//! (`--local` under `wrangler dev`). KV is eventually consistent: a change
//! made through `PUT /v1/config/{project}` reaches other colos within about
//! a minute.

use durable_streams_api::types::ProjectConfig;
use durable_streams_engine::StorageError;
use durable_streams_service::projects::{parse_stored, ProjectStore};
use worker::KvStore;

/// How long a colo may serve a project configuration from its KV cache, in seconds.
const KV_CACHE_TTL_SECONDS: u64 = 60;

pub struct KvProjects {
    kv: KvStore,
}

impl KvProjects {
    pub fn new(kv: KvStore) -> KvProjects {
        KvProjects { kv }
    }
}

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(format!("REGISTRY: {e}"))
}

#[async_trait::async_trait(?Send)]
impl ProjectStore for KvProjects {
    async fn load(&self, project: &str) -> Result<Option<ProjectConfig>, StorageError> {
        let bytes = self.kv.get(project).cache_ttl(KV_CACHE_TTL_SECONDS).bytes().await.map_err(err)?;
        bytes.map(|json| parse_stored(&json)).transpose()
    }

    async fn save(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError> {
        let json = serde_json::to_string(config).map_err(err)?;
        self.kv.put(project, json).map_err(err)?.execute().await.map_err(err)
    }
}
