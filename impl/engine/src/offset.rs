//! Offsets: `%016d_%016d` (`readSeq_byteOffset`), zero-padded decimal.
//!
//! `0000000000000000_0000000000000000` is the start of every stream. This engine always
//! generates `readSeq = 0`; the byte part is the logical position in the stream's byte space
//! (for JSON streams: the sum of the stored messages' lengths). Offsets sort lexicographically
//! because both parts have a fixed width.
//!
//! Clients may also send the sentinels `-1` (start) and `now` (current tail). Anything else is
//! invalid (400).

use std::fmt;

use crate::error::ProtocolError;

/// Largest value either part may hold (16 decimal digits).
pub const PART_MAX: u64 = 9_999_999_999_999_999;

/// A concrete position in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    /// The `readSeq` part. Always 0 for offsets this engine generates.
    pub read_seq: u64,
    /// The byte part: logical byte position.
    pub byte: u64,
}

impl Offset {
    /// Start of every stream.
    pub const ZERO: Offset = Offset { read_seq: 0, byte: 0 };

    /// The offset at logical byte position `byte`.
    pub fn at(byte: u64) -> Offset {
        Offset { read_seq: 0, byte }
    }

    /// Strict parse of the `%016d_%016d` form (no sentinels).
    pub fn parse(s: &str) -> Result<Offset, ProtocolError> {
        let b = s.as_bytes();
        if b.len() != 33 || b.get(16) != Some(&b'_') {
            return Err(ProtocolError::bad_request("invalid offset"));
        }
        let read_seq = parse_part(s.get(..16))?;
        let byte = parse_part(s.get(17..))?;
        Ok(Offset { read_seq, byte })
    }
}

fn parse_part(part: Option<&str>) -> Result<u64, ProtocolError> {
    let part = part.ok_or_else(|| ProtocolError::bad_request("invalid offset"))?;
    if part.len() != 16 || !part.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ProtocolError::bad_request("invalid offset"));
    }
    part.parse::<u64>().map_err(|_| ProtocolError::bad_request("invalid offset"))
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016}_{:016}", self.read_seq, self.byte)
    }
}

/// The `offset` a reader asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// `-1` or absent: the start of the stream.
    Start,
    /// `now`: the current tail.
    Now,
    /// A concrete offset.
    At(Offset),
}

impl ReadFrom {
    /// Parse the value of the `offset` query parameter. Empty or malformed → 400.
    pub fn parse(s: &str) -> Result<ReadFrom, ProtocolError> {
        match s {
            "-1" => Ok(ReadFrom::Start),
            "now" => Ok(ReadFrom::Now),
            other => Offset::parse(other).map(ReadFrom::At),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_formats_as_the_suite_expects() {
        assert_eq!(Offset::ZERO.to_string(), "0000000000000000_0000000000000000");
        assert_eq!(Offset::at(42).to_string(), "0000000000000000_0000000000000042");
    }

    #[test]
    fn sentinels() {
        assert_eq!(ReadFrom::parse("-1"), Ok(ReadFrom::Start));
        assert_eq!(ReadFrom::parse("now"), Ok(ReadFrom::Now));
        assert_eq!(
            ReadFrom::parse("0000000000000000_0000000000000005"),
            Ok(ReadFrom::At(Offset::at(5)))
        );
    }

    #[test]
    fn invalid_offsets_are_rejected() {
        for bad in [
            "", "0,1", "0 1", "-2", "NOW", "now ", "../x", "/..", "\0", "\n", "\r\n", "a/b",
            "0000000000000000_000000000000000", "0000000000000000-0000000000000000",
            "000000000000000a_0000000000000000", "+000000000000000_0000000000000000",
            "0000000000000000_0000000000000000 ", "0000000000000000_00000000000000000",
            "0000000000000000_+000000000000000",
        ] {
            assert!(ReadFrom::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn ordering_matches_string_ordering() {
        let a = Offset::at(9);
        let b = Offset::at(10);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert!(Offset { read_seq: 1, byte: 0 } > Offset::at(PART_MAX));
    }

    proptest! {
        #[test]
        fn roundtrip(seq in 0..=PART_MAX, byte in 0..=PART_MAX) {
            let o = Offset { read_seq: seq, byte };
            prop_assert_eq!(Offset::parse(&o.to_string()), Ok(o));
        }

        #[test]
        fn order_is_lexicographic(a in 0..=PART_MAX, b in 0..=PART_MAX) {
            let (x, y) = (Offset::at(a), Offset::at(b));
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,40}") {
            if let Ok(ReadFrom::At(o)) = ReadFrom::parse(&s) {
                prop_assert_eq!(o.to_string(), s);
            }
        }
    }
}
