//! The registry stream over HTTP, for any host: a project's
//! `__registry__` receives one event per stream created or deleted
//! (explicitly, or because its TTL ran out), once and in order; readers
//! follow it live; clients may not write it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::estuary_scenarios::{Client, Hook};

fn check(condition: bool, what: impl Into<String>) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(what.into())
    }
}

/// The registry's events with `createdAt` replaced by `0` (it is the
/// host's clock), and whether every insert carried a positive one.
fn events(c: &Client, project: &str) -> Result<Vec<Value>, String> {
    events_at(c, &format!("/v1/stream/{project}/__registry__"))
}

/// [`events`] of any JSON stream of registry events (an estuary's).
fn events_at(c: &Client, path: &str) -> Result<Vec<Value>, String> {
    let (status, body) = c.read_all(path)?;
    if status == 404 {
        return Ok(Vec::new());
    }
    check(status == 200, format!("registry read: {status}"))?;
    let mut events: Vec<Value> = serde_json::from_slice(&body).map_err(|e| format!("registry body: {e}"))?;
    for event in &mut events {
        let shown = event.to_string();
        if let Some(created) = event.pointer_mut("/value/createdAt") {
            check(created.as_i64().is_some_and(|t| t > 0), format!("createdAt of {shown}"))?;
            *created = json!(0);
        }
    }
    Ok(events)
}

fn insert(name: &str, content_type: &str) -> Value {
    json!({"type": "stream", "key": name, "value": {"path": name, "contentType": content_type, "createdAt": 0}, "headers": {"operation": "insert"}})
}

fn delete(name: &str) -> Value {
    json!({"type": "stream", "key": name, "headers": {"operation": "delete"}})
}

