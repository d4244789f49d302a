//! Estuaries: pub/sub fan-out. An estuary is an ordinary stream
//! (`{project}/{estuaryId}`) that receives every message published to the
//! source streams it subscribes to. Publishing is a plain append to the
//! source.
//!
//! Never lose, never duplicate:
//!
//! * **Outbox.** Every committed append to a source that has subscribers
//!   records `[start, end)` in `ds_outbox` *in the same transaction* as the
//!   data, numbered by a per-source counter (`outbox:{source}`). A crash can
//!   lose neither the data nor the duty to deliver it.
//! * **Cursors.** Each subscription remembers the next outbox entry it has
//!   to receive (`next_seq`); entries every subscriber received are dropped.
//! * **Idempotent deliveries.** A delivery is an idempotent-producer append
//!   to the estuary stream: `Producer-Id: estuary:{source}`, `Producer-Epoch`
//!   = the subscription's `base_seq` (a new subscription is a new epoch, so
//!   re-subscribing starts over cleanly) and `Producer-Seq` = outbox seq −
//!   `base_seq` (0, 1, 2, … per subscription). Delivering again after a crash between
//!   the append and the cursor update is answered as a duplicate and lands
//!   once.
//!
//! Hosts drain the outbox: natively in one transaction with the appends
//! (the estuary streams live in the same database); on Workers by sending
//! the appends to the estuaries' objects, then [`acknowledge`]-ing.

use bytes::Bytes;

use crate::error::{ProtocolError, StorageError};
use crate::hot_log;
use crate::producer::ProducerHeaders;
use crate::storage::SqlExecutor;
use crate::streams::{AppendRequest, AppendStatus, CreateRequest, Engine, ReadOutcome};

/// DDL of the estuary tables (part of [`hot_log::SCHEMA`]'s migration).
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ds_estuaries (
        estuary_key TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        estuary_id TEXT NOT NULL,
        content_type TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS ds_estuaries_expiry ON ds_estuaries (expires_at_ms)",
    "CREATE TABLE IF NOT EXISTS ds_subscriptions (
        source_key TEXT NOT NULL,
        estuary_key TEXT NOT NULL,
        base_seq INTEGER NOT NULL,
        next_seq INTEGER NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        opened_at_ms INTEGER,
        PRIMARY KEY (source_key, estuary_key)
    )",
    "CREATE INDEX IF NOT EXISTS ds_subscriptions_estuary ON ds_subscriptions (estuary_key)",
    "CREATE TABLE IF NOT EXISTS ds_estuary_sources (
        estuary_key TEXT NOT NULL,
        source_key TEXT NOT NULL,
        PRIMARY KEY (estuary_key, source_key)
    )",
    "CREATE TABLE IF NOT EXISTS ds_outbox (
        source_key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        start_pos INTEGER NOT NULL,
        end_pos INTEGER NOT NULL,
        PRIMARY KEY (source_key, seq)
    )",
];

/// Consecutive failed fan-outs to one estuary that open its circuit breaker.
pub const BREAKER_FAILURES: i64 = 5;
/// How long an open breaker stays open before one attempt is let through (half-open).
pub const BREAKER_OPEN_MS: i64 = 60_000;

/// Adds the columns databases of earlier versions lack.
pub(crate) fn migrate_columns(db: &impl SqlExecutor) -> Result<(), StorageError> {
    if db.query("SELECT failures, opened_at_ms FROM ds_subscriptions LIMIT 0", &[]).is_err() {
        db.execute("ALTER TABLE ds_subscriptions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0", &[])?;
        db.execute("ALTER TABLE ds_subscriptions ADD COLUMN opened_at_ms INTEGER", &[])?;
    }
    Ok(())
}

