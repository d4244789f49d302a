//! Cold segments in a local directory, and the background maintenance loops (rotation of hot
//! rows into segments, expiry sweeps).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use durable_streams_engine::segment::{self, SegmentLimits, SegmentStore};
use durable_streams_engine::{hot_log, ProtocolError, StorageError};

use crate::service::Service;
use crate::writer::Op;

/// Segments as files under a directory: `<dir>/<object key>`; written to a temporary file,
/// fsynced, renamed, and the directory fsynced.
pub struct LocalDirStore {
    dir: PathBuf,
}

impl LocalDirStore {
    pub fn new(dir: impl Into<PathBuf>) -> Result<LocalDirStore, StorageError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StorageError::new(format!("{}: {e}", dir.display())))?;
        Ok(LocalDirStore { dir })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        // Keys are engine-generated (`seg/<n>/<a>-<b>`); refuse anything that could escape.
        if key.is_empty() || key.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(StorageError::new(format!("bad segment key {key:?}")));
        }
        Ok(self.dir.join(key))
    }
}

fn io(e: std::io::Error, p: &Path) -> StorageError {
    StorageError::new(format!("{}: {e}", p.display()))
}

impl SegmentStore for LocalDirStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let parent = path.parent().ok_or_else(|| StorageError::new("segment path has no parent"))?;
        fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp).map_err(|e| io(e, &tmp))?;
        f.write_all(bytes).map_err(|e| io(e, &tmp))?;
        f.sync_all().map_err(|e| io(e, &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(|e| io(e, &path))?;
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let path = self.path(key)?;
        fs::read(&path).map(Bytes::from).map_err(|e| io(e, &path))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e, &path)),
        }
    }
}

/// Rotate hot tails that exceed the segment limits: plan on a read connection, write the
/// segment, then let the writer record it and drop the hot rows.
/// Shortest time between two scans for streams over the hot-log limits.
const ROTATION_SCAN_INTERVAL: Duration = Duration::from_millis(500);

pub async fn rotation_loop(service: Arc<Service>, hint: Arc<tokio::sync::Notify>) {
    let limits = SegmentLimits {
        max_messages: service.config.segment_max_messages.max(1),
        max_bytes: service.config.segment_max_bytes.max(1),
    };
    let mut shutdown = service.shutdown_signal();
    loop {
        tokio::select! {
            _ = hint.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
        // Finding candidates scans the hot log: at most once per interval, not
        // once per group commit (the limits are targets, not hard caps).
        tokio::select! {
            _ = tokio::time::sleep(ROTATION_SCAN_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        // Streams that grew are checked one by one; the periodic pass scans
        // the whole hot log (e.g. after a restart). Rotate until nothing is
        // over the limits (bounded per round).
        let grown = service.waiters.take_appended();
        let candidates = if grown.is_empty() { None } else { Some(grown) };
        for _ in 0..64 {
            match rotate_once(&service, limits, candidates.clone()).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "rotation failed; will retry");
                    break;
                }
            }
        }
    }
}

async fn rotate_once(
    service: &Arc<Service>,
    limits: SegmentLimits,
    appended: Option<Vec<String>>,
) -> Result<bool, ProtocolError> {
    let plans = service
        .readers
        .with(move |conn| {
            // Only streams that grew can have crossed a limit; a full scan of the
            // hot log runs only on the periodic pass (`full_scan`).
            let keys = match appended {
                Some(keys) => keys
                    .into_iter()
                    .filter(|k| {
                        hot_log::hot_stats(conn, k)
                            .is_ok_and(|(messages, bytes)| messages > limits.max_messages || bytes > limits.max_bytes)
                    })
                    .collect(),
                None => hot_log::streams_over_hot_limits(conn, limits.max_messages, limits.max_bytes, 16)?,
            };
            let mut plans = Vec::new();
            for k in keys {
                if let Some(p) = segment::plan_rotation(conn, &k, limits)? {
                    plans.push(p);
                }
            }
            Ok(plans)
        })
        .await?;
    if plans.is_empty() {
        return Ok(false);
    }
    for plan in plans {
        let store = service.segments.clone();
        let (key, bytes) = (plan.entry.object_key.clone(), plan.bytes.clone());
        tokio::task::spawn_blocking(move || store.put(&key, &bytes))
            .await
            .map_err(|e| StorageError::new(e.to_string()))??;
        tracing::debug!(stream = %plan.stream_key, segment = %plan.entry.object_key, messages = plan.entry.message_count, "segment written");
        if let Some(garbage) = service.writer.submit(|r| Op::CommitRotation(Box::new(plan), r)).await? {
            service.delete_segments(vec![garbage]);
        }
    }
    Ok(true)
}

/// Remove expired streams every second.
pub async fn sweep_loop(service: Arc<Service>) {
    let mut shutdown = service.shutdown_signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
        match service.writer.submit(Op::Sweep).await {
            Ok(out) => {
                if !out.removed.is_empty() {
                    tracing::debug!(removed = out.removed.len(), "expired streams swept");
                }
                service.delete_segments(out.garbage);
            }
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
        match crate::estuaries::sweep_expired(&service).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(expired = n, "estuaries expired"),
            Err(e) => tracing::warn!(error = %e, "estuary expiry failed"),
        }
        service.waiters.prune();
    }
}
