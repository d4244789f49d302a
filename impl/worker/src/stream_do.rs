//! The StreamDO's host: the engine over the object's SQLite (hot log,
//! producers, metadata, segment index) and R2 (cold segments), long-poll
//! waiters held in the object (bounded), SSE readers as hibernatable
//! WebSockets, and the object's alarm for maintenance (rotation to R2,
//! reclaiming expired streams).
//!
//! Invariant: every engine operation (validate, then write) runs inside one
//! synchronous `transactionSync` call with no `.await` in it, so requests to
//! this object can never interleave between a check and its write. The only
//! awaits are before an operation (none) or after it (R2 fetches of immutable
//! segments, alarm scheduling, waiting for wake-ups).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use durable_streams_engine::segment::{self, SegmentLimits};
use durable_streams_engine::storage::SqlExecutor;
use durable_streams_engine::{
    content_type, cursor, hot_log, AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, DeleteOutcome, Engine,
    EngineConfig, HeadOutcome, Offset, ProtocolError, ReadFrom, ReadRequest, StorageError,
};
use durable_streams_service::{LongPoll, ReadChunk, SseStream, StreamHost};
use futures::channel::oneshot;
use futures::future::{select, Either};
use serde::{Deserialize, Serialize};
use worker::{Bucket, Env, State, WebSocket};

use crate::analytics::{self, Category};
use crate::do_sql::DoSql;
use crate::estuaries::Drained;

/// Streams of this object that live in another object (their fork family's).
const ALIAS_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS ds_alias (stream_key TEXT PRIMARY KEY, root TEXT NOT NULL) WITHOUT ROWID";
/// The `draining` entry of the registry mover (never a stream key: it has no `/`).
const REGISTRY_DRAIN: &str = "registry";

/// Counters of this object's work (fan-out rounds, jobs, dead letters) and
/// test-hook switches; stored, so they survive the object being evicted.
const COUNTERS_SCHEMA: &str =
    "CREATE TABLE IF NOT EXISTS ds_object_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID";

/// Long-poll waiters held at once by one stream object.
pub const WAITERS_MAX: usize = 10_000;
/// SSE readers (bridged WebSockets) held at once by one stream object.
pub const SSE_READERS_MAX: usize = 1_000;
/// Bytes one SSE connection carries before the object ends it; the reader
/// reconnects from its last offset, as after any SSE close.
pub const SSE_CONNECTION_BYTES_MAX: u64 = 64 << 20;
/// Cold segments kept in memory, in bytes (they are immutable).
const SEGMENT_CACHE_BYTES: usize = 32 << 20;
/// Segments written per alarm run; more work re-arms the alarm at once.
const ROTATIONS_PER_ALARM: usize = 32;
/// Expired streams reclaimed per alarm run.
const SWEEP_PER_ALARM: u64 = 256;
/// Earliest re-check of expiry when a due stream cannot be reclaimed yet
/// (its forks still read it).
const EXPIRY_RECHECK_MS: i64 = 60_000;

/// Settings of a stream object (from the worker's `[vars]`).
#[derive(Clone, Copy, Debug)]
pub struct DoSettings {
    pub long_poll_timeout_ms: u64,
    pub sse_reconnect_ms: u64,
    pub segment_limits: SegmentLimits,
    /// `TEST_HOOKS=1`: test-only operations (resetting an object) are served.
    pub test_hooks: bool,
}

/// Where a request's time went inside the object (for `Server-Timing`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    /// Time spent fetching cold segments from R2.
    pub r2_ms: u64,
    /// Cold segments the request read (from R2 or the object's cache).
    pub segments: u32,
}

impl Timing {
    /// `Server-Timing` entries of the object.
    pub fn header_value(&self, total_ms: u64) -> String {
        format!("do;dur={total_ms}, r2;dur={};desc=\"segments={}\"", self.r2_ms, self.segments)
    }
}

/// Immutable segments recently read, bounded in bytes.
#[derive(Default)]
struct SegmentCache {
    bytes: usize,
    entries: HashMap<String, Bytes>,
}

impl SegmentCache {
    fn get(&self, key: &str) -> Option<Bytes> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: String, value: Bytes) {
        if value.len() > SEGMENT_CACHE_BYTES / 4 {
            return;
        }
        if self.bytes + value.len() > SEGMENT_CACHE_BYTES {
            self.entries.clear();
            self.bytes = 0;
        }
        self.bytes += value.len();
        self.entries.insert(key, value);
    }
}

