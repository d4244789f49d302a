//! The registry stream on the native host, from outside: create/delete
//! events (including a TTL expiry) once and in order, live reads, and no
//! client writes.

mod common;

use common::{temp_dir, Server};
use durable_streams_tests::estuary_scenarios::Client;
use durable_streams_tests::registry_scenarios;

#[test]
fn the_registry_records_creations_and_deletions() {
    let dir = temp_dir("registry");
    let server = Server::start(&dir, &[]);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    registry_scenarios::registry_events(&client, "reg").unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
