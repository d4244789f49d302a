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
    let moved = registry::drain_local(&e, &c, 100, 30).unwrap();
    assert_eq!(moved.events, 6);
    assert_eq!(moved.grew, vec!["p/__registry__".to_owned(), "q/__registry__".to_owned()]);
    assert!(registry::pending(&c, 100).unwrap().is_empty(), "moved, not copied");
    assert_eq!(
        registry_of(&e, &c, "p"),
        vec![insert("a", "text/plain", 10), insert("b", "application/json", 11), delete("a"), insert("t", "text/plain", 20), delete("t")]
    );
    assert_eq!(registry_of(&e, &c, "q"), vec![insert("x", "text/plain", 12)]);
    // Draining again adds nothing.
    assert_eq!(registry::drain_local(&e, &c, 100, 31).unwrap(), registry::Moved::default());
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
    // Committed, the creation and its event are there; a deletion rolled back takes its event along.
    create(&e, &c, "p/a", "text/plain", 3).unwrap();
    c.execute_batch("BEGIN").unwrap();
    e.delete(&c, "p/a", 4).unwrap();
    assert_eq!(registry::pending(&c, 10).unwrap().len(), 2);
    c.execute_batch("ROLLBACK").unwrap();
    let left = registry::pending(&c, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&left[0].event).unwrap(), insert("a", "text/plain", 3));
    assert!(e.head(&c, "p/a", 5).is_ok(), "the deletion was rolled back");
}

#[test]
fn events_are_numbered_densely_per_project_and_moved_in_rounds() {
    // A fork in another project lives in its source's database (on Workers,
    // the source's object): each project's events still count 0, 1, 2, …
    // — the Producer-Seq of that object on the project's registry.
    let (e, c) = (Engine::new(EngineConfig::default()), db());
    create(&e, &c, "p/src", "text/plain", 1).unwrap();
    let fork = CreateRequest {
        key: "q/fork".into(),
        content_type: Some("text/plain".into()),
        fork: Some(fork::ForkSpec { source: "p/src".into(), offset: None, sub_offset: 0 }),
        ..Default::default()
    };
    e.create(&c, fork, 2).unwrap();
    create(&e, &c, "p/two", "text/plain", 3).unwrap();
    e.delete(&c, "q/fork", 4).unwrap();
    let numbered: Vec<(u64, String, u64)> =
        registry::pending(&c, 100).unwrap().into_iter().map(|ev| (ev.seq, ev.project, ev.project_seq)).collect();
    assert_eq!(
        numbered,
        vec![(1, "p".into(), 0), (2, "q".into(), 0), (3, "p".into(), 1), (4, "q".into(), 1)]
    );
    // Rounds of at most `limit` events, in order, until none is left.
    let first = registry::drain_local(&e, &c, 3, 5).unwrap();
    assert_eq!((first.events, first.grew.clone()), (3, vec!["p/__registry__".to_owned(), "q/__registry__".to_owned()]));
    assert_eq!(registry::pending(&c, 100).unwrap().len(), 1);
    let second = registry::drain_local(&e, &c, 3, 6).unwrap();
    assert_eq!((second.events, second.grew), (1, vec!["q/__registry__".to_owned()]));
    assert_eq!(registry_of(&e, &c, "p"), vec![insert("src", "text/plain", 1), insert("two", "text/plain", 3)]);
    assert_eq!(registry_of(&e, &c, "q"), vec![insert("fork", "text/plain", 2), delete("fork")]);
    // The numbering goes on after the outbox emptied.
    create(&e, &c, "q/later", "text/plain", 7).unwrap();
    let later = registry::pending(&c, 100).unwrap();
    assert_eq!(later.iter().map(|ev| (ev.seq, ev.project_seq)).collect::<Vec<_>>(), vec![(5, 2)]);
}

#[test]
fn an_outbox_without_project_numbers_is_migrated_in_order() {
    // The outbox as the first version created it, with two pending events.
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(
        "CREATE TABLE ds_registry_outbox (seq INTEGER PRIMARY KEY, project TEXT NOT NULL, event TEXT NOT NULL);
         INSERT INTO ds_registry_outbox VALUES (7, 'p', '{}'), (8, 'q', '{}'), (9, 'p', '{}');
         CREATE TABLE ds_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT INTO ds_counters VALUES ('registry', 9);",
    )
    .unwrap();
    hot_log::migrate(&c).unwrap();
    hot_log::migrate(&c).unwrap(); // idempotent
    let numbered: Vec<(u64, u64)> = registry::pending(&c, 10).unwrap().into_iter().map(|ev| (ev.seq, ev.project_seq)).collect();
    assert_eq!(numbered, vec![(7, 0), (8, 0), (9, 1)]);
    // New events continue each project's numbering.
    let e = Engine::new(EngineConfig::default());
    create(&e, &c, "p/a", "text/plain", 1).unwrap();
    let last = registry::pending(&c, 10).unwrap().pop().unwrap();
    assert_eq!((last.seq, last.project.as_str(), last.project_seq), (10, "p", 2));
}
