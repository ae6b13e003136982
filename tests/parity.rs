//! Runtime parity with torchvision, and shapes/variables against the compiler's table.
//!
//! The reference files come from `scripts/parity.py` (run with resnetc's venv python,
//! found through `RESNETC_HOME` or `~/.cache/resnetc/venv`), written to
//! `target/parity/` (or `RESNETC_PARITY_DIR`) on first use and reused afterwards.
//! Each model is loaded into [`ResNet`] from the matching shipped spec and must give
//! torchvision's logits within 1e-4 (max absolute difference, f32) in eval mode (plain and
//! with each inference pass) and in train mode (batch statistics).
//!
//! Run: `cargo test -j2 --features torch --test parity -- --nocapture` (prints the diffs).
#![cfg(feature = "torch")]

mod common;

use proptest::prelude::*;
use resnetc::ir::{
    BatchNorm, BlockKind, Conv, Head, HeadPool, Init, Model, Norm, Pool, PoolKind, Projection,
    Shape, ShortcutOption, Stage, Stem, StemPool, StrideOn,
};
use resnetc::runtime::weights::{self, LoadMode};
use resnetc::runtime::{InferenceModel, InferenceOptions, MemoryFormat, ResNet};
use resnetc::span::{SourceFile, Syntax};
use resnetc::{Compiled, Overrides};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn parity_dir() -> PathBuf {
    std::env::var_os("RESNETC_PARITY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target/parity"))
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
            let python = common::venv_python();
            let status = std::process::Command::new(&python)
                .arg(manifest().join("scripts/parity.py"))
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

fn compile_spec(spec: &str, input: Option<Shape>) -> Compiled {
    let path = manifest().join("specs").join(spec);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SourceFile::new(path.display().to_string(), text, Syntax::Yaml);
    resnetc::compile_with(
        &file,
        &Overrides {
            input,
            ..Default::default()
        },
    )
    .unwrap_or_else(|d| panic!("{spec} does not compile: {d:?}"))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "output shapes differ");
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn io_tensor(io: &[(String, Tensor)], name: &str) -> Tensor {
    io.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .unwrap_or_else(|| panic!("io file lacks `{name}`"))
}

fn check_model(name: &str, spec: &str) {
    let (weights_path, io_path) = reference(name);
    let io = weights::read_tensors(&io_path).expect("io file");
    let x = io_tensor(&io, "input");
    let size = x.size();
    let input = Shape::new(size[1] as u64, size[2] as u64, size[3] as u64);
    let compiled = compile_spec(spec, Some(input));
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ResNet::new(&vs.root(), &compiled).expect("network");
    let report =
        weights::load(&vs, &weights_path, LoadMode::Strict).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_exact());
    assert_eq!(
        report.loaded.len(),
        vs.variables().len(),
        "every variable (and num_batches_tracked) loads"
    );

    let eval_ref = io_tensor(&io, "logits_eval");
    // timm references carry their largest |logit| (eval, train): the tolerance is
    // relative to it there, absolute for torchvision's.
    let scale = io
        .iter()
        .find(|(n, _)| n == "meta_max_abs_logit")
        .map(|(_, t)| t.to_kind(Kind::Double).max().double_value(&[]).max(1.0))
        .unwrap_or(1.0);
    let tolerance = TOLERANCE * scale;
    let mut lines = Vec::new();
    let mut check = |what: &str, y: Tensor, reference: &Tensor| {
        let d = max_abs_diff(&y, reference);
        lines.push(format!("{what} {d:.2e}"));
        assert!(
            d <= tolerance,
            "{name} {what}: max abs diff {d:e} > {tolerance:e}"
        );
    };
    check(
        "eval",
        net.f_logits_t(&x, false).expect("eval forward"),
        &eval_ref,
    );
    let passes = [
        (
            "fold+nchw+fused",
            InferenceOptions {
                memory_format: MemoryFormat::Contiguous,
                ..Default::default()
            },
        ),
        (
            "fold+nhwc+fused",
            InferenceOptions {
                memory_format: MemoryFormat::ChannelsLast,
                ..Default::default()
            },
        ),
        (
            "nofold+nhwc+fused",
            InferenceOptions {
                memory_format: MemoryFormat::ChannelsLast,
                fold_bn: false,
                ..Default::default()
            },
        ),
        (
            "fold+nhwc",
            InferenceOptions {
                memory_format: MemoryFormat::ChannelsLast,
                fuse: false,
                ..Default::default()
            },
        ),
        (
            "fold+mkldnn",
            InferenceOptions {
                memory_format: MemoryFormat::Mkldnn,
                ..Default::default()
            },
        ),
        (
            "nofold+mkldnn",
            InferenceOptions {
                memory_format: MemoryFormat::Mkldnn,
                fold_bn: false,
                ..Default::default()
            },
        ),
        ("no passes", InferenceOptions::none()),
    ];
    for (what, opts) in passes {
        let fast = InferenceModel::new(&net, opts).expect("inference model");
        check(what, fast.logits(&x).expect("inference forward"), &eval_ref);
    }
    // Last: training mode updates the running statistics.
    check(
        "train",
        net.f_logits_t(&x, true).expect("train forward"),
        &io_tensor(&io, "logits_train"),
    );
    eprintln!("parity {name:<16} max abs diff: {}", lines.join(", "));
}

