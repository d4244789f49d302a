//! Errors of the protocol engine.
//!
//! [`ProtocolError`] carries exactly what a host needs to build the answer: the meaning of
//! the status ([`ProtocolError::status`]) and the values of the protocol headers that go with
//! it. It knows nothing of HTTP types.

use crate::offset::Offset;

/// A storage backend failed (SQL, segment store). Maps to a 500/503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl StorageError {
    pub fn new(msg: impl Into<String>) -> Self {
        StorageError(msg.into())
    }
}

/// Why a request was refused. Each variant documents its status and headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// 400: malformed request (header syntax, empty body, invalid JSON, `[]` on append, ...).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 404: the stream does not exist (or has expired, or the fork source is missing).
    #[error("stream not found")]
    NotFound,
    /// 410: the stream is soft-deleted (it still backs forks) or its source expired while forks live.
    #[error("stream is gone")]
    Gone,
    /// 409 with `Stream-Closed: true` and `Stream-Next-Offset: next_offset`: the stream is closed.
    #[error("stream is closed")]
    StreamClosed { next_offset: Offset },
    /// 409: the request's content type differs from the stream's.
    #[error("content type mismatch: stream is {stream}")]
    ContentTypeMismatch { stream: String },
    /// 409: `Stream-Seq` is not strictly greater (bytewise) than the last one.
    #[error("Stream-Seq regression: {received} <= {last}")]
    StreamSeqRegression { last: String, received: String },
    /// 409: the stream exists with a different configuration (or the path is soft-deleted).
    #[error("stream exists with a different configuration: {0}")]
    ConfigMismatch(String),
    /// 403 with `Producer-Epoch: current_epoch`: a zombie producer was fenced.
    #[error("stale producer epoch; current epoch is {current_epoch}")]
    ProducerFenced { current_epoch: u64 },
    /// 409 with `Producer-Expected-Seq` and `Producer-Received-Seq`: a gap in the producer's seq.
    #[error("producer sequence gap: expected {expected}, received {received}")]
    ProducerSeqGap { expected: u64, received: u64 },
    /// 413: the body is larger than the configured limit.
    #[error("payload too large (limit {limit_bytes} bytes)")]
    PayloadTooLarge { limit_bytes: u64 },
    /// 503 (retryable): a storage failure.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ProtocolError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ProtocolError::BadRequest(msg.into())
    }

    /// The HTTP status code this error means.
    pub fn status(&self) -> u16 {
        match self {
            ProtocolError::BadRequest(_) => 400,
            ProtocolError::NotFound => 404,
            ProtocolError::Gone => 410,
            ProtocolError::StreamClosed { .. }
            | ProtocolError::ContentTypeMismatch { .. }
            | ProtocolError::StreamSeqRegression { .. }
            | ProtocolError::ConfigMismatch(_)
            | ProtocolError::ProducerSeqGap { .. } => 409,
            ProtocolError::ProducerFenced { .. } => 403,
            ProtocolError::PayloadTooLarge { .. } => 413,
            ProtocolError::Storage(_) => 503,
        }
    }

    /// A short human title for problem+json bodies.
    pub fn title(&self) -> &'static str {
        match self {
            ProtocolError::BadRequest(_) => "Bad Request",
            ProtocolError::NotFound => "Not Found",
            ProtocolError::Gone => "Gone",
            ProtocolError::StreamClosed { .. } => "Stream Closed",
            ProtocolError::ContentTypeMismatch { .. } => "Content Type Mismatch",
            ProtocolError::StreamSeqRegression { .. } => "Stream-Seq Conflict",
            ProtocolError::ConfigMismatch(_) => "Conflict",
            ProtocolError::ProducerFenced { .. } => "Stale Producer Epoch",
            ProtocolError::ProducerSeqGap { .. } => "Producer Sequence Gap",
            ProtocolError::PayloadTooLarge { .. } => "Payload Too Large",
            ProtocolError::Storage(_) => "Service Unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ProtocolError::bad_request("x").status(), 400);
        assert_eq!(ProtocolError::NotFound.status(), 404);
        assert_eq!(ProtocolError::Gone.status(), 410);
        assert_eq!(ProtocolError::StreamClosed { next_offset: Offset::ZERO }.status(), 409);
        assert_eq!(ProtocolError::ProducerFenced { current_epoch: 1 }.status(), 403);
        assert_eq!(ProtocolError::ProducerSeqGap { expected: 1, received: 3 }.status(), 409);
        assert_eq!(ProtocolError::PayloadTooLarge { limit_bytes: 1 }.status(), 413);
        assert_eq!(ProtocolError::Storage(StorageError::new("x")).status(), 503);
    }
}
