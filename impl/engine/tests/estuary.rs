//! Estuaries over the real schema: subscriptions, the transactional outbox,
//! exactly-once in-order delivery, retries, pruning.
//! Run with `cargo test -p durable-streams-engine --features sqlite`.

use bytes::Bytes;
use durable_streams_engine::estuary::{self, Delivery};
use durable_streams_engine::*;
use rusqlite::Connection;

fn db() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    hot_log::migrate(&c).unwrap();
    c
}

fn engine() -> Engine {
    Engine::new(EngineConfig { max_append_bytes: 1 << 20, read_chunk_bytes: 1 << 20, max_row_bytes: 1 << 16 })
}

fn create(e: &Engine, c: &Connection, key: &str, ct: &str) {
    e.create(c, CreateRequest { key: key.into(), content_type: Some(ct.into()), ..Default::default() }, 0).unwrap();
}

fn publish(e: &Engine, c: &Connection, key: &str, ct: &str, body: &str) {
    let req = AppendRequest { key: key.into(), content_type: Some(ct.into()), body: Bytes::from(body.to_owned()), ..Default::default() };
    e.append(c, req, 0).unwrap();
}

fn contents(e: &Engine, c: &Connection, key: &str) -> String {
    let out = e.read(c, &ReadRequest { key: key.into(), from: ReadFrom::Start }, 0).unwrap();
    String::from_utf8(out.body_with(|_| Err(StorageError::new("no cold data"))).unwrap().to_vec()).unwrap()
}

fn sub<'a>(project: &'a str, estuary_id: &'a str, source_key: &'a str, expected_type: Option<&'a str>, ttl_ms: i64) -> estuary::Subscribe<'a> {
    estuary::Subscribe { project, estuary_id, source_key, expected_type, ttl_ms }
}

fn no_cold(_: &str) -> Result<Bytes, StorageError> {
    Err(StorageError::new("no cold data"))
}

fn drain(e: &Engine, c: &Connection, source: &str) -> estuary::Drained {
    estuary::drain_local(e, c, source, 10_000, 0, &mut no_cold).unwrap()
}

#[test]
fn subscribe_creates_the_estuary_stream_with_the_source_type() {
    let (e, c) = (engine(), db());
    assert_eq!(estuary::subscribe(&e, &c, &sub("p", "e1", "p/src", None, 1000), 0), Err(ProtocolError::NotFound));
    assert!(e.head(&c, "p/e1", 0).is_err(), "a missing source creates nothing");
    create(&e, &c, "p/src", "application/json");
    let first = estuary::subscribe(&e, &c, &sub("p", "e1", "p/src", None, 1000), 0).unwrap();
    assert!(first.is_new);
    assert_eq!(first.expires_at_ms, 1000);
    assert_eq!(e.head(&c, "p/e1", 0).unwrap().content_type, "application/json");
    let again = estuary::subscribe(&e, &c, &sub("p", "e1", "p/src", None, 1000), 500).unwrap();
    assert!(!again.is_new);
    assert_eq!(again.expires_at_ms, 1500, "subscribing again renews the lifetime");
    create(&e, &c, "p/text", "text/plain");
    assert!(matches!(
        estuary::subscribe(&e, &c, &sub("p", "e1", "p/text", None, 1000), 0),
        Err(ProtocolError::ContentTypeMismatch { .. })
    ));
    assert!(matches!(
        estuary::subscribe(&e, &c, &sub("p", "e2", "p/src", Some("text/plain"), 1000), 0),
        Err(ProtocolError::ContentTypeMismatch { .. })
    ));
    assert!(e.head(&c, "p/e2", 0).is_err(), "a refused subscription creates nothing");
    let info = estuary::load(&c, "p/e1").unwrap().unwrap();
    assert_eq!(info.sources, vec!["p/src".to_owned()]);
}

