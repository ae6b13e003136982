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
    let name = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
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

/// The zoo's specs (`specs/timm`, `specs/keras`), sorted: real models written with the
/// constructs of timm and Keras, checked against the live models by `tests/zoo_specs.rs`.
pub fn zoo_specs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for source in ["timm", "keras"] {
        let dir = root().join("specs").join(source);
        v.extend(
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("dir entry").path())
                .filter(|p| Syntax::from_path(&p.display().to_string()).is_some()),
        );
    }
    v.sort();
    v
}

/// The python of resnetc's venv (`$RESNETC_HOME/venv`, default `~/.cache/resnetc/venv`),
/// which `scripts/setup.sh` fills with PyTorch 2.11.0 and torchvision.
pub fn venv_python() -> PathBuf {
    let home = std::env::var_os("RESNETC_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/resnetc")))
        .expect("RESNETC_HOME or HOME must be set to find resnetc's venv");
    home.join("venv/bin/python")
}

/// The tensors of a safetensors file, read without libtorch: name -> (dtype as the header
/// names it, shape, raw little-endian bytes).
pub fn safetensors_entries(
    path: &Path,
) -> std::collections::BTreeMap<String, (String, Vec<u64>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let offset = |i: usize| v["data_offsets"][i].as_u64().unwrap() as usize;
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            let dtype = v["dtype"].as_str().unwrap().to_string();
            (k, (dtype, shape, data[offset(0)..offset(1)].to_vec()))
        })
        .collect()
}
