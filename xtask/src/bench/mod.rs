//! `cargo xtask bench [native] [--targets native,node,upstream] [--scenarios ...]
//!  [--rounds N] [--duration-secs S] [--client-threads N] [--quick]`
//!
//! A benchmark, never a test: starts the selected servers side by side (each
//! on its own port with a fresh temp data dir), then runs every scenario on
//! every target in interleaved rounds (A B C A B C ...) so ratios survive a
//! noisy machine, and prints one table with the median of the rounds plus the
//! ratios ours/node and ours/upstream. The load generator is in-process
//! (tokio + hyper, keep-alive connections, HDR histograms in µs).

mod client;
mod fanout;
mod scenarios;

use crate::servers::{self, ServerKind, StartOpts};
use crate::util::{self, Args};
use anyhow::{bail, Result};
use scenarios::{Ctx, Metric};
use std::io::Write;
use std::time::{Duration, Instant};

const SCENARIOS: &[(&str, &str)] = &[
    ("seq", "sequential appends, 1 connection, 1 stream"),
    ("c64s100", "64 connections over 100 streams"),
    ("c16s1", "16 connections on one stream"),
    ("catchup", "catch-up read of a 64 MiB stream"),
    ("sse", "SSE delivery to 200 subscribers at 50 appends/s"),
    ("longpoll", "long-poll wake-up latency"),
];

