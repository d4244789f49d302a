//! Project configurations of the Workers host: the `REGISTRY` KV namespace,
//! key `{project}` → `{signingSecrets, corsOrigins?, isPublic?}` (the seed
//! system's layout; a legacy single `signingSecret` is accepted).
//!
//! The first secret is stored by an operator, never by an unauthenticated
//! route: `wrangler kv key put --binding REGISTRY <project> '<json>'`
//! (`--local` under `wrangler dev`). KV is eventually consistent: a change
//! made through `PUT /v1/config/{project}` reaches other colos within about
//! a minute, and an isolate reuses a configuration it read for 10 s (the
//! isolate that saved a change uses it at once).

use std::cell::RefCell;
use std::collections::HashMap;

use durable_streams_api::types::ProjectConfig;
use durable_streams_engine::StorageError;
use durable_streams_service::projects::{parse_stored, ProjectStore};
use worker::KvStore;

use crate::stream_do::now_ms;

/// How long a colo may serve a project configuration from its KV cache, in seconds.
const KV_CACHE_TTL_SECONDS: u64 = 60;
/// How long an isolate reuses a configuration it read (every request reads
/// one: CORS origins, the public default, the signing secrets), in ms.
const MEMORY_TTL_MS: i64 = 10_000;
/// Configurations an isolate keeps at most.
const MEMORY_MAX: usize = 1_024;

thread_local! {
    /// Project → (its configuration or `None` for none, when it was read).
    static MEMORY: RefCell<HashMap<String, (Option<ProjectConfig>, i64)>> = RefCell::new(HashMap::new());
}

fn remember(project: &str, config: Option<ProjectConfig>, now_ms: i64) {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() >= MEMORY_MAX && !memory.contains_key(project) {
            memory.retain(|_, (_, at)| now_ms - *at < MEMORY_TTL_MS);
            if memory.len() >= MEMORY_MAX {
                memory.clear();
            }
        }
        memory.insert(project.to_owned(), (config, now_ms));
    });
}

fn remembered(project: &str, now_ms: i64) -> Option<Option<ProjectConfig>> {
    MEMORY.with(|memory| {
        memory.borrow().get(project).filter(|(_, at)| now_ms - *at < MEMORY_TTL_MS).map(|(config, _)| config.clone())
    })
}

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
        if let Some(config) = remembered(project, now_ms()) {
            return Ok(config);
        }
        let bytes = self.kv.get(project).cache_ttl(KV_CACHE_TTL_SECONDS).bytes().await.map_err(err)?;
        let config = bytes.map(|json| parse_stored(&json)).transpose()?;
        remember(project, config.clone(), now_ms());
        Ok(config)
    }

    async fn save(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError> {
        let json = serde_json::to_string(config).map_err(err)?;
        self.kv.put(project, json).map_err(err)?.execute().await.map_err(err)?;
        remember(project, Some(config.clone()), now_ms());
        Ok(())
    }
}
