//! Pretrained-weight files made by the real libraries, imported and run by resnetc.
//!
//! `scripts/import_oracle.py` (resnetc's venv python) writes them to `target/import/` (or
//! `RESNETC_IMPORT_DIR`) on first use, reused afterwards: torchvision's resnet18 and
//! resnet50 and timm's resnet18d (random weights, randomized BN statistics) saved with
//! `torch.save(model.state_dict())`, inside a training script's `{"state_dict": ...}`
//! with DataParallel's `module.` prefixes and an optimizer, and as `torch.save(model)`;
//! Keras's `ResNet50(weights=None)` (torch backend) saved with `save_weights` and `save`.
//! Each import must be bit-identical to the state_dict (through safetensors in Python),
//! and `resnetc run --weights FILE` must give the library's logits within 1e-4 of the
//! largest logit (at least 1, as tests/parity.rs does for timm). The hostile files
//! (a pickle whose `__reduce__` calls `os.system`, an HDF5 file of the wrong dtype) are
//! written by Python into a fresh folder at every run.
//!
//! Run: `cargo test -j2 --features torch --test import_parity -- --nocapture` (prints the
//! differences and timings).
#![cfg(feature = "torch")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

const TOLERANCE: f64 = 1e-4;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn oracle_dir() -> PathBuf {
    std::env::var_os("RESNETC_IMPORT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target/import"))
}

static GENERATE: Mutex<()> = Mutex::new(());

