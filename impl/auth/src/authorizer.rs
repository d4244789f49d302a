//! The [`Authorizer`] trait — the one check both hosts run before every
//! handler, and the extension point for custom authorization — and the
//! modes the project ships:
//!
//! | mode | credentials | rules |
//! |---|---|---|
//! | [`ProjectJwtAuth`] (default) | HS256 JWT signed with a secret of the addressed project | `sub` = project, `stream_id` confines, scope ≥ the operation's |
//! | [`JwtSessionAuth`] | HS256 JWT signed with the host's session secret | `session_id` required; a `session:{id}` stream only for its own session |
//! | [`BearerTokenAuth`] | one static token | reads (GET/HEAD) open; every mutation needs the token |
//! | [`NoAuth`] | none | everything admitted (explicit, for local development) |
//! | [`ByMethod`] | — | one authorizer for reads, another for mutations (the seeds' `authorizeRead` / `authorizeMutation`) |
//!
//! The check is synchronous and does no I/O. Whatever it needs from storage
//! the host loads first — on Workers asynchronously from KV — and passes in
//! an [`AuthRequest`]: the project's signing secrets (newest first; empty
//! when the project has none or does not exist, which refuses every project
//! token) and, when it knows it, whether the stream is public.
//!
//! Rules common to every mode:
//! - Routes that need nothing (health, JWKS) and routes that check their own
//!   token (`__ds` subscription callbacks) are admitted as [`Caller::Open`]
//!   before credentials are looked at.
//! - Credentials that are sent are always checked, even where none are
//!   needed (a public stream, an open read): a bad token is a `401`, never
//!   silently ignored.
//! - Without credentials, only GET/HEAD of a stream that is not known to be
//!   private pass, as [`Caller::PublicReader`]: the host marks the request
//!   anonymous (`RequestContext::anonymous`) and the stream handler, which
//!   knows the stream's immutable public flag, answers `401` unless the
//!   stream is public. Writes to a public stream still need a token.

use std::fmt;
use std::sync::Arc;

use durable_streams_api::context::MaybeSendSync;
use durable_streams_api::{RequestContext, Scope};
use sha2::{Digest, Sha256};

use crate::access::{Access, Requirement};
use crate::error::{AuthError, Refusal};
use crate::jwt::verify_hs256;

/// The `Authorization` header of a request, as sent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No `Authorization` header.
    Absent,
    /// Exactly one `Authorization` header, its raw value.
    Header(&'a [u8]),
    /// More than one `Authorization` header (refused: which one would count?).
    Repeated,
}

impl<'a> Credentials<'a> {
    /// The credentials in a request's headers.
    pub fn from_headers(headers: &'a http::HeaderMap) -> Credentials<'a> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        match (values.next(), values.next()) {
            (None, _) => Credentials::Absent,
            (Some(value), None) => Credentials::Header(value.as_bytes()),
            (Some(_), Some(_)) => Credentials::Repeated,
        }
    }

    /// The bearer token, `None` when no credentials were sent. The scheme is
    /// matched case-insensitively (RFC 9110 §11.1); the token must be one
    /// word of UTF-8.
    pub fn bearer(&self) -> Result<Option<&'a str>, AuthError> {
        let value = match *self {
            Credentials::Absent => return Ok(None),
            Credentials::Repeated => return Err(Refusal::RepeatedCredentials.into()),
            Credentials::Header(value) => value.trim_ascii(),
        };
        let (scheme, token) = match value.iter().position(|b| *b == b' ' || *b == b'\t') {
            Some(end) => (&value[..end], value[end..].trim_ascii_start()),
            None => (value, &value[value.len()..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(Refusal::NotBearer.into());
        }
        if token.is_empty() || token.iter().any(u8::is_ascii_whitespace) {
            return Err(Refusal::MalformedToken.into());
        }
        std::str::from_utf8(token).map(Some).map_err(|_| Refusal::MalformedToken.into())
    }
}

impl fmt::Debug for Credentials<'_> {
    /// Never prints the credentials themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credentials::Absent => "Absent",
            Credentials::Header(_) => "Header(<redacted>)",
            Credentials::Repeated => "Repeated",
        })
    }
}

/// Whether the addressed stream is public, as far as the host knows before
/// the handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Created with `?public=true` (or the project's public default).
    Public,
    /// Known not to be public, or not a stream at all.
    Private,
    /// Not known here; the stream handler confirms it for anonymous readers.
    Unknown,
}

/// Everything an authorizer decides on.
#[derive(Clone, Copy)]
pub struct AuthRequest<'a> {
    /// What the request asks to do.
    pub access: &'a Access,
    /// Its `Authorization` header.
    pub credentials: Credentials<'a>,
    /// The addressed project's signing secrets, newest first, as opaque
    /// bytes (the stored strings' bytes). Empty when the project has none.
    pub signing_secrets: &'a [Vec<u8>],
    /// Whether the addressed stream is public.
    pub visibility: Visibility,
    /// Now, in Unix seconds (the host's clock).
    pub now_secs: u64,
}

