//! Stream closure.
//!
//! * `Stream-Closed` counts only when its value is `true` (any case); anything else is absent.
//! * Close-only (empty body + `Stream-Closed: true`) → 204, idempotent on a closed stream.
//! * Append-and-close closes atomically with the data; repeated on a closed stream without
//!   being the producer retry that closed it → 409 with `Stream-Closed: true`.
//! * Any other append to a closed stream → 409 with `Stream-Closed` and the final offset.
//! * Error precedence on append: closed → content type → sequence.
//! * Closure is durable and monotonic: a closed stream never reopens.

/// Parse a `Stream-Closed` header value.
pub fn parse_header(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Which producer request closed the stream (so its retry is a duplicate, not a conflict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedBy {
    pub producer_id: String,
    pub epoch: u64,
    pub seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_true_counts() {
        assert!(parse_header(Some("true")));
        assert!(parse_header(Some("TRUE")));
        assert!(parse_header(Some("True")));
        for v in ["false", "yes", "1", "", "truex"] {
            assert!(!parse_header(Some(v)), "{v:?}");
        }
        assert!(!parse_header(None));
    }
}