/// What an SSE reader's WebSocket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SseReader {
    /// Random; 32 bits so the attachment stays a plain JavaScript number.
    id: u32,
    key: String,
    /// The next position to send from.
    offset: String,
    base64: bool,
    client_cursor: Option<String>,
    deadline_ms: i64,
    sent_bytes: u64,
    sent_any: bool,
}

/// The first WebSocket message of the SSE bridge: how the edge frames the response.
#[derive(Debug, Serialize, Deserialize)]
pub struct SseHello {
    pub base64: bool,
}

pub struct Inner {
    sql: DoSql,
    engine: Engine,
    settings: DoSettings,
    state: State,
    env: Env,
    bucket: Option<Bucket>,
    /// R2 key prefix of this object's segments (objects share one bucket).
    namespace: String,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
    rng: Cell<u64>,
    segments: RefCell<SegmentCache>,
    /// When the alarm is known to be set for (`None`: unknown or unset).
    alarm_at: Cell<Option<i64>>,
    /// SSE readers with a delivery running.
    pumping: RefCell<HashSet<u32>>,
    /// Sources whose outbox is being drained.
    draining: RefCell<HashSet<String>>,
    /// Sources published to while their drain ran: drain them once more.
    redrain: RefCell<HashSet<String>>,
    /// Bumped by the test reset: in-flight work of an older generation stops.
    generation: Cell<u64>,
    /// This instance looked for registry events left by an earlier one.
    registry_checked: Cell<bool>,
    /// Keys known to have no alias (only [`DoHost::set_alias`] writes
    /// aliases, so this never goes stale); bounded by [`UNALIASED_MAX`].
    unaliased: RefCell<HashSet<String>>,
    /// Per stream: the tail below which its hot tail cannot exceed a
    /// rotation limit (see [`DoHost::after_append`]); bounded by
    /// [`ROTATION_DUE_MAX`].
    rotation_due: RefCell<HashMap<String, u64>>,
}

/// Streams whose next rotation check is remembered, at most.
const ROTATION_DUE_MAX: usize = 4_096;

/// Keys remembered as having no alias, at most.
const UNALIASED_MAX: usize = 4_096;

/// The object's state, shared with its running requests.
#[derive(Clone)]
pub struct DoHost(Rc<Inner>);

pub fn now_ms() -> i64 {
    worker::Date::now().as_millis() as i64
}

fn storage(error: impl std::fmt::Display) -> StorageError {
    StorageError::new(error.to_string())
}

impl DoHost {
    pub fn new(state: State, env: Env, bucket: Option<Bucket>, settings: DoSettings) -> Result<DoHost, StorageError> {
        let sql = DoSql::new(&state.storage())?;
        hot_log::migrate(&sql)?;
        sql.execute(ALIAS_SCHEMA, &[])?;
        sql.execute(COUNTERS_SCHEMA, &[])?;
        let seed = (worker::js_sys::Math::random() * u64::MAX as f64) as u64 | 1;
        let namespace = format!("streams/{}/", state.id());
        Ok(DoHost(Rc::new(Inner {
            sql,
            engine: Engine::new(EngineConfig::default()),
            settings,
            state,
            env,
            bucket,
            namespace,
            waiters: RefCell::new(Vec::new()),
            rng: Cell::new(seed),
            segments: RefCell::new(SegmentCache::default()),
            alarm_at: Cell::new(None),
            pumping: RefCell::new(HashSet::new()),
            draining: RefCell::new(HashSet::new()),
            redrain: RefCell::new(HashSet::new()),
            generation: Cell::new(0),
            registry_checked: Cell::new(false),
            unaliased: RefCell::new(HashSet::new()),
            rotation_due: RefCell::new(HashMap::new()),
        })))
    }

