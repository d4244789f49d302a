//! The gate both hosts run before every handler: it loads the addressed
//! project's configuration (CORS origins and the public default always; the
//! signing secrets for the authorizer), then lets an
//! [`Authorizer`](durable_streams_auth::Authorizer) decide. Every rule lives
//! in `durable-streams-auth`; this module only wires it to the generated
//! service's [`Gate`].

use durable_streams_api::{Admission, ApiError, Gate, Problem, RequestContext};
use durable_streams_auth::{Access, AuthRequest, Authorizer, Credentials, Visibility};

use crate::projects::Projects;

pub use durable_streams_auth::{
    sign_hs256, BearerTokenAuth, ByMethod, Claims, JwtSessionAuth, NoAuth, ProjectJwtAuth, Refusal,
};

/// A [`Gate`] over an [`Authorizer`] and the project store.
pub struct AuthGate<A> {
    pub authorizer: A,
    /// Where project configurations come from (`None`: no project features).
    pub projects: Option<Projects>,
}

impl<A> AuthGate<A> {
    pub fn new(authorizer: A, projects: Option<Projects>) -> AuthGate<A> {
        AuthGate { authorizer, projects }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl<A: Authorizer> Gate for AuthGate<A> {
    async fn admit(&self, ctx: &mut RequestContext, admission: Admission<'_>) -> Result<(), ApiError> {
        // Routes outside a project path (the legacy aliases) belong to the
        // project the access rules give them (`_default`).
        let project = match &admission {
            Admission::Operation { operation, params, .. } => Access::from_route(*operation, params).project,
            Admission::Preflight { .. } => admission.project(),
        };
        let config = match (&self.projects, project) {
            (Some(projects), Some(project)) => projects
                .load(&project)
                .await
                .map_err(|e| ApiError::from(Problem::unavailable(format!("project store: {e}"))))?,
            _ => None,
        };
        if let Some(config) = &config {
            ctx.cors_origins = config.cors_origins.clone();
            ctx.public_default = config.is_public.unwrap_or(false);
        }
        let Admission::Operation { operation, params, parts } = admission else { return Ok(()) };
        let access = Access::from_route(operation, params);
        let secrets: Vec<Vec<u8>> = config
            .map(|c| c.signing_secrets.into_iter().map(String::into_bytes).collect())
            .unwrap_or_default();
        let request = AuthRequest {
            access: &access,
            credentials: Credentials::from_headers(&parts.headers),
            signing_secrets: &secrets,
            // The stream's flag lives with the stream: a public reader is
            // admitted as anonymous and the streams service confirms it.
            visibility: Visibility::Unknown,
            now_secs: ctx.now_ms / 1000,
        };
        let caller = self.authorizer.authorize(&request)?;
        refuse_reserved_write(&access)?;
        refuse_cross_project_fork(&access, &parts.headers)?;
        caller.apply(ctx);
        Ok(())
    }
}

/// Projects are isolated: a fork (`Stream-Forked-From`) copies its
/// source's data, so its source must be a stream of the same project
/// (`403` otherwise — a token of one project grants nothing in another).
/// A header that names no stream is left to the streams service (`400`).
pub fn refuse_cross_project_fork(access: &Access, headers: &http::HeaderMap) -> Result<(), ApiError> {
    use durable_streams_api::router::OperationId::CreateStream;
    if access.operation != CreateStream {
        return Ok(());
    }
    let Some(source) = headers.get(durable_streams_api::headers::names::STREAM_FORKED_FROM) else { return Ok(()) };
    let Ok(source) = source.to_str().map_err(|_| ()).and_then(|v| crate::fork_source_key(v).map_err(|_| ())) else {
        return Ok(());
    };
    let source_project = source.split_once('/').map(|(project, _)| project);
    if source_project != access.project.as_deref() {
        return Err(Problem::forbidden("a fork's source must be a stream of the same project").into());
    }
    Ok(())
}

/// Reserved streams: a project's registry stream (`__registry__`) is
/// written by the service alone (its create/delete events); clients may
/// read it and subscribe estuaries to it, never create, append to or delete
/// it (`403`).
pub fn refuse_reserved_write(access: &Access) -> Result<(), ApiError> {
    use durable_streams_api::router::OperationId::*;
    let writes = matches!(access.operation, CreateStream | AppendStream | DeleteStream | LegacyPublish);
    if writes && access.stream.as_deref() == Some(durable_streams_engine::registry::REGISTRY_STREAM) {
        return Err(Problem::forbidden("reserved stream: the registry is written by the service only").into());
    }
    Ok(())
}
