//! The registry stream: each project's `{project}/__registry__`
//! (`application/json`) receives one message per stream created or deleted
//! in the project, for discovery and monitoring:
//!
//! ```json
//! {"type":"stream","key":"orders","value":{"path":"orders","contentType":"application/json","createdAt":1738591200000},"headers":{"operation":"insert"}}
//! {"type":"stream","key":"orders","headers":{"operation":"delete"}}
//! ```
//!
//! Never lost, never duplicated: the engine records each event in
//! `ds_registry_outbox` in the same transaction as the creation or
//! deletion; hosts move events to the registry stream — natively in the
//! same transaction ([`drain_local`]), on Workers as idempotent-producer
//! appends to the registry's object, deleting the outbox rows after
//! success ([`pending`], [`acknowledge`]).

use bytes::Bytes;
use serde_json::json;

use crate::error::{ProtocolError, StorageError};
use crate::hot_log;
use crate::storage::SqlExecutor;
use crate::streams::{AppendRequest, CreateRequest, Engine};

/// The registry stream's name within a project (reserved: clients may read
/// it, never write it).
pub const REGISTRY_STREAM: &str = "__registry__";
/// The registry stream's content type.
pub const CONTENT_TYPE: &str = "application/json";

/// DDL of the outbox (part of [`hot_log::migrate`]).
pub const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS ds_registry_outbox (
        seq INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        event TEXT NOT NULL
    )"];

const COUNTER: &str = "registry";

/// `(project, name)` of a stream key `{project}/{name}`.
fn split(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

/// Whether `key` names a registry stream.
pub fn is_registry(key: &str) -> bool {
    split(key).is_some_and(|(_, name)| name == REGISTRY_STREAM)
}

/// The registry stream key of a project.
pub fn registry_key(project: &str) -> String {
    format!("{project}/{REGISTRY_STREAM}")
}

fn record(db: &impl SqlExecutor, project: &str, event: serde_json::Value) -> Result<(), StorageError> {
    let seq = hot_log::next_counter(db, COUNTER)?;
    db.execute(
        "INSERT INTO ds_registry_outbox (seq, project, event) VALUES (?1, ?2, ?3)",
        &[seq.into(), project.into(), event.to_string().into()],
    )?;
    Ok(())
}

/// Called inside a creation's transaction.
pub(crate) fn record_insert(db: &impl SqlExecutor, key: &str, content_type: &str, created_ms: i64) -> Result<(), StorageError> {
    let Some((project, name)) = split(key) else { return Ok(()) };
    if name == REGISTRY_STREAM {
        return Ok(());
    }
    let event = json!({
        "type": "stream",
        "key": name,
        "value": {"path": name, "contentType": content_type, "createdAt": created_ms},
        "headers": {"operation": "insert"},
    });
    record(db, project, event)
}

/// Called inside a deletion's transaction (explicit, or the stream expired).
pub(crate) fn record_delete(db: &impl SqlExecutor, key: &str) -> Result<(), StorageError> {
    let Some((project, name)) = split(key) else { return Ok(()) };
    if name == REGISTRY_STREAM {
        return Ok(());
    }
    record(db, project, json!({"type": "stream", "key": name, "headers": {"operation": "delete"}}))
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Dense, from 1, per database.
    pub seq: u64,
    pub project: String,
    /// The JSON message.
    pub event: String,
}

/// Up to `limit` events not yet moved to their registry streams, in order.
pub fn pending(db: &impl SqlExecutor, limit: u64) -> Result<Vec<Event>, StorageError> {
    db.query("SELECT seq, project, event FROM ds_registry_outbox ORDER BY seq LIMIT +?1", &[limit.into()])?
        .iter()
        .map(|r| Ok(Event { seq: r.uint(0)?, project: r.text(1)?, event: r.text(2)? }))
        .collect()
}

/// Forgets the events up to `seq` (they are in their registry streams).
pub fn acknowledge(db: &impl SqlExecutor, seq: u64) -> Result<(), StorageError> {
    db.execute("DELETE FROM ds_registry_outbox WHERE seq <= ?1", &[seq.into()])?;
    Ok(())
}

/// The registry stream's creation request (idempotent).
pub fn create_request(project: &str) -> CreateRequest {
    CreateRequest { key: registry_key(project), content_type: Some(CONTENT_TYPE.to_owned()), ..Default::default() }
}

/// Moves up to `limit` events to registry streams in the same database
/// (creating a registry stream on its first event), in one transaction.
/// Returns the registry streams that grew (wake their readers).
pub fn drain_local(engine: &Engine, db: &impl SqlExecutor, limit: u64, now_ms: i64) -> Result<Vec<String>, ProtocolError> {
    db.transaction(|| {
        let events = pending(db, limit)?;
        let mut changed: Vec<String> = Vec::new();
        for event in &events {
            let key = registry_key(&event.project);
            let append = AppendRequest {
                key: key.clone(),
                content_type: Some(CONTENT_TYPE.to_owned()),
                body: Bytes::from(event.event.clone()),
                ..Default::default()
            };
            match engine.append(db, append.clone(), now_ms) {
                Ok(_) => {}
                Err(ProtocolError::NotFound) => {
                    engine.create(db, create_request(&event.project), now_ms)?;
                    engine.append(db, append, now_ms)?;
                }
                Err(other) => return Err(other),
            }
            if !changed.contains(&key) {
                changed.push(key);
            }
        }
        if let Some(last) = events.last() {
            acknowledge(db, last.seq)?;
        }
        Ok(changed)
    })
}
