//! Helpers shared by the integration tests.
#![allow(dead_code)]

use resnetc::span::{SourceFile, Syntax};
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a spec the way the CLI does, named relative to the repository root so
/// snapshots do not depend on where the checkout lives.
pub fn load(path: &Path) -> SourceFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.strip_prefix(root()).unwrap_or(path).display().to_string();
    let syntax = Syntax::from_path(&name).expect("spec extension");
    SourceFile::new(name, text, syntax)
}

/// Every shipped spec, sorted.
pub fn shipped_specs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("specs"))
        .expect("specs/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| Syntax::from_path(&p.display().to_string()).is_some())
        .collect();
    v.sort();
    v
}
