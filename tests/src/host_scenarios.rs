//! Behaviour every host must show over HTTP, beyond the conformance suite:
//! data written across many segment rotations reads back byte-exact from
//! every offset; a 5 MB append round-trips; SSE delivers live appends and
//! the closure; and data survives a restart. Hosts run these with tiny
//! segment limits (e.g. 4 messages / 1 KiB).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::estuary_scenarios::Client;

fn check(condition: bool, what: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// Reads from `offset` to the tail, following `Stream-Next-Offset`; with
/// `X-Debug-Timing: 1`, also adds up the cold segments the host reported
/// (`Server-Timing: r2;...;desc="segments=N"`).
fn read_from(c: &Client, path: &str, offset: &str) -> Result<(Vec<u8>, u64), String> {
    let mut offset = offset.to_owned();
    let mut out = Vec::new();
    let mut segments = 0;
    for _ in 0..100_000 {
        let answer = c.call("GET", &format!("{path}?offset={offset}"), &[("X-Debug-Timing", "1")], b"")?;
        check(answer.status == 200, format!("GET {path}?offset={offset}: {}", answer.status))?;
        out.extend_from_slice(&answer.body);
        if let Some(timing) = answer.header("server-timing") {
            segments += timing
                .split("segments=")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        let next = answer.header("stream-next-offset").ok_or("no Stream-Next-Offset")?.to_owned();
        if answer.header("stream-up-to-date") == Some("true") {
            return Ok((out, segments));
        }
        check(next != offset, format!("{path}: no progress at {offset}"))?;
        offset = next;
    }
    Err(format!("{path}: too many chunks"))
}

/// Pseudo-random bytes (xorshift), reproducible.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// ~60 appends of varied sizes into a byte stream and a JSON stream, enough
/// for many rotations with tiny limits; then every offset reads back the
/// exact suffix. `require_cold`: the host must report cold-segment reads
/// (`Server-Timing`), proving the data really left the hot log.
pub fn rotation_roundtrip(c: &Client, prefix: &str, require_cold: bool) -> Result<(), String> {
    let path = format!("/v1/stream/{prefix}rot-bytes");
    let created = c.call("PUT", &path, &[("Content-Type", "application/octet-stream")], b"")?;
    check(created.status == 201, format!("create: {}", created.status))?;
    let mut expected = Vec::new();
    let mut offsets = vec!["-1".to_owned()];
    for i in 0..60usize {
        let part = pattern(1 + (i * 37) % 300, i as u64 + 1);
        let answer = c.call("POST", &path, &[("Content-Type", "application/octet-stream")], &part)?;
        check(answer.status == 204 || answer.status == 200, format!("append {i}: {}", answer.status))?;
        expected.extend_from_slice(&part);
        offsets.push(answer.header("stream-next-offset").ok_or("no offset")?.to_owned());
    }
    // Rotation runs in the background: wait until the start is cold.
    let started = Instant::now();
    loop {
        let (body, segments) = read_from(c, &path, "-1")?;
        check(body == expected, "full read differs from what was written")?;
        if !require_cold || segments > 0 {
            break;
        }
        check(started.elapsed() < Duration::from_secs(30), "no cold segment was ever read (rotation did not happen)")?;
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, offset) in offsets.iter().enumerate() {
        let (body, _) = read_from(c, &path, offset)?;
        let from = byte_position(offset);
        check(from <= expected.len() && body == expected[from..], format!("read from offset #{i} ({offset}) differs"))?;
    }

    let json = format!("/v1/stream/{prefix}rot-json");
    let created = c.call("PUT", &json, &[("Content-Type", "application/json")], b"")?;
    check(created.status == 201, format!("create json: {}", created.status))?;
    let mut values = Vec::new();
    for i in 0..40 {
        let body = if i % 5 == 0 {
            values.push(serde_json::json!({"i": i, "batch": 0}));
            values.push(serde_json::json!({"i": i, "batch": 1}));
            serde_json::json!([{"i": i, "batch": 0}, {"i": i, "batch": 1}]).to_string()
        } else {
            values.push(serde_json::json!({"i": i, "pad": "x".repeat(i * 7)}));
            serde_json::json!({"i": i, "pad": "x".repeat(i * 7)}).to_string()
        };
        let answer = c.call("POST", &json, &[("Content-Type", "application/json")], body.as_bytes())?;
        check(answer.status == 204 || answer.status == 200, format!("json append {i}: {}", answer.status))?;
    }
    let (status, body) = c.read_all(&json)?;
    check(status == 200, "json read")?;
    let got: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    check(got == values, "JSON messages across rotations differ")?;
    Ok(())
}

/// The byte position of an offset (`-1` is the start).
fn byte_position(offset: &str) -> usize {
    offset.rsplit('_').next().filter(|_| offset != "-1").and_then(|b| b.parse().ok()).unwrap_or(0)
}

/// One 5 MiB append, read back exactly.
pub fn large_append_roundtrip(c: &Client, prefix: &str) -> Result<(), String> {
    let path = format!("/v1/stream/{prefix}large");
    let created = c.call("PUT", &path, &[("Content-Type", "application/octet-stream")], b"")?;
    check(created.status == 201, format!("create: {}", created.status))?;
    let body = pattern(5 * 1024 * 1024, 42);
    let answer = c.call("POST", &path, &[("Content-Type", "application/octet-stream")], &body)?;
    check(answer.status == 204 || answer.status == 200, format!("5 MiB append: {}", answer.status))?;
    let (status, read) = c.read_all(&path)?;
    check(status == 200, "read")?;
    check(read.len() == body.len(), format!("read {} bytes of {}", read.len(), body.len()))?;
    check(read == body, "the 5 MiB append came back different")
}

/// Opens an SSE reader, appends three messages, closes the stream: the
/// reader gets the three in order and a final control event with
/// `streamClosed: true`, then the response ends.
pub fn sse_live_and_closure(c: &Client, prefix: &str) -> Result<(), String> {
    let path = format!("/v1/stream/{prefix}sse");
    let created = c.call("PUT", &path, &[("Content-Type", "text/plain")], b"")?;
    check(created.status == 201, format!("create: {}", created.status))?;
    let authority = c.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&authority).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut head = format!("GET {path}?offset=-1&live=sse HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(auth) = &c.auth {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        raw
    });
    std::thread::sleep(Duration::from_millis(500));
    for m in ["alpha", "beta", "gamma"] {
        let answer = c.call("POST", &path, &[("Content-Type", "text/plain")], m.as_bytes())?;
        check(answer.status == 204 || answer.status == 200, format!("append {m}: {}", answer.status))?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let closed = c.call("POST", &path, &[("Stream-Closed", "true")], b"")?;
    check(closed.status == 204 || closed.status == 200, format!("close: {}", closed.status))?;
    let raw = reader.join().map_err(|_| "reader panicked".to_owned())?;
    let text = String::from_utf8_lossy(&raw);
    check(text.starts_with("HTTP/1.1 200"), format!("SSE status: {}", text.lines().next().unwrap_or("")))?;
    let data: Vec<&str> = text
        .split("event: data")
        .skip(1)
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data:")))
        .map(str::trim)
        .collect();
    check(data == ["alpha", "beta", "gamma"], format!("SSE data events: {data:?}"))?;
    let last_control = text.rsplit("event: control").next().unwrap_or("");
    check(last_control.contains("\"streamClosed\":true"), format!("no final closure control event: {last_control}"))?;
    Ok(())
}

/// Before a restart: streams whose content, offsets and closure
/// [`restart_verify`] checks afterwards.
pub fn restart_write(c: &Client, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut written = Vec::new();
    for (name, content_type, parts, close) in [
        ("r-bytes", "application/octet-stream", 12usize, false),
        ("r-text", "text/plain", 3, true),
        ("r-json", "application/json", 5, false),
    ] {
        let path = format!("/v1/stream/{prefix}{name}");
        let created = c.call("PUT", &path, &[("Content-Type", content_type)], b"")?;
        check(created.status == 201, format!("create {name}: {}", created.status))?;
        for i in 0..parts {
            let body = if content_type == "application/json" {
                serde_json::json!({"n": i}).to_string().into_bytes()
            } else {
                pattern(200 + i * 50, i as u64 + 7)
            };
            let answer = c.call("POST", &path, &[("Content-Type", content_type)], &body)?;
            check(answer.status == 204 || answer.status == 200, format!("append {name}: {}", answer.status))?;
        }
        if close {
            let closed = c.call("POST", &path, &[("Stream-Closed", "true")], b"")?;
            check(closed.status == 204 || closed.status == 200, "close")?;
        }
        let (_, body) = c.read_all(&path)?;
        written.push((path, body));
    }
    Ok(written)
}

/// After a restart: everything [`restart_write`] wrote reads back the same,
/// closure included, and appends continue at the right offset.
pub fn restart_verify(c: &Client, written: &[(String, Vec<u8>)]) -> Result<(), String> {
    for (path, body) in written {
        let (status, now) = c.read_all(path)?;
        check(status == 200 && now == *body, format!("{path} changed across the restart"))?;
        let head = c.call("HEAD", path, &[], b"")?;
        let closed = head.header("stream-closed") == Some("true");
        check(closed == path.ends_with("r-text"), format!("{path}: closure across the restart"))?;
        if path.ends_with("r-bytes") {
            let tail_before = body.len();
            let answer = c.call("POST", path, &[("Content-Type", "application/octet-stream")], b"more")?;
            let next = answer.header("stream-next-offset").unwrap_or_default();
            check(next.ends_with(&format!("{:016}", tail_before + 4)), format!("append after restart: next offset {next}"))?;
        }
    }
    Ok(())
}
