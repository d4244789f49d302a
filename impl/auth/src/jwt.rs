//! HS256 JSON Web Tokens (RFC 7519 over a compact JWS, RFC 7515), the only
//! token format the project accepts, verified strictly:
//!
//! - at most [`TOKEN_BYTES_MAX`] bytes, checked before anything is decoded;
//! - exactly three parts, each unpadded canonical base64url;
//! - the header is a JSON object whose `alg` is exactly `HS256` (`none`,
//!   `HS512`, `hs256` or a missing `alg` are refused) and that lists no
//!   `crit` extensions; `typ`, `kid` and other members are ignored;
//! - the signature is checked (constant time) against every signing secret
//!   of the project, newest first — listing an old secret after a new one is
//!   how keys rotate — before the payload is even parsed;
//! - the payload is a JSON object with a numeric `exp` after now; an `nbf`,
//!   when present, must not be after now. There is no clock leeway.
//!
//! Secrets are opaque bytes: a secret the CLI stored as the JSON text of a
//! JWK is used as exactly those bytes, never parsed.
//!
//! The claims this project reads are [`Claims`]; any others are ignored.
//! `scope` is a single value, `read`, `write` or `manage` — a list such as
//! `"read write"` is refused as an unknown scope rather than guessed at
//! (each scope already includes the ones below it). Empty strings in `sub`,
//! `stream_id` or `session_id` are refused, so an empty `stream_id` can
//! never silently mean "every stream".

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use durable_streams_api::Scope;
use hmac::{Hmac, Mac};
use serde_json::{Map, Number, Value};
use sha2::Sha256;

use crate::error::{AuthError, Refusal};

/// The longest token accepted, in bytes.
pub const TOKEN_BYTES_MAX: usize = 8 * 1024;

/// The one signature algorithm accepted.
pub const ALGORITHM: &str = "HS256";

type HmacSha256 = Hmac<Sha256>;

/// The claims of a project or session token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// The subject: for project tokens, the project id.
    pub sub: Option<String>,
    /// What the token may do.
    pub scope: Option<Scope>,
    /// Expiry, in Unix seconds (required; a fractional value is rounded down).
    pub exp: u64,
    /// Not before, in Unix seconds (a fractional value is rounded up).
    pub nbf: Option<u64>,
    /// When set, the token covers this one stream of its project (the stream's
    /// name within the project, as in `/v1/stream/{project}/{stream_id}`).
    pub stream_id: Option<String>,
    /// For session tokens: the session whose `session:{id}` stream the token covers.
    pub session_id: Option<String>,
}

impl Claims {
    /// A project token: `sub` = the project, with a scope, expiring at `exp` (Unix seconds).
    pub fn project(project: impl Into<String>, scope: Scope, exp: u64) -> Claims {
        Claims { sub: Some(project.into()), scope: Some(scope), exp, nbf: None, stream_id: None, session_id: None }
    }

    /// A session token for `session:{session_id}` streams (read scope unless
    /// a scope is added).
    pub fn session(session_id: impl Into<String>, exp: u64) -> Claims {
        Claims { sub: None, scope: None, exp, nbf: None, stream_id: None, session_id: Some(session_id.into()) }
    }

    /// Limits the token to one stream of its project.
    pub fn for_stream(mut self, stream_id: impl Into<String>) -> Claims {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// The payload's JSON object (absent claims are left out).
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(sub) = &self.sub {
            object.insert("sub".to_owned(), Value::from(sub.as_str()));
        }
        if let Some(scope) = self.scope {
            object.insert("scope".to_owned(), Value::from(scope.as_str()));
        }
        object.insert("exp".to_owned(), Value::from(self.exp));
        if let Some(nbf) = self.nbf {
            object.insert("nbf".to_owned(), Value::from(nbf));
        }
        if let Some(stream_id) = &self.stream_id {
            object.insert("stream_id".to_owned(), Value::from(stream_id.as_str()));
        }
        if let Some(session_id) = &self.session_id {
            object.insert("session_id".to_owned(), Value::from(session_id.as_str()));
        }
        Value::Object(object)
    }
}

