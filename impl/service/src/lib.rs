//! The streams API of the generated handler traits, implemented once over
//! the engine for every host. A host (the native server, a Durable Object)
//! implements [`StreamHost`]: running engine operations in its transactions,
//! waiting for wake-ups, producing SSE frames. [`StreamsService`] maps the
//! generated typed requests onto it and its outcomes and errors onto each
//! operation's documented responses. No HTTP parsing happens here: the
//! generated router already applied the spec's grammar.

// `ApiError` carries a problem body and headers by value, as the generated traits return it.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod estuaries;
pub mod forwarded;
pub mod legacy;
pub mod projects;

use bytes::Bytes;
use durable_streams_api::body::BodyStream;
use durable_streams_api::operations::*;
use durable_streams_api::types::Health;
use durable_streams_api::{
    ApiError, Body, ConfigApi, EstuaryApi, HealthApi, LegacyApi, Problem, RequestContext, StreamPath, StreamsApi,
    SubscriptionsApi,
};
use durable_streams_engine::producer::ProducerHeaders;
use durable_streams_engine::ttl::Expiry;
use durable_streams_engine::{
    etag, fork, sse, stream_seq, AppendOutcome, AppendRequest, AppendStatus, CreateOutcome, CreateRequest, CreateStatus, DeleteOutcome,
    HeadOutcome, Offset, ProtocolError, ReadFrom, ReadOutcome,
};

/// `Cache-Control` of catch-up chunks that do not reach the tail (immutable
/// ranges) of streams anyone may read: shared caches may keep them.
const CACHEABLE_CHUNK: &str = "public, max-age=60, stale-while-revalidate=300";
/// The same for streams that need credentials: only the caller's own cache.
const PRIVATE_CHUNK: &str = "private, max-age=60, stale-while-revalidate=300";

/// Whether an answer about a stream may be kept by shared caches: the
/// stream is public, or the host runs without authentication.
fn shareable(ctx: &RequestContext, public: bool) -> bool {
    public || (ctx.principal.is_none() && !ctx.anonymous)
}

/// One catch-up chunk with its rendered body.
#[derive(Debug, Clone)]
pub struct ReadChunk {
    pub outcome: ReadOutcome,
    pub body: Bytes,
}

/// Result of a long-poll.
#[derive(Debug)]
pub enum LongPoll {
    /// Data, or the EOF of a closed stream (`outcome.closed` with no data).
    Ready(ReadChunk),
    /// Nothing arrived in time: 204 at `tail`.
    TimedOut { tail: Offset, closed: bool },
}

impl ReadChunk {
    /// A long-poll answers at once with this first read when it carries data
    /// (unless the reader asked for `offset=now`, which waits for new data) or
    /// when the stream is closed; otherwise it waits.
    pub fn ends_long_poll(&self, from: ReadFrom) -> bool {
        (self.outcome.has_data() && !matches!(from, ReadFrom::Now)) || self.outcome.closed
    }

    /// The SSE bytes for this read: a data event immediately followed by its
    /// control event; with no data, a control event only when nothing was sent
    /// yet (the reader's first answer) or the stream closed.
    pub fn sse_frames(&self, base64: bool, cursor: String, sent_any: bool) -> Vec<u8> {
        let o = &self.outcome;
        let mut out = Vec::new();
        if o.has_data() {
            out.extend(sse::data_event(&self.body, base64));
            out.extend(sse::control_event(&sse::Control::new(o.next_offset, Some(cursor), o.up_to_date, o.closed)));
        } else if !sent_any || o.closed {
            out.extend(sse::control_event(&sse::Control::new(o.next_offset, Some(cursor), true, o.closed)));
        }
        out
    }
}

/// The control event an idle SSE reader gets as a keep-alive.
pub fn sse_keepalive(position: Offset, cursor: String) -> Vec<u8> {
    sse::control_event(&sse::Control::new(position, Some(cursor), true, false))
}

/// A running SSE response: whether data is base64 and the framed events.
pub struct SseStream {
    pub base64: bool,
    pub events: BodyStream,
}

