//! JSON mode (`application/json` streams).
//!
//! * A top-level array in an append body is flattened exactly one level; each element is one
//!   message. Any other JSON value is one message.
//! * POST `[]` → 400; PUT `[]` → an empty stream.
//! * Invalid JSON → 400.
//! * Reads render all messages in range as one JSON array.
//!
//! Messages are stored as their original JSON text (no re-serialisation).

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::error::ProtocolError;

/// Where the body comes from: the empty-array rule differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// PUT initial content: `[]` creates an empty stream.
    Create,
    /// POST append: `[]` is rejected.
    Append,
}

/// Split a JSON body into messages (flattening one array level).
pub fn flatten(body: &[u8], kind: BodyKind) -> Result<Vec<Bytes>, ProtocolError> {
    let text = std::str::from_utf8(body).map_err(|_| ProtocolError::bad_request("invalid JSON: not UTF-8"))?;
    let value: &RawValue =
        serde_json::from_str(text).map_err(|e| ProtocolError::bad_request(format!("invalid JSON: {e}")))?;
    let raw = value.get();
    if raw.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(raw)
            .map_err(|e| ProtocolError::bad_request(format!("invalid JSON: {e}")))?;
        if items.is_empty() && kind == BodyKind::Append {
            return Err(ProtocolError::bad_request("empty JSON array"));
        }
        Ok(items.into_iter().map(|v| Bytes::copy_from_slice(v.get().as_bytes())).collect())
    } else {
        Ok(vec![Bytes::copy_from_slice(raw.as_bytes())])
    }
}

/// Render messages (each one JSON text) as a single JSON array.
pub fn render_array<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(b'[');
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(body: &str, kind: BodyKind) -> Result<Vec<String>, ProtocolError> {
        flatten(body.as_bytes(), kind)
            .map(|v| v.into_iter().map(|b| String::from_utf8(b.to_vec()).unwrap_or_default()).collect())
    }

    #[test]
    fn flattening_examples() {
        assert_eq!(texts(r#"{"e":1}"#, BodyKind::Append).unwrap(), vec![r#"{"e":1}"#]);
        assert_eq!(texts(r#"[{"a":1},{"b":2}]"#, BodyKind::Append).unwrap(), vec![r#"{"a":1}"#, r#"{"b":2}"#]);
        assert_eq!(texts("[[1,2],[3,4]]", BodyKind::Append).unwrap(), vec!["[1,2]", "[3,4]"]);
        assert_eq!(texts("[[[1,2,3]]]", BodyKind::Append).unwrap(), vec!["[[1,2,3]]"]);
        assert_eq!(texts(" 42 ", BodyKind::Append).unwrap(), vec!["42"]);
    }

    #[test]
    fn empty_array_rules() {
        assert_eq!(texts("[]", BodyKind::Create).unwrap(), Vec::<String>::new());
        assert_eq!(texts(" [ ] ", BodyKind::Create).unwrap(), Vec::<String>::new());
        assert!(matches!(texts("[]", BodyKind::Append), Err(ProtocolError::BadRequest(_))));
    }

    #[test]
    fn invalid_json_is_rejected() {
        for bad in ["{", "[1,]", "nope", "", "{} {}", "[1] x"] {
            assert!(texts(bad, BodyKind::Append).is_err(), "{bad:?}");
            assert!(texts(bad, BodyKind::Create).is_err(), "{bad:?}");
        }
        assert!(flatten(&[0xff, 0xfe], BodyKind::Append).is_err());
    }

    #[test]
    fn render() {
        assert_eq!(render_array(Vec::<&[u8]>::new()), b"[]");
        assert_eq!(render_array([&b"1"[..], &b"{\"a\":2}"[..]]), br#"[1,{"a":2}]"#);
    }

    proptest! {
        #[test]
        fn arrays_roundtrip(values in proptest::collection::vec(any::<i64>(), 1..20)) {
            let body = serde_json::to_string(&values).unwrap();
            let msgs = flatten(body.as_bytes(), BodyKind::Append).unwrap();
            prop_assert_eq!(msgs.len(), values.len());
            let rendered = render_array(msgs.iter().map(|m| &m[..]));
            let back: Vec<i64> = serde_json::from_slice(&rendered).unwrap();
            prop_assert_eq!(back, values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = flatten(&body, BodyKind::Append);
        }
    }
}
