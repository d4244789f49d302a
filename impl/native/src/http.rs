//! The HTTP edge of the native host: axum accepts connections, every request
//! goes through the generated service (routing, grammar, CORS, always-sent
//! headers) into the streams service over [`NativeHost`]. Bodies are collected up to the configured
//! limit (`413` beyond it) before routing; streamed answers (SSE) stay
//! streamed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use durable_streams_api::headers::names;
use durable_streams_api::{Body, Gate, Problem, RequestContext, ServiceConfig};
use futures::TryStreamExt;
use http_body_util::{BodyExt, Limited};

use durable_streams_service::StreamsService;

use crate::host::NativeHost;

/// Shared state of the HTTP edge.
pub struct HttpState {
    pub api: StreamsService<NativeHost>,
    /// Authentication and authorization before every handler.
    pub gate: Box<dyn Gate>,
    pub service: ServiceConfig,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `scheme://authority` clients use, when fixed by configuration.
    pub public_base_url: Option<String>,
    next_request: AtomicU64,
}

impl HttpState {
    pub fn new(
        api: StreamsService<NativeHost>,
        gate: Box<dyn Gate>,
        service: ServiceConfig,
        max_body_bytes: usize,
        public_base_url: Option<String>,
    ) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        HttpState { api, gate, service, max_body_bytes, public_base_url, next_request: AtomicU64::new(seed << 16) }
    }

    fn request_id(&self, request: &Request) -> String {
        request
            .headers()
            .get(names::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{:016x}", self.next_request.fetch_add(1, Ordering::Relaxed)))
    }
}

/// The axum router: one fallback that hands everything to the generated service.
pub fn router(state: Arc<HttpState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

async fn handle(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let request_id = state.request_id(&request);
    let base_url = state.public_base_url.clone().unwrap_or_else(|| {
        let host = request.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        format!("http://{host}")
    });
    let mut ctx = RequestContext::new(request_id, now_ms(), base_url);
    ctx.debug_timing = request
        .headers()
        .get(names::X_DEBUG_TIMING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, state.max_body_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let problem = if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Problem::payload_too_large(format!("the body exceeds {} bytes", state.max_body_bytes))
            } else {
                Problem::bad_request(format!("unreadable body: {error}"))
            };
            let origin = parts.headers.get(http::header::ORIGIN).cloned();
            let mut response = durable_streams_api::problem::problem_response(&problem, http::HeaderMap::new());
            durable_streams_api::service::finish(&mut response, &state.service, origin.as_ref(), &ctx);
            return into_axum(response);
        }
    };
    let request = http::Request::from_parts(parts, body);
    let started = std::time::Instant::now();
    let debug_timing = ctx.debug_timing;
    let mut response = durable_streams_api::handle_gated(&state.api, state.gate.as_ref(), &state.service, ctx, request).await;
    state.api.host.0.metrics.response(response.status().as_u16());
    if debug_timing {
        let value = format!("native;dur={:.3}", started.elapsed().as_secs_f64() * 1e3);
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(names::SERVER_TIMING, value);
        }
    }
    into_axum(response)
}

fn into_axum(response: http::Response<Body>) -> Response {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Full(bytes) => AxumBody::from(bytes),
        Body::Stream(stream) => AxumBody::from_stream(stream.map_ok(Bytes::from)),
    };
    Response::from_parts(parts, body)
}
