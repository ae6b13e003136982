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
use std::sync::Mutex;
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
        // In name order: the same seed gives the same statistics on every run.
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut t) in vars {
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

/// One way of exporting: extra flags, the batches ORT runs, the tolerance.
#[derive(Clone, Copy)]
struct Variant {
    label: &'static str,
    flags: &'static [&'static str],
    batches: &'static [i64],
    tolerance: f64,
}

const PLAIN: Variant = Variant {
    label: "plain",
    flags: &[],
    batches: &[1, 8],
    tolerance: TOLERANCE,
};
const FOLDED: Variant = Variant {
    label: "folded",
    flags: &["--fold-bn"],
    batches: &[1, 8],
    tolerance: TOLERANCE,
};

/// One spec's files and reference outputs.
struct Case {
    name: String,
    compiled: Compiled,
    input: Option<String>,
    /// Reference outputs by name and batch (`logits@8`).
    reference: BTreeMap<String, Tensor>,
    /// Models written, with their variant.
    models: Vec<(PathBuf, Variant)>,
    x: PathBuf,
}

fn prepare(dir: &Path, name: &str, seed: i64, variants: &[Variant]) -> Case {
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
    for &v in variants {
        let m = dir.join(format!("{stem}.{}.onnx", v.label));
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
        args.extend(v.flags);
        if let Some(i) = &input {
            args.extend(["--input", i]);
        }
        ok(&resnetc(&args));
        models.push((m, v));
    }
    std::fs::remove_file(&w).unwrap();
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

/// Exports `specs` plain and with `--fold-bn`, checks and runs them, and compares with the
/// runtime.
fn agree(specs: &[&str]) {
    agree_variants(specs, &[PLAIN, FOLDED]);
}

/// One spec at a time across the tests: a ResNet-50's weights and models take about 100 MB
/// each, and only one spec's files exist at once (each in its own folder, removed after).
static ONE_SPEC_AT_A_TIME: Mutex<()> = Mutex::new(());

fn agree_variants(specs: &[&str], variants: &[Variant]) {
    let mut failures = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let _one = ONE_SPEC_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let case = prepare(dir.path(), spec, i as i64, variants);
        failures.extend(compare(dir.path(), &case));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Checks and runs one spec's models; prints its line; returns the failures.
fn compare(dir: &Path, c: &Case) -> Vec<String> {
    let mut jobs = Vec::new();
    {
        for (m, v) in &c.models {
            jobs.push(serde_json::json!({
                "model": m,
                "input": c.x,
                "batches": v.batches,
                "output": m.with_extension("out.safetensors"),
            }));
        }
    }
    let report = check(dir, &serde_json::Value::Array(jobs));
    let mut failures = Vec::new();
    {
        let mut line = format!(
            "{:<26} {:>9}",
            c.name,
            c.input.as_deref().unwrap_or("own input")
        );
        for (m, v) in &c.models {
            let label = v.label;
            // Outputs.
            let ort: BTreeMap<String, Tensor> =
                weights::read_tensors(m.with_extension("out.safetensors").to_str().unwrap())
                    .unwrap()
                    .into_iter()
                    .collect();
            let mut worst = 0.0f64;
            for (name, r) in &c.reference {
                let batch: i64 = name.rsplit_once('@').unwrap().1.parse().unwrap();
                if !v.batches.contains(&batch) {
                    continue;
                }
                let Some(o) = ort.get(name) else {
                    failures.push(format!("{} {label}: ORT has no output {name}", c.name));
                    continue;
                };
                if o.size() != r.size() {
                    failures.push(format!(
                        "{} {label} {name}: shape {:?} vs {:?}",
                        c.name,
                        o.size(),
                        r.size()
                    ));
                    continue;
                }
                let scale = r.abs().max().double_value(&[]).max(1e-12);
                let diff = (o - r).abs().max().double_value(&[]) / scale;
                worst = worst.max(diff);
                if diff.is_nan() || diff > v.tolerance {
                    failures.push(format!(
                        "{} {label} {name}: relative diff {diff:.3e}",
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
                let batch = if v.flags.contains(&"--no-dynamic-batch") {
                    serde_json::json!(1)
                } else {
                    serde_json::json!("batch")
                };
                let want: Vec<serde_json::Value> = std::iter::once(batch)
                    .chain(row.output.iter().map(|&d| serde_json::json!(d)))
                    .collect();
                if dims != &want {
                    failures.push(format!(
                        "{} {label} {}: inferred {dims:?}, table {:?}",
                        c.name, row.name, row.output
                    ));
                }
            }
            if !v.flags.contains(&"--fold-bn") {
                for conv in c.compiled.network.convs() {
                    if shapes.get(&conv.name).is_none() {
                        failures.push(format!("{}: no inferred shape for {}", c.name, conv.name));
                    }
                }
            }
            line += &format!("  {}: max rel diff {worst:.2e}, {compared} shapes", label);
        }
        println!("{line}");
    }
    failures
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

/// Opsets 13 (ReduceMean's axes as an attribute), 18 and 21, f16 weights and input, a
/// fixed batch: checked, shape-inferred and run; f16 against the f32 runtime within 1e-2.
#[test]
fn other_opsets_f16_and_a_fixed_batch() {
    const fn opset(label: &'static str, flags: &'static [&'static str]) -> Variant {
        Variant {
            label,
            flags,
            batches: &[1, 8],
            tolerance: TOLERANCE,
        }
    }
    agree_variants(
        &["cifar-resnet20.yaml", "timm/resnet50_gn.yaml"],
        &[
            opset("opset13", &["--opset", "13"]),
            opset("opset18", &["--opset", "18", "--fold-bn"]),
            opset("opset21", &["--opset", "21"]),
            Variant {
                label: "f16",
                flags: &["--dtype", "f16", "--fold-bn"],
                batches: &[8],
                tolerance: 1e-2,
            },
            Variant {
                label: "batch1",
                flags: &["--no-dynamic-batch"],
                batches: &[1],
                tolerance: TOLERANCE,
            },
        ],
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The same spec and weights give the same bytes; so does the same seed; another seed
/// gives other weights. The file names the spec and resnetc's version.
#[test]
fn re_exports_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_path("cifar-resnet20.yaml");
    let spec = spec.to_str().unwrap();
    let export = |out: &str, extra: &[&str]| -> Vec<u8> {
        let p = dir.path().join(out);
        let mut args = vec![
            "export",
            spec,
            "--format",
            "onnx",
            "-o",
            p.to_str().unwrap(),
        ];
        args.extend(extra);
        ok(&resnetc(&args));
        std::fs::read(p).unwrap()
    };
    let a = export("a.onnx", &[]);
    let b = export("b.onnx", &["--seed", "0"]);
    assert!(a == b, "seed 0 twice");
    let c = export("c.onnx", &["--seed", "1"]);
    assert!(a != c && a.len() == c.len(), "another seed, other weights");
    let (vs, _net) = random_network(&compile("cifar-resnet20.yaml", None), 7);
    let w = dir.path().join("w.safetensors");
    weights::save(&vs, w.to_str().unwrap()).unwrap();
    for flags in [&[][..], &["--fold-bn"][..]] {
        let mut args = vec!["--weights", w.to_str().unwrap()];
        args.extend(flags);
        let d = export("d.onnx", &args);
        let e = export("e.onnx", &args);
        assert!(d == e, "weights {flags:?} twice");
    }
    let text = String::from_utf8_lossy(&a);
    assert!(text.contains(&format!(
        "exported by resnetc {}",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.contains(spec));
}

/// Weights that do not fit: the same strict report as `run`, and nothing written.
#[test]
fn mismatched_weights_get_the_strict_error_of_run() {
    let dir = tempfile::tempdir().unwrap();
    let (vs, _net) = random_network(&compile("cifar-resnet20.yaml", None), 0);
    let w = dir.path().join("r20.safetensors");
    weights::save(&vs, w.to_str().unwrap()).unwrap();
    let x = dir.path().join("x.safetensors");
    let t = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
    weights::write_tensors(x.to_str().unwrap(), &[("x".into(), t)]).unwrap();
    let spec = spec_path("cifar-resnet32.yaml");
    let out = dir.path().join("m.onnx");
    let w = w.to_str().unwrap();
    let e = resnetc(&[
        "export",
        spec.to_str().unwrap(),
        "--format",
        "onnx",
        "--weights",
        w,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(e.status.code(), Some(3), "{}", stderr(&e));
    let msg = stderr(&e);
    assert!(
        msg.contains("do not match the network") && msg.contains("missing keys"),
        "{msg}"
    );
    assert!(msg.contains("layer1.3.conv1.weight"), "{msg}");
    assert!(!out.exists());
    let y = dir.path().join("y.safetensors");
    let r = resnetc(&[
        "run",
        spec.to_str().unwrap(),
        "--weights",
        w,
        "--input",
        x.to_str().unwrap(),
        "-o",
        y.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_eq!(r.status.code(), Some(3));
    assert_eq!(msg, stderr(&r), "export and run report a mismatch alike");
}

/// `-o` refuses a directory, a symbolic link, a FIFO (without blocking) and the spec.
#[test]
fn output_paths_are_checked_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = d.join("net.yaml");
    std::fs::copy(spec_path("cifar-resnet20.yaml"), &spec).unwrap();
    let export = |out: &Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_resnetc"))
            .args(["export", spec.to_str().unwrap(), "--format", "onnx", "-o"])
            .arg(out)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!("export to {} hangs", out.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    };
    let folder = d.join("folder");
    std::fs::create_dir(&folder).unwrap();
    let o = export(&folder);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));

    let target = d.join("target.onnx");
    std::fs::write(&target, "keep").unwrap();
    let link = d.join("link.onnx");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = export(&link);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

    let fifo = d.join("fifo.onnx");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let o = export(&fifo);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));

    let o = export(&spec);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("the spec being compiled"),
        "{}",
        stderr(&o)
    );

    // Nothing else was left behind (no temporary file).
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "fifo.onnx",
            "folder",
            "link.onnx",
            "net.yaml",
            "target.onnx"
        ]
    );
    // A regular file is replaced.
    let o = export(&target);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::metadata(&target).unwrap().len() > 1000);
}

/// `examples/onnx/serve.py` on a colour and a grey model: its top-5 classes and
/// probabilities are the runtime's for the same image (a PNG at the model's input size, so
/// nothing is resized), normalized as image folders are (ImageNet's mean and std for 3
/// channels, 0.5 and 0.5 for grey).
#[test]
fn ort_examples() {
    let dir = tempfile::tempdir().unwrap();
    let serve = common::root().join("examples/onnx/serve.py");
    let colour: (&[f64], &[f64]) = (&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]);
    let grey: (&[f64], &[f64]) = (&[0.5], &[0.5]);
    for (seed, (name, (mean, std))) in [
        ("cifar-resnet20.yaml", colour),
        ("fmnist-resnet20.yaml", grey),
    ]
    .into_iter()
    .enumerate()
    {
        let compiled = compile(name, None);
        let (vs, net) = random_network(&compiled, seed as i64);
        let w = dir.path().join("w.safetensors");
        weights::save(&vs, w.to_str().unwrap()).unwrap();
        let model = dir.path().join("m.onnx");
        let spec = spec_path(name);
        ok(&resnetc(&[
            "export",
            spec.to_str().unwrap(),
            "--format",
            "onnx",
            "--weights",
            w.to_str().unwrap(),
            "-o",
            model.to_str().unwrap(),
        ]));
        let i = compiled.network.input;
        // resnetc's evaluation recipe: the shorter side to size * 256 / 224, then the
        // center crop. A square image of exactly that side makes the resize the identity,
        // so the expected input is the crop itself.
        let side = ((i.h as f64) * 256.0 / 224.0).round() as i64;
        let off = ((side - i.h as i64) as f64 / 2.0).round_ties_even() as i64;
        tch::manual_seed(100 + seed as i64);
        let image = Tensor::randint(256, [i.c as i64, side, side], (Kind::Uint8, Device::Cpu));
        let png = dir.path().join("x.png");
        tch::vision::image::save(&image, &png).unwrap();
        let crop = image.narrow(1, off, i.h as i64).narrow(2, off, i.w as i64);

        let per_channel = |v: &[f64]| Tensor::from_slice(v).to_kind(Kind::Float).view([-1, 1, 1]);
        let x = ((crop.to_kind(Kind::Float) / 255.0 - per_channel(mean)) / per_channel(std))
            .unsqueeze(0);
        let p = tch::no_grad(|| net.f_logits_t(&x, false).unwrap().softmax(-1, Kind::Float));
        let p = Vec::<f32>::try_from(p.squeeze_dim(0)).unwrap();

        let out = Command::new(common::venv_python())
            .arg(&serve)
            .args([&model, &png])
            .output()
            .expect("run serve.py with resnetc's venv (./scripts/setup.sh)");
        assert!(out.status.success(), "serve.py: {}", stderr(&out));
        let top: Vec<(usize, f32)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut f = l.split_whitespace();
                let k = f.next().unwrap().parse().unwrap();
                (k, f.next().unwrap().parse().unwrap())
            })
            .collect();
        assert_eq!(top.len(), 5, "{name}: {top:?}");
        let mut sorted = p.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        // Printed with 4 decimals.
        for (j, &(k, pk)) in top.iter().enumerate() {
            assert!(
                (pk - p[k]).abs() <= 1e-4,
                "{name}: class {k}: {pk} vs {}",
                p[k]
            );
            assert!((pk - sorted[j]).abs() <= 1e-4, "{name}: rank {j}: {top:?}");
        }
        println!("{name}: serve.py {top:?}");
    }
}
