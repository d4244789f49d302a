//! `generated/` must be exactly what `spec/` generates. When it is stale this
//! test rewrites it (like `cargo xtask codegen`) and fails, so a change to the
//! spec never lands without its generated code, docs and snapshots.

use std::path::Path;

#[test]
fn generated_files_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let spec = ds_codegen::Spec::load(&root.join("spec")).expect("spec loads");
    let files = ds_codegen::generate(&spec).expect("generation succeeds");
    let mut stale = ds_codegen::stale(root, &files);
    for orphan in ds_codegen::orphans(root, &files) {
        stale.push((orphan, "no longer generated; delete it".to_owned()));
    }
    if stale.is_empty() {
        return;
    }
    let summary: Vec<String> = stale.iter().map(|(path, why)| format!("  {}: {why}", path.display())).collect();
    if std::env::var_os("CI").is_none() {
        ds_codegen::write(root, &files).expect("writing generated files");
    }
    panic!(
        "generated files are stale; run `cargo xtask codegen` and commit the result:\n{}",
        summary.join("\n")
    );
}