/// timm's zoo models (`specs/timm/`), with their own state_dicts and logits.
mod timm {
    macro_rules! timm_parity {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                let name = stringify!($name);
                super::check_model(&format!("timm-{name}"), &format!("timm/{name}.yaml"));
            }
        )*};
    }
    timm_parity!(
        resnet10t, resnet18d, resnet26d, resnet34d, resnet50c, resnet50d, resnet50s, seresnet50, resnetrs50,
        resnet50_gn, ecaresnet50d, resnetblur50, resnetaa50,
    );
}

/// torchvision's resnet50 with dilation in place of the last two strides, as a backbone
/// (`IntermediateLayerGetter` returning layer3 and layer4): the feature maps agree within
/// 1e-4 of the largest |value| in eval and train mode.
#[test]
fn resnet50_os8_backbone() {
    let (weights_path, io_path) = reference("resnet50_os8");
    let io = weights::read_tensors(&io_path).expect("io file");
    let x = io_tensor(&io, "input");
    let size = x.size();
    let compiled = compile_spec("resnet50-os8.yaml", Some(Shape::new(size[1] as u64, size[2] as u64, size[3] as u64)));
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ResNet::new(&vs.root(), &compiled).expect("network");
    let report = weights::load(&vs, &weights_path, LoadMode::Strict).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_exact());
    assert!(net.f_logits_t(&x, false).is_err(), "a backbone has no logits");
    let mut lines = Vec::new();
    for (mode, train) in [("eval", false), ("train", true)] {
        let features = {
            let _guard = tch::no_grad_guard();
            net.f_features_t(&x, train).expect("features")
        };
        let names: Vec<&str> = features.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["layer3", "layer4"]);
        for (module, y) in &features {
            let reference = io_tensor(&io, &format!("{module}_{mode}"));
            let scale = reference.abs().max().double_value(&[]).max(1.0);
            let d = max_abs_diff(y, &reference);
            lines.push(format!("{module} {mode} {d:.2e} (max {scale:.1})"));
            assert!(d <= TOLERANCE * scale, "resnet50_os8 {module} {mode}: max abs diff {d:e}");
        }
    }
    eprintln!("parity resnet50_os8 feature maps: {}", lines.join(", "));
}

#[test]
fn resnet18() {
    check_model("resnet18", "resnet18.yaml");
}

#[test]
fn resnet34() {
    check_model("resnet34", "resnet34.yaml");
}

#[test]
fn resnet50() {
    check_model("resnet50", "resnet50.yaml");
}

#[test]
fn resnet101() {
    check_model("resnet101", "resnet101.yaml");
}

#[test]
fn resnet152() {
    check_model("resnet152", "resnet152.yaml");
}

#[test]
fn resnext50_32x4d() {
    check_model("resnext50_32x4d", "resnext50-32x4d.yaml");
}

#[test]
fn wide_resnet50_2() {
    check_model("wide_resnet50_2", "wide-resnet50-2.yaml");
}

#[test]
fn article_pytorch() {
    check_model("article_pytorch", "article-pytorch.yaml");
}

