//! The registry stream: create/delete events recorded in the same
//! transaction as the change, moved to `{project}/__registry__` once.
//! Run with `cargo test -p durable-streams-engine --features sqlite`.

use bytes::Bytes;
use durable_streams_engine::registry;
use durable_streams_engine::*;
use rusqlite::Connection;
use serde_json::{json, Value};

fn db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    hot_log::migrate(&c).unwrap();
    c
}

fn create(e: &Engine, c: &Connection, key: &str, ct: &str, now: i64) -> Result<CreateOutcome, ProtocolError> {
    e.create(c, CreateRequest { key: key.into(), content_type: Some(ct.into()), ..Default::default() }, now)
}

fn registry_of(e: &Engine, c: &Connection, project: &str) -> Vec<Value> {
    let out = e.read(c, &ReadRequest { key: registry::registry_key(project), from: ReadFrom::Start }, 0).unwrap();
    let body = out.body_with(|_| Err(StorageError::new("no cold data"))).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn insert(name: &str, ct: &str, at: i64) -> Value {
    json!({"type": "stream", "key": name, "value": {"path": name, "contentType": ct, "createdAt": at}, "headers": {"operation": "insert"}})
}

fn delete(name: &str) -> Value {
    json!({"type": "stream", "key": name, "headers": {"operation": "delete"}})
}

#[test]
fn creations_and_deletions_reach_the_project_registry_once_in_order() {
    let (e, c) = (Engine::new(EngineConfig::default()), db());
    create(&e, &c, "p/a", "text/plain", 10).unwrap();
    create(&e, &c, "p/b", "application/json", 11).unwrap();
    create(&e, &c, "q/x", "text/plain", 12).unwrap();
    // Idempotent re-creation and a refused one record nothing.
    create(&e, &c, "p/a", "text/plain", 13).unwrap();
    assert!(create(&e, &c, "p/a", "application/json", 14).is_err());
    e.delete(&c, "p/a", 15).unwrap();
    // A stream with a TTL that runs out is a deletion too.
    let ttl = CreateRequest { key: "p/t".into(), content_type: Some("text/plain".into()), expiry: ttl::Expiry::Ttl { seconds: 1 }, ..Default::default() };
    e.create(&c, ttl, 20).unwrap();
    e.sweep_expired(&c, 5_000, 10).unwrap();
    assert_eq!(registry::pending(&c, 100).unwrap().len(), 6);
    let changed = registry::drain_local(&e, &c, 100, 30).unwrap();
    assert_eq!(changed, vec!["p/__registry__".to_owned(), "q/__registry__".to_owned()]);
    assert!(registry::pending(&c, 100).unwrap().is_empty(), "moved, not copied");
    assert_eq!(
        registry_of(&e, &c, "p"),
        vec![insert("a", "text/plain", 10), insert("b", "application/json", 11), delete("a"), insert("t", "text/plain", 20), delete("t")]
    );
    assert_eq!(registry_of(&e, &c, "q"), vec![insert("x", "text/plain", 12)]);
    // Draining again adds nothing.
    assert!(registry::drain_local(&e, &c, 100, 31).unwrap().is_empty());
    assert_eq!(registry_of(&e, &c, "q").len(), 1);
}

#[test]
fn a_soft_deleted_source_is_announced_once() {
    let (e, c) = (Engine::new(EngineConfig::default()), db());
    create(&e, &c, "p/src", "text/plain", 1).unwrap();
    let fork = CreateRequest {
        key: "p/fork".into(),
        content_type: Some("text/plain".into()),
        fork: Some(fork::ForkSpec { source: "p/src".into(), offset: None, sub_offset: 0 }),
        ..Default::default()
    };
    e.create(&c, fork, 2).unwrap();
    e.delete(&c, "p/src", 3).unwrap(); // soft: the fork still needs it
    e.delete(&c, "p/fork", 4).unwrap(); // releases and purges the source
    registry::drain_local(&e, &c, 100, 5).unwrap();
    assert_eq!(
        registry_of(&e, &c, "p"),
        vec![insert("src", "text/plain", 1), insert("fork", "text/plain", 2), delete("src"), delete("fork")]
    );
}

#[test]
fn an_event_commits_or_rolls_back_with_its_creation() {
    let (e, c) = (Engine::new(EngineConfig::default()), db());
    c.execute_batch("BEGIN").unwrap();
    create(&e, &c, "p/a", "text/plain", 1).unwrap();
    c.execute_batch("ROLLBACK").unwrap();
    assert!(registry::pending(&c, 10).unwrap().is_empty());
    let huge = CreateRequest {
        key: "p/big".into(),
        content_type: Some("text/plain".into()),
        body: Bytes::from(vec![b'x'; 64]),
        ..Default::default()
    };
    let tiny = Engine::new(EngineConfig { max_append_bytes: 8, ..EngineConfig::default() });
    assert!(tiny.create(&c, huge, 2).is_err());
    assert!(registry::pending(&c, 10).unwrap().is_empty(), "a refused creation records nothing");
}
