//! Queued fan-out: sources with more than `FANOUT_INLINE_MAX` (200)
//! subscribers hand their deliveries to `FANOUT_QUEUE` instead of sending
//! them from the source object.
//!
//! * The source object enqueues **drain jobs**: a job names the source and
//!   up to [`ESTUARIES_PER_JOB`] estuaries owed something. It carries no
//!   data and no positions — the consumer asks the source what those
//!   estuaries are owed *when it runs*, delivers it in outbox order per
//!   estuary and reports back. Two jobs for the same estuary (a re-enqueue,
//!   a queue redelivery) therefore never deliver out of order, and every
//!   delivery is the same idempotent-producer append as inline fan-out, so
//!   one that lands twice is answered as a duplicate.
//! * The consumer (`#[event(queue)]`, [`consume`]) acknowledges a job when
//!   every estuary it names got what it was owed (or was pruned: 404, 409,
//!   410) and retries it otherwise; after the queue's `max_retries` it goes
//!   to the dead-letter queue, whose consumer records it at the source and
//!   drops it. Nothing is lost either way: the outbox keeps every entry
//!   until each subscription acknowledged it, and the source's alarm
//!   re-enqueues what is still owed ([`recheck_at`]).

use std::cell::Cell;
use std::collections::HashMap;

use bytes::Bytes;
use durable_streams_engine::estuary::{self, Delivery};
use durable_streams_engine::storage::SqlExecutor;
use durable_streams_engine::ProtocolError;
use serde::{Deserialize, Serialize};
use worker::{Env, MessageBatch, MessageExt, Response};

use crate::analytics::{self, Category};
use crate::stream_do::{now_ms, DoHost, Timing};
use crate::estuaries::{self, storage, Delivered};

/// The queue binding of drain jobs.
pub const QUEUE_BINDING: &str = "FANOUT_QUEUE";
/// Subscribers up to which a source delivers inline (`FANOUT_INLINE_MAX`).
pub const INLINE_MAX_DEFAULT: u64 = 200;
/// Estuaries named by one drain job.
pub const ESTUARIES_PER_JOB: usize = 50;
/// Jobs per `sendBatch` call (the platform's limit is 100 messages).
const JOBS_PER_SEND: usize = 100;
/// Deliveries one job sends per estuary and round.
const DELIVERIES_PER_ESTUARY: u64 = 64;
/// Rounds one job runs before it yields to the queue (retry).
const ROUNDS_PER_JOB: usize = 8;
/// Estuaries one job delivers to at once.
const JOB_CONCURRENCY: usize = 16;
/// When the source re-enqueues what is still owed (`FANOUT_RECHECK_MS`).
pub const RECHECK_MS_DEFAULT: i64 = 30_000;
/// The dead-letter queue's name (`FANOUT_DEAD_LETTER_QUEUE`).
const DEAD_LETTER_QUEUE_DEFAULT: &str = "durable-streams-fanout-dlq";

/// One drain job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub source_key: String,
    pub estuaries: Vec<String>,
}

/// A delivery as the source hands it to the consumer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireDelivery {
    estuary_key: String,
    outbox_seq: u64,
    base_seq: u64,
    producer_seq: u64,
    start: u64,
    end: u64,
}

impl WireDelivery {
    fn from_delivery(d: &Delivery) -> WireDelivery {
        WireDelivery {
            estuary_key: d.estuary_key.clone(),
            outbox_seq: d.outbox_seq,
            base_seq: d.base_seq,
            producer_seq: d.producer_seq,
            start: d.start,
            end: d.end,
        }
    }

