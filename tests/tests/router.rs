//! The generated router: path matching, `__ds` before streams, header and
//! query grammar, `404`/`405`, preflights and the always-sent headers.

use std::sync::Mutex;

use bytes::Bytes;
use durable_streams_api::operations::*;
use durable_streams_api::{
    handle, ApiError, Body, ConfigApi, CorsOrigins, EstuaryApi, HealthApi, LegacyApi, RequestContext, ServiceConfig,
    StreamsApi, SubscriptionsApi,
};

/// Records what the router decoded and answers `204`.
#[derive(Default)]
struct Recorder {
    appends: Mutex<Vec<AppendStreamRequest>>,
    reads: Mutex<Vec<ReadStreamRequest>>,
    projects: Mutex<Vec<Option<String>>>,
    subscriptions: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl StreamsApi for Recorder {
    async fn append_stream(
        &self,
        ctx: &RequestContext,
        request: AppendStreamRequest,
    ) -> Result<AppendStreamResponse, ApiError> {
        self.projects.lock().unwrap().push(ctx.project.clone());
        self.appends.lock().unwrap().push(request);
        Ok(AppendStreamResponse::NoContent(AppendStreamNoContent {
            stream_next_offset: Some("0000000000000000_0000000000000005".to_owned()),
            stream_closed: true,
            ..Default::default()
        }))
    }

    async fn read_stream(&self, ctx: &RequestContext, request: ReadStreamRequest) -> Result<ReadStreamResponse, ApiError> {
        self.projects.lock().unwrap().push(ctx.project.clone());
        self.reads.lock().unwrap().push(request);
        Ok(ReadStreamResponse::Ok(ReadStreamOk {
            content_type: Some("text/plain".to_owned()),
            stream_up_to_date: true,
            body: Body::full("hello"),
            ..Default::default()
        }))
    }
}

#[async_trait::async_trait]
impl SubscriptionsApi for Recorder {
    async fn get_subscription(
        &self,
        _ctx: &RequestContext,
        request: GetSubscriptionRequest,
    ) -> Result<GetSubscriptionResponse, ApiError> {
        self.subscriptions.lock().unwrap().push(request.subscription_id);
        Ok(GetSubscriptionResponse::NotFound(durable_streams_api::types::CodedError {
            error: durable_streams_api::types::ErrorCode {
                code: "NOT_FOUND".to_owned(),
                current_holder: None,
                generation: None,
                message: None,
            },
        }))
    }
}
impl EstuaryApi for Recorder {}
impl LegacyApi for Recorder {}
impl ConfigApi for Recorder {}
impl HealthApi for Recorder {}

fn call(api: &Recorder, request: http::Request<Bytes>) -> http::Response<Body> {
    let config = ServiceConfig { cors: CorsOrigins::Any };
    let ctx = RequestContext::new("req-1", 0, "http://127.0.0.1:4437");
    futures::executor::block_on(handle(api, &config, ctx, request))
}

fn request(method: &str, uri: &str) -> http::request::Builder {
    http::Request::builder().method(method).uri(uri)
}

fn problem_detail(response: &http::Response<Body>) -> String {
    let body = response.body().as_bytes().expect("complete body");
    let problem: serde_json::Value = serde_json::from_slice(body).expect("problem JSON");
    assert_eq!(problem["status"], response.status().as_u16());
    problem["detail"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn multi_segment_stream_paths_reach_the_stream_route() {
    let api = Recorder::default();
    let response = call(
        &api,
        request("POST", "/v1/stream/my-project/events/2024/abc")
            .header("content-type", "text/plain")
            .body(Bytes::from_static(b"hi"))
            .unwrap(),
    );
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["stream-next-offset"], "0000000000000000_0000000000000005");
    assert_eq!(response.headers()["stream-closed"], "true");
    let appends = api.appends.lock().unwrap();
    assert_eq!(appends[0].stream.project(), "my-project");
    assert_eq!(appends[0].stream.name(), "events/2024/abc");
    assert_eq!(appends[0].body, Bytes::from_static(b"hi"));
    assert_eq!(api.projects.lock().unwrap()[0].as_deref(), Some("my-project"));
}

#[test]
fn single_segment_streams_belong_to_the_default_project() {
    let api = Recorder::default();
    let response = call(&api, request("GET", "/v1/stream/solo").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_bytes(), Some(&b"hello"[..]));
    let reads = api.reads.lock().unwrap();
    assert_eq!(reads[0].stream.project(), "_default");
    assert_eq!(reads[0].stream.key(), "_default/solo");
}

#[test]
fn reserved_ds_routes_are_matched_before_streams() {
    let api = Recorder::default();
    let response = call(&api, request("GET", "/v1/stream/__ds/subscriptions/sub-1").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 404);
    assert_eq!(api.subscriptions.lock().unwrap().as_slice(), ["sub-1"]);
    assert!(api.reads.lock().unwrap().is_empty(), "a __ds path must never reach the stream route");

    // An unknown __ds path is reserved: it is not a stream either.
    let response = call(&api, request("GET", "/v1/stream/__ds/unknown").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 404);
    assert!(api.reads.lock().unwrap().is_empty());

    // A wrong method on a __ds route is 405, not a stream operation.
    let response = call(&api, request("PUT", "/v1/stream/__ds/jwks.json").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, OPTIONS");
}

#[test]
fn bad_header_grammar_is_400_naming_the_header() {
    let api = Recorder::default();
    for (name, value) in [
        ("producer-epoch", "1abc"),
        ("producer-seq", "-1"),
        ("producer-seq", "1e3"),
        ("producer-id", ""),
        ("content-type", "not a media type"),
    ] {
        let response = call(
            &api,
            request("POST", "/v1/stream/p/s")
                .header(name, value)
                .body(Bytes::from_static(b"x"))
                .unwrap(),
        );
        assert_eq!(response.status(), 400, "{name}: {value}");
        let detail = problem_detail(&response).to_ascii_lowercase();
        assert!(detail.contains(name), "detail {detail:?} must name {name}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    assert!(api.appends.lock().unwrap().is_empty());

    let response = call(
        &api,
        request("PUT", "/v1/stream/p/s")
            .header("stream-ttl", "03600")
            .body(Bytes::new())
            .unwrap(),
    );
    assert_eq!(response.status(), 400);
    assert!(problem_detail(&response).contains("Stream-TTL") || problem_detail(&response).contains("stream-ttl"));
}

#[test]
fn stream_closed_other_than_true_reads_as_absent() {
    let api = Recorder::default();
    for value in ["false", "yes", "1", ""] {
        let response = call(
            &api,
            request("POST", "/v1/stream/p/s")
                .header("stream-closed", value)
                .body(Bytes::from_static(b"x"))
                .unwrap(),
        );
        assert_eq!(response.status(), 204, "Stream-Closed: {value:?} is not an error");
    }
    let response = call(
        &api,
        request("POST", "/v1/stream/p/s").header("stream-closed", "TRUE").body(Bytes::new()).unwrap(),
    );
    assert_eq!(response.status(), 204);
    let appends = api.appends.lock().unwrap();
    assert!(appends[..4].iter().all(|a| !a.stream_closed));
    assert!(appends[4].stream_closed);
}

#[test]
fn duplicate_or_empty_offset_is_400() {
    let api = Recorder::default();
    for uri in [
        "/v1/stream/p/s?offset=-1&offset=now",
        "/v1/stream/p/s?offset=",
        "/v1/stream/p/s?offset=0,1",
        "/v1/stream/p/s?offset=0%201",
        "/v1/stream/p/s?offset=..%2F",
        "/v1/stream/p/s?offset=%00",
        "/v1/stream/p/s?live=sse&live=sse&offset=-1",
    ] {
        let response = call(&api, request("GET", uri).body(Bytes::new()).unwrap());
        assert_eq!(response.status(), 400, "{uri}");
        assert!(problem_detail(&response).contains('`'), "the detail names the parameter");
    }
    assert!(api.reads.lock().unwrap().is_empty());
}

#[test]
fn unknown_query_parameters_are_ignored() {
    let api = Recorder::default();
    let response = call(
        &api,
        request("GET", "/v1/stream/p/s?foo=bar&offset=-1&foo=baz&cursor=12").body(Bytes::new()).unwrap(),
    );
    assert_eq!(response.status(), 200);
    let reads = api.reads.lock().unwrap();
    assert_eq!(reads[0].offset.as_deref(), Some("-1"));
    assert_eq!(reads[0].cursor.as_deref(), Some("12"));
    assert_eq!(reads[0].live, None);
}

#[test]
fn live_mode_and_offsets_are_decoded() {
    let api = Recorder::default();
    let response = call(
        &api,
        request("GET", "/v1/stream/p/s?live=long-poll&offset=0000000000000001_0000000000000002")
            .header("if-none-match", "\"abc\"")
            .body(Bytes::new())
            .unwrap(),
    );
    assert_eq!(response.status(), 200);
    let reads = api.reads.lock().unwrap();
    assert_eq!(reads[0].live, Some(LiveMode::LongPoll));
    assert_eq!(reads[0].offset.as_deref(), Some("0000000000000001_0000000000000002"));
    assert_eq!(reads[0].if_none_match.as_deref(), Some("\"abc\""));
}

#[test]
fn unknown_route_is_404_and_wrong_method_is_405_with_allow() {
    let api = Recorder::default();
    let response = call(&api, request("GET", "/v2/nothing").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    let response = call(&api, request("PATCH", "/v1/stream/p/s").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD, PUT, POST, DELETE, OPTIONS");

    let response = call(&api, request("POST", "/health").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, OPTIONS");
}

#[test]
fn unimplemented_operations_answer_501() {
    let api = Recorder::default();
    let response = call(&api, request("DELETE", "/v1/stream/p/s").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 501);
}

#[test]
fn every_response_carries_security_headers_and_cors() {
    let api = Recorder::default();
    for response in [
        call(&api, request("GET", "/v1/stream/p/s").body(Bytes::new()).unwrap()),
        call(&api, request("GET", "/nowhere").body(Bytes::new()).unwrap()),
        call(&api, request("GET", "/v1/stream/p/s?offset=").body(Bytes::new()).unwrap()),
    ] {
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cross-origin-resource-policy"], "cross-origin");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(response.headers()["x-request-id"], "req-1");
    }
}

#[test]
fn preflight_allows_the_path_methods_and_registry_headers() {
    let api = Recorder::default();
    let response = call(&api, request("OPTIONS", "/v1/stream/p/s").body(Bytes::new()).unwrap());
    assert_eq!(response.status(), 204);
    let allow_headers = response.headers()["access-control-allow-headers"].to_str().unwrap();
    for header in ["if-none-match", "stream-seq", "producer-id", "stream-fork-sub-offset", "authorization"] {
        assert!(allow_headers.contains(header), "{header} missing from {allow_headers}");
    }
    assert_eq!(response.headers()["access-control-allow-methods"], "GET, HEAD, PUT, POST, DELETE, OPTIONS");
}

#[test]
fn bad_stream_paths_are_rejected() {
    let api = Recorder::default();
    for uri in ["/v1/stream/p//s", "/v1/stream/p/../s", "/v1/stream/p/%2E%2E/s"] {
        let response = call(&api, request("GET", uri).body(Bytes::new()).unwrap());
        assert_eq!(response.status(), 400, "{uri}");
    }
    assert!(api.reads.lock().unwrap().is_empty());
}

/// Refuses appends, admits the rest, and grants the project's origins.
struct TestGate;

#[async_trait::async_trait]
impl durable_streams_api::Gate for TestGate {
    async fn admit(
        &self,
        ctx: &mut RequestContext,
        admission: durable_streams_api::Admission<'_>,
    ) -> Result<(), ApiError> {
        assert_eq!(admission.project().as_deref(), Some("proj"));
        ctx.cors_origins = vec!["https://app.example".to_owned()];
        match admission {
            durable_streams_api::Admission::Operation {
                operation: durable_streams_api::router::OperationId::AppendStream, ..
            } => Err(durable_streams_api::Problem::new(http::StatusCode::UNAUTHORIZED, "no").into()),
            _ => Ok(()),
        }
    }
}

fn call_gated(api: &Recorder, request: http::Request<Bytes>) -> http::Response<Body> {
    let config = ServiceConfig { cors: CorsOrigins::None };
    let ctx = RequestContext::new("req-1", 0, "http://localhost");
    futures::executor::block_on(durable_streams_api::handle_gated(api, &TestGate, &config, ctx, request))
}

#[test]
fn the_gate_runs_before_handlers_and_its_origins_reach_refusals() {
    let api = Recorder::default();
    let from = |origin: &str| {
        request("POST", "/v1/stream/proj/s").header("origin", origin).body(Bytes::from_static(b"x")).unwrap()
    };
    let refused = call_gated(&api, from("https://app.example"));
    assert_eq!(refused.status(), 401);
    assert!(api.appends.lock().unwrap().is_empty(), "the handler never ran");
    assert_eq!(refused.headers()["access-control-allow-origin"], "https://app.example");
    let foreign = call_gated(&api, from("https://evil.example"));
    assert!(foreign.headers().get("access-control-allow-origin").is_none(), "a foreign origin gets no CORS headers");

    let read = call_gated(&api, request("GET", "/v1/stream/proj/s").body(Bytes::new()).unwrap());
    assert_eq!(read.status(), 200);
    assert_eq!(api.reads.lock().unwrap().len(), 1);

    let preflight = call_gated(
        &api,
        request("OPTIONS", "/v1/stream/proj/s").header("origin", "https://app.example").body(Bytes::new()).unwrap(),
    );
    assert_eq!(preflight.status(), 204, "preflights are never refused");
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://app.example");
}
