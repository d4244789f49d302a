//! The HTTP entry point hosts call: routing, `404`/`405`, CORS preflights,
//! and the headers every response carries.

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};

use crate::body::Body;
use crate::context::{MaybeSendSync, RequestContext};
use crate::headers::{self, names};
use crate::problem::ApiError;
use crate::router::{self, RouteMatch};
use crate::routing::PathParams;
use crate::stream_path::StreamPath;
use crate::traits::Api;
use crate::types::Problem;

/// Which browser origins may call the APIs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all.
    #[default]
    None,
    /// Any origin (`Access-Control-Allow-Origin: *`).
    Any,
    /// Only these origins (echoed back, with `Vary: Origin`).
    List(Vec<String>),
}

/// Host-wide settings of the HTTP layer.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    /// Browser origins allowed host-wide.
    pub cors: CorsOrigins,
}

/// How long browsers may cache a preflight answer, in seconds.
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 86_400;

/// What the [`Gate`] sees of a routed request.
#[derive(Debug)]
pub enum Admission<'a> {
    /// A CORS preflight for `path`; it carries no credentials and is never refused.
    Preflight {
        /// The request path.
        path: &'a str,
    },
    /// An operation about to run.
    Operation {
        /// The matched operation (its [`router::Security`] says what it needs).
        operation: router::OperationId,
        /// Its decoded path parameters.
        params: &'a PathParams,
        /// The request line and headers.
        parts: &'a http::request::Parts,
    },
}

impl Admission<'_> {
    /// The project the request addresses: the stream path's project, or the
    /// route's `{project}`; `None` for routes outside any project.
    pub fn project(&self) -> Option<String> {
        let params = match self {
            Admission::Operation { params, .. } => (*params).clone(),
            Admission::Preflight { path } => router::ROUTES
                .iter()
                .find_map(|route| crate::routing::match_path(route.segments, path).ok().flatten())?,
        };
        if let Some(project) = params.get("project") {
            return Some(project.to_owned());
        }
        let stream = params.get("stream")?;
        StreamPath::parse(stream).ok().map(|path| path.project().to_owned())
    }
}

/// Runs before every handler: authentication, authorization and the
/// project's CORS origins. It records the caller in `ctx.principal` and the
/// project's origins in `ctx.cors_origins`, which apply to the answer even
/// when the gate refuses (an allowed origin must be able to read its `401`).
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait Gate: MaybeSendSync {
    /// `Err` answers the request instead of its handler.
    async fn admit(&self, ctx: &mut RequestContext, admission: Admission<'_>) -> Result<(), ApiError>;
}

/// Admits every request: no authentication (explicit, for local development).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenGate;

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl Gate for OpenGate {
    async fn admit(&self, _ctx: &mut RequestContext, _admission: Admission<'_>) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Handles one request with no gate (every request admitted); see [`handle_gated`].
pub async fn handle<A: Api + ?Sized>(
    api: &A,
    config: &ServiceConfig,
    ctx: RequestContext,
    request: http::Request<Bytes>,
) -> http::Response<Body> {
    handle_gated(api, &OpenGate, config, ctx, request).await
}

/// Handles one request: routes it, lets `gate` admit it, decodes it, calls
/// the handler, encodes the answer and adds CORS and the always-sent headers.
pub async fn handle_gated<A: Api + ?Sized, G: Gate + ?Sized>(
    api: &A,
    gate: &G,
    config: &ServiceConfig,
    mut ctx: RequestContext,
    request: http::Request<Bytes>,
) -> http::Response<Body> {
    let (parts, body) = request.into_parts();
    let origin = parts.headers.get(http::header::ORIGIN).cloned();
    let mut response = match route(api, gate, &mut ctx, &parts, body).await {
        Ok(response) => response,
        Err(error) => error.into_http(),
    };
    finish(&mut response, config, origin.as_ref(), &ctx);
    response
}

async fn route<A: Api + ?Sized, G: Gate + ?Sized>(
    api: &A,
    gate: &G,
    ctx: &mut RequestContext,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<http::Response<Body>, ApiError> {
    let path = parts.uri.path();
    if parts.method == Method::OPTIONS {
        // Preflights are answered even if the project cannot be loaded.
        let _ = gate.admit(ctx, Admission::Preflight { path }).await;
        return preflight(path);
    }
    match router::match_route(&parts.method, path)? {
        RouteMatch::Found { operation, params } => {
            gate.admit(ctx, Admission::Operation { operation, params: &params, parts }).await?;
            router::dispatch(api, ctx, operation, params, parts, body).await
        }
        RouteMatch::MethodNotAllowed { allow } => {
            let allow = allow_header(&allow);
            let problem = Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here; allowed: {allow}", parts.method),
            );
            let value = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("OPTIONS"));
            Err(ApiError::from(problem).with_header(http::header::ALLOW, value))
        }
        RouteMatch::NotFound => Err(Problem::not_found(format!("no route for {path}")).into()),
    }
}

fn allow_header(methods: &[Method]) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    names.push("OPTIONS");
    names.join(", ")
}

/// The answer to a CORS preflight: the path's methods and every header
/// browsers may send.
fn preflight(path: &str) -> Result<http::Response<Body>, ApiError> {
    let Some(first) = router::ROUTES
        .iter()
        .find(|route| matches!(crate::routing::match_path(route.segments, path), Ok(Some(_))))
    else {
        return Err(Problem::not_found(format!("no route for {path}")).into());
    };
    // The first matching template decides, as for `405`.
    let methods: Vec<Method> = router::ROUTES
        .iter()
        .filter(|route| route.path == first.path)
        .map(|route| route.method.clone())
        .collect();
    let mut response = http::Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    let allow = allow_header(&methods);
    if let Ok(value) = HeaderValue::from_str(&allow) {
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_METHODS, value.clone());
        headers.insert(http::header::ALLOW, value);
    }
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(headers::CORS_ALLOW_HEADERS),
    );
    headers.insert(http::header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(PREFLIGHT_MAX_AGE_SECONDS));
    Ok(response)
}

/// Adds the always-sent headers, the request id and CORS.
pub fn finish(
    response: &mut http::Response<Body>,
    config: &ServiceConfig,
    origin: Option<&HeaderValue>,
    ctx: &RequestContext,
) {
    let headers = response.headers_mut();
    headers::apply_always(headers);
    if let Ok(value) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert(http::HeaderName::from_static(names::X_REQUEST_ID), value);
    }
    apply_cors(headers, config, &ctx.cors_origins, origin);
}

/// Adds `Access-Control-Allow-Origin` (and the expose list) when `origin`
/// is allowed host-wide or by the project (`project_origins`); nothing for
/// a foreign origin.
pub fn apply_cors(
    headers: &mut http::HeaderMap,
    config: &ServiceConfig,
    project_origins: &[String],
    origin: Option<&HeaderValue>,
) {
    let listed = |list: &[String]| {
        origin
            .filter(|origin| {
                let origin = origin.to_str().unwrap_or_default();
                list.iter().any(|allowed| allowed == "*" || allowed == origin)
            })
            .cloned()
    };
    let allowed = match &config.cors {
        CorsOrigins::Any => Some(HeaderValue::from_static("*")),
        CorsOrigins::None => listed(project_origins),
        CorsOrigins::List(list) => listed(list).or_else(|| listed(project_origins)),
    };
    let Some(allowed) = allowed else { return };
    if allowed != "*" {
        headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    }
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(headers::CORS_EXPOSE_HEADERS),
    );
}
