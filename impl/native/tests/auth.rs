//! Auth on the native host, from outside: the operator creates a project
//! (`durable-streams project create`), the server runs with `--auth jwt`,
//! and the auth matrix (every route × every kind of credential, CORS on
//! refusals, rotation) runs over HTTP. Also the explicit no-auth mode.

mod common;

use std::process::Command;

use common::{temp_dir, Server};
use durable_streams_tests::auth_matrix;

fn operator(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_durable-streams")).args(args).output().expect("run operator command");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn project_tokens_gate_every_route() {
    let dir = temp_dir("auth");
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap();
    let created = operator(&["project", "create", "acme", "--data-dir", data_arg]);
    let secret = field(&created, "secret:").to_owned();
    let manage = field(&created, "manage token (valid 86400 s):").to_owned();
    assert_eq!(secret.len(), 64, "32 random bytes, hex");
    // A second create is refused; the secret never comes from an open route.
    let again = Command::new(env!("CARGO_BIN_EXE_durable-streams"))
        .args(["project", "create", "acme", "--data-dir", data_arg])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let server = Server::start(&data, &["--auth", "jwt"]);
    let base = format!("127.0.0.1:{}", server.port);
    let health = server.request("GET", "/health", &[], b"").unwrap();
    assert_eq!(health.status, 200);
    // The printed manage token works as printed.
    let auth = format!("Bearer {manage}");
    let config = server.request("GET", "/v1/config/acme", &[("Authorization", &auth)], b"").unwrap();
    assert_eq!(config.status, 200, "{}", String::from_utf8_lossy(&config.body));
    // So does a minted one.
    let minted = operator(&["token", "acme", "--data-dir", data_arg, "--scope", "write"]);
    let write = format!("Bearer {}", minted.trim());
    let put = server
        .request("PUT", "/v1/stream/acme/minted", &[("Authorization", &write), ("Content-Type", "text/plain")], b"")
        .unwrap();
    assert_eq!(put.status, 201);

    let cells = auth_matrix::run(&base, "acme", &secret, "m-").unwrap_or_else(|failures| panic!("{failures}"));
    assert!(cells >= 15 * 13, "{cells} cells");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_auth_mode_is_explicit_and_open() {
    let dir = temp_dir("noauth");
    let server = Server::start(&dir, &["--auth", "none"]);
    let put = server.request("PUT", "/v1/stream/open", &[("Content-Type", "text/plain")], b"hi").unwrap();
    assert_eq!(put.status, 201);
    let get = server.request("GET", "/v1/stream/open?offset=-1", &[("Origin", "https://any.example")], b"").unwrap();
    assert_eq!(get.status, 200);
    assert_eq!(get.header("access-control-allow-origin"), Some("*"), "no auth: any origin by default");
    // Counters, unauthenticated like /health; Server-Timing when asked.
    let metrics = server.request("GET", "/metrics", &[("X-Debug-Timing", "1")], b"").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("ds_streams_created_total 1"), "{text}");
    assert!(text.contains("ds_http_responses_total{class=\"2xx\"}"), "{text}");
    assert!(metrics.header("server-timing").is_some_and(|t| t.starts_with("native;dur=")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jwt_mode_refuses_anonymous_writes_and_private_reads() {
    let dir = temp_dir("jwtdefault");
    // `serve` defaults to --auth jwt.
    let server = Server::start(&dir, &["--auth", "jwt"]);
    let put = server.request("PUT", "/v1/stream/p/s", &[("Content-Type", "text/plain")], b"").unwrap();
    assert_eq!(put.status, 401);
    assert_eq!(put.header("www-authenticate"), Some("Bearer"));
    let get = server.request("GET", "/v1/stream/p/s?offset=-1", &[], b"").unwrap();
    assert_eq!(get.status, 401, "a stream that does not exist does not leak either");
    let _ = std::fs::remove_dir_all(&dir);
}