    fn random(&self) -> u64 {
        // xorshift64*: cursor jitter and reader ids only.
        let mut x = self.0.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// After a committed change to `keys`: wake long-polls and deliver to SSE readers.
    fn notify(&self, keys: &[&str]) {
        for waiter in self.0.waiters.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
        for ws in self.0.state.get_websockets() {
            let reader = ws.deserialize_attachment::<SseReader>().ok().flatten();
            if reader.is_some_and(|r| keys.contains(&r.key.as_str())) {
                let host = self.clone();
                worker::wasm_bindgen_futures::spawn_local(async move { host.pump(ws).await });
            }
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
        if self.0.unaliased.borrow().contains(key) {
            return Ok(None);
        }
        let rows = self.0.sql.query("SELECT root FROM ds_alias WHERE stream_key = ?1", &[key.into()])?;
        let root = rows.first().map(|row| row.text(0)).transpose()?;
        if root.is_none() {
            let mut unaliased = self.0.unaliased.borrow_mut();
            if unaliased.len() >= UNALIASED_MAX {
                unaliased.clear();
            }
            unaliased.insert(key.to_owned());
        }
        Ok(root)
    }

    /// Records that `key` lives in the object named `root` from now on.
    pub fn set_alias(&self, key: &str, root: &str) -> Result<(), StorageError> {
        self.0.unaliased.borrow_mut().remove(key);
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

    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    pub fn sql(&self) -> &DoSql {
        &self.0.sql
    }

    /// Exactly `[start, end)` of a stream (an estuary delivery): its content
    /// type and body, cold segments fetched.
    pub async fn read_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
        timing: &Cell<Timing>,
    ) -> Result<(String, Bytes), ProtocolError> {
        let outcome = self.0.engine.read_range(&self.0.sql, key, start, end, now_ms())?;
        let mut fetched: Vec<(String, Bytes)> = Vec::new();
        for cold in outcome.cold_keys() {
            fetched.push((cold.to_owned(), self.segment(cold, timing).await?));
        }
        let body = outcome.body_with(|wanted| {
            fetched
                .iter()
                .find(|(k, _)| k == wanted)
                .map(|(_, bytes)| bytes.clone())
                .ok_or_else(|| StorageError::new(format!("cold segment {wanted} was not fetched")))
        })?;
        Ok((outcome.content_type, body))
    }

    /// After an estuary was created or renewed: its expiry needs the alarm.
    pub fn after_estuary_change(&self, expires_at_ms: Option<i64>) {
        if let Some(at) = expires_at_ms {
            let host = self.clone();
            worker::wasm_bindgen_futures::spawn_local(async move {
                if let Err(error) = host.arm_alarm(at).await {
                    worker::console_warn!("arming the estuary expiry alarm failed: {error}");
                }
            });
        }
    }

    /// After an estuary was deleted: its readers end, its segments go.
    pub fn after_estuary_delete(&self, estuary_key: &str, garbage: Vec<String>) {
        self.delete_segments(garbage);
        self.notify(&[estuary_key]);
    }

    /// Starts draining `source`'s outbox unless a drain runs already (then
    /// that drain runs once more when it ends); a failed delivery arms the
    /// alarm to retry, a hand-off to the queue arms it to re-check.
    /// Call it only when `source` owes its estuaries something.
    pub fn start_fanout(&self, source: &str) {
        if !self.0.draining.borrow_mut().insert(source.to_owned()) {
            self.0.redrain.borrow_mut().insert(source.to_owned());
            return;
        }
        let host = self.clone();
        let source = source.to_owned();
        worker::wasm_bindgen_futures::spawn_local(async move {
            let env = host.0.env.clone();
            let generation = host.generation();
            let done = crate::estuaries::drain(&host, &env, &source).await;
            if host.generation() != generation {
                return; // reset meanwhile: as if this object had died
            }
            host.0.draining.borrow_mut().remove(&source);
            let again = host.0.redrain.borrow_mut().remove(&source);
            let alarm_at = crate::estuaries::next_attempt(&done, &env);
            if let Some(at) = alarm_at {
                if let Err(error) = host.arm_alarm(at).await {
                    worker::console_warn!("arming the fan-out alarm failed: {error}");
                }
            }
            // Publishes that arrived while this drain ran.
            if again && !matches!(done, Ok(Drained::Retry) | Err(_)) && host.fanout_owed(&source) {
                host.start_fanout(&source);
            }
        });
    }

    /// Test hook (`TEST_HOOKS=1` only): appends to this object fail (`503`) while set.
    pub fn fail_appends_for_test(&self, failing: bool) -> Result<(), StorageError> {
        self.0.sql.execute(
            "INSERT INTO ds_object_counters (name, value) VALUES ('test:failing-appends', ?1) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[i64::from(failing).into()],
        )?;
        Ok(())
    }

    fn appends_fail_for_test(&self) -> bool {
        self.test_hooks() && self.counter("test:failing-appends") > 0
    }

    /// Adds `n` to this object's counter `name` (fan-out observability).
    pub fn count(&self, name: &str, n: u64) {
        let added = self.0.sql.execute(
            "INSERT INTO ds_object_counters (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            &[name.into(), n.into()],
        );
        if let Err(error) = added {
            worker::console_warn!("counting {name} failed: {error}");
        }
    }

    /// This object's id (hex).
    pub fn object_id(&self) -> String {
        self.0.state.id().to_string()
    }

    /// The first request of this instance looks for registry events an
    /// earlier instance left unmoved (it died mid-move).
    pub fn check_registry_once(&self) {
        if !self.0.registry_checked.replace(true) {
            self.start_registry();
        }
    }

    /// Moves pending registry events to their registry streams unless a
    /// move runs already; a failure arms the alarm to retry. (Not armed
    /// beforehand: that would cost every creation two storage operations and
    /// a later alarm run. If the object dies mid-move, the events wait in
    /// its outbox for its next request or alarm — delivered late, never lost
    /// or doubled.)
    pub fn start_registry(&self) {
        if !durable_streams_engine::registry::pending(&self.0.sql, 1).is_ok_and(|p| !p.is_empty()) {
            return;
        }
        if !self.0.draining.borrow_mut().insert(REGISTRY_DRAIN.to_owned()) {
            self.0.redrain.borrow_mut().insert(REGISTRY_DRAIN.to_owned());
            return;
        }
        let host = self.clone();
        worker::wasm_bindgen_futures::spawn_local(async move {
            let generation = host.generation();
            let env = host.0.env.clone();
            let done = crate::registry::drain(&host, &env).await;
            if host.generation() != generation {
                return;
            }
            host.0.draining.borrow_mut().remove(REGISTRY_DRAIN);
            let again = host.0.redrain.borrow_mut().remove(REGISTRY_DRAIN);
            match done {
                Ok(true) if again => host.start_registry(),
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    if let Err(error) = &done {
                        worker::console_warn!("moving registry events failed: {error}; the alarm retries");
                    }
                    if let Err(error) = host.arm_alarm(crate::estuaries::retry_at()).await {
                        worker::console_warn!("arming the registry alarm failed: {error}");
                    }
                }
            }
        });
    }

    /// The worker's environment (bindings, variables).
    pub fn env(&self) -> &Env {
        &self.0.env
    }

    /// This object's counter `name` (0 when never counted).
    pub fn counter(&self, name: &str) -> u64 {
        self.0
            .sql
            .query("SELECT value FROM ds_object_counters WHERE name = ?1", &[name.into()])
            .ok()
            .and_then(|rows| rows.first().and_then(|r| r.uint(0).ok()))
            .unwrap_or(0)
    }

    pub fn test_hooks(&self) -> bool {
        self.0.settings.test_hooks
    }

    /// Whether `source` has outbox entries not yet delivered.
    pub fn fanout_owed(&self, source: &str) -> bool {
        durable_streams_engine::estuary::pending(&self.0.sql, source, 1).is_ok_and(|p| !p.is_empty())
    }

    /// Test hook (`TEST_HOOKS=1` only): what a crash of this object does to
    /// a fan-out — in-flight drains stop where they are (nothing more is
    /// delivered or acknowledged) and the in-memory state is gone; only what
    /// is stored survives, and the alarm must resume. (The runtime's own
    /// `abort()` cannot unwind through wasm frames safely.)
    pub fn reset_for_test(&self) {
        self.0.generation.set(self.0.generation.get() + 1);
        self.0.draining.borrow_mut().clear();
        self.0.redrain.borrow_mut().clear();
        self.0.alarm_at.set(None);
        self.0.rotation_due.borrow_mut().clear();
    }

    /// Changes when the object is reset (see [`DoHost::reset_for_test`]).
    pub fn generation(&self) -> u64 {
        self.0.generation.get()
    }

    /// The stream's public flag, if it exists.
    pub fn head_public(&self, key: &str) -> Option<bool> {
        self.0.engine.head(&self.0.sql, key, now_ms()).ok().map(|h| h.public)
    }

    fn bucket(&self) -> Result<&Bucket, StorageError> {
        self.0.bucket.as_ref().ok_or_else(|| StorageError::new("the R2 binding is not configured"))
    }

    /// One cold segment, from memory or R2.
    async fn segment(&self, key: &str, timing: &Cell<Timing>) -> Result<Bytes, StorageError> {
        let mut t = timing.get();
        t.segments += 1;
        timing.set(t);
        if let Some(bytes) = self.0.segments.borrow().get(key) {
            return Ok(bytes);
        }
        let started = now_ms();
        let object = self.bucket()?.get(format!("{}{key}", self.0.namespace)).execute().await.map_err(storage)?;
        let object = object.ok_or_else(|| StorageError::new(format!("cold segment {key} is missing")))?;
        let body = object.body().ok_or_else(|| StorageError::new(format!("cold segment {key} has no body")))?;
        let bytes = Bytes::from(body.bytes().await.map_err(storage)?);
        let mut t = timing.get();
        t.r2_ms += (now_ms() - started).max(0) as u64;
        timing.set(t);
        self.0.segments.borrow_mut().insert(key.to_owned(), bytes.clone());
        Ok(bytes)
    }

    /// A catch-up chunk: the engine's read (synchronous), then the cold
    /// segments it names (immutable, so fetching them later is safe).
    async fn read_chunk(&self, key: &str, from: ReadFrom, timing: &Cell<Timing>) -> Result<ReadChunk, ProtocolError> {
        let outcome = self.0.engine.read(&self.0.sql, &ReadRequest { key: key.to_owned(), from }, now_ms())?;
        let mut fetched: Vec<(String, Bytes)> = Vec::new();
        for cold in outcome.cold_keys() {
            fetched.push((cold.to_owned(), self.segment(cold, timing).await?));
        }
        let body = outcome.body_with(|wanted| {
            fetched
                .iter()
                .find(|(k, _)| k == wanted)
                .map(|(_, bytes)| bytes.clone())
                .ok_or_else(|| StorageError::new(format!("cold segment {wanted} was not fetched")))
        })?;
        Ok(ReadChunk { outcome, body })
    }

    pub async fn read_and_touch(&self, key: &str, from: ReadFrom, timing: &Cell<Timing>) -> Result<ReadChunk, ProtocolError> {
        let chunk = self.read_chunk(key, from, timing).await?;
        if chunk.outcome.needs_touch {
            self.0.engine.touch(&self.0.sql, key, now_ms())?;
        }
        Ok(chunk)
    }

    fn cursor_value(&self, client: Option<&str>) -> String {
        cursor::next_cursor(now_ms(), client, &mut || self.random())
    }

    /// Deletes cold segments the engine released (best effort: an object
    /// left behind is unreferenced and never read).
    fn delete_segments(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let Ok(bucket) = self.bucket().cloned() else { return };
        let keys: Vec<String> = keys.into_iter().map(|k| format!("{}{k}", self.0.namespace)).collect();
        worker::wasm_bindgen_futures::spawn_local(async move {
            if let Err(error) = bucket.delete_multiple(keys).await {
                worker::console_warn!("deleting cold segments failed: {error}");
            }
        });
    }

    /// Arms the alarm at `at_ms` unless one is set earlier.
    async fn arm_alarm(&self, at_ms: i64) -> Result<(), StorageError> {
        if self.0.alarm_at.get().is_some_and(|t| t <= at_ms) {
            return Ok(());
        }
        let storage = self.0.state.storage();
        let current = storage.get_alarm().await.map_err(storage_error)?;
        match current {
            Some(t) if t <= at_ms => self.0.alarm_at.set(Some(t)),
            _ => {
                let when = worker::js_sys::Date::new(&(at_ms as f64).into());
                storage.set_alarm(worker::ScheduledTime::new(when)).await.map_err(storage_error)?;
                self.0.alarm_at.set(Some(at_ms));
            }
        }
        Ok(())
    }

    /// After a write that left `key`'s tail at `tail`: rotation is due when
    /// the hot tail exceeds the limits.
    ///
    /// Counting the hot rows reads all of them, so a check remembers how far
    /// the stream may grow before the next one could find a limit exceeded:
    /// every message takes at least one byte of the stream, so from hot
    /// stats `(m, b)` at tail `t` neither limit can be exceeded before the
    /// tail passes `t + min(max_messages - m, max_bytes - b)`. Rotation only
    /// shrinks the hot tail; a stream created again here forgets its entry
    /// ([`DoHost::forget_hot_tail`]).
    async fn after_append(&self, key: &str, tail: u64) -> Result<(), StorageError> {
        if self.0.alarm_at.get().is_some_and(|t| t <= now_ms()) {
            return Ok(()); // an alarm is due already
        }
        if self.0.rotation_due.borrow().get(key).is_some_and(|due| tail < *due) {
            return Ok(());
        }
        let limits = self.0.settings.segment_limits;
        let (messages, bytes) = hot_log::hot_stats(&self.0.sql, key)?;
        if messages > limits.max_messages || bytes > limits.max_bytes {
            self.0.rotation_due.borrow_mut().remove(key);
            self.arm_alarm(now_ms()).await?;
            return Ok(());
        }
        let slack = (limits.max_messages - messages).min(limits.max_bytes - bytes);
        let mut due = self.0.rotation_due.borrow_mut();
        if due.len() >= ROTATION_DUE_MAX && !due.contains_key(key) {
            due.clear();
        }
        due.insert(key.to_owned(), tail.saturating_add(slack).saturating_add(1));
        Ok(())
    }

    /// `key` was (re)created in this object: its next rotation check is unknown.
    pub fn forget_hot_tail(&self, key: &str) {
        self.0.rotation_due.borrow_mut().remove(key);
    }

    /// The alarm: rotate hot tails over the limits into R2 segments, reclaim
    /// expired streams, and arm the next alarm (more rotation, or the next
    /// expiry).
    ///
    /// Rotation is crash-safe at every step (see `segment`): the object is
    /// written under a key unique to (incarnation, range) before the index
    /// row; the hot rows go in the same transaction as the index row. An
    /// alarm that dies is retried by the runtime and repeats the same put.
    pub async fn alarm(&self) -> Result<(), StorageError> {
        self.0.alarm_at.set(None);
        let limits = self.0.settings.segment_limits;
        let mut rotated = 0;
        let mut more = false;
        'rotate: loop {
            let keys = hot_log::streams_over_hot_limits(&self.0.sql, limits.max_messages, limits.max_bytes, 16)?;
            if keys.is_empty() {
                break;
            }
            for key in keys {
                while let Some(plan) = segment::plan_rotation(&self.0.sql, &key, limits)? {
                    if rotated >= ROTATIONS_PER_ALARM {
                        more = true;
                        break 'rotate;
                    }
                    let object_key = format!("{}{}", self.0.namespace, plan.entry.object_key);
                    self.bucket()?.put(object_key, plan.bytes.clone()).execute().await.map_err(storage)?;
                    if let Some(garbage) = segment::commit_rotation(&self.0.sql, &plan)? {
                        self.delete_segments(vec![garbage]);
                    }
                    rotated += 1;
                }
            }
        }
        let now = now_ms();
        // Estuaries of this object whose lifetime ran out.
        for key in durable_streams_engine::estuary::expired(&self.0.sql, now, SWEEP_PER_ALARM)? {
            match durable_streams_engine::estuary::delete_estuary(&self.0.engine, &self.0.sql, &key, now) {
                Ok((garbage, _sources)) => {
                    analytics::write(&self.0.env, Category::Cleanup, &["estuary_expired", &key], &[1.0]);
                    self.after_estuary_delete(&key, garbage)
                }
                Err(ProtocolError::NotFound) => {}
                Err(error) => return Err(engine_storage(error)),
            }
        }
        // Fan-out owed by sources of this object (a crash, a failed delivery).
        let mut fanout_again: Option<i64> = None;
        for source in durable_streams_engine::estuary::sources_with_pending(&self.0.sql, 64)? {
            if self.0.draining.borrow().contains(&source) {
                continue;
            }
            self.0.draining.borrow_mut().insert(source.clone());
            let done = crate::estuaries::drain(self, &self.0.env, &source).await;
            self.0.draining.borrow_mut().remove(&source);
            let at = crate::estuaries::next_attempt(&done, &self.0.env);
            fanout_again = [fanout_again, at].into_iter().flatten().min();
        }
        let swept = self.0.engine.sweep_expired(&self.0.sql, now, SWEEP_PER_ALARM).map_err(engine_storage)?;
        // Registry events of the deletions above, and of any earlier move that failed.
        if !self.0.draining.borrow().contains(REGISTRY_DRAIN) {
            self.0.draining.borrow_mut().insert(REGISTRY_DRAIN.to_owned());
            let moved = crate::registry::drain(self, &self.0.env).await;
            self.0.draining.borrow_mut().remove(REGISTRY_DRAIN);
            if !matches!(moved, Ok(true)) {
                fanout_again = [fanout_again, Some(crate::estuaries::retry_at())].into_iter().flatten().min();
            }
        }
        let more = more || swept.removed.len() as u64 >= SWEEP_PER_ALARM;
        if !swept.removed.is_empty() {
            for key in &swept.removed {
                analytics::write(&self.0.env, Category::Cleanup, &["stream_expired", key], &[1.0]);
            }
            let keys: Vec<&str> = swept.removed.iter().map(String::as_str).collect();
            self.notify(&keys);
        }
        self.delete_segments(swept.garbage);
        let next = if more {
            Some(now)
        } else {
            let streams = hot_log::next_expiry_ms(&self.0.sql)?;
            let estuaries = durable_streams_engine::estuary::next_expiry_ms(&self.0.sql)?;
            [streams, estuaries, fanout_again]
                .into_iter()
                .flatten()
                .min()
                .map(|at| at.max(now + if at <= now { EXPIRY_RECHECK_MS } else { 0 }))
        };
        if let Some(at) = next {
            self.arm_alarm(at).await?;
        }
        Ok(())
    }

