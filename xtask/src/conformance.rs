//! `cargo xtask conformance [native|node|worker] [--url URL] [--subscriptions]`
//!
//! Runs the official suite (tests/conformance/conformance.test.mjs, vitest)
//! against a server we start, or against `--url`. Prints one line
//! `conformance <target>: N passed, N failed, N skipped` and fails on any
//! failed test.

use crate::servers::{self, ServerKind, StartOpts};
use crate::util::{self, Args, TempDir};
use anyhow::{bail, Context, Result};
use std::process::Command;

pub fn cli(args: Vec<String>) -> Result<()> {
    let mut a = Args::new(args);
    let url = a.opt("--url")?;
    let subscriptions = a.flag("--subscriptions");
    // With --url the (optional) positional only labels the summary line.
    let default = if url.is_some() { "url" } else { "native" };
    let target = a.positional().unwrap_or_else(|| default.to_string());
    a.finish()?;

    util::ensure_npm()?;
    let summary = match url {
        Some(url) => run_suite(&target, &url, subscriptions)?,
        None if target == "worker" => {
            // The Workers host under `wrangler dev`, fresh local state, 500 ms long-poll.
            let state = TempDir::new("ds-wrangler-state")?;
            let log = state.path().join("wrangler.log");
            let opts = crate::worker::DevOpts {
                port: util::free_port()?,
                persist_to: Some(state.path().join("state")),
                vars: vec![
                    ("LONG_POLL_TIMEOUT_MS".to_owned(), servers::LONG_POLL_TIMEOUT_MS.to_string()),
                    // The suite sends no credentials.
                    ("AUTH_MODE".to_owned(), "none".to_owned()),
                    // `wrangler dev` forwards each Analytics Engine data point to a
                    // local service over HTTP (two per append), which pushed the
                    // suite's 5 s property-based tests past their timeout on two
                    // cores. Data points are tested by `cargo xtask worker-test`.
                    ("ANALYTICS".to_owned(), "0".to_owned()),
                ],
                log: Some(log.clone()),
            };
            let mut dev = crate::worker::start(&opts)
                .with_context(|| format!("wrangler dev failed; its log: {}", log.display()))?;
            let result = run_suite(&target, &dev.base_url(), subscriptions);
            dev.stop();
            result?
        }
        None => {
            let kind = ServerKind::parse(&target)?;
            let prepared = servers::prepare(kind)?;
            let opts = StartOpts { webhooks: subscriptions, ..Default::default() };
            let mut server = servers::start(&prepared, &opts)?;
            let result = run_suite(&target, &server.base_url(), subscriptions);
            server.stop();
            result?
        }
    };
    println!("conformance {target}: {} passed, {} failed, {} skipped", summary.passed, summary.failed, summary.skipped);
    if summary.failed > 0 || !summary.success {
        bail!("conformance {target}: {} test(s) failed", summary.failed);
    }
    Ok(())
}

pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub success: bool,
}

/// Runs vitest on the wrapper with the JSON reporter and reads its counts.
pub fn run_suite(target: &str, base_url: &str, subscriptions: bool) -> Result<Summary> {
    let root = util::workspace_root();
    let out = TempDir::new("ds-conformance")?;
    let json = out.path().join("report.json");
    let mut cmd = Command::new(util::node_bin_dir().join("vitest"));
    cmd.current_dir(&root)
        .env("PATH", util::path_with_node_bin())
        .env("CONFORMANCE_TEST_URL", base_url)
        .env("CONFORMANCE_SUBSCRIPTIONS", if subscriptions { "1" } else { "0" })
        .args(["run", "--config", "tests/conformance/vitest.config.mjs", "--reporter=default", "--reporter=json"])
        .arg(format!("--outputFile.json={}", json.display()));
    eprintln!("$ CONFORMANCE_TEST_URL={base_url} {}", util::show(&cmd));
    let status = cmd.status().context("cannot start vitest (node_modules/.bin/vitest)")?;
    let text = std::fs::read_to_string(&json)
        .with_context(|| format!("vitest wrote no JSON report ({status}); target {target}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).context("parse vitest JSON report")?;
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let summary = Summary {
        passed: n("numPassedTests"),
        failed: n("numFailedTests"),
        skipped: n("numPendingTests") + n("numTodoTests"),
        success: status.success() && v.get("success").and_then(|s| s.as_bool()).unwrap_or(false),
    };
    if summary.passed + summary.failed == 0 {
        bail!("vitest ran no test ({status})");
    }
    Ok(summary)
}