/// The circuit breaker of one subscription, persisted with it: closed,
/// open after [`BREAKER_FAILURES`] consecutive failed fan-outs, half-open
/// (one attempt) [`BREAKER_OPEN_MS`] later; a success closes it.
pub fn breaker_allows(db: &impl SqlExecutor, source_key: &str, estuary_key: &str, now_ms: i64) -> Result<bool, StorageError> {
    let rows = db.query(
        "SELECT opened_at_ms FROM ds_subscriptions WHERE source_key = ?1 AND estuary_key = ?2",
        &[source_key.into(), estuary_key.into()],
    )?;
    let opened = rows.first().map(|r| r.opt_int(0)).transpose()?.flatten();
    Ok(opened.is_none_or(|at| now_ms.saturating_sub(at) >= BREAKER_OPEN_MS))
}

/// Records a failed fan-out to the subscription's estuary; returns whether its breaker is now open.
pub fn breaker_failure(db: &impl SqlExecutor, source_key: &str, estuary_key: &str, now_ms: i64) -> Result<bool, StorageError> {
    db.execute(
        "UPDATE ds_subscriptions SET failures = failures + 1, \
         opened_at_ms = CASE WHEN failures + 1 >= ?3 THEN ?4 ELSE opened_at_ms END \
         WHERE source_key = ?1 AND estuary_key = ?2",
        &[source_key.into(), estuary_key.into(), BREAKER_FAILURES.into(), now_ms.into()],
    )?;
    breaker_allows(db, source_key, estuary_key, now_ms).map(|allows| !allows)
}

/// Subscriptions one source may have.
pub const SUBSCRIBERS_PER_SOURCE_MAX: u64 = 10_000;
/// Sources one estuary may subscribe to.
pub const SOURCES_PER_ESTUARY_MAX: u64 = 1_000;

/// The producer id of deliveries from `source`.
pub fn producer_id(source_key: &str) -> String {
    format!("estuary:{source_key}")
}

fn counter_name(source_key: &str) -> String {
    format!("outbox:{source_key}")
}

/// The seq the next outbox entry of `source` will get (the counter is not advanced).
fn next_outbox_seq(db: &impl SqlExecutor, source_key: &str) -> Result<u64, StorageError> {
    let rows = db.query("SELECT value FROM ds_counters WHERE name = ?1", &[counter_name(source_key).into()])?;
    Ok(rows.first().map(|r| r.uint(0)).transpose()?.map_or(1, |v| v + 1))
}

/// Called by the engine inside an append's transaction: records
/// `[start, end)` for the source's subscribers, if it has any (then `true`).
pub(crate) fn record_publish(db: &impl SqlExecutor, source_key: &str, start: u64, end: u64) -> Result<bool, StorageError> {
    if end <= start {
        return Ok(false);
    }
    let subscribed = db.query("SELECT 1 FROM ds_subscriptions WHERE source_key = ?1 LIMIT 1", &[source_key.into()])?;
    if subscribed.is_empty() {
        return Ok(false);
    }
    let seq = hot_log::next_counter(db, &counter_name(source_key))?;
    db.execute(
        "INSERT INTO ds_outbox (source_key, seq, start_pos, end_pos) VALUES (?1, ?2, ?3, ?4)",
        &[source_key.into(), seq.into(), start.into(), end.into()],
    )?;
    Ok(true)
}

/// Removes a deleted source's subscriptions and outbox (same transaction as the delete).
pub(crate) fn forget_source(db: &impl SqlExecutor, source_key: &str) -> Result<(), StorageError> {
    db.execute("DELETE FROM ds_subscriptions WHERE source_key = ?1", &[source_key.into()])?;
    db.execute("DELETE FROM ds_outbox WHERE source_key = ?1", &[source_key.into()])?;
    db.execute("DELETE FROM ds_counters WHERE name = ?1", &[counter_name(source_key).into()])?;
    Ok(())
}

/// An estuary's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estuary {
    pub estuary_key: String,
    pub project: String,
    pub estuary_id: String,
    pub content_type: String,
    pub expires_at_ms: i64,
    /// Source stream keys it subscribes to.
    pub sources: Vec<String>,
}