impl fmt::Debug for AuthRequest<'_> {
    /// Never prints a secret or a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("access", self.access)
            .field("credentials", &self.credentials)
            .field("signing_secrets", &format_args!("<{} redacted>", self.signing_secrets.len()))
            .field("visibility", &self.visibility)
            .field("now_secs", &self.now_secs)
            .finish()
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The project the credentials were checked against (for project tokens,
    /// the token's `sub`).
    pub project: Option<String>,
    /// The token's `sub`; `None` for static tokens and session tokens without one.
    pub subject: Option<String>,
    /// The scope granted.
    pub scope: Scope,
    /// When set, the credentials cover this one stream of the project.
    pub stream_id: Option<String>,
    /// For session tokens: the session.
    pub session_id: Option<String>,
}

impl Principal {
    /// The principal handlers see in their `RequestContext`.
    pub fn to_api(&self) -> durable_streams_api::Principal {
        durable_streams_api::Principal {
            subject: self.subject.clone().unwrap_or_default(),
            scope: self.scope,
            stream_id: self.stream_id.clone(),
        }
    }
}

/// Who an admitted request comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Admitted without credentials and with nothing left to check: an open
    /// route, a route that checks its own token, an open read of
    /// [`BearerTokenAuth`], or [`NoAuth`].
    Open,
    /// No credentials: admitted only to read a stream that may be public;
    /// the stream handler answers `401` unless it is.
    PublicReader,
    /// Verified credentials that cover the request.
    Authenticated(Principal),
}

impl Caller {
    /// The authenticated principal, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Authenticated(principal) => Some(principal),
            Caller::Open | Caller::PublicReader => None,
        }
    }

    /// Records the caller in the handler's context: `principal`, and
    /// `anonymous` for a public reader.
    pub fn apply(&self, ctx: &mut RequestContext) {
        ctx.principal = self.principal().map(Principal::to_api);
        ctx.anonymous = matches!(self, Caller::PublicReader);
    }
}

/// Decides whether a request may run, before its handler. Synchronous and
/// free of I/O: the host loads what the check needs into the [`AuthRequest`].
/// Implement it for a custom authorization scheme.
pub trait Authorizer: MaybeSendSync {
    /// `Ok` admits the request as the returned caller; `Err` answers it
    /// (`401` or `403`).
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError>;
}

impl<A: Authorizer + ?Sized> Authorizer for &A {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        (**self).authorize(request)
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Box<A> {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        (**self).authorize(request)
    }
}

impl<A: Authorizer + ?Sized> Authorizer for Arc<A> {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        (**self).authorize(request)
    }
}

/// The scope the operation needs; `None` when it is admitted as [`Caller::Open`].
fn needed(access: &Access) -> Option<Scope> {
    match access.requirement() {
        Requirement::Nothing | Requirement::CallbackToken => None,
        Requirement::Scope(scope) => Some(scope),
    }
}

/// A request without credentials: a possible public read, or `401`.
fn without_credentials(request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
    if request.access.is_stream_read() && request.visibility != Visibility::Private {
        Ok(Caller::PublicReader)
    } else {
        Err(Refusal::MissingCredentials.into())
    }
}

/// A `stream_id` claim covers exactly the stream it names; a route that
/// touches no single stream (config) is outside every such token.
fn confine(access: &Access, stream_id: Option<&str>) -> Result<(), AuthError> {
    match stream_id {
        Some(stream_id) if access.stream.as_deref() != Some(stream_id) => Err(Refusal::OtherStream.into()),
        _ => Ok(()),
    }
}

/// Each scope includes the ones below it.
fn suffices(needed: Scope, granted: Scope) -> Result<(), AuthError> {
    if granted >= needed {
        Ok(())
    } else {
        Err(Refusal::InsufficientScope { needed, granted }.into())
    }
}

/// The default mode: a JWT signed with one of the addressed project's
/// signing secrets (see [`crate::jwt`]). `sub` must be the project
/// (`403` otherwise), `scope` is required, a `stream_id` claim confines the
/// token to that stream (`403` elsewhere, the config API included), and the
/// scope must reach the operation's (`403`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProjectJwtAuth;

impl Authorizer for ProjectJwtAuth {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        let access = request.access;
        let Some(needed) = needed(access) else {
            return Ok(Caller::Open);
        };
        let Some(token) = request.credentials.bearer()? else {
            return without_credentials(request);
        };
        let claims = verify_hs256(token, request.signing_secrets, request.now_secs)?;
        let subject = claims.sub.ok_or(Refusal::InvalidClaims("`sub` is required"))?;
        let scope = claims.scope.ok_or(Refusal::InvalidClaims("`scope` is required"))?;
        if access.project.as_deref() != Some(subject.as_str()) {
            return Err(Refusal::ForeignProject.into());
        }
        confine(access, claims.stream_id.as_deref())?;
        suffices(needed, scope)?;
        Ok(Caller::Authenticated(Principal {
            project: Some(subject.clone()),
            subject: Some(subject),
            scope,
            stream_id: claims.stream_id,
            session_id: claims.session_id,
        }))
    }
}

