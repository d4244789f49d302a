//! Stream paths: `{project}/{name...}`, or a single segment in the project
//! `_default`. Paths whose first segment is `__ds` are reserved for the
//! subscription control plane and never name a stream.

use std::fmt;

use crate::types::Problem;

/// The project of streams addressed without one.
pub const DEFAULT_PROJECT: &str = "_default";

/// The first segment reserved for the subscription control plane.
pub const RESERVED_SEGMENT: &str = "__ds";

/// The longest stream path accepted, in bytes.
pub const MAX_STREAM_PATH_BYTES: usize = 1024;

/// A validated stream path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPath {
    path: String,
    project_len: Option<usize>,
}

impl StreamPath {
    /// Parses a percent-decoded stream path (without `/v1/stream/`).
    pub fn parse(path: &str) -> Result<StreamPath, Problem> {
        if path.is_empty() {
            return Err(Problem::bad_request("the stream path is empty"));
        }
        if path.len() > MAX_STREAM_PATH_BYTES {
            return Err(Problem::bad_request(format!(
                "the stream path is longer than {MAX_STREAM_PATH_BYTES} bytes"
            )));
        }
        if path.chars().any(char::is_control) {
            return Err(Problem::bad_request("the stream path contains control characters"));
        }
        for segment in path.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(Problem::bad_request(
                    "stream path segments must not be empty, `.` or `..`",
                ));
            }
        }
        if path.split('/').next() == Some(RESERVED_SEGMENT) {
            return Err(Problem::not_found("`__ds` paths are reserved for the subscription APIs"));
        }
        let project_len = path.find('/');
        Ok(StreamPath { path: path.to_owned(), project_len })
    }

    /// The owning project: the first segment, or `_default` for single-segment paths.
    pub fn project(&self) -> &str {
        match self.project_len {
            Some(len) => &self.path[..len],
            None => DEFAULT_PROJECT,
        }
    }

    /// The stream's name within its project.
    pub fn name(&self) -> &str {
        match self.project_len {
            Some(len) => &self.path[len + 1..],
            None => &self.path,
        }
    }

    /// The canonical key, `{project}/{name}`: the same stream whether or not
    /// the request spelled out `_default/`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.project(), self.name())
    }

    /// The path as the request gave it (percent-decoded).
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The path percent-encoded for a URL, slashes kept.
    pub fn to_url_path(&self) -> String {
        self.path
            .split('/')
            .map(|segment| percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Characters escaped in a path segment (RFC 3986 `pchar` keeps the rest).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}
