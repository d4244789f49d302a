//! The StreamDO's host: the engine over the object's SQLite, long-poll
//! waiters held in the object (bounded), SSE produced by the object.
//!
//! Invariant: every engine operation (validate, then write) runs inside one
//! synchronous `transactionSync` call with no `.await` in it, so requests to
//! this object can never interleave between a check and its write.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use durable_streams_engine::segment::SegmentStore;
use durable_streams_engine::storage::SqlExecutor;
use durable_streams_engine::{
    content_type, cursor, AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, DeleteOutcome, Engine,
    EngineConfig, HeadOutcome, Offset, ProtocolError, ReadFrom, ReadRequest, StorageError,
};
use durable_streams_service::{LongPoll, ReadChunk, SseStream, StreamHost};
use futures::channel::oneshot;
use futures::future::{select, Either};

use crate::do_sql::DoSql;

/// Streams of this object that live in another object (their fork family's).
const ALIAS_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS ds_alias (stream_key TEXT PRIMARY KEY, root TEXT NOT NULL) WITHOUT ROWID";

/// Long-poll and SSE waiters held at once by one stream object.
pub const WAITERS_MAX: usize = 10_000;

/// Settings of a stream object (from the worker's `[vars]`).
#[derive(Clone, Copy, Debug)]
pub struct DoSettings {
    pub long_poll_timeout_ms: u64,
    pub sse_reconnect_ms: u64,
}

/// Segments are not rotated to R2 yet: every read is served from SQLite.
struct HotOnly;

impl SegmentStore for HotOnly {
    fn put(&self, _key: &str, _bytes: &[u8]) -> Result<(), StorageError> {
        Err(StorageError::new("cold segments are not available in this object"))
    }
    fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        Err(StorageError::new(format!("cold segment {key} is not available in this object")))
    }
    fn delete(&self, _key: &str) -> Result<(), StorageError> {
        Ok(())
    }
}

pub struct Inner {
    sql: DoSql,
    engine: Engine,
    settings: DoSettings,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    rng: Cell<u64>,
}

/// The object's state, shared with its running SSE streams.
#[derive(Clone)]
pub struct DoHost(Rc<Inner>);

fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

impl DoHost {
    pub fn new(sql: DoSql, settings: DoSettings) -> Result<DoHost, StorageError> {
        durable_streams_engine::hot_log::migrate(&sql)?;
        sql.execute(ALIAS_SCHEMA, &[])?;
        let seed = (worker::js_sys::Math::random() * u64::MAX as f64) as u64 | 1;
        Ok(DoHost(Rc::new(Inner {
            sql,
            engine: Engine::new(EngineConfig::default()),
            settings,
            waiters: RefCell::new(Vec::new()),
            rng: Cell::new(seed),
        })))
    }