    /// Accepts an SSE reader's WebSocket after its first read succeeded, and
    /// starts delivery. The object may hibernate between deliveries: the
    /// reader's position lives in the socket's attachment.
    pub fn accept_sse(&self, key: &str, first: &ReadChunk, client_cursor: Option<String>) -> Result<WebSocket, ProtocolError> {
        if self.0.state.get_websockets().len() >= SSE_READERS_MAX {
            return Err(ProtocolError::Storage(StorageError::new("too many SSE readers on this stream; retry later")));
        }
        let pair = worker::WebSocketPair::new().map_err(|e| ProtocolError::Storage(storage(e)))?;
        let base64 = content_type::sse_needs_base64(&first.outcome.content_type);
        let reader = SseReader {
            id: (self.random() >> 32) as u32,
            key: key.to_owned(),
            offset: first.outcome.start.to_string(),
            base64,
            client_cursor,
            deadline_ms: now_ms() + self.0.settings.sse_reconnect_ms as i64,
            sent_bytes: 0,
            sent_any: false,
        };
        self.0.state.accept_web_socket(&pair.server);
        let setup = pair
            .server
            .serialize_attachment(&reader)
            .and_then(|()| pair.server.send(&SseHello { base64 }));
        if let Err(error) = setup {
            let _ = pair.server.close(Some(1011), Some("setup failed"));
            return Err(ProtocolError::Storage(storage(error)));
        }
        let host = self.clone();
        let server = pair.server;
        worker::wasm_bindgen_futures::spawn_local(async move { host.pump(server).await });
        Ok(pair.client)
    }

