//! Registry events on Workers: a stream object records each creation and
//! deletion in its registry outbox (the engine does, in the same
//! transaction) and moves the events to the project's registry object
//! (`{project}/__registry__`) as idempotent-producer appends:
//! `Producer-Id: registry:{object id}`, `Producer-Epoch` = when this
//! object's storage first sent an event (a wiped and recreated object starts
//! a newer epoch), `Producer-Seq` = the event's number within its project
//! (dense from 0 per project: an object whose fork family spans projects
//! sends to several registries, each seeing 0, 1, 2, …). An event is
//! forgotten only after its append was answered; a lost answer means the
//! retry is answered as a duplicate. The alarm retries a failed move.

use bytes::Bytes;
use durable_streams_api::operations::{AppendStreamRequest, CreateStreamRequest};
use durable_streams_api::StreamPath;
use durable_streams_engine::registry::{self, Event};
use durable_streams_engine::storage::SqlExecutor;
use durable_streams_engine::ProtocolError;
use worker::Env;

use crate::stream_do::{now_ms, DoHost};
use crate::estuaries::storage;
use crate::{bridge, INTERNAL_BASE};

/// Events moved per round.
const EVENTS_PER_ROUND: u64 = 64;
/// Rounds per run (more waits for the next run or the alarm).
const ROUNDS_MAX: usize = 16;


/// Where the epoch is stored. (Not `registry:epoch`: objects that sent
/// events numbered per database under that epoch renumber them per project,
/// so they start a newer epoch.)
const EPOCH_COUNTER: &str = "registry:project-epoch";

/// The epoch of this object's registry producer, fixed at first use (an
/// epoch that was not stored is never sent: the next run would start
/// another one in the middle of the numbering).
fn epoch(host: &DoHost) -> Result<u64, ProtocolError> {
    let stored = host.counter(EPOCH_COUNTER);
    if stored > 0 {
        return Ok(stored);
    }
    host.sql().execute(
        "INSERT INTO ds_object_counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        &[EPOCH_COUNTER.into(), (now_ms().max(1) as u64).into()],
    )?;
    match host.counter(EPOCH_COUNTER) {
        0 => Err(storage("the registry producer's epoch was not stored")),
        epoch => Ok(epoch),
    }
}

async fn send(env: &Env, object: &str, request: http::Request<Bytes>) -> Result<u16, ProtocolError> {
    Ok(bridge::call_object(env, object, request).await.map_err(storage)?.status_code())
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
        producer_seq: Some(event.project_seq),
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
    let epoch = epoch(host)?;
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
