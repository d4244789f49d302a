//! The auth matrix at the library level: every kind of route against every
//! kind of credentials, for the default mode; then the other modes, header
//! parsing, and what refusals may say.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use durable_streams_api::router::OperationId;
use durable_streams_api::routing::PathParams;
use durable_streams_api::{RequestContext, Scope};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::*;

const NOW: u64 = 1_700_000_000;
const PROJECT: &str = "acme";
/// The project's current secret.
const SECRET_NEW: &[u8] = b"new-signing-secret-0123456789abcdef";
/// The previous secret: the JSON text of a JWK, used as its bytes.
const SECRET_OLD: &[u8] = br#"{"kty":"oct","k":"b2xkLXNpZ25pbmctc2VjcmV0","alg":"HS256"}"#;
/// A key the project never listed.
const SECRET_UNKNOWN: &[u8] = b"somebody-elses-secret-0123456789ab";

/// Signs any header and payload text with HMAC-SHA256, whatever the header says.
fn forge(header: &str, payload: &str, secret: &[u8]) -> String {
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn token(scope: Scope, secret: &[u8]) -> String {
    sign_hs256(&Claims::project(PROJECT, scope, NOW + 600), secret)
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

fn params(pairs: &[(&'static str, &str)]) -> PathParams {
    PathParams(pairs.iter().map(|(name, value)| (*name, value.to_string())).collect())
}

/// One row of the matrix.
struct Route {
    name: &'static str,
    operation: OperationId,
    params: PathParams,
}

fn routes() -> Vec<Route> {
    use OperationId::*;
    let stream = || params(&[("stream", "acme/orders")]);
    let source = || params(&[("project", PROJECT), ("stream", "orders")]);
    let estuary = || params(&[("project", PROJECT), ("estuaryId", "est-1")]);
    let config = || params(&[("project", PROJECT)]);
    vec![
        Route { name: "GET stream", operation: ReadStream, params: stream() },
        Route { name: "HEAD stream", operation: HeadStream, params: stream() },
        Route { name: "PUT stream", operation: CreateStream, params: stream() },
        Route { name: "POST stream", operation: AppendStream, params: stream() },
        Route { name: "DELETE stream", operation: DeleteStream, params: stream() },
        Route { name: "POST estuary/subscribe", operation: SubscribeEstuary, params: source() },
        Route { name: "DELETE estuary/subscribe", operation: UnsubscribeEstuary, params: source() },
        Route { name: "GET estuary", operation: GetEstuary, params: estuary() },
        Route { name: "DELETE estuary", operation: DeleteEstuary, params: estuary() },
        Route { name: "GET config", operation: GetConfig, params: config() },
        Route { name: "PUT config", operation: PutConfig, params: config() },
        Route { name: "GET health", operation: GetHealth, params: params(&[]) },
    ]
}

/// One column of the matrix: what the client sends and what the host knows.
struct Case {
    name: &'static str,
    authorization: Option<String>,
    secrets: Vec<Vec<u8>>,
    visibility: Visibility,
    /// The scope granted when the request is admitted with this token.
    scope: Scope,
    /// The refusal expected where the grid says 401 or 403; `None` where
    /// only scopes refuse (`InsufficientScope`).
    refusal: Option<Refusal>,
}

fn cases() -> Vec<Case> {
    let listed = || vec![SECRET_NEW.to_vec(), SECRET_OLD.to_vec()];
    let case = |name, authorization, refusal| Case {
        name,
        authorization,
        secrets: listed(),
        visibility: Visibility::Private,
        scope: Scope::Manage,
        refusal,
    };
    let read = token(Scope::Read, SECRET_NEW);
    let manage = token(Scope::Manage, SECRET_NEW);
    let read_input = read.rsplit_once('.').unwrap().0;
    let manage_signature = manage.rsplit_once('.').unwrap().1;
    let manage_payload = format!(r#"{{"sub":"acme","scope":"manage","exp":{}}}"#, NOW + 600);
    let scoped = |scope| Case { scope, ..case("scope", bearer(&token(scope, SECRET_NEW)), None) };
    vec![
        case("no token", None, Some(Refusal::MissingCredentials)),
        case("malformed", bearer("not.a.jwt"), Some(Refusal::MalformedToken)),
        case(
            "expired",
            bearer(&sign_hs256(&Claims::project(PROJECT, Scope::Manage, NOW - 1), SECRET_NEW)),
            Some(Refusal::Expired),
        ),
        // A read token's header and payload under a manage token's signature.
        case("tampered", bearer(&format!("{read_input}.{manage_signature}")), Some(Refusal::BadSignature)),
        case(
            "alg none",
            bearer(&format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
                URL_SAFE_NO_PAD.encode(&manage_payload)
            )),
            Some(Refusal::UnsupportedAlgorithm),
        ),
        case(
            "alg HS512",
            bearer(&forge(r#"{"alg":"HS512","typ":"JWT"}"#, &manage_payload, SECRET_NEW)),
            Some(Refusal::UnsupportedAlgorithm),
        ),
        case("unknown key", bearer(&token(Scope::Manage, SECRET_UNKNOWN)), Some(Refusal::BadSignature)),
        case(
            "foreign sub",
            bearer(&sign_hs256(&Claims::project("globex", Scope::Manage, NOW + 600), SECRET_NEW)),
            Some(Refusal::ForeignProject),
        ),
        case(
            "other stream_id",
            bearer(&sign_hs256(
                &Claims::project(PROJECT, Scope::Manage, NOW + 600).for_stream("elsewhere"),
                SECRET_NEW,
            )),
            Some(Refusal::OtherStream),
        ),
        case(
            "own stream_id",
            bearer(&sign_hs256(&Claims::project(PROJECT, Scope::Manage, NOW + 600).for_stream("orders"), SECRET_NEW)),
            Some(Refusal::OtherStream),
        ),
        Case { name: "read", ..scoped(Scope::Read) },
        Case { name: "write", ..scoped(Scope::Write) },
        Case { name: "manage", ..scoped(Scope::Manage) },
        case("old secret, still listed", bearer(&token(Scope::Manage, SECRET_OLD)), None),
        Case {
            secrets: vec![SECRET_NEW.to_vec()],
            ..case("old secret, removed", bearer(&token(Scope::Manage, SECRET_OLD)), Some(Refusal::BadSignature))
        },
        Case { visibility: Visibility::Public, ..case("public, no token", None, Some(Refusal::MissingCredentials)) },
        Case {
            visibility: Visibility::Public,
            ..case("public, malformed token", bearer("not.a.jwt"), Some(Refusal::MalformedToken))
        },
    ]
}

/// Expected outcomes: `O` open, `P` public reader, `A` authenticated, `1`
/// 401, `3` 403. Rows follow [`routes`], columns [`cases`]:
///
/// no-token, malformed, expired, tampered, alg-none, HS512, unknown-key,
/// foreign-sub, other-stream_id, own-stream_id, read, write, manage,
/// old-secret-listed, old-secret-removed, public-no-token, public-malformed.
const EXPECTED: [&str; 12] = [
    "1111111 33A AAA A1 P1", // GET stream
    "1111111 33A AAA A1 P1", // HEAD stream
    "1111111 33A 3AA A1 11", // PUT stream
    "1111111 33A 3AA A1 11", // POST stream
    "1111111 33A 33A A1 11", // DELETE stream
    "1111111 33A AAA A1 11", // POST estuary/subscribe
    "1111111 33A 3AA A1 11", // DELETE estuary/subscribe
    "1111111 333 AAA A1 11", // GET estuary
    "1111111 333 3AA A1 11", // DELETE estuary
    "1111111 333 33A A1 11", // GET config
    "1111111 333 33A A1 11", // PUT config
    "OOOOOOO OOO OOO OO OO", // GET health
];

fn authorize(authorizer: &dyn Authorizer, access: &Access, case: &Case) -> Result<Caller, AuthError> {
    let request = AuthRequest {
        access,
        credentials: match &case.authorization {
            Some(value) => Credentials::Header(value.as_bytes()),
            None => Credentials::Absent,
        },
        signing_secrets: &case.secrets,
        visibility: case.visibility,
        now_secs: NOW,
    };
    authorizer.authorize(&request)
}

/// Nothing a refusal says may contain a secret or the token.
fn assert_discreet(error: &AuthError, case: &Case) {
    let said =
        format!("{} {error} {error:?} {:?} {:?}", error.detail(), error.www_authenticate(), error.into_api_error());
    for secret in [SECRET_NEW, SECRET_OLD, SECRET_UNKNOWN] {
        assert!(!said.contains(std::str::from_utf8(secret).unwrap()), "{said}");
    }
    if let Some(authorization) = &case.authorization {
        let token = authorization.trim_start_matches("Bearer ");
        assert!(!said.contains(token), "{said}");
    }
    for word in ["newest", "oldest", "first", "second", "index", "[0]", "[1]"] {
        assert!(!said.contains(word), "refusals never say which secret: {said}");
    }
}

#[test]
fn the_project_jwt_matrix() {
    let routes = routes();
    let cases = cases();
    assert_eq!(routes.len(), EXPECTED.len());
    let mut checked = 0;
    for (route, row) in routes.iter().zip(EXPECTED) {
        let row: Vec<char> = row.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(row.len(), cases.len(), "row of {}", route.name);
        let access = Access::from_route(route.operation, &route.params);
        for (case, expected) in cases.iter().zip(row) {
            let at = format!("{} × {}", route.name, case.name);
            let outcome = authorize(&ProjectJwtAuth, &access, case);
            match (expected, &outcome) {
                ('O', Ok(Caller::Open)) | ('P', Ok(Caller::PublicReader)) => {}
                ('A', Ok(Caller::Authenticated(principal))) => {
                    assert_eq!(principal.project.as_deref(), Some(PROJECT), "{at}");
                    assert_eq!(principal.subject.as_deref(), Some(PROJECT), "{at}");
                    assert_eq!(principal.scope, case.scope, "{at}");
                }
                ('1', Err(error)) => {
                    assert_eq!(error.status(), 401, "{at}");
                    assert_eq!(Some(error.refusal()), case.refusal, "{at}");
                    let challenge = if error.refusal() == Refusal::MissingCredentials {
                        "Bearer"
                    } else {
                        "Bearer error=\"invalid_token\""
                    };
                    assert_eq!(error.www_authenticate(), Some(challenge), "{at}");
                    assert_discreet(error, case);
                }
                ('3', Err(error)) => {
                    assert_eq!(error.status(), 403, "{at}");
                    assert_eq!(error.www_authenticate(), None, "{at}");
                    match case.refusal {
                        Some(refusal) => assert_eq!(error.refusal(), refusal, "{at}"),
                        None => {
                            let granted = case.scope;
                            let refusal = error.refusal();
                            assert!(
                                matches!(refusal, Refusal::InsufficientScope { granted: g, .. } if g == granted),
                                "{at}: {error}"
                            );
                        }
                    }
                    assert_discreet(error, case);
                }
                _ => panic!("{at}: expected {expected}, got {outcome:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 12 * 17);
}

#[test]
fn insufficient_scope_names_both_scopes() {
    let access = Access::new(OperationId::DeleteStream, Some(PROJECT.into()), Some("orders".into()));
    let case = Case {
        name: "write",
        authorization: bearer(&token(Scope::Write, SECRET_NEW)),
        secrets: vec![SECRET_NEW.to_vec()],
        visibility: Visibility::Private,
        scope: Scope::Write,
        refusal: None,
    };
    let error = authorize(&ProjectJwtAuth, &access, &case).unwrap_err();
    assert_eq!(error.refusal(), Refusal::InsufficientScope { needed: Scope::Manage, granted: Scope::Write });
    assert_eq!(error.detail(), "this operation needs `manage` scope; the token grants `write`");
}

fn request<'a>(access: &'a Access, authorization: Option<&'a str>, secrets: &'a [Vec<u8>]) -> AuthRequest<'a> {
    AuthRequest {
        access,
        credentials: authorization.map_or(Credentials::Absent, |value| Credentials::Header(value.as_bytes())),
        signing_secrets: secrets,
        visibility: Visibility::Private,
        now_secs: NOW,
    }
}

#[test]
fn anonymous_reads_depend_on_what_the_host_knows() {
    let read = Access::new(OperationId::ReadStream, Some(PROJECT.into()), Some("orders".into()));
    for (visibility, admitted) in
        [(Visibility::Public, true), (Visibility::Unknown, true), (Visibility::Private, false)]
    {
        let outcome = ProjectJwtAuth.authorize(&AuthRequest { visibility, ..request(&read, None, &[]) });
        assert_eq!(outcome.is_ok(), admitted, "{visibility:?}");
        if admitted {
            assert_eq!(outcome.unwrap(), Caller::PublicReader);
        }
    }
    // Estuary reads are not stream reads: a public flag never opens them.
    let estuary = Access::new(OperationId::GetEstuary, Some(PROJECT.into()), Some("est-1".into()));
    let refused =
        ProjectJwtAuth.authorize(&AuthRequest { visibility: Visibility::Public, ..request(&estuary, None, &[]) });
    assert_eq!(refused.unwrap_err().refusal(), Refusal::MissingCredentials);
}

#[test]
fn project_tokens_need_sub_and_scope_and_a_project() {
    let secrets = vec![SECRET_NEW.to_vec()];
    let access = Access::new(OperationId::ReadStream, Some(PROJECT.into()), Some("orders".into()));
    let no_sub =
        bearer(&sign_hs256(&Claims { sub: None, ..Claims::project(PROJECT, Scope::Read, NOW + 60) }, SECRET_NEW))
            .unwrap();
    let no_scope =
        bearer(&sign_hs256(&Claims { scope: None, ..Claims::project(PROJECT, Scope::Read, NOW + 60) }, SECRET_NEW))
            .unwrap();
    for (header, why) in [(no_sub, "`sub` is required"), (no_scope, "`scope` is required")] {
        let error = ProjectJwtAuth.authorize(&request(&access, Some(&header), &secrets)).unwrap_err();
        assert_eq!(error.refusal(), Refusal::InvalidClaims(why));
        assert_eq!(error.status(), 401);
    }
    // A stream path that does not parse addresses no project: no token is for it.
    let nowhere = Access::from_route(OperationId::ReadStream, &params(&[("stream", "acme/../x")]));
    let header = bearer(&token(Scope::Manage, SECRET_NEW)).unwrap();
    let error = ProjectJwtAuth.authorize(&request(&nowhere, Some(&header), &secrets)).unwrap_err();
    assert_eq!(error.refusal(), Refusal::ForeignProject);
    // `_default` streams belong to the project `_default`.
    let default = Access::from_route(OperationId::ReadStream, &params(&[("stream", "orders")]));
    let header = bearer(&sign_hs256(&Claims::project("_default", Scope::Read, NOW + 60), SECRET_NEW)).unwrap();
    assert!(ProjectJwtAuth.authorize(&request(&default, Some(&header), &secrets)).is_ok());
}

#[test]
fn routes_that_check_their_own_token_are_not_gated() {
    let header = "Bearer a-callback-token";
    for operation in [OperationId::SubscriptionCallback, OperationId::AckSubscription, OperationId::GetJwks] {
        let access = Access::new(operation, None, None);
        let authorizers: [&dyn Authorizer; 4] =
            [&ProjectJwtAuth, &JwtSessionAuth::new(SECRET_NEW), &BearerTokenAuth::new("t"), &NoAuth];
        for authorizer in authorizers {
            assert_eq!(authorizer.authorize(&request(&access, Some(header), &[])), Ok(Caller::Open));
        }
    }
}

#[test]
fn the_authorization_header_is_read_strictly() {
    let good = token(Scope::Read, SECRET_NEW);
    let accepted = [format!("Bearer {good}"), format!("bearer {good}"), format!("BEARER \t {good}  ")];
    for value in &accepted {
        assert_eq!(Credentials::Header(value.as_bytes()).bearer(), Ok(Some(good.as_str())), "{value}");
    }
    let refused: [(&[u8], Refusal); 8] = [
        (b"Basic dXNlcjpwYXNz", Refusal::NotBearer),
        (b"", Refusal::NotBearer),
        (b"Bearer", Refusal::MalformedToken),
        (b"Bearer   ", Refusal::MalformedToken),
        (b"Bearer two words", Refusal::MalformedToken),
        (b"Bearer \xff\xfe", Refusal::MalformedToken),
        (b"Bearertoken", Refusal::NotBearer),
        (b"Token abc", Refusal::NotBearer),
    ];
    for (value, refusal) in refused {
        assert_eq!(Credentials::Header(value).bearer().unwrap_err().refusal(), refusal, "{value:?}");
    }
    assert_eq!(Credentials::Absent.bearer(), Ok(None));
    let repeated = Credentials::Repeated.bearer().unwrap_err();
    assert_eq!(repeated.www_authenticate(), Some("Bearer error=\"invalid_request\""));
    assert_eq!(Credentials::Header(b"Basic x").bearer().unwrap_err().www_authenticate(), Some("Bearer"));

    let mut headers = http::HeaderMap::new();
    assert_eq!(Credentials::from_headers(&headers), Credentials::Absent);
    headers.append(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer a"));
    assert_eq!(Credentials::from_headers(&headers), Credentials::Header(b"Bearer a"));
    headers.append(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer b"));
    assert_eq!(Credentials::from_headers(&headers), Credentials::Repeated);
}

#[test]
fn bearer_token_auth_guards_mutations_only() {
    let auth = BearerTokenAuth::new("static-token-123");
    let read = Access::new(OperationId::ReadStream, Some(PROJECT.into()), Some("orders".into()));
    let subscribe = Access::new(OperationId::SubscribeEstuary, Some(PROJECT.into()), Some("orders".into()));
    let delete = Access::new(OperationId::DeleteStream, Some(PROJECT.into()), Some("orders".into()));
    let config = Access::new(OperationId::PutConfig, Some(PROJECT.into()), None);

    assert_eq!(auth.authorize(&request(&read, None, &[])), Ok(Caller::Open), "reads are open to everyone");
    for mutation in [&subscribe, &delete, &config] {
        let missing = auth.authorize(&request(mutation, None, &[])).unwrap_err();
        assert_eq!((missing.status(), missing.www_authenticate()), (401, Some("Bearer")));
        let wrong = auth.authorize(&request(mutation, Some("Bearer static-token-124"), &[])).unwrap_err();
        assert_eq!(wrong.refusal(), Refusal::WrongToken);
        assert!(!wrong.detail().contains("static-token"));
        let caller = auth.authorize(&request(mutation, Some("Bearer static-token-123"), &[])).unwrap();
        let principal = caller.principal().unwrap();
        assert_eq!((principal.scope, principal.subject.as_deref()), (Scope::Manage, None));
    }
    // A token that is sent is checked, reads included.
    let wrong_read = auth.authorize(&request(&read, Some("Bearer nope"), &[])).unwrap_err();
    assert_eq!(wrong_read.refusal(), Refusal::WrongToken);
    // A project JWT is not the static token.
    let jwt = bearer(&token(Scope::Manage, SECRET_NEW)).unwrap();
    assert!(auth.authorize(&request(&delete, Some(&jwt), &[SECRET_NEW.to_vec()])).is_err());
}

#[test]
fn session_tokens_cover_their_own_session_stream() {
    let auth = JwtSessionAuth::with_secrets(vec![SECRET_NEW.to_vec(), SECRET_OLD.to_vec()]);
    let session = |id: &str| bearer(&sign_hs256(&Claims::session(id, NOW + 60), SECRET_NEW)).unwrap();
    let route = |operation, id: &str| Access::from_route(operation, &params(&[("sessionId", id)]));
    let stream = |name: &str| Access::new(OperationId::ReadStream, Some("_default".into()), Some(name.into()));

    let own = auth.authorize(&request(&route(OperationId::LegacyGetSession, "s1"), Some(&session("s1")), &[])).unwrap();
    let principal = own.principal().unwrap();
    assert_eq!((principal.session_id.as_deref(), principal.scope), (Some("s1"), Scope::Read));
    assert!(auth.authorize(&request(&route(OperationId::LegacyTouchSession, "s1"), Some(&session("s1")), &[])).is_ok());
    assert!(auth.authorize(&request(&stream("session:s1"), Some(&session("s1")), &[])).is_ok());

    for access in [route(OperationId::LegacyGetSession, "s2"), stream("session:s2"), stream("session:")] {
        let error = auth.authorize(&request(&access, Some(&session("s1")), &[])).unwrap_err();
        assert_eq!((error.status(), error.refusal()), (403, Refusal::OtherSession), "{access:?}");
    }
    assert!(auth.authorize(&request(&stream("news"), Some(&session("s1")), &[])).is_ok(), "other streams: any session");

    // A session token reads; writing needs a scope claim that allows it.
    let publish = Access::new(OperationId::LegacyPublish, Some("_default".into()), Some("news".into()));
    let error = auth.authorize(&request(&publish, Some(&session("s1")), &[])).unwrap_err();
    assert_eq!(error.refusal(), Refusal::InsufficientScope { needed: Scope::Write, granted: Scope::Read });
    let writer = Claims { scope: Some(Scope::Write), ..Claims::session("s1", NOW + 60) };
    assert!(auth.authorize(&request(&publish, bearer(&sign_hs256(&writer, SECRET_OLD)).as_deref(), &[])).is_ok());

    // `session_id` and `exp` are required; the project's secrets are not the session secret.
    let project_token = bearer(&token(Scope::Manage, SECRET_NEW)).unwrap();
    let error = auth.authorize(&request(&stream("news"), Some(&project_token), &[])).unwrap_err();
    assert_eq!(error.refusal(), Refusal::InvalidClaims("`session_id` is required"));
    let elsewhere = bearer(&sign_hs256(&Claims::session("s1", NOW + 60), SECRET_UNKNOWN)).unwrap();
    let error = auth.authorize(&request(&stream("news"), Some(&elsewhere), &[SECRET_UNKNOWN.to_vec()])).unwrap_err();
    assert_eq!(error.refusal(), Refusal::BadSignature);
    let expired = bearer(&sign_hs256(&Claims::session("s1", NOW), SECRET_NEW)).unwrap();
    assert_eq!(auth.authorize(&request(&stream("news"), Some(&expired), &[])).unwrap_err().refusal(), Refusal::Expired);
    assert_eq!(
        auth.authorize(&request(&stream("session:s1"), None, &[])).unwrap_err().refusal(),
        Refusal::MissingCredentials
    );
}

#[test]
fn by_method_composes_the_seeds_default_worker() {
    let auth = ByMethod { read: JwtSessionAuth::new(SECRET_NEW), mutation: BearerTokenAuth::new("static-token-123") };
    let read = Access::new(OperationId::ReadStream, Some("_default".into()), Some("session:s1".into()));
    let append = Access::new(OperationId::AppendStream, Some("_default".into()), Some("session:s1".into()));
    let session = bearer(&sign_hs256(&Claims::session("s1", NOW + 60), SECRET_NEW)).unwrap();

    assert!(auth.authorize(&request(&read, Some(&session), &[])).is_ok());
    assert_eq!(auth.authorize(&request(&read, Some("Bearer static-token-123"), &[])).unwrap_err().status(), 401);
    assert!(auth.authorize(&request(&append, Some("Bearer static-token-123"), &[])).is_ok());
    assert_eq!(auth.authorize(&request(&append, Some(&session), &[])).unwrap_err().refusal(), Refusal::WrongToken);
}

#[test]
fn no_auth_admits_everything_without_reading_credentials() {
    for route in routes() {
        let access = Access::from_route(route.operation, &route.params);
        assert_eq!(NoAuth.authorize(&request(&access, Some("Basic garbage"), &[])), Ok(Caller::Open));
        assert_eq!(
            NoAuth.authorize(&AuthRequest { credentials: Credentials::Repeated, ..request(&access, None, &[]) }),
            Ok(Caller::Open)
        );
    }
}

#[test]
fn authorizers_work_behind_pointers() {
    let boxed: Box<dyn Authorizer> = Box::new(ProjectJwtAuth);
    let shared: std::sync::Arc<dyn Authorizer> = std::sync::Arc::new(NoAuth);
    let access = Access::new(OperationId::PutConfig, Some(PROJECT.into()), None);
    assert_eq!(boxed.authorize(&request(&access, None, &[])).unwrap_err().status(), 401);
    assert_eq!(shared.authorize(&request(&access, None, &[])), Ok(Caller::Open));
    fn needs_send_sync<T: Send + Sync + ?Sized>(_: &T) {}
    needs_send_sync(&*shared);
}

#[test]
fn the_caller_reaches_the_request_context() {
    let mut ctx = RequestContext::new("r1", NOW * 1000, "http://localhost");
    Caller::PublicReader.apply(&mut ctx);
    assert!(ctx.anonymous && ctx.principal.is_none());

    let principal = Principal {
        project: Some(PROJECT.into()),
        subject: Some(PROJECT.into()),
        scope: Scope::Write,
        stream_id: Some("orders".into()),
        session_id: None,
    };
    Caller::Authenticated(principal).apply(&mut ctx);
    assert!(!ctx.anonymous);
    let api = ctx.principal.clone().unwrap();
    assert_eq!((api.subject.as_str(), api.scope, api.stream_id.as_deref()), (PROJECT, Scope::Write, Some("orders")));

    Caller::Open.apply(&mut ctx);
    assert!(!ctx.anonymous && ctx.principal.is_none());
}

#[test]
fn refusals_become_problem_answers() {
    let unauthorized = AuthError::from(Refusal::Expired).into_api_error();
    assert_eq!((unauthorized.problem.status, unauthorized.problem.title.as_str()), (401, "Unauthorized"));
    assert_eq!(unauthorized.problem.detail.as_deref(), Some("the token has expired"));
    assert_eq!(unauthorized.headers.get("www-authenticate").unwrap(), "Bearer error=\"invalid_token\"");

    let forbidden = durable_streams_api::ApiError::from(AuthError::from(Refusal::ForeignProject));
    assert_eq!((forbidden.problem.status, forbidden.problem.title.as_str()), (403, "Forbidden"));
    assert!(forbidden.headers.get("www-authenticate").is_none());
}

#[test]
fn debug_output_never_shows_secrets_or_tokens() {
    let header = bearer(&token(Scope::Read, SECRET_NEW)).unwrap();
    let secrets = vec![SECRET_NEW.to_vec()];
    let access = Access::new(OperationId::ReadStream, Some(PROJECT.into()), Some("orders".into()));
    let printed = format!(
        "{:?} {:?} {:?} {:?}",
        request(&access, Some(&header), &secrets),
        JwtSessionAuth::new(SECRET_NEW),
        BearerTokenAuth::new("static-token-123"),
        ByMethod { read: JwtSessionAuth::new(SECRET_OLD), mutation: NoAuth },
    );
    assert!(printed.contains("redacted"), "{printed}");
    let token = header.trim_start_matches("Bearer ");
    let (head, _) = token.split_once('.').unwrap();
    for needle in
        [std::str::from_utf8(SECRET_NEW).unwrap(), std::str::from_utf8(SECRET_OLD).unwrap(), "static-token", head]
    {
        assert!(!printed.contains(needle), "{printed}");
    }
    // Nor do the raw bytes appear as a byte list.
    assert!(!printed.contains(&format!("{:?}", &SECRET_NEW[..4])), "{printed}");
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn on_any_authorization_header(value in proptest::collection::vec(any::<u8>(), 0..200), route in 0usize..12) {
            let routes = routes();
            let access = Access::from_route(routes[route].operation, &routes[route].params);
            let secrets = vec![SECRET_NEW.to_vec()];
            let request = AuthRequest {
                access: &access,
                credentials: Credentials::Header(&value),
                signing_secrets: &secrets,
                visibility: Visibility::Unknown,
                now_secs: NOW,
            };
            let session = JwtSessionAuth::new(SECRET_NEW);
            let static_token = BearerTokenAuth::new("t");
            let authorizers: [&dyn Authorizer; 3] = [&ProjectJwtAuth, &session, &static_token];
            for authorizer in authorizers {
                if let Err(error) = authorizer.authorize(&request) {
                    prop_assert!(error.status() == 401 || error.status() == 403);
                }
            }
        }

        #[test]
        fn on_any_bearer_text(token in "[ -~]{0,400}") {
            let header = format!("Bearer {token}");
            let _ = Credentials::Header(header.as_bytes()).bearer();
            let _ = verify_hs256(&token, &[SECRET_NEW], NOW);
        }
    }
}
