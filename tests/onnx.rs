//! `resnetc export --format onnx` against ONNX itself and ONNX Runtime.
//!
//! For a set of shipped specs (every construct of the zoo, big ones at 3x64x64): random
//! weights (the spec's initialization, then random BN/GN statistics and affine terms) are
//! saved as safetensors, exported with and without `--fold-bn`, and
//! `scripts/onnx_check.py` (resnetc's venv: onnx and onnxruntime from scripts/setup.sh)
//! runs `onnx.checker.check_model(full_check=True)`, strict shape inference and ONNX
//! Runtime on CPU at batch 1 and 8 (through the dynamic batch dimension). ORT's outputs
//! must equal the runtime's eval-mode forward pass within 1e-4 of the largest |output|,
//! and the inferred shape of every value named after a layer-table row (every
//! convolution's at least) must equal the row's output.
//!
//! Run: `cargo test -j2 --features torch --test onnx -- --nocapture` (prints the diffs).
#![cfg(feature = "torch")]

mod common;

use resnetc::runtime::weights;
use resnetc::runtime::ResNet;
use resnetc::{Compiled, Overrides};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{nn, Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn resnetc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .output()
        .expect("run resnetc")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "resnetc failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn spec_path(name: &str) -> PathBuf {
    common::root().join("specs").join(name)
}

/// The input a test uses: the spec's own when small, else 3x64x64.
fn input_for(c: &Compiled) -> Option<String> {
    let i = c.network.input;
    (i.h > 64).then(|| format!("{}x64x64", i.c))
}

fn compile(name: &str, input: Option<&str>) -> Compiled {
    let file = common::load(&spec_path(name));
    let overrides = Overrides {
        input: input.map(|s| resnetc::cli::parse_shape(s).expect("shape")),
        ..Overrides::default()
    };
    resnetc::compile_with(&file, &overrides).unwrap_or_else(|d| panic!("{name}: {d:?}"))
}

/// The network with its initialization, then random norm statistics and affine terms
/// (so that BN folding has something to fold).
fn random_network(c: &Compiled, seed: i64) -> (nn::VarStore, ResNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ResNet::new(&vs.root(), c).expect("network");
    let norms: Vec<String> = c.network.norms().map(|n| n.name.clone()).collect();
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            let Some((module, what)) = name.rsplit_once('.') else {
                continue;
            };
            if !norms.iter().any(|n| n == module) {
                continue;
            }
            let r = match what {
                "running_mean" | "bias" => t.randn_like() * 0.1,
                "running_var" | "weight" => t.rand_like() + 0.5,
                _ => continue,
            };
            t.copy_(&r);
        }
    });
    (vs, net)
}

/// One spec's files and reference outputs.
struct Case {
    name: String,
    compiled: Compiled,
    input: Option<String>,
    /// Reference outputs by name and batch (`logits@8`).
    reference: BTreeMap<String, Tensor>,
    /// Models written: (path, fold_bn).
    models: Vec<(PathBuf, bool)>,
    x: PathBuf,
}

fn prepare(dir: &Path, name: &str, seed: i64) -> Case {
    let probe = compile(name, None);
    let input = input_for(&probe);
    let compiled = compile(name, input.as_deref());
    let (vs, net) = random_network(&compiled, seed);
    let stem = name.replace('/', "_").trim_end_matches(".yaml").to_string();
    let w = dir.join(format!("{stem}.weights.safetensors"));
    weights::save(&vs, w.to_str().unwrap()).expect("save weights");
    let i = compiled.network.input;
    let x = Tensor::randn(
        [8, i.c as i64, i.h as i64, i.w as i64],
        (Kind::Float, Device::Cpu),
    );
    let xp = dir.join(format!("{stem}.x.safetensors"));
    weights::write_tensors(
        xp.to_str().unwrap(),
        &[("x".to_string(), x.shallow_clone())],
    )
    .unwrap();
    let mut reference = BTreeMap::new();
    tch::no_grad(|| {
        for b in [1i64, 8] {
            let xb = x.narrow(0, 0, b);
            if net.is_backbone() {
                for (n, t) in net.f_features_t(&xb, false).unwrap() {
                    reference.insert(format!("{n}@{b}"), t);
                }
            } else {
                let logits = net.f_logits_t(&xb, false).unwrap();
                if net.has_softmax() {
                    reference.insert(
                        format!("probabilities@{b}"),
                        logits.softmax(-1, Kind::Float),
                    );
                }
                reference.insert(format!("logits@{b}"), logits);
            }
        }
    });
    let mut models = Vec::new();
    for fold in [false, true] {
        let m = dir.join(format!("{stem}{}.onnx", if fold { ".folded" } else { "" }));
        let spec = spec_path(name);
        let mut args = vec![
            "export",
            spec.to_str().unwrap(),
            "--format",
            "onnx",
            "--weights",
            w.to_str().unwrap(),
            "-o",
            m.to_str().unwrap(),
        ];
        if fold {
            args.push("--fold-bn");
        }
        if let Some(i) = &input {
            args.extend(["--input", i]);
        }
        ok(&resnetc(&args));
        models.push((m, fold));
    }
    Case {
        name: name.to_string(),
        compiled,
        input,
        reference,
        models,
        x: xp,
    }
}