    fn into_delivery(self, source_key: &str) -> Delivery {
        Delivery {
            source_key: source_key.to_owned(),
            estuary_key: self.estuary_key,
            outbox_seq: self.outbox_seq,
            base_seq: self.base_seq,
            producer_seq: self.producer_seq,
            start: self.start,
            end: self.end,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Owed {
    deliveries: Vec<WireDelivery>,
    /// Estuaries owed something but held back by an open circuit breaker.
    held: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ReadRange {
    source_key: String,
    start: u64,
    end: u64,
}

/// What a job did, reported to the source.
#[derive(Serialize, Deserialize, Default)]
struct Report {
    source_key: String,
    delivered: Vec<WireDelivery>,
    pruned: Vec<WireDelivery>,
    failed: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Reported {
    /// The job's estuaries are still owed something.
    more: bool,
}

/// How the source settles its outbox for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Subscribers are few (or no queue is bound): deliver inline.
    Inline,
    /// Jobs were enqueued for every owed estuary.
    Queued,
}

/// Source side: enqueues drain jobs when the source has more subscribers
/// than the inline limit and the queue is bound.
pub async fn hand_off(host: &DoHost, env: &Env, source_key: &str) -> Result<Handoff, ProtocolError> {
    let inline_max = crate::var_ms(env, "FANOUT_INLINE_MAX", INLINE_MAX_DEFAULT);
    let Ok(queue) = env.queue(QUEUE_BINDING) else { return Ok(Handoff::Inline) };
    if estuary::subscriber_count(host.sql(), source_key)? <= inline_max {
        return Ok(Handoff::Inline);
    }
    let owed = estuary::owed_estuaries(host.sql(), source_key, now_ms(), estuary::SUBSCRIBERS_PER_SOURCE_MAX)?;
    let jobs: Vec<Job> = owed
        .chunks(ESTUARIES_PER_JOB)
        .map(|chunk| Job { source_key: source_key.to_owned(), estuaries: chunk.to_vec() })
        .collect();
    analytics::write(env, Category::Fanout, &["queued", source_key], &[owed.len() as f64, 0.0, 0.0, jobs.len() as f64]);
    for batch in jobs.chunks(JOBS_PER_SEND) {
        queue.send_batch(batch.to_vec()).await.map_err(storage)?;
        host.count("fanout:queued-jobs", batch.len() as u64);
    }
    Ok(Handoff::Queued)
}

/// When the source re-enqueues deliveries still owed after a hand-off.
pub fn recheck_at(env: &Env) -> i64 {
    now_ms() + crate::var_ms(env, "FANOUT_RECHECK_MS", RECHECK_MS_DEFAULT as u64) as i64
}

/// The key a forwarded internal fan-out request is about (for fork aliases).
pub fn internal_key(op: &str, body: &[u8]) -> Option<String> {
    match op {
        "fanout-owed" | "fanout-dead-letter" => serde_json::from_slice::<Job>(body).ok().map(|j| j.source_key),
        "fanout-read" => serde_json::from_slice::<ReadRange>(body).ok().map(|r| r.source_key),
        "fanout-report" => serde_json::from_slice::<Report>(body).ok().map(|r| r.source_key),
        _ => None,
    }
}

/// Source side: the internal operations the consumer calls. `None` when
/// `op` is not one of them.
pub async fn handle_internal(host: &DoHost, op: &str, body: &[u8]) -> Option<worker::Result<Response>> {
    let parse_error = |e: serde_json::Error| ProtocolError::bad_request(format!("internal fan-out request: {e}"));
    let result: Result<worker::Result<Response>, ProtocolError> = match op {
        "fanout-owed" => (|| {
            let job: Job = serde_json::from_slice(body).map_err(parse_error)?;
            let now = now_ms();
            let (mut deliveries, mut held) = (Vec::new(), Vec::new());
            for estuary_key in job.estuaries.iter().take(ESTUARIES_PER_JOB) {
                let owed = estuary::pending_for(host.sql(), &job.source_key, estuary_key, DELIVERIES_PER_ESTUARY)?;
                if owed.is_empty() {
                    continue;
                }
                if !estuary::breaker_allows(host.sql(), &job.source_key, estuary_key, now)? {
                    held.push(estuary_key.clone());
                    continue;
                }
                deliveries.extend(owed.iter().map(WireDelivery::from_delivery));
            }
            Ok(Response::from_json(&Owed { deliveries, held }))
        })(),
        "fanout-read" => match serde_json::from_slice::<ReadRange>(body).map_err(parse_error) {
            Ok(range) => {
                let timing = Cell::new(Timing::default());
                match host.read_range(&range.source_key, range.start, range.end, &timing).await {
                    Ok((content_type, data)) => Ok(Response::from_bytes(data.to_vec()).and_then(|mut r| {
                        r.headers_mut().set("content-type", &content_type)?;
                        Ok(r)
                    })),
                    Err(error) => Err(error),
                }
            }
            Err(error) => Err(error),
        },
        "fanout-report" => (|| {
            let report: Report = serde_json::from_slice(body).map_err(parse_error)?;
            let now = now_ms();
            let db = host.sql();
            db.transaction(|| {
                for d in report.delivered.iter().cloned() {
                    estuary::acknowledge(db, &d.into_delivery(&report.source_key))?;
                }
                for d in report.pruned.iter().cloned() {
                    estuary::prune(db, &d.into_delivery(&report.source_key))?;
                }
                for estuary_key in &report.failed {
                    estuary::breaker_failure(db, &report.source_key, estuary_key, now)?;
                }
                estuary::collect_garbage(db, &report.source_key)
            })?;
            let mut more = false;
            let touched = report.delivered.iter().map(|d| &d.estuary_key);
            for estuary_key in touched {
                if !estuary::pending_for(db, &report.source_key, estuary_key, 1)?.is_empty() {
                    more = true;
                    break;
                }
            }
            Ok(Response::from_json(&Reported { more }))
        })(),
        "fanout-dead-letter" => (|| {
            let job: Job = serde_json::from_slice(body).map_err(parse_error)?;
            worker::console_warn!(
                "fan-out job for {} ({} estuaries) dead-lettered; the alarm re-enqueues what is still owed",
                job.source_key,
                job.estuaries.len()
            );
            host.count("fanout:dead-letters", 1);
            analytics::write(host.env(), Category::Fanout, &["dead_letter", &job.source_key], &[0.0, job.estuaries.len() as f64, 0.0, 0.0]);
            Ok(Response::from_json(&serde_json::json!({})))
        })(),
        "fanout-stats" if host.test_hooks() => Ok(Response::from_json(&serde_json::json!({
            "inlineRounds": host.counter("fanout:inline-rounds"),
            "queuedJobs": host.counter("fanout:queued-jobs"),
            "deadLetters": host.counter("fanout:dead-letters"),
        }))),
        _ => return None,
    };
    Some(match result {
        Ok(response) => response,
        Err(error) => estuaries::error_response(&error),
    })
}

/// Consumer side: runs one job. `Ok(true)` when every estuary it names got
/// what it was owed.
pub async fn run_job(env: &Env, job: &Job) -> Result<bool, ProtocolError> {
    use futures::StreamExt;
    for _ in 0..ROUNDS_PER_JOB {
        let started = now_ms();
        let owed: Owed = estuaries::call_internal(env, &job.source_key, "fanout-owed", job).await?;
        if owed.deliveries.is_empty() {
            // Estuaries behind an open breaker keep the job unfinished: it is
            // retried, then dead-lettered.
            return Ok(owed.held.is_empty());
        }
        // The data of each distinct range, read once.
        let mut bodies: HashMap<(u64, u64), (String, Bytes)> = HashMap::new();
        for d in &owed.deliveries {
            if bodies.contains_key(&(d.start, d.end)) {
                continue;
            }
            let range = ReadRange { source_key: job.source_key.clone(), start: d.start, end: d.end };
            let body = Bytes::from(serde_json::to_vec(&range).map_err(storage)?);
            let response = estuaries::call_internal_raw(env, &job.source_key, "fanout-read", body).await?;
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            bodies.insert((d.start, d.end), (content_type, response.into_body()));
        }
        // Per estuary, in outbox order.
        let mut per_estuary: Vec<(String, Vec<WireDelivery>)> = Vec::new();
        for d in owed.deliveries {
            match per_estuary.iter_mut().find(|(k, _)| *k == d.estuary_key) {
                Some((_, list)) => list.push(d),
                None => per_estuary.push((d.estuary_key.clone(), vec![d])),
            }
        }
        let bodies = &bodies;
        let outcomes: Vec<Report> = futures::stream::iter(per_estuary.into_iter().map(|(estuary_key, list)| async move {
            let mut report = Report::default();
            for d in list {
                let Some((content_type, body)) = bodies.get(&(d.start, d.end)) else {
                    report.failed.push(estuary_key.clone());
                    break;
                };
                let delivery = d.clone().into_delivery(&job.source_key);
                match estuaries::send_delivery(env, &delivery, content_type.clone(), body.clone()).await {
                    Delivered::Landed => report.delivered.push(d),
                    Delivered::Gone => {
                        report.pruned.push(d);
                        break;
                    }
                    Delivered::Failed => {
                        report.failed.push(estuary_key.clone());
                        break;
                    }
                }
            }
            report
        }))
        .buffer_unordered(JOB_CONCURRENCY)
        .collect()
        .await;
        let mut report = Report { source_key: job.source_key.clone(), ..Default::default() };
        for r in outcomes {
            report.delivered.extend(r.delivered);
            report.pruned.extend(r.pruned);
            report.failed.extend(r.failed);
        }
        let failed = !report.failed.is_empty() || !owed.held.is_empty();
        analytics::write(
            env,
            Category::Fanout,
            &["job", &job.source_key],
            &[report.delivered.len() as f64, report.failed.len() as f64, report.pruned.len() as f64, (now_ms() - started) as f64],
        );
        let reported: Reported = estuaries::call_internal(env, &job.source_key, "fanout-report", &report).await?;
        if failed {
            return Ok(false);
        }
        if !reported.more {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The queue consumer: drain jobs from `FANOUT_QUEUE`, dead letters from
/// the dead-letter queue. Never fails the batch (a failure there would
/// reset the isolate): each message is acknowledged or retried on its own.
pub async fn consume(batch: MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    let dead_letters = env
        .var("FANOUT_DEAD_LETTER_QUEUE")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| DEAD_LETTER_QUEUE_DEFAULT.to_owned());
    let is_dead_letter_queue = batch.queue() == dead_letters;
    let env = &env;
    let runs = batch.raw_iter().map(|message| async move {
        let Ok(job) = parse_job(&message.body()) else {
            worker::console_warn!("dropping a malformed fan-out job");
            message.ack();
            return;
        };
        if is_dead_letter_queue {
            // Recorded at the source; the outbox still holds the entries.
            let recorded = estuaries::call_internal::<_, serde_json::Value>(env, &job.source_key, "fanout-dead-letter", &job).await;
            if recorded.is_ok() {
                message.ack();
            } else {
                message.retry();
            }
            return;
        }
        match run_job(env, &job).await {
            Ok(true) => message.ack(),
            Ok(false) => message.retry(),
            Err(error) => {
                worker::console_warn!("fan-out job for {} failed: {error}", job.source_key);
                message.retry();
            }
        }
    });
    futures::future::join_all(runs).await;
    Ok(())
}

fn parse_job(value: &worker::wasm_bindgen::JsValue) -> Result<Job, ()> {
    let json = worker::js_sys::JSON::stringify(value).map_err(|_| ())?;
    let json: String = json.into();
    let job: Job = serde_json::from_str(&json).map_err(|_| ())?;
    if job.estuaries.len() > ESTUARIES_PER_JOB {
        return Err(());
    }
    Ok(job)
}
