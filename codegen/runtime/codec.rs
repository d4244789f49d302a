//! Value codecs for headers, query and path parameters. Each codec enforces
//! exactly the grammar (regular expression) that `spec/headers.yaml` and
//! `spec/openapi.yaml` give it; `CODECS` lists them so tests can check the
//! two agree.

// `CODECS`: every codec and the grammar it enforces (shared with the code generator).
include!("codec_table.rs");

/// The largest integer a `decimal53` value may hold (2^53 - 1).
pub const MAX_DECIMAL53: u64 = (1 << 53) - 1;

/// Why a value was rejected.
pub type Invalid = &'static str;

/// `flag`: `true` in any case. Every other value reads as `false`.
pub fn flag(value: &str) -> bool {
    value.eq_ignore_ascii_case("true")
}

/// `decimal`: a non-negative decimal integer without sign or leading zeros.
pub fn decimal(value: &str) -> Result<u64, Invalid> {
    let bytes = value.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return Err("must be a non-negative decimal integer");
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return Err("must not have leading zeros");
    }
    value.parse::<u64>().map_err(|_| "is too large")
}

/// `decimal53`: a `decimal` of at most 2^53 - 1.
pub fn decimal53(value: &str) -> Result<u64, Invalid> {
    let number = decimal(value)?;
    if number > MAX_DECIMAL53 {
        return Err("must be at most 2^53 - 1");
    }
    Ok(number)
}

/// `offset`: sixteen digits, `_`, sixteen digits.
pub fn offset(value: &str) -> Result<String, Invalid> {
    let bytes = value.as_bytes();
    let well_formed = bytes.len() == 33
        && bytes[16] == b'_'
        && bytes[..16].iter().all(u8::is_ascii_digit)
        && bytes[17..].iter().all(u8::is_ascii_digit);
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err("must be an offset returned in Stream-Next-Offset")
    }
}

/// `read-offset`: an `offset`, `-1` (start of stream) or `now` (tail).
pub fn read_offset(value: &str) -> Result<String, Invalid> {
    match value {
        "-1" | "now" => Ok(value.to_owned()),
        _ => offset(value).map_err(|_| "must be -1, now, or an offset returned in Stream-Next-Offset"),
    }
}

/// `timestamp`: an RFC 3339 date-time with a valid calendar date and time.
pub fn timestamp(value: &str) -> Result<String, Invalid> {
    const MESSAGE: Invalid = "must be an RFC 3339 date-time";
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = b.get(range)?;
        if slice.is_empty() || !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        slice.iter().try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let year = digits(0..4).ok_or(MESSAGE)?;
    let month = digits(5..7).ok_or(MESSAGE)?;
    let day = digits(8..10).ok_or(MESSAGE)?;
    let hour = digits(11..13).ok_or(MESSAGE)?;
    let minute = digits(14..16).ok_or(MESSAGE)?;
    let second = digits(17..19).ok_or(MESSAGE)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return Err(MESSAGE);
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(MESSAGE),
    };
    if day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(MESSAGE);
    }
    let mut rest = &b[19..];
    if let Some((b'.', after)) = rest.split_first() {
        let fraction = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return Err(MESSAGE);
        }
        rest = &after[fraction..];
    }
    match rest {
        [b'Z' | b'z'] => Ok(value.to_owned()),
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let all_digits = [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit());
            let hours = u32::from(h1.wrapping_sub(b'0')) * 10 + u32::from(h2.wrapping_sub(b'0'));
            let minutes = u32::from(m1.wrapping_sub(b'0')) * 10 + u32::from(m2.wrapping_sub(b'0'));
            if all_digits && hours <= 23 && minutes <= 59 {
                Ok(value.to_owned())
            } else {
                Err(MESSAGE)
            }
        }
        _ => Err(MESSAGE),
    }
}

/// `token`: one or more visible ASCII characters.
pub fn token(value: &str) -> Result<String, Invalid> {
    if !value.is_empty() && value.bytes().all(|c| (0x21..=0x7E).contains(&c)) {
        Ok(value.to_owned())
    } else {
        Err("must be non-empty visible ASCII")
    }
}

/// `text`: visible ASCII characters and spaces.
pub fn text(value: &str) -> Result<String, Invalid> {
    if value.bytes().all(|c| (0x20..=0x7E).contains(&c)) {
        Ok(value.to_owned())
    } else {
        Err("must be visible ASCII")
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&c)
}

/// `media-type`: `type/subtype`, optionally followed by parameters.
pub fn media_type(value: &str) -> Result<String, Invalid> {
    const MESSAGE: Invalid = "must be a media type such as application/json";
    let b = value.as_bytes();
    let type_len = b.iter().take_while(|c| is_tchar(**c)).count();
    if type_len == 0 || b.get(type_len) != Some(&b'/') {
        return Err(MESSAGE);
    }
    let rest = &b[type_len + 1..];
    let subtype_len = rest.iter().take_while(|c| is_tchar(**c)).count();
    if subtype_len == 0 {
        return Err(MESSAGE);
    }
    let params = &rest[subtype_len..];
    let spaces = params.iter().take_while(|c| **c == b' ').count();
    let ok = params.is_empty() || params.get(spaces) == Some(&b';');
    // Parameters (after `;`) may hold anything but a line feed.
    if ok && !params.contains(&b'\n') {
        Ok(value.to_owned())
    } else {
        Err(MESSAGE)
    }
}

/// `project`: 1 to 128 letters, digits, `_` or `-`.
pub fn project(value: &str) -> Result<String, Invalid> {
    let ok = (1..=128).contains(&value.len())
        && value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be 1 to 128 letters, digits, '_' or '-'")
    }
}

/// `id`: 1 to 256 letters, digits, `_`, `:`, `.` or `-`.
pub fn id(value: &str) -> Result<String, Invalid> {
    let ok = (1..=256).contains(&value.len())
        && value.bytes().all(|c| c.is_ascii_alphanumeric() || b"_:.-".contains(&c));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("must be 1 to 256 letters, digits, '_', ':', '.' or '-'")
    }
}

/// Whether `value` is accepted by the named codec (for grammar tests).
pub fn accepts(codec: &str, value: &str) -> Option<bool> {
    Some(match codec {
        "flag" => flag(value),
        "decimal" => decimal(value).is_ok(),
        "decimal53" => decimal53(value).is_ok(),
        "offset" => offset(value).is_ok(),
        "read-offset" => read_offset(value).is_ok(),
        "timestamp" => timestamp(value).is_ok(),
        "token" => token(value).is_ok(),
        "text" => text(value).is_ok(),
        "media-type" => media_type(value).is_ok(),
        "project" => project(value).is_ok(),
        "id" => id(value).is_ok(),
        _ => return None,
    })
}

/// A boolean query parameter: `true` or `false`.
pub fn boolean(value: &str) -> Result<bool, Invalid> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("must be true or false"),
    }
}

/// Why a response could not be decoded (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a response header with a codec (client side).
pub fn response_header<T>(
    headers: &http::HeaderMap,
    name: &'static str,
    decode: impl Fn(&str) -> Result<T, Invalid>,
) -> Result<Option<T>, DecodeError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| DecodeError(format!("header {name} is not visible ASCII")))?;
            decode(text).map(Some).map_err(|why| DecodeError(format!("header {name} {why}")))
        }
    }
}

/// A parameter without a grammar: any string.
pub fn any(value: &str) -> Result<String, Invalid> {
    Ok(value.to_owned())
}
