//! Forks: `PUT` with `Stream-Forked-From` (and optionally `Stream-Fork-Offset`,
//! `Stream-Fork-Sub-Offset`).
//!
//! A fork shares the source's offset space: positions below its *fork point* are read from
//! the source chain (capped at the fork point), positions at or above it from the fork's own
//! log. The fork point is the fork offset plus the sub-offset, which counts bytes (binary
//! streams) or flattened messages (JSON streams) past the fork offset; a sub-offset that
//! overshoots the remaining source data → 400.
//!
//! A stream that still has forks is soft-deleted by DELETE (410 afterwards; its data stays for
//! the forks); when its last fork goes, it is cleaned up, cascading up the chain. Forks inherit
//! the source's TTL / Expires-At unless they ask for their own, and never inherit producer or
//! `Stream-Seq` state.

use crate::error::ProtocolError;
use crate::offset::Offset;

/// The fork part of a create request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkSpec {
    /// Stream key of the source.
    pub source: String,
    /// `Stream-Fork-Offset`; `None` = the source's tail at creation.
    pub offset: Option<Offset>,
    /// `Stream-Fork-Sub-Offset`; 0 = absent.
    pub sub_offset: u64,
}

/// Validate the fork headers. `source_key` is the already-mapped key of `Stream-Forked-From`
/// (mapping a path to a key is the host's business).
pub fn from_headers(
    source_key: Option<String>,
    offset: Option<&str>,
    sub_offset: Option<&str>,
) -> Result<Option<ForkSpec>, ProtocolError> {
    let Some(source) = source_key else {
        if offset.is_some() || sub_offset.is_some() {
            return Err(ProtocolError::bad_request(
                "Stream-Fork-Offset and Stream-Fork-Sub-Offset require Stream-Forked-From",
            ));
        }
        return Ok(None);
    };
    if source.is_empty() {
        return Err(ProtocolError::bad_request("empty Stream-Forked-From"));
    }
    let offset = offset.map(Offset::parse).transpose()?;
    let sub_offset = match sub_offset {
        None => 0,
        Some(s) => parse_sub_offset(s)?,
    };
    if sub_offset > 0 && offset.is_none() {
        return Err(ProtocolError::bad_request("Stream-Fork-Sub-Offset requires Stream-Fork-Offset"));
    }
    Ok(Some(ForkSpec { source, offset, sub_offset }))
}

/// `^(0|[1-9][0-9]*)$`.
pub fn parse_sub_offset(value: &str) -> Result<u64, ProtocolError> {
    let bad = || ProtocolError::bad_request("invalid Stream-Fork-Sub-Offset");
    let ok = match value.as_bytes() {
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    if !ok || value.len() > 16 {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_fork() {
        assert_eq!(from_headers(None, None, None), Ok(None));
    }

    #[test]
    fn fork_headers_need_a_source() {
        assert!(from_headers(None, Some("0000000000000000_0000000000000000"), None).is_err());
        assert!(from_headers(None, None, Some("0")).is_err());
    }

    #[test]
    fn sub_offset_rules() {
        let src = || Some("s".to_owned());
        assert!(from_headers(src(), None, Some("1")).is_err());
        assert_eq!(from_headers(src(), None, Some("0")).unwrap().unwrap().sub_offset, 0);
        let z = Some("0000000000000000_0000000000000000");
        assert_eq!(from_headers(src(), z, Some("3")).unwrap().unwrap().sub_offset, 3);
        for bad in ["-1", "abc", "1.5", "05", "+1", ""] {
            assert!(from_headers(src(), z, Some(bad)).is_err(), "{bad:?}");
        }
        assert!(from_headers(src(), Some("bogus"), None).is_err());
    }

    proptest! {
        #[test]
        fn sub_offset_grammar(s in "[-+.0-9a]{0,6}") {
            let grammar = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
            prop_assert_eq!(parse_sub_offset(&s).is_ok(), grammar);
        }
    }
}
