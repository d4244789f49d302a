//! Estuaries on Workers.
//!
//! * A **source** stream's object keeps the subscriptions and the outbox
//!   (the engine writes an outbox entry in the same transaction as every
//!   published append). After a publish the object drains it: each delivery
//!   is an idempotent-producer append sent to the estuary's object, then
//!   acknowledged; a delivery that failed is retried by the object's alarm.
//! * An **estuary**'s own stream object (`{project}/{estuaryId}`) keeps the
//!   estuary record (its sources and lifetime) next to the estuary stream;
//!   its alarm deletes the estuary when the lifetime runs out.
//! * The edge runs the estuary API (the shared service's rules) over
//!   [`EdgeEstuaries`], which calls the objects over a small internal JSON
//!   envelope (`/_ds/estuary/{operation}`).

use std::cell::Cell;

use bytes::Bytes;
use durable_streams_api::{Problem, StreamPath};
use durable_streams_engine::estuary::{self, Delivery, Estuary, Subscribe, Subscribed};
use durable_streams_engine::{ProtocolError, StorageError};
use durable_streams_service::estuaries::EstuaryHost;
use serde::{Deserialize, Serialize};
use worker::{Env, Response};

use crate::analytics::{self, Category};
use crate::stream_do::{now_ms, DoHost, Timing};
use crate::{bridge, INTERNAL_BASE};

/// Path prefix of the internal estuary operations (never routed from outside:
/// the edge only forwards requests it built itself).
pub const INTERNAL_PREFIX: &str = "/_ds/estuary/";
/// Deliveries sent per drain round.
const DELIVERIES_PER_ROUND: u64 = 512;
/// Estuaries delivered to at once by one source object.
const DELIVERY_CONCURRENCY: usize = 32;
/// When a failed delivery is retried.
const RETRY_AFTER_MS: i64 = 5_000;

