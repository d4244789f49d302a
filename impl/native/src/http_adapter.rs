//! ALL HTTP parsing and mapping lives here (axum). The rest of the host works with the
//! engine's domain types through [`Service`]; a generated router can replace this module.
//!
//! Routes: `GET /health`, `{PUT,POST,GET,HEAD,DELETE,OPTIONS} /v1/stream/{name}` (`name` may
//! contain `/`). A single-segment name belongs to project `_default`: the stream key is
//! `<project>/<rest>`, so later auth can read the project from the key.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use durable_streams_engine::producer::ProducerHeaders;
use durable_streams_engine::ttl::Expiry;
use durable_streams_engine::{
    closure, etag, fork, stream_seq, AppendRequest, AppendStatus, CreateRequest, CreateStatus, ProtocolError, ReadFrom,
};

use crate::service::{LongPoll, ReadChunk, Service};

const STREAM_PREFIX: &str = "/v1/stream/";
const DEFAULT_PROJECT: &str = "_default";

const ALLOW_HEADERS: &str = "content-type, authorization, if-none-match, Stream-Seq, Stream-TTL, Stream-Expires-At, \
    Stream-Closed, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset";
const EXPOSE_HEADERS: &str = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Producer-Epoch, \
    Producer-Seq, Producer-Expected-Seq, Producer-Received-Seq, Stream-TTL, Stream-Expires-At, etag, content-type, \
    content-encoding, vary, location, stream-sse-data-encoding";

const H_NEXT_OFFSET: &str = "stream-next-offset";
const H_UP_TO_DATE: &str = "stream-up-to-date";
const H_CLOSED: &str = "stream-closed";
const H_CURSOR: &str = "stream-cursor";
const H_TTL: &str = "stream-ttl";
const H_EXPIRES_AT: &str = "stream-expires-at";
const H_SEQ: &str = "stream-seq";
const H_PRODUCER_ID: &str = "producer-id";
const H_PRODUCER_EPOCH: &str = "producer-epoch";
const H_PRODUCER_SEQ: &str = "producer-seq";
const H_EXPECTED_SEQ: &str = "producer-expected-seq";
const H_RECEIVED_SEQ: &str = "producer-received-seq";
const H_FORKED_FROM: &str = "stream-forked-from";
const H_FORK_OFFSET: &str = "stream-fork-offset";
const H_FORK_SUB_OFFSET: &str = "stream-fork-sub-offset";
const H_SSE_ENCODING: &str = "stream-sse-data-encoding";

/// Build the router.
pub fn router(service: Arc<Service>) -> Router {
    let limit = usize::try_from(service.config.max_append_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/health", get(|| async { (StatusCode::OK, "ok") }))
        .route("/v1/stream/{*name}", any(stream))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(common_headers))
        .with_state(service)
}

/// Security and CORS headers on every response (errors included); OPTIONS preflights.
async fn common_headers(req: Request, next: Next) -> Response {
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE, HEAD, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        r
    } else {
        next.run(req).await
    };
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && resp.headers().get(header::CONTENT_TYPE).is_none_or(|v| v != "application/problem+json") {
        resp = problem(&ProtocolError::PayloadTooLarge { limit_bytes: 0 }, "request body too large");
    }
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("cross-origin"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    resp
}

async fn fallback() -> Response {
    error(&ProtocolError::NotFound)
}

/// Stream key of a raw (still percent-encoded) stream name.
pub fn stream_key(name: &str) -> Option<String> {
    if name.is_empty() || name.split('/').any(|s| s.is_empty()) || name.split('/').next() == Some("__ds") {
        return None;
    }
    Some(if name.contains('/') { name.to_owned() } else { format!("{DEFAULT_PROJECT}/{name}") })
}

