//! A deployment of durable streams with its own authorizer: anyone may
//! read; writes need the `API_KEY` secret (`wrangler secret put API_KEY`)
//! as a bearer token.

use durable_streams_auth::{AuthError, AuthRequest, Authorizer, Caller, Refusal};
use durable_streams_worker::{serve, Options};
use worker::{event, Context, Env, Request, Response};

pub use durable_streams_worker::StreamDO;

struct ApiKey(String);

impl Authorizer for ApiKey {
    fn authorize(&self, request: &AuthRequest<'_>) -> Result<Caller, AuthError> {
        if request.access.is_read() {
            return Ok(Caller::Open);
        }
        match request.credentials.bearer()? {
            Some(key) if key == self.0 => Ok(Caller::Open),
            Some(_) => Err(Refusal::WrongToken.into()),
            None => Err(Refusal::MissingCredentials.into()),
        }
    }
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let key = env.secret("API_KEY")?.to_string();
    serve(request, env, ctx, Options::default().authorizer(ApiKey(key))).await
}