/// What a host provides: the engine's operations in the host's
/// transactions, plus waiting (long-poll) and SSE delivery.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait StreamHost: durable_streams_api::context::MaybeSendSync {
    async fn create(&self, request: CreateRequest) -> Result<CreateOutcome, ProtocolError>;
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, ProtocolError>;
    async fn delete(&self, key: String) -> Result<DeleteOutcome, ProtocolError>;
    async fn head(&self, key: String) -> Result<HeadOutcome, ProtocolError>;
    /// A catch-up read; renews a sliding TTL.
    async fn read(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError>;
    /// Data at `from` now, or wait up to the host's long-poll timeout.
    async fn long_poll(&self, key: &str, from: ReadFrom) -> Result<LongPoll, ProtocolError>;
    /// Start an SSE response; errors of the first read come back before any byte.
    async fn sse(&self, key: &str, from: ReadFrom, client_cursor: Option<String>) -> Result<SseStream, ProtocolError>;
    /// `Stream-Cursor` for a live response.
    fn cursor(&self, client: Option<&str>) -> String;
    /// The host's counters in the Prometheus text format, if it keeps any.
    fn metrics(&self) -> Option<String> {
        None
    }
}

/// The generated traits implemented over a [`StreamHost`] (and, for the
/// config API, a [`projects::ProjectStore`]).
pub struct StreamsService<H> {
    pub host: H,
    pub projects: Option<projects::Projects>,
    pub estuaries: Option<estuaries::Estuaries>,
}

impl<H> StreamsService<H> {
    pub fn new(host: H) -> Self {
        StreamsService { host, projects: None, estuaries: None }
    }

    /// Serves the estuary API from `estuaries`.
    pub fn with_estuaries(mut self, estuaries: estuaries::Estuaries) -> Self {
        self.estuaries = Some(estuaries);
        self
    }

    /// Serves the config API from `projects`.
    pub fn with_projects(mut self, projects: projects::Projects) -> Self {
        self.projects = Some(projects);
        self
    }
}

/// The problem body of a refused request.
pub fn problem(error: &ProtocolError) -> Problem {
    Problem {
        type_: "about:blank".to_owned(),
        title: error.title().to_owned(),
        status: error.status(),
        detail: Some(error.to_string()),
    }
}

/// A caller without credentials (`ctx.anonymous`) may read public streams
/// only; anything else is `401` — streams that do not exist included, so
/// their existence does not leak.
pub fn anonymous_may_read(ctx: &RequestContext, public: Option<bool>) -> Result<(), ApiError> {
    if !ctx.anonymous || public == Some(true) {
        return Ok(());
    }
    Err(durable_streams_auth::AuthError::from(durable_streams_auth::Refusal::MissingCredentials).into())
}

/// Errors no operation documents (storage failures) become `503`.
pub(crate) fn undocumented(error: &ProtocolError) -> ApiError {
    ApiError::from(problem(error))
}

/// `Stream-Forked-From` names the source by path (`/v1/stream/p/s`), by
/// absolute URL, or by name (`p/s`).
pub fn fork_source_key(value: &str) -> Result<String, ProtocolError> {
    let without_origin = match value.find("://") {
        Some(scheme_end) => {
            let rest = &value[scheme_end + 3..];
            rest.find('/').map_or("", |slash| &rest[slash..])
        }
        None => value,
    };
    let path = without_origin.split(['?', '#']).next().unwrap_or_default();
    let name = path.strip_prefix("/v1/stream/").unwrap_or(path.trim_start_matches('/'));
    let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    StreamPath::parse(&decoded)
        .map(|p| p.key())
        .map_err(|p| ProtocolError::bad_request(format!("invalid Stream-Forked-From: {}", p.detail.unwrap_or_default())))
}

fn read_from(offset: Option<&str>) -> Result<ReadFrom, ProtocolError> {
    offset.map(ReadFrom::parse).transpose().map(|from| from.unwrap_or(ReadFrom::Start))
}

