//! The Cloudflare Workers host.
//!
//! - The **edge worker** runs the generated service (routing, grammar, CORS,
//!   always-sent headers) and forwards each stream operation to the stream's
//!   Durable Object. The internal envelope is the spec's own typed encoding:
//!   the edge encodes the typed request with `into_http` and decodes the DO's
//!   answer with `from_http`, so both sides share one definition.
//! - **StreamDO** (one per stream, SQLite-backed) runs the same generated
//!   service over the engine.

mod bridge;
mod do_sql;
mod stream_do;

use async_trait::async_trait;
use bytes::Bytes;
use durable_streams_api::operations::*;
use durable_streams_api::types::Health;
use durable_streams_api::{
    ApiError, ConfigApi, CorsOrigins, EstuaryApi, HealthApi, LegacyApi, Problem, RequestContext, ServiceConfig,
    StreamPath, StreamsApi, SubscriptionsApi,
};
use durable_streams_api::headers::names;
use worker::{durable_object, event, Context, DurableObject, Env, Request, Response, State};

/// The Durable Object namespace binding of stream sequencers.
const STREAMS_BINDING: &str = "STREAMS";
/// Base URL of edge → DO requests (never leaves the runtime).
const INTERNAL_BASE: &str = "https://stream.internal";
/// Carries the client-facing base URL to the DO (for `Location`).
const BASE_URL_HEADER: &str = "x-ds-internal-base-url";
/// Carries the request id to the DO.
const REQUEST_ID_HEADER: &str = names::X_REQUEST_ID;
/// Largest request body accepted (an append), in bytes.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn request_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom_fill(&mut bytes).is_err() {
        return format!("{:x}", now_ms());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), ()> {
    let crypto = worker::js_sys::Reflect::get(&worker::js_sys::global(), &"crypto".into()).map_err(|_| ())?;
    let array = worker::js_sys::Uint8Array::new_with_length(bytes.len() as u32);
    let get_random_values = worker::js_sys::Reflect::get(&crypto, &"getRandomValues".into()).map_err(|_| ())?;
    let function: worker::js_sys::Function = get_random_values.into();
    function.call1(&crypto, &array).map_err(|_| ())?;
    array.copy_to(bytes);
    Ok(())
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    Problem::internal(format!("stream object call failed: {error}")).into()
}

/// An answer of the DO outside the operation's documented statuses (500,
/// 501, 503, limits) passes through as the problem it carries.
fn passthrough(status: http::StatusCode, body: &[u8], error: impl std::fmt::Display) -> ApiError {
    match serde_json::from_slice::<Problem>(body) {
        Ok(mut problem) => {
            problem.status = status.as_u16();
            problem.into()
        }
        Err(_) => internal(error),
    }
}

/// The edge worker's implementation of the APIs: stream operations go to the DO.
struct Edge {
    env: Env,
    base_url: String,
    request_id: String,
}

impl Edge {
    async fn forward(&self, stream: &StreamPath, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ApiError> {
        let response = self.fetch_object(stream, request).await?;
        bridge::response_into_http(response).await.map_err(internal)
    }

    /// Sends a request to the stream's object, with the edge's context headers.
    async fn fetch_object(&self, stream: &StreamPath, request: http::Request<Bytes>) -> Result<Response, ApiError> {
        let (mut parts, body) = request.into_parts();
        if let Ok(value) = http::HeaderValue::from_str(&self.base_url) {
            parts.headers.insert(BASE_URL_HEADER, value);
        }
        if let Ok(value) = http::HeaderValue::from_str(&self.request_id) {
            parts.headers.insert(REQUEST_ID_HEADER, value);
        }
        let request = bridge::request_from_http(http::Request::from_parts(parts, body)).map_err(internal)?;
        let namespace = self.env.durable_object(STREAMS_BINDING).map_err(internal)?;
        let stub = namespace.get_by_name(&stream.key()).map_err(internal)?;
        stub.fetch_with_request(request).await.map_err(internal)
    }
}

impl Edge {
    /// Forwards a typed request to the stream's object and decodes its typed
    /// answer; statuses the operation does not document pass through.
    async fn call<Resp>(
        &self,
        stream: &StreamPath,
        request: Result<http::Request<Bytes>, http::Error>,
        decode: fn(http::Response<Bytes>) -> Result<Resp, durable_streams_api::codec::DecodeError>,
    ) -> Result<Resp, ApiError> {
        let response = self.forward(stream, request.map_err(internal)?).await?;
        let status = response.status();
        let body = response.body().clone();
        decode(response).map_err(|error| passthrough(status, &body, error))
    }
}

#[async_trait(?Send)]
impl StreamsApi for Edge {
    async fn create_stream(&self, _ctx: &RequestContext, request: CreateStreamRequest) -> Result<CreateStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(&stream, request.into_http(INTERNAL_BASE), CreateStreamResponse::from_http).await
    }

