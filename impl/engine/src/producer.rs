//! Idempotent producers (`Producer-Id`, `Producer-Epoch`, `Producer-Seq`).
//!
//! State per `(stream, producer id)`: `{epoch, last_seq}`, committed in the same transaction
//! as the data it accepted. Validation:
//!
//! | condition | result |
//! |---|---|
//! | `epoch < state.epoch` | 403 + current epoch (zombie fencing) |
//! | `epoch > state.epoch`, `seq != 0` | 400 |
//! | `epoch > state.epoch`, `seq == 0` | accept (new epoch) |
//! | same epoch, `seq <= last` | duplicate (204, highest accepted seq) |
//! | same epoch, `seq == last + 1` | accept |
//! | same epoch, `seq > last + 1` | 409 + expected/received |
//! | unknown producer | like `last = -1`: `seq == 0` accepted at any epoch, else 409 expecting 0 |

use crate::error::ProtocolError;

/// Largest epoch/seq: integers must be exact in a JavaScript number (and in DO SQLite).
pub const MAX_VALUE: u64 = (1 << 53) - 1;

/// The three producer headers of a request, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerHeaders {
    pub id: String,
    pub epoch: u64,
    pub seq: u64,
}

impl ProducerHeaders {
    /// All three headers or none; a partial set or a bad value → 400.
    pub fn from_headers(
        id: Option<&str>,
        epoch: Option<&str>,
        seq: Option<&str>,
    ) -> Result<Option<ProducerHeaders>, ProtocolError> {
        match (id, epoch, seq) {
            (None, None, None) => Ok(None),
            (Some(id), Some(epoch), Some(seq)) => {
                if id.is_empty() {
                    return Err(ProtocolError::bad_request("empty Producer-Id"));
                }
                Ok(Some(ProducerHeaders {
                    id: id.to_owned(),
                    epoch: parse_number(epoch, "Producer-Epoch")?,
                    seq: parse_number(seq, "Producer-Seq")?,
                }))
            }
            _ => Err(ProtocolError::bad_request(
                "Producer-Id, Producer-Epoch and Producer-Seq must be sent together",
            )),
        }
    }
}

/// A decimal integer in `0 ..= 2^53-1`, digits only.
pub fn parse_number(value: &str, name: &str) -> Result<u64, ProtocolError> {
    let bad = || ProtocolError::bad_request(format!("invalid {name}"));
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = value.parse().map_err(|_| bad())?;
    if n > MAX_VALUE {
        return Err(bad());
    }
    Ok(n)
}

/// Stored state of one producer on one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    pub epoch: u64,
    pub last_seq: u64,
}

/// What to do with a producer's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write it; afterwards the state becomes `new_state`.
    Accept { new_state: ProducerState },
    /// Already written: answer 204 with `Producer-Seq: highest_seq`.
    Duplicate { epoch: u64, highest_seq: u64 },
}

/// Only the epoch fence (used before the closed check: a stale epoch on a closed stream is a 403).
pub fn check_epoch(state: Option<ProducerState>, req: &ProducerHeaders) -> Result<(), ProtocolError> {
    match state {
        Some(s) if req.epoch < s.epoch => Err(ProtocolError::ProducerFenced { current_epoch: s.epoch }),
        _ => Ok(()),
    }
}

