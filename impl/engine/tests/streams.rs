//! Behaviour of the domain API against the real schema (rusqlite, in memory).
//! Run with `cargo test -p durable-streams-engine --features sqlite`.

use bytes::Bytes;
use durable_streams_engine::fork::ForkSpec;
use durable_streams_engine::producer::ProducerHeaders;
use durable_streams_engine::segment::{self, MemorySegmentStore, SegmentLimits, SegmentStore};
use durable_streams_engine::ttl::Expiry;
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

fn create(e: &Engine, c: &Connection, key: &str, ct: &str, body: &str) -> Result<CreateOutcome, ProtocolError> {
    e.create(
        c,
        CreateRequest { key: key.into(), content_type: Some(ct.into()), body: Bytes::from(body.to_owned()), ..Default::default() },
        0,
    )
}

fn append(e: &Engine, c: &Connection, key: &str, ct: &str, body: &str) -> Result<AppendOutcome, ProtocolError> {
    e.append(
        c,
        AppendRequest { key: key.into(), content_type: Some(ct.into()), body: Bytes::from(body.to_owned()), ..Default::default() },
        0,
    )
}

fn read_all(e: &Engine, c: &Connection, key: &str, from: ReadFrom, store: &dyn SegmentStore) -> (Vec<u8>, ReadOutcome) {
    let out = e.read(c, &ReadRequest { key: key.into(), from }, 0).unwrap();
    (out.body(store).unwrap().to_vec(), out)
}

fn producer(epoch: u64, seq: u64) -> Option<ProducerHeaders> {
    Some(ProducerHeaders { id: "p".into(), epoch, seq })
}

#[test]
fn create_is_idempotent_and_detects_conflicts() {
    let (e, c) = (engine(), db());
    assert_eq!(create(&e, &c, "s", "text/plain", "").unwrap().status, CreateStatus::Created);
    assert_eq!(create(&e, &c, "s", "TEXT/PLAIN", "").unwrap().status, CreateStatus::Exists);
    assert!(matches!(create(&e, &c, "s", "application/json", ""), Err(ProtocolError::ConfigMismatch(_))));
    let closed = CreateRequest { key: "s".into(), content_type: Some("text/plain".into()), closed: true, ..Default::default() };
    assert!(matches!(e.create(&c, closed, 0), Err(ProtocolError::ConfigMismatch(_))));
}

#[test]
fn append_then_read_back_with_offsets() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "s", "text/plain", "ab").unwrap();
    let out = append(&e, &c, "s", "text/plain", "cde").unwrap();
    assert_eq!(out.next_offset, Offset::at(5));
    assert_eq!(out.status, AppendStatus::Appended);
    let (body, r) = read_all(&e, &c, "s", ReadFrom::Start, &store);
    assert_eq!(body, b"abcde");
    assert!(r.up_to_date && !r.closed);
    let (body, _) = read_all(&e, &c, "s", ReadFrom::At(Offset::at(2)), &store);
    assert_eq!(body, b"cde");
    let (body, r) = read_all(&e, &c, "s", ReadFrom::Now, &store);
    assert!(body.is_empty() && r.next_offset == Offset::at(5));
}

#[test]
fn append_errors_and_precedence() {
    let (e, c) = (engine(), db());
    assert_eq!(append(&e, &c, "missing", "text/plain", "x"), Err(ProtocolError::NotFound));
    create(&e, &c, "s", "text/plain", "").unwrap();
    assert!(matches!(append(&e, &c, "s", "text/plain", ""), Err(ProtocolError::BadRequest(_))));
    assert!(matches!(append(&e, &c, "s", "application/json", "1"), Err(ProtocolError::ContentTypeMismatch { .. })));
    let no_type = AppendRequest { key: "s".into(), body: Bytes::from_static(b"x"), ..Default::default() };
    assert!(matches!(e.append(&c, no_type, 0), Err(ProtocolError::BadRequest(_))));
    // Closed beats content type.
    let close = AppendRequest { key: "s".into(), close: true, ..Default::default() };
    assert_eq!(e.append(&c, close.clone(), 0).unwrap().status, AppendStatus::Closed);
    assert_eq!(e.append(&c, close, 0).unwrap().status, AppendStatus::AlreadyClosed);
    assert_eq!(
        append(&e, &c, "s", "application/json", "1"),
        Err(ProtocolError::StreamClosed { next_offset: Offset::ZERO })
    );
}