/// A subscription request: estuary `{project}/{estuary_id}` to `source_key`.
#[derive(Debug, Clone, Copy)]
pub struct Subscribe<'a> {
    pub project: &'a str,
    pub estuary_id: &'a str,
    pub source_key: &'a str,
    /// The content type the subscriber expects (must be the source's).
    pub expected_type: Option<&'a str>,
    /// The estuary's lifetime from now.
    pub ttl_ms: i64,
}

/// Result of [`subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    pub estuary_key: String,
    pub expires_at_ms: i64,
    /// The estuary did not exist before.
    pub is_new: bool,
}

/// Subscribes the estuary `{project}/{estuary_id}` to `source_key` when
/// both live in this database: [`source_info`], [`attach`] and
/// [`add_subscriber`] in one transaction. A missing source is `404` and
/// creates nothing.
pub fn subscribe(engine: &Engine, db: &impl SqlExecutor, request: &Subscribe<'_>, now_ms: i64) -> Result<Subscribed, ProtocolError> {
    db.transaction(|| {
        let source_type = source_info(engine, db, request.source_key, request.expected_type, now_ms)?;
        let subscribed = attach(engine, db, request, &source_type, now_ms)?;
        add_subscriber(db, request.source_key, &subscribed.estuary_key)?;
        Ok(subscribed)
    })
}

/// Source side, first step: the source's content type; `404` when it does
/// not exist, `409` when the subscriber expects another type.
pub fn source_info(
    engine: &Engine,
    db: &impl SqlExecutor,
    source_key: &str,
    expected_type: Option<&str>,
    now_ms: i64,
) -> Result<String, ProtocolError> {
    let source = engine.head(db, source_key, now_ms)?;
    if let Some(expected) = expected_type.map(str::trim).filter(|t| !t.is_empty()) {
        if !crate::content_type::matches(expected, &source.content_type) {
            return Err(ProtocolError::ContentTypeMismatch { stream: source.content_type });
        }
    }
    Ok(source.content_type)
}

/// Estuary side: creates the estuary stream (empty, with the source's
/// content type) when missing — an existing one must have that type
/// (`409`) — records the estuary and the source, and renews its lifetime.
pub fn attach(
    engine: &Engine,
    db: &impl SqlExecutor,
    request: &Subscribe<'_>,
    source_type: &str,
    now_ms: i64,
) -> Result<Subscribed, ProtocolError> {
    let Subscribe { project, estuary_id, source_key, ttl_ms, .. } = *request;
    db.transaction(|| {
        let estuary_key = format!("{project}/{estuary_id}");
        if estuary_key == source_key {
            return Err(ProtocolError::bad_request("an estuary cannot subscribe to itself"));
        }
        let existing = load(db, &estuary_key)?;
        match engine.head(db, &estuary_key, now_ms) {
            Ok(stream) if !crate::content_type::matches(&stream.content_type, source_type) => {
                return Err(ProtocolError::ContentTypeMismatch { stream: stream.content_type });
            }
            Ok(_) => {}
            Err(ProtocolError::NotFound) => {
                let create = CreateRequest {
                    key: estuary_key.clone(),
                    content_type: Some(source_type.to_owned()),
                    ..Default::default()
                };
                engine.create(db, create, now_ms)?;
            }
            Err(other) => return Err(other),
        }
        if existing.as_ref().is_some_and(|e| !e.sources.iter().any(|s| s == source_key))
            && existing.as_ref().map_or(0, |e| e.sources.len() as u64) >= SOURCES_PER_ESTUARY_MAX
        {
            return Err(ProtocolError::bad_request("the estuary has too many subscriptions"));
        }
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        db.execute(
            "INSERT INTO ds_estuaries (estuary_key, project, estuary_id, content_type, created_ms, expires_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (estuary_key) DO UPDATE SET expires_at_ms = excluded.expires_at_ms",
            &[
                estuary_key.as_str().into(),
                project.into(),
                estuary_id.into(),
                source_type.into(),
                now_ms.into(),
                expires_at_ms.into(),
            ],
        )?;
        db.execute(
            "INSERT OR IGNORE INTO ds_estuary_sources (estuary_key, source_key) VALUES (?1, ?2)",
            &[estuary_key.as_str().into(), source_key.into()],
        )?;
        Ok(Subscribed { estuary_key, expires_at_ms, is_new: existing.is_none() })
    })
}