    fn random(&self) -> u64 {
        // xorshift64*: cursor jitter only.
        let mut x = self.0.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Wakes every waiting reader (after a committed change).
    fn notify(&self) {
        for waiter in self.0.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Waits for a change or `timeout`; `true` when woken by a change.
    async fn wait_change(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self.0.waiters.borrow_mut();
            waiters.retain(|w| !w.is_canceled());
            if waiters.len() >= WAITERS_MAX {
                return false;
            }
            waiters.push(tx);
        }
        let delay = worker::Delay::from(timeout);
        matches!(select(rx, delay).await, Either::Left((Ok(()), _)))
    }

    /// The object that holds `key` when a fork moved it to its family's object.
    pub fn alias_of(&self, key: &str) -> Result<Option<String>, StorageError> {
        let rows = self.0.sql.query("SELECT root FROM ds_alias WHERE stream_key = ?1", &[key.into()])?;
        rows.first().map(|row| row.text(0)).transpose()
    }

    /// Records that `key` lives in the object named `root` from now on.
    pub fn set_alias(&self, key: &str, root: &str) -> Result<(), StorageError> {
        self.0.sql.execute(
            "INSERT INTO ds_alias (stream_key, root) VALUES (?1, ?2) ON CONFLICT (stream_key) DO UPDATE SET root = excluded.root",
            &[key.into(), root.into()],
        )?;
        Ok(())
    }

    /// Whether this object holds `key` (live, closed or soft-deleted).
    pub fn holds(&self, key: &str) -> Result<bool, StorageError> {
        match self.0.engine.head(&self.0.sql, key, now_ms()) {
            Ok(_) | Err(ProtocolError::Gone) => Ok(true),
            Err(ProtocolError::NotFound) => Ok(false),
            Err(ProtocolError::Storage(error)) => Err(error),
            Err(_) => Ok(true),
        }
    }

    fn read_chunk(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        let outcome = self.0.engine.read(&self.0.sql, &ReadRequest { key: key.to_owned(), from }, now_ms())?;
        let body = outcome.body(&HotOnly)?;
        Ok(ReadChunk { outcome, body })
    }

    fn read_and_touch(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        let chunk = self.read_chunk(key, from)?;
        if chunk.outcome.needs_touch {
            self.0.engine.touch(&self.0.sql, key, now_ms())?;
        }
        Ok(chunk)
    }

    fn cursor_value(&self, client: Option<&str>) -> String {
        cursor::next_cursor(now_ms(), client, &mut || self.random())
    }
}

enum SseState {
    Emit(ReadChunk),
    Read(Offset),
    Wait(Offset),
    Done,
}

struct SseLoop {
    host: DoHost,
    key: String,
    base64: bool,
    client_cursor: Option<String>,
    deadline_ms: i64,
    sent_any: bool,
    state: SseState,
}

impl SseLoop {
    /// The next bytes to send, or `None` when the response ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            match std::mem::replace(&mut self.state, SseState::Done) {
                SseState::Done => return None,
                SseState::Read(pos) => match self.host.read_chunk(&self.key, ReadFrom::At(pos)) {
                    Ok(chunk) => self.state = SseState::Emit(chunk),
                    Err(_) => return None,
                },
                SseState::Emit(chunk) => {
                    let o = &chunk.outcome;
                    let cursor = self.host.cursor_value(self.client_cursor.as_deref());
                    let out = chunk.sse_frames(self.base64, cursor, self.sent_any);
                    self.state = if o.closed || now_ms() >= self.deadline_ms {
                        SseState::Done
                    } else if o.has_data() && !o.up_to_date {
                        SseState::Read(o.next_offset)
                    } else {
                        SseState::Wait(o.next_offset)
                    };
                    if !out.is_empty() {
                        self.sent_any = true;
                        return Some(Bytes::from(out));
                    }
                }
                SseState::Wait(pos) => {
                    let left_ms = (self.deadline_ms - now_ms()).max(0) as u64;
                    if left_ms == 0 {
                        return None;
                    }
                    let keepalive = self.host.0.settings.long_poll_timeout_ms.max(100);
                    if self.host.wait_change(Duration::from_millis(keepalive.min(left_ms))).await {
                        self.state = SseState::Read(pos);
                    } else {
                        if now_ms() >= self.deadline_ms {
                            return None;
                        }
                        self.state = SseState::Wait(pos);
                        let cursor = self.host.cursor_value(self.client_cursor.as_deref());
                        return Some(Bytes::from(durable_streams_service::sse_keepalive(pos, cursor)));
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait(?Send)]
impl StreamHost for DoHost {
    async fn create(&self, request: CreateRequest) -> Result<CreateOutcome, ProtocolError> {
        let outcome = self.0.engine.create(&self.0.sql, request, now_ms())?;
        self.notify();
        Ok(outcome)
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, ProtocolError> {
        let outcome = self.0.engine.append(&self.0.sql, request, now_ms())?;
        if outcome.changed() {
            self.notify();
        }
        Ok(outcome)
    }

    async fn delete(&self, key: String) -> Result<DeleteOutcome, ProtocolError> {
        let outcome = self.0.engine.delete(&self.0.sql, &key, now_ms())?;
        self.notify();
        Ok(outcome)
    }

    async fn head(&self, key: String) -> Result<HeadOutcome, ProtocolError> {
        self.0.engine.head(&self.0.sql, &key, now_ms())
    }

    async fn read(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        self.read_and_touch(key, from)
    }

    async fn long_poll(&self, key: &str, from: ReadFrom) -> Result<LongPoll, ProtocolError> {
        let first = self.read_and_touch(key, from)?;
        if first.ends_long_poll(from) {
            return Ok(LongPoll::Ready(first));
        }
        let mut pos = first.outcome.next_offset;
        let mut last = first;
        let deadline_ms = now_ms() + self.0.settings.long_poll_timeout_ms as i64;
        loop {
            let left_ms = deadline_ms - now_ms();
            if left_ms <= 0 || !self.wait_change(Duration::from_millis(left_ms as u64)).await {
                break;
            }
            let chunk = self.read_chunk(key, ReadFrom::At(pos))?;
            if chunk.outcome.has_data() || chunk.outcome.closed {
                return Ok(LongPoll::Ready(chunk));
            }
            pos = chunk.outcome.next_offset;
            last = chunk;
        }
        Ok(LongPoll::TimedOut { tail: last.outcome.next_offset, closed: last.outcome.closed })
    }

    async fn sse(&self, key: &str, from: ReadFrom, client_cursor: Option<String>) -> Result<SseStream, ProtocolError> {
        let first = self.read_and_touch(key, from)?;
        let base64 = content_type::sse_needs_base64(&first.outcome.content_type);
        let state = SseLoop {
            host: self.clone(),
            key: key.to_owned(),
            base64,
            client_cursor,
            deadline_ms: now_ms() + self.0.settings.sse_reconnect_ms as i64,
            sent_any: false,
            state: SseState::Emit(first),
        };
        let events = futures::stream::unfold(state, |mut state| async move {
            state.next().await.map(|bytes| (Ok(bytes), state))
        });
        Ok(SseStream { base64, events: Box::pin(events) })
    }

    fn cursor(&self, client: Option<&str>) -> String {
        self.cursor_value(client)
    }
}
