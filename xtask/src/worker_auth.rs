//! `cargo xtask worker-auth`: the auth matrix, then the estuary scenarios
//! (with a manage token), against the Workers host under `wrangler dev`
//! with `AUTH_MODE=jwt`. The project's first secret goes in the way an
//! operator puts it: `wrangler kv key put --local` into the `REGISTRY`
//! namespace (never through an open route).

use anyhow::{Context, Result};
use std::process::Command;

use crate::{util, worker};
use durable_streams_tests::estuary_scenarios::{self, Client};

/// Estuaries of this run expire this long after their last subscribe.
const ESTUARY_TTL_SECONDS: u64 = 20;

pub fn run() -> Result<()> {
    worker::ensure_tools()?;
    let state = util::TempDir::new("ds-worker-auth")?;
    let project = "acme";
    let secret = format!("worker-auth-secret-{:016x}", (std::process::id() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let config = serde_json::json!({ "signingSecrets": [secret] }).to_string();
    for name in [project, "_default"] {
        let mut put = Command::new(util::node_bin_dir().join("wrangler"));
        put.current_dir(util::workspace_root())
            .args(["kv", "key", "put", "--local", "--binding", "REGISTRY", "--persist-to"])
            .arg(state.path())
            .args([name, &config])
            .env("PATH", util::path_with_node_bin())
            .env("CI", "true")
            .env("WRANGLER_SEND_METRICS", "false");
        util::run_step("wrangler kv key put --local (the operator's first secret)", &mut put)?;
    }

    let port = util::free_port()?;
    let log = state.path().join("wrangler.log");
    let mut dev = worker::start(&worker::DevOpts {
        port,
        persist_to: Some(state.path().to_path_buf()),
        vars: vec![
            ("AUTH_MODE".to_owned(), "jwt".to_owned()),
            ("ESTUARY_TTL_SECONDS".to_owned(), ESTUARY_TTL_SECONDS.to_string()),
        ],
        log: Some(log.clone()),
    })?;
    let base = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let outcome = durable_streams_tests::auth_matrix::run(&base, project, &secret, "w-").and_then(|cells| {
        println!("worker auth matrix: {cells} cells passed ({:.1} s)", started.elapsed().as_secs_f64());
        let manage = durable_streams_tests::auth_matrix::token(project, "manage", None, &secret);
        let client = Client { base: &base, auth: Some(format!("Bearer {manage}")) };
        let started = std::time::Instant::now();
        estuary_scenarios::api_contract(&client, project, "wa-")?;
        estuary_scenarios::delivery(&client, project, "wd-", 5)?;
        // The legacy aliases live in `_default`: a token of that project.
        let default_manage = durable_streams_tests::auth_matrix::token("_default", "manage", None, &secret);
        let legacy = Client { base: &base, auth: Some(format!("Bearer {default_manage}")) };
        estuary_scenarios::legacy_sessions(&legacy, "wl-")?;
        println!("worker estuaries: API contract and delivery passed ({:.1} s)", started.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        estuary_scenarios::expiry(&client, project, "wt-", std::time::Duration::from_secs(ESTUARY_TTL_SECONDS))?;
        println!("worker estuaries: TTL expiry passed ({:.1} s)", started.elapsed().as_secs_f64());
        Ok(())
    });
    dev.stop();
    let result: Result<()> = match outcome {
        Ok(()) => Ok(()),
        Err(failures) => {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(30).collect();
            eprintln!("wrangler log (last lines):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            Err(anyhow::anyhow!("{failures}"))
        }
    };
    result.context("worker auth matrix and estuaries")
}
