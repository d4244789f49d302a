//! Stream lifetime: `Stream-TTL` (sliding idle window, seconds) or `Stream-Expires-At`
//! (absolute RFC 3339 time).
//!
//! * A sliding TTL is renewed by every read and write that reaches the stream, including
//!   `GET offset=now`, live reads (when they start) and close-only POSTs; **not** by HEAD.
//! * `Stream-Expires-At` is never extended.
//! * An expired stream behaves as missing (404) and a PUT recreates it (201), unless forks
//!   still reference it: then it answers 410 and its data is kept for them.

use crate::error::ProtocolError;

/// The lifetime configured on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Lives until deleted.
    #[default]
    Never,
    /// Sliding idle window.
    Ttl { seconds: u64 },
    /// Absolute deadline; `raw` is echoed back on HEAD as the client sent it.
    ExpiresAt { at_ms: i64, raw: String },
}

impl Expiry {
    /// Parse the two headers. Both present → 400; bad syntax → 400.
    pub fn from_headers(ttl: Option<&str>, expires_at: Option<&str>) -> Result<Expiry, ProtocolError> {
        match (ttl, expires_at) {
            (Some(_), Some(_)) => Err(ProtocolError::bad_request(
                "Stream-TTL and Stream-Expires-At are mutually exclusive",
            )),
            (Some(t), None) => Ok(Expiry::Ttl { seconds: parse_ttl(t)? }),
            (None, Some(e)) => Ok(Expiry::ExpiresAt { at_ms: parse_expires_at(e)?, raw: e.to_owned() }),
            (None, None) => Ok(Expiry::Never),
        }
    }

    /// Has a stream with this expiry, last touched at `last_access_ms`, expired at `now_ms`?
    pub fn is_expired(&self, last_access_ms: i64, now_ms: i64) -> bool {
        match self {
            Expiry::Never => false,
            Expiry::Ttl { seconds } => {
                let ttl_ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
                now_ms >= last_access_ms.saturating_add(ttl_ms)
            }
            Expiry::ExpiresAt { at_ms, .. } => now_ms >= *at_ms,
        }
    }

    /// Is the lifetime sliding (renewed by access)?
    pub fn is_sliding(&self) -> bool {
        matches!(self, Expiry::Ttl { .. })
    }

    /// Same configuration for idempotent PUT purposes? (Expires-At compares instants.)
    pub fn same_config(&self, other: &Expiry) -> bool {
        match (self, other) {
            (Expiry::Never, Expiry::Never) => true,
            (Expiry::Ttl { seconds: a }, Expiry::Ttl { seconds: b }) => a == b,
            (Expiry::ExpiresAt { at_ms: a, .. }, Expiry::ExpiresAt { at_ms: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// `^(0|[1-9][0-9]*)$`, in seconds.
pub fn parse_ttl(value: &str) -> Result<u64, ProtocolError> {
    let bad = || ProtocolError::bad_request("invalid Stream-TTL");
    let ok = match value.as_bytes() {
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    if !ok || value.len() > 15 {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

/// RFC 3339 (`Z` or `±hh:mm`) → milliseconds since the Unix epoch.
pub fn parse_expires_at(value: &str) -> Result<i64, ProtocolError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ProtocolError::bad_request("invalid Stream-Expires-At"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ProtocolError::bad_request("invalid Stream-Expires-At"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ttl_syntax() {
        assert_eq!(parse_ttl("0"), Ok(0));
        assert_eq!(parse_ttl("3600"), Ok(3600));
        for bad in ["03600", "+3600", "3600.0", "3.6e3", "-1", "abc", "", " 1", "1 "] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expires_at_syntax() {
        assert_eq!(parse_expires_at("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_expires_at("1970-01-01T01:00:01+01:00"), Ok(1000));
        assert_eq!(parse_expires_at("1970-01-01T00:00:00.5Z"), Ok(500));
        for bad in ["tomorrow", "2025-01-01", "2025-13-01T00:00:00Z", ""] {
            assert!(parse_expires_at(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn both_headers_are_rejected() {
        assert!(Expiry::from_headers(Some("1"), Some("2030-01-01T00:00:00Z")).is_err());
        assert_eq!(Expiry::from_headers(None, None), Ok(Expiry::Never));
    }

    #[test]
    fn sliding_expiry_transition() {
        let e = Expiry::Ttl { seconds: 2 };
        assert!(!e.is_expired(1_000, 2_999));
        assert!(e.is_expired(1_000, 3_000));
        assert!(e.is_sliding());
    }

    #[test]
    fn absolute_expiry_transition() {
        let e = Expiry::ExpiresAt { at_ms: 5_000, raw: String::new() };
        assert!(!e.is_expired(0, 4_999));
        assert!(e.is_expired(4_999, 5_000));
        assert!(!Expiry::Never.is_expired(0, i64::MAX));
    }

    #[test]
    fn config_equality() {
        let a = Expiry::from_headers(None, Some("2030-01-01T00:00:00Z")).unwrap();
        let b = Expiry::from_headers(None, Some("2030-01-01T01:00:00+01:00")).unwrap();
        assert!(a.same_config(&b));
        assert!(!Expiry::Ttl { seconds: 1 }.same_config(&Expiry::Ttl { seconds: 2 }));
        assert!(!Expiry::Never.same_config(&Expiry::Ttl { seconds: 2 }));
    }

    proptest! {
        #[test]
        fn ttl_parser_matches_grammar(s in "[-+0-9.e]{0,8}") {
            let grammar = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
            prop_assert_eq!(parse_ttl(&s).is_ok(), grammar);
        }
    }
}
