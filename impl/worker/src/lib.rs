//! The Cloudflare Workers host — deployable as is (`wrangler.toml` at the
//! repository root) or as a library: depend on this crate with
//! `default-features = false`, pick or implement an authorizer, and call
//! [`serve`] from your own `#[event(fetch)]` (see `examples/`).
//!
//! - The **edge worker** runs the generated service (routing, grammar, CORS,
//!   always-sent headers) and forwards each stream operation to the stream's
//!   Durable Object. The internal envelope is the spec's own typed encoding:
//!   the edge encodes the typed request with `into_http` and decodes the DO's
//!   answer with `from_http`, so both sides share one definition.
//! - **StreamDO** (one per stream, SQLite-backed) runs the same generated
//!   service over the engine.

mod analytics;
mod bridge;
mod do_sql;
mod estuaries;
mod fanout;
mod projects;
mod registry;
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
use std::time::Duration;
use worker::{durable_object, Context, DurableObject, Env, Request, Response, State, WebSocket};

/// The Durable Object namespace binding of stream sequencers.
pub(crate) const STREAMS_BINDING: &str = "STREAMS";
/// The R2 bucket binding of cold segments.
const R2_BINDING: &str = "R2";
/// The KV binding of project configurations.
const REGISTRY_BINDING: &str = "REGISTRY";
/// Base URL of edge → DO requests (never leaves the runtime).
pub(crate) const INTERNAL_BASE: &str = "https://stream.internal";
/// Carries the client-facing base URL to the DO (for `Location`).
const BASE_URL_HEADER: &str = "x-ds-internal-base-url";
/// Carries the request id to the DO.
const REQUEST_ID_HEADER: &str = names::X_REQUEST_ID;
/// Asks the stream's object for its `Server-Timing` entries.
const TIMING_HEADER: &str = "x-ds-internal-timing";
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

/// How catch-up reads use the edge cache (`CACHE_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CacheMode {
    /// Never (the default): every read reaches the stream's object.
    Private,
    /// Catch-up chunks the object marks `public` (immutable ranges) are
    /// served from and stored in the colo's cache. Live reads never are.
    Shared,
}

/// A `401` of the stream's object (an anonymous read of a private stream)
/// passes through with its challenge; a HEAD answer has no body.
fn refusal(response: &http::Response<Bytes>) -> ApiError {
    let status = response.status();
    let problem = serde_json::from_slice::<Problem>(response.body()).unwrap_or_else(|_| {
        Problem::new(status, "this stream requires a bearer token")
    });
    let error = ApiError::from(problem);
    match response.headers().get(names::WWW_AUTHENTICATE) {
        Some(challenge) => error.with_header(http::HeaderName::from_static(names::WWW_AUTHENTICATE), challenge.clone()),
        None => error,
    }
}

/// The edge worker's implementation of the APIs: stream operations go to the DO.
struct Edge {
    env: Env,
    base_url: String,
    /// The client's full request URL (the edge cache key).
    url: String,
    request_id: String,
    /// `Server-Timing` was asked for (`X-Debug-Timing: 1` or `DEBUG_TIMING`).
    timing: bool,
    /// `Server-Timing` entries reported by the stream's object or the cache.
    object_timing: std::cell::RefCell<Vec<String>>,
    cache: CacheMode,
    long_poll_timeout_ms: u64,
    sse_reconnect_ms: u64,
}