#[test]
fn stream_seq_regression_is_rejected_atomically() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "s", "text/plain", "").unwrap();
    let with_seq = |seq: &str, body: &str| AppendRequest {
        key: "s".into(),
        content_type: Some("text/plain".into()),
        body: Bytes::from(body.to_owned()),
        stream_seq: Some(seq.into()),
        ..Default::default()
    };
    e.append(&c, with_seq("2", "a"), 0).unwrap();
    assert!(matches!(e.append(&c, with_seq("10", "b"), 0), Err(ProtocolError::StreamSeqRegression { .. })));
    e.append(&c, with_seq("3", "c"), 0).unwrap();
    assert_eq!(read_all(&e, &c, "s", ReadFrom::Start, &store).0, b"ac");
}

#[test]
fn json_mode_flattens_and_renders() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "j", "application/json", "[]").unwrap();
    assert!(matches!(append(&e, &c, "j", "application/json", "[]"), Err(ProtocolError::BadRequest(_))));
    assert!(matches!(append(&e, &c, "j", "application/json", "{"), Err(ProtocolError::BadRequest(_))));
    append(&e, &c, "j", "application/json", r#"[{"a":1},[2]]"#).unwrap();
    append(&e, &c, "j", "application/json; charset=utf-8", "3").unwrap();
    assert_eq!(read_all(&e, &c, "j", ReadFrom::Start, &store).0, br#"[{"a":1},[2],3]"#);
    assert_eq!(read_all(&e, &c, "j", ReadFrom::Now, &store).0, b"[]");
}

#[test]
fn producers_fence_dedupe_and_survive_close() {
    let (e, c) = (engine(), db());
    create(&e, &c, "s", "text/plain", "").unwrap();
    let req = |p: Option<ProducerHeaders>, body: &str, close: bool| AppendRequest {
        key: "s".into(),
        content_type: Some("text/plain".into()),
        body: Bytes::from(body.to_owned()),
        close,
        producer: p,
        ..Default::default()
    };
    assert_eq!(e.append(&c, req(producer(0, 0), "a", false), 0).unwrap().status, AppendStatus::Appended);
    let dup = e.append(&c, req(producer(0, 0), "a", false), 0).unwrap();
    assert_eq!((dup.status, dup.producer.map(|p| p.seq)), (AppendStatus::Duplicate, Some(0)));
    assert_eq!(
        e.append(&c, req(producer(0, 5), "x", false), 0),
        Err(ProtocolError::ProducerSeqGap { expected: 1, received: 5 })
    );
    e.append(&c, req(producer(1, 0), "b", true), 0).unwrap();
    // Retry of the closing tuple dedups even with another body; others conflict; stale epoch fenced.
    assert_eq!(e.append(&c, req(producer(1, 0), "zzz", true), 0).unwrap().status, AppendStatus::Duplicate);
    assert!(matches!(e.append(&c, req(producer(1, 1), "c", false), 0), Err(ProtocolError::StreamClosed { .. })));
    assert_eq!(e.append(&c, req(producer(0, 1), "c", false), 0), Err(ProtocolError::ProducerFenced { current_epoch: 1 }));
}

#[test]
fn sliding_ttl_expires_and_recreates() {
    let (e, c) = (engine(), db());
    let req = CreateRequest { key: "t".into(), expiry: Expiry::Ttl { seconds: 1 }, ..Default::default() };
    e.create(&c, req.clone(), 0).unwrap();
    e.touch(&c, "t", 900).unwrap();
    assert!(e.head(&c, "t", 1_800).is_ok(), "touched at 900, alive until 1900");
    assert_eq!(e.head(&c, "t", 1_900), Err(ProtocolError::NotFound));
    assert_eq!(e.create(&c, req, 2_000).unwrap().status, CreateStatus::Created);
}

#[test]
fn next_expiry_is_the_earliest_deadline_and_follows_touches() {
    let (e, c) = (engine(), db());
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), None, "no stream has a lifetime");
    create(&e, &c, "forever", "text/plain", "").unwrap();
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), None);
    let ttl = CreateRequest { key: "ttl".into(), expiry: Expiry::Ttl { seconds: 10 }, ..Default::default() };
    e.create(&c, ttl, 1_000).unwrap();
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), Some(11_000));
    e.touch(&c, "ttl", 5_000).unwrap();
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), Some(15_000), "a touch moves the deadline");
    let at = CreateRequest {
        key: "at".into(),
        expiry: Expiry::from_headers(None, Some("1970-01-01T00:00:07Z")).unwrap(),
        ..Default::default()
    };
    e.create(&c, at, 1_000).unwrap();
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), Some(7_000));
    let swept = e.sweep_expired(&c, 8_000, 10).unwrap();
    assert_eq!(swept.removed, vec!["at".to_owned()]);
    assert_eq!(hot_log::next_expiry_ms(&c).unwrap(), Some(15_000));
}

