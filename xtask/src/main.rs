//! Project automation: `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! ```text
//! cargo xtask codegen [--check]
//! cargo xtask conformance [native|node] [--url URL] [--subscriptions]
//! cargo xtask bench [--targets native,node,upstream] [--quick] [--scenarios a,b]
//! cargo xtask worker-build
//! cargo xtask dev [--port N]
//! cargo xtask ci
//! ```

#[cfg(feature = "codegen")]
mod codegen;
mod example;
mod conformance;
mod servers;
mod util;
mod worker;
mod worker_auth;
mod worker_test;

#[cfg(feature = "bench")]
mod bench;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  codegen [--check]          regenerate generated/ from spec/ (--check: fail if stale)
  conformance [TARGET]       run the official conformance suite (npm
                             @durable-streams/server-conformance-tests 0.3.6)
      TARGET                 native (default): build and start our binary
                             node: the Node reference server (harness check)
                             worker: the Workers host under `wrangler dev`
      --url URL              run against an already-running server instead
      --subscriptions        also run the reserved __ds subscription tests
  bench [native]             benchmark native vs Node reference vs upstream Rust
      --targets LIST         comma list of native,node,upstream (default: all)
      --scenarios LIST       comma list of scenarios (default: all; see --help)
      --rounds N             interleaved rounds per scenario (default 3)
      --quick                shorter runs (smoke test of the bench itself)
  bench worker               the Workers host under `wrangler dev`: append p50/p99,
                             catch-up MB/s, SSE latency, bundle size
  bench fanout               estuary publish → seen-by-all latency
      --hosts LIST           native,worker,at:PORT (a server already running; default native,worker)
      --subscribers LIST     default 10,250,1000
      --publishes N          default 20
      --readers LIST         sse,long-poll (default both)
  worker-build               build the Workers host (installs worker-build,
                             wasm-bindgen-cli and the wasm target when missing)
  worker-check               `wrangler deploy --dry-run` and the bundle's gzipped size
  example-check              the library-form example builds for wasm32
  worker-test                rotation, 5 MiB append, SSE and restart against
                             `wrangler dev` with tiny segment limits
  worker-auth                the auth matrix and estuaries against `wrangler dev`
  dev [--port N] [--auth M]  run the Workers host under `wrangler dev`
                             (default 127.0.0.1:8787, local SQLite, R2 and KV
                             state; auth none unless `--auth jwt`)
  ci                         codegen --check, cargo test --workspace,
                             wasm32 check of durable-streams-api,
                             conformance native, conformance worker,
                             worker-test, worker-auth, worker-check,
                             example-check
";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        print!("{USAGE}");
        bail!("no command given");
    }
    let cmd = args.remove(0);
    match cmd.as_str() {
        "codegen" => {
            let mut p = util::Args::new(args);
            let check = p.flag("--check");
            p.finish()?;
            #[cfg(feature = "codegen")]
            return codegen::run(check);
            #[cfg(not(feature = "codegen"))]
            {
                let _ = check;
                bail!("xtask was built without the `codegen` feature")
            }
        }
        "conformance" => conformance::cli(args),
        "worker-build" => {
            util::Args::new(args).finish()?;
            worker::build()
        }
        "dev" => worker::dev(args),
        "worker-auth" => worker_auth::run(),
        "worker-test" => worker_test::run(),
        "example-check" => {
            util::Args::new(args).finish()?;
            example::check()
        }
        "worker-check" => {
            util::Args::new(args).finish()?;
            worker::deploy_check()
        }
        "bench" => bench_cli(args),
        "ci" => {
            util::Args::new(args).finish()?;
            ci()
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            print!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

#[cfg(feature = "bench")]
fn bench_cli(args: Vec<String>) -> Result<()> {
    bench::cli(args)
}

/// The load generator needs an optimised build with extra dependencies; the
/// everyday xtask build stays lean, so re-run ourselves as a release build with
/// the `bench` feature.
#[cfg(not(feature = "bench"))]
fn bench_cli(args: Vec<String>) -> Result<()> {
    let root = util::workspace_root();
    let mut cmd = std::process::Command::new(util::cargo());
    cmd.current_dir(&root)
        .args(["run", "--quiet", "--release", "--package", "xtask", "--no-default-features", "--features", "bench"])
        .args(["--", "bench"])
        .args(&args);
    util::run_step("build + run the bench (xtask --release --features bench)", &mut cmd)
}

fn ci() -> Result<()> {
    let root = util::workspace_root();
    let cargo = util::cargo();
    let xtask = |args: &[&str]| {
        let mut c = std::process::Command::new(&cargo);
        c.current_dir(&root).args(["run", "--quiet", "--package", "xtask", "--"]).args(args);
        c
    };
    let mut steps: Vec<(&str, std::process::Command)> = Vec::new();
    steps.push(("cargo xtask codegen --check", xtask(&["codegen", "--check"])));
    let mut test = std::process::Command::new(&cargo);
    test.current_dir(&root).args(["test", "--workspace"]);
    steps.push(("cargo test --workspace", test));
    let mut wasm = std::process::Command::new(&cargo);
    wasm.current_dir(&root)
        .args(["check", "--target", "wasm32-unknown-unknown", "-p", "durable-streams-api"]);
    steps.push(("cargo check --target wasm32-unknown-unknown -p durable-streams-api", wasm));
    steps.push(("cargo xtask conformance native", xtask(&["conformance", "native"])));
    steps.push(("cargo xtask conformance worker", xtask(&["conformance", "worker"])));
    steps.push(("cargo xtask worker-test", xtask(&["worker-test"])));
    steps.push(("cargo xtask worker-auth", xtask(&["worker-auth"])));
    steps.push(("cargo xtask worker-check", xtask(&["worker-check"])));
    steps.push(("cargo xtask example-check", xtask(&["example-check"])));

    let n = steps.len();
    for (i, (name, mut cmd)) in steps.into_iter().enumerate() {
        println!("\n==> ci step {}/{n}: {name}", i + 1);
        let t = std::time::Instant::now();
        util::run_step(name, &mut cmd)?;
        println!("==> ci step {}/{n} ok ({:.1} s): {name}", i + 1, t.elapsed().as_secs_f64());
    }
    println!("\n==> ci: all {n} steps passed");
    Ok(())
}