/// The oracle's files of `name` (generated when missing): `dir/name.*`.
fn oracle(name: &str) -> PathBuf {
    let dir = oracle_dir();
    let _lock = GENERATE.lock().unwrap_or_else(|e| e.into_inner());
    if !dir.join(format!("{name}.io.safetensors")).exists() {
        let started = Instant::now();
        let status = Command::new(common::venv_python())
            .arg(manifest().join("scripts/import_oracle.py"))
            .arg(&dir)
            .args(["--only", name])
            .status()
            .expect("resnetc's venv python runs (./scripts/setup.sh)");
        assert!(
            status.success(),
            "scripts/import_oracle.py failed for {name}"
        );
        eprintln!(
            "{name}: oracle files written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    dir.join(name)
}

fn with_ext(base: &Path, ext: &str) -> String {
    format!("{}.{ext}", base.display())
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn resnetc(args: &[&str]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .output()
        .expect("the resnetc binary runs");
    Outcome {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh, empty folder for one test, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("import-parity", name)
}

/// Imports `file` for `spec` and requires every tensor to equal the reference's, bit
/// for bit, dtype and shape included.
fn import_bit_identical(file: &str, spec: &str, reference: &str, dir: &Path) {
    let out = dir.join("imported.safetensors");
    let started = Instant::now();
    let o = resnetc(&["import", file, "--spec", spec, "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(0), "import {file}: {}", o.stderr);
    let seconds = started.elapsed().as_secs_f64();
    let got = common::safetensors_entries(&out);
    let want = common::safetensors_entries(Path::new(reference));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{file}: keys"
    );
    let mut bytes = 0;
    for (k, w) in &want {
        assert!(got[k] == *w, "{file}: `{k}` is not bit-identical");
        bytes += w.2.len();
    }
    eprintln!(
        "{}: {} tensors ({bytes} bytes) bit-identical, imported in {seconds:.2} s",
        Path::new(file).file_name().unwrap().to_string_lossy(),
        want.len()
    );
    let _ = std::fs::remove_file(out);
}

/// `resnetc run` with `--weights weights` on the oracle's input; the largest difference
/// from its logits, and the tolerance (1e-4 of the largest |logit|, at least 1e-4).
fn run_against(spec: &str, weights: &str, io: &str, dir: &Path) -> (f64, f64) {
    let y = dir.join("y.safetensors");
    // `run` reads a file of one tensor: the oracle's input alone.
    let x = dir.join("x.safetensors");
    let tensors = resnetc::runtime::weights::read_tensors(io).unwrap();
    let input = &tensors.iter().find(|(n, _)| n == "input").unwrap().1;
    tch::Tensor::write_safetensors(&[("input", input)], &x).unwrap();
    let o = resnetc(&[
        "run",
        spec,
        "--weights",
        weights,
        "--input",
        x.to_str().unwrap(),
        "-o",
        y.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_eq!(o.code, Some(0), "run --weights {weights}: {}", o.stderr);
    let io = resnetc::runtime::weights::read_tensors(io).unwrap();
    let reference = io
        .iter()
        .find(|(n, _)| n == "logits")
        .unwrap()
        .1
        .shallow_clone();
    let out = resnetc::runtime::weights::read_tensors(y.to_str().unwrap()).unwrap();
    let logits = out
        .iter()
        .find(|(n, _)| n == "logits")
        .unwrap()
        .1
        .shallow_clone();
    let d = (logits.to_kind(tch::Kind::Double) - reference.to_kind(tch::Kind::Double))
        .abs()
        .max()
        .double_value(&[]);
    let scale = reference.abs().max().double_value(&[]).max(1.0);
    let _ = std::fs::remove_file(y);
    (d, TOLERANCE * scale)
}

#[test]
fn torchvision_and_timm_checkpoints_import_bit_identical_and_run_like_pytorch() {
    let dir = scratch("torch");
    for (name, spec) in [
        ("resnet18", "specs/resnet18.yaml"),
        ("resnet50", "specs/resnet50.yaml"),
        ("timm-resnet18d", "specs/timm/resnet18d.yaml"),
    ] {
        let base = oracle(name);
        let spec = manifest().join(spec).display().to_string();
        let reference = with_ext(&base, "ref.safetensors");
        import_bit_identical(&with_ext(&base, "pth"), &spec, &reference, &dir);
        let wrapped = with_ext(&base, "wrapped.pth");
        if Path::new(&wrapped).exists() {
            import_bit_identical(&wrapped, &spec, &reference, &dir);
        }
        let io = with_ext(&base, "io.safetensors");
        for weights in [with_ext(&base, "pth"), reference] {
            let (d, tol) = run_against(&spec, &weights, &io, &dir);
            eprintln!(
                "{name}: run --weights {} max abs diff from PyTorch {d:.2e} (tolerance {tol:.1e})",
                Path::new(&weights).file_name().unwrap().to_string_lossy()
            );
            assert!(d <= tol, "{name} with {weights}: {d:e} > {tol:e}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_whole_pickled_model_is_refused_with_the_way_to_save_its_state_dict() {
    let base = oracle("resnet18");
    let dir = scratch("model");
    let file = with_ext(&base, "model.pth");
    let spec = manifest().join("specs/resnet18.yaml").display().to_string();
    let o = resnetc(&[
        "import",
        &file,
        "--spec",
        &spec,
        "-o",
        dir.join("w.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    for w in [
        file.as_str(),
        "`torchvision.models.resnet.ResNet`",
        "torch.save(model)",
        "model.state_dict()",
    ] {
        assert!(o.stderr.contains(w), "lacks `{w}`:\n{}", o.stderr);
    }
    assert!(!dir.join("w.safetensors").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn keras_resnet50_weights_run_like_keras() {
    let base = oracle("keras-ResNet50");
    let dir = scratch("keras");
    let spec = manifest()
        .join("specs/keras/ResNet50.yaml")
        .display()
        .to_string();
    let io = with_ext(&base, "io.safetensors");
    let out = dir.join("k.safetensors");
    let o = resnetc(&[
        "import",
        &with_ext(&base, "weights.h5"),
        "--spec",
        &spec,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("imported 320 tensors"), "{}", o.stderr);
    for weights in [
        with_ext(&base, "weights.h5"),
        with_ext(&base, "keras"),
        out.display().to_string(),
    ] {
        let started = Instant::now();
        let (d, tol) = run_against(&spec, &weights, &io, &dir);
        eprintln!(
            "keras ResNet50: run --weights {} max abs diff from model.predict {d:.2e} (tolerance {tol:.1e}), {:.1} s",
            Path::new(&weights).file_name().unwrap().to_string_lossy(),
            started.elapsed().as_secs_f64()
        );
        assert!(d <= tol, "{weights}: {d:e} > {tol:e}");
    }
    // The .keras file records BN's epsilon: a spec with another one is refused.
    let other = dir.join("eps.yaml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("eps: 1.001e-5", "eps: 1.0e-3");
    std::fs::write(&other, text).unwrap();
    let keras = with_ext(&base, "keras");
    let o = resnetc(&[
        "import",
        &keras,
        "--spec",
        other.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    assert!(
        o.stderr.contains("epsilon differs") && o.stderr.contains("conv1_bn 1.001e-5"),
        "{}",
        o.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Python writes a checkpoint whose pickle would run `os.system("touch MARKER")` when
/// loaded with pickle, and a Keras weights file whose kernel is int32: both refused with
/// the file named, exit status 3, nothing run.
#[test]
fn python_made_hostile_files_are_refused_and_nothing_runs() {
    let dir = scratch("hostile");
    let marker = dir.join("marker");
    let status = Command::new(common::venv_python())
        .arg(manifest().join("scripts/import_oracle.py"))
        .arg("--hostile")
        .arg(&dir)
        .arg(&marker)
        .status()
        .expect("resnetc's venv python runs");
    assert!(status.success());
    assert!(!marker.exists(), "saving ran the payload");
    let evil = dir.join("evil.pth").display().to_string();
    let out = dir.join("w.safetensors");
    let spec = manifest().join("specs/resnet18.yaml").display().to_string();
    let x = dir.join("x.safetensors");
    tch::Tensor::write_safetensors(
        &[(
            "x",
            tch::Tensor::zeros([1, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu)),
        )],
        &x,
    )
    .unwrap();
    for args in [
        vec![
            "import",
            &evil,
            "--spec",
            &spec,
            "-o",
            out.to_str().unwrap(),
        ],
        vec![
            "run",
            &spec,
            "--weights",
            &evil,
            "--input",
            x.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ],
    ] {
        let o = resnetc(&args);
        assert_eq!(o.code, Some(3), "{}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        for w in [
            evil.as_str(),
            "`posix.system`",
            "refused before anything was run",
        ] {
            assert!(o.stderr.contains(w), "lacks `{w}`:\n{}", o.stderr);
        }
        assert!(!marker.exists(), "resnetc ran the payload");
        assert!(!out.exists());
    }
    mutants_never_panic(&dir.join("seed.weights.h5"));
    let h5 = dir.join("wrong-dtype.weights.h5").display().to_string();
    let keras = manifest()
        .join("specs/keras/ResNet50.yaml")
        .display()
        .to_string();
    let o = resnetc(&["import", &h5, "--spec", &keras, "-o", out.to_str().unwrap()]);
    assert_eq!(o.code, Some(3), "{}", o.stderr);
    for w in [
        h5.as_str(),
        "conv1.weight: network [64, 3, 7, 7] f32, file [64, 3, 7, 7] i32",
    ] {
        assert!(o.stderr.contains(w), "lacks `{w}`:\n{}", o.stderr);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every truncation (in steps of 16 bytes), and every byte inverted, of a small HDF5 file
/// written by h5py is mapped, checked and read or refused, never a panic.
fn mutants_never_panic(seed: &Path) {
    use resnetc::import::{self, keras::KerasWeights, LoadMode, TensorSource};
    let bytes = std::fs::read(seed).unwrap();
    let spec = manifest().join("specs/keras/ResNet50.yaml");
    let file = resnetc::span::SourceFile::new(
        "ResNet50.yaml",
        std::fs::read_to_string(spec).unwrap(),
        resnetc::span::Syntax::Yaml,
    );
    let compiled = resnetc::compile(&file).unwrap();
    let expected = import::expected(&compiled.network);
    let try_one = |m: Vec<u8>| {
        let result = std::panic::catch_unwind(|| {
            let Ok(mut source) = KerasWeights::from_bytes(m, &compiled.network, "mutant") else {
                return 0;
            };
            let Ok((_, take)) = import::plan(&source, &expected, LoadMode::Partial) else {
                return 0;
            };
            take.iter().filter(|&&i| source.read(i).is_ok()).count()
        });
        result.unwrap_or_else(|_| panic!("panic on a mutant of `{}`", seed.display()))
    };
    // The seed's 1x1x1x1 kernel is refused; the bias and the four BN vectors are read.
    assert_eq!(try_one(bytes.clone()), 5);
    let started = Instant::now();
    let mut runs = 0;
    for cut in (0..bytes.len()).step_by(16) {
        try_one(bytes[..cut].to_vec());
        runs += 1;
    }
    for i in 0..bytes.len() {
        let mut m = bytes.clone();
        m[i] ^= 0xff;
        try_one(m);
        runs += 1;
    }
    eprintln!(
        "{runs} mutants of a {}-byte HDF5 file in {:.1} s, no panic",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
}