/// Key of a `Stream-Forked-From` value (a path such as `/v1/stream/x`, or a full URL).
fn fork_source_key(value: &str) -> Result<String, ProtocolError> {
    let path = match value.find("://") {
        Some(i) => value.get(i + 3..).and_then(|rest| rest.find('/').and_then(|j| rest.get(j..))).unwrap_or(""),
        None => value,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let name = path.strip_prefix(STREAM_PREFIX).or_else(|| path.strip_prefix('/')).unwrap_or(path);
    stream_key(name).ok_or_else(|| ProtocolError::bad_request("invalid Stream-Forked-From"))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ProtocolError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ProtocolError::bad_request(format!("invalid {name} header"))),
    }
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn problem(err: &ProtocolError, detail: &str) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "type": "about:blank",
        "title": err.title(),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    match err {
        ProtocolError::StreamClosed { next_offset } => {
            set(h, H_CLOSED, "true");
            set(h, H_NEXT_OFFSET, &next_offset.to_string());
        }
        ProtocolError::ProducerFenced { current_epoch } => set(h, H_PRODUCER_EPOCH, &current_epoch.to_string()),
        ProtocolError::ProducerSeqGap { expected, received } => {
            set(h, H_EXPECTED_SEQ, &expected.to_string());
            set(h, H_RECEIVED_SEQ, &received.to_string());
        }
        ProtocolError::Storage(_) => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}

fn error(err: &ProtocolError) -> Response {
    if let ProtocolError::Storage(e) = err {
        tracing::warn!(error = %e, "storage error");
    }
    problem(err, &err.to_string())
}

/// Strict query parsing: `offset` at most once and never empty; unknown parameters ignored.
#[derive(Debug, Default)]
struct Query {
    offset: Option<String>,
    live: Option<String>,
    cursor: Option<String>,
}

fn percent_decode(s: &str) -> Result<String, ProtocolError> {
    let bad = || ProtocolError::bad_request("invalid percent-encoding in query");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'%') => {
                let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            Some(c) => {
                out.push(*c);
                i += 1;
            }
            None => break,
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

fn parse_query(q: Option<&str>) -> Result<Query, ProtocolError> {
    let mut query = Query::default();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match percent_decode(k)?.as_str() {
            "offset" => &mut query.offset,
            "live" => &mut query.live,
            "cursor" => &mut query.cursor,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ProtocolError::bad_request("repeated query parameter"));
        }
        *slot = Some(percent_decode(v)?);
    }
    if query.offset.as_deref() == Some("") {
        return Err(ProtocolError::bad_request("empty offset"));
    }
    Ok(query)
}

async fn stream(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let Some(key) = path.strip_prefix(STREAM_PREFIX).and_then(stream_key) else {
        return error(&ProtocolError::NotFound);
    };
    let result = match parts.method {
        Method::PUT | Method::POST => match axum::body::to_bytes(body, usize::try_from(svc.config.max_append_bytes).unwrap_or(usize::MAX)).await {
            Err(_) => Err(ProtocolError::PayloadTooLarge { limit_bytes: svc.config.max_append_bytes }),
            Ok(bytes) if parts.method == Method::PUT => create(&svc, key, &path, &parts.headers, bytes).await,
            Ok(bytes) => append(&svc, key, &parts.headers, bytes).await,
        },
        Method::GET => read(&svc, key, parts.uri.query(), &parts.headers).await,
        Method::HEAD => head(&svc, key).await,
        Method::DELETE => svc.delete(key).await.map(|_| StatusCode::NO_CONTENT.into_response()),
        _ => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    };
    result.unwrap_or_else(|e| error(&e))
}