impl Edge {
    async fn forward(
        &self,
        ctx: &RequestContext,
        stream: &StreamPath,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, ApiError> {
        let response = self.fetch_object(ctx, stream, request).await?;
        let response = bridge::response_into_http(response).await.map_err(internal)?;
        self.note_timing(response.headers().get(names::SERVER_TIMING).and_then(|v| v.to_str().ok()));
        Ok(response)
    }

    fn note_timing(&self, entry: Option<&str>) {
        if let (true, Some(entry)) = (self.timing, entry) {
            self.object_timing.borrow_mut().push(entry.to_owned());
        }
    }

    /// Sends a request to the stream's object, with the edge's context headers.
    async fn fetch_object(
        &self,
        ctx: &RequestContext,
        stream: &StreamPath,
        request: http::Request<Bytes>,
    ) -> Result<Response, ApiError> {
        let (mut parts, body) = request.into_parts();
        // The caller as the gate decided it (the typed envelope never carries a client's copy).
        if let Ok(value) = http::HeaderValue::from_str(&durable_streams_service::forwarded::encode(ctx)) {
            parts.headers.insert(durable_streams_service::forwarded::CALLER_HEADER, value);
        }
        if let Ok(value) = http::HeaderValue::from_str(&self.base_url) {
            parts.headers.insert(BASE_URL_HEADER, value);
        }
        if let Ok(value) = http::HeaderValue::from_str(&self.request_id) {
            parts.headers.insert(REQUEST_ID_HEADER, value);
        }
        if self.timing {
            parts.headers.insert(TIMING_HEADER, http::HeaderValue::from_static("1"));
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
        ctx: &RequestContext,
        stream: &StreamPath,
        request: Result<http::Request<Bytes>, http::Error>,
        decode: fn(http::Response<Bytes>) -> Result<Resp, durable_streams_api::codec::DecodeError>,
    ) -> Result<Resp, ApiError> {
        let response = self.forward(ctx, stream, request.map_err(internal)?).await?;
        let status = response.status();
        // (A `403` of the object is producer fencing: a typed answer.)
        if status == http::StatusCode::UNAUTHORIZED {
            return Err(refusal(&response));
        }
        let body = response.body().clone();
        decode(response).map_err(|error| passthrough(status, &body, error))
    }
}

#[async_trait(?Send)]
impl StreamsApi for Edge {
    async fn create_stream(&self, ctx: &RequestContext, request: CreateStreamRequest) -> Result<CreateStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(ctx, &stream, request.into_http(INTERNAL_BASE), CreateStreamResponse::from_http).await
    }

    async fn append_stream(&self, ctx: &RequestContext, request: AppendStreamRequest) -> Result<AppendStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(ctx, &stream, request.into_http(INTERNAL_BASE), AppendStreamResponse::from_http).await
    }

    async fn read_stream(&self, ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        if request.live == Some(LiveMode::Sse) {
            return self.read_sse(ctx, request).await;
        }
        if request.live.is_none() && request.if_none_match.is_none() && self.cache == CacheMode::Shared {
            return self.read_cached(ctx, request).await;
        }
        let stream = request.stream.clone();
        self.call(ctx, &stream, request.into_http(INTERNAL_BASE), ReadStreamResponse::from_http).await
    }

    async fn head_stream(&self, ctx: &RequestContext, request: HeadStreamRequest) -> Result<HeadStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(ctx, &stream, request.into_http(INTERNAL_BASE), HeadStreamResponse::from_http).await
    }

    async fn delete_stream(&self, ctx: &RequestContext, request: DeleteStreamRequest) -> Result<DeleteStreamResponse, ApiError> {
        let stream = request.stream.clone();
        self.call(ctx, &stream, request.into_http(INTERNAL_BASE), DeleteStreamResponse::from_http).await
    }
}

