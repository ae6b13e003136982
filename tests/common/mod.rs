//! Helpers shared by the integration tests.
#![allow(dead_code)]

use resnetc::span::{SourceFile, Syntax};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh, empty folder for one test under the system's temporary folder, removed with
/// everything in it when dropped (a failing test's files go too; `RESNETC_KEEP_SCRATCH=1`
/// keeps them for a look). Derefs to its path.
pub struct Scratch(Option<tempfile::TempDir>, PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.1
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.1
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.1.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("RESNETC_KEEP_SCRATCH").is_some() {
            if let Some(dir) = self.0.take() {
                eprintln!("kept {}", dir.keep().display());
            }
        }
    }
}

/// A [`Scratch`] folder named `resnetc-{group}-{name}-XXXXXX`.
pub fn scratch(group: &str, name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("resnetc-{group}-{name}-"))
        .tempdir()
        .expect("a temporary folder");
    let path = dir.path().to_path_buf();
    Scratch(Some(dir), path)
}

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

/// What a finished `resnetc` command left.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `resnetc` binary with `args` (and `env`), killing it after 120 s: a hang fails
/// the test. Its output is read while it runs, so a full pipe cannot stall it.
pub fn resnetc_env(args: &[&str], env: &[(&str, &Path)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_resnetc"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the resnetc binary runs");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("resnetc {args:?} hung (killed after 120 s)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Outcome {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// [`resnetc_env`] without extra environment.
pub fn resnetc(args: &[&str]) -> Outcome {
    resnetc_env(args, &[])
}

/// Asserts an I/O failure (exit 3) whose message names `file` and contains every one of
/// `words`, with no panic.
pub fn assert_refused(out: &Outcome, file: &str, words: &[&str]) {
    assert!(!out.stderr.contains("panicked"), "panic:\n{}", out.stderr);
    assert_eq!(out.code, Some(3), "exit status (stderr:\n{})", out.stderr);
    assert!(
        out.stderr.contains(file),
        "the message does not name `{file}`:\n{}",
        out.stderr
    );
    for w in words {
        assert!(
            out.stderr.contains(w),
            "the message lacks `{w}`:\n{}",
            out.stderr
        );
    }
}

/// A YAML double-quoted string holding `text` exactly.
pub fn yaml_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if u32::from(c) <= 0xffff => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}
