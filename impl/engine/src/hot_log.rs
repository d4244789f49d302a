//! The hot log: one SQL schema and one set of queries for every host.
//!
//! Tables (every row carries `stream_key`, so one database can hold many streams natively
//! and exactly one in a Durable Object):
//!
//! * `ds_streams`   — stream metadata (content type, expiry, closure, tail, fork link, seq).
//! * `ds_messages`  — hot messages `[start_pos, end_pos)` with their bytes.
//! * `ds_producers` — idempotent-producer state, written in the same transaction as the data.
//! * `ds_segments`  — index of immutable cold segments `[start_pos, end_pos)` and their keys.
//! * `ds_counters`  — monotonic counters (stream incarnations).

use bytes::Bytes;

use crate::closure::ClosedBy;
use crate::error::StorageError;
use crate::offset::Offset;
use crate::producer::ProducerState;
use crate::storage::{Row, SqlExecutor};
use crate::ttl::Expiry;

/// DDL, one statement per entry (idempotent).
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ds_streams (
        stream_key TEXT PRIMARY KEY,
        incarnation INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        ttl_s INTEGER,
        expires_at_ms INTEGER,
        expires_at_raw TEXT,
        last_access_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0,
        tail_pos INTEGER NOT NULL,
        fork_source TEXT,
        fork_pos INTEGER NOT NULL DEFAULT 0,
        fork_offset_req TEXT,
        fork_sub_offset INTEGER NOT NULL DEFAULT 0,
        soft_deleted INTEGER NOT NULL DEFAULT 0,
        last_stream_seq TEXT,
        closed_by_producer TEXT,
        closed_by_epoch INTEGER,
        closed_by_seq INTEGER,
        public INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS ds_streams_fork_source ON ds_streams (fork_source)",
    "CREATE TABLE IF NOT EXISTS ds_messages (
        stream_key TEXT NOT NULL,
        start_pos INTEGER NOT NULL,
        end_pos INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (stream_key, end_pos)
    )",
    "CREATE TABLE IF NOT EXISTS ds_producers (
        stream_key TEXT NOT NULL,
        producer_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (stream_key, producer_id)
    )",
    "CREATE TABLE IF NOT EXISTS ds_segments (
        stream_key TEXT NOT NULL,
        start_pos INTEGER NOT NULL,
        end_pos INTEGER NOT NULL,
        message_count INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        object_key TEXT NOT NULL,
        PRIMARY KEY (stream_key, end_pos)
    )",
    "CREATE TABLE IF NOT EXISTS ds_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
];

/// Create the tables if needed, and add columns that databases created by
/// earlier versions lack.
pub fn migrate(db: &impl SqlExecutor) -> Result<(), StorageError> {
    for stmt in SCHEMA.iter().chain(crate::estuary::SCHEMA).chain(crate::registry::SCHEMA) {
        db.execute(stmt, &[])?;
    }
    if db.query("SELECT public FROM ds_streams LIMIT 0", &[]).is_err() {
        db.execute("ALTER TABLE ds_streams ADD COLUMN public INTEGER NOT NULL DEFAULT 0", &[])?;
    }
    crate::estuary::migrate_columns(db)?;
    crate::registry::migrate_columns(db)?;
    Ok(())
}

/// A fork's link to its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkLink {
    pub source: String,
    /// Positions below this come from the source chain.
    pub fork_pos: u64,
    /// The `Stream-Fork-Offset` the client asked for (for idempotent re-PUT).
    pub requested_offset: Option<Offset>,
    pub sub_offset: u64,
}

/// One row of `ds_streams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRow {
    pub key: String,
    /// Distinguishes re-creations of the same key (segment keys include it).
    pub incarnation: u64,
    pub content_type: String,
    pub expiry: Expiry,
    pub last_access_ms: i64,
    pub created_ms: i64,
    pub closed: bool,
    pub tail: u64,
    pub fork: Option<ForkLink>,
    pub soft_deleted: bool,
    pub last_stream_seq: Option<String>,
    pub closed_by: Option<ClosedBy>,
    /// Readable without credentials (fixed at creation).
    pub public: bool,
}

impl StreamRow {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expiry.is_expired(self.last_access_ms, now_ms)
    }
    /// Where this stream's own data starts.
    pub fn own_start(&self) -> u64 {
        self.fork.as_ref().map_or(0, |f| f.fork_pos)
    }
}

