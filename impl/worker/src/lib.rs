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

use async_trait::async_trait;
use bytes::Bytes;
use durable_streams_api::operations::*;
use durable_streams_api::types::Health;
use durable_streams_api::{
    ApiError, ConfigApi, CorsOrigins, EstuaryApi, HealthApi, LegacyApi, Problem, RequestContext, ServiceConfig,
    StreamPath, StreamsApi, SubscriptionsApi,
};
use worker::{durable_object, event, Context, DurableObject, Env, Request, Response, State};

/// The Durable Object namespace binding of stream sequencers.
const STREAMS_BINDING: &str = "STREAMS";
/// Base URL of edge → DO requests (never leaves the runtime).
const INTERNAL_BASE: &str = "https://stream.internal";
/// Carries the client-facing base URL to the DO (for `Location`).
const BASE_URL_HEADER: &str = "x-ds-internal-base-url";
/// Carries the request id to the DO.
const REQUEST_ID_HEADER: &str = "x-request-id";
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
        let response = stub.fetch_with_request(request).await.map_err(internal)?;
        bridge::response_into_http(response).await.map_err(internal)
    }
}

macro_rules! forward_to_stream {
    ($($method:ident($request:ty) -> $response:ty;)*) => {
        #[async_trait(?Send)]
        impl StreamsApi for Edge {
            $(
                async fn $method(&self, _ctx: &RequestContext, request: $request) -> Result<$response, ApiError> {
                    let stream = request.stream.clone();
                    let request = request.into_http(INTERNAL_BASE).map_err(internal)?;
                    let response = self.forward(&stream, request).await?;
                    let status = response.status();
                    let body = response.body().clone();
                    <$response>::from_http(response).map_err(|error| passthrough(status, &body, error))
                }
            )*
        }
    };
}

forward_to_stream! {
    create_stream(CreateStreamRequest) -> CreateStreamResponse;
    append_stream(AppendStreamRequest) -> AppendStreamResponse;
    read_stream(ReadStreamRequest) -> ReadStreamResponse;
    head_stream(HeadStreamRequest) -> HeadStreamResponse;
    delete_stream(DeleteStreamRequest) -> DeleteStreamResponse;
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

/// One Durable Object per stream: the sequencer.
#[durable_object]
pub struct StreamDO {
    state: State,
    env: Env,
}

/// The Durable Object's implementation of the stream APIs.
struct StreamObject<'a> {
    state: &'a State,
}

impl StreamsApi for StreamObject<'_> {}
impl HealthApi for StreamObject<'_> {}
impl SubscriptionsApi for StreamObject<'_> {}
impl EstuaryApi for StreamObject<'_> {}
impl LegacyApi for StreamObject<'_> {}
impl ConfigApi for StreamObject<'_> {}

impl DurableObject for StreamDO {
    fn new(state: State, env: Env) -> Self {
        StreamDO { state, env }
    }

    async fn fetch(&self, request: Request) -> worker::Result<Response> {
        let _ = &self.env;
        let request = match bridge::into_http(request, MAX_BODY_BYTES).await {
            Ok(request) => request,
            Err(problem) => {
                return bridge::from_http(durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new()))
            }
        };
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let ctx = RequestContext::new(header(REQUEST_ID_HEADER), now_ms(), header(BASE_URL_HEADER));
        let object = StreamObject { state: &self.state };
        let response = durable_streams_api::handle(&object, &ServiceConfig::default(), ctx, request).await;
        bridge::from_http(response)
    }
}
