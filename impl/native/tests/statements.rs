//! The server's SQLite connections never re-prepare a cached statement
//! when it is re-bound (see `readers::tune`): reads and writes of a stream
//! with an estuary, then every statement's re-prepare count must be zero.

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

#[tokio::test]
async fn cached_statements_are_never_re_prepared() {
    let dir = std::env::temp_dir().join(format!("ds-statements-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("streams.db");
    let w = open_write_connection(&path, Durability::None).unwrap();
    let engine = Engine::new(Default::default());
    let create = |key: &str| CreateRequest { key: key.into(), content_type: Some("text/plain".into()), ..Default::default() };
    engine.create(&w, create("p/src"), 0).unwrap();
    let subscribe = estuary::Subscribe { project: "p", estuary_id: "e", source_key: "p/src", expected_type: None, ttl_ms: 60_000 };
    estuary::subscribe(&engine, &w, &subscribe, 0).unwrap();
    let pool = ReadPool::open(&path, 1).unwrap();
    for i in 0..20 {
        let body = bytes::Bytes::from(format!("m{i};"));
        let append = AppendRequest { key: "p/src".into(), content_type: Some("text/plain".into()), body, ..Default::default() };
        engine.append(&w, append, 0).unwrap();
        estuary::drain_local(&engine, &w, "p/src", 64, 0, &mut |_| Err(StorageError::new("no cold data"))).unwrap();
        for key in ["p/src", "p/e"] {
            let request = ReadRequest { key: key.into(), from: ReadFrom::Start };
            pool.with(move |c| Engine::new(Default::default()).read(c, &request, 0).map(|_| ())).await.unwrap();
        }
    }
    assert_eq!(reprepared(&w), Vec::new(), "the writer re-prepared statements");
    let readers = pool.with(|c| Ok(reprepared(c))).await.unwrap();
    assert_eq!(readers, Vec::new(), "a reader re-prepared statements");
    let _ = std::fs::remove_dir_all(&dir);
}