#[test]
fn publishes_reach_every_subscriber_once_in_order() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "application/json");
    publish(&e, &c, "p/src", "application/json", r#"{"before":true}"#);
    for id in ["a", "b", "c"] {
        estuary::subscribe(&e, &c, &sub("p", id, "p/src", None, 60_000), 0).unwrap();
    }
    publish(&e, &c, "p/src", "application/json", r#"{"n":1}"#);
    publish(&e, &c, "p/src", "application/json", r#"[{"n":2},{"n":3}]"#);
    let drained = drain(&e, &c, "p/src");
    assert_eq!(drained.delivered_to.len(), 3);
    for id in ["a", "b", "c"] {
        assert_eq!(contents(&e, &c, &format!("p/{id}")), r#"[{"n":1},{"n":2},{"n":3}]"#, "{id}");
    }
    assert_eq!(drain(&e, &c, "p/src"), estuary::Drained::default(), "nothing is owed twice");
    let outbox: i64 = c.query_row("SELECT count(*) FROM ds_outbox", [], |r| r.get(0)).unwrap();
    assert_eq!(outbox, 0, "entries every subscriber received are dropped");
}

#[test]
fn a_redelivery_after_a_lost_acknowledgement_lands_once() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "one;");
    publish(&e, &c, "p/src", "text/plain", "two;");
    // A remote host delivered the first entry, then died before acknowledging it.
    let owed: Vec<Delivery> = estuary::pending(&c, "p/src", 10).unwrap();
    assert_eq!(owed.len(), 2);
    assert_eq!((owed[0].producer_seq, owed[1].producer_seq), (0, 1));
    let first = AppendRequest {
        key: "p/e".into(),
        content_type: Some("text/plain".into()),
        body: Bytes::from_static(b"one;"),
        producer: Some(owed[0].producer()),
        ..Default::default()
    };
    e.append(&c, first, 0).unwrap();
    let drained = drain(&e, &c, "p/src");
    assert_eq!(drained.duplicates, 1, "the retry is recognised by its producer seq");
    assert_eq!(contents(&e, &c, "p/e"), "one;two;");
}

#[test]
fn unsubscribe_and_delete_stop_delivery_and_deleted_estuaries_stay_deleted() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "keep", "p/src", None, 60_000), 0).unwrap();
    estuary::subscribe(&e, &c, &sub("p", "leave", "p/src", None, 60_000), 0).unwrap();
    estuary::subscribe(&e, &c, &sub("p", "gone", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "1;");
    drain(&e, &c, "p/src");
    estuary::unsubscribe(&c, "p/leave", "p/src").unwrap();
    estuary::delete(&e, &c, "p/gone", 0).unwrap();
    assert_eq!(estuary::delete(&e, &c, "p/gone", 0), Err(ProtocolError::NotFound));
    assert_eq!(estuary::unsubscribe(&c, "p/nope", "p/src"), Err(ProtocolError::NotFound));
    publish(&e, &c, "p/src", "text/plain", "2;");
    drain(&e, &c, "p/src");
    assert_eq!(contents(&e, &c, "p/keep"), "1;2;");
    assert_eq!(contents(&e, &c, "p/leave"), "1;");
    assert_eq!(e.head(&c, "p/gone", 0), Err(ProtocolError::NotFound), "never recreated by a publish");
    assert!(estuary::load(&c, "p/gone").unwrap().is_none());
}

#[test]
fn resubscribing_starts_a_new_producer_epoch() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "a;");
    drain(&e, &c, "p/src");
    estuary::unsubscribe(&c, "p/e", "p/src").unwrap();
    publish(&e, &c, "p/src", "text/plain", "missed;");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "b;");
    let drained = drain(&e, &c, "p/src");
    assert_eq!(drained.duplicates, 0, "seq 0 again, but in a newer epoch");
    assert_eq!(contents(&e, &c, "p/e"), "a;b;");
}

#[test]
fn deleting_a_source_forgets_its_outbox_and_expiry_is_listed() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 1_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "x;");
    e.delete(&c, "p/src", 0).unwrap();
    assert!(estuary::pending(&c, "p/src", 10).unwrap().is_empty());
    assert_eq!(estuary::expired(&c, 999, 10).unwrap(), Vec::<String>::new());
    assert_eq!(estuary::expired(&c, 1_000, 10).unwrap(), vec!["p/e".to_owned()]);
}

#[test]
fn the_circuit_breaker_opens_after_five_failures_and_half_opens_after_a_minute() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    for i in 1..estuary::BREAKER_FAILURES {
        assert!(!estuary::breaker_failure(&c, "p/src", "p/e", 1_000).unwrap(), "failure {i} keeps it closed");
        assert!(estuary::breaker_allows(&c, "p/src", "p/e", 1_000).unwrap());
    }
    assert!(estuary::breaker_failure(&c, "p/src", "p/e", 1_000).unwrap(), "the fifth failure opens it");
    assert!(!estuary::breaker_allows(&c, "p/src", "p/e", 1_000 + estuary::BREAKER_OPEN_MS - 1).unwrap());
    assert!(estuary::breaker_allows(&c, "p/src", "p/e", 1_000 + estuary::BREAKER_OPEN_MS).unwrap(), "half-open");
    // It is stored: a new connection (a restarted host) sees the same state.
    publish(&e, &c, "p/src", "text/plain", "x;");
    let owed = estuary::pending(&c, "p/src", 10).unwrap();
    estuary::acknowledge(&c, &owed[0]).unwrap();
    assert!(estuary::breaker_allows(&c, "p/src", "p/e", 1_000).unwrap(), "a success closes it");
}

