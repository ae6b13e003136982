//! The zoo's golden numbers (`tests/zoo/reference/`) are what the live models report:
//! `scripts/zoo_reference.py` is run on timm 1.0.31, Keras 3.15.1 (torch backend) and
//! torchvision 0.26 from resnetc's venv (`scripts/setup.sh` installs them) and must write
//! exactly the committed files, so the numbers the zoo's specs are checked against can
//! never drift from the models they describe.
//!
//! Run: `cargo test -j2 --features torch --test zoo`.
#![cfg(feature = "torch")]

mod common;

use std::path::Path;

/// Every file below `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("below dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn golden_files_are_what_the_live_models_report() {
    let committed = common::root().join("tests/zoo/reference");
    let fresh = tempfile::tempdir().expect("temp dir");
    let status = std::process::Command::new(common::venv_python())
        .arg(common::root().join("scripts/zoo_reference.py"))
        .arg("--out")
        .arg(fresh.path())
        .env("KERAS_BACKEND", "torch")
        .status()
        .expect(
            "run scripts/zoo_reference.py with the venv's python (./scripts/setup.sh installs it)",
        );
    assert!(
        status.success(),
        "scripts/zoo_reference.py failed: {status}"
    );
    let names = files(&committed);
    assert_eq!(
        names.len(),
        20,
        "13 timm, 6 Keras and 1 torchvision model: {names:?}"
    );
    assert_eq!(
        files(fresh.path()),
        names,
        "the script writes the same set of files"
    );
    for name in &names {
        let want = std::fs::read_to_string(committed.join(name)).expect("committed file");
        let got = std::fs::read_to_string(fresh.path().join(name)).expect("fresh file");
        assert!(want == got, "{}: the live model now reports something else; rerun scripts/zoo_reference.py and review", name.display());
    }
}