/// Mints a token (`{"alg":"HS256","typ":"JWT"}`) for the operator command and tests.
pub fn sign_hs256(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_json().to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// HMAC-SHA256 keyed with `secret` over `data`.
fn mac(secret: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long keys are hashed), so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// Verifies a token against the project's signing secrets (newest first)
/// at `now_secs` (Unix seconds) and returns its claims. Every refusal is a
/// `401`; none says which secret was tried.
pub fn verify_hs256<S: AsRef<[u8]>>(token: &str, secrets: &[S], now_secs: u64) -> Result<Claims, AuthError> {
    if token.is_empty() || token.len() > TOKEN_BYTES_MAX {
        return Err(Refusal::MalformedToken.into());
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::MalformedToken.into());
    };

    let header = json_object(header_b64)?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == ALGORITHM => {}
        _ => return Err(Refusal::UnsupportedAlgorithm.into()),
    }
    if header.contains_key("crit") {
        return Err(Refusal::UnsupportedHeader.into());
    }

    let signature = decode(signature_b64)?;
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let verified = secrets.iter().any(|secret| mac(secret.as_ref(), signing_input).verify_slice(&signature).is_ok());
    if !verified {
        return Err(Refusal::BadSignature.into());
    }

    let claims = claims(&json_object(payload_b64)?)?;
    if now_secs >= claims.exp {
        return Err(Refusal::Expired.into());
    }
    if claims.nbf.is_some_and(|nbf| nbf > now_secs) {
        return Err(Refusal::NotYetValid.into());
    }
    Ok(claims)
}

/// Unpadded canonical base64url (padding or stray trailing bits are refused).
fn decode(part: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Refusal::MalformedToken.into())
}

/// A base64url part holding a JSON object.
fn json_object(part: &str) -> Result<Map<String, Value>, AuthError> {
    match serde_json::from_slice(&decode(part)?) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(Refusal::MalformedToken.into()),
    }
}

/// Reads the claims this project uses; `null` counts as absent.
fn claims(payload: &Map<String, Value>) -> Result<Claims, AuthError> {
    let exp = match payload.get("exp") {
        None | Some(Value::Null) => return Err(Refusal::InvalidClaims("`exp` is required").into()),
        Some(Value::Number(exp)) => numeric_date(exp, Rounding::Down),
        Some(_) => return Err(Refusal::InvalidClaims("`exp` must be a number").into()),
    };
    let nbf = match payload.get("nbf") {
        None | Some(Value::Null) => None,
        Some(Value::Number(nbf)) => Some(numeric_date(nbf, Rounding::Up)),
        Some(_) => return Err(Refusal::InvalidClaims("`nbf` must be a number").into()),
    };
    let scope = match text(payload, "scope", "`scope` must be a string")? {
        None => None,
        Some(scope) => Some(
            Scope::parse(&scope).ok_or(Refusal::InvalidClaims("`scope` must be one of `read`, `write`, `manage`"))?,
        ),
    };
    Ok(Claims {
        sub: text(payload, "sub", "`sub` must be a non-empty string")?,
        scope,
        exp,
        nbf,
        stream_id: text(payload, "stream_id", "`stream_id` must be a non-empty string")?,
        session_id: text(payload, "session_id", "`session_id` must be a non-empty string")?,
    })
}

/// An optional non-empty string claim.
fn text(payload: &Map<String, Value>, name: &str, invalid: &'static str) -> Result<Option<String>, AuthError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if !value.is_empty() => Ok(Some(value.clone())),
        Some(_) => Err(Refusal::InvalidClaims(invalid).into()),
    }
}

#[derive(Clone, Copy)]
enum Rounding {
    Down,
    Up,
}

