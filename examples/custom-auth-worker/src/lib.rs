//! A deployment of durable streams with its own authorizer: anyone may
//! read; writes need the deployment's API key as a bearer token.

use durable_streams_auth::{AuthError, AuthRequest, Authorizer, Caller, Refusal};
use durable_streams_worker::{serve, Options};
use worker::{event, Context, Env, Request, Response};

pub use durable_streams_worker::StreamDO;

struct ApiKey(&'static str);

impl Authorizer for ApiKey {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        if request.access.is_read() || request.credentials.bearer()? == Some(self.0) {
            Ok(Caller::Open)
        } else {
            Err(Refusal::MissingCredentials.into())
        }
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    serve(request, env, ctx, Options::default().authorizer(ApiKey("change-me"))).await
}