impl Edge {
    /// A catch-up read through the colo's cache (`CACHE_MODE = "shared"`):
    /// only chunks the object marks `public` (immutable ranges below the
    /// tail) are stored; the tail, live reads and conditional reads always
    /// reach the object.
    async fn read_cached(&self, ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        let cache = worker::Cache::default();
        let decode = |response: http::Response<Bytes>| {
            let status = response.status();
            let body = response.body().clone();
            ReadStreamResponse::from_http(response).map_err(|error| passthrough(status, &body, error))
        };
        if let Ok(Some(hit)) = cache.get(self.url.as_str(), false).await {
            if let Ok(response) = bridge::response_into_http(hit).await {
                self.note_timing(Some("cache;desc=hit"));
                return decode(response);
            }
        }
        let stream = request.stream.clone();
        let response = self.forward(ctx, &stream, request.into_http(INTERNAL_BASE).map_err(internal)?).await?;
        let public = response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case("public")));
        if response.status() == http::StatusCode::OK && public {
            let mut stored = response.clone();
            stored.headers_mut().remove(names::SERVER_TIMING);
            if let Ok(stored) = bridge::from_http(stored.map(durable_streams_api::Body::Full)) {
                if let Err(error) = cache.put(self.url.as_str(), stored).await {
                    worker::console_warn!("edge cache put failed: {error}");
                }
            }
            self.note_timing(Some("cache;desc=miss"));
        }
        decode(response)
    }

    /// SSE through the hibernation bridge: the object accepts a WebSocket
    /// for this reader and sends SSE frames over it (catch-up, then live
    /// data as it is appended; it may hibernate in between). The edge holds
    /// the client's SSE response, repeats the last control event as a
    /// keep-alive while idle, and ends the response at the object's close
    /// (stream closed, deleted) or after `SSE_RECONNECT_MS` (about 60 s, so
    /// CDNs can collapse reconnects).
    async fn read_sse(&self, ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        use futures::StreamExt;
        let stream = request.stream.clone();
        let mut request = request.into_http(INTERNAL_BASE).map_err(internal)?;
        request.headers_mut().insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
        let response = self.fetch_object(ctx, &stream, request).await?;
        if response.status_code() != 101 {
            let response = bridge::response_into_http(response).await.map_err(internal)?;
            let status = response.status();
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(refusal(&response));
            }
            let body = response.body().clone();
            return ReadStreamResponse::from_http(response).map_err(|error| passthrough(status, &body, error));
        }
        let ws = response.websocket().ok_or_else(|| internal("the SSE bridge answered without a WebSocket"))?;
        ws.accept().map_err(internal)?;
        let (hello_tx, hello_rx) = futures::channel::oneshot::channel::<bool>();
        let (mut frames_tx, frames_rx) = futures::channel::mpsc::channel::<Bytes>(16);
        let keepalive = Duration::from_millis(self.long_poll_timeout_ms.max(100));
        let deadline_ms = now_ms() + self.sse_reconnect_ms;
        worker::wasm_bindgen_futures::spawn_local(async move {
            use futures::SinkExt;
            let Ok(mut events) = ws.events() else { return };
            let mut hello_tx = Some(hello_tx);
            let mut last_control: Option<Bytes> = None;
            loop {
                let left = deadline_ms.saturating_sub(now_ms());
                if left == 0 {
                    break;
                }
                let wait = worker::Delay::from(keepalive.min(Duration::from_millis(left)));
                let next = match futures::future::select(events.next(), wait).await {
                    futures::future::Either::Left((event, _)) => event,
                    futures::future::Either::Right(_) => {
                        // Idle: repeat the last control event as a keep-alive.
                        if let Some(control) = &last_control {
                            if frames_tx.send(control.clone()).await.is_err() {
                                break;
                            }
                        }
                        continue;
                    }
                };
                let Some(Ok(worker::WebsocketEvent::Message(message))) = next else { break };
                let Some(bytes) = message_bytes(&message).await else { break };
                if let Some(tx) = hello_tx.take() {
                    let base64 = serde_json::from_slice::<stream_do::SseHello>(&bytes).map(|h| h.base64);
                    let Ok(base64) = base64 else { break };
                    let _ = tx.send(base64);
                    continue;
                }
                if let Some(at) = find_last(&bytes, b"event: control") {
                    last_control = Some(bytes.slice(at..));
                }
                if frames_tx.send(bytes).await.is_err() {
                    break; // the client went away
                }
            }
            let _ = ws.close(Some(1000), Some("done"));
        });
        let base64 = hello_rx.await.map_err(|_| internal("the stream object closed the SSE bridge"))?;
        let events = frames_rx.map(Ok::<Bytes, durable_streams_api::body::BodyError>);
        Ok(ReadStreamResponse::Ok(ReadStreamOk {
            content_type: Some("text/event-stream".to_owned()),
            cache_control: Some("no-cache".to_owned()),
            stream_sse_data_encoding: base64.then(|| "base64".to_owned()),
            body: durable_streams_api::Body::stream(events),
            ..Default::default()
        }))
    }
}

