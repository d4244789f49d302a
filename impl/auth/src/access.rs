//! What a request asks to do — an [`Access`]: the spec's operation, the
//! project it addresses and the one stream it touches — and what that needs
//! ([`Requirement`]).
//!
//! The scope rules, in the protocol's words:
//!
//! | operations | needs |
//! |---|---|
//! | `getHealth`, `getJwks`, CORS preflights | nothing |
//! | `readStream`, `headStream` (GET/HEAD) | `read` — or nothing for a public stream |
//! | `createStream`, `appendStream` (PUT/POST) | `write` |
//! | `deleteStream` | `manage` |
//! | `subscribeEstuary`, `getEstuary` | `read` |
//! | `unsubscribeEstuary`, `deleteEstuary` | `write` |
//! | `getConfig`, `putConfig` | `manage` |
//! | legacy `subscribe`, `session`, `touch` / `unsubscribe`, `publish` | `read` / `write` |
//! | `__ds` subscriptions: get, claim / put, delete, add and remove streams | `read` / `manage` |
//! | `__ds` subscription callback, ack, release | the subscription's own token, checked by its handler |
//!
//! The table is written out here and a test holds it equal to the
//! `security` of every operation in `spec/openapi.yaml`.
//!
//! Which stream a route touches, for the `stream_id` and `session_id` rules:
//! a stream route's stream; the source `{stream}` of estuary
//! subscribe/unsubscribe; the estuary's own stream `{estuaryId}` for estuary
//! get/delete; `{streamId}` of legacy publish and `session:{sessionId}` of the
//! legacy session routes (both in project `_default`); none for the config
//! API and the body-addressed legacy subscribe/unsubscribe.

use durable_streams_api::router::{OperationId, ROUTES};
use durable_streams_api::routing::PathParams;
use durable_streams_api::stream_path::{StreamPath, DEFAULT_PROJECT};
use durable_streams_api::Scope;

/// The prefix of the legacy session streams, `session:{id}`.
pub const SESSION_STREAM_PREFIX: &str = "session:";

/// What an operation needs from the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: the route is open (health, JWKS; CORS preflights are never authorized).
    Nothing,
    /// A subscription's callback or claim token, which its handler checks;
    /// authorizers let these through.
    CallbackToken,
    /// A token granting at least this scope.
    Scope(Scope),
}

/// What `operation` needs. Hand-written from the protocol's rules; a test
/// holds it equal to the spec's `security`.
pub fn requirement(operation: OperationId) -> Requirement {
    use OperationId::*;
    use Requirement::{CallbackToken, Nothing};
    let scope = match operation {
        GetHealth | GetMetrics | GetJwks => return Nothing,
        SubscriptionCallback | AckSubscription | ReleaseSubscription => return CallbackToken,
        // GET and HEAD of a stream read it.
        ReadStream | HeadStream => Scope::Read,
        // PUT creates, POST appends.
        CreateStream | AppendStream => Scope::Write,
        // Deleting a stream destroys data: manage, not write.
        DeleteStream => Scope::Manage,
        // A subscriber only reads what the source publishes.
        SubscribeEstuary | GetEstuary => Scope::Read,
        UnsubscribeEstuary | DeleteEstuary => Scope::Write,
        GetConfig | PutConfig => Scope::Manage,
        LegacySubscribe | LegacyGetSession | LegacyTouchSession => Scope::Read,
        LegacyUnsubscribe | LegacyPublish => Scope::Write,
        GetSubscription | ClaimSubscription => Scope::Read,
        PutSubscription | DeleteSubscription | AddSubscriptionStreams | RemoveSubscriptionStream => Scope::Manage,
    };
    Requirement::Scope(scope)
}

/// The HTTP method of `operation` (every operation has exactly one).
pub fn method(operation: OperationId) -> &'static http::Method {
    ROUTES
        .iter()
        .find(|route| route.operation == operation)
        .map(|route| &route.method)
        .expect("every operation of the spec has a route")
}

