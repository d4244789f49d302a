//! The host scenarios on the native binary with tiny segment limits (4
//! messages / 1 KiB): rotation read-back from every offset (cold reads
//! included), a 5 MiB append, SSE live delivery and closure, and a restart.

mod common;

use common::{temp_dir, Server};
use durable_streams_tests::estuary_scenarios::Client;
use durable_streams_tests::host_scenarios;

const TINY_SEGMENTS: [&str; 4] = ["--segment-max-messages", "4", "--segment-max-bytes", "1024"];

#[test]
fn rotation_large_appends_sse_and_restart() {
    let dir = temp_dir("host-scenarios");
    let server = Server::start(&dir, &TINY_SEGMENTS);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    host_scenarios::rotation_roundtrip(&client, "n-", false).unwrap();
    host_scenarios::large_append_roundtrip(&client, "n-").unwrap();
    host_scenarios::sse_live_and_closure(&client, "n-").unwrap();
    let written = host_scenarios::restart_write(&client, "n-").unwrap();
    drop(server);

    let server = Server::start(&dir, &TINY_SEGMENTS);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    host_scenarios::restart_verify(&client, &written).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