    async fn append_stream(&self, _ctx: &RequestContext, request: AppendStreamRequest) -> Result<AppendStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(&stream, request.into_http(INTERNAL_BASE), AppendStreamResponse::from_http).await
    }

    async fn read_stream(&self, _ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        if request.live == Some(LiveMode::Sse) {
            return self.read_sse(request).await;
        }
        let stream = request.stream.clone();
        self.call(&stream, request.into_http(INTERNAL_BASE), ReadStreamResponse::from_http).await
    }

    async fn head_stream(&self, _ctx: &RequestContext, request: HeadStreamRequest) -> Result<HeadStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(&stream, request.into_http(INTERNAL_BASE), HeadStreamResponse::from_http).await
    }

    async fn delete_stream(&self, _ctx: &RequestContext, request: DeleteStreamRequest) -> Result<DeleteStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(&stream, request.into_http(INTERNAL_BASE), DeleteStreamResponse::from_http).await
    }
}

impl Edge {
    /// SSE: the object's streamed answer is passed through chunk by chunk.
    async fn read_sse(&self, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        let stream = request.stream.clone();
        let request = request.into_http(INTERNAL_BASE).map_err(internal)?;
        let mut response = self.fetch_object(&stream, request).await?;
        if response.status_code() != 200 {
            let response = bridge::response_into_http(response).await.map_err(internal)?;
            let status = response.status();
            let body = response.body().clone();
            return ReadStreamResponse::from_http(response).map_err(|error| passthrough(status, &body, error));
        }
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let base64 = header(names::STREAM_SSE_DATA_ENCODING);
        let events = response.stream().map_err(internal)?;
        use futures::StreamExt;
        let events = events.map(|chunk| {
            chunk
                .map(Bytes::from)
                .map_err(|e| Box::new(std::io::Error::other(e.to_string())) as durable_streams_api::body::BodyError)
        });
        Ok(ReadStreamResponse::Ok(ReadStreamOk {
            content_type: Some("text/event-stream".to_owned()),
            cache_control: Some("no-cache".to_owned()),
            stream_sse_data_encoding: base64,
            body: durable_streams_api::Body::stream(events),
            ..Default::default()
        }))
    }
}

#[async_trait(?Send)]
impl HealthApi for Edge {
    async fn get_health(&self, _ctx: &RequestContext, _request: GetHealthRequest) -> Result<GetHealthResponse, ApiError> {
        Ok(GetHealthResponse::Ok(Health { status: "ok".to_owned() }))
    }
}

impl SubscriptionsApi for Edge {}
impl EstuaryApi for Edge {}
impl LegacyApi for Edge {}
impl ConfigApi for Edge {}

fn base_url(request: &Request) -> String {
    request
        .url()
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_else(|_| "http://localhost".to_owned())
}

#[event(fetch)]
pub async fn fetch(request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let base_url = base_url(&request);
    let request_id = request_id();
    let ctx = RequestContext::new(request_id.clone(), now_ms(), base_url.clone());
    let config = ServiceConfig { cors: CorsOrigins::Any };
    let response = match bridge::into_http(request, MAX_BODY_BYTES).await {
        Ok(request) => {
            let edge = Edge { env, base_url, request_id };
            durable_streams_api::handle(&edge, &config, ctx, request).await
        }
        Err(problem) => {
            let mut response = durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new());
            durable_streams_api::service::finish(&mut response, &config, None, &ctx);
            response
        }
    };
    bridge::from_http(response)
}

/// Marks a fork creation forwarded to the source's object.
const FAMILY_CREATE_HEADER: &str = "x-ds-internal-family-create";
/// The object that answers for a fork family (set on forwarded requests, echoed back).
const FAMILY_ROOT_HEADER: &str = "x-ds-internal-family-root";

/// One Durable Object per stream: the sequencer.
///
/// Forks: a fork and its source share one object, the family's — the
/// engine keeps a whole family in one SQLite database. The fork's own
/// object records an alias and forwards every request for the fork there.
#[durable_object]
pub struct StreamDO {
    host: Result<stream_do::DoHost, String>,
    env: Env,
}

fn var_ms(env: &Env, name: &str, default: u64) -> u64 {
    env.var(name).ok().and_then(|v| v.to_string().parse().ok()).unwrap_or(default)
}

fn error_response(problem: &Problem) -> worker::Result<Response> {
    bridge::from_http(durable_streams_api::problem::problem_response(problem, http::HeaderMap::new()))
}