pub fn cli(args: Vec<String>) -> Result<()> {
    if args.first().map(String::as_str) == Some("fanout") {
        return fanout::cli(Args::new(args[1..].to_vec()));
    }
    let mut a = Args::new(args);
    if a.flag("--help") || a.flag("-h") {
        println!("scenarios:");
        for (k, d) in SCENARIOS {
            println!("  {k:10} {d}");
        }
        return Ok(());
    }
    let targets = a.opt("--targets")?;
    let scen = a.opt("--scenarios")?;
    let quick = a.flag("--quick");
    let rounds: usize = a.opt("--rounds")?.map(|s| s.parse()).transpose()?.unwrap_or(if quick { 1 } else { 3 });
    let secs: f64 = a.opt("--duration-secs")?.map(|s| s.parse()).transpose()?.unwrap_or(if quick { 1.5 } else { 5.0 });
    let client_threads: usize = a.opt("--client-threads")?.map(|s| s.parse()).transpose()?.unwrap_or(2);
    // `bench native` compares our binary with its peers; `bench worker`
    // measures the Workers host under `wrangler dev`.
    let ours = a.positional().unwrap_or_else(|| "native".into());
    a.finish()?;
    if ours == "worker" {
        return worker_bench(quick, secs, client_threads);
    }
    if ours != "native" {
        bail!("unknown bench target `{ours}` (native, worker, fanout)");
    }

    let kinds: Vec<ServerKind> = match targets {
        Some(t) => t.split(',').filter(|s| !s.is_empty()).map(ServerKind::parse).collect::<Result<_>>()?,
        None => vec![ServerKind::Native, ServerKind::Node, ServerKind::Upstream],
    };
    let scenarios: Vec<&str> = match &scen {
        Some(s) => {
            let v: Vec<&str> = s.split(',').filter(|s| !s.is_empty()).collect();
            for x in &v {
                if !SCENARIOS.iter().any(|(k, _)| k == x) {
                    bail!("unknown scenario `{x}`; see `cargo xtask bench --help`");
                }
            }
            v
        }
        None => SCENARIOS.iter().map(|(k, _)| *k).collect(),
    };

    let prepared = kinds.iter().map(|k| servers::prepare(*k)).collect::<Result<Vec<_>>>()?;
    let opts = StartOpts { file_backed: true, log_to_file: true, ..Default::default() };
    let mut running = Vec::new();
    for p in &prepared {
        running.push(servers::start(p, &opts)?);
    }

    let fsync_before = fsync_p50_us()?;
    eprintln!("data-disk fsync p50 before: {fsync_before:.0} µs");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(client_threads).enable_all().build()?;
    let duration = Duration::from_secs_f64(secs);
    let pid = std::process::id();
    // results[scenario][target] = one Vec<Metric> per round
    let mut results: Vec<Vec<Vec<Vec<Metric>>>> = vec![vec![Vec::new(); kinds.len()]; scenarios.len()];
    let started = Instant::now();
    for (si, scn) in scenarios.iter().enumerate() {
        for round in 0..rounds {
            for (ti, server) in running.iter().enumerate() {
                let ctx = Ctx {
                    addr: ([127, 0, 0, 1], server.port).into(),
                    prefix: format!("{}bench-{pid}-{scn}-r{round}", server.stream_prefix()),
                    duration,
                    quick,
                };
                eprint!("[{:>5.0}s] {scn} round {}/{rounds} {} ... ", started.elapsed().as_secs_f64(), round + 1, server.kind.name());
                let _ = std::io::stderr().flush();
                let res = rt.block_on(async {
                    match *scn {
                        "seq" => scenarios::appends(&ctx, 1, 1).await,
                        "c64s100" => scenarios::appends(&ctx, 64, 100).await,
                        "c16s1" => scenarios::appends(&ctx, 16, 1).await,
                        "catchup" => scenarios::catchup(&ctx).await,
                        "sse" => scenarios::sse(&ctx, 200, 50).await,
                        "longpoll" => scenarios::long_poll(&ctx).await,
                        _ => unreachable!(),
                    }
                });
                match res {
                    Ok(ms) => {
                        eprintln!("{}", ms.iter().map(|m| format!("{} {:.0}", m.name, m.value)).collect::<Vec<_>>().join(", "));
                        results[si][ti].push(ms);
                    }
                    Err(e) => eprintln!("FAILED: {e:#}"),
                }
            }
        }
    }
    drop(rt);
    let fsync_after = fsync_p50_us()?;
    for s in &mut running {
        s.stop();
    }

    print_table(&scenarios, &kinds, &results, rounds, secs, fsync_before, fsync_after);
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

fn print_table(
    scenarios: &[&str],
    kinds: &[ServerKind],
    results: &[Vec<Vec<Vec<Metric>>>],
    rounds: usize,
    secs: f64,
    fsync_before: f64,
    fsync_after: f64,
) {
    let idx = |k: ServerKind| kinds.iter().position(|x| *x == k);
    let (native, node, upstream) = (idx(ServerKind::Native), idx(ServerKind::Node), idx(ServerKind::Upstream));
    println!();
    println!(
        "bench: median of {rounds} interleaved round(s), {secs} s per append run, 100-byte appends; \
         node = @durable-streams/server file-backed, upstream = durable-streams {} --durability wal",
        servers::UPSTREAM_VERSION
    );
    println!("data-disk fsync p50: {fsync_before:.0} µs before, {fsync_after:.0} µs after");
    println!("(+) higher is better, (-) lower is better; ratios are ours/peer");
    println!();
    let mut header = format!("{:<10} {:<20}", "scenario", "metric");
    for k in kinds {
        header.push_str(&format!(" {:>10}", k.name()));
    }
    header.push_str(&format!(" {:>10} {:>10}", "ours/node", "ours/upstr"));
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for (si, scn) in scenarios.iter().enumerate() {
        // Metric names in first-seen order across targets.
        let mut names: Vec<(&'static str, bool)> = Vec::new();
        for per_target in &results[si] {
            for run in per_target {
                for mt in run {
                    if !names.iter().any(|(n, _)| *n == mt.name) {
                        names.push((mt.name, mt.higher_is_better));
                    }
                }
            }
        }
        for (ni, (name, higher)) in names.iter().enumerate() {
            let vals: Vec<Option<f64>> = (0..kinds.len())
                .map(|ti| {
                    median(
                        results[si][ti]
                            .iter()
                            .filter_map(|run| run.iter().find(|mt| mt.name == *name).map(|mt| mt.value))
                            .collect(),
                    )
                })
                .collect();
            let ratio = |peer: Option<usize>| match (native.and_then(|i| vals[i]), peer.and_then(|i| vals[i])) {
                (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            let label = format!("{name} {}", if *higher { "(+)" } else { "(-)" });
            let mut line = format!("{:<10} {:<20}", if ni == 0 { *scn } else { "" }, label);
            for v in &vals {
                line.push_str(&format!(" {:>10}", fmt(*v)));
            }
            line.push_str(&format!(" {:>10} {:>10}", ratio(node), ratio(upstream)));
            println!("{line}");
        }
    }
}

/// p50 of `write 100 bytes + fsync` on the data disk (the temp dir, where the
/// servers' data dirs live), 200 iterations.
fn fsync_p50_us() -> Result<f64> {
    let dir = util::TempDir::new("ds-fsync-probe")?;
    let mut f = std::fs::File::create(dir.path().join("probe"))?;
    let mut samples = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        f.write_all(&[b'f'; 100])?;
        f.sync_all()?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(median(samples).unwrap_or(0.0))
}

/// `cargo xtask bench worker`: the Workers host under `wrangler dev` (one
/// local process: every object on one thread) — append latency, catch-up
/// throughput, SSE delivery latency through the WebSocket bridge, and the
/// deployable bundle's size.
fn worker_bench(quick: bool, secs: f64, client_threads: usize) -> Result<()> {
    crate::worker::deploy_check()?;
    let port = util::free_port()?;
    let state = util::TempDir::new("ds-bench-worker")?;
    let mut dev = crate::worker::start(&crate::worker::DevOpts {
        port,
        persist_to: Some(state.path().to_path_buf()),
        vars: vec![("AUTH_MODE".into(), "none".into())],
        log: Some(state.path().join("wrangler.log")),
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(client_threads).enable_all().build()?;
    let runs: [(&str, &str); 4] = [
        ("seq", "sequential appends, 1 connection"),
        ("c8s8", "8 connections over 8 streams"),
        ("catchup", "catch-up read (16 MiB)"),
        ("sse", "SSE delivery to 20 subscribers at 10 appends/s"),
    ];
    let mut table = Vec::new();
    for (name, what) in runs {
        let ctx = Ctx {
            addr: ([127, 0, 0, 1], port).into(),
            prefix: format!("/v1/stream/bench-worker-{}-{name}", std::process::id()),
            duration: Duration::from_secs_f64(secs),
            quick: quick || name == "catchup",
        };
        eprint!("worker {name} ... ");
        let res = rt.block_on(async {
            match name {
                "seq" => scenarios::appends(&ctx, 1, 1).await,
                "c8s8" => scenarios::appends(&ctx, 8, 8).await,
                "catchup" => scenarios::catchup(&ctx).await,
                _ => scenarios::sse(&ctx, 20, 10).await,
            }
        });
        match res {
            Ok(ms) => {
                let line = ms.iter().map(|m| format!("{} {}", m.name, fmt(Some(m.value)))).collect::<Vec<_>>().join(", ");
                eprintln!("{line}");
                table.push((name, what, line));
            }
            Err(e) => eprintln!("FAILED: {e:#}"),
        }
    }
    drop(rt);
    dev.stop();
    println!("\n| scenario | what | result |\n|---|---|---|");
    for (name, what, line) in table {
        println!("| {name} | {what} | {line} |");
    }
    Ok(())
}
