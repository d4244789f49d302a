//! Native Durable Streams host.
//!
//! * [`writer`] — the group-commit writer thread: owns the SQLite write connection, runs engine
//!   operations in batches (one transaction and one fsync per batch, each op isolated in a
//!   savepoint), acknowledges after commit and wakes readers.
//! * [`readers`] — a pool of read-only SQLite connections (WAL snapshots).
//! * [`waiters`] — per-stream wake-up channels for long-poll and SSE.
//! * [`segments`] — cold segments in a local directory, and the rotation / expiry sweeps.
//! * [`service`] — the host's domain facade: create/append/read/head/delete, long-poll and SSE
//!   loops. Independent of HTTP parsing.
//! * [`http`] — the HTTP edge (axum): every request goes through the generated service
//!   (`durable-streams-api`) into the streams API of `durable-streams-service`.
//! * [`host`] — [`service::Service`] as that API's `StreamHost`.
//! * [`estuaries`] — the estuary API as writer tasks and the fan-out loop draining the outbox.
//! * [`projects`] — project configurations (signing secrets, CORS origins) in `projects.sqlite`.
//! * [`config`] — limits and settings.

pub mod config;
pub mod estuaries;
pub mod host;
pub mod http;
pub mod metrics;
pub mod operator;
pub mod projects;
pub mod readers;
pub mod segments;
pub mod service;
pub mod waiters;
pub mod writer;