/// A NumericDate as whole Unix seconds, rounded towards refusal: `exp` down,
/// `nbf` up. Negative dates are 0; huge ones saturate.
fn numeric_date(number: &Number, rounding: Rounding) -> u64 {
    if let Some(seconds) = number.as_u64() {
        return seconds;
    }
    let seconds = number.as_f64().unwrap_or(0.0);
    let rounded = match rounding {
        Rounding::Down => seconds.floor(),
        Rounding::Up => seconds.ceil(),
    };
    // `as` saturates: NaN and negatives become 0, huge values u64::MAX.
    rounded as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_700_000_000;

    /// A token with any header and payload text, signed with `secret`.
    fn raw_token(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = URL_SAFE_NO_PAD.encode(mac(secret, input.as_bytes()).finalize().into_bytes());
        format!("{input}.{signature}")
    }

    fn refusal(result: Result<Claims, AuthError>) -> Refusal {
        result.expect_err("the token must be refused").refusal()
    }

    #[test]
    fn a_minted_token_verifies_and_keeps_every_claim() {
        let mut claims = Claims::project("acme", Scope::Write, NOW + 60).for_stream("orders");
        claims.nbf = Some(NOW - 5);
        claims.session_id = Some("s1".to_owned());
        let token = sign_hs256(&claims, SECRET);
        assert_eq!(verify_hs256(&token, &[SECRET], NOW).unwrap(), claims);
    }

    #[test]
    fn expiry_is_exclusive_and_not_before_inclusive() {
        let token = sign_hs256(&Claims::project("acme", Scope::Read, NOW), SECRET);
        assert_eq!(refusal(verify_hs256(&token, &[SECRET], NOW)), Refusal::Expired);
        assert!(verify_hs256(&token, &[SECRET], NOW - 1).is_ok());

        let mut claims = Claims::project("acme", Scope::Read, NOW + 60);
        claims.nbf = Some(NOW + 1);
        let token = sign_hs256(&claims, SECRET);
        assert_eq!(refusal(verify_hs256(&token, &[SECRET], NOW)), Refusal::NotYetValid);
        assert!(verify_hs256(&token, &[SECRET], NOW + 1).is_ok());
    }

    #[test]
    fn fractional_dates_round_towards_refusal() {
        let payload = format!(r#"{{"sub":"acme","scope":"read","exp":{}.9,"nbf":{}.1}}"#, NOW + 1, NOW - 1);
        let token = raw_token(r#"{"alg":"HS256"}"#, &payload, SECRET);
        let claims = verify_hs256(&token, &[SECRET], NOW).unwrap();
        assert_eq!((claims.exp, claims.nbf), (NOW + 1, Some(NOW)));
        assert_eq!(refusal(verify_hs256(&token, &[SECRET], NOW + 1)), Refusal::Expired);

        let negative = raw_token(r#"{"alg":"HS256"}"#, r#"{"exp":-5}"#, SECRET);
        assert_eq!(refusal(verify_hs256(&negative, &[SECRET], 0)), Refusal::Expired);
        let huge = raw_token(r#"{"alg":"HS256"}"#, r#"{"exp":1e300}"#, SECRET);
        assert_eq!(verify_hs256(&huge, &[SECRET], NOW).unwrap().exp, u64::MAX);
    }

    #[test]
    fn only_hs256_is_accepted() {
        let payload = format!(r#"{{"sub":"acme","scope":"manage","exp":{}}}"#, NOW + 60);
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
            r#"{"alg":"hs256"}"#,
            r#"{"alg":"RS256"}"#,
            r#"{"alg":["HS256"]}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            let token = raw_token(header, &payload, SECRET);
            assert_eq!(refusal(verify_hs256(&token, &[SECRET], NOW)), Refusal::UnsupportedAlgorithm, "{header}");
        }
        // `alg: none` with an empty signature, as attackers send it.
        let unsigned = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(&payload));
        assert_eq!(refusal(verify_hs256(&unsigned, &[SECRET], NOW)), Refusal::UnsupportedAlgorithm);
        // `typ` is optional and not interpreted; `crit` is refused.
        for header in [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#] {
            assert!(verify_hs256(&raw_token(header, &payload, SECRET), &[SECRET], NOW).is_ok(), "{header}");
        }
        let critical = raw_token(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &payload, SECRET);
        assert_eq!(refusal(verify_hs256(&critical, &[SECRET], NOW)), Refusal::UnsupportedHeader);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_work() {
        let good = sign_hs256(&Claims::project("acme", Scope::Read, NOW + 60), SECRET);
        let (input, signature) = good.rsplit_once('.').unwrap();
        let not_object = raw_token(r#"["HS256"]"#, r#"{"exp":1}"#, SECRET);
        let array_payload = raw_token(r#"{"alg":"HS256"}"#, r#"[1,2]"#, SECRET);
        let cases = [
            String::new(),
            "not-a-jwt".to_owned(),
            "a.b".to_owned(),
            format!("{good}.extra"),
            format!("{input}.{signature}="),
            format!("{input}={signature}"),
            format!("{input}.{}", signature.replace(|_: char| true, "+")),
            format!("{good} "),
            "x".repeat(TOKEN_BYTES_MAX + 1),
            not_object,
            array_payload,
        ];
        for token in &cases {
            assert_eq!(refusal(verify_hs256(token, &[SECRET], NOW)), Refusal::MalformedToken, "{token:.60}");
        }
        let base64_junk = format!("{}.{}.{signature}", URL_SAFE_NO_PAD.encode("{"), URL_SAFE_NO_PAD.encode("{}"));
        assert_eq!(refusal(verify_hs256(&base64_junk, &[SECRET], NOW)), Refusal::MalformedToken);
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let token = sign_hs256(&Claims::project("acme", Scope::Read, NOW + 60), SECRET);
        let forged_payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"acme","scope":"manage","exp":{}}}"#, NOW + 60));
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_payload;
        let forged = parts.join(".");
        assert_eq!(refusal(verify_hs256(&forged, &[SECRET], NOW)), Refusal::BadSignature);

        let short = format!("{}.{}", token.rsplit_once('.').unwrap().0, URL_SAFE_NO_PAD.encode([0u8; 16]));
        assert_eq!(refusal(verify_hs256(&short, &[SECRET], NOW)), Refusal::BadSignature);
        assert_eq!(refusal(verify_hs256(&token, &[b"another secret".as_slice()], NOW)), Refusal::BadSignature);
        assert_eq!(refusal(verify_hs256::<&[u8]>(&token, &[], NOW)), Refusal::BadSignature);
    }

    #[test]
    fn every_secret_is_tried_and_secrets_are_opaque_bytes() {
        let jwk = r#"{"kty":"oct","k":"c2VjcmV0LWJ5dGVzLW9mLWEtandr","alg":"HS256"}"#;
        let token = sign_hs256(&Claims::project("acme", Scope::Read, NOW + 60), jwk.as_bytes());
        let secrets = [b"newest".to_vec(), b"middle".to_vec(), jwk.as_bytes().to_vec()];
        assert!(verify_hs256(&token, &secrets, NOW).is_ok());
        assert!(verify_hs256(&token, &[jwk.to_owned()], NOW).is_ok(), "a String secret works too");
        // The JWK's decoded `k` is not the key: the string's bytes are.
        assert_eq!(refusal(verify_hs256(&token, &[b"secret-bytes-of-a-jwk".as_slice()], NOW)), Refusal::BadSignature);
    }

    #[test]
    fn claims_are_typed_strictly() {
        let exp = NOW + 60;
        let cases: &[(String, &str)] = &[
            (r#"{"sub":"acme"}"#.to_owned(), "`exp` is required"),
            (r#"{"exp":null}"#.to_owned(), "`exp` is required"),
            (r#"{"exp":"soon"}"#.to_owned(), "`exp` must be a number"),
            (format!(r#"{{"exp":{exp},"nbf":"now"}}"#), "`nbf` must be a number"),
            (format!(r#"{{"exp":{exp},"scope":"admin"}}"#), "`scope` must be one of `read`, `write`, `manage`"),
            (format!(r#"{{"exp":{exp},"scope":"read write"}}"#), "`scope` must be one of `read`, `write`, `manage`"),
            (format!(r#"{{"exp":{exp},"scope":"Read"}}"#), "`scope` must be one of `read`, `write`, `manage`"),
            (format!(r#"{{"exp":{exp},"scope":["read"]}}"#), "`scope` must be a string"),
            (format!(r#"{{"exp":{exp},"sub":""}}"#), "`sub` must be a non-empty string"),
            (format!(r#"{{"exp":{exp},"sub":7}}"#), "`sub` must be a non-empty string"),
            (format!(r#"{{"exp":{exp},"stream_id":""}}"#), "`stream_id` must be a non-empty string"),
            (format!(r#"{{"exp":{exp},"session_id":{{}}}}"#), "`session_id` must be a non-empty string"),
        ];
        for (payload, why) in cases {
            let token = raw_token(r#"{"alg":"HS256"}"#, payload, SECRET);
            assert_eq!(refusal(verify_hs256(&token, &[SECRET], NOW)), Refusal::InvalidClaims(why), "{payload}");
        }
        let extra =
            raw_token(r#"{"alg":"HS256"}"#, &format!(r#"{{"exp":{exp},"iss":"x","aud":["y"],"sub":null}}"#), SECRET);
        let claims = verify_hs256(&extra, &[SECRET], NOW).unwrap();
        assert_eq!((claims.sub, claims.scope), (None, None), "unknown claims are ignored, null is absent");
    }

    mod never_panics {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn on_any_text(token in ".{0,300}", now in any::<u64>()) {
                let _ = verify_hs256(&token, &[SECRET], now);
            }

            #[test]
            fn on_three_base64url_parts(
                header in "[A-Za-z0-9_-]{0,80}",
                payload in "[A-Za-z0-9_-]{0,120}",
                signature in "[A-Za-z0-9_-]{0,60}",
            ) {
                let token = format!("{header}.{payload}.{signature}");
                let _ = verify_hs256(&token, &[SECRET, b"".as_slice()], NOW);
            }

            #[test]
            fn on_any_signed_json(header in any::<Vec<u8>>(), payload in any::<Vec<u8>>(), now in any::<u64>()) {
                let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&payload));
                let signature = URL_SAFE_NO_PAD.encode(mac(SECRET, input.as_bytes()).finalize().into_bytes());
                let _ = verify_hs256(&format!("{input}.{signature}"), &[SECRET], now);
            }

            #[test]
            fn on_any_claim_values(
                exp in prop_oneof![
                    Just("1e400".to_owned()),
                    Just("-0.0".to_owned()),
                    any::<f64>().prop_map(|f| f.to_string()),
                    any::<i64>().prop_map(|i| i.to_string()),
                ],
                scope in ".{0,12}",
                now in any::<u64>(),
            ) {
                let payload = format!(r#"{{"exp":{exp},"scope":{}}}"#, Value::from(scope));
                let token = raw_token(r#"{"alg":"HS256"}"#, &payload, SECRET);
                let _ = verify_hs256(&token, &[SECRET], now);
            }

            #[test]
            fn and_round_trips_what_it_signs(
                sub in "[a-z0-9-]{1,20}",
                stream in proptest::option::of(".{1,30}"),
                secret in proptest::collection::vec(any::<u8>(), 0..100),
                exp in (NOW + 1)..u64::MAX,
            ) {
                let mut claims = Claims::project(sub, Scope::Manage, exp);
                claims.stream_id = stream;
                let token = sign_hs256(&claims, &secret);
                prop_assert_eq!(verify_hs256(&token, &[secret], NOW).unwrap(), claims);
            }
        }
    }
}
