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
//!
//! Each event carries two numbers: `seq`, dense per database (the outbox
//! order), and `project_seq`, dense from 0 per project within the database
//! — the `Producer-Seq` of a Workers object's appends to one project's
//! registry. They differ when a database holds streams of several projects
//! (natively always; on Workers when a fork lives in the object of its
//! source in another project).

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
        event TEXT NOT NULL,
        project_seq INTEGER NOT NULL
    )"];

/// The outbox order (dense per database).
const COUNTER: &str = "registry";

/// The counter of a project's events (dense per project and database).
fn project_counter(project: &str) -> String {
    format!("registry:{project}")
}

/// Adds `project_seq` to outboxes created before it existed and numbers
/// their pending events per project, in order. (Events recorded before
/// then were sent with `seq - 1`; a Workers host sends the renumbered ones
/// under a new producer epoch.) Part of [`hot_log::migrate`].
pub(crate) fn migrate_columns(db: &impl SqlExecutor) -> Result<(), StorageError> {
    if db.query("SELECT project_seq FROM ds_registry_outbox LIMIT 0", &[]).is_ok() {
        return Ok(());
    }
    db.transaction(|| {
        db.execute("ALTER TABLE ds_registry_outbox ADD COLUMN project_seq INTEGER NOT NULL DEFAULT -1", &[])?;
        let rows = db.query("SELECT seq, project FROM ds_registry_outbox ORDER BY seq", &[])?;
        for row in &rows {
            let (seq, project) = (row.uint(0)?, row.text(1)?);
            let project_seq = hot_log::next_counter(db, &project_counter(&project))? - 1;
            db.execute("UPDATE ds_registry_outbox SET project_seq = ?1 WHERE seq = ?2", &[project_seq.into(), seq.into()])?;
        }
        Ok(())
    })
}

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
    let project_seq = hot_log::next_counter(db, &project_counter(project))? - 1;
    db.execute(
        "INSERT INTO ds_registry_outbox (seq, project, event, project_seq) VALUES (?1, ?2, ?3, ?4)",
        &[seq.into(), project.into(), event.to_string().into(), project_seq.into()],
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
    /// Dense, from 1, per database: the order events are moved in.
    pub seq: u64,
    pub project: String,
    /// Dense, from 0, per project within the database (a Workers object's
    /// `Producer-Seq` on the project's registry stream).
    pub project_seq: u64,
    /// The JSON message.
    pub event: String,
}

/// Up to `limit` events not yet moved to their registry streams, in order.
pub fn pending(db: &impl SqlExecutor, limit: u64) -> Result<Vec<Event>, StorageError> {
    db.query("SELECT seq, project, event, project_seq FROM ds_registry_outbox ORDER BY seq LIMIT +?1", &[limit.into()])?
        .iter()
        .map(|r| Ok(Event { seq: r.uint(0)?, project: r.text(1)?, event: r.text(2)?, project_seq: r.uint(3)? }))
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

/// What one [`drain_local`] round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    /// Events moved (fewer than the round's limit: none is left).
    pub events: usize,
    /// The registry streams that grew (wake their readers), in first-event order.
    pub grew: Vec<String>,
}

/// Moves up to `limit` events to registry streams in the same database
/// (creating a registry stream on its first event), in one transaction.
pub fn drain_local(engine: &Engine, db: &impl SqlExecutor, limit: u64, now_ms: i64) -> Result<Moved, ProtocolError> {
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
        Ok(Moved { events: events.len(), grew: changed })
    })
}
