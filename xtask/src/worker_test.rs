//! `cargo xtask worker-test`: the host scenarios against the Workers host
//! under `wrangler dev` with tiny segment limits (4 messages / 1 KiB), so
//! data crosses many R2 rotations: read-back from every offset with cold
//! reads proven by `Server-Timing`, a 5 MiB append, SSE through the
//! hibernating WebSocket bridge (live appends and the closure), fan-out that
//! survives a reset of the source's object mid-way (test hook), the
//! registry stream of creations and deletions (and its events retried
//! while the registry fails), a fork as
//! an estuary's source, queued fan-out above 200 subscribers through
//! `FANOUT_QUEUE` (retries, dead-letter queue, pruning), then a restart of
//! `wrangler dev` on the same local state.

use anyhow::{Context, Result};

use crate::{util, worker};
use durable_streams_tests::estuary_scenarios::Client;
use durable_streams_tests::host_scenarios;

pub fn run() -> Result<()> {
    worker::ensure_tools()?;
    let state = util::TempDir::new("ds-worker-test")?;
    let opts = |port| worker::DevOpts {
        port,
        persist_to: Some(state.path().to_path_buf()),
        vars: vec![
            ("AUTH_MODE".to_owned(), "none".to_owned()),
            ("SEGMENT_MAX_MESSAGES".to_owned(), "4".to_owned()),
            ("SEGMENT_MAX_BYTES".to_owned(), "1024".to_owned()),
            ("LONG_POLL_TIMEOUT_MS".to_owned(), "500".to_owned()),
            // The test-only hooks: resetting an object, failing its appends,
            // reading its fan-out counters (never set in wrangler.toml).
            ("TEST_HOOKS".to_owned(), "1".to_owned()),
            // Re-enqueue what a queued fan-out still owes after 1 s (not 30 s).
            ("FANOUT_RECHECK_MS".to_owned(), "1000".to_owned()),
        ],
        log: Some(state.path().join(format!("wrangler-{port}.log"))),
    };
    let port = util::free_port()?;
    let mut dev = worker::start(&opts(port))?;
    let base = format!("127.0.0.1:{port}");
    let client = Client { base: &base, auth: None };
    let step = |name: &str, run: &dyn Fn() -> Result<(), String>| -> Result<()> {
        let started = std::time::Instant::now();
        if let Err(failure) = run() {
            // What the worker logged (kept for the failure's diagnosis).
            let newest_log = std::fs::read_dir(state.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
            let log = newest_log.unwrap_or_default();
            let saved = std::env::temp_dir().join(format!("ds-worker-test-failed-{}.log", std::process::id()));
            let _ = std::fs::copy(&log, &saved);
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("wrangler log (last lines; all of it in {}):\n{}", saved.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            return Err(anyhow::Error::msg(failure)).with_context(|| format!("worker-test: {name}"));
        }
        println!("worker-test: {name} passed ({:.1} s)", started.elapsed().as_secs_f64());
        Ok(())
    };
    step("rotation read-back from every offset (cold reads)", &|| host_scenarios::rotation_roundtrip(&client, "w-", true))?;
    step("5 MiB append round-trip", &|| host_scenarios::large_append_roundtrip(&client, "w-"))?;
    step("SSE live appends and closure", &|| host_scenarios::sse_live_and_closure(&client, "w-"))?;
    // A test hook on the object of `stream` (`/_test/{op}/{stream}`): its JSON answer.
    let hook = |op: &str, stream: &str| -> Result<serde_json::Value, String> {
        let answer = durable_streams_tests::auth_matrix::send(&base, "POST", &format!("/_test/{op}/{stream}"), &[], b"")?;
        if answer.status != 200 {
            return Err(format!("hook {op} {stream}: {}", answer.status));
        }
        serde_json::from_slice(&answer.body).map_err(|e| format!("hook {op}: {e}"))
    };
    step("fan-out to 100 estuaries survives a reset of the source's object", &|| {
        let reset = || hook("reset", "p/f-burst").map(drop);
        durable_streams_tests::estuary_scenarios::fanout_survives_reset(&client, "p", "f-", 100, &reset)
    })?;
    step("queued fan-out to 1,000 estuaries survives a reset of the source's object", &|| {
        let reset = || hook("reset", "p/fq-burst").map(drop);
        durable_streams_tests::estuary_scenarios::fanout_survives_reset(&client, "p", "fq-", 1000, &reset)?;
        let stats = hook("fanout-stats", "p/fq-burst")?;
        if stats["queuedJobs"].as_u64().unwrap_or(0) == 0 {
            return Err(format!("the fan-out to 1,000 estuaries did not go through the queue: {stats}"));
        }
        Ok(())
    })?;
    step("the registry stream of creations and deletions", &|| {
        durable_streams_tests::registry_scenarios::registry_events(&client, "reg")
    })?;
    step("registry events wait out a failing registry (alarm retries)", &|| {
        durable_streams_tests::registry_scenarios::registry_retried_after_failure(&client, "reg-retry", &hook)
    })?;
    step("a fork as an estuary's source", &|| durable_streams_tests::estuary_scenarios::fork_source(&client, "p", "fk-"))?;
    step("queued fan-out to 210 estuaries (retries, dead letter, pruning)", &|| {
        durable_streams_tests::estuary_scenarios::queued_fanout(&client, "p", "qf-", 210, &hook)
    })?;
    step("Analytics Engine data points of every category", &|| analytics_points(&client, &base))?;
    let written = host_scenarios::restart_write(&client, "w-").map_err(anyhow::Error::msg)?;
    dev.stop();

    let port = util::free_port()?;
    let mut dev = worker::start(&opts(port))?;
    let base = format!("127.0.0.1:{port}");
    let client = Client { base: &base, auth: None };
    let verified = step("data survives a restart of wrangler dev", &|| host_scenarios::restart_verify(&client, &written));
    dev.stop();
    verified
}

/// After the scenarios above (publishes, inline and queued fan-out, a dead
/// letter, estuaries created and deleted): a publish error, an unsubscribe
/// and a stream that expires, then every category of data point must have
/// been written, with its blobs.
fn analytics_points(client: &Client, base: &str) -> Result<(), String> {
    use durable_streams_tests::auth_matrix::send;
    let ok = |answer: durable_streams_tests::auth_matrix::Answer, what: &str| {
        if answer.status < 300 { Ok(answer) } else { Err(format!("{what}: {}", answer.status)) }
    };
    ok(client.call("PUT", "/v1/stream/p/an-src", &[("Content-Type", "text/plain")], b"")?, "create")?;
    ok(client.call("POST", "/v1/stream/p/an-src", &[("Content-Type", "text/plain")], b"hello")?, "publish")?;
    let refused = client.call("POST", "/v1/stream/p/an-src", &[("Content-Type", "application/json")], b"{}")?;
    if refused.status != 409 {
        return Err(format!("an append of the wrong type answered {}", refused.status));
    }
    let subscribe = "/v1/estuary/subscribe/p/an-src";
    let body = br#"{"estuaryId":"an-est"}"#;
    ok(client.call("POST", subscribe, &[("Content-Type", "application/json")], body)?, "subscribe")?;
    // One subscriber: an inline fan-out.
    ok(client.call("POST", "/v1/stream/p/an-src", &[("Content-Type", "text/plain")], b"again")?, "publish to a subscriber")?;
    client.wait_for("/v1/stream/p/an-est", b"again", std::time::Duration::from_secs(15))?;
    ok(client.call("DELETE", subscribe, &[("Content-Type", "application/json")], body)?, "unsubscribe")?;
    ok(client.call("PUT", "/v1/stream/p/an-ttl", &[("Content-Type", "text/plain"), ("Stream-TTL", "1")], b"")?, "create with TTL")?;
    let wanted: &[(&str, &[&str])] = &[
        ("http", &["PUT", "201", "p"]),
        ("publish", &["p/an-src"]),
        ("publish_error", &["p/an-src", "409"]),
        ("publish_error", &["p/qf-q0", "503"]),
        ("fanout", &["inline", "p/an-src"]),
        ("fanout", &["queued", "p/qf-hot"]),
        ("fanout", &["job", "p/qf-hot"]),
        ("fanout", &["dead_letter", "p/qf-hot"]),
        ("subscription", &["subscribe", "p/an-src", "p/an-est"]),
        ("subscription", &["unsubscribe", "p/an-src", "p/an-est"]),
        ("estuary", &["created", "p/an-est"]),
        ("estuary", &["deleted", "p/qf-q1"]),
        ("cleanup", &["stream_expired", "p/an-ttl"]),
    ];
    let started = std::time::Instant::now();
    loop {
        let answer = send(base, "GET", "/_test/analytics", &[], b"")?;
        let points: Vec<serde_json::Value> = serde_json::from_slice(&answer.body).map_err(|e| format!("analytics: {e}"))?;
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(category, blobs)| {
                !points.iter().any(|p| {
                    p["category"] == *category
                        && p["blobs"].as_array().is_some_and(|b| b.len() >= blobs.len() && b.iter().zip(blobs.iter()).all(|(x, y)| x == y))
                })
            })
            .map(|(category, blobs)| format!("{category} {blobs:?}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            return Err(format!("no data point for: {}", missing.join("; ")));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