    /// Delivers everything an SSE reader has not seen yet. One delivery per
    /// reader runs at a time; a change that arrives meanwhile is picked up
    /// by the final synchronous tail check (no await between that check and
    /// giving up the reader).
    async fn pump(&self, ws: WebSocket) {
        let Ok(Some(mut reader)) = ws.deserialize_attachment::<SseReader>() else { return };
        if !self.0.pumping.borrow_mut().insert(reader.id) {
            return;
        }
        let timing = Cell::new(Timing::default());
        loop {
            let end = |why: &str| {
                let _ = ws.close(Some(1000), Some(why));
            };
            if now_ms() >= reader.deadline_ms || reader.sent_bytes >= SSE_CONNECTION_BYTES_MAX {
                end("reconnect");
                break;
            }
            let Ok(position) = Offset::parse(&reader.offset) else {
                end("bad position");
                break;
            };
            let segments_before = timing.get().segments;
            let chunk = match self.read_chunk(&reader.key, ReadFrom::At(position), &timing).await {
                Ok(chunk) => chunk,
                Err(_) => {
                    end("stream unavailable");
                    break;
                }
            };
            let cursor = self.cursor_value(reader.client_cursor.as_deref());
            let frames = chunk.sse_frames(reader.base64, cursor, reader.sent_any);
            if !frames.is_empty() {
                if ws.send_with_bytes(&frames).is_err() {
                    break;
                }
                reader.sent_any = true;
                reader.sent_bytes += frames.len() as u64;
            }
            reader.offset = chunk.outcome.next_offset.to_string();
            if ws.serialize_attachment(&reader).is_err() {
                end("state lost");
                break;
            }
            if chunk.outcome.closed {
                end("stream closed");
                break;
            }
            if chunk.outcome.has_data() && !chunk.outcome.up_to_date {
                continue;
            }
            // Up to date as of the read. Only fetching cold segments yields
            // to other requests; anything appended meanwhile is still ours.
            if timing.get().segments == segments_before {
                break;
            }
            match self.0.engine.head(&self.0.sql, &reader.key, now_ms()) {
                Ok(head) if head.next_offset != chunk.outcome.next_offset || head.closed => continue,
                Ok(_) => break,
                Err(_) => {
                    end("stream unavailable");
                    break;
                }
            }
        }
        self.0.pumping.borrow_mut().remove(&reader.id);
    }
}

