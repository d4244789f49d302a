//! Estuaries on the native host, from outside: the API contract, exactly-
//! once in-order delivery (single, batched, concurrent, producer retries),
//! unsubscribe/delete, TTL expiry; and a SIGKILL in the middle of a fan-out
//! to 1,000 estuaries.

mod common;

use std::time::Duration;

use common::{temp_dir, Server};
use durable_streams_tests::estuary_scenarios::{self, Client};

#[test]
fn estuary_api_delivery_and_expiry() {
    let dir = temp_dir("estuaries");
    let server = Server::start(&dir, &["--estuary-ttl-seconds", "2"]);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    estuary_scenarios::api_contract(&client, "p", "a-").unwrap();
    estuary_scenarios::delivery(&client, "p", "d-", 5).unwrap();
    estuary_scenarios::fork_source(&client, "p", "f-").unwrap();
    estuary_scenarios::legacy_sessions(&client, "l-").unwrap();
    estuary_scenarios::expiry(&client, "p", "t-", Duration::from_secs(2)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigkill_mid_fanout_to_1000_estuaries_loses_and_duplicates_nothing() {
    let dir = temp_dir("fanout-crash");
    let mut server = Server::start(&dir, &["--durability", "fsync"]);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    let source = "/v1/stream/p/firehose";
    assert_eq!(client.call("PUT", source, &[("Content-Type", "text/plain")], b"").unwrap().status, 201);
    const ESTUARIES: usize = 1000;
    for i in 0..ESTUARIES {
        let body = format!(r#"{{"estuaryId":"e{i}"}}"#);
        let answer = client
            .call("POST", "/v1/estuary/subscribe/p/firehose", &[("Content-Type", "application/json")], body.as_bytes())
            .unwrap();
        assert_eq!(answer.status, 200, "subscribe e{i}");
    }
    // Publish continuously and kill the server while publishes and their
    // fan-out (1,000 appends each) are under way.
    let port = server.port;
    let publisher = std::thread::spawn(move || {
        let base = format!("127.0.0.1:{port}");
        let client = Client { base: &base, auth: None };
        let mut acked = 0usize;
        for m in 0.. {
            let message = format!("m{m:05};");
            match client.call("POST", "/v1/stream/p/firehose", &[("Content-Type", "text/plain")], message.as_bytes()) {
                Ok(answer) if answer.status == 204 || answer.status == 200 => acked += 1,
                _ => break, // the server is gone
            }
        }
        acked
    });
    std::thread::sleep(Duration::from_millis(800));
    server.kill9();
    let acked = publisher.join().unwrap();
    assert!(acked >= 2, "only {acked} publishes were acknowledged before the kill");

    // Restart on the same data: the outbox resumes the fan-out. Every
    // estuary ends up with exactly the source's content — every committed
    // publish, once, in order (acknowledged ones are all in the source).
    let server = Server::start(&dir, &["--durability", "fsync"]);
    let base = format!("127.0.0.1:{}", server.port);
    let client = Client { base: &base, auth: None };
    let (status, committed) = client.read_all(source).unwrap();
    assert_eq!(status, 200);
    let published = committed.len() / "m00000;".len();
    assert!(published >= acked, "{published} committed < {acked} acknowledged");
    for (i, message) in committed.chunks("m00000;".len()).enumerate() {
        assert_eq!(message, format!("m{i:05};").as_bytes(), "the source itself is in order");
    }
    for i in 0..ESTUARIES {
        client.wait_for(&format!("/v1/stream/p/e{i}"), &committed, Duration::from_secs(60)).unwrap();
    }
    eprintln!("fan-out crash: {acked} publishes acknowledged, {published} committed, delivered once to {ESTUARIES} estuaries");
    let _ = std::fs::remove_dir_all(&dir);
}