/// The payload of a bridge message (the object sends binary frames: SSE
/// bytes are passed through exactly as the engine framed them).
async fn message_bytes(message: &worker::MessageEvent) -> Option<Bytes> {
    use worker::wasm_bindgen::JsCast;
    let data = AsRef::<worker::web_sys::MessageEvent>::as_ref(message).data();
    if let Some(text) = data.as_string() {
        return Some(Bytes::from(text));
    }
    let buffer = match data.dyn_ref::<worker::web_sys::Blob>() {
        Some(blob) => worker::wasm_bindgen_futures::JsFuture::from(blob.array_buffer()).await.ok()?,
        None => data,
    };
    Some(Bytes::from(worker::js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Where `needle` last starts in `haystack`.
fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|window| window == needle)
}

#[async_trait(?Send)]
impl HealthApi for Edge {
    async fn get_health(&self, _ctx: &RequestContext, _request: GetHealthRequest) -> Result<GetHealthResponse, ApiError> {
        Ok(GetHealthResponse::Ok(Health { status: "ok".to_owned() }))
    }
}

impl SubscriptionsApi for Edge {}

#[async_trait(?Send)]
impl EstuaryApi for Edge {
    async fn subscribe_estuary(
        &self,
        _ctx: &RequestContext,
        request: SubscribeEstuaryRequest,
    ) -> Result<SubscribeEstuaryResponse, ApiError> {
        durable_streams_service::estuaries::subscribe(&self.estuaries(), request).await
    }

    async fn unsubscribe_estuary(
        &self,
        _ctx: &RequestContext,
        request: UnsubscribeEstuaryRequest,
    ) -> Result<UnsubscribeEstuaryResponse, ApiError> {
        durable_streams_service::estuaries::unsubscribe(&self.estuaries(), request).await
    }

    async fn get_estuary(&self, _ctx: &RequestContext, request: GetEstuaryRequest) -> Result<GetEstuaryResponse, ApiError> {
        durable_streams_service::estuaries::get(&self.estuaries(), request).await
    }

    async fn delete_estuary(
        &self,
        _ctx: &RequestContext,
        request: DeleteEstuaryRequest,
    ) -> Result<DeleteEstuaryResponse, ApiError> {
        durable_streams_service::estuaries::delete(&self.estuaries(), request).await
    }
}

impl Edge {
    fn estuaries(&self) -> estuaries::EdgeEstuaries {
        let ttl_s = var_ms(&self.env, "ESTUARY_TTL_SECONDS", 86_400).max(1);
        estuaries::EdgeEstuaries { env: self.env.clone(), ttl_ms: i64::try_from(ttl_s.saturating_mul(1000)).unwrap_or(i64::MAX) }
    }
}
#[async_trait(?Send)]
impl LegacyApi for Edge {
    async fn legacy_subscribe(&self, ctx: &RequestContext, request: LegacySubscribeRequest) -> Result<LegacySubscribeResponse, ApiError> {
        durable_streams_service::legacy::subscribe(self, ctx, request).await
    }

    async fn legacy_unsubscribe(
        &self,
        ctx: &RequestContext,
        request: LegacyUnsubscribeRequest,
    ) -> Result<LegacyUnsubscribeResponse, ApiError> {
        durable_streams_service::legacy::unsubscribe(self, ctx, request).await
    }

    async fn legacy_publish(&self, ctx: &RequestContext, request: LegacyPublishRequest) -> Result<LegacyPublishResponse, ApiError> {
        durable_streams_service::legacy::publish(self, ctx, request).await
    }

    async fn legacy_get_session(
        &self,
        ctx: &RequestContext,
        request: LegacyGetSessionRequest,
    ) -> Result<LegacyGetSessionResponse, ApiError> {
        durable_streams_service::legacy::get_session(self, ctx, request).await
    }

    async fn legacy_touch_session(
        &self,
        _ctx: &RequestContext,
        request: LegacyTouchSessionRequest,
    ) -> Result<LegacyTouchSessionResponse, ApiError> {
        durable_streams_service::legacy::touch_session(&self.estuaries(), request).await
    }
}
#[async_trait(?Send)]
impl ConfigApi for Edge {
    async fn get_config(&self, _ctx: &RequestContext, request: GetConfigRequest) -> Result<GetConfigResponse, ApiError> {
        durable_streams_service::projects::get_config(&self.projects()?, request).await
    }

    async fn put_config(&self, ctx: &RequestContext, request: PutConfigRequest) -> Result<PutConfigResponse, ApiError> {
        durable_streams_service::projects::put_config(&self.projects()?, ctx, request).await
    }
}

impl Edge {
    /// The project store (`REGISTRY`).
    fn projects(&self) -> Result<projects::KvProjects, ApiError> {
        let kv = self
            .env
            .kv(REGISTRY_BINDING)
            .map_err(|_| Problem::unavailable("the REGISTRY KV binding is not configured"))?;
        Ok(projects::KvProjects::new(kv))
    }
}

fn base_url(request: &Request) -> String {
    request
        .url()
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_else(|_| "http://localhost".to_owned())
}

/// Test hooks (`TEST_HOOKS=1` only), on the object of `stream`:
/// `test-reset` resets it as a crash would for its fan-out (see
/// `DoHost::reset_for_test`); `fanout-stats` reads its fan-out counters;
/// `test-fail-appends` / `test-heal-appends` make its appends answer 503
/// (a failing estuary) or work again.
async fn test_hook(env: &Env, stream: &str, op: &str) -> worker::Result<Response> {
    let key = match StreamPath::parse(stream) {
        Ok(path) => path.key(),
        Err(problem) => return error_response(&problem),
    };
    let request = estuaries::internal_request(op, Bytes::from_static(b"{}")).map_err(|e| worker::Error::RustError(e.to_string()))?;
    bridge::call_object(env, &key, request).await
}

/// Who may call the deployment (`AUTH_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthMode {
    /// Project JWTs, secrets from `REGISTRY` (the default).
    Jwt,
    /// No authentication (local development only; explicit).
    None,
    /// The seeds' strategies: `AUTH_TOKEN` for mutations, `READ_JWT_SECRET`
    /// session tokens for reads of `session:{id}` streams.
    Seed,
}

