//! ETags of read responses: `"<stream-id>:<start>:<end>[:c]"`.
//!
//! They change with the range served and with closure (the `:c` suffix), so a cached
//! response never hides new data or the EOF signal.

use base64::Engine as _;

use crate::offset::Offset;

/// The (quoted) ETag of a read of `stream_key` from `start` to `end`.
pub fn etag(stream_key: &str, start: Offset, end: Offset, closed: bool) -> String {
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(stream_key.as_bytes());
    let suffix = if closed { ":c" } else { "" };
    format!("\"{id}:{start}:{end}{suffix}\"")
}

/// Does an `If-None-Match` value match `current`? Handles lists, weak tags and `*`.
pub fn if_none_match(header: &str, current: &str) -> bool {
    header.split(',').map(str::trim).any(|t| t == "*" || t == current || t.strip_prefix("W/") == Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_range_and_closure() {
        let a = etag("s", Offset::ZERO, Offset::at(5), false);
        assert_ne!(a, etag("s", Offset::ZERO, Offset::at(6), false));
        assert_ne!(a, etag("s", Offset::ZERO, Offset::at(5), true));
        assert_ne!(a, etag("t", Offset::ZERO, Offset::at(5), false));
        assert!(a.starts_with('"') && a.ends_with('"'));
    }

    #[test]
    fn matching() {
        let e = etag("s", Offset::ZERO, Offset::at(5), false);
        assert!(if_none_match(&e, &e));
        assert!(if_none_match(&format!("\"x\", {e}"), &e));
        assert!(if_none_match(&format!("W/{e}"), &e));
        assert!(if_none_match("*", &e));
        assert!(!if_none_match("\"other\"", &e));
    }
}