/// `resnetc run` end to end: the binary reads the weights and the input from safetensors
/// files and writes torchvision's logits (eval and train mode; `--no-cudnn` changes
/// nothing on the CPU), and refuses an input the network cannot take.
#[test]
fn run_command_writes_the_reference_logits() {
    let (weights_path, io_path) = reference("article_pytorch");
    let io = weights::read_tensors(&io_path).expect("io file");
    let dir = common::scratch("run", "parity");
    let x_path = dir.join("x.safetensors").display().to_string();
    weights::write_tensors(&x_path, &[("images".into(), io_tensor(&io, "input"))]).unwrap();
    let y_path = dir.join("y.safetensors").display().to_string();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_resnetc"))
            .current_dir(manifest())
            .args([
                "run",
                "specs/article-pytorch.yaml",
                "--weights",
                &weights_path,
                "--input",
                &x_path,
                "-o",
                &y_path,
            ])
            .args(["--device", "cpu"])
            .args(extra)
            .output()
            .expect("resnetc runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (extra, reference) in [
        (&[][..], "logits_eval"),
        (&["--no-cudnn"][..], "logits_eval"),
        (&["--train-mode"][..], "logits_train"),
    ] {
        let (code, stderr) = run(extra);
        assert_eq!(code, Some(0), "resnetc run {extra:?}: {stderr}");
        let (name, y) = weights::read_tensors(&y_path).unwrap().remove(0);
        assert_eq!(name, "logits");
        let d = max_abs_diff(&y, &io_tensor(&io, reference));
        assert!(d <= TOLERANCE, "resnetc run {extra:?}: max abs diff {d:e}");
    }
    // Three channels where the spec takes one.
    weights::write_tensors(
        &x_path,
        &[(
            "images".into(),
            Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)),
        )],
    )
    .unwrap();
    let (code, stderr) = run(&[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("does not fit the network"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `resnetc predict` end to end: for a PNG, the printed top-5 classes, names and
/// probabilities are those of the network's softmax on the preprocessed image.
#[test]
fn predict_command_prints_the_top_classes() {
    let (weights_path, _) = reference("resnet18");
    let compiled = compile_spec("resnet18.yaml", None);
    let dir = common::scratch("predict", "parity");
    // A 300x260 picture with some structure: a gradient and a bright square.
    let img = (Tensor::arange(300 * 260 * 3, (Kind::Float, Device::Cpu)).view([3, 260, 300])
        * 0.37)
        .remainder(255.0);
    let _ = img.narrow(1, 60, 80).narrow(2, 100, 80).fill_(250.0);
    let png = dir.join("picture.png").display().to_string();
    tch::vision::image::save(&img.to_kind(Kind::Uint8), &png).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(
        &labels,
        (0..1000).map(|i| format!("name{i}\n")).collect::<String>(),
    )
    .unwrap();

    // The random network's softmax is nearly flat (about 0.2% each); a sharper head makes
    // the order of the top five stable against the inference passes' rounding.
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ResNet::new(&vs.root(), &compiled).expect("network");
    weights::load(&vs, &weights_path, LoadMode::Strict).unwrap();
    tch::no_grad(|| {
        let mut fc = vs.variables()["fc.weight"].shallow_clone();
        let _ = fc.f_mul_scalar_(40.0).unwrap();
    });
    let sharp = dir.join("sharp.safetensors").display().to_string();
    weights::save(&vs, &sharp).unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .current_dir(manifest())
        .args([
            "predict",
            "specs/resnet18.yaml",
            "--weights",
            &sharp,
            "--device",
            "cpu",
            "--labels",
        ])
        .arg(&labels)
        .arg(&png)
        .output()
        .expect("resnetc runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");

    let x = resnetc::runtime::image::Preprocess::imagenet(compiled.network.input)
        .load(&png)
        .unwrap()
        .unsqueeze(0);
    let probs = net.f_logits_t(&x, false).unwrap().softmax(-1, Kind::Float);
    let (top_p, top_i) = probs.topk(5, -1, true, true);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert_eq!(lines[0], png);
    for j in 0..5 {
        let class = top_i.int64_value(&[0, j]);
        let p = 100.0 * top_p.double_value(&[0, j]);
        // `  1.  77.91%  class 188  name188`; the percentage within its printed rounding.
        let words: Vec<&str> = lines[j as usize + 1].split_whitespace().collect();
        assert_eq!(words.len(), 5, "{stdout}");
        assert_eq!(words[0], format!("{}.", j + 1));
        let printed: f64 = words[1].trim_end_matches('%').parse().unwrap();
        assert!(
            (printed - p).abs() <= 0.0051,
            "{printed} vs {p:.4}\n{stdout}"
        );
        assert_eq!(
            words[2..],
            [
                "class".to_string(),
                class.to_string(),
                format!("name{class}")
            ],
            "{stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Saving and loading round-trips every variable; strict loading lists every problem;
/// partial loading skips them.
#[test]
fn weights_round_trip_and_mismatch_report() {
    let compiled = compile_spec("resnet18.yaml", None);
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ResNet::new(&vs.root(), &compiled).expect("network");
    let dir = common::scratch("parity", "parity");
    let path = dir.join("r18.safetensors").display().to_string();
    weights::save(&vs, &path).expect("save");
    let saved = weights::read_tensors(&path).unwrap();
    assert_eq!(
        saved.len(),
        122,
        "torchvision's resnet18 state_dict has 122 keys"
    );

    let vs2 = nn::VarStore::new(Device::Cpu);
    let _net2 = ResNet::new(&vs2.root(), &compiled).expect("network");
    weights::load(&vs2, &path, LoadMode::Strict).expect("strict load of a saved file");
    let a = vs.variables();
    for (k, v) in vs2.variables() {
        assert!(
            max_abs_diff(&v.to_kind(Kind::Double), &a[&k].to_kind(Kind::Double)) == 0.0,
            "{k}"
        );
    }

    // A 10-class head, a stray key, a missing key: strict reports all of them at once.
    let ten = compiled_with_classes(10);
    let vs3 = nn::VarStore::new(Device::Cpu);
    let _net3 = ResNet::new(&vs3.root(), &ten).expect("network");
    let mut tensors: Vec<(String, Tensor)> = saved
        .into_iter()
        .filter(|(n, _)| n != "layer1.0.conv1.weight")
        .collect();
    tensors.push((
        "extra.weight".into(),
        Tensor::zeros([3], (Kind::Float, Device::Cpu)),
    ));
    let err = weights::load_tensors(
        &vs3,
        "test",
        tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect(),
        LoadMode::Strict,
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "layer1.0.conv1.weight",
        "extra.weight",
        "fc.weight: network [10, 512]",
        "fc.bias",
    ] {
        assert!(err.contains(needle), "`{needle}` missing from:\n{err}");
    }
    let report =
        weights::load_tensors(&vs3, "test", tensors, LoadMode::Partial).expect("partial load");
    assert_eq!(report.missing, vec!["layer1.0.conv1.weight".to_string()]);
    assert_eq!(report.unexpected, vec!["extra.weight".to_string()]);
    assert_eq!(report.mismatched.len(), 2);
    assert_eq!(report.loaded.len(), 122 - 1 - 2);
    let _ = std::fs::remove_dir_all(&dir);
}

fn compiled_with_classes(classes: u64) -> Compiled {
    let path = manifest().join("specs/resnet18.yaml");
    let file = SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(&path).unwrap(),
        Syntax::Yaml,
    );
    resnetc::compile_with(
        &file,
        &Overrides {
            classes: Some(classes),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Pickled checkpoints are refused without being read.
#[test]
fn pickles_are_refused() {
    let dir = common::scratch("pickle", "parity");
    let zip = dir.join("model.pt");
    std::fs::write(&zip, b"PK\x03\x04rest of a torch.save archive").unwrap();
    let e = weights::read_tensors(&zip.display().to_string()).unwrap_err();
    assert!(e.to_string().contains("pickled"), "{e}");
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    assert!(weights::read_tensors(&garbage.display().to_string()).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- property test: random valid specs ------------------------------------------------

fn arb_block() -> impl Strategy<Value = BlockKind> {
    prop_oneof![
        Just(BlockKind::Basic),
        Just(BlockKind::Bottleneck),
        Just(BlockKind::PreActBasic),
        Just(BlockKind::PreActBottleneck),
        Just(BlockKind::Plain),
        Just(BlockKind::PlainBottleneck),
    ]
}

/// Channel counts are multiples of 4 so that groups 1, 2 and 4 always divide them.
fn arb_channels() -> impl Strategy<Value = u64> {
    prop_oneof![Just(4u64), Just(8), Just(12), Just(16)]
}

fn arb_stage() -> impl Strategy<Value = Stage> {
    (
        arb_block(),
        1u64..=2,
        proptest::collection::vec(arb_channels(), 3),
        1u64..=2,
        any::<bool>(),
        prop_oneof![
            3 => Just(ShortcutOption::B),
            2 => Just(ShortcutOption::A),
            2 => Just(ShortcutOption::C),
            1 => Just(ShortcutOption::Identity)
        ],
        (any::<bool>(), any::<bool>()),
        prop_oneof![Just(1u64), Just(2), Just(4)],
        any::<bool>(),
    )
        .prop_map(
            |(block, repeat, f, stride, v1, shortcut, (pbn, pbias), groups, bias)| Stage {
                name: String::new(),
                block,
                repeat,
                filters: f[..block.arity()].to_vec(),
                stride,
                stride_on: if v1 { StrideOn::Conv1 } else { StrideOn::Conv2 },
                shortcut,
                projection: Projection {
                    bn: pbn,
                    bias: pbias,
                    ..Projection::default()
                },
                groups,
                bias: vec![bias; block.arity()],
                ..Stage::new("", block, repeat, &f[..block.arity()], stride)
            },
        )
}

fn arb_model() -> impl Strategy<Value = Model> {
    let input = (
        prop_oneof![Just(1u64), Just(3), Just(4)],
        6u64..=40,
        6u64..=40,
    );
    let stem = (
        arb_channels(),
        prop_oneof![Just(1u64), Just(3), Just(5), Just(7)],
        1u64..=2,
        any::<bool>(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        proptest::option::of((
            any::<bool>(),
            2u64..=3,
            1u64..=2,
            any::<bool>(),
            any::<bool>(),
        )),
    );
    let head = (
        any::<bool>(),
        0u8..3,
        any::<bool>(),
        1u64..=10,
        any::<bool>(),
    );
    let misc = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>());
    (
        input,
        stem,
        proptest::collection::vec(arb_stage(), 1..=3),
        head,
        misc,
    )
        .prop_map(
            |(
                (c, h, w),
                (sf, sk, ss, spad, (sbias, sbn, srelu), pool),
                mut stages,
                (norm, pool_kind, dropout, classes, softmax),
                (xavier, zero, eps, mom),
            )| {
                for (i, s) in stages.iter_mut().enumerate() {
                    s.name = format!("conv{}_x", i + 2);
                }
                let last = stages.last().map(|s| s.block);
                Model {
                    name: "prop".into(),
                    input: Shape::new(c, h, w),
                    stem: Stem {
                        convs: vec![Conv {
                            filters: sf,
                            kernel: sk,
                            stride: ss,
                            padding: if spad { sk / 2 } else { 0 },
                            bias: sbias,
                        }],
                        bn: sbn,
                        relu: srelu,
                        pool: pool.map_or(StemPool::None, |(max, k, s, p, ceil)| {
                            StemPool::Pool(Pool {
                                kind: if max { PoolKind::Max } else { PoolKind::Avg },
                                kernel: k,
                                stride: s,
                                padding: if p { k / 2 } else { 0 },
                                ceil_mode: ceil,
                                anti_alias: None,
                            })
                        }),
                    },
                    stages,
                    head: Some(Head {
                        norm: norm || last.is_some_and(BlockKind::is_preact),
                        pool: [HeadPool::Avg, HeadPool::Max, HeadPool::Flatten][pool_kind as usize],
                        dropout: if dropout { 0.5 } else { 0.0 },
                        in_features: None,
                        classes,
                        softmax,
                    }),
                    features: Vec::new(),
                    init: if xavier {
                        Init::XavierUniform
                    } else {
                        Init::KaimingNormal
                    },
                    zero_init_residual: zero,
                    batch_norm: BatchNorm {
                        eps: if eps { 1e-3 } else { 1e-5 },
                        momentum: if mom { 0.01 } else { 0.1 },
                    },
                    norm: Norm::Batch,
                    drop_path_rate: 0.0,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, max_global_rejects: 20_000, ..ProptestConfig::default() })]

    /// Every layer's output shape and every variable's numel that libtorch produces equal
    /// the compiler's table; every inference pass computes the same logits.
    #[test]
    fn random_specs_match_the_table(model in arb_model()) {
        let spans = resnetc::lower::SpanTable::default();
        let checked = resnetc::valid::validate(&model, &spans);
        prop_assume!(checked.is_ok());
        let Ok((network, warnings)) = checked else { unreachable!() };
        let compiled = Compiled { model: model.clone(), spans, network, warnings };
        let net_plan = &compiled.network;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &compiled).expect("network");

        // Variables: names, numels, totals.
        let vars = vs.variables();
        let mut expected = std::collections::BTreeMap::new();
        for c in net_plan.convs() {
            expected.insert(format!("{}.weight", c.name), c.out_channels * (c.in_channels / c.groups) * c.kernel * c.kernel);
            if c.bias {
                expected.insert(format!("{}.bias", c.name), c.out_channels);
            }
        }
        for bn in net_plan.batch_norms() {
            for v in ["weight", "bias", "running_mean", "running_var"] {
                expected.insert(format!("{}.{v}", bn.name), bn.channels);
            }
            expected.insert(format!("{}.num_batches_tracked", bn.name), 1);
        }
        let fc = &net_plan.head.as_ref().expect("a classifier").fc;
        expected.insert("fc.weight".into(), fc.in_features * fc.out_features);
        expected.insert("fc.bias".into(), fc.out_features);
        let actual: std::collections::BTreeMap<String, u64> = vars.iter().map(|(k, v)| (k.clone(), v.numel() as u64)).collect();
        prop_assert_eq!(&actual, &expected);
        let trainable: u64 = vs.trainable_variables().iter().map(|t| t.numel() as u64).sum();
        prop_assert_eq!(trainable, net_plan.totals.trainable_params);
        let stats: u64 = vars.iter().filter(|(k, _)| k.ends_with("running_mean") || k.ends_with("running_var")).map(|(_, v)| v.numel() as u64).sum();
        prop_assert_eq!(stats, net_plan.totals.non_trainable_params);

        // Layer by layer: the shapes libtorch produces are the table's.
        let i = model.input;
        let x = Tensor::randn([2, i.c as i64, i.h as i64, i.w as i64], (Kind::Float, Device::Cpu));
        let shapes = net.layer_shapes(&x).expect("forward");
        let table: Vec<(String, Vec<i64>)> = net_plan.layers.iter().map(|r| (r.name.clone(), r.output.iter().map(|&d| d as i64).collect())).collect();
        prop_assert_eq!(shapes, table);

        // Randomize BN statistics, then every inference pass gives the plain eval logits.
        tch::no_grad(|| {
            for (k, mut v) in vs.variables() {
                if k.ends_with("running_var") || (k.ends_with("weight") && k.contains("bn")) {
                    let _ = v.uniform_(0.5, 1.5);
                } else if k.ends_with("running_mean") || (k.ends_with("bias") && k.contains("bn")) {
                    let _ = v.uniform_(-0.2, 0.2);
                }
            }
        });
        let plain = net.f_forward_t(&x, false).expect("eval");
        prop_assert_eq!(plain.size(), vec![2, fc.out_features as i64]);
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast, MemoryFormat::Mkldnn] {
            for (fold_bn, fuse) in [(true, true), (false, true), (true, false)] {
                let opts = InferenceOptions { memory_format: format, fold_bn, fuse, ..Default::default() };
                let fast = InferenceModel::new(&net, opts).expect("inference");
                let y = fast.forward(&x).expect("inference forward");
                let d = max_abs_diff(&y, &plain);
                let scale = plain.abs().max().double_value(&[]).max(1.0);
                prop_assert!(d <= 1e-4 * scale, "{format} fold {fold_bn} fuse {fuse}: diff {d:e} (scale {scale})");
            }
        }
        let train = net.f_forward_t(&x, true).expect("train");
        prop_assert_eq!(train.size(), vec![2, fc.out_features as i64]);
    }
}