#[test]
fn cold_reads_can_be_resolved_with_prefetched_segments() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "s", "text/plain", "").unwrap();
    for i in 0..12 {
        append(&e, &c, "s", "text/plain", &format!("{i:02}")).unwrap();
    }
    let limits = SegmentLimits { max_messages: 4, max_bytes: 1 << 20 };
    while let Some(plan) = segment::plan_rotation(&c, "s", limits).unwrap() {
        store.put(&plan.entry.object_key, &plan.bytes).unwrap();
        segment::commit_rotation(&c, &plan).unwrap();
    }
    let outcome = e.read(&c, &ReadRequest { key: "s".into(), from: ReadFrom::Start }, 0).unwrap();
    let keys = outcome.cold_keys();
    assert_eq!(keys.len(), 2, "two full segments, the rest is hot: {keys:?}");
    let fetched: Vec<(String, Bytes)> = keys.iter().map(|k| (k.to_string(), store.get(k).unwrap())).collect();
    let body = outcome
        .body_with(|k| fetched.iter().find(|(key, _)| key == k).map(|(_, b)| b.clone()).ok_or_else(|| StorageError::new("missing")))
        .unwrap();
    assert_eq!(body, outcome.body(&store).unwrap());
    assert_eq!(&body[..], b"000102030405060708091011");
    assert!(outcome.body_with(|_| Err(StorageError::new("unavailable"))).is_err(), "a missing segment is an error, never a gap");
}

#[test]
fn forks_inherit_prefix_and_soft_delete_cascades() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "src", "text/plain", "hello").unwrap();
    let fork = |key: &str, offset: Option<u64>, sub: u64| CreateRequest {
        key: key.into(),
        fork: Some(ForkSpec { source: "src".into(), offset: offset.map(Offset::at), sub_offset: sub }),
        ..Default::default()
    };
    let f = e.create(&c, fork("f", Some(2), 1), 0).unwrap();
    assert_eq!(f.next_offset, Offset::at(3));
    assert_eq!(f.content_type, "text/plain");
    append(&e, &c, "f", "text/plain", "XY").unwrap();
    append(&e, &c, "src", "text/plain", "!").unwrap();
    assert_eq!(read_all(&e, &c, "f", ReadFrom::Start, &store).0, b"helXY");
    assert_eq!(read_all(&e, &c, "src", ReadFrom::Start, &store).0, b"hello!");
    assert!(matches!(e.create(&c, fork("g", Some(99), 0), 0), Err(ProtocolError::BadRequest(_))));
    assert!(matches!(e.create(&c, fork("g", Some(5), 9), 0), Err(ProtocolError::BadRequest(_))));

    assert_eq!(e.delete(&c, "src", 0).unwrap().status, DeleteStatus::SoftDeleted);
    assert_eq!(e.head(&c, "src", 0), Err(ProtocolError::Gone));
    assert!(matches!(create(&e, &c, "src", "text/plain", ""), Err(ProtocolError::ConfigMismatch(_))));
    assert_eq!(read_all(&e, &c, "f", ReadFrom::Start, &store).0, b"helXY");
    let out = e.delete(&c, "f", 0).unwrap();
    assert_eq!(out.removed, vec!["f".to_owned(), "src".to_owned()]);
    assert_eq!(e.head(&c, "src", 0), Err(ProtocolError::NotFound));
}

#[test]
fn json_fork_sub_offset_counts_messages() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "src", "application/json", r#"[{"a":1},{"b":2},{"c":3}]"#).unwrap();
    let fork = |sub| CreateRequest {
        key: "f".into(),
        fork: Some(ForkSpec { source: "src".into(), offset: Some(Offset::ZERO), sub_offset: sub }),
        ..Default::default()
    };
    assert!(matches!(e.create(&c, fork(4), 0), Err(ProtocolError::BadRequest(_))));
    e.create(&c, fork(2), 0).unwrap();
    assert_eq!(read_all(&e, &c, "f", ReadFrom::Start, &store).0, br#"[{"a":1},{"b":2}]"#);
}

#[test]
fn reads_are_chunked_without_losing_bytes() {
    let e = Engine::new(EngineConfig { read_chunk_bytes: 3, ..EngineConfig::default() });
    let (c, store) = (db(), MemorySegmentStore::default());
    create(&e, &c, "s", "text/plain", "").unwrap();
    for part in ["ab", "cd", "ef", "g"] {
        append(&e, &c, "s", "text/plain", part).unwrap();
    }
    let mut from = ReadFrom::Start;
    let mut all = Vec::new();
    loop {
        let (body, out) = read_all(&e, &c, "s", from, &store);
        all.extend(body);
        from = ReadFrom::At(out.next_offset);
        if out.up_to_date {
            break;
        }
        assert!(!out.closed);
    }
    assert_eq!(all, b"abcdefg");
}

