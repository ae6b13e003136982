//! `resnetc build --target pytorch`: the generated Python file.
//!
//! - Without libtorch: the file of a spec with hostile model and stage names (and a hostile
//!   path) parses with Python's `ast` into only the expected top-level definitions, and every
//!   token carrying spec text is a comment; the CLI writes the file through
//!   `crate::output` (no symbolic links, never the spec itself) and refuses bad class names.
//! - With `--features torch` (`parity`): for every shipped spec, the zoo, the macro demo's
//!   specs and the general variants, resnetc's runtime writes random weights (randomized BN
//!   statistics) and its eval and train outputs; one Python process (resnetc's venv) imports
//!   each generated file, loads the weights strictly, and must give the same outputs within
//!   1e-4 of the largest |value|, the table's trainable parameters and BN statistics, and a
//!   model `torch.jit.script` accepts; its state_dict after the training step loads strictly
//!   into the runtime and equals the runtime's (running statistics, BN momentum).
//!
//! Run: `cargo test -j2 --features torch --test pytorch -- --nocapture` (prints the diffs).

mod common;

use resnetc::back::pytorch::{module_source, PyOptions};
use resnetc::span::{SourceFile, Syntax};
use std::path::{Path, PathBuf};
use std::process::Command;

/// resnetc's venv python when present (torch, safetensors), else `python3` (enough for `ast`).
fn python() -> PathBuf {
    let venv = common::venv_python();
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn compile_file(path: &Path) -> resnetc::Compiled {
    let file = common::load(path);
    resnetc::compile(&file)
        .unwrap_or_else(|d| panic!("{}: {}", path.display(), resnetc::diag::render(&file, &d)))
}

/// Payloads that would run if they became Python code, or change how Python reads the file.
const PAYLOADS: &[&str] = &[
    "x\nimport os; os.system('injected')",
    "x\r\nimport os  # injected",
    "x\rinjected = 1",
    "x\u{2028}injected()\u{2029}",
    "x\u{85}injected()\u{0b}\u{0c}injected()",
    "coding: unicode_escape \\u000ainjected()",
    "\"\"\" injected ''' \\",
    "`, `\n*/ pub fn injected() {} /*",
    "evil\u{202e}injected.py",
    "nul\0injected\u{1b}[31m",
];

/// The macro demo's `mixed-features.yaml` (every block kind and shortcut style) with the
/// model and its stages renamed.
fn mixed_features(name: &str) -> resnetc::Compiled {
    let text = std::fs::read_to_string(
        common::root().join("examples/macro-demo/specs/mixed-features.yaml"),
    )
    .expect("mixed-features.yaml");
    let mut out = text.replace(
        "name: mixed-features",
        &format!("name: {}", common::yaml_quoted(name)),
    );
    for (i, letter) in "abcdefg".chars().enumerate() {
        out = out.replace(
            &format!("  - stage: {letter}\n"),
            &format!("  - stage: {}\n", common::yaml_quoted(&format!("{name}{i}"))),
        );
    }
    let file = SourceFile::new("hostile.yaml", out, Syntax::Yaml);
    resnetc::compile(&file).unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
}

/// Python's view of generated files: `ast` top-level definitions, tokens that carry
/// `injected`, the detected source encoding. Prints one JSON object per file.
const AUDIT: &str = r#"
import ast, io, json, sys, tokenize
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    text = data.decode("utf-8")
    tree = ast.parse(text)
    top = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.append("import " + ",".join(f"{a.name} as {a.asname}" if a.asname else a.name for a in node.names))
        elif isinstance(node, ast.ImportFrom):
            top.append(f"from {node.module} import " + ",".join(a.name for a in node.names))
        elif isinstance(node, ast.ClassDef):
            top.append("class " + node.name)
        elif isinstance(node, ast.FunctionDef):
            top.append("def " + node.name)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            top.append("docstring")
        else:
            top.append("other " + type(node).__name__)
    carriers = [[tokenize.tok_name[t.type], t.string] for t in tokenize.generate_tokens(io.StringIO(text).readline) if "injected" in t.string]
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    print(json.dumps({"path": path, "encoding": encoding, "top": top, "carriers": carriers,
                      "strings_with_payload": [s for s in strings if "injected" in s],
                      "lines12": text.splitlines()[:2]}))
"#;

#[test]
fn hostile_names_and_paths_stay_in_comments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    let mut trainers = Vec::new();
    for (i, payload) in PAYLOADS.iter().enumerate() {
        let compiled = mixed_features(payload);
        let opts = PyOptions {
            name: None,
            source: Some((*payload).to_string()),
        };
        let source = module_source(&compiled, &opts).expect("generates");
        // Deterministic.
        assert_eq!(source, module_source(&compiled, &opts).expect("generates"));
        let class = opts.class_name(&compiled);
        let path = dir.path().join(format!("hostile{i}.py"));
        std::fs::write(&path, &source).expect("write");
        files.push((path, class.clone(), *payload));
        // The torchrun file: the same module, then fixed code naming only the class.
        let trainer = resnetc::back::pytorch::trainer_source(&compiled, &opts).expect("generates");
        let tail = trainer
            .strip_prefix(source.as_str())
            .expect("the module comes first");
        assert!(
            tail.contains(&format!("\nMODEL_CLASS = {class}\n")),
            "{payload:?}"
        );
        assert!(
            !tail.replace(class.as_str(), "").contains("injected"),
            "{payload:?}"
        );
        trainers.push(dir.path().join(format!("hostile{i}-torchrun.py")));
        std::fs::write(trainers.last().unwrap(), &trainer).expect("write");
    }
    let out = Command::new(python())
        .arg("-c")
        .arg(AUDIT)
        .args(files.iter().map(|f| &f.0))
        .args(&trainers)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let mut reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(reports.len(), files.len() + trainers.len());
    let trainer_reports = reports.split_off(files.len());
    for ((_, class, payload), r) in files.iter().zip(&trainer_reports) {
        let top: Vec<&str> = r["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(top.contains(&"def main"), "{payload:?}: {top:?}");
        let carriers = r["carriers"].as_array().unwrap();
        assert!(
            carriers
                .iter()
                .all(|t| t[0] == "COMMENT" || (t[0] == "NAME" && t[1] == class.as_str())),
            "{payload:?}: {carriers:?}"
        );
        assert_eq!(
            r["strings_with_payload"].as_array().unwrap().len(),
            0,
            "{payload:?}"
        );
        assert_eq!(r["encoding"], "utf-8", "{payload:?}");
    }
    for ((_, class, payload), r) in files.iter().zip(&reports) {
        let top: Vec<&str> = r["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let allowed_classes = [
            "SEModule",
            "EcaModule",
            "BlurPool2d",
            "Subsample",
            "DropPath",
            "BasicBlock",
            "Bottleneck",
            "Bottleneck2",
            "PreActBlock",
            "PreActBottleneck",
            "PlainBlock",
            "PlainBottleneck",
        ];
        let expected_imports = [
            "from typing import Dict,List,Optional",
            "import torch",
            "import torch.nn.functional as F",
            "from torch import Tensor,nn",
        ];
        assert_eq!(&top[..4], &expected_imports, "{payload:?}");
        for item in &top[4..] {
            let ok = match item.split_once(' ') {
                Some(("def", f)) => ["batch_norm", "group_norm"].contains(&f),
                Some(("class", c)) => allowed_classes.contains(&c) || c == class,
                _ => false,
            };
            assert!(ok, "{payload:?}: unexpected top-level `{item}`");
        }
        assert_eq!(
            top.last().copied(),
            Some(format!("class {class}").as_str()),
            "{payload:?}"
        );
        assert_eq!(r["encoding"], "utf-8", "{payload:?}");
        let carriers = r["carriers"].as_array().unwrap();
        assert!(
            !carriers.is_empty(),
            "{payload:?}: the names are still shown"
        );
        // Only comments carry spec text; the class name derived from it is an identifier.
        assert!(
            carriers
                .iter()
                .all(|t| t[0] == "COMMENT" || (t[0] == "NAME" && t[1] == class.as_str())),
            "{payload:?}: {carriers:?}"
        );
        assert_eq!(
            r["strings_with_payload"].as_array().unwrap().len(),
            0,
            "{payload:?}"
        );
        for line in r["lines12"].as_array().unwrap() {
            assert!(
                !line.as_str().unwrap().contains("injected"),
                "{payload:?}: lines 1-2 are fixed"
            );
        }
    }
}

fn resnetc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .output()
        .expect("resnetc runs")
}