async fn create(svc: &Service, key: String, path: &str, h: &HeaderMap, body: Bytes) -> Result<Response, ProtocolError> {
    let expiry = Expiry::from_headers(header_str(h, H_TTL)?, header_str(h, H_EXPIRES_AT)?)?;
    let source = header_str(h, H_FORKED_FROM)?.map(fork_source_key).transpose()?;
    let fork = fork::from_headers(source, header_str(h, H_FORK_OFFSET)?, header_str(h, H_FORK_SUB_OFFSET)?)?;
    let req = CreateRequest {
        key,
        content_type: header_str(h, header::CONTENT_TYPE.as_str())?.map(str::to_owned),
        expiry,
        closed: closure::parse_header(header_str(h, H_CLOSED)?),
        fork,
        body,
    };
    let out = svc.create(req).await?;
    let status = match out.status {
        CreateStatus::Created => StatusCode::CREATED,
        CreateStatus::Exists => StatusCode::OK,
    };
    let mut resp = status.into_response();
    let rh = resp.headers_mut();
    set(rh, "content-type", &out.content_type);
    set(rh, H_NEXT_OFFSET, &out.next_offset.to_string());
    if out.closed {
        set(rh, H_CLOSED, "true");
    }
    if out.status == CreateStatus::Created {
        let host = header_str(h, header::HOST.as_str())?.unwrap_or("localhost");
        set(rh, "location", &format!("http://{host}{path}"));
    }
    Ok(resp)
}

async fn append(svc: &Service, key: String, h: &HeaderMap, body: Bytes) -> Result<Response, ProtocolError> {
    let producer = ProducerHeaders::from_headers(
        header_str(h, H_PRODUCER_ID)?,
        header_str(h, H_PRODUCER_EPOCH)?,
        header_str(h, H_PRODUCER_SEQ)?,
    )?;
    let with_producer = producer.is_some();
    let req = AppendRequest {
        key,
        content_type: header_str(h, header::CONTENT_TYPE.as_str())?.map(str::to_owned),
        body,
        close: closure::parse_header(header_str(h, H_CLOSED)?),
        stream_seq: header_str(h, H_SEQ)?.map(stream_seq::parse).transpose()?,
        producer,
    };
    let out = svc.append(req).await?;
    let status = match out.status {
        AppendStatus::Appended if with_producer => StatusCode::OK,
        _ => StatusCode::NO_CONTENT,
    };
    let mut resp = status.into_response();
    let rh = resp.headers_mut();
    set(rh, H_NEXT_OFFSET, &out.next_offset.to_string());
    if out.closed {
        set(rh, H_CLOSED, "true");
    }
    if let Some(ack) = out.producer {
        set(rh, H_PRODUCER_EPOCH, &ack.epoch.to_string());
        set(rh, H_PRODUCER_SEQ, &ack.seq.to_string());
    }
    Ok(resp)
}

async fn head(svc: &Service, key: String) -> Result<Response, ProtocolError> {
    let out = svc.head(key).await?;
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    set(h, "content-type", &out.content_type);
    set(h, H_NEXT_OFFSET, &out.next_offset.to_string());
    set(h, "cache-control", "no-store");
    if out.closed {
        set(h, H_CLOSED, "true");
    }
    match &out.expiry {
        Expiry::Never => {}
        Expiry::Ttl { seconds } => set(h, H_TTL, &seconds.to_string()),
        Expiry::ExpiresAt { raw, .. } => set(h, H_EXPIRES_AT, raw),
    }
    Ok(resp)
}

/// Headers and body of a 200 read.
fn data_response(key: &str, chunk: ReadChunk, now: bool, cursor: Option<String>, if_none_match: Option<&str>) -> Response {
    let o = &chunk.outcome;
    let tag = (!now).then(|| etag::etag(key, o.start, o.next_offset, o.closed));
    let not_modified = matches!((&tag, if_none_match), (Some(t), Some(inm)) if etag::if_none_match(inm, t));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, Body::from(chunk.body.clone())).into_response()
    };
    let h = resp.headers_mut();
    set(h, "content-type", &o.content_type);
    set(h, H_NEXT_OFFSET, &o.next_offset.to_string());
    if o.up_to_date {
        set(h, H_UP_TO_DATE, "true");
    }
    if o.closed {
        set(h, H_CLOSED, "true");
    }
    if let Some(t) = &tag {
        set(h, "etag", t);
    }
    if let Some(c) = cursor {
        set(h, H_CURSOR, &c);
    }
    if now {
        set(h, "cache-control", "no-store");
    } else if !o.up_to_date && o.has_data() {
        set(h, "cache-control", "public, max-age=60, stale-while-revalidate=300");
    }
    resp
}

