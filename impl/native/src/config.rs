//! Server settings and limits.

use std::path::PathBuf;
use std::time::Duration;

/// How an append becomes durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL at every group commit (default): acknowledged appends survive power loss.
    Fsync,
    /// WAL without fsync on commit (survives a process crash, not power loss).
    Relaxed,
    /// No syncing at all (tests, benchmarks).
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fsync" | "full" => Ok(Durability::Fsync),
            "relaxed" | "normal" => Ok(Durability::Relaxed),
            "none" | "off" => Ok(Durability::None),
            other => Err(format!("unknown durability `{other}` (fsync, relaxed, none)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub long_poll_timeout: Duration,
    /// SSE connections are closed after about this long (clients reconnect).
    pub sse_reconnect_interval: Duration,
    pub segment_max_messages: u64,
    pub segment_max_bytes: u64,
    pub max_append_bytes: u64,
    pub read_chunk_bytes: u64,
    pub durability: Durability,
    /// Ops per group commit.
    pub batch_max_ops: usize,
    /// Pending ops queued for the writer (backpressure beyond).
    pub writer_queue_max: usize,
    /// Read connections.
    pub read_connections: usize,
    /// Live readers (long-poll + SSE) waiting on one stream.
    pub waiters_per_stream_max: usize,
    /// Concurrent SSE connections.
    pub sse_clients_max: usize,
    /// An estuary lives this long after its last subscribe.
    pub estuary_ttl: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./data"),
            long_poll_timeout: Duration::from_millis(30_000),
            sse_reconnect_interval: Duration::from_secs(60),
            segment_max_messages: 1000,
            segment_max_bytes: 4 << 20,
            max_append_bytes: 16 << 20,
            read_chunk_bytes: 1 << 20,
            durability: Durability::Fsync,
            batch_max_ops: 512,
            writer_queue_max: 16_384,
            read_connections: std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8),
            waiters_per_stream_max: 10_000,
            sse_clients_max: 10_000,
            estuary_ttl: Duration::from_secs(86_400),
        }
    }
}