fn catch_up_response(
    key: &str,
    from: ReadFrom,
    chunk: ReadChunk,
    if_none_match: Option<&str>,
    shared: bool,
) -> ReadStreamResponse {
    let o = &chunk.outcome;
    let at_now = matches!(from, ReadFrom::Now);
    let tag = (!at_now).then(|| etag::etag(key, o.start, o.next_offset, o.closed));
    if let (Some(tag), Some(header)) = (&tag, if_none_match) {
        if etag::if_none_match(header, tag) {
            return ReadStreamResponse::NotModified(ReadStreamNotModified {
                etag: Some(tag.clone()),
                cache_control: None,
            });
        }
    }
    let cache_control = if at_now {
        Some("no-store")
    } else if o.has_data() && !o.up_to_date {
        Some(if shared { CACHEABLE_CHUNK } else { PRIVATE_CHUNK })
    } else {
        None
    };
    ReadStreamResponse::Ok(ReadStreamOk {
        content_type: Some(o.content_type.clone()),
        stream_next_offset: Some(o.next_offset.to_string()),
        stream_up_to_date: o.up_to_date,
        stream_closed: o.closed,
        stream_cursor: None,
        etag: tag,
        cache_control: cache_control.map(str::to_owned),
        stream_sse_data_encoding: None,
        body: Body::Full(chunk.body),
    })
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<H: StreamHost> StreamsApi for StreamsService<H> {
    async fn create_stream(
        &self,
        ctx: &RequestContext,
        request: CreateStreamRequest,
    ) -> Result<CreateStreamResponse, ApiError> {
        let refuse = |error: ProtocolError| -> Result<CreateStreamResponse, ApiError> {
            Ok(match error {
                ProtocolError::BadRequest(_) => CreateStreamResponse::BadRequest(problem(&error)),
                ProtocolError::NotFound => CreateStreamResponse::NotFound(problem(&error)),
                ProtocolError::PayloadTooLarge { .. } => CreateStreamResponse::PayloadTooLarge(problem(&error)),
                ProtocolError::Storage(_) => return Err(undocumented(&error)),
                // Soft-deleted paths and sources, and every configuration clash, are conflicts.
                _ => CreateStreamResponse::Conflict(Problem { status: 409, ..problem(&error) }),
            })
        };
        let ttl = request.stream_ttl.map(|ttl| ttl.to_string());
        let expiry = match Expiry::from_headers(ttl.as_deref(), request.stream_expires_at.as_deref()) {
            Ok(expiry) => expiry,
            Err(error) => return refuse(error),
        };
        let source = match request.stream_forked_from.as_deref().map(fork_source_key).transpose() {
            Ok(source) => source,
            Err(error) => return refuse(error),
        };
        let sub_offset = request.stream_fork_sub_offset.map(|v| v.to_string());
        let fork = match fork::from_headers(source, request.stream_fork_offset.as_deref(), sub_offset.as_deref()) {
            Ok(fork) => fork,
            Err(error) => return refuse(error),
        };
        let create = CreateRequest {
            key: request.stream.key(),
            content_type: request.content_type,
            expiry,
            closed: request.stream_closed,
            fork,
            body: request.body,
            public: request.public,
            public_default: ctx.public_default,
        };
        let outcome = match self.host.create(create).await {
            Ok(outcome) => outcome,
            Err(error) => return refuse(error),
        };
        let next_offset = Some(outcome.next_offset.to_string());
        Ok(match outcome.status {
            CreateStatus::Created => CreateStreamResponse::Created(CreateStreamCreated {
                location: Some(format!("{}/v1/stream/{}", ctx.base_url, request.stream.to_url_path())),
                content_type: Some(outcome.content_type),
                stream_next_offset: next_offset,
                stream_closed: outcome.closed,
            }),
            CreateStatus::Exists => CreateStreamResponse::Ok(CreateStreamOk {
                content_type: Some(outcome.content_type),
                stream_next_offset: next_offset,
                stream_closed: outcome.closed,
            }),
        })
    }

    async fn append_stream(
        &self,
        _ctx: &RequestContext,
        request: AppendStreamRequest,
    ) -> Result<AppendStreamResponse, ApiError> {
        let refuse = |error: ProtocolError| -> Result<AppendStreamResponse, ApiError> {
            let body = problem(&error);
            Ok(match error {
                ProtocolError::BadRequest(_) => AppendStreamResponse::BadRequest(body),
                ProtocolError::NotFound => AppendStreamResponse::NotFound(body),
                ProtocolError::Gone => AppendStreamResponse::Gone(body),
                ProtocolError::PayloadTooLarge { .. } => AppendStreamResponse::PayloadTooLarge(body),
                ProtocolError::ProducerFenced { current_epoch } => {
                    AppendStreamResponse::Forbidden(AppendStreamForbidden { producer_epoch: Some(current_epoch), problem: body })
                }
                ProtocolError::StreamClosed { next_offset } => AppendStreamResponse::Conflict(AppendStreamConflict {
                    stream_closed: true,
                    stream_next_offset: Some(next_offset.to_string()),
                    problem: body,
                    ..Default::default()
                }),
                ProtocolError::ProducerSeqGap { expected, received } => {
                    AppendStreamResponse::Conflict(AppendStreamConflict {
                        producer_expected_seq: Some(expected),
                        producer_received_seq: Some(received),
                        problem: body,
                        ..Default::default()
                    })
                }
                ProtocolError::Storage(_) => return Err(undocumented(&error)),
                _ => AppendStreamResponse::Conflict(AppendStreamConflict { problem: body, ..Default::default() }),
            })
        };
        let epoch = request.producer_epoch.map(|v| v.to_string());
        let seq = request.producer_seq.map(|v| v.to_string());
        let producer = match ProducerHeaders::from_headers(request.producer_id.as_deref(), epoch.as_deref(), seq.as_deref()) {
            Ok(producer) => producer,
            Err(error) => return refuse(error),
        };
        let with_producer = producer.is_some();
        let append = AppendRequest {
            key: request.stream.key(),
            content_type: request.content_type,
            body: request.body,
            close: request.stream_closed,
            stream_seq: match request.stream_seq.as_deref().map(stream_seq::parse).transpose() {
                Ok(seq) => seq,
                Err(error) => return refuse(error),
            },
            producer,
        };
        let outcome = match self.host.append(append).await {
            Ok(outcome) => outcome,
            Err(error) => return refuse(error),
        };
        // 200 marks a new idempotent-producer batch; a close-only, a duplicate
        // and every append without producer headers answer 204.
        let new_batch = outcome.status == AppendStatus::Appended;
        let next_offset = Some(outcome.next_offset.to_string());
        let (producer_epoch, producer_seq) = match outcome.producer {
            Some(ack) => (Some(ack.epoch), Some(ack.seq)),
            None => (None, None),
        };
        Ok(if with_producer && new_batch {
            AppendStreamResponse::Ok(AppendStreamOk {
                stream_next_offset: next_offset,
                stream_closed: outcome.closed,
                producer_epoch,
                producer_seq,
            })
        } else {
            AppendStreamResponse::NoContent(AppendStreamNoContent {
                stream_next_offset: next_offset,
                stream_closed: outcome.closed,
                producer_epoch,
                producer_seq,
            })
        })
    }

    async fn read_stream(&self, ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        let refuse = |error: ProtocolError| -> Result<ReadStreamResponse, ApiError> {
            let body = problem(&error);
            Ok(match error {
                ProtocolError::BadRequest(_) => ReadStreamResponse::BadRequest(body),
                ProtocolError::NotFound => ReadStreamResponse::NotFound(body),
                ProtocolError::Gone => ReadStreamResponse::Gone(body),
                _ => return Err(undocumented(&error)),
            })
        };
        let key = request.stream.key();
        if ctx.anonymous {
            let public = self.host.head(key.clone()).await.ok().map(|h| h.public);
            anonymous_may_read(ctx, public)?;
        }
        if request.live.is_some() && request.offset.is_none() {
            return refuse(ProtocolError::bad_request("live reads require the `offset` query parameter"));
        }
        let from = match read_from(request.offset.as_deref()) {
            Ok(from) => from,
            Err(error) => return refuse(error),
        };
        match request.live {
            None => match self.host.read(&key, from).await {
                Ok(chunk) => {
                    let shared = shareable(ctx, chunk.outcome.public);
                    Ok(catch_up_response(&key, from, chunk, request.if_none_match.as_deref(), shared))
                }
                Err(error) => refuse(error),
            },
            Some(LiveMode::LongPoll) => {
                let cursor = self.host.cursor(request.cursor.as_deref());
                let cursor_value = cursor.parse::<u64>().ok();
                match self.host.long_poll(&key, from).await {
                    Ok(LongPoll::Ready(chunk)) if chunk.outcome.has_data() => {
                        let mut response =
                            catch_up_response(&key, ReadFrom::Start, chunk, request.if_none_match.as_deref(), false);
                        if let ReadStreamResponse::Ok(ok) = &mut response {
                            ok.stream_cursor = cursor_value;
                        }
                        Ok(response)
                    }
                    Ok(LongPoll::Ready(chunk)) => Ok(ReadStreamResponse::NoContent(ReadStreamNoContent {
                        stream_next_offset: Some(chunk.outcome.next_offset.to_string()),
                        stream_up_to_date: true,
                        stream_closed: chunk.outcome.closed,
                        stream_cursor: (!chunk.outcome.closed).then_some(cursor_value).flatten(),
                        cache_control: None,
                    })),
                    Ok(LongPoll::TimedOut { tail, closed }) => Ok(ReadStreamResponse::NoContent(ReadStreamNoContent {
                        stream_next_offset: Some(tail.to_string()),
                        stream_up_to_date: true,
                        stream_closed: closed,
                        stream_cursor: (!closed).then_some(cursor_value).flatten(),
                        cache_control: None,
                    })),
                    Err(error) => refuse(error),
                }
            }
            Some(LiveMode::Sse) => match self.host.sse(&key, from, request.cursor.clone()).await {
                Ok(sse) => {
                    Ok(ReadStreamResponse::Ok(ReadStreamOk {
                        content_type: Some("text/event-stream".to_owned()),
                        cache_control: Some("no-cache".to_owned()),
                        stream_sse_data_encoding: sse.base64.then(|| "base64".to_owned()),
                        body: Body::Stream(sse.events),
                        ..Default::default()
                    }))
                }
                Err(error) => refuse(error),
            },
        }
    }

    async fn head_stream(&self, ctx: &RequestContext, request: HeadStreamRequest) -> Result<HeadStreamResponse, ApiError> {
        let head = self.host.head(request.stream.key()).await;
        anonymous_may_read(ctx, head.as_ref().ok().map(|h| h.public))?;
        match head {
            Ok(head) => {
                let (stream_ttl, stream_expires_at) = match head.expiry {
                    Expiry::Never => (None, None),
                    Expiry::Ttl { seconds } => (Some(seconds), None),
                    Expiry::ExpiresAt { raw, .. } => (None, Some(raw)),
                };
                Ok(HeadStreamResponse::Ok(HeadStreamOk {
                    content_type: Some(head.content_type),
                    stream_next_offset: Some(head.next_offset.to_string()),
                    stream_ttl,
                    stream_expires_at,
                    stream_closed: head.closed,
                    cache_control: Some("no-store".to_owned()),
                }))
            }
            Err(ProtocolError::NotFound) => Ok(HeadStreamResponse::NotFound),
            Err(ProtocolError::Gone) => Ok(HeadStreamResponse::Gone),
            Err(error) => Err(undocumented(&error)),
        }
    }

    async fn delete_stream(
        &self,
        _ctx: &RequestContext,
        request: DeleteStreamRequest,
    ) -> Result<DeleteStreamResponse, ApiError> {
        match self.host.delete(request.stream.key()).await {
            Ok(_) => Ok(DeleteStreamResponse::NoContent),
            Err(error @ ProtocolError::NotFound) => Ok(DeleteStreamResponse::NotFound(problem(&error))),
            Err(error @ ProtocolError::Gone) => Ok(DeleteStreamResponse::Gone(problem(&error))),
            Err(error) => Err(undocumented(&error)),
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<H: StreamHost> HealthApi for StreamsService<H> {
    async fn get_health(&self, _ctx: &RequestContext, _request: GetHealthRequest) -> Result<GetHealthResponse, ApiError> {
        Ok(GetHealthResponse::Ok(Health { status: "ok".to_owned() }))
    }

    async fn get_metrics(&self, _ctx: &RequestContext, _request: GetMetricsRequest) -> Result<GetMetricsResponse, ApiError> {
        match self.host.metrics() {
            Some(text) => Ok(GetMetricsResponse::Ok(GetMetricsOk {
                content_type: Some("text/plain; version=0.0.4".to_owned()),
                body: Body::Full(Bytes::from(text)),
            })),
            None => Err(Problem::new(http::StatusCode::NOT_IMPLEMENTED, "this host reports metrics elsewhere").into()),
        }
    }
}

impl<H: StreamHost> SubscriptionsApi for StreamsService<H> {}
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<H: StreamHost> EstuaryApi for StreamsService<H> {
    async fn subscribe_estuary(
        &self,
        _ctx: &RequestContext,
        request: SubscribeEstuaryRequest,
    ) -> Result<SubscribeEstuaryResponse, ApiError> {
        estuaries::subscribe(self.estuary_host()?, request).await
    }

    async fn unsubscribe_estuary(
        &self,
        _ctx: &RequestContext,
        request: UnsubscribeEstuaryRequest,
    ) -> Result<UnsubscribeEstuaryResponse, ApiError> {
        estuaries::unsubscribe(self.estuary_host()?, request).await
    }

    async fn get_estuary(&self, _ctx: &RequestContext, request: GetEstuaryRequest) -> Result<GetEstuaryResponse, ApiError> {
        estuaries::get(self.estuary_host()?, request).await
    }

    async fn delete_estuary(
        &self,
        _ctx: &RequestContext,
        request: DeleteEstuaryRequest,
    ) -> Result<DeleteEstuaryResponse, ApiError> {
        estuaries::delete(self.estuary_host()?, request).await
    }
}

impl<H> StreamsService<H> {
    fn estuary_host(&self) -> Result<&dyn estuaries::EstuaryHost, ApiError> {
        self.estuaries
            .as_deref()
            .ok_or_else(|| Problem::new(http::StatusCode::NOT_IMPLEMENTED, "this host has no estuaries").into())
    }
}
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<H: StreamHost> LegacyApi for StreamsService<H> {
    async fn legacy_subscribe(&self, ctx: &RequestContext, request: LegacySubscribeRequest) -> Result<LegacySubscribeResponse, ApiError> {
        legacy::subscribe(self, ctx, request).await
    }

    async fn legacy_unsubscribe(
        &self,
        ctx: &RequestContext,
        request: LegacyUnsubscribeRequest,
    ) -> Result<LegacyUnsubscribeResponse, ApiError> {
        legacy::unsubscribe(self, ctx, request).await
    }

    async fn legacy_publish(&self, ctx: &RequestContext, request: LegacyPublishRequest) -> Result<LegacyPublishResponse, ApiError> {
        legacy::publish(self, ctx, request).await
    }

    async fn legacy_get_session(
        &self,
        ctx: &RequestContext,
        request: LegacyGetSessionRequest,
    ) -> Result<LegacyGetSessionResponse, ApiError> {
        legacy::get_session(self, ctx, request).await
    }

    async fn legacy_touch_session(
        &self,
        _ctx: &RequestContext,
        request: LegacyTouchSessionRequest,
    ) -> Result<LegacyTouchSessionResponse, ApiError> {
        legacy::touch_session(self.estuary_host()?, request).await
    }
}
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<H: StreamHost> ConfigApi for StreamsService<H> {
    async fn get_config(&self, _ctx: &RequestContext, request: GetConfigRequest) -> Result<GetConfigResponse, ApiError> {
        match &self.projects {
            Some(projects) => projects::get_config(projects.as_ref(), request).await,
            None => Err(Problem::new(http::StatusCode::NOT_IMPLEMENTED, "this host has no project store").into()),
        }
    }

    async fn put_config(&self, ctx: &RequestContext, request: PutConfigRequest) -> Result<PutConfigResponse, ApiError> {
        match &self.projects {
            Some(projects) => projects::put_config(projects.as_ref(), ctx, request).await,
            None => Err(Problem::new(http::StatusCode::NOT_IMPLEMENTED, "this host has no project store").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_sources_by_path_url_or_name() {
        assert_eq!(fork_source_key("/v1/stream/p/s").unwrap(), "p/s");
        assert_eq!(fork_source_key("http://127.0.0.1:1/v1/stream/solo").unwrap(), "_default/solo");
        assert_eq!(fork_source_key("p/s%2Fx").unwrap(), "p/s/x");
        assert_eq!(fork_source_key("solo").unwrap(), "_default/solo");
        assert!(fork_source_key("/v1/stream/a//b").is_err());
    }
}
