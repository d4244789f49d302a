//! The host's domain facade. Knows nothing about how requests are parsed: the HTTP adapter
//! (or a generated router) maps requests onto these calls and outcomes onto responses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use durable_streams_engine::segment::SegmentStore;
use durable_streams_engine::{
    content_type, cursor, AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, DeleteOutcome, Engine,
    EngineConfig, HeadOutcome, Offset, ProtocolError, ReadFrom, ReadRequest, StorageError,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::readers::ReadPool;
use crate::segments::LocalDirStore;
use crate::waiters::Waiters;
use crate::writer::{self, Op, WriterHandle};

/// Wall-clock milliseconds (the engine's injected time).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub use durable_streams_service::{LongPoll, ReadChunk};

/// A running SSE response: its encoding and the stream of framed events.
pub struct SseResponse {
    pub base64: bool,
    pub events: mpsc::Receiver<Bytes>,
}

/// Reads shared by live readers: after one wake-up, every reader of the same
/// stream at the same offset gets the result of a single SQLite read.
/// Keyed by stream, offset and the stream's change version, so a read is
/// only shared by readers that waited for the same change.
type SharedRead = Arc<tokio::sync::OnceCell<Result<ReadChunk, ProtocolError>>>;

/// Most shared reads remembered at once (old versions are replaced first).
const SHARED_READS_MAX: usize = 4096;

pub struct Service {
    pub engine: Engine,
    pub metrics: crate::metrics::Metrics,
    shared_reads: std::sync::Mutex<std::collections::HashMap<(String, Offset), (u64, SharedRead)>>,
    pub config: ServerConfig,
    pub writer: WriterHandle,
    pub readers: ReadPool,
    pub waiters: Arc<Waiters>,
    pub segments: Arc<dyn SegmentStore>,
    shutdown: watch::Sender<bool>,
    sse_clients: Arc<Semaphore>,
    rng: AtomicU64,
}

fn busy(what: &str) -> ProtocolError {
    ProtocolError::Storage(StorageError::new(format!("too many {what}")))
}

impl Service {
    /// Open the data directory, start the writer thread and the maintenance loops.
    pub fn start(config: ServerConfig) -> Result<(Arc<Service>, std::thread::JoinHandle<()>), StorageError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StorageError::new(format!("{}: {e}", config.data_dir.display())))?;
        let db_path = config.data_dir.join("streams.db");
        let conn = writer::open_write_connection(&db_path, config.durability)?;
        let readers = ReadPool::open(&db_path, config.read_connections)?;
        let segments: Arc<dyn SegmentStore> = Arc::new(LocalDirStore::new(config.data_dir.join("segments"))?);
        let engine = Engine::new(EngineConfig {
            max_append_bytes: config.max_append_bytes,
            read_chunk_bytes: config.read_chunk_bytes,
            max_row_bytes: (1 << 20).min(config.segment_max_bytes.max(1)),
        });
        let waiters = Arc::new(Waiters::default());
        let hint = Arc::new(tokio::sync::Notify::new());
        let fanout_hint = Arc::new(tokio::sync::Notify::new());
        let (writer, join) = writer::spawn(conn, engine, &config, waiters.clone(), hint.clone(), fanout_hint.clone());
        let seed = now_ms() as u64 ^ 0x9e37_79b9_7f4a_7c15;
        let service = Arc::new(Service {
            engine,
            metrics: Default::default(),
            shared_reads: std::sync::Mutex::new(std::collections::HashMap::new()),
            sse_clients: Arc::new(Semaphore::new(config.sse_clients_max)),
            config,
            writer,
            readers,
            waiters,
            segments,
            shutdown: watch::channel(false).0,
            rng: AtomicU64::new(seed | 1),
        });
        tokio::spawn(crate::segments::rotation_loop(service.clone(), hint));
        tokio::spawn(crate::segments::sweep_loop(service.clone()));
        tokio::spawn(crate::estuaries::fanout_loop(service.clone(), fanout_hint));
        Ok((service, join))
    }

    /// Ask live loops and maintenance to stop.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn random(&self) -> u64 {
        // xorshift64*; quality is irrelevant (cursor jitter).
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `Stream-Cursor` for a live response.
    pub fn cursor(&self, client: Option<&str>) -> String {
        cursor::next_cursor(now_ms(), client, &mut || self.random())
    }

    pub fn delete_segments(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let store = self.segments.clone();
        tokio::task::spawn_blocking(move || {
            for k in keys {
                if let Err(e) = store.delete(&k) {
                    tracing::warn!(segment = %k, error = %e, "cannot delete segment");
                }
            }
        });
    }

    pub async fn create(&self, req: CreateRequest) -> Result<CreateOutcome, ProtocolError> {
        let out = self.writer.submit(|r| Op::Create(req, r)).await?;
        self.delete_segments(out.garbage.clone());
        if out.status == durable_streams_engine::CreateStatus::Created {
            crate::metrics::add(&self.metrics.streams_created, 1);
        }
        Ok(out)
    }

    pub async fn append(&self, req: AppendRequest) -> Result<AppendOutcome, ProtocolError> {
        let bytes = req.body.len() as u64;
        let out = self.writer.submit(|r| Op::Append(req, r)).await;
        match &out {
            Ok(o) if o.changed() => {
                crate::metrics::add(&self.metrics.appends, 1);
                crate::metrics::add(&self.metrics.appended_bytes, bytes);
            }
            Ok(_) => {}
            Err(_) => crate::metrics::add(&self.metrics.append_errors, 1),
        }
        out
    }

    pub async fn delete(&self, key: String) -> Result<DeleteOutcome, ProtocolError> {
        let out = self.writer.submit(|r| Op::Delete(key, r)).await?;
        self.delete_segments(out.garbage.clone());
        crate::metrics::add(&self.metrics.streams_deleted, out.removed.len() as u64);
        Ok(out)
    }

    pub async fn head(&self, key: String) -> Result<HeadOutcome, ProtocolError> {
        let engine = self.engine;
        self.readers.with(move |conn| engine.head(conn, &key, now_ms())).await
    }

    /// Read one chunk without renewing the TTL.
    async fn read_chunk(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        let engine = self.engine;
        let store = self.segments.clone();
        let req = ReadRequest { key: key.to_owned(), from };
        self.readers
            .with(move |conn| {
                let outcome = engine.read(conn, &req, now_ms())?;
                let body = outcome.body(store.as_ref())?;
                Ok(ReadChunk { outcome, body })
            })
            .await
    }

    /// A live reader's read after a wake-up: shared with every reader of the
    /// same stream, offset and change version.
    async fn read_live(&self, key: &str, pos: Offset) -> Result<ReadChunk, ProtocolError> {
        let version = self.waiters.version(key);
        let cell = {
            let Ok(mut reads) = self.shared_reads.lock() else {
                return self.read_chunk(key, ReadFrom::At(pos)).await;
            };
            let slot = (key.to_owned(), pos);
            match reads.get(&slot) {
                Some((v, cell)) if *v == version => cell.clone(),
                _ => {
                    if reads.len() >= SHARED_READS_MAX {
                        reads.clear();
                    }
                    let cell: SharedRead = Arc::new(tokio::sync::OnceCell::new());
                    reads.insert(slot, (version, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| self.read_chunk(key, ReadFrom::At(pos))).await.clone()
    }

    /// A catch-up read; renews a sliding TTL.
    pub async fn read(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        let chunk = self.read_chunk(key, from).await?;
        if chunk.outcome.needs_touch {
            let k = key.to_owned();
            self.writer.submit(|r| Op::Touch(k, r)).await?;
        }
        Ok(chunk)
    }

    /// Long-poll: data at `from` now, or wait up to the configured timeout for some.
    pub async fn long_poll(&self, key: &str, from: ReadFrom) -> Result<LongPoll, ProtocolError> {
        let mut changes = self.waiters.subscribe(key, self.config.waiters_per_stream_max).ok_or_else(|| busy("waiters"))?;
        let mut shutdown = self.shutdown_signal();
        changes.borrow_and_update();
        let first = self.read(key, from).await?;
        // `offset=now` waits for new data even if there is some history.
        if first.ends_long_poll(from) {
            return Ok(LongPoll::Ready(first));
        }
        let mut pos = first.outcome.next_offset;
        let mut last = first;
        let deadline = Instant::now() + self.config.long_poll_timeout;
        loop {
            tokio::select! {
                r = changes.changed() => { if r.is_err() { break; } }
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.changed() => break,
            }
            changes.borrow_and_update();
            let chunk = self.read_live(key, pos).await?;
            if chunk.outcome.has_data() || chunk.outcome.closed {
                return Ok(LongPoll::Ready(chunk));
            }
            pos = chunk.outcome.next_offset;
            last = chunk;
        }
        Ok(LongPoll::TimedOut { tail: last.outcome.next_offset, closed: last.outcome.closed })
    }

    /// Start an SSE response. Errors of the first read (404, 410, ...) come back before any
    /// byte is sent.
    pub async fn sse(self: &Arc<Self>, key: &str, from: ReadFrom, client_cursor: Option<String>) -> Result<SseResponse, ProtocolError> {
        let permit = self.sse_clients.clone().try_acquire_owned().map_err(|_| busy("SSE clients"))?;
        let mut changes = self.waiters.subscribe(key, self.config.waiters_per_stream_max).ok_or_else(|| busy("waiters"))?;
        changes.borrow_and_update();
        let first = self.read(key, from).await?;
        let base64 = content_type::sse_needs_base64(&first.outcome.content_type);
        let (tx, rx) = mpsc::channel(8);
        let service = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let _permit = permit;
            service.sse_loop(key, first, changes, tx, base64, client_cursor).await;
        });
        Ok(SseResponse { base64, events: rx })
    }

    async fn sse_loop(
        &self,
        key: String,
        first: ReadChunk,
        mut changes: watch::Receiver<u64>,
        tx: mpsc::Sender<Bytes>,
        base64: bool,
        client_cursor: Option<String>,
    ) {
        let mut shutdown = self.shutdown_signal();
        let deadline = Instant::now() + self.config.sse_reconnect_interval;
        let keepalive = self.config.long_poll_timeout.max(Duration::from_millis(100));
        let cursor = |s: &Self| s.cursor(client_cursor.as_deref());
        let mut chunk = first;
        let mut sent_any = false;
        loop {
            let o = &chunk.outcome;
            let out = chunk.sse_frames(base64, cursor(self), sent_any);
            if !out.is_empty() {
                sent_any = true;
                if tx.send(Bytes::from(out)).await.is_err() {
                    return;
                }
            }
            if o.closed || Instant::now() >= deadline {
                return;
            }
            let pos = o.next_offset;
            let more = o.has_data() && !o.up_to_date;
            if !more {
                // Wait for a change; re-send the control event as a keep-alive meanwhile.
                loop {
                    tokio::select! {
                        r = changes.changed() => { if r.is_err() { return; } break; }
                        _ = tokio::time::sleep(keepalive) => {
                            if Instant::now() >= deadline { return; }
                            let keepalive = durable_streams_service::sse_keepalive(pos, cursor(self));
                            if tx.send(Bytes::from(keepalive)).await.is_err() { return; }
                        }
                        _ = tokio::time::sleep_until(deadline) => return,
                        _ = tx.closed() => return,
                        _ = shutdown.changed() => return,
                    }
                }
            }
            changes.borrow_and_update();
            chunk = match self.read_live(&key, pos).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(stream = %key, error = %e, "SSE read ended");
                    return;
                }
            };
        }
    }
}
