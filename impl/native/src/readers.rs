//! Read-only SQLite connections, each owned by its own reader thread. Reads
//! queue up; a reader takes every queued read (up to [`BATCH_MAX`]) and runs
//! them in one deferred transaction, so each sees one consistent WAL
//! snapshot of everything committed before it was queued.
//!
//! Why threads of our own rather than a blocking pool: when a commit wakes a
//! thousand live readers at once, a pool starts a thread per read and they
//! all contend for a few connections; here a handful of threads drain the
//! queue in batches with one wake-up each.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use durable_streams_engine::{ProtocolError, StorageError};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

/// Prepared statements kept per connection: more than the engine's
/// distinct statements, so none is parsed twice.
pub const STATEMENT_CACHE: usize = 256;
/// Settings of every connection of the server: a statement cache larger
/// than the engine's distinct statements, and a query plan that does not
/// depend on bound values (without it SQLite re-plans a statement with a
/// range constraint every time it is re-bound — measured at 17 % of the
/// server's CPU under fan-out to 1,000 long-polls).
pub fn tune(conn: &Connection) -> Result<(), StorageError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| StorageError::new(e.to_string()))?;
    Ok(())
}

/// Reads run in one transaction at most.
pub const BATCH_MAX: usize = 64;
/// Reads queued at most; more are refused as busy (`503`).
pub const QUEUED_MAX: usize = 100_000;

type Job = Box<dyn FnOnce(&Connection) + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

pub struct ReadPool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ReadPool {
    pub fn open(path: &Path, size: usize) -> Result<ReadPool, StorageError> {
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), ready: Condvar::new() });
        let mut threads = Vec::new();
        for i in 0..size.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| StorageError::new(e.to_string()))?;
            conn.execute_batch("PRAGMA busy_timeout=5000;").map_err(|e| StorageError::new(e.to_string()))?;
            tune(&conn)?;
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ds-reader-{i}"))
                .spawn(move || reader(conn, &shared))
                .map_err(|e| StorageError::new(format!("starting a reader thread: {e}")))?;
            threads.push(thread);
        }
        Ok(ReadPool { shared, threads })
    }

    /// Runs `f` on a read connection, inside a read transaction.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ProtocolError> + Send + 'static,
    ) -> Result<T, ProtocolError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        {
            let mut queue = self.shared.queue.lock().map_err(|_| StorageError::new("read queue poisoned"))?;
            if queue.closed {
                return Err(StorageError::new("the server is shutting down").into());
            }
            if queue.jobs.len() >= QUEUED_MAX {
                return Err(StorageError::new("too many reads queued").into());
            }
            queue.jobs.push_back(job);
        }
        self.shared.ready.notify_one();
        rx.await.map_err(|_| ProtocolError::Storage(StorageError::new("a reader thread failed")))?
    }
}

impl Drop for ReadPool {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
        }
        self.shared.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One reader thread: batches of queued reads, one transaction each.
fn reader(conn: Connection, shared: &Shared) {
    loop {
        let batch: Vec<Job> = {
            let Ok(mut queue) = shared.queue.lock() else { return };
            while queue.jobs.is_empty() && !queue.closed {
                queue = match shared.ready.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
            if queue.jobs.is_empty() {
                return; // closed and drained
            }
            let n = queue.jobs.len().min(BATCH_MAX);
            let batch = queue.jobs.drain(..n).collect();
            if !queue.jobs.is_empty() {
                shared.ready.notify_one(); // more for another reader
            }
            batch
        };
        // Every job of the batch was queued before this transaction starts,
        // so its snapshot holds every commit that job may wait for.
        let began = conn.execute_batch("BEGIN").is_ok();
        for job in batch {
            // A job that panics drops its answer (the caller sees a failed
            // read); the thread and its connection live on.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
        }
        if began {
            let _ = conn.execute_batch("COMMIT");
        }
    }
}
