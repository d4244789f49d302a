//! The group-commit writer.
//!
//! One thread owns the SQLite write connection (WAL mode). It drains a bounded channel of
//! pending operations into one transaction per batch; each operation runs inside its own
//! savepoint (the engine's `transaction`), so a failing operation does not affect the others.
//! After `COMMIT` (one WAL fsync per batch under `Durability::Fsync`) every caller gets its
//! answer and the changed streams' readers are woken. This thread is the sequencer of every
//! stream: per-stream order is the order of the channel.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use durable_streams_engine::segment::{self, RotationPlan};
use durable_streams_engine::{
    AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, DeleteOutcome, Engine, ProtocolError, StorageError,
    SweepOutcome,
};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Durability, ServerConfig};
use crate::waiters::Waiters;

type Reply<T> = oneshot::Sender<Result<T, ProtocolError>>;

/// An operation for the writer.
pub enum Op {
    Create(CreateRequest, Reply<CreateOutcome>),
    Append(AppendRequest, Reply<AppendOutcome>),
    Delete(String, Reply<DeleteOutcome>),
    Touch(String, Reply<()>),
    Sweep(Reply<SweepOutcome>),
    /// Record a written segment and drop the hot rows it covers. Replies with garbage (if the
    /// stream changed meanwhile).
    CommitRotation(Box<RotationPlan>, Reply<Option<String>>),
    /// Any other engine work (estuaries, fan-out), in the batch's transaction.
    Task(Task),
}

/// Engine work for the writer; returns what to do once the batch committed (or failed).
pub type Task = Box<dyn FnOnce(&Engine, &Connection, i64) -> AfterCommit + Send>;
/// Runs after the batch: `Ok` once committed (wake readers, answer), `Err` if the commit failed.
pub type AfterCommit = Box<dyn FnOnce(Result<(), StorageError>, &Waiters) + Send>;

/// A result waiting for the batch to commit.
enum Done {
    Create(Reply<CreateOutcome>, Result<CreateOutcome, ProtocolError>),
    Append(Reply<AppendOutcome>, Result<AppendOutcome, ProtocolError>, String),
    Delete(Reply<DeleteOutcome>, Result<DeleteOutcome, ProtocolError>),
    Touch(Reply<()>, Result<(), ProtocolError>),
    Sweep(Reply<SweepOutcome>, Result<SweepOutcome, ProtocolError>),
    Rotation(Reply<Option<String>>, Result<Option<String>, ProtocolError>),
    Task(AfterCommit),
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Handle used to submit operations.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Op>,
}

impl WriterHandle {
    pub async fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, ProtocolError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| ProtocolError::Storage(StorageError::new("writer stopped")))?;
        rx.await.map_err(|_| ProtocolError::Storage(StorageError::new("writer dropped the request")))?
    }

    /// Runs `work` in a batch's transaction and answers after the commit;
    /// the stream keys it returns have their readers woken (and count as
    /// appended, for rotation and fan-out).
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine, &Connection, i64) -> (Result<T, ProtocolError>, Vec<String>) + Send + 'static,
    ) -> Result<T, ProtocolError> {
        self.submit(move |reply: Reply<T>| {
            Op::Task(Box::new(move |engine: &Engine, conn: &Connection, now: i64| {
                let (result, changed) = work(engine, conn, now);
                Box::new(move |commit: Result<(), StorageError>, waiters: &Waiters| match commit {
                    Ok(()) => {
                        if result.is_ok() {
                            for key in &changed {
                                waiters.notify(key);
                                waiters.mark_appended(key);
                            }
                        }
                        let _ = reply.send(result);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(ProtocolError::Storage(error)));
                    }
                }) as AfterCommit
            }))
        })
        .await
    }
}

/// Registry events moved per round, and rounds per group commit: a batch
/// whose creations and deletions make more leaves the rest to the next
/// batch (the sweeper writes one every second).
const REGISTRY_EVENTS_PER_ROUND: u64 = 256;
const REGISTRY_ROUNDS_PER_BATCH: usize = 16;

/// Open (and migrate) the database for writing.
pub fn open_write_connection(path: &Path, durability: Durability) -> Result<Connection, StorageError> {
    let conn = Connection::open(path).map_err(|e| StorageError::new(e.to_string()))?;
    let sync = match durability {
        Durability::Fsync => "FULL",
        Durability::Relaxed => "NORMAL",
        Durability::None => "OFF",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF;"
    ))
    .map_err(|e| StorageError::new(e.to_string()))?;
    crate::readers::tune(&conn)?;
    durable_streams_engine::hot_log::migrate(&conn)?;
    Ok(conn)
}

/// Start the writer thread. It stops when every handle is dropped, after finishing what was
/// queued.
pub fn spawn(
    conn: Connection,
    engine: Engine,
    config: &ServerConfig,
    waiters: Arc<Waiters>,
    rotation_hint: Arc<tokio::sync::Notify>,
    fanout_hint: Arc<tokio::sync::Notify>,
) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(config.writer_queue_max.max(1));
    let batch_max = config.batch_max_ops.max(1);
    let join = std::thread::Builder::new()
        .name("ds-writer".into())
        .spawn(move || run(conn, engine, rx, batch_max, &waiters, &rotation_hint, &fanout_hint))
        .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
    (WriterHandle { tx }, join)
}