impl AuthMode {
    fn from_env(env: &Env) -> AuthMode {
        match env.var("AUTH_MODE").map(|v| v.to_string()).as_deref() {
            Ok("none") => AuthMode::None,
            Ok("seed") => AuthMode::Seed,
            _ => AuthMode::Jwt,
        }
    }
}

/// The host-wide origins (`CORS_ORIGINS`, comma-separated); empty means any
/// origin without auth and only each project's `corsOrigins` with auth.
fn host_cors(env: &Env, auth: AuthMode) -> CorsOrigins {
    let listed: Vec<String> = env
        .var("CORS_ORIGINS")
        .map(|v| v.to_string())
        .unwrap_or_default()
        .split(',')
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    match (listed.is_empty(), auth) {
        (true, AuthMode::None) => CorsOrigins::Any,
        (true, _) => CorsOrigins::None,
        (false, _) if listed.iter().any(|o| o == "*") => CorsOrigins::Any,
        (false, _) => CorsOrigins::List(listed),
    }
}

/// The configured gate; a deployment missing what its mode needs answers `503`.
fn gate(
    env: &Env,
    auth: AuthMode,
    projects: Option<durable_streams_service::projects::Projects>,
) -> Result<Box<dyn durable_streams_api::Gate>, Problem> {
    use durable_streams_service::auth::{AuthGate, BearerTokenAuth, ByMethod, JwtSessionAuth, NoAuth, ProjectJwtAuth};
    Ok(match auth {
        AuthMode::Jwt => {
            if projects.is_none() {
                return Err(Problem::unavailable("AUTH_MODE=jwt needs the REGISTRY KV binding"));
            }
            Box::new(AuthGate::new(ProjectJwtAuth, projects))
        }
        AuthMode::None => Box::new(AuthGate::new(NoAuth, projects)),
        AuthMode::Seed => {
            let secret = |name: &str| {
                env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
            };
            let (Some(token), Some(read_secret)) = (secret("AUTH_TOKEN"), secret("READ_JWT_SECRET")) else {
                return Err(Problem::unavailable("AUTH_MODE=seed needs the AUTH_TOKEN and READ_JWT_SECRET secrets"));
            };
            let authorizer =
                ByMethod { read: JwtSessionAuth::new(read_secret.into_bytes()), mutation: BearerTokenAuth::new(token) };
            Box::new(AuthGate::new(authorizer, projects))
        }
    })
}

