//! Error answers: a short `application/problem+json` body (RFC 9457) with
//! the protocol's status code, plus any headers the status needs.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::body::Body;
use crate::types::Problem;

/// The media type of error bodies.
pub const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

impl Default for Problem {
    /// `500 Internal Server Error` without a detail.
    fn default() -> Self {
        Problem {
            type_: "about:blank".to_owned(),
            title: "Internal Server Error".to_owned(),
            status: 500,
            detail: None,
        }
    }
}

impl Problem {
    /// A problem with the given status and a detail for this request.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            type_: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: Some(detail.into()),
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// `401 Unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// `403 Forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// `404 Not Found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// `409 Conflict`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// `410 Gone`.
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, detail)
    }

    /// `413 Payload Too Large`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// `429 Too Many Requests`.
    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
    }

    /// `500 Internal Server Error`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// `501 Not Implemented`.
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, detail)
    }

    /// `503 Service Unavailable`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// The status code (500 when the stored number is not a valid status).
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body.
    pub fn to_body(&self) -> Bytes {
        // Serialising a struct of strings and a number cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// An answer outside an operation's documented outcomes: an internal
/// failure, an unimplemented operation, or a generic problem raised by the
/// router or a host (authentication, limits).
#[derive(Debug)]
pub struct ApiError {
    /// The problem body (its `status` is the response status).
    pub problem: Problem,
    /// Extra headers, e.g. `Retry-After`.
    pub headers: HeaderMap,
}

impl ApiError {
    /// Adds a header.
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Encodes the error as an HTTP response.
    pub fn into_http(self) -> http::Response<Body> {
        problem_response(&self.problem, self.headers)
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError { problem, headers: HeaderMap::new() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.problem.status, self.problem.title)?;
        if let Some(detail) = &self.problem.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A problem response with the given extra headers.
pub fn problem_response(problem: &Problem, headers: HeaderMap) -> http::Response<Body> {
    let mut response = http::Response::new(Body::Full(problem.to_body()));
    *response.status_mut() = problem.status_code();
    let response_headers = response.headers_mut();
    response_headers.extend(headers);
    response_headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_MEDIA_TYPE));
    response
}
