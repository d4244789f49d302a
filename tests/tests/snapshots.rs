//! Snapshots of the rendered API docs and of a representative slice of the
//! generated code: a spec change shows up as a reviewable snapshot diff.

use std::path::Path;

fn generated(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// The text between the first line containing `start` and the next line
/// that is exactly `}` (a whole top-level item).
fn item(text: &str, start: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let begin = lines.iter().position(|l| l.contains(start)).unwrap_or_else(|| panic!("{start} not found"));
    // Include the doc comments and attributes above the item.
    let mut first = begin;
    while first > 0 && (lines[first - 1].starts_with("///") || lines[first - 1].starts_with("#[")) {
        first -= 1;
    }
    let end = lines[begin..].iter().position(|l| *l == "}").map(|i| begin + i).unwrap();
    lines[first..=end].join("\n")
}

#[test]
fn api_docs() {
    insta::assert_snapshot!("api_docs", generated("generated/docs/API.md"));
}

#[test]
fn append_stream_request_and_response() {
    let operations = generated("generated/api/src/operations.rs");
    let slice = [
        item(&operations, "pub struct AppendStreamRequest {"),
        item(&operations, "pub struct AppendStreamConflict {"),
        item(&operations, "pub enum AppendStreamResponse {"),
        item(&operations, "impl AppendStreamResponse {"),
    ]
    .join("\n\n");
    insta::assert_snapshot!("append_stream", slice);
}

#[test]
fn headers_registry_and_traits() {
    let headers = generated("generated/api/src/headers.rs");
    let traits = generated("generated/api/src/traits.rs");
    let slice = [
        item(&headers, "pub const CORS_ALLOW_HEADERS"),
        item(&headers, "pub fn apply_always"),
        item(&traits, "pub trait StreamsApi"),
    ]
    .join("\n\n");
    insta::assert_snapshot!("headers_and_traits", slice);
}

#[test]
fn routes() {
    let router = generated("generated/api/src/router.rs");
    insta::assert_snapshot!("routes", item(&router, "pub static ROUTES"));
}
