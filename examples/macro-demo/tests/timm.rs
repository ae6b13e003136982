//! timm's zoo models (`specs/timm/`) as `#[resnet]` modules, against timm itself: each
//! loads timm's `state_dict` (random weights, randomized BN/GroupNorm statistics) strictly
//! and gives timm's logits within 1e-4 of the largest |logit| (at least 1) in eval and in
//! train mode. (On the CPU with the venv's libtorch they agree bit for bit, as the runtime's.)
//!
//! The reference files are the ones the runtime's parity tests use (`tests/parity.rs`,
//! `timm::*`): `timm-<name>.weights.safetensors` (the state_dict with timm's key names)
//! and `timm-<name>.io.safetensors` (`input` of 2x3x128x128, `logits_eval`,
//! `logits_train`, `meta_max_abs_logit`), written by `scripts/parity.py` with resnetc's
//! venv python into the repository's `target/parity/` (or `RESNETC_PARITY_DIR`) on first
//! use and shared with the parity tests afterwards.
//!
//! Run: `cargo test -j2 -p macro-demo --test timm -- --nocapture` (prints the diffs).

use resnetc::runtime::weights::{self, LoadMode};
use resnetc_macros::resnet;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Max absolute difference allowed, relative to the largest |logit| (at least 1).
const TOLERANCE: f64 = 1e-4;

/// The repository root (this crate is `examples/macro-demo`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parity_dir() -> PathBuf {
    std::env::var_os("RESNETC_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/parity"))
}

/// The python of resnetc's venv (`$RESNETC_HOME/venv`, default `~/.cache/resnetc/venv`),
/// which `scripts/setup.sh` fills with PyTorch, safetensors and timm.
fn venv_python() -> PathBuf {
    let home = std::env::var_os("RESNETC_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/resnetc")))
        .expect("RESNETC_HOME or HOME must be set to find resnetc's venv");
    home.join("venv/bin/python")
}

/// Generation runs one python at a time (tests run in parallel).
static GENERATE: Mutex<()> = Mutex::new(());

/// Paths of `name`'s weights and io files, generating them if missing.
fn reference(name: &str) -> (String, String) {
    let dir = parity_dir();
    let w = dir.join(format!("{name}.weights.safetensors"));
    let io = dir.join(format!("{name}.io.safetensors"));
    if !(w.exists() && io.exists()) {
        let _lock = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
        if !(w.exists() && io.exists()) {
            let python = venv_python();
            let status = std::process::Command::new(&python)
                .arg(repo().join("scripts/parity.py"))
                .arg(&dir)
                .args(["--only", name])
                .status()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run {} (run ./scripts/setup.sh first): {e}",
                        python.display()
                    )
                });
            assert!(status.success(), "scripts/parity.py failed for {name}");
        }
    }
    (w.display().to_string(), io.display().to_string())
}

fn io_tensor(io: &[(String, Tensor)], name: &str) -> Tensor {
    io.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .unwrap_or_else(|| panic!("io file lacks `{name}`"))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "output shapes differ");
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Loads timm's state_dict into the generated module's store, strictly: every variable is
/// in the file with its shape, and the file holds nothing else but one
/// `num_batches_tracked` per BatchNorm of the store (tch's BatchNorm keeps no counter).
/// Returns the number of counters.
fn load_strict(name: &str, vs: &nn::VarStore, path: &str) -> usize {
    let vars = vs.variables();
    let batch_norms: BTreeSet<&str> = vars
        .keys()
        .filter_map(|v| v.strip_suffix(".running_mean"))
        .collect();
    let (counters, tensors): (Vec<_>, Vec<_>) = weights::read_tensors(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .partition(|(n, _)| n.ends_with(".num_batches_tracked"));
    let counted: BTreeSet<&str> = counters
        .iter()
        .map(|(n, _)| n.strip_suffix(".num_batches_tracked").unwrap())
        .collect();
    assert_eq!(
        counted, batch_norms,
        "{name}: the file's num_batches_tracked are those of the store's BatchNorms"
    );
    assert_eq!(counted.len(), counters.len(), "{name}: repeated counters");
    for (n, t) in &counters {
        assert_eq!(t.numel(), 1, "{name}: {n}");
    }
    let report = weights::load_tensors(vs, path, tensors, LoadMode::Strict)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.is_exact(), "{name}: {report}");
    assert_eq!(
        report.loaded.len(),
        vars.len(),
        "{name}: every variable of the generated module loads"
    );
    counters.len()
}

