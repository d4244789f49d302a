//! The estuary API (`/v1/estuary/...`) over an [`EstuaryHost`]: request
//! validation, the engine's outcomes mapped onto each operation's
//! documented answers. Where the estuary streams live and how fan-out is
//! drained is the host's business (see `durable_streams_engine::estuary`).

use std::sync::Arc;

use durable_streams_api::operations::*;
use durable_streams_api::types::{
    DeleteEstuaryResponse as Deleted, EstuaryInfo, EstuarySubscription, SubscribeResponse, UnsubscribeResponse,
};
use durable_streams_api::{ApiError, Problem, StreamPath};
use durable_streams_engine::estuary::{Estuary, Subscribed};
use durable_streams_engine::ProtocolError;

use crate::projects::valid_project_name;
use crate::{problem, undocumented};

/// What a host provides for estuaries.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait EstuaryHost: durable_streams_api::context::MaybeSendSync {
    async fn subscribe(
        &self,
        project: &str,
        estuary_id: &str,
        source_key: &str,
        expected_type: Option<String>,
    ) -> Result<Subscribed, ProtocolError>;
    async fn unsubscribe(&self, estuary_key: &str, source_key: &str) -> Result<(), ProtocolError>;
    async fn estuary(&self, estuary_key: &str) -> Result<Option<Estuary>, ProtocolError>;
    async fn delete_estuary(&self, estuary_key: &str) -> Result<(), ProtocolError>;
    /// Renews the estuary's lifetime; returns the new expiry (Unix ms).
    async fn touch_estuary(&self, estuary_key: &str) -> Result<i64, ProtocolError>;
}

/// A shared estuary host.
pub type Estuaries = Arc<dyn EstuaryHost>;

fn bad_request(detail: &str) -> Problem {
    Problem { type_: "about:blank".to_owned(), title: "Bad Request".to_owned(), status: 400, detail: Some(detail.to_owned()) }
}

/// An estuary id is one safe path segment: `[A-Za-z0-9._~:-]`, 1–128 bytes
/// (`:` for the legacy `session:{id}` estuaries).
/// The registry stream's name is reserved (an estuary is a stream it would write).
pub fn valid_estuary_id(id: &str) -> bool {
    let unprefixed = id.strip_prefix("session:").unwrap_or(id);
    valid_project_name(unprefixed) && id.len() <= 128 && id != durable_streams_engine::registry::REGISTRY_STREAM
}

/// The source stream's key, or why the path is not one.
fn source_key(project: &str, stream: &str) -> Result<String, Problem> {
    if !valid_project_name(project) {
        return Err(bad_request("invalid project name"));
    }
    StreamPath::parse(&format!("{project}/{stream}")).map(|p| p.key())
}

fn stream_path(estuary_key: &str) -> String {
    format!("/v1/stream/{estuary_key}")
}

/// The source's name within its project (`streamId` in answers).
fn stream_id(source_key: &str) -> String {
    source_key.split_once('/').map_or(source_key, |(_, name)| name).to_owned()
}

pub async fn subscribe(host: &dyn EstuaryHost, request: SubscribeEstuaryRequest) -> Result<SubscribeEstuaryResponse, ApiError> {
    let source = match source_key(&request.project, &request.stream) {
        Ok(source) => source,
        Err(problem) => return Ok(SubscribeEstuaryResponse::BadRequest(problem)),
    };
    let estuary_id = request.body.estuary_id;
    if !valid_estuary_id(&estuary_id) {
        return Ok(SubscribeEstuaryResponse::BadRequest(bad_request("estuaryId must be one path segment of [A-Za-z0-9._~-]")));
    }
    match host.subscribe(&request.project, &estuary_id, &source, request.body.content_type).await {
        Ok(subscribed) => Ok(SubscribeEstuaryResponse::Ok(SubscribeResponse {
            estuary_id,
            stream_id: stream_id(&source),
            estuary_stream_path: stream_path(&subscribed.estuary_key),
            expires_at: u64::try_from(subscribed.expires_at_ms).unwrap_or(0),
            is_new_estuary: subscribed.is_new,
        })),
        Err(error @ ProtocolError::NotFound) => Ok(SubscribeEstuaryResponse::NotFound(problem(&error))),
        Err(error @ (ProtocolError::ContentTypeMismatch { .. } | ProtocolError::ConfigMismatch(_) | ProtocolError::Gone)) => {
            Ok(SubscribeEstuaryResponse::Conflict(Problem { status: 409, title: "Conflict".to_owned(), ..problem(&error) }))
        }
        Err(error @ ProtocolError::BadRequest(_)) => Ok(SubscribeEstuaryResponse::BadRequest(problem(&error))),
        Err(error) => Err(undocumented(&error)),
    }
}

pub async fn unsubscribe(
    host: &dyn EstuaryHost,
    request: UnsubscribeEstuaryRequest,
) -> Result<UnsubscribeEstuaryResponse, ApiError> {
    let source = match source_key(&request.project, &request.stream) {
        Ok(source) => source,
        Err(problem) => return Ok(UnsubscribeEstuaryResponse::BadRequest(problem)),
    };
    let estuary_id = request.body.estuary_id;
    if !valid_estuary_id(&estuary_id) {
        return Ok(UnsubscribeEstuaryResponse::BadRequest(bad_request("invalid estuaryId")));
    }
    let estuary_key = format!("{}/{estuary_id}", request.project);
    match host.unsubscribe(&estuary_key, &source).await {
        Ok(()) => Ok(UnsubscribeEstuaryResponse::Ok(UnsubscribeResponse {
            estuary_id,
            stream_id: stream_id(&source),
            unsubscribed: true,
        })),
        Err(error @ ProtocolError::NotFound) => Ok(UnsubscribeEstuaryResponse::NotFound(problem(&error))),
        Err(error) => Err(undocumented(&error)),
    }
}

pub async fn get(host: &dyn EstuaryHost, request: GetEstuaryRequest) -> Result<GetEstuaryResponse, ApiError> {
    let not_found = || GetEstuaryResponse::NotFound(problem(&ProtocolError::NotFound));
    if !valid_project_name(&request.project) || !valid_estuary_id(&request.estuary_id) {
        return Ok(not_found());
    }
    let estuary_key = format!("{}/{}", request.project, request.estuary_id);
    match host.estuary(&estuary_key).await {
        Ok(Some(estuary)) => Ok(GetEstuaryResponse::Ok(EstuaryInfo {
            estuary_id: estuary.estuary_id,
            estuary_stream_path: stream_path(&estuary.estuary_key),
            subscriptions: estuary.sources.iter().map(|s| EstuarySubscription { stream_id: stream_id(s) }).collect(),
            content_type: estuary.content_type,
        })),
        Ok(None) => Ok(not_found()),
        Err(error) => Err(undocumented(&error)),
    }
}

pub async fn delete(host: &dyn EstuaryHost, request: DeleteEstuaryRequest) -> Result<DeleteEstuaryResponse, ApiError> {
    if !valid_project_name(&request.project) || !valid_estuary_id(&request.estuary_id) {
        return Ok(DeleteEstuaryResponse::NotFound(problem(&ProtocolError::NotFound)));
    }
    let estuary_key = format!("{}/{}", request.project, request.estuary_id);
    match host.delete_estuary(&estuary_key).await {
        Ok(()) => Ok(DeleteEstuaryResponse::Ok(Deleted { estuary_id: request.estuary_id, deleted: true })),
        Err(error @ ProtocolError::NotFound) => Ok(DeleteEstuaryResponse::NotFound(problem(&error))),
        Err(error) => Err(undocumented(&error)),
    }
}
