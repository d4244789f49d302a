//! `cargo xtask example-check`: the library-form example
//! (`examples/custom-auth-worker`, a deployment with its own authorizer that
//! depends on `durable-streams-worker`) must keep building for wasm32.

use anyhow::Result;
use std::process::Command;

use crate::{util, worker};

pub fn check() -> Result<()> {
    worker::ensure_tools()?;
    let dir = util::workspace_root().join("examples/custom-auth-worker");
    let mut cmd = Command::new(util::cargo());
    cmd.current_dir(&dir)
        .args(["clippy", "--target", "wasm32-unknown-unknown", "--", "-D", "warnings"])
        .env("CARGO_TARGET_DIR", util::target_dir());
    util::run_step("cargo clippy --target wasm32-unknown-unknown (examples/custom-auth-worker)", &mut cmd)
}