/// Builds the generated network, loads timm's weights and compares the logits.
fn check<M: ModuleT>(name: &str, new: impl Fn(&nn::Path) -> M, input_shape: [i64; 3]) {
    let file = format!("timm-{name}");
    let (weights_path, io_path) = reference(&file);
    let io = weights::read_tensors(&io_path).unwrap_or_else(|e| panic!("{e}"));
    let x = io_tensor(&io, "input");
    assert_eq!(
        x.size()[1..],
        input_shape,
        "{name}: the attribute's input is the reference's"
    );

    let vs = nn::VarStore::new(Device::Cpu);
    let net = new(&vs.root());
    let counters = load_strict(name, &vs, &weights_path);
    if name == "resnet50_gn" {
        assert_eq!(counters, 0, "GroupNorm only");
    } else {
        assert!(counters > 0, "{name}: BatchNorm counters in timm's file");
    }

    let scale = io_tensor(&io, "meta_max_abs_logit")
        .to_kind(Kind::Double)
        .max()
        .double_value(&[])
        .max(1.0);
    let tolerance = TOLERANCE * scale;
    // Eval first: training mode updates the running statistics.
    let eval = max_abs_diff(&net.forward_t(&x, false), &io_tensor(&io, "logits_eval"));
    let train = max_abs_diff(&net.forward_t(&x, true), &io_tensor(&io, "logits_train"));
    eprintln!(
        "generated timm-{name:<13} {} variables + {counters} counters, max abs diff: eval {eval:.2e}, train {train:.2e} (tolerance {tolerance:.2e})",
        vs.variables().len()
    );
    assert!(
        eval <= tolerance,
        "{name} eval: max abs diff {eval:e} > {tolerance:e}"
    );
    assert!(
        train <= tolerance,
        "{name} train: max abs diff {train:e} > {tolerance:e}"
    );
}

/// `timm!(name, "spec")`: a module `name` with the network `Net` of the spec at the
/// reference's input size, and the test `name`.
macro_rules! timm {
    ($($name:ident: $spec:literal),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[resnet(spec = $spec, input = "3x128x128")]
            struct Net;

            #[test]
            fn $name() {
                assert_eq!(Net::INPUT_SHAPE, [3, 128, 128]);
                assert_eq!(Net::NUM_CLASSES, 1000);
                check(stringify!($name), Net::new, Net::INPUT_SHAPE);
            }
        }
    )*

        /// The models checked above.
        const CHECKED: &[&str] = &[$(stringify!($name)),*];
    };
}

timm!(
    resnet10t: "../../specs/timm/resnet10t.yaml",
    resnet18d: "../../specs/timm/resnet18d.yaml",
    resnet26d: "../../specs/timm/resnet26d.yaml",
    resnet34d: "../../specs/timm/resnet34d.yaml",
    resnet50c: "../../specs/timm/resnet50c.yaml",
    resnet50d: "../../specs/timm/resnet50d.yaml",
    resnet50s: "../../specs/timm/resnet50s.yaml",
    seresnet50: "../../specs/timm/seresnet50.yaml",
    resnetrs50: "../../specs/timm/resnetrs50.yaml",
    resnet50_gn: "../../specs/timm/resnet50_gn.yaml",
    ecaresnet50d: "../../specs/timm/ecaresnet50d.yaml",
    resnetblur50: "../../specs/timm/resnetblur50.yaml",
    resnetaa50: "../../specs/timm/resnetaa50.yaml",
);

/// Every spec of `specs/timm/` has its test above.
#[test]
fn every_timm_spec_is_checked() {
    let dir = repo().join("specs/timm");
    let specs: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let checked: BTreeSet<String> = CHECKED.iter().map(|s| s.to_string()).collect();
    assert_eq!(specs, checked);
}