#[test]
fn rotation_moves_data_to_cold_segments_losslessly() {
    let (e, c, store) = (engine(), db(), MemorySegmentStore::default());
    create(&e, &c, "s", "text/plain", "").unwrap();
    let mut expected: Vec<u8> = Vec::new();
    let mut boundaries = vec![0u64];
    for i in 0..40 {
        let part = format!("m{i:02};");
        expected.extend(part.as_bytes());
        boundaries.push(append(&e, &c, "s", "text/plain", &part).unwrap().next_offset.byte);
    }
    let limits = SegmentLimits { max_messages: 4, max_bytes: 1 << 20 };
    let mut rounds = 0;
    while let Some(plan) = segment::plan_rotation(&c, "s", limits).unwrap() {
        store.put(&plan.entry.object_key, &plan.bytes).unwrap();
        // A retry after a crash between the two steps is harmless.
        store.put(&plan.entry.object_key, &plan.bytes).unwrap();
        assert_eq!(segment::commit_rotation(&c, &plan).unwrap(), None);
        assert_eq!(segment::commit_rotation(&c, &plan).unwrap(), None);
        rounds += 1;
    }
    assert!(rounds >= 9, "rounds={rounds}");
    assert!(store.len() >= 9);
    for b in boundaries {
        let (body, _) = read_all(&e, &c, "s", ReadFrom::At(Offset::at(b)), &store);
        assert_eq!(body, &expected[b as usize..], "from {b}");
    }
    let gone = e.delete(&c, "s", 0).unwrap();
    assert_eq!(gone.garbage.len(), store.len());
}

#[test]
fn oversized_bodies_are_refused() {
    let e = Engine::new(EngineConfig { max_append_bytes: 4, ..EngineConfig::default() });
    let c = db();
    create(&e, &c, "s", "text/plain", "").unwrap();
    assert!(matches!(append(&e, &c, "s", "text/plain", "12345"), Err(ProtocolError::PayloadTooLarge { .. })));
}

#[test]
fn public_flag_is_fixed_at_creation() {
    let (e, c) = (engine(), db());
    let public = CreateRequest { key: "p".into(), public: Some(true), ..Default::default() };
    e.create(&c, public.clone(), 0).unwrap();
    assert!(e.head(&c, "p", 0).unwrap().public);
    assert!(e.read(&c, &ReadRequest { key: "p".into(), from: ReadFrom::Start }, 0).unwrap().public);
    assert_eq!(e.create(&c, public, 0).unwrap().status, CreateStatus::Exists);
    let unsaid = CreateRequest { key: "p".into(), ..Default::default() };
    assert_eq!(e.create(&c, unsaid, 0).unwrap().status, CreateStatus::Exists, "no flag: nothing to compare");
    let private = CreateRequest { key: "p".into(), public: Some(false), ..Default::default() };
    assert!(matches!(e.create(&c, private, 0), Err(ProtocolError::ConfigMismatch(_))));
    let by_default = CreateRequest { key: "d".into(), public_default: true, ..Default::default() };
    e.create(&c, by_default, 0).unwrap();
    assert!(e.head(&c, "d", 0).unwrap().public, "the project's default applies");
    e.create(&c, CreateRequest { key: "q".into(), ..Default::default() }, 0).unwrap();
    assert!(!e.head(&c, "q", 0).unwrap().public, "private unless asked");
}

#[test]
fn databases_of_earlier_versions_gain_the_public_column() {
    let c = Connection::open_in_memory().unwrap();
    // The stream table as the first release created it.
    c.execute_batch(
        "CREATE TABLE ds_streams (stream_key TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, content_type TEXT NOT NULL, \
         ttl_s INTEGER, expires_at_ms INTEGER, expires_at_raw TEXT, last_access_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, \
         closed INTEGER NOT NULL DEFAULT 0, tail_pos INTEGER NOT NULL, fork_source TEXT, fork_pos INTEGER NOT NULL DEFAULT 0, \
         fork_offset_req TEXT, fork_sub_offset INTEGER NOT NULL DEFAULT 0, soft_deleted INTEGER NOT NULL DEFAULT 0, \
         last_stream_seq TEXT, closed_by_producer TEXT, closed_by_epoch INTEGER, closed_by_seq INTEGER); \
         INSERT INTO ds_streams (stream_key, incarnation, content_type, last_access_ms, created_ms, tail_pos) \
         VALUES ('old', 1, 'text/plain', 0, 0, 0);",
    )
    .unwrap();
    hot_log::migrate(&c).unwrap();
    hot_log::migrate(&c).unwrap();
    let e = engine();
    assert!(!e.head(&c, "old", 0).unwrap().public);
}