#[test]
fn owed_estuaries_and_per_estuary_pending_drive_queued_fan_out() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    for id in ["a", "b", "c"] {
        estuary::subscribe(&e, &c, &sub("p", id, "p/src", None, 60_000), 0).unwrap();
    }
    assert!(estuary::owed_estuaries(&c, "p/src", 0, 10).unwrap().is_empty(), "nothing published yet");
    publish(&e, &c, "p/src", "text/plain", "x;");
    publish(&e, &c, "p/src", "text/plain", "y;");
    assert_eq!(estuary::owed_estuaries(&c, "p/src", 0, 10).unwrap(), vec!["p/a", "p/b", "p/c"]);
    assert_eq!(estuary::owed_estuaries(&c, "p/src", 0, 2).unwrap(), vec!["p/a", "p/b"], "the limit holds");
    let owed_b = estuary::pending_for(&c, "p/src", "p/b", 10).unwrap();
    assert_eq!(owed_b.iter().map(|d| d.producer_seq).collect::<Vec<_>>(), vec![0, 1]);
    assert!(owed_b.iter().all(|d| d.estuary_key == "p/b"));
    assert_eq!(estuary::pending_for(&c, "p/src", "p/b", 1).unwrap().len(), 1);
    for d in &owed_b {
        estuary::acknowledge(&c, d).unwrap();
    }
    assert_eq!(estuary::owed_estuaries(&c, "p/src", 0, 10).unwrap(), vec!["p/a", "p/c"]);
    // An open breaker keeps an estuary out until it half-opens.
    for _ in 0..estuary::BREAKER_FAILURES {
        estuary::breaker_failure(&c, "p/src", "p/c", 1_000).unwrap();
    }
    assert_eq!(estuary::owed_estuaries(&c, "p/src", 1_001, 10).unwrap(), vec!["p/a"]);
    assert_eq!(estuary::owed_estuaries(&c, "p/src", 1_000 + estuary::BREAKER_OPEN_MS, 10).unwrap(), vec!["p/a", "p/c"]);
    assert_eq!(estuary::subscriber_count(&c, "p/src").unwrap(), 3);
}

#[test]
fn an_acknowledgement_of_an_earlier_subscription_changes_nothing() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "x;");
    let old = estuary::pending(&c, "p/src", 10).unwrap();
    // Unsubscribe and subscribe again: a new epoch.
    estuary::unsubscribe(&c, "p/e", "p/src").unwrap();
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    publish(&e, &c, "p/src", "text/plain", "y;");
    estuary::acknowledge(&c, &old[0]).unwrap();
    estuary::prune(&c, &old[0]).unwrap();
    let owed = estuary::pending(&c, "p/src", 10).unwrap();
    assert_eq!(owed.len(), 1, "the new subscription still owes its first entry");
    assert_eq!(owed[0].producer_seq, 0);
}

#[test]
fn an_append_says_whether_it_owes_estuaries() {
    let (e, c) = (engine(), db());
    create(&e, &c, "p/src", "text/plain");
    let append = |body: &str| {
        let req = AppendRequest { key: "p/src".into(), content_type: Some("text/plain".into()), body: Bytes::from(body.to_owned()), ..Default::default() };
        e.append(&c, req, 0).unwrap().owes_estuaries
    };
    assert!(!append("a"), "no subscriber: nothing owed");
    estuary::subscribe(&e, &c, &sub("p", "e", "p/src", None, 60_000), 0).unwrap();
    assert!(append("b"), "a subscriber is owed the publish");
    assert_eq!(estuary::pending(&c, "p/src", 10).unwrap().len(), 1);
    // A duplicate of an idempotent producer's append records nothing again.
    let producer = |seq| AppendRequest {
        key: "p/src".into(),
        content_type: Some("text/plain".into()),
        body: Bytes::from_static(b"c"),
        producer: Some(producer::ProducerHeaders { id: "w".into(), epoch: 0, seq }),
        ..Default::default()
    };
    assert!(e.append(&c, producer(0), 0).unwrap().owes_estuaries);
    assert!(!e.append(&c, producer(0), 0).unwrap().owes_estuaries);
    assert_eq!(estuary::pending(&c, "p/src", 10).unwrap().len(), 2);
}