fn storage_error(error: worker::Error) -> StorageError {
    StorageError::new(error.to_string())
}

fn engine_storage(error: ProtocolError) -> StorageError {
    match error {
        ProtocolError::Storage(error) => error,
        other => StorageError::new(other.to_string()),
    }
}

/// The host for one request: the object plus that request's timing.
pub struct RequestHost {
    pub host: DoHost,
    pub timing: Cell<Timing>,
}

impl RequestHost {
    pub fn new(host: DoHost) -> RequestHost {
        RequestHost { host, timing: Cell::new(Timing::default()) }
    }

    /// After a write: arm the alarm for rotation (and, after a creation,
    /// for the next expiry). A failure here never fails the committed write;
    /// the next write retries it.
    async fn maintenance_after(&self, key: &str, tail: u64, created: bool) {
        let host = &self.host;
        if created {
            host.forget_hot_tail(key);
        }
        let mut result = host.after_append(key, tail).await;
        if created && result.is_ok() {
            result = match hot_log::next_expiry_ms(&host.0.sql) {
                Ok(Some(at)) => host.arm_alarm(at).await,
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            };
        }
        if let Err(error) = result {
            worker::console_warn!("arming the maintenance alarm failed: {error}");
        }
    }
}

#[async_trait::async_trait(?Send)]
impl StreamHost for RequestHost {
    async fn create(&self, request: CreateRequest) -> Result<CreateOutcome, ProtocolError> {
        let host = &self.host;
        let key = request.key.clone();
        let outcome = host.0.engine.create(&host.0.sql, request, now_ms())?;
        host.delete_segments(outcome.garbage.clone());
        host.notify(&[&key]);
        self.maintenance_after(&key, outcome.next_offset.byte, true).await;
        Ok(outcome)
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, ProtocolError> {
        let host = &self.host;
        let key = request.key.clone();
        if host.appends_fail_for_test() {
            analytics::write(&host.0.env, Category::PublishError, &[&key, "503"], &[1.0]);
            return Err(ProtocolError::Storage(StorageError::new("appends fail here (test hook)")));
        }
        let bytes = request.body.len() as f64;
        let outcome = match host.0.engine.append(&host.0.sql, request, now_ms()) {
            Ok(outcome) => outcome,
            Err(error) => {
                let status = durable_streams_service::problem(&error).status.to_string();
                analytics::write(&host.0.env, Category::PublishError, &[&key, &status], &[1.0]);
                return Err(error);
            }
        };
        if outcome.changed() {
            analytics::write(&host.0.env, Category::Publish, &[&key], &[bytes, 1.0]);
            host.notify(&[&key]);
            if outcome.owes_estuaries {
                // The alarm is the safety net: if this object dies before the
                // drain below finishes, the alarm resumes it.
                if let Err(error) = host.arm_alarm(crate::estuaries::retry_at()).await {
                    worker::console_warn!("arming the fan-out alarm failed: {error}");
                }
                host.start_fanout(&key);
            }
            self.maintenance_after(&key, outcome.next_offset.byte, false).await;
        }
        Ok(outcome)
    }

    async fn delete(&self, key: String) -> Result<DeleteOutcome, ProtocolError> {
        let host = &self.host;
        let outcome = host.0.engine.delete(&host.0.sql, &key, now_ms())?;
        host.delete_segments(outcome.garbage.clone());
        let mut keys: Vec<&str> = outcome.removed.iter().map(String::as_str).collect();
        keys.push(&key);
        host.notify(&keys);
        Ok(outcome)
    }

    async fn head(&self, key: String) -> Result<HeadOutcome, ProtocolError> {
        self.host.0.engine.head(&self.host.0.sql, &key, now_ms())
    }

    async fn read(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        self.host.read_and_touch(key, from, &self.timing).await
    }

    async fn long_poll(&self, key: &str, from: ReadFrom) -> Result<LongPoll, ProtocolError> {
        let host = &self.host;
        let first = host.read_and_touch(key, from, &self.timing).await?;
        if first.ends_long_poll(from) {
            return Ok(LongPoll::Ready(first));
        }
        let mut pos = first.outcome.next_offset;
        let mut last = first;
        let deadline_ms = now_ms() + host.0.settings.long_poll_timeout_ms as i64;
        loop {
            let left_ms = deadline_ms - now_ms();
            if left_ms <= 0 || !host.wait_change(Duration::from_millis(left_ms as u64)).await {
                break;
            }
            let chunk = host.read_chunk(key, ReadFrom::At(pos), &self.timing).await?;
            if chunk.outcome.has_data() || chunk.outcome.closed {
                return Ok(LongPoll::Ready(chunk));
            }
            pos = chunk.outcome.next_offset;
            last = chunk;
        }
        Ok(LongPoll::TimedOut { tail: last.outcome.next_offset, closed: last.outcome.closed })
    }

    /// SSE reaches the object only as a WebSocket upgrade (see
    /// [`DoHost::accept_sse`]); the edge never sends a plain SSE request.
    async fn sse(&self, _key: &str, _from: ReadFrom, _client_cursor: Option<String>) -> Result<SseStream, ProtocolError> {
        Err(ProtocolError::Storage(StorageError::new("SSE is served through the WebSocket bridge")))
    }

    fn cursor(&self, client: Option<&str>) -> String {
        self.host.cursor_value(client)
    }
}