/// A request as authorization sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The spec operation the router matched.
    pub operation: OperationId,
    /// The project the request addresses (`sub` must equal it); `None` for
    /// routes outside any project (health, `__ds` subscriptions) or a stream
    /// path that does not parse.
    pub project: Option<String>,
    /// The one stream the request touches, by its name within the project
    /// (what a `stream_id` claim names); `None` when it touches no single stream.
    pub stream: Option<String>,
}

impl Access {
    /// An access to `operation` in `project`, touching `stream` (a name within the project).
    pub fn new(operation: OperationId, project: Option<String>, stream: Option<String>) -> Access {
        Access { operation, project, stream }
    }

    /// An access to a stream by its path.
    pub fn of_stream(operation: OperationId, path: &StreamPath) -> Access {
        Access::new(operation, Some(path.project().to_owned()), Some(path.name().to_owned()))
    }

    /// The access of a routed request, from its decoded path parameters.
    pub fn from_route(operation: OperationId, params: &PathParams) -> Access {
        use OperationId::*;
        let param = |name: &str| params.get(name).map(str::to_owned);
        match operation {
            ReadStream | HeadStream | CreateStream | AppendStream | DeleteStream => {
                match params.get("stream").map(StreamPath::parse) {
                    Some(Ok(path)) => Access::of_stream(operation, &path),
                    _ => Access::new(operation, None, None),
                }
            }
            SubscribeEstuary | UnsubscribeEstuary => Access::new(operation, param("project"), param("stream")),
            GetEstuary | DeleteEstuary => Access::new(operation, param("project"), param("estuaryId")),
            GetConfig | PutConfig => Access::new(operation, param("project"), None),
            LegacyPublish => Access::new(operation, Some(DEFAULT_PROJECT.to_owned()), param("streamId")),
            LegacyGetSession | LegacyTouchSession => Access::new(
                operation,
                Some(DEFAULT_PROJECT.to_owned()),
                params.get("sessionId").map(|id| format!("{SESSION_STREAM_PREFIX}{id}")),
            ),
            LegacySubscribe | LegacyUnsubscribe => Access::new(operation, Some(DEFAULT_PROJECT.to_owned()), None),
            GetHealth
            | GetMetrics
            | GetJwks
            | GetSubscription
            | PutSubscription
            | DeleteSubscription
            | AddSubscriptionStreams
            | RemoveSubscriptionStream
            | SubscriptionCallback
            | ClaimSubscription
            | AckSubscription
            | ReleaseSubscription => Access::new(operation, None, None),
        }
    }

    /// What the operation needs.
    pub fn requirement(&self) -> Requirement {
        requirement(self.operation)
    }

