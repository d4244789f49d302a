//! A pool of read-only SQLite connections. Each read runs on a blocking thread inside one
//! deferred transaction, so it sees one consistent WAL snapshot of everything committed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use durable_streams_engine::{ProtocolError, StorageError};
use rusqlite::{Connection, OpenFlags};

pub struct ReadPool {
    conns: Vec<Arc<Mutex<Connection>>>,
    next: AtomicUsize,
}

impl ReadPool {
    pub fn open(path: &Path, size: usize) -> Result<ReadPool, StorageError> {
        let mut conns = Vec::new();
        for _ in 0..size.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| StorageError::new(e.to_string()))?;
            conn.execute_batch("PRAGMA busy_timeout=5000;").map_err(|e| StorageError::new(e.to_string()))?;
            conns.push(Arc::new(Mutex::new(conn)));
        }
        Ok(ReadPool { conns, next: AtomicUsize::new(0) })
    }

    /// Run `f` on a read connection in a blocking thread, inside a read transaction.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, ProtocolError> + Send + 'static,
    ) -> Result<T, ProtocolError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len().max(1);
        let conn = self.conns.get(i).cloned().ok_or_else(|| StorageError::new("no read connection"))?;
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| StorageError::new("read connection poisoned"))?;
            guard.execute_batch("BEGIN").map_err(|e| StorageError::new(e.to_string()))?;
            let r = f(&guard);
            let _ = guard.execute_batch("COMMIT");
            r
        })
        .await
        .map_err(|e| ProtocolError::Storage(StorageError::new(format!("read task failed: {e}"))))?
    }
}