/// How a deployment built on this crate authorizes requests.
#[derive(Default)]
pub struct Options {
    authorizer: Option<Box<dyn durable_streams_auth::Authorizer>>,
}

impl Options {
    /// Authorize with `authorizer` (a custom one, or one of
    /// `durable_streams_auth`'s) instead of the `AUTH_MODE` variable.
    /// Project configurations (CORS origins, signing secrets) still come
    /// from `REGISTRY` when it is bound.
    pub fn authorizer(mut self, authorizer: impl durable_streams_auth::Authorizer + 'static) -> Options {
        self.authorizer = Some(Box::new(authorizer));
        self
    }
}

/// This repository's own deployment: authorization from `AUTH_MODE`.
/// Crates that depend on this one turn the `entry` feature off and write
/// their own `#[event(fetch)]` calling [`serve`].
#[cfg(feature = "entry")]
#[worker::event(fetch)]
pub async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(request, env, ctx, Options::default()).await
}

/// This repository's own queue consumer: estuary fan-out jobs of sources
/// with more than `FANOUT_INLINE_MAX` subscribers, and their dead letters.
#[cfg(feature = "entry")]
#[worker::event(queue)]
pub async fn queue(batch: worker::MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> worker::Result<()> {
    consume(batch, env).await
}

/// Consumes a batch of `FANOUT_QUEUE` (or its dead-letter queue): call it
/// from your own `#[event(queue)]` when you deploy with the queue bound.
pub async fn consume(batch: worker::MessageBatch<serde_json::Value>, env: Env) -> worker::Result<()> {
    fanout::consume(batch, env).await
}

/// Serves one request of the Durable Streams APIs (the edge worker). The
/// Durable Object class [`StreamDO`] must be exported by the deployment too
/// (it is, by depending on this crate) and bound as `STREAMS`.
pub async fn serve(request: Request, env: Env, _ctx: Context, options: Options) -> worker::Result<Response> {
    let started = now_ms();
    let base_url = base_url(&request);
    let url = request.url().map(|u| u.to_string()).unwrap_or_default();
    let request_id = request_id();
    let ctx = RequestContext::new(request_id.clone(), now_ms(), base_url.clone());
    let auth = AuthMode::from_env(&env);
    let config = ServiceConfig { cors: host_cors(&env, auth) };
    let asked = request
        .headers()
        .get(names::X_DEBUG_TIMING)
        .ok()
        .flatten()
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let timing = asked || var_ms(&env, "DEBUG_TIMING", 0) == 1;
    let cache = match env.var("CACHE_MODE").map(|v| v.to_string()).as_deref() {
        Ok("shared") => CacheMode::Shared,
        _ => CacheMode::Private,
    };
    let long_poll_timeout_ms = var_ms(&env, "LONG_POLL_TIMEOUT_MS", 30_000);
    let sse_reconnect_ms = var_ms(&env, "SSE_RECONNECT_MS", 60_000);
    let method = request.method().to_string();
    let project = project_of(&request.path());
    let analytics_env = env.clone();
    if var_ms(&env, "TEST_HOOKS", 0) == 1 {
        if request.path() == "/_test/analytics" {
            return Response::from_json(&analytics::recorded());
        }
        for (prefix, op) in [("/_test/reset/", "test-reset"), ("/_test/fanout-stats/", "fanout-stats"), ("/_test/fail-appends/", "test-fail-appends"), ("/_test/heal-appends/", "test-heal-appends")] {
            if let Some(stream) = request.path().strip_prefix(prefix) {
                return test_hook(&env, stream, op).await;
            }
        }
    }
    let (mut response, object_timing) = match bridge::into_http(request, MAX_BODY_BYTES).await {
        Ok(request) => {
            let edge = Edge {
                env,
                base_url,
                url,
                request_id,
                timing,
                object_timing: Default::default(),
                cache,
                long_poll_timeout_ms,
                sse_reconnect_ms,
            };
            let projects: Option<durable_streams_service::projects::Projects> = edge
                .env
                .kv(REGISTRY_BINDING)
                .ok()
                .map(|kv| std::sync::Arc::new(projects::KvProjects::new(kv)) as _);
            let gate = match options.authorizer {
                Some(authorizer) => Ok(Box::new(durable_streams_service::auth::AuthGate::new(authorizer, projects))
                    as Box<dyn durable_streams_api::Gate>),
                None => gate(&edge.env, auth, projects),
            };
            let response = match gate {
                Ok(gate) => durable_streams_api::handle_gated(&edge, gate.as_ref(), &config, ctx, request).await,
                Err(problem) => {
                    let mut response = durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new());
                    durable_streams_api::service::finish(&mut response, &config, None, &ctx);
                    response
                }
            };
            (response, edge.object_timing.take())
        }
        Err(problem) => {
            let mut response = durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new());
            durable_streams_api::service::finish(&mut response, &config, None, &ctx);
            (response, Vec::new())
        }
    };
    let status = response.status().as_u16();
    analytics::write(
        &analytics_env,
        analytics::Category::Http,
        &[&method, &status.to_string(), &project],
        &[now_ms().saturating_sub(started) as f64, f64::from(status)],
    );
    if timing {
        let mut entries = vec![format!("edge;dur={}", now_ms().saturating_sub(started))];
        entries.extend(object_timing);
        if let Ok(value) = http::HeaderValue::from_str(&entries.join(", ")) {
            response.headers_mut().insert(names::SERVER_TIMING, value);
        }
    }
    bridge::from_http(response)
}

