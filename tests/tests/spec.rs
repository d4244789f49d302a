//! The spec is valid: both the source document and the bundled standard
//! document load with openapiv3; every operation has an operationId and
//! every response a description; every `$ref` resolves.

use std::path::Path;

use openapiv3::{OpenAPI, ReferenceOr};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn load_yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn resolve<'a>(doc: &'a serde_json::Value, reference: &str) -> Option<&'a serde_json::Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn check_refs(doc: &serde_json::Value, node: &serde_json::Value, at: &str, broken: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if key == "$ref" {
                    let reference = value.as_str().unwrap_or_default();
                    if resolve(doc, reference).is_none() {
                        broken.push(format!("{at}: {reference}"));
                    }
                } else {
                    check_refs(doc, value, &format!("{at}/{key}"), broken);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_refs(doc, item, &format!("{at}/{index}"), broken);
            }
        }
        _ => {}
    }
}

fn check_document(doc: &serde_json::Value) {
    let openapi: OpenAPI = serde_json::from_value(doc.clone()).expect("loads as OpenAPI 3.0");
    assert!(openapi.openapi.starts_with("3.0."), "progenitor and openapiv3 read OpenAPI 3.0 only");
    let mut ids = std::collections::BTreeSet::new();
    let mut count = 0;
    for (path, method, operation) in openapi.operations() {
        count += 1;
        let id = operation.operation_id.clone().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
        for (status, response) in &operation.responses.responses {
            let response = match response {
                ReferenceOr::Item(response) => response.clone(),
                ReferenceOr::Reference { reference } => {
                    let value = resolve(doc, reference).unwrap_or_else(|| panic!("{id}: {reference} does not resolve"));
                    serde_json::from_value(value.clone()).unwrap()
                }
            };
            assert!(!response.description.trim().is_empty(), "{id} {status} has no description");
        }
    }
    assert!(count >= 27, "every API is in the spec ({count} operations)");
    let mut broken = Vec::new();
    check_refs(doc, doc, "", &mut broken);
    assert!(broken.is_empty(), "unresolved $refs: {broken:#?}");
}

#[test]
fn source_spec_is_valid() {
    check_document(&load_yaml(&root().join("spec/openapi.yaml")));
}

#[test]
fn bundled_spec_is_valid_and_expands_every_header() {
    let doc = load_yaml(&root().join("generated/openapi.yaml"));
    check_document(&doc);
    let text = serde_json::to_string(&doc).unwrap();
    assert!(!text.contains("\"x-ds-headers\":") && !text.contains("\"x-ds-request-headers\":"));
    let ttl = doc.pointer("/components/parameters/Header-Stream-TTL/schema/pattern").unwrap();
    assert_eq!(ttl, "^(0|[1-9][0-9]*)$");
    let next = doc
        .pointer("/paths/~1v1~1stream~1{stream}/post/responses/204/headers/Stream-Next-Offset/$ref")
        .unwrap();
    assert_eq!(next, "#/components/headers/Stream-Next-Offset");
}

#[test]
fn spec_covers_the_required_routes() {
    let doc: OpenAPI = serde_json::from_value(load_yaml(&root().join("spec/openapi.yaml"))).unwrap();
    let routes: Vec<String> = doc.operations().map(|(path, method, _)| format!("{} {path}", method.to_uppercase())).collect();
    for route in [
        "PUT /v1/stream/{stream}",
        "POST /v1/stream/{stream}",
        "GET /v1/stream/{stream}",
        "HEAD /v1/stream/{stream}",
        "DELETE /v1/stream/{stream}",
        "POST /v1/estuary/subscribe/{project}/{stream}",
        "DELETE /v1/estuary/subscribe/{project}/{stream}",
        "GET /v1/estuary/{project}/{estuaryId}",
        "DELETE /v1/estuary/{project}/{estuaryId}",
        "GET /v1/config/{project}",
        "PUT /v1/config/{project}",
        "GET /health",
        "PUT /v1/stream/__ds/subscriptions/{subscriptionId}",
        "GET /v1/stream/__ds/jwks.json",
        "POST /v1/subscribe",
    ] {
        assert!(routes.contains(&route.to_owned()), "{route} is missing from the spec");
    }
    let legacy: Vec<_> = doc.operations().filter(|(_, _, op)| op.tags == ["legacy"]).collect();
    assert!(legacy.len() >= 5);
    assert!(legacy.iter().all(|(_, _, op)| op.deprecated), "legacy routes are deprecated");
}

#[test]
fn an_edited_spec_changes_the_generated_output() {
    // Editing a response header or a schema in spec/ without regenerating
    // must make `generated_files_are_fresh` fail: prove generation reacts.
    let openapi = std::fs::read_to_string(root().join("spec/openapi.yaml")).unwrap();
    let headers = std::fs::read_to_string(root().join("spec/headers.yaml")).unwrap();
    let baseline = ds_codegen::generate(&ds_codegen::Spec::parse(&openapi, &headers).unwrap()).unwrap();

    let edited_header = openapi.replacen(
        "x-ds-headers: [Location, Content-Type, Stream-Next-Offset, Stream-Closed]",
        "x-ds-headers: [Location, Content-Type, Stream-Next-Offset]",
        1,
    );
    assert_ne!(edited_header, openapi, "the edit applies");
    let edited = ds_codegen::generate(&ds_codegen::Spec::parse(&edited_header, &headers).unwrap()).unwrap();
    assert_ne!(edited, baseline);

    let edited_schema = openapi.replacen("        isNewEstuary:\n", "        isNewEstuaryX:\n", 1);
    assert_ne!(edited_schema, openapi, "the edit applies");
    let edited = ds_codegen::generate(&ds_codegen::Spec::parse(&edited_schema, &headers).unwrap()).unwrap();
    assert_ne!(edited, baseline);
}