const STREAM_COLS: &str = "stream_key, incarnation, content_type, ttl_s, expires_at_ms, expires_at_raw, \
    last_access_ms, created_ms, closed, tail_pos, fork_source, fork_pos, fork_offset_req, fork_sub_offset, \
    soft_deleted, last_stream_seq, closed_by_producer, closed_by_epoch, closed_by_seq, public";

fn stream_from_row(r: &Row) -> Result<StreamRow, StorageError> {
    let expiry = match (r.opt_int(3)?, r.opt_int(4)?) {
        (Some(ttl), _) => Expiry::Ttl { seconds: u64::try_from(ttl).unwrap_or(0) },
        (None, Some(at_ms)) => Expiry::ExpiresAt { at_ms, raw: r.opt_text(5)?.unwrap_or_default() },
        (None, None) => Expiry::Never,
    };
    let fork = match r.opt_text(10)? {
        None => None,
        Some(source) => Some(ForkLink {
            source,
            fork_pos: r.uint(11)?,
            requested_offset: r.opt_text(12)?.and_then(|s| Offset::parse(&s).ok()),
            sub_offset: r.uint(13)?,
        }),
    };
    let closed_by = match (r.opt_text(16)?, r.opt_int(17)?, r.opt_int(18)?) {
        (Some(producer_id), Some(epoch), Some(seq)) => Some(ClosedBy {
            producer_id,
            epoch: u64::try_from(epoch).unwrap_or(0),
            seq: u64::try_from(seq).unwrap_or(0),
        }),
        _ => None,
    };
    Ok(StreamRow {
        key: r.text(0)?,
        incarnation: r.uint(1)?,
        content_type: r.text(2)?,
        expiry,
        last_access_ms: r.int(6)?,
        created_ms: r.int(7)?,
        closed: r.int(8)? != 0,
        tail: r.uint(9)?,
        fork,
        soft_deleted: r.int(14)? != 0,
        last_stream_seq: r.opt_text(15)?,
        closed_by,
        public: r.int(19)? != 0,
    })
}

pub fn load_stream(db: &impl SqlExecutor, key: &str) -> Result<Option<StreamRow>, StorageError> {
    let sql = format!("SELECT {STREAM_COLS} FROM ds_streams WHERE stream_key = ?1");
    db.query(&sql, &[key.into()])?.first().map(stream_from_row).transpose()
}

pub fn insert_stream(db: &impl SqlExecutor, s: &StreamRow) -> Result<(), StorageError> {
    let (ttl, at, raw) = match &s.expiry {
        Expiry::Never => (None, None, None),
        Expiry::Ttl { seconds } => (Some(*seconds), None, None),
        Expiry::ExpiresAt { at_ms, raw } => (None, Some(*at_ms), Some(raw.clone())),
    };
    let sql = format!(
        "INSERT INTO ds_streams ({STREAM_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
    );
    let fork = s.fork.as_ref();
    db.execute(
        &sql,
        &[
            s.key.as_str().into(),
            s.incarnation.into(),
            s.content_type.as_str().into(),
            ttl.into(),
            at.into(),
            raw.into(),
            s.last_access_ms.into(),
            s.created_ms.into(),
            i64::from(s.closed).into(),
            s.tail.into(),
            fork.map(|f| f.source.clone()).into(),
            fork.map_or(0, |f| f.fork_pos).into(),
            fork.and_then(|f| f.requested_offset).map(|o| o.to_string()).into(),
            fork.map_or(0, |f| f.sub_offset).into(),
            i64::from(s.soft_deleted).into(),
            s.last_stream_seq.clone().into(),
            s.closed_by.as_ref().map(|c| c.producer_id.clone()).into(),
            s.closed_by.as_ref().map(|c| c.epoch).into(),
            s.closed_by.as_ref().map(|c| c.seq).into(),
            i64::from(s.public).into(),
        ],
    )?;
    Ok(())
}

/// Persist the mutable fields after an append / close.
pub fn update_after_write(db: &impl SqlExecutor, s: &StreamRow) -> Result<(), StorageError> {
    db.execute(
        "UPDATE ds_streams SET tail_pos = ?2, closed = ?3, last_stream_seq = ?4, last_access_ms = ?5, \
         closed_by_producer = ?6, closed_by_epoch = ?7, closed_by_seq = ?8 WHERE stream_key = ?1",
        &[
            s.key.as_str().into(),
            s.tail.into(),
            i64::from(s.closed).into(),
            s.last_stream_seq.clone().into(),
            s.last_access_ms.into(),
            s.closed_by.as_ref().map(|c| c.producer_id.clone()).into(),
            s.closed_by.as_ref().map(|c| c.epoch).into(),
            s.closed_by.as_ref().map(|c| c.seq).into(),
        ],
    )?;
    Ok(())
}

