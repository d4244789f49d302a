//! The Workers host toolchain: install what is missing (wasm target,
//! worker-build, wasm-bindgen CLI, npm packages), build the worker, and run
//! it under `wrangler dev`.
//!
//! Tools are installed into `~/.cache/durable-streams/tools` (outside the
//! clone) at pinned versions; nothing is downloaded from GitHub: worker-build
//! is pointed at the local wasm-bindgen, wasm-opt (npm `binaryen`) and esbuild.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::util;

/// Pinned: must match `worker` in impl/worker/Cargo.toml.
pub const WORKER_BUILD_VERSION: &str = "0.8.7";
/// Pinned: must match `wasm-bindgen = "=…"` in impl/worker/Cargo.toml.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";

fn tools_root() -> PathBuf {
    std::env::var_os("DS_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        home.join(".cache").join("durable-streams").join("tools")
    })
}

fn tool(name: &str) -> PathBuf {
    tools_root().join("bin").join(name)
}

fn installed_version(program: &PathBuf) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn cargo_install(krate: &str, version: &str, locked: bool) -> Result<()> {
    let mut cmd = Command::new(util::cargo());
    cmd.args(["install", "--force", krate, "--version", version, "--root"])
        .arg(tools_root())
        .current_dir(std::env::temp_dir())
        .env_remove("CARGO_TARGET_DIR");
    if locked {
        cmd.arg("--locked");
    }
    util::run_step(&format!("cargo install {krate} {version}"), &mut cmd)
}

/// Installs every tool the worker build needs, when missing.
pub fn ensure_tools() -> Result<()> {
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", "wasm32-unknown-unknown"]).current_dir(util::workspace_root());
    util::run_step("rustup target add wasm32-unknown-unknown", &mut rustup)?;
    if !installed_version(&tool("worker-build")).is_some_and(|v| v.contains(WORKER_BUILD_VERSION)) {
        cargo_install("worker-build", WORKER_BUILD_VERSION, true)?;
    }
    if !installed_version(&tool("wasm-bindgen")).is_some_and(|v| v.contains(WASM_BINDGEN_VERSION)) {
        // `--locked` fails for this version (a locked dependency left the registry).
        cargo_install("wasm-bindgen-cli", WASM_BINDGEN_VERSION, false)?;
    }
    util::ensure_npm()?;
    Ok(())
}

/// `cargo xtask worker-build`: builds impl/worker into impl/worker/build/.
pub fn build() -> Result<()> {
    ensure_tools()?;
    let root = util::workspace_root();
    let node_bin = util::node_bin_dir();
    let mut cmd = Command::new(tool("worker-build"));
    cmd.arg("--release")
        .current_dir(root.join("impl/worker"))
        .env("WASM_BINDGEN_BIN", tool("wasm-bindgen"))
        .env("WASM_OPT_BIN", node_bin.join("wasm-opt"))
        .env("ESBUILD_BIN", node_bin.join("esbuild"))
        .env("PATH", util::path_with_node_bin())
        // The worker is its own workspace; keep its wasm artifacts apart.
        .env("CARGO_TARGET_DIR", util::target_dir().join("worker"));
    util::run_step("worker-build --release", &mut cmd)?;
    let wasm = root.join("impl/worker/build/index_bg.wasm");
    let size = std::fs::metadata(&wasm).with_context(|| format!("{} missing", wasm.display()))?.len();
    eprintln!("worker-build: {} ({size} bytes)", wasm.display());
    Ok(())
}

/// A running `wrangler dev`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct WranglerDev {
    pub port: u16,
    child: Option<Child>,
}