fn run(
    conn: Connection,
    engine: Engine,
    mut rx: mpsc::Receiver<Op>,
    batch_max: usize,
    waiters: &Waiters,
    rotation_hint: &tokio::sync::Notify,
    fanout_hint: &tokio::sync::Notify,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "cannot begin a batch");
            for op in batch.drain(..) {
                fail(op, &StorageError::new(e.to_string()));
            }
            continue;
        }
        let now = now_ms();
        let done: Vec<Done> = batch.drain(..).map(|op| apply(&engine, &conn, op, now)).collect();
        let registry = move_registry_events(&engine, &conn, now);
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                for key in &registry {
                    waiters.notify(key);
                    waiters.mark_appended(key);
                }
                let mut appended = !registry.is_empty();
                for d in done {
                    appended |= finish(d, waiters);
                }
                if appended {
                    rotation_hint.notify_one();
                    fanout_hint.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                let err = StorageError::new(format!("commit failed: {e}"));
                for d in done {
                    fail_done(d, &err);
                }
            }
        }
        tracing::trace!(ops = size, elapsed_us = started.elapsed().as_micros() as u64, "group commit");
    }
    tracing::info!("writer stopped");
}

/// Moves the registry events of this batch's creations and deletions to
/// their registry streams in the batch's transaction, in rounds; a failed
/// round is rolled back alone and its events wait for the next batch.
/// Returns the registry streams that grew.
fn move_registry_events(engine: &Engine, conn: &Connection, now: i64) -> Vec<String> {
    let mut grew: Vec<String> = Vec::new();
    for _ in 0..REGISTRY_ROUNDS_PER_BATCH {
        match durable_streams_engine::registry::drain_local(engine, conn, REGISTRY_EVENTS_PER_ROUND, now) {
            Ok(moved) => {
                for key in moved.grew {
                    if !grew.contains(&key) {
                        grew.push(key);
                    }
                }
                if (moved.events as u64) < REGISTRY_EVENTS_PER_ROUND {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "moving registry events failed; retried with the next batch");
                break;
            }
        }
    }
    grew
}

fn apply(engine: &Engine, conn: &Connection, op: Op, now: i64) -> Done {
    match op {
        Op::Create(req, reply) => Done::Create(reply, engine.create(conn, req, now)),
        Op::Append(req, reply) => {
            let key = req.key.clone();
            Done::Append(reply, engine.append(conn, req, now), key)
        }
        Op::Delete(key, reply) => Done::Delete(reply, engine.delete(conn, &key, now)),
        Op::Touch(key, reply) => Done::Touch(reply, engine.touch(conn, &key, now)),
        Op::Sweep(reply) => Done::Sweep(reply, engine.sweep_expired(conn, now, 256)),
        Op::CommitRotation(plan, reply) => {
            Done::Rotation(reply, segment::commit_rotation(conn, &plan).map_err(ProtocolError::from))
        }
        Op::Task(task) => Done::Task(task(engine, conn, now)),
    }
}

/// Deliver a committed result; returns whether data was appended.
fn finish(d: Done, waiters: &Waiters) -> bool {
    match d {
        Done::Create(reply, r) => {
            let _ = reply.send(r);
            false
        }
        Done::Append(reply, r, key) => {
            let changed = matches!(&r, Ok(o) if o.changed());
            if changed {
                waiters.notify(&key);
                waiters.mark_appended(&key);
            }
            let _ = reply.send(r);
            changed
        }
        Done::Delete(reply, r) => {
            if let Ok(o) = &r {
                for k in &o.removed {
                    waiters.notify(k);
                }
            }
            let _ = reply.send(r);
            false
        }
        Done::Touch(reply, r) => {
            let _ = reply.send(r);
            false
        }
        Done::Sweep(reply, r) => {
            if let Ok(o) = &r {
                for k in &o.removed {
                    waiters.notify(k);
                }
            }
            let _ = reply.send(r);
            false
        }
        Done::Rotation(reply, r) => {
            let _ = reply.send(r);
            false
        }
        Done::Task(after) => {
            after(Ok(()), waiters);
            true
        }
    }
}

fn fail(op: Op, e: &StorageError) {
    let err = || ProtocolError::Storage(e.clone());
    match op {
        Op::Create(_, r) => drop(r.send(Err(err()))),
        Op::Append(_, r) => drop(r.send(Err(err()))),
        Op::Delete(_, r) => drop(r.send(Err(err()))),
        Op::Touch(_, r) => drop(r.send(Err(err()))),
        Op::Sweep(r) => drop(r.send(Err(err()))),
        Op::CommitRotation(_, r) => drop(r.send(Err(err()))),
        // Dropping the task drops its reply: the caller sees the failure.
        Op::Task(task) => drop(task),
    }
}

fn fail_done(d: Done, e: &StorageError) {
    let err = || ProtocolError::Storage(e.clone());
    match d {
        Done::Create(r, _) => drop(r.send(Err(err()))),
        Done::Append(r, _, _) => drop(r.send(Err(err()))),
        Done::Delete(r, _) => drop(r.send(Err(err()))),
        Done::Touch(r, _) => drop(r.send(Err(err()))),
        Done::Sweep(r, _) => drop(r.send(Err(err()))),
        Done::Rotation(r, _) => drop(r.send(Err(err()))),
        Done::Task(after) => after(Err(e.clone()), &Waiters::default()),
    }
}
