//! Rotation test: tiny segment limits, data spanning many cold segments plus the hot tail,
//! read back byte-exact from every offset boundary in catch-up, long-poll and SSE.

mod common;

use std::time::{Duration, Instant};

use common::{read_all, request, temp_dir, Server};

const PATH: &str = "/v1/stream/rotation/log";

fn count_segments(dir: &std::path::Path) -> usize {
    fn walk(d: &std::path::Path) -> usize {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| if e.path().is_dir() { walk(&e.path()) } else { usize::from(e.path().extension().is_none()) })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("segments"))
}

/// Long-poll from `offset` until a 204 (timeout at the tail).
fn long_poll_all(server: &Server, offset: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = offset.to_owned();
    loop {
        let r = server.request("GET", &format!("{PATH}?offset={at}&live=long-poll"), &[], b"").unwrap();
        match r.status {
            200 => {
                out.extend_from_slice(&r.body);
                assert!(r.header("stream-cursor").is_some());
                at = r.header("stream-next-offset").unwrap().to_owned();
            }
            204 => return out,
            s => panic!("long-poll status {s}"),
        }
    }
}

/// SSE from `offset` (the server closes the connection after `--sse-reconnect-ms`).
fn sse_all(port: u16, offset: &str) -> Vec<u8> {
    let r = request(port, "GET", &format!("{PATH}?offset={offset}&live=sse"), &[], b"", Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(r.body).unwrap();
    let mut out = Vec::new();
    let mut saw_data = false;
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        let mut lines = event.split('\n');
        match lines.next() {
            Some("event: data") => {
                let payload: Vec<&str> = lines.map(|l| l.strip_prefix("data:").unwrap()).collect();
                out.extend_from_slice(payload.join("\n").as_bytes());
                saw_data = true;
            }
            Some("event: control") => {
                if saw_data {
                    saw_data = false; // every data event is followed by a control event
                }
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(!saw_data, "a data event was not followed by a control event");
    out
}

#[test]
fn cold_segments_and_hot_tail_read_back_byte_exact() {
    let dir = temp_dir("rotation");
    let server = Server::start(
        &dir,
        &[
            "--segment-max-messages", "3",
            "--segment-max-bytes", "64",
            "--read-chunk-bytes", "40",
            "--long-poll-timeout-ms", "200",
            "--sse-reconnect-ms", "700",
            "--durability", "none",
        ],
    );
    assert_eq!(server.request("PUT", PATH, &[("Content-Type", "text/plain")], b"").unwrap().status, 201);
    let mut expected = Vec::new();
    let mut boundaries = vec!["-1".to_owned(), "0000000000000000_0000000000000000".to_owned()];
    for i in 0..60 {
        let body = format!("message {i:03} {}|", "x".repeat(i % 7));
        let r = server.request("POST", PATH, &[("Content-Type", "text/plain")], body.as_bytes()).unwrap();
        assert_eq!(r.status, 204);
        expected.extend_from_slice(body.as_bytes());
        boundaries.push(r.header("stream-next-offset").unwrap().to_owned());
    }
    // Wait for the rotation loop to move most messages to cold segments.
    let started = Instant::now();
    while count_segments(&dir) < 15 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let segments = count_segments(&dir);
    assert!(segments >= 15, "expected many cold segments, found {segments}");

    for b in &boundaries {
        let start = if b == "-1" { 0 } else { b.split('_').nth(1).unwrap().parse::<usize>().unwrap() };
        let (bytes, _) = read_all(&server, PATH, b);
        assert_eq!(bytes, &expected[start..], "catch-up from {b}");
        assert_eq!(long_poll_all(&server, b), &expected[start..], "long-poll from {b}");
    }
    // SSE from a sample of boundaries (each connection lasts the reconnect interval).
    for b in boundaries.iter().step_by(9) {
        let start = if b == "-1" { 0 } else { b.split('_').nth(1).unwrap().parse::<usize>().unwrap() };
        assert_eq!(sse_all(server.port, b), &expected[start..], "SSE from {b}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
