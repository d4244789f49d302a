//! Refusals: why a request was not admitted, as `401 Unauthorized` (the
//! credentials are missing or not acceptable) or `403 Forbidden` (valid
//! credentials that do not cover this request).
//!
//! Every refusal is one [`Refusal`] variant with a fixed wording, so no
//! answer can ever carry a secret, a token or the position of a signing
//! secret: the texts are `'static` and the only data interpolated are scope
//! names.
//!
//! A `401` carries the `Bearer` challenge for `WWW-Authenticate`
//! (RFC 6750 §3):
//!
//! | what the client sent | challenge |
//! |---|---|
//! | no `Authorization` header, or another scheme (`Basic …`) | `Bearer` |
//! | several `Authorization` headers | `Bearer error="invalid_request"` |
//! | a bearer token that was refused (malformed, expired, bad signature, …) | `Bearer error="invalid_token"` |
//!
//! A `403` carries no challenge: the header registry (`spec/headers.yaml`)
//! sends `WWW-Authenticate` on `401` only.

use std::fmt;

use durable_streams_api::{ApiError, Problem, Scope};

/// `WWW-Authenticate` when no bearer token was sent.
pub const CHALLENGE: &str = "Bearer";
/// `WWW-Authenticate` when the request's credentials could not be read.
pub const CHALLENGE_INVALID_REQUEST: &str = "Bearer error=\"invalid_request\"";
/// `WWW-Authenticate` when a bearer token was sent but refused.
pub const CHALLENGE_INVALID_TOKEN: &str = "Bearer error=\"invalid_token\"";

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    // ---- 401: no acceptable credentials ----
    /// No `Authorization` header.
    MissingCredentials,
    /// An `Authorization` header with another scheme than `Bearer`.
    NotBearer,
    /// More than one `Authorization` header.
    RepeatedCredentials,
    /// The token is not a compact JWS: empty, too long, not three
    /// base64url parts, or a part that is not a JSON object.
    MalformedToken,
    /// The header's `alg` is not exactly `HS256` (`none`, `HS512`, missing, …).
    UnsupportedAlgorithm,
    /// The header lists `crit` extensions, none of which are understood.
    UnsupportedHeader,
    /// No signing secret verifies the signature: the token was altered, or
    /// it was signed with a key the project does not (or no longer) list.
    BadSignature,
    /// `exp` is not after now.
    Expired,
    /// `nbf` is after now.
    NotYetValid,
    /// A claim is missing or has the wrong type or value; the text says which.
    InvalidClaims(&'static str),
    /// A static bearer token that is not the configured one.
    WrongToken,
    // ---- 403: valid credentials that do not cover the request ----
    /// `sub` is not the project the request addresses (or the route belongs
    /// to no project).
    ForeignProject,
    /// The token's `stream_id` names another stream, or the route addresses
    /// no single stream (config API).
    OtherStream,
    /// A `session:{id}` stream of another session than the token's `session_id`.
    OtherSession,
    /// The token's scope is below what the operation needs.
    InsufficientScope {
        /// What the operation needs.
        needed: Scope,
        /// What the token grants.
        granted: Scope,
    },
}

impl Refusal {
    /// `401` or `403`.
    pub fn status(self) -> u16 {
        match self {
            Refusal::ForeignProject
            | Refusal::OtherStream
            | Refusal::OtherSession
            | Refusal::InsufficientScope { .. } => 403,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value of a `401`; `None` for a `403`.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            _ if self.status() != 401 => None,
            Refusal::MissingCredentials | Refusal::NotBearer => Some(CHALLENGE),
            Refusal::RepeatedCredentials => Some(CHALLENGE_INVALID_REQUEST),
            _ => Some(CHALLENGE_INVALID_TOKEN),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Refusal::MissingCredentials => "this request needs an `Authorization: Bearer <token>` header",
            Refusal::NotBearer => "only `Bearer` credentials are accepted",
            Refusal::RepeatedCredentials => "the request has more than one `Authorization` header",
            Refusal::MalformedToken => "the bearer token is not a well-formed JWT",
            Refusal::UnsupportedAlgorithm => "the token's `alg` must be `HS256`",
            Refusal::UnsupportedHeader => "the token's header lists `crit` extensions, which are not supported",
            Refusal::BadSignature => "the token's signature does not verify with any signing key of the project",
            Refusal::Expired => "the token has expired",
            Refusal::NotYetValid => "the token is not valid yet (`nbf`)",
            Refusal::InvalidClaims(what) => return write!(f, "the token's claims are invalid: {what}"),
            Refusal::WrongToken => "the bearer token is not accepted",
            Refusal::ForeignProject => "the token's `sub` is not the project this request addresses",
            Refusal::OtherStream => "the token's `stream_id` does not cover this request",
            Refusal::OtherSession => "the token's `session_id` does not cover this session stream",
            Refusal::InsufficientScope { needed, granted } => {
                return write!(
                    f,
                    "this operation needs `{}` scope; the token grants `{}`",
                    needed.as_str(),
                    granted.as_str()
                )
            }
        };
        f.write_str(text)
    }
}

/// A refused request: its status, problem detail and challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthError {
    refusal: Refusal,
}

impl AuthError {
    /// The refusal.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }

    /// `401` or `403`.
    pub fn status(&self) -> u16 {
        self.refusal.status()
    }

    /// The problem detail (never names a secret, a token or which secret failed).
    pub fn detail(&self) -> String {
        self.refusal.to_string()
    }

    /// The `WWW-Authenticate` value to send with a `401`; `None` for a `403`.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        self.refusal.challenge()
    }

    /// The answer: an `application/problem+json` body with the status and
    /// detail, plus `WWW-Authenticate` on a `401`.
    pub fn into_api_error(self) -> ApiError {
        let title = if self.status() == 401 { "Unauthorized" } else { "Forbidden" };
        let problem = Problem {
            type_: "about:blank".to_owned(),
            title: title.to_owned(),
            status: self.status(),
            detail: Some(self.detail()),
        };
        let error = ApiError::from(problem);
        match self.www_authenticate() {
            Some(challenge) => error.with_header(
                http::HeaderName::from_static(durable_streams_api::headers::names::WWW_AUTHENTICATE),
                http::HeaderValue::from_static(challenge),
            ),
            None => error,
        }
    }
}

impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> Self {
        AuthError { refusal }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        error.into_api_error()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.refusal)
    }
}

impl std::error::Error for AuthError {}