/// Full validation (see the module table).
pub fn validate(state: Option<ProducerState>, req: &ProducerHeaders) -> Result<Decision, ProtocolError> {
    let accept = || Decision::Accept { new_state: ProducerState { epoch: req.epoch, last_seq: req.seq } };
    let Some(s) = state else {
        return if req.seq == 0 {
            Ok(accept())
        } else {
            Err(ProtocolError::ProducerSeqGap { expected: 0, received: req.seq })
        };
    };
    check_epoch(state, req)?;
    if req.epoch > s.epoch {
        return if req.seq == 0 {
            Ok(accept())
        } else {
            Err(ProtocolError::bad_request("a new producer epoch must start at Producer-Seq 0"))
        };
    }
    if req.seq <= s.last_seq {
        return Ok(Decision::Duplicate { epoch: s.epoch, highest_seq: s.last_seq });
    }
    if req.seq == s.last_seq + 1 {
        return Ok(accept());
    }
    Err(ProtocolError::ProducerSeqGap { expected: s.last_seq + 1, received: req.seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(epoch: u64, seq: u64) -> ProducerHeaders {
        ProducerHeaders { id: "p".into(), epoch, seq }
    }
    fn st(epoch: u64, last_seq: u64) -> Option<ProducerState> {
        Some(ProducerState { epoch, last_seq })
    }

    #[test]
    fn header_set_rules() {
        assert_eq!(ProducerHeaders::from_headers(None, None, None), Ok(None));
        assert!(ProducerHeaders::from_headers(Some("p"), Some("0"), None).is_err());
        assert!(ProducerHeaders::from_headers(None, Some("0"), Some("0")).is_err());
        assert!(ProducerHeaders::from_headers(Some(""), Some("0"), Some("0")).is_err());
        assert_eq!(ProducerHeaders::from_headers(Some("p"), Some("1"), Some("2")), Ok(Some(h(1, 2))));
    }

    #[test]
    fn number_syntax() {
        for bad in ["1abc", "0xyz", "1e3", "-1", "", "+1", " 1", "9007199254740992", "99999999999999999999"] {
            assert!(parse_number(bad, "x").is_err(), "{bad:?}");
        }
        assert_eq!(parse_number("9007199254740991", "x"), Ok(MAX_VALUE));
        assert_eq!(parse_number("007", "x"), Ok(7));
    }

    #[test]
    fn unknown_producer() {
        assert_eq!(validate(None, &h(0, 0)), Ok(Decision::Accept { new_state: ProducerState { epoch: 0, last_seq: 0 } }));
        assert!(matches!(validate(None, &h(3, 0)), Ok(Decision::Accept { .. })));
        assert_eq!(validate(None, &h(3, 2)), Err(ProtocolError::ProducerSeqGap { expected: 0, received: 2 }));
    }

    #[test]
    fn same_epoch_transitions() {
        assert!(matches!(validate(st(1, 4), &h(1, 5)), Ok(Decision::Accept { .. })));
        assert_eq!(validate(st(1, 4), &h(1, 4)), Ok(Decision::Duplicate { epoch: 1, highest_seq: 4 }));
        assert_eq!(validate(st(1, 4), &h(1, 0)), Ok(Decision::Duplicate { epoch: 1, highest_seq: 4 }));
        assert_eq!(validate(st(1, 4), &h(1, 7)), Err(ProtocolError::ProducerSeqGap { expected: 5, received: 7 }));
    }

    #[test]
    fn epoch_transitions() {
        assert_eq!(validate(st(2, 4), &h(1, 5)), Err(ProtocolError::ProducerFenced { current_epoch: 2 }));
        assert!(matches!(validate(st(2, 4), &h(3, 0)), Ok(Decision::Accept { .. })));
        assert!(matches!(validate(st(2, 4), &h(3, 1)), Err(ProtocolError::BadRequest(_))));
        assert!(check_epoch(st(2, 0), &h(1, 0)).is_err());
        assert!(check_epoch(st(2, 0), &h(2, 0)).is_ok());
        assert!(check_epoch(None, &h(0, 0)).is_ok());
    }

    proptest! {
        #[test]
        fn number_parser_agrees_with_std(s in "[0-9]{1,17}") {
            let expected = s.parse::<u64>().ok().filter(|n| *n <= MAX_VALUE);
            prop_assert_eq!(parse_number(&s, "x").ok(), expected);
        }

        #[test]
        fn accepted_seq_is_always_next(epoch in 0u64..5, last in 0u64..100, seq in 0u64..200) {
            match validate(st(epoch, last), &h(epoch, seq)) {
                Ok(Decision::Accept { new_state }) => prop_assert_eq!(new_state.last_seq, last + 1),
                Ok(Decision::Duplicate { highest_seq, .. }) => { prop_assert!(seq <= last); prop_assert_eq!(highest_seq, last) }
                Err(_) => prop_assert!(seq > last + 1),
            }
        }
    }
}
