//! The seed system's session API (deprecated), as aliases over estuaries
//! and streams in the project `_default`: a session `{id}` is the estuary
//! `session:{id}` (its stream `/v1/stream/session:{id}`); publishing is an
//! append to the source. Written once over the public APIs, so every host
//! that serves streams and estuaries serves these too.

use durable_streams_api::operations::*;
use durable_streams_api::stream_path::DEFAULT_PROJECT;
use durable_streams_api::types::{PublishResponse, SubscribeRequest, TouchResponse, UnsubscribeRequest};
use durable_streams_api::{ApiError, EstuaryApi, Problem, RequestContext, StreamPath, StreamsApi};
use durable_streams_engine::ProtocolError;

use crate::estuaries::{valid_estuary_id, EstuaryHost};
use crate::{problem, undocumented};

fn session_estuary(session_id: &str) -> Result<String, Problem> {
    let id = format!("session:{session_id}");
    if valid_estuary_id(&id) {
        Ok(id)
    } else {
        Err(Problem::bad_request("sessionId must be one path segment of [A-Za-z0-9._~-]"))
    }
}

fn not_found() -> Problem {
    problem(&ProtocolError::NotFound)
}

/// `POST /v1/subscribe` → `subscribeEstuary`.
pub async fn subscribe<A: StreamsApi + EstuaryApi + ?Sized>(
    api: &A,
    ctx: &RequestContext,
    request: LegacySubscribeRequest,
) -> Result<LegacySubscribeResponse, ApiError> {
    let estuary_id = match session_estuary(&request.body.session_id) {
        Ok(id) => id,
        Err(problem) => return Ok(LegacySubscribeResponse::BadRequest(problem)),
    };
    let subscribe = SubscribeEstuaryRequest {
        project: DEFAULT_PROJECT.to_owned(),
        stream: request.body.stream_id,
        body: SubscribeRequest { estuary_id, content_type: request.body.content_type },
    };
    Ok(match api.subscribe_estuary(ctx, subscribe).await? {
        SubscribeEstuaryResponse::Ok(body) => LegacySubscribeResponse::Ok(body),
        SubscribeEstuaryResponse::BadRequest(p) | SubscribeEstuaryResponse::Conflict(p) => {
            LegacySubscribeResponse::BadRequest(Problem { status: 400, title: "Bad Request".to_owned(), ..p })
        }
        SubscribeEstuaryResponse::Unauthorized(p) | SubscribeEstuaryResponse::Forbidden(p) => {
            LegacySubscribeResponse::Unauthorized(p)
        }
        SubscribeEstuaryResponse::NotFound(p) => LegacySubscribeResponse::NotFound(p),
    })
}

/// `DELETE /v1/unsubscribe` → `unsubscribeEstuary`.
pub async fn unsubscribe<A: StreamsApi + EstuaryApi + ?Sized>(
    api: &A,
    ctx: &RequestContext,
    request: LegacyUnsubscribeRequest,
) -> Result<LegacyUnsubscribeResponse, ApiError> {
    let Ok(estuary_id) = session_estuary(&request.body.session_id) else {
        return Ok(LegacyUnsubscribeResponse::NotFound(not_found()));
    };
    let unsubscribe = UnsubscribeEstuaryRequest {
        project: DEFAULT_PROJECT.to_owned(),
        stream: request.body.stream_id,
        body: UnsubscribeRequest { estuary_id },
    };
    Ok(match api.unsubscribe_estuary(ctx, unsubscribe).await? {
        UnsubscribeEstuaryResponse::Ok(body) => LegacyUnsubscribeResponse::Ok(body),
        UnsubscribeEstuaryResponse::Unauthorized(p) | UnsubscribeEstuaryResponse::Forbidden(p) => {
            LegacyUnsubscribeResponse::Unauthorized(p)
        }
        UnsubscribeEstuaryResponse::NotFound(p) | UnsubscribeEstuaryResponse::BadRequest(p) => {
            LegacyUnsubscribeResponse::NotFound(Problem { status: 404, title: "Not Found".to_owned(), ..p })
        }
    })
}

