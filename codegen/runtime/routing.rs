//! Path matching and query parsing shared by every generated route.

use std::borrow::Cow;

use crate::codec;
use crate::types::Problem;

/// One segment of a route's path template.
#[derive(Clone, Copy, Debug)]
pub enum Segment {
    /// A literal segment.
    Literal(&'static str),
    /// A parameter spanning one segment.
    Param(&'static str),
    /// A parameter spanning the rest of the path, slashes included.
    Rest(&'static str),
}

/// Path parameters captured by a match, percent-decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathParams(pub Vec<(&'static str, String)>);

impl PathParams {
    /// The value of a captured parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

fn percent_decode(raw: &str) -> Result<String, Problem> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| Problem::bad_request("the path is not valid UTF-8 after percent-decoding"))
}

/// Matches `path` (without query) against a template. `Ok(None)` when it does
/// not match; `Err` when it matches but a parameter cannot be decoded.
pub fn match_path(template: &[Segment], path: &str) -> Result<Option<PathParams>, Problem> {
    let Some(mut remaining) = path.strip_prefix('/') else {
        return Ok(None);
    };
    let mut captured: Vec<(&'static str, &str)> = Vec::new();
    for (index, segment) in template.iter().enumerate() {
        if let Segment::Rest(name) = segment {
            if remaining.is_empty() {
                return Ok(None);
            }
            captured.push((name, remaining));
            remaining = "";
            break;
        }
        let (head, tail) = match remaining.split_once('/') {
            Some((head, tail)) => (head, Some(tail)),
            None => (remaining, None),
        };
        match segment {
            Segment::Literal(literal) if head != *literal => return Ok(None),
            Segment::Param(_) if head.is_empty() => return Ok(None),
            Segment::Param(name) => captured.push((name, head)),
            Segment::Literal(_) | Segment::Rest(_) => {}
        }
        let is_last = index + 1 == template.len();
        match (tail, is_last) {
            (None, true) => remaining = "",
            (Some(tail), false) => remaining = tail,
            _ => return Ok(None),
        }
    }
    if !remaining.is_empty() {
        return Ok(None);
    }
    let mut params = PathParams::default();
    for (name, raw) in captured {
        params.0.push((name, percent_decode(raw)?));
    }
    Ok(Some(params))
}

/// A parsed query string. Unknown parameters are kept but never read.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (`application/x-www-form-urlencoded`).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|raw| form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        Query(pairs)
    }

    /// A strict parameter: at most once and never empty.
    pub fn strict(&self, name: &str) -> Result<Option<&str>, Problem> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(Problem::bad_request(format!("query parameter `{name}` must not be repeated")));
        }
        match first {
            Some("") => Err(Problem::bad_request(format!("query parameter `{name}` must not be empty"))),
            other => Ok(other),
        }
    }

    /// A lenient parameter: its first occurrence, if any.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Decodes a header's value with a codec, naming the header when it fails.
pub fn header_value<T>(
    headers: &http::HeaderMap,
    name: &'static str,
    decode: impl Fn(&str) -> Result<T, codec::Invalid>,
) -> Result<Option<T>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(format!("invalid header {name}: must not be repeated")));
    }
    let text = value
        .to_str()
        .map_err(|_| Problem::bad_request(format!("invalid header {name}: must be visible ASCII")))?;
    decode(text)
        .map(Some)
        .map_err(|why| Problem::bad_request(format!("invalid header {name}: {why}")))
}

/// Reads a `flag` header: `true` (any case) or absent; never an error.
pub fn header_flag(headers: &http::HeaderMap, name: &'static str) -> bool {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .is_some_and(codec::flag)
}

/// Decodes a query parameter's value with a codec, naming the parameter when it fails.
pub fn query_value<T>(
    value: Option<&str>,
    name: &'static str,
    decode: impl Fn(&str) -> Result<T, codec::Invalid>,
) -> Result<Option<T>, Problem> {
    value
        .map(|value| decode(value).map_err(|why| Problem::bad_request(format!("invalid query parameter `{name}`: {why}"))))
        .transpose()
}

/// Decodes a path parameter's value with a codec, naming the parameter when it fails.
pub fn path_value<T>(
    params: &PathParams,
    name: &'static str,
    decode: impl Fn(&str) -> Result<T, codec::Invalid>,
) -> Result<T, Problem> {
    let value = params
        .get(name)
        .ok_or_else(|| Problem::bad_request(format!("missing path parameter `{name}`")))?;
    decode(value).map_err(|why| Problem::bad_request(format!("invalid path parameter `{name}`: {why}")))
}

/// Parses a JSON request body, describing the failure.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|error| Problem::bad_request(format!("invalid JSON body: {error}")))
}

/// Sets a header from a string when it is a valid header value.
pub fn set_header(headers: &mut http::HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = http::HeaderValue::from_str(value) {
        headers.insert(http::HeaderName::from_static(name), value);
    }
}

/// Characters escaped when a value becomes one URL path segment.
pub const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');
