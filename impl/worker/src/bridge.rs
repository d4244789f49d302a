//! Conversions between Workers requests/responses and the `http` types the
//! generated service speaks. Bodies above the limit are refused before they
//! are read.

use bytes::Bytes;
use durable_streams_api::{Body, Problem};
use futures::StreamExt;
use worker::{Headers, Request, Response};

/// Reads a Workers request into an `http::Request<Bytes>`.
pub async fn into_http(mut request: Request, max_body_bytes: usize) -> Result<http::Request<Bytes>, Problem> {
    let url = request.url().map_err(|e| Problem::bad_request(format!("bad URL: {e}")))?;
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{}", url.path(), query),
        None => url.path().to_owned(),
    };
    let method = http::Method::from_bytes(request.method().as_ref().as_bytes())
        .map_err(|_| Problem::bad_request("unknown method"))?;
    let mut builder = http::Request::builder().method(method).uri(path_and_query);
    let mut declared_length = None;
    for (name, value) in request.headers().entries() {
        if name.eq_ignore_ascii_case(http::header::CONTENT_LENGTH.as_str()) {
            declared_length = value.parse::<usize>().ok();
        }
        builder = builder.header(name, value);
    }
    if declared_length.is_some_and(|length| length > max_body_bytes) {
        return Err(Problem::payload_too_large(format!("the body exceeds {max_body_bytes} bytes")));
    }
    let body = request.bytes().await.map_err(|e| Problem::bad_request(format!("unreadable body: {e}")))?;
    if body.len() > max_body_bytes {
        return Err(Problem::payload_too_large(format!("the body exceeds {max_body_bytes} bytes")));
    }
    builder.body(Bytes::from(body)).map_err(|e| Problem::bad_request(format!("bad request: {e}")))
}

/// Turns the service's answer into a Workers response; streamed bodies stay streamed.
pub fn from_http(response: http::Response<Body>) -> worker::Result<Response> {
    let (parts, body) = response.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let response = match body {
        Body::Empty => Response::empty()?,
        Body::Full(bytes) => Response::from_bytes(bytes.to_vec())?,
        Body::Stream(stream) => Response::from_stream(stream.map(|chunk| {
            chunk.map(|bytes| bytes.to_vec()).map_err(|e| worker::Error::RustError(e.to_string()))
        }))?,
    };
    Ok(response.with_status(parts.status.as_u16()).with_headers(headers))
}

/// Reads a Workers response (from a Durable Object) into `http` form.
pub async fn response_into_http(mut response: Response) -> worker::Result<http::Response<Bytes>> {
    let mut builder = http::Response::builder().status(response.status_code());
    for (name, value) in response.headers().entries() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?;
    builder.body(Bytes::from(body)).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Builds a Workers request (to a Durable Object) from `http` form.
pub fn request_from_http(request: http::Request<Bytes>) -> worker::Result<Request> {
    let (parts, body) = request.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::from(parts.method.as_str().to_owned())).with_headers(headers);
    if !body.is_empty() {
        let array = worker::js_sys::Uint8Array::from(body.as_ref());
        init.with_body(Some(array.into()));
    }
    Request::new_with_init(&parts.uri.to_string(), &init)
}

/// Sends `request` to the stream object named `object` (its `STREAMS` stub).
pub async fn call_object(env: &worker::Env, object: &str, request: http::Request<Bytes>) -> worker::Result<Response> {
    let stub = env.durable_object(crate::STREAMS_BINDING)?.get_by_name(object)?;
    stub.fetch_with_request(request_from_http(request)?).await
}