fn wait_for_events(c: &Client, project: &str, want: &[Value], within: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let have = events(c, project)?;
        if have == want {
            return Ok(());
        }
        if started.elapsed() > within || have.len() > want.len() {
            return Err(format!("registry of {project}: want {want:?}, have {have:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creations (plain, JSON, a fork), an idempotent re-creation (no event),
/// a deletion, a stream that expires; a fork of a stream of another
/// project is refused (`403`, nothing announced in `{project}-x`); an
/// estuary subscribed to the registry (its own stream is a creation too)
/// receives later events; a live long-poll sees a later creation; writes
/// to the registry are `403`. `project` and `{project}-x` must be unused.
pub fn registry_events(c: &Client, project: &str) -> Result<(), String> {
    let path = |name: &str| format!("/v1/stream/{project}/{name}");
    let put = |name: &str, headers: &[(&str, &str)]| -> Result<u16, String> { Ok(c.call("PUT", &path(name), headers, b"")?.status) };
    check(put("a", &[("Content-Type", "text/plain")])? == 201, "create a")?;
    check(put("b", &[("Content-Type", "application/json")])? == 201, "create b")?;
    let source = path("a");
    check(put("f", &[("Content-Type", "text/plain"), ("Stream-Forked-From", source.as_str())])? == 201, "create the fork f")?;
    check(put("a", &[("Content-Type", "text/plain")])? == 200, "re-create a (idempotent)")?;
    check(c.call("DELETE", &path("b"), &[], b"")?.status == 204, "delete b")?;
    check(put("t", &[("Content-Type", "text/plain"), ("Stream-TTL", "1")])? == 201, "create t with a TTL")?;
    let mut want = vec![
        insert("a", "text/plain"),
        insert("b", "application/json"),
        insert("f", "text/plain"),
        delete("b"),
        insert("t", "text/plain"),
    ];
    wait_for_events(c, project, &want, Duration::from_secs(15))?;
    // The TTL runs out: a deletion, found by the host's sweep.
    want.push(delete("t"));
    wait_for_events(c, project, &want, Duration::from_secs(30))?;

    // A fork may not copy a stream of another project (403), and nothing
    // is announced there.
    let other = format!("{project}-x");
    let fork_path = format!("/v1/stream/{other}/g");
    let answer = c.call("PUT", &fork_path, &[("Content-Type", "text/plain"), ("Stream-Forked-From", source.as_str())], b"")?;
    check(answer.status == 403, format!("a fork of {source} in project {other} answered {}", answer.status))?;
    check(c.call("HEAD", &fork_path, &[], b"")?.status == 404, "a refused cross-project fork exists")?;
    check(c.call("DELETE", &source, &[], b"")?.status == 204, "delete a (its fork f keeps its data)")?;
    std::thread::sleep(Duration::from_millis(300));
    check(events(c, &other)?.is_empty(), format!("the registry of {other} is not empty"))?;
    want.push(delete("a"));
    wait_for_events(c, project, &want, Duration::from_secs(15))?;

    // Reserved: no client writes, whatever the method.
    let registry = path("__registry__");
    for (method, content_type) in [("PUT", "application/json"), ("POST", "application/json"), ("DELETE", "")] {
        let answer = c.call(method, &registry, &[("Content-Type", content_type)], b"{}")?;
        check(answer.status == 403, format!("{method} on the registry answered {}", answer.status))?;
        let problem: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        check(problem["status"] == json!(403), format!("{method} on the registry: problem body {problem}"))?;
    }
    // An estuary may not take the registry's name.
    let answer = c.call(
        "POST",
        &format!("/v1/estuary/subscribe/{project}/a"),
        &[("Content-Type", "application/json")],
        br#"{"estuaryId":"__registry__"}"#,
    )?;
    check(answer.status == 400, format!("an estuary named __registry__ answered {}", answer.status))?;

    // An estuary subscribed to the registry: its stream's creation is an event.
    let answer = c.call(
        "POST",
        &format!("/v1/estuary/subscribe/{project}/__registry__"),
        &[("Content-Type", "application/json")],
        br#"{"estuaryId":"watch"}"#,
    )?;
    check(answer.status == 200, format!("subscribing an estuary to the registry answered {}", answer.status))?;
    want.push(insert("watch", "application/json"));
    wait_for_events(c, project, &want, Duration::from_secs(15))?;

    // Live: a long-poll at the tail sees the next creation.
    let head = c.call("HEAD", &registry, &[], b"")?;
    let tail = head.header("stream-next-offset").ok_or("registry HEAD without Stream-Next-Offset")?.to_owned();
    let live = std::thread::scope(|scope| -> Result<Value, String> {
        let poll = scope.spawn(|| c.call("GET", &format!("{registry}?offset={tail}&live=long-poll"), &[], b""));
        std::thread::sleep(Duration::from_millis(300));
        check(put("late", &[("Content-Type", "text/plain")])? == 201, "create late")?;
        let answer = poll.join().map_err(|_| "long-poll panicked".to_owned())??;
        check(answer.status == 200, format!("live registry long-poll answered {}", answer.status))?;
        serde_json::from_slice(&answer.body).map_err(|e| format!("live registry body: {e}"))
    })?;
    let mut live = live;
    if let Some(created) = live.pointer_mut("/0/value/createdAt") {
        *created = json!(0);
    }
    check(live == json!([insert("late", "text/plain")]), format!("live registry event: {live}"))?;
    want.push(insert("late", "text/plain"));
    wait_for_events(c, project, &want, Duration::from_secs(5))?;

    // The estuary got what the registry received after the subscription.
    let estuary = path("watch");
    let started = Instant::now();
    loop {
        let have = events_at(c, &estuary)?;
        let wanted = insert("late", "text/plain");
        if have.last() == Some(&wanted) {
            let earlier: Vec<&Value> = have.iter().filter(|e| e["key"] != json!("watch")).collect();
            check(earlier == vec![&wanted], format!("the registry's estuary holds {have:?}"))?;
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(format!("the registry's estuary holds {have:?}, not the creation of late"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A registry whose appends fail (`503`, a test hook): the stream objects
/// keep their events and retry from their alarms, and once the registry
/// works again every event arrives once, in order. `hook(op, stream)` runs
/// a test hook (`fail-appends` / `heal-appends`) on a stream's object.
/// `project` must be unused.
pub fn registry_retried_after_failure(c: &Client, project: &str, hook: Hook<'_>) -> Result<(), String> {
    let registry = format!("{project}/__registry__");
    hook("fail-appends", &registry)?;
    let path = |name: &str| format!("/v1/stream/{project}/{name}");
    check(c.call("PUT", &path("one"), &[("Content-Type", "text/plain")], b"")?.status == 201, "create one")?;
    check(c.call("PUT", &path("two"), &[("Content-Type", "application/json")], b"")?.status == 201, "create two")?;
    check(c.call("DELETE", &path("one"), &[], b"")?.status == 204, "delete one")?;
    std::thread::sleep(Duration::from_millis(1500));
    check(events(c, project)?.is_empty(), "events reached a registry whose appends fail")?;
    hook("heal-appends", &registry)?;
    // Nothing else touches these objects: only their alarms can move the
    // events. Each stream's events in order (two objects: no order between them).
    let of = |events: &[Value], key: &str| -> Vec<Value> { events.iter().filter(|e| e["key"] == json!(key)).cloned().collect() };
    let settled = |events: &[Value]| {
        events.len() == 3
            && of(events, "one") == [insert("one", "text/plain"), delete("one")]
            && of(events, "two") == [insert("two", "application/json")]
    };
    let started = Instant::now();
    loop {
        let have = events(c, project)?;
        if settled(&have) {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) || have.len() > 3 {
            return Err(format!("registry of {project} after it healed: {have:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(6)); // a later alarm moves nothing twice
    let have = events(c, project)?;
    check(settled(&have), format!("registry of {project} later: {have:?}"))
}