pub fn touch(db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<(), StorageError> {
    db.execute("UPDATE ds_streams SET last_access_ms = ?2 WHERE stream_key = ?1", &[key.into(), now_ms.into()])?;
    Ok(())
}

pub fn set_soft_deleted(db: &impl SqlExecutor, key: &str) -> Result<(), StorageError> {
    db.execute("UPDATE ds_streams SET soft_deleted = 1 WHERE stream_key = ?1", &[key.into()])?;
    Ok(())
}

/// How many streams fork from `key` (its reference count).
pub fn fork_refcount(db: &impl SqlExecutor, key: &str) -> Result<u64, StorageError> {
    let rows = db.query("SELECT count(*) FROM ds_streams WHERE fork_source = ?1", &[key.into()])?;
    rows.first().map_or(Ok(0), |r| r.uint(0))
}

/// Remove every row of a stream; returns the keys of its cold segments (for the host to delete).
pub fn delete_stream(db: &impl SqlExecutor, key: &str) -> Result<Vec<String>, StorageError> {
    let objects = db
        .query("SELECT object_key FROM ds_segments WHERE stream_key = ?1", &[key.into()])?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    for sql in [
        "DELETE FROM ds_messages WHERE stream_key = ?1",
        "DELETE FROM ds_producers WHERE stream_key = ?1",
        "DELETE FROM ds_segments WHERE stream_key = ?1",
        "DELETE FROM ds_streams WHERE stream_key = ?1",
    ] {
        db.execute(sql, &[key.into()])?;
    }
    crate::estuary::forget_source(db, key)?;
    Ok(objects)
}

/// Next value of a named counter (starts at 1).
pub fn next_counter(db: &impl SqlExecutor, name: &str) -> Result<u64, StorageError> {
    db.execute(
        "INSERT INTO ds_counters (name, value) VALUES (?1, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1",
        &[name.into()],
    )?;
    let rows = db.query("SELECT value FROM ds_counters WHERE name = ?1", &[name.into()])?;
    rows.first().ok_or_else(|| StorageError::new("counter vanished"))?.uint(0)
}

pub fn insert_message(db: &impl SqlExecutor, key: &str, start: u64, data: Bytes) -> Result<u64, StorageError> {
    let end = start + data.len() as u64;
    db.execute(
        "INSERT INTO ds_messages (stream_key, start_pos, end_pos, data) VALUES (?1, ?2, ?3, ?4)",
        &[key.into(), start.into(), end.into(), data.into()],
    )?;
    Ok(end)
}

/// A stored message: `[start, start + data.len())`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub start: u64,
    pub data: Bytes,
}

impl StoredMessage {
    pub fn end(&self) -> u64 {
        self.start + self.data.len() as u64
    }
}

/// Hot messages overlapping `[from, cap)`, in order, at most `limit` rows.
pub fn hot_messages(
    db: &impl SqlExecutor,
    key: &str,
    from: u64,
    cap: u64,
    limit: u64,
) -> Result<Vec<StoredMessage>, StorageError> {
    db.query(
        "SELECT start_pos, data FROM ds_messages WHERE stream_key = +?1 AND end_pos > +?2 AND start_pos < +?3 \
         ORDER BY end_pos LIMIT +?4",
        &[key.into(), from.into(), cap.into(), limit.into()],
    )?
    .iter()
    .map(|r| Ok(StoredMessage { start: r.uint(0)?, data: r.blob(1)? }))
    .collect()
}

/// Index entry of a cold segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    pub start: u64,
    pub end: u64,
    pub message_count: u64,
    pub size_bytes: u64,
    pub object_key: String,
}

/// Cold segments overlapping `[from, cap)`, in order.
pub fn segments_overlapping(
    db: &impl SqlExecutor,
    key: &str,
    from: u64,
    cap: u64,
    limit: u64,
) -> Result<Vec<SegmentEntry>, StorageError> {
    db.query(
        "SELECT start_pos, end_pos, message_count, size_bytes, object_key FROM ds_segments \
         WHERE stream_key = +?1 AND end_pos > +?2 AND start_pos < +?3 ORDER BY end_pos LIMIT +?4",
        &[key.into(), from.into(), cap.into(), limit.into()],
    )?
    .iter()
    .map(|r| {
        Ok(SegmentEntry {
            start: r.uint(0)?,
            end: r.uint(1)?,
            message_count: r.uint(2)?,
            size_bytes: r.uint(3)?,
            object_key: r.text(4)?,
        })
    })
    .collect()
}

