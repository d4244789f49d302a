//! `Stream-Seq`: an opaque writer sequence per stream, compared bytewise-lexicographically.
//! A value that is not strictly greater than the last accepted one → 409.

use crate::error::ProtocolError;

/// Check `received` against the last accepted value.
pub fn check(last: Option<&str>, received: &str) -> Result<(), ProtocolError> {
    match last {
        Some(last) if received.as_bytes() <= last.as_bytes() => Err(ProtocolError::StreamSeqRegression {
            last: last.to_owned(),
            received: received.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Syntax of the header value: non-empty visible ASCII.
pub fn parse(value: &str) -> Result<String, ProtocolError> {
    if value.is_empty() || !value.bytes().all(|c| (0x21..0x7f).contains(&c)) {
        return Err(ProtocolError::bad_request("invalid Stream-Seq"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_value_is_accepted() {
        assert!(check(None, "1").is_ok());
    }

    #[test]
    fn lexicographic_not_numeric() {
        assert!(check(Some("2"), "10").is_err());
        assert!(check(Some("09"), "10").is_ok());
        assert!(check(Some("a"), "b").is_ok());
    }

    #[test]
    fn duplicates_and_case() {
        assert!(check(Some("5"), "5").is_err());
        assert!(check(Some("a"), "B").is_err());
        assert!(check(Some("B"), "a").is_ok());
    }

    #[test]
    fn syntax() {
        assert!(parse("").is_err());
        assert!(parse("a b").is_err());
        assert_eq!(parse("abc").unwrap(), "abc");
    }
}
