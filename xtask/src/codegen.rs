//! `cargo xtask codegen [--check]`: regenerate `generated/` from `spec/`, or
//! (with `--check`) fail with a summary of every stale file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

pub fn run(check: bool) -> Result<()> {
    let root = root();
    let spec = ds_codegen::Spec::load(&root.join("spec"))?;
    let files = ds_codegen::generate(&spec)?;
    let orphans = ds_codegen::orphans(&root, &files);
    if check {
        let stale = ds_codegen::stale(&root, &files);
        if stale.is_empty() && orphans.is_empty() {
            println!("codegen: generated/ is up to date ({} files)", files.len());
            return Ok(());
        }
        for (path, why) in &stale {
            eprintln!("  stale: {}: {why}", path.display());
        }
        for path in &orphans {
            eprintln!("  orphan: {} is no longer generated", path.display());
        }
        bail!(
            "{} generated file(s) out of date; run `cargo xtask codegen` and commit the result",
            stale.len() + orphans.len()
        );
    }
    let changed = ds_codegen::write(&root, &files)?;
    for path in &orphans {
        std::fs::remove_file(root.join(path))?;
        println!("codegen: removed {}", path.display());
    }
    for path in &changed {
        println!("codegen: wrote {}", path.display());
    }
    println!("codegen: {} files, {} changed", files.len(), changed.len() + orphans.len());
    Ok(())
}
