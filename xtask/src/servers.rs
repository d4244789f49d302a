//! Servers under test: how to build, start, probe and stop each one.
//!
//! Used by `conformance` and `bench`. Adding a target (e.g. the Workers build
//! under `wrangler dev`) means one more `ServerKind` arm in `prepare`/`spawn`.

use crate::util::{self, TempDir};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Long-poll timeout given to every server we start (the conformance suite
/// needs it well under vitest's 5 s per-test timeout).
pub const LONG_POLL_TIMEOUT_MS: u64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Our binary `durable-streams` (crate durable-streams-server), release build.
    Native,
    /// Node reference server, npm `@durable-streams/server`.
    Node,
    /// crates.io `durable-streams` 0.1.5 (third-party; bench peer only).
    Upstream,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Native => "native",
            ServerKind::Node => "node",
            ServerKind::Upstream => "upstream",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "native" => ServerKind::Native,
            "node" => ServerKind::Node,
            "upstream" => ServerKind::Upstream,
            other => bail!("unknown target `{other}` (expected native, node or upstream)"),
        })
    }
}

/// Options for starting a server.
#[derive(Clone, Debug, Default)]
pub struct StartOpts {
    /// Node reference: file-backed store instead of in-memory.
    pub file_backed: bool,
    /// Node reference: enable webhook subscriptions.
    pub webhooks: bool,
    /// Quiet: send the server's stdout/stderr to a log file instead of ours.
    pub log_to_file: bool,
}

/// What `prepare` produced: the program to start.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub kind: ServerKind,
    program: PathBuf,
}

/// Builds or installs what a target needs; call once, then `start` many times.
pub fn prepare(kind: ServerKind) -> Result<Prepared> {
    let root = util::workspace_root();
    let program = match kind {
        ServerKind::Native => {
            let mut cmd = Command::new(util::cargo());
            cmd.current_dir(&root).args(["build", "--release", "-p", "durable-streams-server"]);
            util::run_step("cargo build --release -p durable-streams-server", &mut cmd)?;
            let bin = util::target_dir().join("release").join("durable-streams");
            if !bin.exists() {
                bail!("built, but {} does not exist", bin.display());
            }
            bin
        }
        ServerKind::Node => {
            util::ensure_npm()?;
            util::node_bin_dir().join("node")
        }
        ServerKind::Upstream => ensure_upstream()?,
    };
    Ok(Prepared { kind, program })
}

pub const UPSTREAM_VERSION: &str = "0.1.5";

/// `cargo install durable-streams@0.1.5` into a cache dir next to our target dir.
fn ensure_upstream() -> Result<PathBuf> {
    let root = util::target_dir().join("bench-tools");
    // The crate's binary is `durable-streams-server`.
    let bin = root.join("bin").join("durable-streams-server");
    let stamp = root.join(format!("durable-streams-{UPSTREAM_VERSION}.installed"));
    if bin.exists() && stamp.exists() {
        return Ok(bin);
    }
    eprintln!("installing upstream durable-streams {UPSTREAM_VERSION} (crates.io) into {}", root.display());
    let install = |locked: bool| {
        let mut cmd = Command::new(util::cargo());
        cmd.args(["install", "--force", "--version", UPSTREAM_VERSION, "durable-streams", "--root"])
            .arg(&root)
            // Build it with its own pinned deps, outside our workspace.
            .current_dir(std::env::temp_dir())
            .env_remove("CARGO_TARGET_DIR");
        if locked {
            cmd.arg("--locked");
        }
        util::run_step("cargo install durable-streams", &mut cmd)
    };
    if install(true).is_err() {
        eprintln!("retrying without --locked");
        install(false)?;
    }
    std::fs::write(&stamp, b"")?;
    Ok(bin)
}

/// A started server. Stopped (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    child: Option<Child>,
    /// Removed when the server is dropped (after it stopped).
    #[allow(dead_code)]
    pub data_dir: TempDir,
    pub log: Option<PathBuf>,
}

impl Server {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    #[allow(dead_code)]
    /// Stream URL prefix: every server here serves streams under `/v1/stream/`.
    pub fn stream_prefix(&self) -> &'static str {
        "/v1/stream/"
    }

    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM to the server's process group, up to 5 s grace, then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id() as i32;
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // Each server runs in its own process group (see `start`).
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        eprintln!("{}: did not exit 5 s after SIGTERM; killing", self.kind.name());
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a prepared server on a free port with a fresh temp data dir and
/// waits until it answers HTTP.
pub fn start(p: &Prepared, opts: &StartOpts) -> Result<Server> {
    use std::os::unix::process::CommandExt;

    let data_dir = TempDir::new(&format!("ds-{}", p.kind.name()))?;
    let port = util::free_port()?;
    let lp = LONG_POLL_TIMEOUT_MS.to_string();
    let mut cmd = Command::new(&p.program);
    cmd.current_dir(util::workspace_root()).process_group(0).stdin(Stdio::null());
    // Readiness probe: path, and whether only 200 counts (else any HTTP answer).
    let (probe, need_200) = match p.kind {
        ServerKind::Native => {
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(data_dir.path())
                .arg("--long-poll-timeout-ms")
                .arg(&lp)
                // The conformance suite and the bench send no credentials.
                .args(["--auth", "none"]);
            ("/health", true)
        }
        ServerKind::Node => {
            cmd.arg(util::workspace_root().join("tests/conformance/reference-server.mjs"))
                .args(["--port", &port.to_string(), "--long-poll-timeout-ms", &lp]);
            if opts.file_backed {
                cmd.arg("--data-dir").arg(data_dir.path());
            }
            if opts.webhooks {
                cmd.arg("--webhooks");
            }
            cmd.env("PATH", util::path_with_node_bin());
            ("/", false)
        }
        ServerKind::Upstream => {
            // Any path is a stream there; we use /v1/stream/ like the others.
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--durability", "wal"])
                .arg("--data-dir")
                .arg(data_dir.path())
                .args(["--long-poll-timeout-ms", &lp]);
            ("/health", true)
        }
    };
    let log = if opts.log_to_file {
        let path = std::env::temp_dir().join(format!("ds-{}-{port}.log", p.kind.name()));
        let f = std::fs::File::create(&path)?;
        cmd.stdout(f.try_clone()?).stderr(f);
        Some(path)
    } else {
        None
    };
    eprintln!("$ {}", util::show(&cmd));
    let child = cmd.spawn().with_context(|| format!("cannot start {}", p.program.display()))?;
    let mut server = Server { kind: p.kind, port, child: Some(child), data_dir, log };

    let started = Instant::now();
    let timeout = Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            server.child = None;
            bail!("{} exited during start-up ({status}){}", p.kind.name(), log_hint(&server));
        }
        match util::http_get_status(port, probe, Duration::from_secs(2)) {
            Ok(200) => break,
            Ok(_) if !need_200 => break,
            _ => {}
        }
        if started.elapsed() > timeout {
            bail!("{} not ready on port {port} after {timeout:?} (GET {probe}){}", p.kind.name(), log_hint(&server));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{} ready at {} ({} ms)", p.kind.name(), server.base_url(), started.elapsed().as_millis());
    Ok(server)
}

fn log_hint(s: &Server) -> String {
    match &s.log {
        Some(p) => format!("; log: {}", p.display()),
        None => String::new(),
    }
}
