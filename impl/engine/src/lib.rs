//! # durable-streams-engine
//!
//! The runtime-free core of a Durable Streams server: every protocol rule, the SQL hot log and
//! the cold-segment format, with no async runtime, no HTTP types and no host APIs. Time,
//! randomness and wake-ups are injected, so the same code runs natively (rusqlite, feature
//! `sqlite`) and in a Cloudflare Durable Object (synchronous DO SQLite).
//!
//! One module per protocol concept:
//!
//! | module | rule |
//! |---|---|
//! | [`offset`] | `%016d_%016d` offsets, `-1` / `now`, strict parsing |
//! | [`content_type`] | case-insensitive matching, JSON mode, SSE base64 |
//! | [`json_mode`] | one-level flattening, `[]` rules, array rendering |
//! | [`producer`] | idempotent producers: epochs, seqs, duplicates |
//! | [`stream_seq`] | `Stream-Seq` bytewise ordering |
//! | [`closure`] | `Stream-Closed`, close semantics |
//! | [`ttl`] | `Stream-TTL` (sliding) / `Stream-Expires-At` |
//! | [`etag`], [`cursor`], [`sse`] | caching, live cursors, SSE framing |
//! | [`fork`] | fork headers, sub-offsets, soft delete |
//! | [`estuary`] | pub/sub fan-out: subscriptions, the transactional outbox, idempotent deliveries |
//! | [`storage`], [`hot_log`], [`segment`] | SQL executor trait, the shared schema and queries, cold segments |
//! | [`streams`] | the domain API: [`Engine::create`], [`Engine::append`], [`Engine::read`], [`Engine::head`], [`Engine::delete`] |
//!
//! Hosts answer HTTP, run the transactions (group commit natively), wait for [`Notifier`]
//! wake-ups between reads, and store segments.

pub mod closure;
pub mod content_type;
pub mod cursor;
pub mod error;
pub mod estuary;
pub mod etag;
pub mod fork;
pub mod hot_log;
pub mod json_mode;
pub mod offset;
pub mod producer;
pub mod registry;
pub mod segment;
pub mod sse;
pub mod storage;
pub mod stream_seq;
pub mod streams;
pub mod ttl;

pub use error::{ProtocolError, StorageError};
pub use offset::{Offset, ReadFrom};
pub use streams::{
    AppendOutcome, AppendRequest, AppendStatus, ColdRef, CreateOutcome, CreateRequest, CreateStatus, DeleteOutcome,
    DeleteStatus, Engine, EngineConfig, HeadOutcome, Piece, ProducerAck, ReadOutcome, ReadRequest, SweepOutcome,
};

/// Source of the current time (Unix milliseconds).
pub trait Clock {
    fn now_ms(&self) -> i64;
}

/// Source of randomness (cursor jitter).
pub trait Random {
    fn next_u64(&mut self) -> u64;
}

/// Told after a write has *committed* that a stream changed (new data, closure, deletion), so
/// the host can wake its long-poll and SSE readers of that stream. Outcomes say whether a
/// request changed its stream ([`AppendOutcome::changed`], [`DeleteOutcome::removed`]).
pub trait Notifier {
    fn stream_changed(&self, stream_key: &str);
}
