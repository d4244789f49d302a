//! A cached statement is never re-prepared when it is re-bound: reads and
//! writes of a stream with estuaries, then every statement's re-prepare
//! count must be zero.
//!
//! The connections run *without* SQLite's query-plan stability guarantee
//! (QPSG): the Workers host's SQLite cannot set it, so the engine's SQL
//! itself must never let the planner read a bound value. (A comparison
//! with a bare `?N` in a statement with `ORDER BY` or `min()/max()`, or a
//! bare `LIMIT ?N`, is re-planned on every bind; `+?N` is the same value
//! without that. Measured under `wrangler dev`: re-preparing was 7 % of
//! the runtime's CPU during a fan-out.) The native host enables QPSG as
//! well (`readers::tune`).

use durable_streams_engine::{estuary, AppendRequest, CreateRequest, Engine, ReadFrom, ReadRequest, StorageError};
use durable_streams_server::config::Durability;
use durable_streams_server::readers::ReadPool;
use durable_streams_server::writer::open_write_connection;

/// (re-prepares, SQL) of every prepared statement of `conn` that was re-prepared.
fn reprepared(conn: &rusqlite::Connection) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    // SAFETY: the handle is live for the borrow of `conn`; sqlite3_next_stmt,
    // sqlite3_stmt_status and sqlite3_sql only read the connection's list.
    unsafe {
        let db = conn.handle();
        let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let n = rusqlite::ffi::sqlite3_stmt_status(stmt, rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            if n > 0 {
                let sql = std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_sql(stmt)).to_string_lossy().into_owned();
                out.push((n, sql));
            }
            stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    out
}

/// Turns QPSG off, as on the Workers host.
fn without_qpsg(conn: &rusqlite::Connection) {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, false).unwrap();
}

#[tokio::test]
async fn cached_statements_are_never_re_prepared() {
    let dir = std::env::temp_dir().join(format!("ds-statements-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("streams.db");
    let w = open_write_connection(&path, Durability::None).unwrap();
    without_qpsg(&w);
    let engine = Engine::new(Default::default());
    let create = |key: &str| CreateRequest { key: key.into(), content_type: Some("text/plain".into()), ..Default::default() };
    engine.create(&w, create("p/src"), 0).unwrap();
    for estuary_id in ["e", "f"] {
        let subscribe = estuary::Subscribe { project: "p", estuary_id, source_key: "p/src", expected_type: None, ttl_ms: 60_000 };
        estuary::subscribe(&engine, &w, &subscribe, 0).unwrap();
    }
    let pool = ReadPool::open(&path, 1).unwrap();
    pool.with(|c| {
        without_qpsg(c);
        Ok(())
    })
    .await
    .unwrap();
    let no_cold = &mut |_: &str| Err(StorageError::new("no cold data"));
    for i in 0..20u64 {
        let now = 1_000 * i as i64;
        let body = bytes::Bytes::from(format!("m{i};"));
        let append = AppendRequest { key: "p/src".into(), content_type: Some("text/plain".into()), body, ..Default::default() };
        engine.append(&w, append, now).unwrap();
        // Queued fan-out (Workers): what is owed, to whom, then the report.
        assert!(!estuary::owed_estuaries(&w, "p/src", now, 64).unwrap().is_empty());
        for d in estuary::pending_for(&w, "p/src", "p/f", 64).unwrap() {
            engine.read_range(&w, "p/src", d.start, d.end, now).unwrap();
            estuary::acknowledge(&w, &d).unwrap();
        }
        estuary::breaker_allows(&w, "p/src", "p/e", now).unwrap();
        // Inline fan-out (both hosts).
        estuary::pending(&w, "p/src", 1).unwrap();
        estuary::drain_local(&engine, &w, "p/src", 64, now, no_cold).unwrap();
        estuary::collect_garbage(&w, "p/src").unwrap();
        for key in ["p/src", "p/e", "p/f"] {
            engine.head(&w, key, now).unwrap();
            let from = if i % 2 == 0 { ReadFrom::Start } else { ReadFrom::At(durable_streams_engine::Offset::at(i)) };
            let request = ReadRequest { key: key.into(), from };
            pool.with(move |c| Engine::new(Default::default()).read(c, &request, now).map(|_| ())).await.unwrap();
        }
    }
    assert_eq!(reprepared(&w), Vec::new(), "the writer re-prepared statements");
    let readers = pool.with(|c| Ok(reprepared(c))).await.unwrap();
    assert_eq!(readers, Vec::new(), "a reader re-prepared statements");
    let _ = std::fs::remove_dir_all(&dir);
}
