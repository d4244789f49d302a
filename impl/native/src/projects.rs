//! Project configurations of the native host: `projects.sqlite` in the data
//! directory (one row per project, the configuration as JSON), apart from
//! the stream database so configuration writes never queue behind appends.
//! Reads are served from an in-memory copy that every save refreshes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use durable_streams_api::types::ProjectConfig;
use durable_streams_engine::StorageError;
use durable_streams_service::projects::{parse_stored, ProjectStore};
use rusqlite::{params, Connection, OptionalExtension};

pub struct SqliteProjects {
    conn: Mutex<Connection>,
    cache: Mutex<HashMap<String, Option<ProjectConfig>>>,
}

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError::new(format!("project store: {e}"))
}

impl SqliteProjects {
    pub fn open(data_dir: &Path) -> Result<SqliteProjects, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(err)?;
        let conn = Connection::open(data_dir.join("projects.sqlite")).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; \
             CREATE TABLE IF NOT EXISTS ds_projects (project TEXT PRIMARY KEY, config TEXT NOT NULL, updated_ms INTEGER NOT NULL)",
        )
        .map_err(err)?;
        Ok(SqliteProjects { conn: Mutex::new(conn), cache: Mutex::new(HashMap::new()) })
    }

    pub fn load_sync(&self, project: &str) -> Result<Option<ProjectConfig>, StorageError> {
        if let Some(hit) = self.cache.lock().map_err(err)?.get(project) {
            return Ok(hit.clone());
        }
        let json: Option<String> = {
            let conn = self.conn.lock().map_err(err)?;
            conn.query_row("SELECT config FROM ds_projects WHERE project = ?1", params![project], |r| r.get(0))
                .optional()
                .map_err(err)?
        };
        let config = json.map(|j| parse_stored(j.as_bytes())).transpose()?;
        self.cache.lock().map_err(err)?.insert(project.to_owned(), config.clone());
        Ok(config)
    }

    pub fn save_sync(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError> {
        let json = serde_json::to_string(config).map_err(err)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        {
            let conn = self.conn.lock().map_err(err)?;
            conn.execute(
                "INSERT INTO ds_projects (project, config, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (project) DO UPDATE SET config = excluded.config, updated_ms = excluded.updated_ms",
                params![project, json, now],
            )
            .map_err(err)?;
        }
        self.cache.lock().map_err(err)?.insert(project.to_owned(), Some(config.clone()));
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProjectStore for SqliteProjects {
    async fn load(&self, project: &str) -> Result<Option<ProjectConfig>, StorageError> {
        self.load_sync(project)
    }

    async fn save(&self, project: &str, config: &ProjectConfig) -> Result<(), StorageError> {
        self.save_sync(project, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("ds-projects-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ProjectConfig {
            signing_secrets: vec!["k".repeat(32)],
            cors_origins: vec!["https://app.example".into()],
            is_public: Some(true),
        };
        {
            let store = SqliteProjects::open(&dir).unwrap();
            assert_eq!(store.load_sync("acme").unwrap(), None);
            store.save_sync("acme", &config).unwrap();
            assert_eq!(store.load_sync("acme").unwrap(), Some(config.clone()), "the cache follows saves");
        }
        let reopened = SqliteProjects::open(&dir).unwrap();
        assert_eq!(reopened.load_sync("acme").unwrap(), Some(config));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
