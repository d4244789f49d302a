//! The caller as the gate decided it, carried from a host's edge to the
//! place that runs the handler (the Workers edge → the stream's Durable
//! Object). Only the edge sets it: the typed internal envelope carries no
//! client header of this name.

use durable_streams_api::{Principal, RequestContext, Scope};
use serde::{Deserialize, Serialize};

/// The internal header that carries [`Forwarded`].
pub const CALLER_HEADER: &str = "x-ds-internal-caller";

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Forwarded {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_id: Option<String>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    public_default: bool,
}

/// The header value for `ctx`.
pub fn encode(ctx: &RequestContext) -> String {
    let principal = ctx.principal.as_ref();
    let forwarded = Forwarded {
        subject: principal.map(|p| p.subject.clone()),
        scope: principal.map(|p| p.scope.as_str().to_owned()),
        stream_id: principal.and_then(|p| p.stream_id.clone()),
        anonymous: ctx.anonymous,
        public_default: ctx.public_default,
    };
    serde_json::to_string(&forwarded).unwrap_or_default()
}

/// Restores what [`encode`] carried into `ctx`. A missing or unreadable
/// value leaves `ctx` as it is (no principal).
pub fn decode(value: &str, ctx: &mut RequestContext) {
    let Ok(forwarded) = serde_json::from_str::<Forwarded>(value) else { return };
    ctx.anonymous = forwarded.anonymous;
    ctx.public_default = forwarded.public_default;
    ctx.principal = match (forwarded.subject, forwarded.scope.as_deref().and_then(Scope::parse)) {
        (Some(subject), Some(scope)) => Some(Principal { subject, scope, stream_id: forwarded.stream_id }),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_survives_the_trip() {
        let mut edge = RequestContext::new("r", 0, "http://x");
        edge.principal = Some(Principal { subject: "acme".into(), scope: Scope::Write, stream_id: Some("s".into()) });
        edge.public_default = true;
        let mut object = RequestContext::new("r", 0, "http://x");
        decode(&encode(&edge), &mut object);
        assert_eq!(object.principal, edge.principal);
        assert!(object.public_default && !object.anonymous);

        let mut anonymous = RequestContext::new("r", 0, "http://x");
        anonymous.anonymous = true;
        let mut object = RequestContext::new("r", 0, "http://x");
        decode(&encode(&anonymous), &mut object);
        assert!(object.anonymous && object.principal.is_none());

        let mut untouched = RequestContext::new("r", 0, "http://x");
        decode("not json", &mut untouched);
        assert!(untouched.principal.is_none() && !untouched.anonymous);
    }
}
