//! Server-Sent Events framing for `live=sse`.
//!
//! ```text
//! event: data
//! data:<line>
//! data:<line>
//!
//! event: control
//! data:{"streamNextOffset":"…","streamCursor":"…","upToDate":true}
//!
//! ```
//!
//! * Every data event is immediately followed by a control event.
//! * Payload lines are split on CR, LF and CRLF so stored bytes can never start a new event.
//! * Streams other than `text/*` and `application/json` are base64-encoded (and the host sends
//!   `stream-sse-data-encoding: base64`).
//! * Control events are flat camelCase JSON objects; once `streamClosed` is set there is no
//!   cursor, and the host closes the connection after it.

use base64::Engine as _;
use serde::Serialize;

use crate::offset::Offset;

/// Payload of a control event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    pub stream_next_offset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_cursor: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub up_to_date: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream_closed: bool,
}

impl Control {
    /// A control event; `cursor` is dropped when `closed`.
    pub fn new(next: Offset, cursor: Option<String>, up_to_date: bool, closed: bool) -> Control {
        Control {
            stream_next_offset: next.to_string(),
            stream_cursor: if closed { None } else { cursor },
            up_to_date,
            stream_closed: closed,
        }
    }
}

/// Frame a data event. `payload` is the body a catch-up read would return for the same range.
pub fn data_event(payload: &[u8], base64: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 32);
    out.extend_from_slice(b"event: data\n");
    if base64 {
        let encoded = base64::engine::general_purpose::STANDARD.encode(payload);
        // Lines of at most 76 characters (a multiple of 4, so every line is valid base64).
        let mut rest = encoded.as_bytes();
        if rest.is_empty() {
            out.extend_from_slice(b"data:\n");
        }
        while !rest.is_empty() {
            let (line, tail) = rest.split_at(rest.len().min(76));
            out.extend_from_slice(b"data:");
            out.extend_from_slice(line);
            out.push(b'\n');
            rest = tail;
        }
    } else {
        for line in split_lines(payload) {
            out.extend_from_slice(b"data:");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.push(b'\n');
    out
}

/// Frame a control event.
pub fn control_event(control: &Control) -> Vec<u8> {
    let json = serde_json::to_string(control).unwrap_or_else(|_| String::from("{}"));
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: control\ndata:");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// Split on CRLF, CR or LF. An empty payload is one empty line.
fn split_lines(payload: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < payload.len() {
        match payload.get(i) {
            Some(b'\r') => {
                lines.push(payload.get(start..i).unwrap_or_default());
                if payload.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            Some(b'\n') => {
                lines.push(payload.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    lines.push(payload.get(start..).unwrap_or_default());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_event_layout() {
        assert_eq!(data_event(b"hello", false), b"event: data\ndata:hello\n\n");
        assert_eq!(data_event(b"a\nb", false), b"event: data\ndata:a\ndata:b\n\n");
    }

    #[test]
    fn injection_is_impossible() {
        let evil = b"x\r\nevent: control\rdata:{}\n\nevent: data";
        let framed = String::from_utf8(data_event(evil, false)).unwrap();
        // Every line of the event starts with `data:` except the first and the blank end.
        let lines: Vec<&str> = framed.split('\n').collect();
        assert_eq!(lines[0], "event: data");
        for l in &lines[1..lines.len() - 2] {
            assert!(l.starts_with("data:"), "{l:?}");
            assert!(!l.contains('\r'));
        }
        assert_eq!(&lines[lines.len() - 2..], ["", ""]);
    }

    #[test]
    fn base64_layout() {
        let framed = String::from_utf8(data_event(&[0, 1, 2, 255], true)).unwrap();
        assert_eq!(framed, "event: data\ndata:AAEC/w==\n\n");
        assert_eq!(data_event(b"", true), b"event: data\ndata:\n\n");
    }

    #[test]
    fn control_layout() {
        let c = Control::new(Offset::at(3), Some("7".into()), true, false);
        assert_eq!(
            String::from_utf8(control_event(&c)).unwrap(),
            "event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000003\",\"streamCursor\":\"7\",\"upToDate\":true}\n\n"
        );
        let closed = Control::new(Offset::at(3), Some("7".into()), false, true);
        assert_eq!(
            String::from_utf8(control_event(&closed)).unwrap(),
            "event: control\ndata:{\"streamNextOffset\":\"0000000000000000_0000000000000003\",\"streamClosed\":true}\n\n"
        );
    }

    proptest! {
        #[test]
        fn base64_lines_rejoin(payload in proptest::collection::vec(any::<u8>(), 0..500)) {
            let framed = String::from_utf8(data_event(&payload, true)).unwrap();
            let joined: String = framed.lines().filter_map(|l| l.strip_prefix("data:")).collect();
            prop_assert_eq!(joined.len() % 4, 0);
            prop_assert_eq!(base64::engine::general_purpose::STANDARD.decode(joined).unwrap(), payload);
        }

        #[test]
        fn text_lines_rejoin(payload in "[a-z\n]{0,60}") {
            let framed = String::from_utf8(data_event(payload.as_bytes(), false)).unwrap();
            let body = framed.strip_prefix("event: data\n").unwrap().strip_suffix("\n\n").unwrap();
            let joined: Vec<&str> = body.split('\n').map(|l| l.strip_prefix("data:").unwrap()).collect();
            prop_assert_eq!(joined.join("\n"), payload);
        }
    }
}