pub fn insert_segment(db: &impl SqlExecutor, key: &str, s: &SegmentEntry) -> Result<(), StorageError> {
    db.execute(
        "INSERT OR IGNORE INTO ds_segments (stream_key, start_pos, end_pos, message_count, size_bytes, object_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            key.into(),
            s.start.into(),
            s.end.into(),
            s.message_count.into(),
            s.size_bytes.into(),
            s.object_key.as_str().into(),
        ],
    )?;
    Ok(())
}

/// Drop hot rows that are now covered by cold segments (`end_pos <= upto`).
pub fn drop_hot_upto(db: &impl SqlExecutor, key: &str, upto: u64) -> Result<u64, StorageError> {
    db.execute("DELETE FROM ds_messages WHERE stream_key = ?1 AND end_pos <= ?2", &[key.into(), upto.into()])
}

/// `(row count, byte count)` of the hot tail.
pub fn hot_stats(db: &impl SqlExecutor, key: &str) -> Result<(u64, u64), StorageError> {
    let rows = db.query(
        "SELECT count(*), coalesce(sum(end_pos - start_pos), 0) FROM ds_messages WHERE stream_key = ?1",
        &[key.into()],
    )?;
    match rows.first() {
        Some(r) => Ok((r.uint(0)?, r.uint(1)?)),
        None => Ok((0, 0)),
    }
}

pub fn load_producer(db: &impl SqlExecutor, key: &str, producer: &str) -> Result<Option<ProducerState>, StorageError> {
    db.query(
        "SELECT epoch, last_seq FROM ds_producers WHERE stream_key = ?1 AND producer_id = ?2",
        &[key.into(), producer.into()],
    )?
    .first()
    .map(|r| Ok(ProducerState { epoch: r.uint(0)?, last_seq: r.uint(1)? }))
    .transpose()
}

pub fn save_producer(
    db: &impl SqlExecutor,
    key: &str,
    producer: &str,
    state: ProducerState,
    now_ms: i64,
) -> Result<(), StorageError> {
    db.execute(
        "INSERT INTO ds_producers (stream_key, producer_id, epoch, last_seq, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(stream_key, producer_id) DO UPDATE SET epoch = ?3, last_seq = ?4, updated_ms = ?5",
        &[key.into(), producer.into(), state.epoch.into(), state.last_seq.into(), now_ms.into()],
    )?;
    Ok(())
}

/// Streams whose lifetime has run out at `now_ms` (candidates for a sweep).
pub fn expired_streams(db: &impl SqlExecutor, now_ms: i64, limit: u64) -> Result<Vec<String>, StorageError> {
    db.query(
        "SELECT stream_key FROM ds_streams WHERE (expires_at_ms IS NOT NULL AND expires_at_ms <= ?1) \
         OR (ttl_s IS NOT NULL AND last_access_ms + ttl_s * 1000 <= ?1) LIMIT +?2",
        &[now_ms.into(), limit.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// The earliest moment a stream's lifetime runs out (`Stream-Expires-At`, or the last access
/// plus `Stream-TTL`), if any stream has one: when a host should next sweep.
pub fn next_expiry_ms(db: &impl SqlExecutor) -> Result<Option<i64>, StorageError> {
    let rows = db.query(
        "SELECT min(CASE \
            WHEN expires_at_ms IS NOT NULL AND ttl_s IS NOT NULL THEN min(expires_at_ms, last_access_ms + ttl_s * 1000) \
            WHEN expires_at_ms IS NOT NULL THEN expires_at_ms \
            ELSE last_access_ms + ttl_s * 1000 END) \
         FROM ds_streams WHERE expires_at_ms IS NOT NULL OR ttl_s IS NOT NULL",
        &[],
    )?;
    match rows.first() {
        Some(row) => row.opt_int(0),
        None => Ok(None),
    }
}

/// Streams with more hot rows or bytes than the limits (candidates for rotation).
pub fn streams_over_hot_limits(
    db: &impl SqlExecutor,
    max_messages: u64,
    max_bytes: u64,
    limit: u64,
) -> Result<Vec<String>, StorageError> {
    db.query(
        "SELECT stream_key FROM ds_messages GROUP BY stream_key \
         HAVING count(*) > ?1 OR sum(end_pos - start_pos) > ?2 LIMIT +?3",
        &[max_messages.into(), max_bytes.into(), limit.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