#[test]
fn build_writes_python_through_the_safe_output_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("net.yaml");
    std::fs::copy(common::root().join("specs/resnet18.yaml"), &spec).expect("copy");
    let spec_s = spec.to_str().unwrap();
    let out_py = dir.path().join("model.py");
    let out = resnetc(&[
        "build",
        spec_s,
        "--target",
        "pytorch",
        "-o",
        out_py.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&out_py).expect("written");
    assert!(written.contains("class ResNet18(nn.Module):"));
    assert!(written.contains("class BasicBlock(nn.Module):"));
    // stdout gives the same bytes (deterministic).
    let printed = resnetc(&["build", spec_s, "--target", "pytorch"]);
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), written);
    // --name: a Python class name.
    let named = resnetc(&["build", spec_s, "--target", "pytorch", "--name", "MyNet"]);
    assert!(String::from_utf8(named.stdout)
        .unwrap()
        .contains("class MyNet(nn.Module):"));
    for bad in ["class", "Bottleneck", "nn", "Модель"] {
        let out = resnetc(&["build", spec_s, "--target", "pytorch", "--name", bad]);
        assert!(!out.status.success(), "--name {bad}");
    }
    // The spec itself is never replaced, a symbolic link is refused, a directory too.
    let before = std::fs::read(&spec).unwrap();
    let out = resnetc(&["build", spec_s, "--target", "pytorch", "-o", spec_s]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the spec being compiled"));
    assert_eq!(std::fs::read(&spec).unwrap(), before);
    #[cfg(unix)]
    {
        let victim = dir.path().join("victim.py");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link.py");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let out = resnetc(&[
            "build",
            spec_s,
            "--target",
            "pytorch",
            "-o",
            link.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
    let out = resnetc(&[
        "build",
        spec_s,
        "--target",
        "pytorch",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    // The default target is still Rust.
    let rust = resnetc(&["build", spec_s]);
    assert!(String::from_utf8(rust.stdout)
        .unwrap()
        .contains("pub struct ResNet18"));
}

#[test]
fn every_shipped_spec_generates() {
    let mut specs: Vec<PathBuf> = common::shipped_specs();
    specs.extend(common::zoo_specs());
    for path in specs {
        let compiled = compile_file(&path);
        let source = module_source(&compiled, &PyOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let class = PyOptions::default().class_name(&compiled);
        assert!(
            source.contains(&format!("\nclass {class}(nn.Module):\n")),
            "{}",
            path.display()
        );
    }
}

#[cfg(feature = "torch")]
#[path = "../examples/macro-demo/variants.rs"]
mod variants;

#[cfg(feature = "torch")]
mod parity {
    use super::*;
    use resnetc::ir::{HeadPool, Norm, Shape};
    use resnetc::runtime::weights::{self, LoadMode};
    use resnetc::runtime::ResNet;
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use tch::{nn, Device, Kind, Tensor};

    use super::variants;

    const TOLERANCE: f64 = 1e-4;
    const SEED: i64 = 20_261_130;

    /// Every network of the check: (label, compiled at its spec's input).
    fn networks() -> Vec<(String, resnetc::Compiled)> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = common::shipped_specs()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.extend(common::zoo_specs());
        for demo in ["mixed-features", "option-c", "preact-flatten"] {
            paths.push(common::root().join(format!("examples/macro-demo/specs/{demo}.yaml")));
        }
        for p in paths {
            let rel = p
                .strip_prefix(common::root())
                .unwrap_or(&p)
                .display()
                .to_string();
            out.push((rel, compile_file(&p)));
        }
        for (name, compiled) in variants::all(&common::root()) {
            if [
                "ecaresnet26",
                "resnet-rs-like",
                "preact-gn-blur",
                "cifar-eca-mixed",
            ]
            .contains(&name)
            {
                out.push((format!("variant {name}"), compiled));
            }
        }
        out
    }

    /// A small input where the head pools globally (at most 64x64), the spec's own size
    /// where it flattens.
    fn test_input(net: &resnetc::valid::Network) -> Shape {
        let i = net.input;
        match &net.head {
            Some(h) if h.pool == HeadPool::Flatten => i,
            _ => Shape::new(i.c, i.h.min(64), i.w.min(64)),
        }
    }

    fn randomize_norms(vs: &nn::VarStore, net: &resnetc::valid::Network) {
        let vars = vs.variables();
        tch::no_grad(|| {
            for n in net.norms() {
                let get = |v: &str| {
                    vars.get(&format!("{}.{v}", n.name))
                        .map(Tensor::shallow_clone)
                };
                if let Some(mut w) = get("weight") {
                    let _ = w.uniform_(0.5, 1.5);
                }
                if let Some(mut b) = get("bias") {
                    let _ = b.uniform_(-0.2, 0.2);
                }
                if n.norm == Norm::Batch {
                    if let Some(mut m) = get("running_mean") {
                        let _ = m.uniform_(-0.2, 0.2);
                    }
                    if let Some(mut v) = get("running_var") {
                        let _ = v.uniform_(0.5, 1.5);
                    }
                }
            }
        });
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        let a = a.to_kind(Kind::Double);
        let b = b.to_kind(Kind::Double);
        let scale = b.abs().max().double_value(&[]).max(1e-30);
        (a - b).abs().max().double_value(&[]) / scale
    }

    #[test]
    fn generated_pytorch_matches_the_runtime() {
        let started = std::time::Instant::now();
        // Gigabytes of weights pass through here, one network at a time: memory-backed
        // /dev/shm where there is one keeps them off the disk.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
        };
        let dir = tempfile::Builder::new()
            .prefix("resnetc-pytorch-parity")
            .tempdir_in(base)
            .expect("temp dir");
        let mut child = Command::new(common::venv_python())
            .arg(common::root().join("tests/pytorch_driver.py"))
            // Inductor compiles cifar-resnet20 in this process instead of starting a pool of
            // workers whose reader thread stays behind: torch.jit.script of a later network
            // once failed inside torch's own Conv2d ("builtin cannot be used as a value"),
            // and scripting is not thread-safe.
            .env("TORCHINDUCTOR_COMPILE_THREADS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("resnetc's venv python (run ./scripts/setup.sh)");
        let mut to_py = child.stdin.take().expect("stdin");
        let mut from_py = BufReader::new(child.stdout.take().expect("stdout"));
        let mut failures = Vec::new();
        let mut worst = (0.0f64, String::new());
        for (i, (label, compiled)) in networks().into_iter().enumerate() {
            let t0 = std::time::Instant::now();
            let net = &compiled.network;
            let input = test_input(net);
            let mut run_compiled = compiled.clone();
            if input != net.input {
                run_compiled.model.input = input;
                let (n, _) = resnetc::valid::validate(&run_compiled.model, &run_compiled.spans)
                    .expect("small input fits");
                run_compiled.network = n;
            }
            tch::manual_seed(i as i64);
            let vs = nn::VarStore::new(Device::Cpu);
            let model = ResNet::new(&vs.root(), &run_compiled).expect("network");
            randomize_norms(&vs, net);
            let stem = format!("n{i}");
            let w = dir.path().join(format!("{stem}.weights.safetensors"));
            weights::save(&vs, w.to_str().unwrap()).expect("save weights");
            let py = dir.path().join(format!("{stem}.py"));
            let opts = PyOptions {
                name: None,
                source: Some(label.clone()),
            };
            std::fs::write(&py, module_source(&compiled, &opts).expect("generates"))
                .expect("write py");

            let x = Tensor::randn(
                [2, input.c as i64, input.h as i64, input.w as i64],
                (Kind::Float, Device::Cpu),
            );
            let run = |train: bool| -> Vec<(String, Tensor)> {
                let _guard = tch::no_grad_guard();
                if model.is_backbone() {
                    model.f_features_t(&x, train).expect("features")
                } else {
                    vec![(
                        "logits".to_string(),
                        model.f_forward_t(&x, train).expect("forward"),
                    )]
                }
            };
            let eval = run(false);
            tch::manual_seed(SEED);
            let train = run(true);
            let mut io = vec![("input".to_string(), x.shallow_clone())];
            for (mode, ys) in [("eval", &eval), ("train", &train)] {
                io.extend(
                    ys.iter()
                        .map(|(n, t)| (format!("{mode}.{n}"), t.shallow_clone())),
                );
            }
            let io_path = dir.path().join(format!("{stem}.io.safetensors"));
            weights::write_tensors(io_path.to_str().unwrap(), &io).expect("io");
            let after = dir.path().join(format!("{stem}.after.safetensors"));
            let job = serde_json::json!({
                "label": label,
                "module": format!("resnetc_generated_{i}"),
                "py": py,
                "class": opts.class_name(&compiled),
                "weights": w,
                "io": io_path,
                "after": after,
                "seed": SEED,
                "compile": label == "specs/cifar-resnet20.yaml",
                "init_check": match label.as_str() {
                    "specs/resnet50.yaml" => Some("kaiming_normal"),
                    "specs/article-pytorch.yaml" => Some("xavier_uniform"),
                    _ => None,
                },
            });
            writeln!(to_py, "{job}").expect("to python");
            to_py.flush().expect("flush");
            let mut line = String::new();
            from_py.read_line(&mut line).expect("from python");
            let r: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{label}: {e}: {line:?}"));
            if let Some(e) = r.get("error") {
                failures.push(format!("{label}: {e}"));
                continue;
            }
            let mut fail = |what: String| failures.push(format!("{label}: {what}"));
            if let Some(p) = r.get("init_problems") {
                if p.as_array().is_none_or(|a| !a.is_empty()) {
                    fail(format!("initialization: {p}"));
                }
            }
            let totals = net.totals;
            if r["trainable"].as_u64() != Some(totals.trainable_params) {
                fail(format!(
                    "trainable {} != table {}",
                    r["trainable"], totals.trainable_params
                ));
            }
            if r["statistics"].as_u64() != Some(totals.non_trainable_params) {
                fail(format!(
                    "BN statistics {} != table {}",
                    r["statistics"], totals.non_trainable_params
                ));
            }
            let mut max_diff = 0.0f64;
            for (k, d) in r["diffs"].as_object().expect("diffs") {
                let d = d.as_f64().unwrap_or(f64::INFINITY);
                max_diff = max_diff.max(d);
                if d > TOLERANCE {
                    fail(format!("{k}: relative diff {d:e}"));
                }
            }
            let script = r["script_diff"].as_f64().unwrap_or(f64::INFINITY);
            if script > TOLERANCE {
                fail(format!("torch.jit.script diff {script:e}"));
            }
            if let Some(c) = r.get("compile_diff") {
                let c = c.as_f64().unwrap_or(f64::INFINITY);
                if c > TOLERANCE {
                    fail(format!("torch.compile diff {c:e}"));
                }
            }
            // The other way round: the model's state_dict after its training step loads
            // strictly into the runtime and equals the runtime's after the same step.
            let back = nn::VarStore::new(Device::Cpu);
            let _fresh = ResNet::new(&back.root(), &run_compiled).expect("network");
            match weights::load(&back, after.to_str().unwrap(), LoadMode::Strict) {
                Ok(report) if report.is_exact() => {
                    let mine = vs.variables();
                    for (name, t) in back.variables() {
                        let d = if t.kind() == Kind::Int64 {
                            f64::from(u8::from(!t.equal(&mine[&name])))
                        } else {
                            max_rel(&t, &mine[&name])
                        };
                        if d > TOLERANCE {
                            fail(format!("state_dict after training: {name} differs ({d:e})"));
                        }
                    }
                }
                Ok(report) => fail(format!("strict load back is not exact: {report:?}")),
                Err(e) => fail(format!("strict load back: {e}")),
            }
            let _ = std::fs::remove_file(&after);
            let _ = std::fs::remove_file(&io_path);
            if max_diff > worst.0 {
                worst = (max_diff, label.clone());
            }
            eprintln!(
                "pytorch {label:<44} {}x{}x{} max rel diff {max_diff:.1e} (script {script:.1e}{}) python {:>5}s total {:.1}s",
                input.c,
                input.h,
                input.w,
                r.get("compile_diff").map(|c| format!(", compile {:.1e}", c.as_f64().unwrap_or(f64::NAN))).unwrap_or_default(),
                r["seconds"],
                t0.elapsed().as_secs_f64()
            );
        }
        drop(to_py);
        let _ = child.wait();
        eprintln!(
            "pytorch: worst {:.1e} ({}), {:.0}s in all",
            worst.0,
            worst.1,
            started.elapsed().as_secs_f64()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The Rust-side audit (the fuzz harness's) accepts every shipped spec's file and the hostile
/// ones, and catches spec text in code.
#[test]
fn audit_source_accepts_generated_files_and_catches_code() {
    let mut compiled: Vec<(String, resnetc::Compiled)> = common::shipped_specs()
        .into_iter()
        .chain(common::zoo_specs())
        .map(|p| (p.display().to_string(), compile_file(&p)))
        .collect();
    compiled.extend(
        PAYLOADS
            .iter()
            .map(|p| ((*p).to_string(), mixed_features(p))),
    );
    for (path, c) in &compiled {
        let opts = PyOptions {
            name: None,
            source: Some(path.clone()),
        };
        let source = module_source(c, &opts).expect("generates");
        let mut texts: Vec<&str> = vec![path, &c.model.name];
        texts.extend(c.model.stages.iter().map(|s| s.name.as_str()));
        resnetc::back::pytorch::audit_source(&source, &opts.class_name(c), &texts)
            .unwrap_or_else(|e| panic!("{path:?}: {e:?}"));
    }
    let (path, c) = &compiled[0];
    let opts = PyOptions {
        name: None,
        source: Some(path.clone()),
    };
    let source = module_source(c, &opts).expect("generates");
    let class = opts.class_name(c);
    let bad = source.replace(
        "        super().__init__()\n",
        "        super().__init__()\n        x = 'injected\u{202e}'\n",
    );
    assert!(resnetc::back::pytorch::audit_source(&bad, &class, &[]).is_err());
    let bad = source.replace("# -*- coding: utf-8 -*-", "# coding: unicode_escape");
    assert!(resnetc::back::pytorch::audit_source(&bad, &class, &[]).is_err());
    let bad = source.replacen("import torch\n", "import torch\nos.system('net.yaml')\n", 1);
    assert!(
        resnetc::back::pytorch::audit_source(&bad, &class, &["os.system('net.yaml')"]).is_err()
    );
}
