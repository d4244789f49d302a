//! `Stream-Cursor` for live reads (CDN request collapsing).
//!
//! The cursor is the number of 20-second intervals since 2024-10-09T00:00:00Z, in decimal.
//! If the client's echoed cursor is not behind the current interval, the answer must be
//! strictly greater: add a random jitter of 1–3600 s worth of intervals (at least one).
//! Randomness is injected.

/// Length of one cursor interval.
pub const INTERVAL_MS: i64 = 20_000;
/// 2024-10-09T00:00:00Z in Unix milliseconds.
pub const EPOCH_MS: i64 = 1_728_432_000_000;

/// The current interval number.
pub fn interval(now_ms: i64) -> u64 {
    u64::try_from((now_ms - EPOCH_MS).div_euclid(INTERVAL_MS)).unwrap_or(0)
}

/// The cursor to answer with, given the client's `cursor` query parameter (if any) and a source
/// of random numbers (any `u64`).
pub fn next_cursor(now_ms: i64, client: Option<&str>, random: &mut dyn FnMut() -> u64) -> String {
    let current = interval(now_ms);
    let client = client.and_then(|c| c.parse::<u64>().ok());
    let value = match client {
        Some(c) if c >= current => {
            let jitter_s = 1 + random() % 3600;
            let jitter_intervals = jitter_s.div_ceil(INTERVAL_MS as u64 / 1000).max(1);
            c.saturating_add(jitter_intervals)
        }
        _ => current,
    };
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_count() {
        assert_eq!(interval(EPOCH_MS), 0);
        assert_eq!(interval(EPOCH_MS + 19_999), 0);
        assert_eq!(interval(EPOCH_MS + 20_000), 1);
        assert_eq!(interval(0), 0);
    }

    #[test]
    fn without_client_cursor_is_current() {
        let now = EPOCH_MS + 100_000;
        assert_eq!(next_cursor(now, None, &mut || 0), "5");
        assert_eq!(next_cursor(now, Some("3"), &mut || 0), "5");
        assert_eq!(next_cursor(now, Some("garbage"), &mut || 0), "5");
    }

    #[test]
    fn client_at_or_ahead_gets_strictly_greater() {
        let now = EPOCH_MS + 100_000;
        for r in [0, 1, 19, 20, 3599, u64::MAX] {
            for c in ["5", "9"] {
                let next: u64 = next_cursor(now, Some(c), &mut || r).parse().unwrap();
                assert!(next > c.parse().unwrap(), "r={r} c={c} next={next}");
                assert!(next <= c.parse::<u64>().unwrap() + 180);
            }
        }
    }
}
