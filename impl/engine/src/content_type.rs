//! Content types: fixed at creation, compared case-insensitively ignoring parameters.

/// Type used when a PUT has no `Content-Type`.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The media type without parameters, trimmed and lowercased: `Application/JSON; charset=utf-8`
/// → `application/json`.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Do two content types name the same media type?
pub fn matches(a: &str, b: &str) -> bool {
    essence(a) == essence(b)
}

/// Is this a JSON-mode stream (`application/json`, any case, any parameters)?
pub fn is_json(content_type: &str) -> bool {
    essence(content_type) == "application/json"
}

/// Must SSE data events of this type be base64-encoded? Everything except `text/*` and
/// `application/json` is.
pub fn sse_needs_base64(content_type: &str) -> bool {
    let e = essence(content_type);
    !(e.starts_with("text/") || e == "application/json")
}

/// A syntactically acceptable content type: `type/subtype` with token characters.
pub fn is_valid(content_type: &str) -> bool {
    let e = essence(content_type);
    let mut parts = e.splitn(2, '/');
    let (Some(t), Some(s)) = (parts.next(), parts.next()) else { return false };
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
    };
    token(t) && token(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_ignores_case_and_parameters() {
        assert!(matches("APPLICATION/JSON", "application/json"));
        assert!(matches("application/json; charset=utf-8", "application/json"));
        assert!(!matches("text/plain", "application/json"));
    }

    #[test]
    fn json_mode_detection() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/Json;charset=utf-8"));
        assert!(!is_json("application/jsonl"));
        assert!(!is_json("text/json"));
    }

    #[test]
    fn base64_for_non_text() {
        assert!(!sse_needs_base64("text/plain"));
        assert!(!sse_needs_base64("text/html; charset=utf-8"));
        assert!(!sse_needs_base64("application/json"));
        assert!(sse_needs_base64("application/octet-stream"));
        assert!(sse_needs_base64("application/x-protobuf"));
        assert!(sse_needs_base64("image/png"));
    }

    #[test]
    fn validity() {
        assert!(is_valid("text/plain"));
        assert!(is_valid("application/vnd.api+json; charset=utf-8"));
        assert!(!is_valid(""));
        assert!(!is_valid("text"));
        assert!(!is_valid("text/"));
        assert!(!is_valid("te xt/plain"));
    }
}
