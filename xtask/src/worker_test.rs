//! `cargo xtask worker-test`: the host scenarios against the Workers host
//! under `wrangler dev` with tiny segment limits (4 messages / 1 KiB), so
//! data crosses many R2 rotations: read-back from every offset with cold
//! reads proven by `Server-Timing`, a 5 MiB append, SSE through the
//! hibernating WebSocket bridge (live appends and the closure), fan-out that
//! survives a reset of the source's object mid-way (test hook), then a
//! restart of `wrangler dev` on the same local state.

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
            // The test-only reset of an object (never set in wrangler.toml).
            ("TEST_HOOKS".to_owned(), "1".to_owned()),
        ],
        log: Some(state.path().join(format!("wrangler-{port}.log"))),
    };
    let port = util::free_port()?;
    let mut dev = worker::start(&opts(port))?;
    let base = format!("127.0.0.1:{port}");
    let client = Client { base: &base, auth: None };
    let step = |name: &str, run: &dyn Fn() -> Result<(), String>| -> Result<()> {
        let started = std::time::Instant::now();
        run().map_err(anyhow::Error::msg).with_context(|| format!("worker-test: {name}"))?;
        println!("worker-test: {name} passed ({:.1} s)", started.elapsed().as_secs_f64());
        Ok(())
    };
    step("rotation read-back from every offset (cold reads)", &|| host_scenarios::rotation_roundtrip(&client, "w-", true))?;
    step("5 MiB append round-trip", &|| host_scenarios::large_append_roundtrip(&client, "w-"))?;
    step("SSE live appends and closure", &|| host_scenarios::sse_live_and_closure(&client, "w-"))?;
    step("fan-out to 100 estuaries survives a reset of the source's object", &|| {
        let reset = || {
            let answer = durable_streams_tests::auth_matrix::send(&base, "POST", "/_test/reset/p/f-burst", &[], b"")?;
            if answer.status == 200 { Ok(()) } else { Err(format!("reset hook: {}", answer.status)) }
        };
        durable_streams_tests::estuary_scenarios::fanout_survives_reset(&client, "p", "f-", 100, &reset)
    })?;
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