/// The seeds' `jwtSessionAuth`: a JWT signed with the host's own session
/// secrets (newest first; not the project's), carrying a `session_id`.
/// A `session:{id}` stream (and the legacy session routes) is covered only
/// by the token of session `{id}` (`403` otherwise); other streams by any
/// session token. The scope is the `scope` claim, `read` without one — so a
/// plain session token reads but does not write. `sub` is not checked
/// against the project; a `stream_id` claim still confines.
///
/// The seeds allowed every read when no secret was configured; here a host
/// without a secret chooses [`NoAuth`] (or [`ByMethod`]) explicitly.
#[derive(Clone)]
pub struct JwtSessionAuth {
    secrets: Vec<Vec<u8>>,
}

impl JwtSessionAuth {
    /// Session tokens signed with `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> JwtSessionAuth {
        JwtSessionAuth { secrets: vec![secret.into()] }
    }

    /// Session tokens signed with any of `secrets`, newest first (rotation).
    pub fn with_secrets(secrets: Vec<Vec<u8>>) -> JwtSessionAuth {
        JwtSessionAuth { secrets }
    }
}

impl fmt::Debug for JwtSessionAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtSessionAuth {{ secrets: <{} redacted> }}", self.secrets.len())
    }
}

impl Authorizer for JwtSessionAuth {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        let access = request.access;
        let Some(needed) = needed(access) else {
            return Ok(Caller::Open);
        };
        let Some(token) = request.credentials.bearer()? else {
            return without_credentials(request);
        };
        let claims = verify_hs256(token, &self.secrets, request.now_secs)?;
        let session_id = claims.session_id.ok_or(Refusal::InvalidClaims("`session_id` is required"))?;
        if access.session().is_some_and(|session| session != session_id) {
            return Err(Refusal::OtherSession.into());
        }
        confine(access, claims.stream_id.as_deref())?;
        let scope = claims.scope.unwrap_or(Scope::Read);
        suffices(needed, scope)?;
        Ok(Caller::Authenticated(Principal {
            project: access.project.clone(),
            subject: claims.sub,
            scope,
            stream_id: claims.stream_id,
            session_id: Some(session_id),
        }))
    }
}

/// The seeds' `bearerTokenAuth`: one static token. Reads (GET/HEAD) are open
/// to everyone; every mutation (PUT/POST/DELETE — estuary subscribe
/// included, since it creates a stream) needs `Authorization: Bearer
/// <token>`, which grants `manage`. A token that is sent is checked on reads
/// too. Only the token's SHA-256 is kept, and it is compared in constant time.
///
/// The seeds allowed every mutation when no token was configured; here a
/// host without a token chooses [`NoAuth`] explicitly.
#[derive(Clone)]
pub struct BearerTokenAuth {
    digest: [u8; 32],
}

impl BearerTokenAuth {
    /// Mutations need `token`.
    pub fn new(token: impl AsRef<[u8]>) -> BearerTokenAuth {
        BearerTokenAuth { digest: Sha256::digest(token.as_ref()).into() }
    }

    fn accepts(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Fold every byte: the time taken does not depend on where they differ.
        presented.iter().zip(&self.digest).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl fmt::Debug for BearerTokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerTokenAuth { token: <redacted> }")
    }
}

impl Authorizer for BearerTokenAuth {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        let access = request.access;
        if needed(access).is_none() {
            return Ok(Caller::Open);
        }
        match request.credentials.bearer()? {
            None if access.is_read() => Ok(Caller::Open),
            None => Err(Refusal::MissingCredentials.into()),
            Some(token) if self.accepts(token) => Ok(Caller::Authenticated(Principal {
                project: access.project.clone(),
                subject: None,
                scope: Scope::Manage,
                stream_id: None,
                session_id: None,
            })),
            Some(_) => Err(Refusal::WrongToken.into()),
        }
    }
}

/// Admits everything, credentials unread. Explicit, for local development.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAuth;

impl Authorizer for NoAuth {
    fn authorize(&self, _request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        Ok(Caller::Open)
    }
}

/// One authorizer for reads (GET/HEAD), another for mutations — the seeds'
/// `createStreamWorker({ authorizeRead, authorizeMutation })`. Their default
/// worker is `ByMethod { read: JwtSessionAuth::new(…), mutation: BearerTokenAuth::new(…) }`.
#[derive(Clone, Debug, Default)]
pub struct ByMethod<R, M> {
    /// Decides GET and HEAD.
    pub read: R,
    /// Decides PUT, POST and DELETE.
    pub mutation: M,
}

impl<R: Authorizer, M: Authorizer> Authorizer for ByMethod<R, M> {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        if request.access.is_read() {
            self.read.authorize(request)
        } else {
            self.mutation.authorize(request)
        }
    }
}