/// Source side, last step: deliver the source's next publishes to the
/// estuary (from the next outbox entry on). Subscribing twice is harmless.
pub fn add_subscriber(db: &impl SqlExecutor, source_key: &str, estuary_key: &str) -> Result<(), ProtocolError> {
    db.transaction(|| {
        let already = db.query(
            "SELECT 1 FROM ds_subscriptions WHERE source_key = ?1 AND estuary_key = ?2",
            &[source_key.into(), estuary_key.into()],
        )?;
        if !already.is_empty() {
            return Ok(());
        }
        let subscribers = db
            .query("SELECT count(*) FROM ds_subscriptions WHERE source_key = ?1", &[source_key.into()])?
            .first()
            .map(|r| r.uint(0))
            .transpose()?
            .unwrap_or(0);
        if subscribers >= SUBSCRIBERS_PER_SOURCE_MAX {
            return Err(ProtocolError::bad_request("the source stream has too many subscribers"));
        }
        let base = next_outbox_seq(db, source_key)?;
        db.execute(
            "INSERT INTO ds_subscriptions (source_key, estuary_key, base_seq, next_seq) VALUES (?1, ?2, ?3, ?3)",
            &[source_key.into(), estuary_key.into(), base.into()],
        )?;
        Ok(())
    })
}

/// Source side: stop delivering to the estuary.
pub fn remove_subscriber(db: &impl SqlExecutor, source_key: &str, estuary_key: &str) -> Result<(), StorageError> {
    db.transaction(|| {
        db.execute(
            "DELETE FROM ds_subscriptions WHERE source_key = ?1 AND estuary_key = ?2",
            &[source_key.into(), estuary_key.into()],
        )?;
        collect_garbage(db, source_key)
    })
}

/// Estuary side: forget a source; `404` when the estuary does not exist.
pub fn detach(db: &impl SqlExecutor, estuary_key: &str, source_key: &str) -> Result<(), ProtocolError> {
    db.transaction(|| {
        if load(db, estuary_key)?.is_none() {
            return Err(ProtocolError::NotFound);
        }
        db.execute(
            "DELETE FROM ds_estuary_sources WHERE estuary_key = ?1 AND source_key = ?2",
            &[estuary_key.into(), source_key.into()],
        )?;
        Ok(())
    })
}

/// Ends one subscription when both sides live in this database; `404` when
/// the estuary does not exist.
pub fn unsubscribe(db: &impl SqlExecutor, estuary_key: &str, source_key: &str) -> Result<(), ProtocolError> {
    db.transaction(|| {
        detach(db, estuary_key, source_key)?;
        remove_subscriber(db, source_key, estuary_key)?;
        Ok(())
    })
}

/// The estuary and its sources, if it exists.
pub fn load(db: &impl SqlExecutor, estuary_key: &str) -> Result<Option<Estuary>, StorageError> {
    let rows = db.query(
        "SELECT project, estuary_id, content_type, expires_at_ms FROM ds_estuaries WHERE estuary_key = ?1",
        &[estuary_key.into()],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let sources = db
        .query(
            "SELECT source_key FROM ds_estuary_sources WHERE estuary_key = +?1 ORDER BY source_key",
            &[estuary_key.into()],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Estuary {
        estuary_key: estuary_key.to_owned(),
        project: row.text(0)?,
        estuary_id: row.text(1)?,
        content_type: row.text(2)?,
        expires_at_ms: row.int(3)?,
        sources,
    }))
}