    /// The operation's HTTP method.
    pub fn method(&self) -> &'static http::Method {
        method(self.operation)
    }

    /// GET or HEAD: what the seeds call a read (anything else is a mutation).
    pub fn is_read(&self) -> bool {
        let method = self.method();
        method == http::Method::GET || method == http::Method::HEAD
    }

    /// A read of a stream's content, the only access a public stream opens to
    /// callers without credentials.
    pub fn is_stream_read(&self) -> bool {
        matches!(self.operation, OperationId::ReadStream | OperationId::HeadStream)
    }

    /// The session of a `session:{id}` stream.
    pub fn session(&self) -> Option<&str> {
        self.stream.as_deref()?.strip_prefix(SESSION_STREAM_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use durable_streams_api::router::Security;

    use super::*;

    fn params(pairs: &[(&'static str, &str)]) -> PathParams {
        PathParams(pairs.iter().map(|(name, value)| (*name, value.to_string())).collect())
    }

    #[test]
    fn the_written_rules_equal_the_spec_for_every_operation() {
        let mut seen = 0;
        for route in ROUTES {
            let expected = match route.operation.security() {
                Security::None => Requirement::Nothing,
                Security::CallbackToken => Requirement::CallbackToken,
                Security::Bearer(scope) => Requirement::Scope(scope),
            };
            assert_eq!(requirement(route.operation), expected, "{}", route.operation.as_str());
            assert_eq!(method(route.operation), &route.method, "one method per operation");
            seen += 1;
        }
        assert!(seen >= 27, "every route was checked ({seen})");
    }

    #[test]
    fn the_issue_rules_hold() {
        use OperationId::*;
        let scope = |op| match requirement(op) {
            Requirement::Scope(scope) => Some(scope),
            _ => None,
        };
        assert_eq!(scope(ReadStream), Some(Scope::Read));
        assert_eq!(scope(HeadStream), Some(Scope::Read));
        assert_eq!(scope(CreateStream), Some(Scope::Write));
        assert_eq!(scope(AppendStream), Some(Scope::Write));
        assert_eq!(scope(DeleteStream), Some(Scope::Manage));
        assert_eq!(scope(SubscribeEstuary), Some(Scope::Read));
        assert_eq!(scope(GetEstuary), Some(Scope::Read));
        assert_eq!(scope(UnsubscribeEstuary), Some(Scope::Write));
        assert_eq!(scope(DeleteEstuary), Some(Scope::Write));
        assert_eq!(scope(GetConfig), Some(Scope::Manage));
        assert_eq!(scope(PutConfig), Some(Scope::Manage));
        assert_eq!(requirement(GetHealth), Requirement::Nothing);
    }

    #[test]
    fn routes_name_their_project_and_stream() {
        use OperationId::*;
        let some = |s: &str| Some(s.to_owned());
        let cases = [
            (ReadStream, params(&[("stream", "acme/orders/eu")]), some("acme"), some("orders/eu")),
            (HeadStream, params(&[("stream", "orders")]), some("_default"), some("orders")),
            (CreateStream, params(&[("stream", "acme/../x")]), None, None),
            (SubscribeEstuary, params(&[("project", "acme"), ("stream", "orders")]), some("acme"), some("orders")),
            (UnsubscribeEstuary, params(&[("project", "acme"), ("stream", "orders")]), some("acme"), some("orders")),
            (GetEstuary, params(&[("project", "acme"), ("estuaryId", "e1")]), some("acme"), some("e1")),
            (DeleteEstuary, params(&[("project", "acme"), ("estuaryId", "e1")]), some("acme"), some("e1")),
            (GetConfig, params(&[("project", "acme")]), some("acme"), None),
            (PutConfig, params(&[("project", "acme")]), some("acme"), None),
            (LegacyPublish, params(&[("streamId", "news")]), some("_default"), some("news")),
            (LegacyGetSession, params(&[("sessionId", "s1")]), some("_default"), some("session:s1")),
            (LegacyTouchSession, params(&[("sessionId", "s1")]), some("_default"), some("session:s1")),
            (LegacySubscribe, params(&[]), some("_default"), None),
            (GetHealth, params(&[]), None, None),
            (GetSubscription, params(&[("subscriptionId", "sub1")]), None, None),
        ];
        for (operation, params, project, stream) in cases {
            let access = Access::from_route(operation, &params);
            assert_eq!((access.project, access.stream), (project, stream), "{}", operation.as_str());
        }
    }

    #[test]
    fn reads_are_get_and_head() {
        use OperationId::*;
        let access = |op| Access::new(op, None, None);
        assert!(access(ReadStream).is_read() && access(HeadStream).is_read() && access(GetEstuary).is_read());
        assert!(!access(SubscribeEstuary).is_read(), "subscribing is a POST");
        assert!(!access(DeleteStream).is_read() && !access(PutConfig).is_read());
        assert!(access(ReadStream).is_stream_read() && !access(GetEstuary).is_stream_read());
        let session = Access::from_route(LegacyGetSession, &params(&[("sessionId", "s1")]));
        assert_eq!(session.session(), Some("s1"));
        assert_eq!(access(ReadStream).session(), None);
    }
}
