//! Estuary behaviour over HTTP, for any host: the API's bodies and
//! statuses, content-type rules, exactly-once in-order delivery (single,
//! batched and concurrent publishes, producer retries), unsubscribe and
//! delete, and TTL expiry. `auth` is the `Authorization` value to send (or
//! `None` on a host without auth).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth_matrix::{send, Answer};

/// A client of one host.
pub struct Client<'a> {
    pub base: &'a str,
    pub auth: Option<String>,
}

impl Client<'_> {
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Answer, String> {
        let mut all: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Some(auth) = &self.auth {
            all.push(("Authorization", auth.clone()));
        }
        send(self.base, method, path, &all, body)
    }

    fn json(&self, method: &str, path: &str, body: Value) -> Result<(u16, Value), String> {
        let answer = self.call(method, path, &[("Content-Type", "application/json")], body.to_string().as_bytes())?;
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        Ok((answer.status, value))
    }

    fn create(&self, path: &str, content_type: &str) -> Result<(), String> {
        let answer = self.call("PUT", path, &[("Content-Type", content_type)], b"")?;
        expect_status(&answer, &[201, 200], &format!("create {path}"))
    }

    fn append(&self, path: &str, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Result<Answer, String> {
        let mut headers = vec![("Content-Type", content_type)];
        headers.extend_from_slice(extra);
        self.call("POST", path, &headers, body)
    }

    /// The whole stream, following `Stream-Next-Offset` (JSON streams: one array).
    pub fn read_all(&self, path: &str) -> Result<(u16, Vec<u8>), String> {
        let mut offset = "-1".to_owned();
        let mut out = Vec::new();
        let mut json_items: Vec<Value> = Vec::new();
        let mut is_json = false;
        for _ in 0..10_000 {
            let answer = self.call("GET", &format!("{path}?offset={offset}"), &[], b"")?;
            if answer.status != 200 {
                return Ok((answer.status, out));
            }
            is_json = answer.header("content-type").is_some_and(|t| t.starts_with("application/json"));
            if is_json {
                let items: Vec<Value> = serde_json::from_slice(&answer.body).map_err(|e| format!("{path}: {e}"))?;
                json_items.extend(items);
            } else {
                out.extend_from_slice(&answer.body);
            }
            let next = answer.header("stream-next-offset").ok_or("no Stream-Next-Offset")?.to_owned();
            if answer.header("stream-up-to-date") == Some("true") || next == offset {
                break;
            }
            offset = next;
        }
        if is_json {
            out = serde_json::to_vec(&json_items).map_err(|e| e.to_string())?;
        }
        Ok((200, out))
    }

    /// Waits until `path` holds exactly `expected` (JSON value or bytes).
    pub fn wait_for(&self, path: &str, expected: &[u8], within: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let (status, body) = self.read_all(path)?;
            if status == 200 && body == expected {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(format!(
                    "{path}: expected {}, have ({status}) {}",
                    String::from_utf8_lossy(expected),
                    String::from_utf8_lossy(&body)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn expect_status(answer: &Answer, allowed: &[u16], what: &str) -> Result<(), String> {
    if allowed.contains(&answer.status) {
        Ok(())
    } else {
        Err(format!("{what}: status {} {}", answer.status, String::from_utf8_lossy(&answer.body)))
    }
}

fn check(condition: bool, what: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

const DELIVERY: Duration = Duration::from_secs(15);

/// The API's bodies and statuses, and the content-type rules.
pub fn api_contract(c: &Client, project: &str, prefix: &str) -> Result<(), String> {
    let source = format!("/v1/stream/{project}/{prefix}src");
    let subscribe = format!("/v1/estuary/subscribe/{project}/{prefix}src");
    let estuary_id = format!("{prefix}est");
    let estuary_path = format!("/v1/stream/{project}/{estuary_id}");

    let (status, _) = c.json("POST", &subscribe, json!({"estuaryId": estuary_id}))?;
    check(status == 404, format!("subscribe to a missing source: {status}"))?;
    let (status, _) = c.json("GET", &format!("/v1/estuary/{project}/{estuary_id}"), Value::Null)?;
    check(status == 404, "a refused subscribe creates no estuary")?;
    check(c.call("HEAD", &estuary_path, &[], b"")?.status == 404, "…and no estuary stream")?;

    c.create(&source, "application/json")?;
    let (status, body) = c.json("POST", &subscribe, json!({"estuaryId": estuary_id}))?;
    check(status == 200, format!("subscribe: {status} {body}"))?;
    check(body["estuaryId"] == estuary_id.as_str(), format!("estuaryId: {body}"))?;
    check(body["streamId"] == format!("{prefix}src").as_str(), format!("streamId: {body}"))?;
    check(body["estuaryStreamPath"] == estuary_path.as_str(), format!("estuaryStreamPath: {body}"))?;
    check(body["isNewEstuary"] == true, format!("isNewEstuary: {body}"))?;
    let expires = body["expiresAt"].as_u64().unwrap_or(0);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    check(expires > now_ms, format!("expiresAt {expires} must be in the future (ms)"))?;
    let head = c.call("HEAD", &estuary_path, &[], b"")?;
    check(head.status == 200, format!("the estuary stream exists at once: {}", head.status))?;
    check(head.header("content-type").is_some_and(|t| t.starts_with("application/json")), "with the source's content type")?;
    check(head.header("stream-next-offset").is_some_and(|o| o.ends_with("0000000000000000")), "and empty")?;
    let (status, body) = c.json("POST", &subscribe, json!({"estuaryId": estuary_id}))?;
    check(status == 200 && body["isNewEstuary"] == false, format!("subscribing again: {status} {body}"))?;

    // Content types: the body's expectation, and an estuary of another type.
    let (status, _) = c.json("POST", &subscribe, json!({"estuaryId": format!("{prefix}x"), "contentType": "text/plain"}))?;
    check(status == 409, format!("expected contentType mismatch: {status}"))?;
    let text_source = format!("/v1/stream/{project}/{prefix}text");
    c.create(&text_source, "text/plain")?;
    let (status, _) =
        c.json("POST", &format!("/v1/estuary/subscribe/{project}/{prefix}text"), json!({"estuaryId": estuary_id}))?;
    check(status == 409, format!("an estuary of another content type: {status}"))?;
    let (status, _) = c.json("POST", &subscribe, json!({"estuaryId": "bad/id"}))?;
    check(status == 400, format!("an invalid estuaryId: {status}"))?;

    let (status, body) = c.json("GET", &format!("/v1/estuary/{project}/{estuary_id}"), Value::Null)?;
    check(status == 200, format!("GET estuary: {status}"))?;
    check(body["estuaryStreamPath"] == estuary_path.as_str(), format!("GET body: {body}"))?;
    check(body["contentType"].as_str().is_some_and(|t| t.starts_with("application/json")), format!("GET body: {body}"))?;
    check(body["subscriptions"] == json!([{"streamId": format!("{prefix}src")}]), format!("GET subscriptions: {body}"))?;
    let (status, _) = c.json("GET", &format!("/v1/estuary/{project}/{prefix}unknown"), Value::Null)?;
    check(status == 404, "GET of an unknown estuary")?;

    let (status, body) = c.json("DELETE", &subscribe, json!({"estuaryId": estuary_id}))?;
    check(status == 200, format!("unsubscribe: {status} {body}"))?;
    check(body == json!({"estuaryId": estuary_id, "streamId": format!("{prefix}src"), "unsubscribed": true}), format!("{body}"))?;
    let (status, body) = c.json("DELETE", &format!("/v1/estuary/{project}/{estuary_id}"), Value::Null)?;
    check(status == 200 && body == json!({"estuaryId": estuary_id, "deleted": true}), format!("delete: {status} {body}"))?;
    check(c.call("HEAD", &estuary_path, &[], b"")?.status == 404, "the deleted estuary's stream is gone")?;
    let (status, _) = c.json("DELETE", &format!("/v1/estuary/{project}/{estuary_id}"), Value::Null)?;
    check(status == 404, "deleting twice")?;
    Ok(())
}

/// Exactly-once, in-order delivery: single, batched, 20 concurrent
/// publishes and a producer retry reach every subscriber once; unsubscribe
/// and delete stop delivery, and a deleted estuary is never recreated.
pub fn delivery(c: &Client, project: &str, prefix: &str, subscribers: usize) -> Result<(), String> {
    let source = format!("/v1/stream/{project}/{prefix}feed");
    let subscribe = format!("/v1/estuary/subscribe/{project}/{prefix}feed");
    c.create(&source, "application/json")?;
    let ids: Vec<String> = (0..subscribers).map(|i| format!("{prefix}sub{i}")).collect();
    for id in &ids {
        let (status, body) = c.json("POST", &subscribe, json!({"estuaryId": id}))?;
        check(status == 200, format!("subscribe {id}: {status} {body}"))?;
    }
    let json_type = "application/json";
    let mut expected: Vec<Value> = Vec::new();
    // One message, then a batch (a JSON array is several messages).
    expect_status(&c.append(&source, json_type, br#"{"n":0}"#, &[])?, &[200, 204], "publish")?;
    expected.push(json!({"n": 0}));
    expect_status(&c.append(&source, json_type, br#"[{"n":1},{"n":2},{"n":3}]"#, &[])?, &[200, 204], "batch")?;
    expected.extend([json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]);
    // A producer retry: the same (id, epoch, seq) twice lands once.
    let producer = [("Producer-Id", "publisher"), ("Producer-Epoch", "0"), ("Producer-Seq", "0")];
    expect_status(&c.append(&source, json_type, br#"{"n":4}"#, &producer)?, &[200, 204], "producer publish")?;
    expect_status(&c.append(&source, json_type, br#"{"n":4}"#, &producer)?, &[200, 204], "producer retry")?;
    expected.push(json!({"n": 4}));
    let want = serde_json::to_vec(&expected).map_err(|e| e.to_string())?;
    for id in &ids {
        c.wait_for(&format!("/v1/stream/{project}/{id}"), &want, DELIVERY)?;
    }

    // 20 concurrent publishes: every subscriber sees them once, in the source's order.
    std::thread::scope(|scope| -> Result<(), String> {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let source = &source;
                scope.spawn(move || c.append(source, json_type, json!({"c": i}).to_string().as_bytes(), &[]))
            })
            .collect();
        for h in handles {
            let answer = h.join().map_err(|_| "publisher panicked".to_owned())??;
            expect_status(&answer, &[200, 204], "concurrent publish")?;
        }
        Ok(())
    })?;
    let (_, source_body) = c.read_all(&source)?;
    for id in &ids {
        c.wait_for(&format!("/v1/stream/{project}/{id}"), &source_body, DELIVERY)?;
    }

    // Unsubscribe and delete stop delivery; the deleted estuary stays deleted.
    let (stays, leaves, deleted) = (&ids[0], &ids[1], &ids[2]);
    let (status, _) = c.json("DELETE", &subscribe, json!({"estuaryId": leaves}))?;
    check(status == 200, "unsubscribe")?;
    let (status, _) = c.json("DELETE", &format!("/v1/estuary/{project}/{deleted}"), Value::Null)?;
    check(status == 200, "delete estuary")?;
    let (_, leaves_before) = c.read_all(&format!("/v1/stream/{project}/{leaves}"))?;
    expect_status(&c.append(&source, json_type, br#"{"after":true}"#, &[])?, &[200, 204], "publish after")?;
    let (_, source_body) = c.read_all(&source)?;
    c.wait_for(&format!("/v1/stream/{project}/{stays}"), &source_body, DELIVERY)?;
    std::thread::sleep(Duration::from_millis(300));
    let (_, leaves_after) = c.read_all(&format!("/v1/stream/{project}/{leaves}"))?;
    check(leaves_before == leaves_after, "an unsubscribed estuary received a later publish")?;
    check(c.call("HEAD", &format!("/v1/stream/{project}/{deleted}"), &[], b"")?.status == 404, "a publish recreated a deleted estuary")?;
    Ok(())
}

/// An estuary expires `ttl` after its last subscribe: its stream and
/// subscriptions are gone.
pub fn expiry(c: &Client, project: &str, prefix: &str, ttl: Duration) -> Result<(), String> {
    let source = format!("/v1/stream/{project}/{prefix}ttlsrc");
    c.create(&source, "text/plain")?;
    let id = format!("{prefix}short");
    let (status, _) = c.json("POST", &format!("/v1/estuary/subscribe/{project}/{prefix}ttlsrc"), json!({"estuaryId": id}))?;
    check(status == 200, "subscribe")?;
    let started = Instant::now();
    loop {
        let (status, _) = c.json("GET", &format!("/v1/estuary/{project}/{id}"), Value::Null)?;
        if status == 404 {
            break;
        }
        if started.elapsed() > ttl + Duration::from_secs(10) {
            return Err(format!("the estuary outlived its TTL of {ttl:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check(started.elapsed() + Duration::from_millis(200) >= ttl, "the estuary expired before its TTL")?;
    check(c.call("HEAD", &format!("/v1/stream/{project}/{id}"), &[], b"")?.status == 404, "the expired estuary's stream")?;
    expect_status(&c.append(&source, "text/plain", b"later", &[])?, &[200, 204], "publish after expiry")?;
    std::thread::sleep(Duration::from_millis(300));
    check(c.call("HEAD", &format!("/v1/stream/{project}/{id}"), &[], b"")?.status == 404, "a publish recreated an expired estuary")?;
    Ok(())
}

/// The deprecated session API of the seed system, as aliases over estuaries
/// in the project `_default`: subscribe, publish, read the session stream,
/// get, touch, unsubscribe.
pub fn legacy_sessions(c: &Client, prefix: &str) -> Result<(), String> {
    let source = format!("{prefix}legacy-src");
    let session = format!("{prefix}sess");
    c.create(&format!("/v1/stream/{source}"), "application/json")?;
    let (status, body) = c.json("POST", "/v1/subscribe", json!({"sessionId": session, "streamId": source}))?;
    check(status == 200, format!("legacy subscribe: {status} {body}"))?;
    check(body["estuaryStreamPath"] == format!("/v1/stream/_default/session:{session}").as_str(), format!("{body}"))?;
    let answer = c.append(&format!("/v1/publish/{source}"), "application/json", br#"{"hello":1}"#, &[])?;
    check(answer.status == 200, format!("legacy publish: {}", answer.status))?;
    let published: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    check(published["offset"].as_str().is_some_and(|o| o.ends_with(&format!("{:016}", 11))), format!("publish body: {published}"))?;
    c.wait_for(&format!("/v1/stream/session:{session}"), br#"[{"hello":1}]"#, DELIVERY)?;
    let (status, body) = c.json("GET", &format!("/v1/session/{session}"), Value::Null)?;
    check(status == 200 && body["subscriptions"] == json!([{"streamId": source}]), format!("legacy get: {status} {body}"))?;
    let (status, body) = c.json("POST", &format!("/v1/session/{session}/touch"), Value::Null)?;
    check(status == 200 && body["sessionId"] == session.as_str() && body["expiresAt"].as_u64().is_some(), format!("touch: {status} {body}"))?;
    let (status, _) = c.json("POST", &format!("/v1/session/{prefix}nosuch/touch"), Value::Null)?;
    check(status == 404, format!("touch of an unknown session: {status}"))?;
    let (status, body) = c.json("DELETE", "/v1/unsubscribe", json!({"sessionId": session, "streamId": source}))?;
    check(status == 200 && body["unsubscribed"] == true, format!("legacy unsubscribe: {status} {body}"))?;
    Ok(())
}

/// Fan-out survives its host dying mid-way: `subscribers` estuaries, a burst
/// of publishes, then `reset` (e.g. the source's object reset by a test
/// hook) right away. Every estuary must end up with exactly the source's
/// content: every publish once, in order.
pub fn fanout_survives_reset(
    c: &Client,
    project: &str,
    prefix: &str,
    subscribers: usize,
    reset: &dyn Fn() -> Result<(), String>,
) -> Result<(), String> {
    let source = format!("/v1/stream/{project}/{prefix}burst");
    c.create(&source, "text/plain")?;
    for i in 0..subscribers {
        let (status, body) =
            c.json("POST", &format!("/v1/estuary/subscribe/{project}/{prefix}burst"), json!({"estuaryId": format!("{prefix}r{i}")}))?;
        check(status == 200, format!("subscribe {i}: {status} {body}"))?;
    }
    for m in 0..10 {
        let answer = c.append(&source, "text/plain", format!("m{m:02};").as_bytes(), &[])?;
        expect_status(&answer, &[200, 204], "publish")?;
    }
    reset()?;
    let (status, committed) = c.read_all(&source)?;
    check(status == 200 && committed.len() == 40, format!("the source after the reset: {status}, {} bytes", committed.len()))?;
    for i in 0..subscribers {
        c.wait_for(&format!("/v1/stream/{project}/{prefix}r{i}"), &committed, Duration::from_secs(60))?;
    }
    Ok(())
}

/// Test hooks of a host, on the object of a stream (`{project}/{name}`):
/// `fanout-stats` answers the source's counters (`inlineRounds`,
/// `queuedJobs`, `deadLetters`); `fail-appends` / `heal-appends` make the
/// stream's appends fail (`503`) or work again.
pub type Hook<'a> = &'a dyn Fn(&str, &str) -> Result<Value, String>;

/// Queued fan-out (a source with more than 200 subscribers): every
/// estuary gets every publish once, in order — single and 10 concurrent
/// publishes — through the queue, not inline; an estuary whose appends
/// fail has its job retried, then dead-lettered, and still gets everything
/// once after it heals (the source re-enqueues what is owed); a deleted
/// estuary is pruned and never recreated.
pub fn queued_fanout(c: &Client, project: &str, prefix: &str, subscribers: usize, hook: Hook<'_>) -> Result<(), String> {
    let name = format!("{prefix}hot");
    let source = format!("/v1/stream/{project}/{name}");
    let subscribe = format!("/v1/estuary/subscribe/{project}/{name}");
    c.create(&source, "text/plain")?;
    let ids: Vec<String> = (0..subscribers).map(|i| format!("{prefix}q{i}")).collect();
    for id in &ids {
        let (status, body) = c.json("POST", &subscribe, json!({"estuaryId": id}))?;
        check(status == 200, format!("subscribe {id}: {status} {body}"))?;
    }
    let (failing, deleted) = (&ids[0], &ids[1]);
    hook("fail-appends", &format!("{project}/{failing}"))?;
    for m in 0..3 {
        expect_status(&c.append(&source, "text/plain", format!("s{m};").as_bytes(), &[])?, &[200, 204], "publish")?;
    }
    std::thread::scope(|scope| -> Result<(), String> {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let source = &source;
                scope.spawn(move || c.append(source, "text/plain", format!("c{i};").as_bytes(), &[]))
            })
            .collect();
        for h in handles {
            expect_status(&h.join().map_err(|_| "publisher panicked".to_owned())??, &[200, 204], "concurrent publish")?;
        }
        Ok(())
    })?;
    let (_, committed) = c.read_all(&source)?;
    check(committed.len() == 3 * 3 + 10 * 3, format!("the source holds {} bytes", committed.len()))?;
    for id in &ids[1..] {
        c.wait_for(&format!("/v1/stream/{project}/{id}"), &committed, Duration::from_secs(120))?;
    }
    let stats = hook("fanout-stats", &format!("{project}/{name}"))?;
    check(
        stats["queuedJobs"].as_u64().unwrap_or(0) > 0 && stats["inlineRounds"].as_u64() == Some(0),
        format!("the fan-out did not go through the queue: {stats}"),
    )?;
    // The failing estuary's job exhausts its retries and is dead-lettered.
    let started = Instant::now();
    loop {
        let stats = hook("fanout-stats", &format!("{project}/{name}"))?;
        if stats["deadLetters"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        check(started.elapsed() < Duration::from_secs(120), format!("no job was dead-lettered: {stats}"))?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, nothing) = c.read_all(&format!("/v1/stream/{project}/{failing}"))?;
    check(nothing.is_empty(), "a failing estuary received data")?;
    // Healed, it gets everything once, in order (re-enqueued by the source).
    hook("heal-appends", &format!("{project}/{failing}"))?;
    c.wait_for(&format!("/v1/stream/{project}/{failing}"), &committed, Duration::from_secs(120))?;
    // A deleted estuary is pruned, never recreated; the others get the next publish.
    let (status, _) = c.json("DELETE", &format!("/v1/estuary/{project}/{deleted}"), Value::Null)?;
    check(status == 200, "delete estuary")?;
    expect_status(&c.append(&source, "text/plain", b"z;", &[])?, &[200, 204], "publish after delete")?;
    let (_, committed) = c.read_all(&source)?;
    for id in ids.iter().filter(|id| *id != deleted) {
        c.wait_for(&format!("/v1/stream/{project}/{id}"), &committed, Duration::from_secs(120))?;
    }
    check(c.call("HEAD", &format!("/v1/stream/{project}/{deleted}"), &[], b"")?.status == 404, "a publish recreated a deleted estuary")?;
    Ok(())
}

/// A fork as an estuary's source: publishes to the fork reach the estuary
/// (once, in order); publishes to the fork's source do not.
pub fn fork_source(c: &Client, project: &str, prefix: &str) -> Result<(), String> {
    let base = format!("/v1/stream/{project}/{prefix}base");
    let fork = format!("/v1/stream/{project}/{prefix}fork");
    c.create(&base, "text/plain")?;
    expect_status(&c.append(&base, "text/plain", b"inherited;", &[])?, &[200, 204], "publish to the base")?;
    let answer = c.call("PUT", &fork, &[("Content-Type", "text/plain"), ("Stream-Forked-From", base.as_str())], b"")?;
    expect_status(&answer, &[201], "create the fork")?;
    let estuary_id = format!("{prefix}fork-est");
    let (status, body) = c.json("POST", &format!("/v1/estuary/subscribe/{project}/{prefix}fork"), json!({"estuaryId": estuary_id}))?;
    check(status == 200, format!("subscribe to the fork: {status} {body}"))?;
    check(body["streamId"] == json!(format!("{prefix}fork")), format!("streamId: {body}"))?;
    expect_status(&c.append(&fork, "text/plain", b"f1;", &[])?, &[200, 204], "publish to the fork")?;
    expect_status(&c.append(&base, "text/plain", b"b1;", &[])?, &[200, 204], "publish to the base")?;
    expect_status(&c.append(&fork, "text/plain", b"f2;", &[])?, &[200, 204], "publish to the fork")?;
    c.wait_for(&format!("/v1/stream/{project}/{estuary_id}"), b"f1;f2;", DELIVERY)?;
    std::thread::sleep(Duration::from_millis(300));
    c.wait_for(&format!("/v1/stream/{project}/{estuary_id}"), b"f1;f2;", DELIVERY)
}
