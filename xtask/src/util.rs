//! Small helpers: argument parsing, commands, npm, temp dirs, ports, HTTP probes.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// A tiny hand-rolled argument parser: flags, `--key value` / `--key=value`
/// options and positionals; `finish` rejects anything left over.
pub struct Args {
    args: Vec<String>,
}

impl Args {
    pub fn new(args: Vec<String>) -> Self {
        Args { args }
    }

    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.args.len();
        self.args.retain(|a| a != name);
        self.args.len() != before
    }

    pub fn opt(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.args.iter().position(|a| a.starts_with(&prefix)) {
            let v = self.args.remove(i)[prefix.len()..].to_string();
            return Ok(Some(v));
        }
        if let Some(i) = self.args.iter().position(|a| a == name) {
            if i + 1 >= self.args.len() {
                bail!("option {name} needs a value");
            }
            self.args.remove(i);
            return Ok(Some(self.args.remove(i)));
        }
        Ok(None)
    }

    /// The next positional argument (anything not starting with `-`).
    pub fn positional(&mut self) -> Option<String> {
        let i = self.args.iter().position(|a| !a.starts_with('-'))?;
        Some(self.args.remove(i))
    }

    pub fn finish(self) -> Result<()> {
        if !self.args.is_empty() {
            bail!("unexpected arguments: {}", self.args.join(" "));
        }
        Ok(())
    }
}

pub fn workspace_root() -> PathBuf {
    // xtask/ lives directly under the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent dir")
        .to_path_buf()
}

pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Cargo's target directory for this workspace (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Runs a command to completion, echoing it; fails on a non-zero exit.
pub fn run_step(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd.status().with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// `node_modules/.bin` of the workspace.
pub fn node_bin_dir() -> PathBuf {
    workspace_root().join("node_modules").join(".bin")
}

/// PATH with `node_modules/.bin` first, so `#!/usr/bin/env node` scripts get
/// the Node 22 from the npm `node` package rather than the system Node.
pub fn path_with_node_bin() -> OsString {
    let mut paths = vec![node_bin_dir()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH joins")
}

/// Runs `npm ci` when node_modules is missing or older than package-lock.json.
pub fn ensure_npm() -> Result<()> {
    let root = workspace_root();
    let lock = root.join("package-lock.json");
    // npm writes this file on every install; its mtime marks the last install.
    let marker = root.join("node_modules").join(".package-lock.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock_time = mtime(&lock).context("package-lock.json missing")?;
    let fresh = match mtime(&marker) {
        Some(t) => t >= lock_time && node_bin_dir().join("node").exists() && node_bin_dir().join("vitest").exists(),
        None => false,
    };
    if fresh {
        return Ok(());
    }
    let mut cmd = Command::new("npm");
    cmd.current_dir(&root).args(["ci", "--no-audit", "--no-fund"]);
    run_step("npm ci", &mut cmd)?;
    Ok(())
}

/// A directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A currently free TCP port on 127.0.0.1 (bind to :0, read it, release it).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Minimal blocking `GET path` against 127.0.0.1:port; returns the status code.
pub fn http_get_status(port: u16, path: &str, timeout: Duration) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        let r = s.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad HTTP status line {line:?}"))?;
    Ok(code)
}

#[allow(dead_code)]
/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(true) = check() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