/// Estuary side: deletes the estuary's record and its stream (a later
/// publish never recreates it). `404` when it does not exist. Returns the
/// cold segments to delete and the sources it was subscribed to (whose
/// subscriptions end with [`remove_subscriber`]; a source that is not told
/// prunes the subscription at its next delivery).
pub fn delete_estuary(
    engine: &Engine,
    db: &impl SqlExecutor,
    estuary_key: &str,
    now_ms: i64,
) -> Result<(Vec<String>, Vec<String>), ProtocolError> {
    db.transaction(|| {
        let Some(estuary) = load(db, estuary_key)? else { return Err(ProtocolError::NotFound) };
        db.execute("DELETE FROM ds_estuary_sources WHERE estuary_key = ?1", &[estuary_key.into()])?;
        db.execute("DELETE FROM ds_estuaries WHERE estuary_key = ?1", &[estuary_key.into()])?;
        let garbage = match engine.delete(db, estuary_key, now_ms) {
            Ok(outcome) => outcome.garbage,
            Err(ProtocolError::NotFound | ProtocolError::Gone) => Vec::new(),
            Err(other) => return Err(other),
        };
        Ok((garbage, estuary.sources))
    })
}

/// Deletes the estuary and its subscriptions when both sides live in this
/// database. Returns the cold segments to delete.
pub fn delete(engine: &Engine, db: &impl SqlExecutor, estuary_key: &str, now_ms: i64) -> Result<Vec<String>, ProtocolError> {
    db.transaction(|| {
        let (garbage, sources) = delete_estuary(engine, db, estuary_key, now_ms)?;
        db.execute("DELETE FROM ds_subscriptions WHERE estuary_key = ?1", &[estuary_key.into()])?;
        for source in &sources {
            collect_garbage(db, source)?;
        }
        Ok(garbage)
    })
}

/// The earliest estuary expiry, if any (for a host's alarm).
pub fn next_expiry_ms(db: &impl SqlExecutor) -> Result<Option<i64>, StorageError> {
    db.query("SELECT min(expires_at_ms) FROM ds_estuaries", &[])?.first().map(|r| r.opt_int(0)).transpose().map(Option::flatten)
}

/// Renews an estuary's lifetime to `ttl_ms` from now; `404` when it does not exist.
pub fn touch(db: &impl SqlExecutor, estuary_key: &str, ttl_ms: i64, now_ms: i64) -> Result<i64, ProtocolError> {
    let expires_at_ms = now_ms.saturating_add(ttl_ms);
    let changed = db.execute(
        "UPDATE ds_estuaries SET expires_at_ms = ?2 WHERE estuary_key = ?1",
        &[estuary_key.into(), expires_at_ms.into()],
    )?;
    if changed == 0 {
        return Err(ProtocolError::NotFound);
    }
    Ok(expires_at_ms)
}