/// Runs scripts/onnx_check.py on `jobs`; returns its report.
fn check(dir: &Path, jobs: &serde_json::Value) -> serde_json::Value {
    let jp = dir.join("jobs.json");
    let rp = dir.join("report.json");
    std::fs::write(&jp, serde_json::to_vec(jobs).unwrap()).unwrap();
    let python = common::venv_python();
    let out = Command::new(&python)
        .arg(common::root().join("scripts/onnx_check.py"))
        .args([&jp, &rp])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (run ./scripts/setup.sh first): {e}",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "onnx_check.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&rp).unwrap()).unwrap()
}

/// Exports `specs`, checks and runs them, and compares with the runtime.
fn agree(specs: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| prepare(dir.path(), s, i as i64))
        .collect();
    let mut jobs = Vec::new();
    for c in &cases {
        for (m, _) in &c.models {
            jobs.push(serde_json::json!({
                "model": m,
                "input": c.x,
                "batches": [1, 8],
                "output": m.with_extension("out.safetensors"),
            }));
        }
    }
    let report = check(dir.path(), &serde_json::Value::Array(jobs));
    let mut failures = Vec::new();
    for c in &cases {
        let mut line = format!(
            "{:<26} {:>9}",
            c.name,
            c.input.as_deref().unwrap_or("own input")
        );
        for (m, fold) in &c.models {
            // Outputs.
            let ort: BTreeMap<String, Tensor> =
                weights::read_tensors(m.with_extension("out.safetensors").to_str().unwrap())
                    .unwrap()
                    .into_iter()
                    .collect();
            let mut worst = 0.0f64;
            for (name, r) in &c.reference {
                let Some(o) = ort.get(name) else {
                    failures.push(format!("{} fold={fold}: ORT has no output {name}", c.name));
                    continue;
                };
                if o.size() != r.size() {
                    failures.push(format!(
                        "{} fold={fold} {name}: shape {:?} vs {:?}",
                        c.name,
                        o.size(),
                        r.size()
                    ));
                    continue;
                }
                let scale = r.abs().max().double_value(&[]).max(1e-12);
                let diff = (o - r).abs().max().double_value(&[]) / scale;
                worst = worst.max(diff);
                if diff.is_nan() || diff > TOLERANCE {
                    failures.push(format!(
                        "{} fold={fold} {name}: relative diff {diff:.3e}",
                        c.name
                    ));
                }
            }
            // Shapes: every value named after a table row has the row's shape.
            let shapes = &report[m.to_str().unwrap()]["shapes"];
            let mut compared = 0;
            for row in &c.compiled.network.layers {
                let Some(dims) = shapes.get(&row.name).and_then(|d| d.as_array()) else {
                    continue;
                };
                compared += 1;
                let want: Vec<serde_json::Value> = std::iter::once(serde_json::json!("batch"))
                    .chain(row.output.iter().map(|&d| serde_json::json!(d)))
                    .collect();
                if dims != &want {
                    failures.push(format!(
                        "{} fold={fold} {}: inferred {dims:?}, table {:?}",
                        c.name, row.name, row.output
                    ));
                }
            }
            if !fold {
                for conv in c.compiled.network.convs() {
                    if shapes.get(&conv.name).is_none() {
                        failures.push(format!("{}: no inferred shape for {}", c.name, conv.name));
                    }
                }
            }
            line += &format!(
                "  {}: max rel diff {worst:.2e}, {compared} shapes",
                if *fold { "folded" } else { "plain" }
            );
        }
        println!("{line}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn small_specs_agree_with_the_runtime() {
    agree(&[
        "cifar-resnet20.yaml",
        "fmnist-resnet20.yaml",
        "preact-resnet18.yaml",
        "article-keras.yaml",
        "article-pytorch.yaml",
        "resnet18.yaml",
        "timm/resnet10t.yaml",
        "timm/resnet18d.yaml",
    ]);
}

#[test]
fn classic_resnet50s_agree_with_the_runtime() {
    agree(&[
        "resnet50.yaml",
        "resnext50-32x4d.yaml",
        "plain34.yaml",
        "keras/ResNet50.yaml",
        "keras/ResNet50V2.yaml",
        "resnet50-os8.yaml",
    ]);
}

#[test]
fn zoo_resnet50s_agree_with_the_runtime() {
    agree(&[
        "timm/resnet50d.yaml",
        "timm/seresnet50.yaml",
        "timm/ecaresnet50d.yaml",
        "timm/resnetblur50.yaml",
        "timm/resnet50_gn.yaml",
        "timm/resnetrs50.yaml",
        "timm/resnetaa50.yaml",
    ]);
}
