//! # durable-streams-auth
//!
//! Every authentication and authorization rule of the Durable Streams
//! server, in one runtime-free crate: no async runtime, no I/O, no host
//! APIs. It builds natively and for `wasm32-unknown-unknown`, and both hosts
//! call it before every handler (streams, estuaries, config, `__ds`,
//! legacy) — `GET /health` and CORS preflights excepted.
//!
//! | module | rule |
//! |---|---|
//! | [`jwt`] | HS256 tokens: strict parsing, `alg` exactly `HS256`, every signing secret tried newest first (rotation), `exp` required, `nbf` honoured; minting |
//! | [`access`] | what a request asks to do ([`Access`]) and the scope each operation needs (read < write < manage) |
//! | [`authorizer`] | the [`Authorizer`] trait and its modes: [`ProjectJwtAuth`] (default), [`JwtSessionAuth`], [`BearerTokenAuth`], [`NoAuth`], [`ByMethod`] |
//! | [`error`] | `401` / `403` refusals, their problem detail and `WWW-Authenticate` challenge |
//!
//! ## How a host uses it
//!
//! ```
//! use durable_streams_api::router::OperationId;
//! use durable_streams_api::Scope;
//! use durable_streams_auth::{
//!     sign_hs256, Access, AuthRequest, Authorizer, Caller, Claims, Credentials, ProjectJwtAuth, Visibility,
//! };
//!
//! // Loaded by the host beforehand (KV on Workers, SQLite natively): the
//! // project's signing secrets, newest first, as the stored strings' bytes.
//! let secrets = vec![b"a-secret-of-at-least-32-bytes-long".to_vec()];
//! let now_secs = 1_700_000_000;
//! let token = sign_hs256(&Claims::project("acme", Scope::Write, now_secs + 3600), &secrets[0]);
//! let header = format!("Bearer {token}");
//!
//! let access = Access::new(OperationId::AppendStream, Some("acme".into()), Some("orders".into()));
//! let request = AuthRequest {
//!     access: &access,
//!     credentials: Credentials::Header(header.as_bytes()),
//!     signing_secrets: &secrets,
//!     visibility: Visibility::Unknown,
//!     now_secs,
//! };
//! match ProjectJwtAuth.authorize(&request) {
//!     Ok(caller) => assert_eq!(caller.principal().unwrap().scope, Scope::Write), // caller.apply(&mut ctx)
//!     Err(refusal) => panic!("{refusal}"), // answer refusal.into_api_error()
//! }
//! ```
//!
//! In a host's `Gate`: build the [`Access`] with [`Access::from_route`], read
//! the header with [`Credentials::from_headers`], load the project's
//! secrets, call the configured authorizer, then either
//! [`Caller::apply`] it to the `RequestContext` or answer
//! [`AuthError::into_api_error`].
//!
//! ## Decisions
//!
//! - `scope` is one value (`read`, `write`, `manage`); anything else — a
//!   space-separated list included — makes the token invalid (`401`).
//! - `stream_id` names a stream within the token's project, as the seeds'
//!   `/v1/stream/{project}/{stream_id}`; it confines the token to that
//!   stream, and routes that touch no single stream (config) are outside it.
//! - Credentials that are sent are always checked: a bad token on a public
//!   stream is a `401`, not an anonymous read.
//! - `401` answers carry `WWW-Authenticate: Bearer` (nothing sent, or another
//!   scheme), `Bearer error="invalid_request"` (several `Authorization`
//!   headers) or `Bearer error="invalid_token"` (a bearer token was refused).
//!   No refusal names a secret, a token, or which secret was tried.

#![forbid(unsafe_code)]

pub mod access;
pub mod authorizer;
pub mod error;
pub mod jwt;

pub use access::{requirement, Access, Requirement, SESSION_STREAM_PREFIX};
pub use authorizer::{
    AuthRequest, Authorizer, BearerTokenAuth, ByMethod, Caller, Credentials, JwtSessionAuth, NoAuth, Principal,
    ProjectJwtAuth, Visibility,
};
pub use durable_streams_api::Scope;
pub use error::{AuthError, Refusal};
pub use jwt::{sign_hs256, verify_hs256, Claims, TOKEN_BYTES_MAX};

#[cfg(test)]
mod tests;