/// Estuaries whose lifetime ran out (for the host's sweep).
pub fn expired(db: &impl SqlExecutor, now_ms: i64, limit: u64) -> Result<Vec<String>, StorageError> {
    db.query(
        "SELECT estuary_key FROM ds_estuaries WHERE expires_at_ms <= +?1 ORDER BY expires_at_ms LIMIT +?2",
        &[now_ms.into(), limit.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// One outbox entry owed to one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub source_key: String,
    pub estuary_key: String,
    pub outbox_seq: u64,
    /// The subscription's first outbox seq: the deliveries' `Producer-Epoch`.
    pub base_seq: u64,
    /// `Producer-Seq` of the delivery (0, 1, 2, … per subscription).
    pub producer_seq: u64,
    pub start: u64,
    pub end: u64,
}

impl Delivery {
    pub fn producer(&self) -> ProducerHeaders {
        ProducerHeaders { id: producer_id(&self.source_key), epoch: self.base_seq, seq: self.producer_seq }
    }
}

/// Sources with undelivered outbox entries.
pub fn sources_with_pending(db: &impl SqlExecutor, limit: u64) -> Result<Vec<String>, StorageError> {
    db.query("SELECT DISTINCT source_key FROM ds_outbox LIMIT +?1", &[limit.into()])?.iter().map(|r| r.text(0)).collect()
}

/// Up to `limit` deliveries owed by `source_key`, in outbox order per subscription.
pub fn pending(db: &impl SqlExecutor, source_key: &str, limit: u64) -> Result<Vec<Delivery>, StorageError> {
    db.query(
        "SELECT s.estuary_key, o.seq, s.base_seq, o.start_pos, o.end_pos \
         FROM ds_subscriptions s JOIN ds_outbox o ON o.source_key = s.source_key AND o.seq >= s.next_seq \
         WHERE s.source_key = +?1 ORDER BY o.seq, s.estuary_key LIMIT +?2",
        &[source_key.into(), limit.into()],
    )?
    .iter()
    .map(|r| {
        Ok(Delivery {
            source_key: source_key.to_owned(),
            estuary_key: r.text(0)?,
            outbox_seq: r.uint(1)?,
            base_seq: r.uint(2)?,
            producer_seq: r.uint(1)? - r.uint(2)?,
            start: r.uint(3)?,
            end: r.uint(4)?,
        })
    })
    .collect()
}

/// How many subscriptions `source_key` has.
pub fn subscriber_count(db: &impl SqlExecutor, source_key: &str) -> Result<u64, StorageError> {
    db.query("SELECT count(*) FROM ds_subscriptions WHERE source_key = ?1", &[source_key.into()])?
        .first()
        .map(|r| r.uint(0))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Estuaries of `source_key` that are owed at least one outbox entry and
/// whose circuit breaker lets a delivery through, in key order.
pub fn owed_estuaries(db: &impl SqlExecutor, source_key: &str, now_ms: i64, limit: u64) -> Result<Vec<String>, StorageError> {
    db.query(
        "SELECT s.estuary_key FROM ds_subscriptions s \
         WHERE s.source_key = +?1 \
           AND s.next_seq <= (SELECT max(seq) FROM ds_outbox o WHERE o.source_key = +?1) \
           AND (s.opened_at_ms IS NULL OR +?2 - s.opened_at_ms >= +?3) \
         ORDER BY s.estuary_key LIMIT +?4",
        &[source_key.into(), now_ms.into(), BREAKER_OPEN_MS.into(), limit.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Up to `limit` deliveries owed to one estuary by `source_key`, in outbox order.
pub fn pending_for(db: &impl SqlExecutor, source_key: &str, estuary_key: &str, limit: u64) -> Result<Vec<Delivery>, StorageError> {
    db.query(
        "SELECT o.seq, s.base_seq, o.start_pos, o.end_pos \
         FROM ds_subscriptions s JOIN ds_outbox o ON o.source_key = s.source_key AND o.seq >= s.next_seq \
         WHERE s.source_key = +?1 AND s.estuary_key = +?2 ORDER BY o.seq LIMIT +?3",
        &[source_key.into(), estuary_key.into(), limit.into()],
    )?
    .iter()
    .map(|r| {
        Ok(Delivery {
            source_key: source_key.to_owned(),
            estuary_key: estuary_key.to_owned(),
            outbox_seq: r.uint(0)?,
            base_seq: r.uint(1)?,
            producer_seq: r.uint(0)? - r.uint(1)?,
            start: r.uint(2)?,
            end: r.uint(3)?,
        })
    })
    .collect()
}

/// Records that `delivery` landed; outbox entries every subscriber has are
/// dropped by [`collect_garbage`]. A delivery of an earlier subscription of
/// the same estuary (another `base_seq`) changes nothing.
pub fn acknowledge(db: &impl SqlExecutor, delivery: &Delivery) -> Result<(), StorageError> {
    db.execute(
        "UPDATE ds_subscriptions SET next_seq = max(next_seq, ?3), failures = 0, opened_at_ms = NULL \
         WHERE source_key = ?1 AND estuary_key = ?2 AND base_seq = ?4",
        &[
            delivery.source_key.as_str().into(),
            delivery.estuary_key.as_str().into(),
            (delivery.outbox_seq + 1).into(),
            delivery.base_seq.into(),
        ],
    )?;
    Ok(())
}

/// Drops a subscription whose estuary stream is gone (deleted or expired).
pub fn prune(db: &impl SqlExecutor, delivery: &Delivery) -> Result<(), StorageError> {
    db.execute(
        "DELETE FROM ds_subscriptions WHERE source_key = ?1 AND estuary_key = ?2 AND base_seq = ?3",
        &[delivery.source_key.as_str().into(), delivery.estuary_key.as_str().into(), delivery.base_seq.into()],
    )?;
    Ok(())
}

/// Drops outbox entries every subscription of `source_key` has received.
pub fn collect_garbage(db: &impl SqlExecutor, source_key: &str) -> Result<(), StorageError> {
    db.execute(
        "DELETE FROM ds_outbox WHERE source_key = +?1 AND seq < coalesce(\
            (SELECT min(next_seq) FROM ds_subscriptions WHERE source_key = +?1), 9007199254740991)",
        &[source_key.into()],
    )?;
    Ok(())
}

/// What a local drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Estuary streams that received data (wake their readers).
    pub delivered_to: Vec<String>,
    /// Deliveries that landed.
    pub delivered: usize,
    /// Deliveries answered as duplicates (already there).
    pub duplicates: u64,
    /// Subscriptions dropped because their estuary stream is gone.
    pub pruned: u64,
    /// More entries remain.
    pub more: bool,
}

/// Delivers up to `limit` owed entries of `source_key` to estuary streams
/// in the same database, acknowledging each in the same transaction
/// (native host). `segment` resolves cold data of the source.
pub fn drain_local(
    engine: &Engine,
    db: &impl SqlExecutor,
    source_key: &str,
    limit: u64,
    now_ms: i64,
    segment: &mut dyn FnMut(&str) -> Result<Bytes, StorageError>,
) -> Result<Drained, ProtocolError> {
    db.transaction(|| {
        let deliveries = pending(db, source_key, limit)?;
        let mut out = Drained { more: deliveries.len() as u64 >= limit, ..Default::default() };
        let mut bodies: Vec<((u64, u64), (String, Bytes))> = Vec::new();
        for delivery in deliveries {
            let (content_type, body) = match bodies.iter().find(|(range, _)| *range == (delivery.start, delivery.end)) {
                Some((_, cached)) => cached.clone(),
                None => {
                    let read = engine.read_range(db, source_key, delivery.start, delivery.end, now_ms)?;
                    let body = render(&read, &mut *segment)?;
                    bodies.push(((delivery.start, delivery.end), (read.content_type.clone(), body.clone())));
                    (read.content_type, body)
                }
            };
            let append = AppendRequest {
                key: delivery.estuary_key.clone(),
                content_type: Some(content_type),
                body,
                close: false,
                stream_seq: None,
                producer: Some(delivery.producer()),
            };
            match engine.append(db, append, now_ms) {
                Ok(outcome) => {
                    if outcome.status == AppendStatus::Duplicate {
                        out.duplicates += 1;
                    } else {
                        out.delivered += 1;
                        if !out.delivered_to.contains(&delivery.estuary_key) {
                            out.delivered_to.push(delivery.estuary_key.clone());
                        }
                    }
                    acknowledge(db, &delivery)?;
                }
                Err(ProtocolError::NotFound | ProtocolError::Gone | ProtocolError::StreamClosed { .. }) => {
                    prune(db, &delivery)?;
                    out.pruned += 1;
                }
                Err(other) => return Err(other),
            }
        }
        collect_garbage(db, source_key)?;
        Ok(out)
    })
}

fn render(read: &ReadOutcome, segment: &mut dyn FnMut(&str) -> Result<Bytes, StorageError>) -> Result<Bytes, StorageError> {
    read.body_with(segment)
}