/// The project a request path names (`""` for routes without one).
fn project_of(path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let project = match segments.as_slice() {
        ["v1", "estuary", "subscribe", project, ..] => project,
        ["v1", "stream" | "config" | "estuary", project, ..] => project,
        _ => "",
    };
    project.chars().take(128).collect()
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
        bridge::call_object(&self.env, root, request).await
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

impl StreamDO {
    /// An SSE read arrives as a WebSocket upgrade from the edge: the first
    /// read decides the answer (errors are plain HTTP answers), then the
    /// object accepts the reader's socket for hibernation.
    async fn sse_upgrade(&self, host: &stream_do::DoHost, request: http::Request<Bytes>) -> worker::Result<Response> {
        let (parts, body) = request.into_parts();
        let decoded = match durable_streams_api::router::match_route(&parts.method, parts.uri.path()) {
            Ok(durable_streams_api::router::RouteMatch::Found { params, .. }) => {
                let query = durable_streams_api::routing::Query::parse(parts.uri.query());
                ReadStreamRequest::from_parts(&params, &query, &parts.headers, body)
            }
            Ok(_) => Err(Problem::bad_request("an SSE upgrade must address a stream")),
            Err(problem) => Err(problem),
        };
        let request = match decoded {
            Ok(request) => request,
            Err(problem) => return error_response(&problem),
        };
        let key = request.stream.key();
        let from = match request.offset.as_deref().map(durable_streams_engine::ReadFrom::parse) {
            Some(Ok(from)) => from,
            Some(Err(error)) => return error_response(&durable_streams_service::problem(&error)),
            None => return error_response(&Problem::bad_request("live reads require the `offset` query parameter")),
        };
        let mut ctx = RequestContext::new(String::new(), now_ms(), String::new());
        let caller = parts.headers.get(durable_streams_service::forwarded::CALLER_HEADER).and_then(|v| v.to_str().ok());
        durable_streams_service::forwarded::decode(caller.unwrap_or_default(), &mut ctx);
        if ctx.anonymous {
            let public = host.head_public(&key);
            if let Err(refusal) = durable_streams_service::anonymous_may_read(&ctx, public) {
                return bridge::from_http(refusal.into_http());
            }
        }
        let timing = std::cell::Cell::new(stream_do::Timing::default());
        let accepted = match host.read_and_touch(&key, from, &timing).await {
            Ok(first) => host.accept_sse(&key, &first, request.cursor),
            Err(error) => Err(error),
        };
        match accepted {
            Ok(client) => Response::from_websocket(client),
            Err(error) => error_response(&durable_streams_service::problem(&error)),
        }
    }
}

impl DurableObject for StreamDO {
    fn new(state: State, env: Env) -> Self {
        let settings = stream_do::DoSettings {
            long_poll_timeout_ms: var_ms(&env, "LONG_POLL_TIMEOUT_MS", 30_000),
            sse_reconnect_ms: var_ms(&env, "SSE_RECONNECT_MS", 60_000),
            test_hooks: var_ms(&env, "TEST_HOOKS", 0) == 1,
            segment_limits: durable_streams_engine::segment::SegmentLimits {
                max_messages: var_ms(&env, "SEGMENT_MAX_MESSAGES", 1_000).max(1),
                max_bytes: var_ms(&env, "SEGMENT_MAX_BYTES", 4 << 20).max(1),
            },
        };
        let bucket = env.bucket(R2_BINDING).ok();
        let host = stream_do::DoHost::new(state, env.clone(), bucket, settings).map_err(|e| e.to_string());
        StreamDO { host, env }
    }

    async fn fetch(&self, request: Request) -> worker::Result<Response> {
        let started = stream_do::now_ms();
        let host = match &self.host {
            Ok(host) => host.clone(),
            Err(error) => return error_response(&Problem::unavailable(format!("stream object failed to start: {error}"))),
        };
        host.check_registry_once();
        let request = match bridge::into_http(request, MAX_BODY_BYTES).await {
            Ok(request) => request,
            Err(problem) => return error_response(&problem),
        };
        if let Some(op) = request.uri().path().strip_prefix(estuaries::INTERNAL_PREFIX) {
            let op = op.to_owned();
            // A source that a fork moved to its family's object is served there.
            if let Some(key) = estuaries::internal_key(&op, request.body()).or_else(|| fanout::internal_key(&op, request.body())) {
                if let Some(root) = host.alias_of(&key).map_err(|e| worker::Error::RustError(e.to_string()))? {
                    return self.forward(&root, request).await;
                }
            }
            if let Some(response) = fanout::handle_internal(&host, &op, request.body()).await {
                return response;
            }
            let response = estuaries::handle_internal(&host, &op, request.body()).await;
            host.start_registry(); // an estuary created or deleted its stream
            return response;
        }
        let request = match self.route(&host, request).await? {
            Ok(response) => return Ok(response),
            Err(request) => request,
        };
        let upgrade = request.headers().get(http::header::UPGRADE).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        if upgrade {
            return self.sse_upgrade(&host, request).await;
        }
        let root = request.headers().get(FAMILY_ROOT_HEADER).cloned();
        let timing = request.headers().contains_key(TIMING_HEADER);
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut ctx = RequestContext::new(header(REQUEST_ID_HEADER), now_ms(), header(BASE_URL_HEADER));
        durable_streams_service::forwarded::decode(&header(durable_streams_service::forwarded::CALLER_HEADER), &mut ctx);
        let service = durable_streams_service::StreamsService::new(stream_do::RequestHost::new(host.clone()));
        let changes_streams = matches!(*request.method(), http::Method::PUT | http::Method::DELETE);
        let mut response = durable_streams_api::handle(&service, &ServiceConfig::default(), ctx, request).await;
        if changes_streams {
            host.start_registry(); // a stream was created or deleted
        }
        // Tell a forwarding object which object answered for the family.
        if let Some(root) = root {
            response.headers_mut().insert(FAMILY_ROOT_HEADER, root);
        }
        if timing {
            let total = (stream_do::now_ms() - started).max(0) as u64;
            let value = service.host.timing.get().header_value(total);
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(names::SERVER_TIMING, value);
            }
        }
        bridge::from_http(response)
    }

    /// Maintenance: rotation of hot tails to R2 and reclaiming expired
    /// streams. An error makes the runtime retry the alarm.
    async fn alarm(&self) -> worker::Result<Response> {
        let host = self.host.as_ref().map_err(|e| worker::Error::RustError(e.clone()))?;
        host.alarm().await.map_err(|e| worker::Error::RustError(e.to_string()))?;
        Response::empty()
    }

    /// SSE readers never send anything that matters.
    async fn websocket_message(&self, _ws: WebSocket, _message: worker::WebSocketIncomingMessage) -> worker::Result<()> {
        Ok(())
    }

    async fn websocket_close(&self, ws: WebSocket, _code: usize, _reason: String, _was_clean: bool) -> worker::Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }
}