/// `POST /v1/publish/{streamId}` → `appendStream` on `_default/{streamId}`.
pub async fn publish<A: StreamsApi + EstuaryApi + ?Sized>(
    api: &A,
    ctx: &RequestContext,
    request: LegacyPublishRequest,
) -> Result<LegacyPublishResponse, ApiError> {
    let stream = match StreamPath::parse(&request.stream_id) {
        Ok(path) if path.project() == DEFAULT_PROJECT => path,
        Ok(_) => match StreamPath::parse(&format!("{DEFAULT_PROJECT}/{}", request.stream_id)) {
            Ok(path) => path,
            Err(p) => return Ok(LegacyPublishResponse::BadRequest(p)),
        },
        Err(p) => return Ok(LegacyPublishResponse::BadRequest(p)),
    };
    let append = AppendStreamRequest {
        stream,
        content_type: request.content_type,
        stream_seq: None,
        stream_closed: false,
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        producer_seq: request.producer_seq,
        body: request.body,
    };
    let offset = match api.append_stream(ctx, append).await? {
        AppendStreamResponse::Ok(ok) => ok.stream_next_offset,
        AppendStreamResponse::NoContent(ok) => ok.stream_next_offset,
        AppendStreamResponse::NotFound(p) => return Ok(LegacyPublishResponse::NotFound(p)),
        AppendStreamResponse::Unauthorized(p) => return Ok(LegacyPublishResponse::Unauthorized(p)),
        AppendStreamResponse::BadRequest(p) => return Ok(LegacyPublishResponse::BadRequest(p)),
        other => {
            let status = other.status();
            return Ok(LegacyPublishResponse::BadRequest(Problem::bad_request(format!(
                "the append was refused with status {status}"
            ))));
        }
    };
    let offset = offset.unwrap_or_default();
    Ok(LegacyPublishResponse::Ok(LegacyPublishOk {
        stream_next_offset: Some(offset.clone()),
        body: PublishResponse { offset },
    }))
}

/// `GET /v1/session/{sessionId}` → `getEstuary`.
pub async fn get_session<A: StreamsApi + EstuaryApi + ?Sized>(
    api: &A,
    ctx: &RequestContext,
    request: LegacyGetSessionRequest,
) -> Result<LegacyGetSessionResponse, ApiError> {
    let Ok(estuary_id) = session_estuary(&request.session_id) else {
        return Ok(LegacyGetSessionResponse::NotFound(not_found()));
    };
    let get = GetEstuaryRequest { project: DEFAULT_PROJECT.to_owned(), estuary_id };
    Ok(match api.get_estuary(ctx, get).await? {
        GetEstuaryResponse::Ok(info) => LegacyGetSessionResponse::Ok(info),
        GetEstuaryResponse::Unauthorized(p) | GetEstuaryResponse::Forbidden(p) => LegacyGetSessionResponse::Unauthorized(p),
        GetEstuaryResponse::NotFound(p) => LegacyGetSessionResponse::NotFound(p),
    })
}

/// `POST /v1/session/{sessionId}/touch`: renews the session's lifetime.
pub async fn touch_session(
    host: &dyn EstuaryHost,
    request: LegacyTouchSessionRequest,
) -> Result<LegacyTouchSessionResponse, ApiError> {
    let Ok(estuary_id) = session_estuary(&request.session_id) else {
        return Ok(LegacyTouchSessionResponse::NotFound(not_found()));
    };
    match host.touch_estuary(&format!("{DEFAULT_PROJECT}/{estuary_id}")).await {
        Ok(expires_at_ms) => Ok(LegacyTouchSessionResponse::Ok(TouchResponse {
            session_id: request.session_id,
            expires_at: u64::try_from(expires_at_ms).unwrap_or(0),
        })),
        Err(error @ ProtocolError::NotFound) => Ok(LegacyTouchSessionResponse::NotFound(problem(&error))),
        Err(error) => Err(undocumented(&error)),
    }
}