/// The stream key a request addresses, if it is a stream operation.
fn stream_key(request: &http::Request<Bytes>) -> Option<String> {
    match durable_streams_api::router::match_route(request.method(), request.uri().path()) {
        Ok(durable_streams_api::router::RouteMatch::Found { operation, params }) if operation.tag() == "streams" => {
            StreamPath::parse(params.get("stream")?).ok().map(|path| path.key())
        }
        _ => None,
    }
}

impl StreamDO {
    /// Sends `request` to the object named `root`, marking it as the family root.
    async fn forward(&self, root: &str, mut request: http::Request<Bytes>) -> worker::Result<Response> {
        if let Ok(value) = http::HeaderValue::from_str(root) {
            request.headers_mut().insert(FAMILY_ROOT_HEADER, value);
        }
        // Requests between objects need an absolute URL.
        let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
        *request.uri_mut() = format!("{INTERNAL_BASE}{path}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| worker::Error::RustError(e.to_string()))?;
        let stub = self.env.durable_object(STREAMS_BINDING)?.get_by_name(root)?;
        stub.fetch_with_request(bridge::request_from_http(request)?).await
    }

    /// Routes a request to the object that holds its stream: an alias, a
    /// fork creation for a source held elsewhere, or this object.
    /// `Err(request)` when this object answers it itself.
    async fn route(
        &self,
        host: &stream_do::DoHost,
        request: http::Request<Bytes>,
    ) -> worker::Result<Result<Response, http::Request<Bytes>>> {
        let Some(key) = stream_key(&request) else { return Ok(Err(request)) };
        let family_create = request.headers().contains_key(FAMILY_CREATE_HEADER);
        let forked_from = request
            .headers()
            .get(names::STREAM_FORKED_FROM)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| durable_streams_service::fork_source_key(v).ok());
        let storage = |e: durable_streams_engine::StorageError| worker::Error::RustError(e.to_string());
        if family_create {
            // The source's object: send it on to the family root if the source moved there.
            let Some(source) = forked_from else { return Ok(Err(request)) };
            return match host.alias_of(&source).map_err(storage)? {
                Some(root) => self.forward(&root, request).await.map(Ok),
                None => Ok(Err(request)),
            };
        }
        if let Some(root) = host.alias_of(&key).map_err(storage)? {
            return self.forward(&root, request).await.map(Ok);
        }
        let Some(source) = forked_from else { return Ok(Err(request)) };
        if request.method() != http::Method::PUT || host.holds(&key).map_err(storage)? || host.holds(&source).map_err(storage)? {
            return Ok(Err(request));
        }
        // A fork of a stream held elsewhere: create it in the source's family.
        let mut request = request;
        request.headers_mut().insert(FAMILY_CREATE_HEADER, http::HeaderValue::from_static("1"));
        let response = self.forward(&source, request).await?;
        if matches!(response.status_code(), 200 | 201) {
            if let Some(root) = response.headers().get(FAMILY_ROOT_HEADER)? {
                host.set_alias(&key, &root).map_err(storage)?;
            }
        }
        Ok(Ok(response))
    }
}

impl DurableObject for StreamDO {
    fn new(state: State, env: Env) -> Self {
        let settings = stream_do::DoSettings {
            long_poll_timeout_ms: var_ms(&env, "LONG_POLL_TIMEOUT_MS", 30_000),
            sse_reconnect_ms: var_ms(&env, "SSE_RECONNECT_MS", 60_000),
        };
        let host = do_sql::DoSql::new(&state.storage())
            .and_then(|sql| stream_do::DoHost::new(sql, settings))
            .map_err(|e| e.to_string());
        StreamDO { host, env }
    }

    async fn fetch(&self, request: Request) -> worker::Result<Response> {
        let host = match &self.host {
            Ok(host) => host.clone(),
            Err(error) => return error_response(&Problem::unavailable(format!("stream object failed to start: {error}"))),
        };
        let request = match bridge::into_http(request, MAX_BODY_BYTES).await {
            Ok(request) => request,
            Err(problem) => return error_response(&problem),
        };
        let request = match self.route(&host, request).await? {
            Ok(response) => return Ok(response),
            Err(request) => request,
        };
        let root = request.headers().get(FAMILY_ROOT_HEADER).cloned();
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let ctx = RequestContext::new(header(REQUEST_ID_HEADER), now_ms(), header(BASE_URL_HEADER));
        let service = durable_streams_service::StreamsService::new(host);
        let mut response = durable_streams_api::handle(&service, &ServiceConfig::default(), ctx, request).await;
        // Tell a forwarding object which object answered for the family.
        if let Some(root) = root {
            response.headers_mut().insert(FAMILY_ROOT_HEADER, root);
        }
        bridge::from_http(response)
    }
}
