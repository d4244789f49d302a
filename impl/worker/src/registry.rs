//! Registry events on Workers: a stream object records each creation and
//! deletion in its registry outbox (the engine does, in the same
//! transaction) and moves the events to the project's registry object
//! (`{project}/__registry__`) as idempotent-producer appends:
//! `Producer-Id: registry:{object id}`, `Producer-Epoch` = when this
//! object's storage first sent an event (a wiped and recreated object starts
//! a newer epoch), `Producer-Seq` = the event's dense sequence − 1. An event
//! is forgotten only after its append was answered; a lost answer means the
//! retry is answered as a duplicate. The alarm retries a failed move.

use bytes::Bytes;
use durable_streams_api::operations::{AppendStreamRequest, CreateStreamRequest};
use durable_streams_api::StreamPath;
use durable_streams_engine::registry::{self, Event};
use durable_streams_engine::ProtocolError;
use worker::Env;

use crate::stream_do::{now_ms, DoHost};
use crate::{bridge, INTERNAL_BASE, STREAMS_BINDING};

/// Events moved per round.
const EVENTS_PER_ROUND: u64 = 64;
/// Rounds per run (more waits for the next run or the alarm).
const ROUNDS_MAX: usize = 16;

fn storage(e: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Storage(durable_streams_engine::StorageError::new(e.to_string()))
}

/// The epoch of this object's registry producer (fixed at first use).
fn epoch(host: &DoHost) -> u64 {
    match host.counter("registry:epoch") {
        0 => {
            let now = now_ms().max(1) as u64;
            host.count("registry:epoch", now);
            now
        }
        epoch => epoch,
    }
}

async fn send(env: &Env, object: &str, request: http::Request<Bytes>) -> Result<u16, ProtocolError> {
    let stub = env.durable_object(STREAMS_BINDING).map_err(storage)?.get_by_name(object).map_err(storage)?;
    let response = stub.fetch_with_request(bridge::request_from_http(request).map_err(storage)?).await.map_err(storage)?;
    Ok(response.status_code())
}

async fn append(env: &Env, producer: &str, epoch: u64, event: &Event) -> Result<u16, ProtocolError> {
    let key = registry::registry_key(&event.project);
    let stream = StreamPath::parse(&key).map_err(|p| storage(p.detail.unwrap_or_default()))?;
    let request = AppendStreamRequest {
        stream,
        content_type: Some(registry::CONTENT_TYPE.to_owned()),
        stream_seq: None,
        stream_closed: false,
        producer_id: Some(producer.to_owned()),
        producer_epoch: Some(epoch),
        producer_seq: Some(event.seq.saturating_sub(1)),
        body: Bytes::from(event.event.clone()),
    };
    send(env, &key, request.into_http(INTERNAL_BASE).map_err(storage)?).await
}

async fn create(env: &Env, project: &str) -> Result<u16, ProtocolError> {
    let key = registry::registry_key(project);
    let stream = StreamPath::parse(&key).map_err(|p| storage(p.detail.unwrap_or_default()))?;
    let request = CreateStreamRequest {
        stream,
        public: None,
        content_type: Some(registry::CONTENT_TYPE.to_owned()),
        stream_ttl: None,
        stream_expires_at: None,
        stream_closed: false,
        stream_forked_from: None,
        stream_fork_offset: None,
        stream_fork_sub_offset: None,
        body: Bytes::new(),
    };
    send(env, &key, request.into_http(INTERNAL_BASE).map_err(storage)?).await
}

/// Moves this object's pending registry events, in order. `Ok(true)` when
/// none is left.
pub async fn drain(host: &DoHost, env: &Env) -> Result<bool, ProtocolError> {
    let producer = format!("registry:{}", host.object_id());
    let epoch = epoch(host);
    for _ in 0..ROUNDS_MAX {
        let events = registry::pending(host.sql(), EVENTS_PER_ROUND)?;
        if events.is_empty() {
            return Ok(true);
        }
        for event in &events {
            let mut status = append(env, &producer, epoch, event).await?;
            if status == 404 {
                // The project's first event: its registry stream starts now.
                let created = create(env, &event.project).await?;
                if !matches!(created, 200 | 201) {
                    return Err(storage(format!("creating the registry stream answered {created}")));
                }
                status = append(env, &producer, epoch, event).await?;
            }
            if !matches!(status, 200 | 204) {
                return Err(storage(format!("a registry append answered {status}")));
            }
            registry::acknowledge(host.sql(), event.seq)?;
        }
    }
    Ok(registry::pending(host.sql(), 1)?.is_empty())
}