#[derive(Serialize, Deserialize)]
struct SourceInfo {
    source_key: String,
    expected_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ContentType {
    content_type: String,
}

#[derive(Serialize, Deserialize)]
struct Attach {
    project: String,
    estuary_id: String,
    source_key: String,
    source_type: String,
    ttl_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Link {
    source_key: String,
    estuary_key: String,
}

#[derive(Serialize, Deserialize)]
struct SubscribedBody {
    estuary_key: String,
    expires_at_ms: i64,
    is_new: bool,
}

#[derive(Serialize, Deserialize)]
struct EstuaryBody {
    estuary_key: String,
    project: String,
    estuary_id: String,
    content_type: String,
    expires_at_ms: i64,
    sources: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Touch {
    estuary_key: String,
    ttl_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Touched {
    expires_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct Key {
    estuary_key: String,
}

pub(crate) fn storage(e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Storage(StorageError::new(e.to_string()))
}

/// The edge's estuary host: the objects, over the internal envelope.
pub struct EdgeEstuaries {
    pub env: Env,
    pub ttl_ms: i64,
}

/// An internal operation's request (`POST /_ds/estuary/{op}`, JSON body).
pub(crate) fn internal_request(op: &str, body: Bytes) -> Result<http::Request<Bytes>, ProtocolError> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{INTERNAL_BASE}{INTERNAL_PREFIX}{op}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(storage)
}

/// Calls an internal operation of the object `object`; a non-2xx answer
/// becomes the error its problem says.
pub(crate) async fn call_internal_raw(env: &Env, object: &str, op: &str, body: Bytes) -> Result<http::Response<Bytes>, ProtocolError> {
    let response = bridge::call_object(env, object, internal_request(op, body)?).await.map_err(storage)?;
    let response = bridge::response_into_http(response).await.map_err(storage)?;
    if response.status().is_success() {
        return Ok(response);
    }
    let detail = serde_json::from_slice::<Problem>(response.body()).ok().and_then(|p| p.detail).unwrap_or_default();
    Err(match response.status().as_u16() {
        400 => ProtocolError::BadRequest(detail),
        404 => ProtocolError::NotFound,
        409 => ProtocolError::ConfigMismatch(detail),
        410 => ProtocolError::Gone,
        status => storage(format!("{op} answered {status}: {detail}")),
    })
}

/// [`call_internal_raw`] with JSON in and out.
pub(crate) async fn call_internal<B: Serialize, R: for<'de> Deserialize<'de>>(
    env: &Env,
    object: &str,
    op: &str,
    body: &B,
) -> Result<R, ProtocolError> {
    let json = serde_json::to_vec(body).map_err(storage)?;
    let response = call_internal_raw(env, object, op, Bytes::from(json)).await?;
    serde_json::from_slice(response.body()).map_err(storage)
}

impl EdgeEstuaries {
    async fn call<B: Serialize, R: for<'de> Deserialize<'de>>(&self, object: &str, op: &str, body: &B) -> Result<R, ProtocolError> {
        call_internal(&self.env, object, op, body).await
    }
}

#[async_trait::async_trait(?Send)]
impl EstuaryHost for EdgeEstuaries {
    async fn subscribe(
        &self,
        project: &str,
        estuary_id: &str,
        source_key: &str,
        expected_type: Option<String>,
    ) -> Result<Subscribed, ProtocolError> {
        // 1. The source exists (404 creates nothing) and has the expected type.
        let info: ContentType = self
            .call(source_key, "source-info", &SourceInfo { source_key: source_key.to_owned(), expected_type })
            .await?;
        // 2. The estuary stream and record, in the estuary's object.
        let estuary_key = format!("{project}/{estuary_id}");
        let attach = Attach {
            project: project.to_owned(),
            estuary_id: estuary_id.to_owned(),
            source_key: source_key.to_owned(),
            source_type: info.content_type,
            ttl_ms: self.ttl_ms,
        };
        let subscribed: SubscribedBody = self.call(&estuary_key, "attach", &attach).await?;
        // 3. Deliveries from the source's next publish on.
        let link = Link { source_key: source_key.to_owned(), estuary_key: estuary_key.clone() };
        let _: serde_json::Value = self.call(source_key, "add-subscriber", &link).await?;
        analytics::write(&self.env, Category::Subscription, &["subscribe", source_key, &estuary_key], &[1.0]);
        if subscribed.is_new {
            analytics::write(&self.env, Category::Estuary, &["created", &estuary_key], &[1.0]);
        }
        Ok(Subscribed { estuary_key, expires_at_ms: subscribed.expires_at_ms, is_new: subscribed.is_new })
    }

    async fn unsubscribe(&self, estuary_key: &str, source_key: &str) -> Result<(), ProtocolError> {
        let link = Link { source_key: source_key.to_owned(), estuary_key: estuary_key.to_owned() };
        let _: serde_json::Value = self.call(estuary_key, "detach", &link).await?;
        let _: serde_json::Value = self.call(source_key, "remove-subscriber", &link).await?;
        analytics::write(&self.env, Category::Subscription, &["unsubscribe", source_key, estuary_key], &[1.0]);
        Ok(())
    }

    async fn estuary(&self, estuary_key: &str) -> Result<Option<Estuary>, ProtocolError> {
        match self.call::<_, EstuaryBody>(estuary_key, "get", &Key { estuary_key: estuary_key.to_owned() }).await {
            Ok(e) => Ok(Some(Estuary {
                estuary_key: e.estuary_key,
                project: e.project,
                estuary_id: e.estuary_id,
                content_type: e.content_type,
                expires_at_ms: e.expires_at_ms,
                sources: e.sources,
            })),
            Err(ProtocolError::NotFound) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn touch_estuary(&self, estuary_key: &str) -> Result<i64, ProtocolError> {
        let body = Touch { estuary_key: estuary_key.to_owned(), ttl_ms: self.ttl_ms };
        let touched: Touched = self.call(estuary_key, "touch", &body).await?;
        Ok(touched.expires_at_ms)
    }

    async fn delete_estuary(&self, estuary_key: &str) -> Result<(), ProtocolError> {
        let sources: Vec<String> = self.call(estuary_key, "delete", &Key { estuary_key: estuary_key.to_owned() }).await?;
        analytics::write(&self.env, Category::Estuary, &["deleted", estuary_key], &[1.0]);
        for source_key in sources {
            // Best effort: a source not told prunes the subscription at its next delivery (404).
            let link = Link { source_key: source_key.clone(), estuary_key: estuary_key.to_owned() };
            let _ = self.call::<_, serde_json::Value>(&source_key, "remove-subscriber", &link).await;
        }
        Ok(())
    }
}

fn json_response<T: Serialize>(value: &T) -> worker::Result<Response> {
    Response::from_json(value)
}

pub(crate) fn error_response(error: &ProtocolError) -> worker::Result<Response> {
    let problem = durable_streams_service::problem(error);
    bridge::from_http(durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new()))
}

/// The key a forwarded internal request is about (for fork aliases).
pub fn internal_key(op: &str, body: &[u8]) -> Option<String> {
    match op {
        "source-info" => serde_json::from_slice::<SourceInfo>(body).ok().map(|b| b.source_key),
        "add-subscriber" | "remove-subscriber" => serde_json::from_slice::<Link>(body).ok().map(|b| b.source_key),
        _ => None,
    }
}

/// Serves one internal estuary operation in a stream object.
pub async fn handle_internal(host: &DoHost, op: &str, body: &[u8]) -> worker::Result<Response> {
    let engine = host.engine();
    let db = host.sql();
    let now = now_ms();
    let parse_error = |e: serde_json::Error| ProtocolError::bad_request(format!("internal estuary request: {e}"));
    let result: Result<worker::Result<Response>, ProtocolError> = (|| match op {
        "source-info" => {
            let req: SourceInfo = serde_json::from_slice(body).map_err(parse_error)?;
            let content_type = estuary::source_info(engine, db, &req.source_key, req.expected_type.as_deref(), now)?;
            Ok(json_response(&ContentType { content_type }))
        }
        "attach" => {
            let req: Attach = serde_json::from_slice(body).map_err(parse_error)?;
            let request = Subscribe {
                project: &req.project,
                estuary_id: &req.estuary_id,
                source_key: &req.source_key,
                expected_type: None,
                ttl_ms: req.ttl_ms,
            };
            let subscribed = estuary::attach(engine, db, &request, &req.source_type, now)?;
            host.forget_hot_tail(&subscribed.estuary_key);
            host.after_estuary_change(Some(subscribed.expires_at_ms));
            Ok(json_response(&SubscribedBody {
                estuary_key: subscribed.estuary_key,
                expires_at_ms: subscribed.expires_at_ms,
                is_new: subscribed.is_new,
            }))
        }
        "add-subscriber" => {
            let req: Link = serde_json::from_slice(body).map_err(parse_error)?;
            // The source must still exist.
            estuary::source_info(engine, db, &req.source_key, None, now)?;
            estuary::add_subscriber(db, &req.source_key, &req.estuary_key)?;
            Ok(json_response(&serde_json::json!({})))
        }
        "remove-subscriber" => {
            let req: Link = serde_json::from_slice(body).map_err(parse_error)?;
            estuary::remove_subscriber(db, &req.source_key, &req.estuary_key)?;
            Ok(json_response(&serde_json::json!({})))
        }
        "detach" => {
            let req: Link = serde_json::from_slice(body).map_err(parse_error)?;
            estuary::detach(db, &req.estuary_key, &req.source_key)?;
            Ok(json_response(&serde_json::json!({})))
        }
        "get" => {
            let req: Key = serde_json::from_slice(body).map_err(parse_error)?;
            let e = estuary::load(db, &req.estuary_key)?.ok_or(ProtocolError::NotFound)?;
            Ok(json_response(&EstuaryBody {
                estuary_key: e.estuary_key,
                project: e.project,
                estuary_id: e.estuary_id,
                content_type: e.content_type,
                expires_at_ms: e.expires_at_ms,
                sources: e.sources,
            }))
        }
        "touch" => {
            let req: Touch = serde_json::from_slice(body).map_err(parse_error)?;
            let expires_at_ms = estuary::touch(db, &req.estuary_key, req.ttl_ms, now)?;
            host.after_estuary_change(Some(expires_at_ms));
            Ok(json_response(&Touched { expires_at_ms }))
        }
        "test-reset" if host.test_hooks() => {
            host.reset_for_test();
            Ok(json_response(&serde_json::json!({"reset": true})))
        }
        "test-fail-appends" | "test-heal-appends" if host.test_hooks() => {
            host.fail_appends_for_test(op == "test-fail-appends")?;
            Ok(json_response(&serde_json::json!({"failing": op == "test-fail-appends"})))
        }
        "delete" => {
            let req: Key = serde_json::from_slice(body).map_err(parse_error)?;
            let (garbage, sources) = estuary::delete_estuary(engine, db, &req.estuary_key, now)?;
            host.after_estuary_delete(&req.estuary_key, garbage);
            Ok(json_response(&sources))
        }
        _ => Err(ProtocolError::NotFound),
    })();
    match result {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// One delivery: the source's data `[start, end)` appended to the estuary's
/// object as the subscription's producer.
async fn deliver(host: &DoHost, env: &Env, delivery: &Delivery) -> Delivered {
    let timing = Cell::new(Timing::default());
    match host.read_range(&delivery.source_key, delivery.start, delivery.end, &timing).await {
        Ok((content_type, body)) => send_delivery(env, delivery, content_type, body).await,
        Err(error) => {
            worker::console_warn!("reading a delivery for {} failed: {error}; will retry", delivery.estuary_key);
            Delivered::Failed
        }
    }
}

/// What an estuary's object made of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Appended, or had been (a duplicate is answered like a success): acknowledge it.
    Landed,
    /// The estuary stream is gone or can no longer take it (404, 409, 410): prune the subscription.
    Gone,
    /// Anything else: retry later (and count it against the circuit breaker).
    Failed,
}

/// Sends one delivery (its data read already) to the estuary's object as
/// the subscription's idempotent producer.
pub async fn send_delivery(env: &Env, delivery: &Delivery, content_type: String, body: Bytes) -> Delivered {
    match append_delivery(env, delivery, content_type, body).await {
        Ok(200 | 204) => Delivered::Landed,
        Ok(404 | 409 | 410) => Delivered::Gone,
        Ok(status) => {
            worker::console_warn!("estuary delivery to {} answered {status}; will retry", delivery.estuary_key);
            Delivered::Failed
        }
        Err(error) => {
            worker::console_warn!("estuary delivery to {} failed: {error}; will retry", delivery.estuary_key);
            Delivered::Failed
        }
    }
}

async fn append_delivery(env: &Env, delivery: &Delivery, content_type: String, body: Bytes) -> Result<u16, ProtocolError> {
    let stream = StreamPath::parse(&delivery.estuary_key).map_err(|p| ProtocolError::bad_request(p.detail.unwrap_or_default()))?;
    let producer = delivery.producer();
    let request = durable_streams_api::operations::AppendStreamRequest {
        stream,
        content_type: Some(content_type),
        stream_seq: None,
        stream_closed: false,
        producer_id: Some(producer.id),
        producer_epoch: Some(producer.epoch),
        producer_seq: Some(producer.seq),
        body,
    };
    let request = request.into_http(INTERNAL_BASE).map_err(storage)?;
    let response = bridge::call_object(env, &delivery.estuary_key, request).await.map_err(storage)?;
    Ok(response.status_code())
}

/// How a drain of a source's outbox ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Everything owed was delivered.
    Done,
    /// A delivery failed: the alarm retries ([`retry_at`]).
    Retry,
    /// Handed to `FANOUT_QUEUE`: the alarm re-enqueues what is still owed
    /// later ([`crate::fanout::recheck_at`]).
    Queued,
}

/// Drains the source's outbox: above the inline limit by handing it to
/// the queue; otherwise here, deliveries to different estuaries
/// concurrently (bounded), each estuary's in outbox order.
pub async fn drain(host: &DoHost, env: &Env, source_key: &str) -> Result<Drained, ProtocolError> {
    use futures::StreamExt;
    if crate::fanout::hand_off(host, env, source_key).await? == crate::fanout::Handoff::Queued {
        return Ok(Drained::Queued);
    }
    let generation = host.generation();
    loop {
        let deliveries = estuary::pending(host.sql(), source_key, DELIVERIES_PER_ROUND)?;
        if deliveries.is_empty() {
            return Ok(Drained::Done);
        }
        host.count("fanout:inline-rounds", 1);
        let (round_started, round_deliveries) = (now_ms(), deliveries.len());
        let more = deliveries.len() as u64 >= DELIVERIES_PER_ROUND;
        // Group by estuary, keeping outbox order within each.
        let mut per_estuary: Vec<(String, Vec<Delivery>)> = Vec::new();
        for d in deliveries {
            match per_estuary.iter_mut().find(|(k, _)| *k == d.estuary_key) {
                Some((_, list)) => list.push(d),
                None => per_estuary.push((d.estuary_key.clone(), vec![d])),
            }
        }
        let outcomes: Vec<bool> = futures::stream::iter(per_estuary.into_iter().map(|(estuary_key, list)| async move {
            // An open breaker: skip this estuary until it half-opens.
            if !estuary::breaker_allows(host.sql(), source_key, &estuary_key, now_ms()).unwrap_or(true) {
                return false;
            }
            for d in list {
                if host.generation() != generation {
                    return false; // the object was reset: stop as a crash would
                }
                match deliver(host, env, &d).await {
                    Delivered::Landed => {
                        if host.generation() != generation || estuary::acknowledge(host.sql(), &d).is_err() {
                            return false;
                        }
                    }
                    Delivered::Gone => {
                        let _ = estuary::prune(host.sql(), &d);
                        return true;
                    }
                    Delivered::Failed => {
                        let _ = estuary::breaker_failure(host.sql(), source_key, &d.estuary_key, now_ms());
                        return false;
                    }
                }
            }
            true
        }))
        .buffer_unordered(DELIVERY_CONCURRENCY)
        .collect()
        .await;
        estuary::collect_garbage(host.sql(), source_key)?;
        let failures = outcomes.iter().filter(|ok| !**ok).count();
        analytics::write(
            env,
            Category::Fanout,
            &["inline", source_key],
            &[round_deliveries as f64, failures as f64, 0.0, (now_ms() - round_started) as f64],
        );
        if outcomes.iter().any(|ok| !ok) {
            return Ok(Drained::Retry);
        }
        if !more {
            return Ok(Drained::Done);
        }
    }
}

/// When the alarm must look at a source's outbox again after a drain: never
/// when all was delivered, soon after a failure, later after a hand-off to
/// the queue.
pub fn next_attempt(done: &Result<Drained, ProtocolError>, env: &Env) -> Option<i64> {
    match done {
        Ok(Drained::Done) => None,
        Ok(Drained::Queued) => Some(crate::fanout::recheck_at(env)),
        Ok(Drained::Retry) | Err(_) => Some(retry_at()),
    }
}

/// When the alarm should retry failed deliveries.
pub fn retry_at() -> i64 {
    now_ms() + RETRY_AFTER_MS
}