impl WranglerDev {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as i32;
        // SAFETY: plain libc signal calls on a child we started.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Options of a `wrangler dev` run.
pub struct DevOpts {
    pub port: u16,
    /// Where local SQLite/R2 state lives (`--persist-to`).
    pub persist_to: Option<PathBuf>,
    /// `[vars]` overrides.
    pub vars: Vec<(String, String)>,
    /// Where wrangler's output goes; `None` inherits ours.
    pub log: Option<PathBuf>,
}

/// Starts `wrangler dev` and waits until `/health` answers.
pub fn start(opts: &DevOpts) -> Result<WranglerDev> {
    // wrangler runs `[build] command` (cargo xtask worker-build) itself.
    ensure_tools()?;
    let root = util::workspace_root();
    let mut cmd = Command::new(util::node_bin_dir().join("wrangler"));
    cmd.current_dir(&root)
        .args(["dev", "--ip", "127.0.0.1", "--port", &opts.port.to_string(), "--show-interactive-dev-session=false"])
        .env("PATH", util::path_with_node_bin())
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false")
        // wrangler's local observability (on by default) streams a trace of
        // every invocation — each object request, WebSocket message and
        // queue batch — to a collector in the same single-threaded runtime:
        // measured at ~18 % of its CPU during an estuary fan-out. Nothing
        // here reads it (console output still reaches the log).
        .env("X_LOCAL_OBSERVABILITY", "false")
        .stdin(Stdio::null());
    if let Some(dir) = &opts.persist_to {
        cmd.arg("--persist-to").arg(dir);
    }
    for (key, value) in &opts.vars {
        cmd.arg("--var").arg(format!("{key}:{value}"));
    }
    if let Some(log) = &opts.log {
        let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdout(file.try_clone()?).stderr(file);
    }
    eprintln!("$ {}", util::show(&cmd));
    let child = cmd.spawn().context("starting wrangler dev")?;
    let mut dev = WranglerDev { port: opts.port, child: Some(child) };
    let ready = util::wait_until(Duration::from_secs(180), || {
        Ok(util::http_get_status(dev.port, "/health", Duration::from_secs(2))? == 200)
    })?;
    if !ready {
        dev.stop();
        bail!("wrangler dev did not answer /health within 180 s");
    }
    Ok(dev)
}

/// `cargo xtask dev [--port N] [--auth none|jwt]`: the README's run command.
/// Local development runs without auth unless `--auth jwt` asks for project
/// tokens (secrets from the local `REGISTRY` KV namespace).
pub fn dev(args: Vec<String>) -> Result<()> {
    let mut port = 8787u16;
    let mut auth = "none".to_owned();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--port" => port = iter.next().context("--port needs a value")?.parse()?,
            "--auth" => auth = iter.next().context("--auth needs none or jwt")?,
            other => bail!("unknown argument {other}"),
        }
    }
    if auth != "none" && auth != "jwt" {
        bail!("--auth must be none or jwt");
    }
    let vars = vec![("AUTH_MODE".to_owned(), auth.clone())];
    let mut dev = start(&DevOpts { port, persist_to: None, vars, log: None })?;
    eprintln!("durable streams (Workers host) serving on {} (auth: {auth})", dev.base_url());
    if let Some(child) = dev.child.as_mut() {
        child.wait()?;
    }
    Ok(())
}

/// `cargo xtask worker-check`: `wrangler deploy --dry-run` from the same
/// `wrangler.toml` users deploy with, and the bundle's gzipped size.
pub fn deploy_check() -> Result<()> {
    ensure_tools()?;
    let root = util::workspace_root();
    let out = util::TempDir::new("ds-wrangler-dry-run")?;
    let mut cmd = Command::new(util::node_bin_dir().join("wrangler"));
    cmd.current_dir(&root)
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(out.path())
        .env("PATH", util::path_with_node_bin())
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false");
    util::run_step("wrangler deploy --dry-run", &mut cmd)?;
    let mut total = 0u64;
    let mut gzipped = 0u64;
    for entry in std::fs::read_dir(out.path())? {
        let path = entry?.path();
        let is_bundle = path.extension().is_some_and(|e| e == "wasm" || e == "js");
        if !is_bundle {
            continue;
        }
        total += std::fs::metadata(&path)?.len();
        let output = Command::new("gzip").args(["-9", "-c"]).arg(&path).output().context("running gzip")?;
        gzipped += output.stdout.len() as u64;
    }
    println!("worker bundle: {total} bytes, {gzipped} bytes gzipped (-9)");
    if gzipped > 1 << 20 {
        bail!("the worker bundle is {gzipped} bytes gzipped, above the 1 MiB budget");
    }
    Ok(())
}