async fn read(svc: &Arc<Service>, key: String, query: Option<&str>, h: &HeaderMap) -> Result<Response, ProtocolError> {
    let q = parse_query(query)?;
    let from = q.offset.as_deref().map(ReadFrom::parse).transpose()?;
    let inm = header_str(h, header::IF_NONE_MATCH.as_str())?;
    match q.live.as_deref() {
        None => {
            let from = from.unwrap_or(ReadFrom::Start);
            let chunk = svc.read(&key, from).await?;
            Ok(data_response(&key, chunk, from == ReadFrom::Now, None, inm))
        }
        Some("long-poll") => {
            let from = from.ok_or_else(|| ProtocolError::bad_request("live reads require an offset"))?;
            let cursor = svc.cursor(q.cursor.as_deref());
            match svc.long_poll(&key, from).await? {
                LongPoll::Ready(chunk) if chunk.outcome.has_data() => {
                    Ok(data_response(&key, chunk, false, Some(cursor), inm))
                }
                LongPoll::Ready(chunk) => Ok(no_content(chunk.outcome.next_offset.to_string(), chunk.outcome.closed, cursor)),
                LongPoll::TimedOut { tail, closed } => Ok(no_content(tail.to_string(), closed, cursor)),
            }
        }
        Some("sse") => {
            let from = from.ok_or_else(|| ProtocolError::bad_request("live reads require an offset"))?;
            let sse = svc.sse(&key, from, q.cursor.clone()).await?;
            let stream = futures::stream::unfold(sse.events, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
            });
            let mut resp = (StatusCode::OK, Body::from_stream(stream)).into_response();
            let rh = resp.headers_mut();
            set(rh, "content-type", "text/event-stream");
            set(rh, "cache-control", "no-cache");
            if sse.base64 {
                set(rh, H_SSE_ENCODING, "base64");
            }
            Ok(resp)
        }
        Some(_) => Err(ProtocolError::bad_request("live must be long-poll or sse")),
    }
}

fn no_content(next: String, closed: bool, cursor: String) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    set(h, H_NEXT_OFFSET, &next);
    set(h, H_UP_TO_DATE, "true");
    if closed {
        set(h, H_CLOSED, "true");
    } else {
        set(h, H_CURSOR, &cursor);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_a_project() {
        assert_eq!(stream_key("a").as_deref(), Some("_default/a"));
        assert_eq!(stream_key("p/a/b").as_deref(), Some("p/a/b"));
        assert_eq!(stream_key(""), None);
        assert_eq!(stream_key("a//b"), None);
        assert_eq!(stream_key("__ds/x"), None);
    }

    #[test]
    fn fork_sources() {
        assert_eq!(fork_source_key("/v1/stream/x").unwrap(), "_default/x");
        assert_eq!(fork_source_key("http://h:1/v1/stream/p/x").unwrap(), "p/x");
        assert!(fork_source_key("").is_err());
    }

    #[test]
    fn query_rules() {
        assert!(parse_query(Some("offset=a&offset=b")).is_err());
        assert!(parse_query(Some("offset=")).is_err());
        assert!(parse_query(Some("offset=%zz")).is_err());
        let q = parse_query(Some("offset=-1&foo=bar&live=sse")).unwrap();
        assert_eq!(q.offset.as_deref(), Some("-1"));
        assert_eq!(q.live.as_deref(), Some("sse"));
        let q = parse_query(Some("offset=0%201")).unwrap();
        assert_eq!(q.offset.as_deref(), Some("0 1"));
    }
}
