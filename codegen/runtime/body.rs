//! Response bodies that are either complete or a stream of chunks (SSE,
//! long reads), independent of the runtime that serves them: a host adapts
//! `Body` to hyper or to a Workers `Response`.

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;

/// An error raised while producing a streamed body; the host ends the response.
pub type BodyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A stream of body chunks. `Send` on native hosts; wasm hosts are single-threaded.
#[cfg(not(target_arch = "wasm32"))]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send + 'static>>;
/// A stream of body chunks. `Send` on native hosts; wasm hosts are single-threaded.
#[cfg(target_arch = "wasm32")]
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + 'static>>;

/// A response body.
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A complete body.
    Full(Bytes),
    /// A body produced chunk by chunk (SSE, long reads). No `Content-Length`.
    Stream(BodyStream),
}

impl Body {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(bytes.into())
    }

    /// A streamed body.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn stream(stream: impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static) -> Self {
        Body::Stream(Box::pin(stream))
    }

    /// A streamed body.
    #[cfg(target_arch = "wasm32")]
    pub fn stream(stream: impl Stream<Item = Result<Bytes, BodyError>> + 'static) -> Self {
        Body::Stream(Box::pin(stream))
    }

    /// The body's bytes when it is complete (`Empty` is zero bytes), `None` for a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Body::Empty => Some(&[]),
            Body::Full(bytes) => Some(bytes),
            Body::Stream(_) => None,
        }
    }

    /// Whether the body is produced chunk by chunk.
    pub fn is_stream(&self) -> bool {
        matches!(self, Body::Stream(_))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(bytes) => write!(f, "Body::Full({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Body::Stream(..)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Full(bytes.into())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Full(text.into())
    }
}
