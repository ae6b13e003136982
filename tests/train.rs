//! Training: learning on a small Fashion-MNIST subset, reports, exact resume, data errors.
//! Needs the data of scripts/fetch-data.sh (in $RESNETC_HOME/data, default
//! ~/.cache/resnetc/data).
#![cfg(feature = "torch")]

mod common;
use resnetc::train::{
    self, metrics, DataError, DataSource, Dataset, Schedule, Split, TrainError, TrainOptions,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn compiled(spec: &str) -> resnetc::Compiled {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(spec);
    let text = std::fs::read_to_string(&path).unwrap();
    let file = resnetc::span::SourceFile::new(spec, text, resnetc::span::Syntax::Yaml);
    resnetc::compile(&file).expect("a shipped spec is valid")
}

/// A fresh, empty folder for one test, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("train-test", name)
}

fn fashion_mnist(limit_train: usize, limit_test: usize) -> (Arc<Dataset>, Arc<Dataset>) {
    let source: DataSource = "fashion-mnist".parse().unwrap();
    let load = |split, limit| {
        source
            .load(split, Some(limit), (28, 28), 1)
            .unwrap_or_else(|e| panic!("Fashion-MNIST is needed (run scripts/fetch-data.sh): {e}"))
    };
    (
        Arc::new(load(Split::Train, limit_train)),
        Arc::new(load(Split::Test, limit_test)),
    )
}

/// Training tests run one at a time: two cores are all there is, and each test's speed
/// should not depend on the others.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn quiet(out: &Path) -> TrainOptions {
    TrainOptions {
        progress: false,
        summary: false,
        spec: "fmnist-resnet20".into(),
        data: "fashion-mnist".into(),
        ..TrainOptions::new(out)
    }
}

#[test]
fn one_epoch_on_2000_images_beats_chance_and_writes_reports() {
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(2000, 1000);
    let out = scratch("learn");
    // 63 steps, enough for BN's running statistics (momentum 0.1) to settle for testing.
    // PyTorch eager reaches about 0.51 test accuracy with these settings (resnetc 0.55).
    let opts = TrainOptions {
        epochs: 1,
        batch_size: 32,
        momentum: 0.9,
        lr: 0.02,
        ..quiet(&out)
    };
    let c = compiled("fmnist-resnet20.yaml");
    let report = train::train_spec(&c, train_set, test_set, &opts).unwrap();
    let m = report.history[0];
    assert!(
        m.test_acc > 0.35,
        "one epoch on 2000 images should beat chance (0.10) widely: {m:?}"
    );
    assert!(m.train_loss.is_finite() && m.examples_per_sec > 0.0);

    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,train_loss,train_acc,test_acc,examples_per_sec,seconds\n"),
        "{csv}"
    );
    let rows = metrics::parse_csv(&csv).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].epoch, 1);
    assert!((rows[0].test_acc - m.test_acc).abs() < 1e-6);
    let png = std::fs::read(out.join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, at bytes 16..24.
    let (w, h) = (
        u32::from_be_bytes(png[16..20].try_into().unwrap()),
        u32::from_be_bytes(png[20..24].try_into().unwrap()),
    );
    assert!(w >= 320 && h >= 200, "{w}x{h}");
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for label in ["train loss", "train acc", "test acc", "epoch"] {
        assert!(svg.contains(label), "curves.svg lacks `{label}`");
    }

    // The weights carry torchvision's names and load back for `resnetc eval`.
    let weights = tch::Tensor::read_safetensors(out.join("weights.safetensors")).unwrap();
    let names: Vec<&str> = weights.iter().map(|(n, _)| n.as_str()).collect();
    for n in [
        "conv1.weight",
        "bn1.running_var",
        "layer3.2.bn2.bias",
        "fc.weight",
    ] {
        assert!(
            names.contains(&n),
            "weights.safetensors lacks `{n}`: {names:?}"
        );
    }
    let eval = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args([
            "eval",
            "specs/fmnist-resnet20.yaml",
            "--data",
            "fashion-mnist",
            "--limit-test",
            "300",
            "--device",
            "cpu",
        ])
        .arg("--weights")
        .arg(out.join("weights.safetensors"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&eval.stdout);
    assert!(
        eval.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    assert!(stdout.starts_with("test accuracy 0."), "{stdout}");
    for class in ["T-shirt/top", "Ankle boot", "recall"] {
        assert!(stdout.contains(class), "{stdout}");
    }

    // Training into a finished run without --resume is refused; nothing is overwritten.
    let again =
        train::train_spec(&c, fashion_mnist(10, 10).0, fashion_mnist(10, 10).1, &opts).unwrap_err();
    assert!(matches!(again, TrainError::RunExists { .. }), "{again}");
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
        csv
    );
}

/// Two epochs straight, or one epoch, a new process state, and `--resume` to two: the
/// same metrics and the same weights, bit for bit.
#[test]
fn resume_reproduces_the_uninterrupted_run() {
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(320, 200);
    let c = compiled("fmnist-resnet20.yaml");
    let settings = |out: &Path, epochs| TrainOptions {
        epochs,
        batch_size: 64,
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        schedule: Schedule::Cosine,
        augment: "crop,flip".parse().unwrap(),
        seed: 7,
        ..quiet(out)
    };
    let straight = scratch("straight");
    let full = train::train_spec(
        &c,
        train_set.clone(),
        test_set.clone(),
        &settings(&straight, 2),
    )
    .unwrap();

    let split = scratch("split");
    // Interrupted after epoch 1 of 2 (the schedule plans for 2).
    let first = train::train_spec(
        &c,
        train_set.clone(),
        test_set.clone(),
        &TrainOptions {
            stop_after: Some(1),
            ..settings(&split, 2)
        },
    )
    .unwrap();
    assert_eq!(first.history.len(), 1);
    let resumed = train::train_spec(
        &c,
        train_set.clone(),
        test_set.clone(),
        &TrainOptions {
            resume: true,
            ..settings(&split, 2)
        },
    )
    .unwrap();
    assert_eq!(resumed.resumed_from, 1);
    assert_eq!(resumed.history.len(), 2);
    for (a, b) in full.history.iter().zip(&resumed.history) {
        assert_eq!(
            (a.epoch, a.train_loss, a.train_acc, a.test_acc),
            (b.epoch, b.train_loss, b.train_acc, b.test_acc)
        );
    }
    let columns = |dir: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        text.lines()
            .map(|l| l.split(',').take(4).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(columns(&straight), columns(&split));
    let a = tch::Tensor::read_safetensors(straight.join("weights.safetensors")).unwrap();
    let b: std::collections::HashMap<_, _> =
        tch::Tensor::read_safetensors(split.join("weights.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "`{name}` differs after resume");
    }

    // Resuming with other settings is refused, naming them.
    let err = train::train_spec(
        &c,
        train_set,
        test_set,
        &TrainOptions {
            resume: true,
            lr: 0.2,
            ..settings(&split, 3)
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("lr: 0.1 -> 0.2"), "{err}");
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

/// A corrupt or truncated data file gives the documented error, naming the file, from
/// the library and from `resnetc train`.
#[test]
fn corrupt_or_truncated_data_files_are_reported() {
    let home = scratch("corrupt");
    let dir = home.join("data/fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    // Test split: 3 images promised, 2 present.
    write(
        "t10k-images-idx3-ubyte",
        &idx(0x803, &[3, 28, 28], &[0; 2 * 784]),
    );
    write("t10k-labels-idx1-ubyte", &idx(0x801, &[3], &[0, 1, 2]));
    // Train split: labels file with an images magic number.
    write(
        "train-images-idx3-ubyte",
        &idx(0x803, &[1, 28, 28], &[0; 784]),
    );
    write("train-labels-idx1-ubyte", &idx(0x803, &[1, 1, 1], &[0]));
    let source = DataSource::FashionMnist {
        root: home.join("data"),
    };

    let err = source.load(Split::Test, None, (28, 28), 1).unwrap_err();
    assert!(
        matches!(err, DataError::Truncated { expected, found, .. } if expected == 16 + 3 * 784 && found == 16 + 2 * 784),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "data file `{}` is truncated: its header promises 2368 bytes, it holds 1584",
            dir.join("t10k-images-idx3-ubyte").display()
        )
    );
    let err = source.load(Split::Train, None, (28, 28), 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not an IDX labels file: magic number 0x00000803, expected 0x00000801"),
        "{err}"
    );

    // Missing files name the fetch script.
    let err = DataSource::Mnist {
        root: home.join("data"),
    }
    .load(Split::Test, None, (28, 28), 1)
    .unwrap_err();
    assert!(
        matches!(err, DataError::Missing { .. })
            && err.to_string().contains("scripts/fetch-data.sh"),
        "{err}"
    );

    // The CLI prints the cause and exits with the I/O status.
    let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args([
            "train",
            "specs/fmnist-resnet20.yaml",
            "--data",
            "fashion-mnist",
            "--device",
            "cpu",
            "--out",
        ])
        .arg(home.join("run"))
        .env("RESNETC_HOME", &home)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot load the training set of fashion-mnist"),
        "{stderr}"
    );
    assert!(
        stderr.contains("train-labels-idx1-ubyte` is not an IDX labels file"),
        "{stderr}"
    );
    assert!(
        !home.join("run").exists(),
        "nothing is written when the data cannot be read"
    );
}

/// An image folder: one subfolder per class; every tenth image is held out for testing.
#[test]
fn image_folders_list_classes_and_stream_images() {
    let dir = scratch("folder");
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..10 {
            let img = tch::Tensor::full(
                [3, 12, 16],
                (c * 100 + i * 10) as i64,
                (tch::Kind::Uint8, tch::Device::Cpu),
            );
            tch::vision::image::save(&img, dir.join(class).join(format!("{i:02}.png"))).unwrap();
        }
    }
    std::fs::write(dir.join("cat/notes.txt"), "not an image").unwrap();
    let source = DataSource::Folder(dir.to_path_buf());
    let train_set = source.load(Split::Train, None, (8, 8), 3).unwrap();
    let test_set = source.load(Split::Test, None, (8, 8), 1).unwrap();
    assert_eq!(train_set.classes, vec!["cat", "dog"]);
    assert_eq!((train_set.len(), test_set.len()), (18, 2));
    assert_eq!(
        (train_set.channels, train_set.height, train_set.width),
        (3, 8, 8)
    );
    assert_eq!(test_set.channels, 1);
    assert_eq!(test_set.labels, vec![0, 1]);
    // Streamed: each image is read when its batch is prepared (resize + center crop).
    let files = test_set.files.as_ref().expect("a streamed folder");
    assert_eq!(files.paths[1], dir.join("dog/09.png"));
    let px = files
        .prepare(1, Default::default(), (0, 0), &test_set.mean, &test_set.std)
        .unwrap();
    assert_eq!(px.len(), 8 * 8);
    let grey = (190.0 / 255.0 - 0.5) / 0.5;
    assert!(px.iter().all(|v| (v - grey).abs() < 1e-6), "dog 09 is grey 190: {px:?}");
    // A class folder without images is refused, naming it (as torchvision's ImageFolder).
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let err = source.load(Split::Train, None, (8, 8), 3).unwrap_err();
    assert!(matches!(&err, DataError::EmptyClass { path } if path.ends_with("empty")), "{err}");
    let empty = scratch("empty-folder");
    let err = DataSource::Folder(empty.to_path_buf())
        .load(Split::Train, None, (8, 8), 3)
        .unwrap_err();
    assert!(matches!(err, DataError::NoClasses { .. }), "{err}");
}

/// The zoo's constructs train: a small network with a deep stem, a blurred stem pool,
/// GroupNorm, squeeze-and-excitation, ECA, anti-aliased strides, ResNet-D projections and
/// stochastic depth learns Fashion-MNIST well above chance (0.1) in three short epochs.
/// A small network with the zoo's constructs: GroupNorm, drop-path, a deep stem, an
/// anti-aliased stem pool and blocks, ResNet-D projections, SE and ECA.
fn zoo_tiny() -> resnetc::Compiled {
    zoo_tiny_with("{kind: group, groups: 4}")
}

/// zoo-tiny with another `norm:` (e.g. `{kind: batch}`).
fn zoo_tiny_with(norm: &str) -> resnetc::Compiled {
    let spec = format!(
        "name: zoo-tiny\n\
                input: [1, 28, 28]\n\
                norm: {norm}\n\
                drop_path_rate: 0.1\n\
                stem:\n  convs:\n    - {{filters: 8, kernel: 3, stride: 1, padding: 1}}\n    - {{filters: 16, kernel: 3, stride: 1, padding: 1}}\n  bn: true\n  relu: true\n  pool: {{kind: max, kernel: 3, stride: 2, padding: 1, anti_alias: blur}}\n\
                defaults:\n  block: basic\n  projection: {{pool: avg}}\n  anti_alias: blur\n\
                stages:\n  - {{stage: conv2_x, repeat: 1, filters: [16, 16], stride: 1, attention: se}}\n  - {{stage: conv3_x, repeat: 2, filters: [32, 32], stride: 2, attention: eca}}\n\
                head: {{pool: avg, classes: 10}}\n"
    );
    let file = resnetc::span::SourceFile::new("zoo-tiny.yaml", spec, resnetc::span::Syntax::Yaml);
    resnetc::compile(&file).unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
}

/// The model and momentum tensors of a run's checkpoint, by name.
fn checkpoint_tensors(dir: &Path) -> Vec<(String, tch::Tensor)> {
    let mut t: Vec<_> = tch::Tensor::read_safetensors(dir.join("checkpoint.safetensors"))
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n.starts_with("model.") || n.starts_with("momentum."))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// Every speed-up of the step switched on reaches the weights of the plain step: after
/// 50 steps of SGD with momentum and weight decay in float64, on a network with option-A
/// shortcuts and on one with the zoo's constructs (GroupNorm, SE, ECA, blur, drop-path, a
/// deep stem), also with batch norm (where `fused-bn` applies). In-place ReLU/addition and device-side metrics change nothing at all; the
/// other kernels round differently (by about 1e-16 after one step), which early training
/// amplifies (about 1e-10 after 50 steps here; float32 runs drift apart much further).
#[test]
fn speedups_change_how_not_what() {
    use resnetc::train::Speedups;
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(800, 16);
    let nets = [
        ("fmnist-resnet20", compiled("fmnist-resnet20.yaml")),
        ("zoo-tiny", zoo_tiny()),
        // The same with batch norm: the fused batch norm meets SE/ECA after a block's last
        // norm, average-pool projections and drop-path.
        ("zoo-tiny-bn", zoo_tiny_with("{kind: batch}")),
    ];
    let cpu = tch::Device::Cpu;
    // (speed-ups, largest relative difference allowed against none)
    let variants = [
        (Speedups::NONE, 0.0),
        (Speedups::parse("in-place,device-metrics", cpu).unwrap(), 0.0),
        (Speedups::parse("foreach-sgd,in-place", cpu).unwrap(), 1e-7),
        (Speedups::parse("fused-bn", cpu).unwrap(), 1e-7),
        (Speedups::all(cpu), 1e-7),
    ];
    for (name, c) in &nets {
        let mut runs = Vec::new();
        for (i, (s, _)) in variants.iter().enumerate() {
            let out = scratch(&format!("speedups-{name}-{i}"));
            let opts = TrainOptions {
                epochs: 1,
                batch_size: 16, // 800 / 16 = 50 steps
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 5e-4,
                float64: true,
                speedups: Some(*s),
                ..quiet(&out)
            };
            let report = train::train_spec(c, train_set.clone(), test_set.clone(), &opts).unwrap();
            runs.push((report.history[0], checkpoint_tensors(&out)));
            let _ = std::fs::remove_dir_all(&out);
        }
        let (m0, base) = &runs[0];
        for ((s, allowed), (m, tensors)) in variants.iter().zip(&runs).skip(1) {
            assert_eq!(base.len(), tensors.len());
            // Per tensor, the largest difference relative to the tensor's largest value.
            let mut worst = (0f64, String::new());
            for ((n, a), (n2, b)) in base.iter().zip(tensors) {
                assert_eq!(n, n2);
                assert_eq!(a.size(), b.size(), "`{n}`");
                let scale = f64::try_from(a.abs().max()).unwrap().max(1e-30);
                let d = f64::try_from((a - b).abs().max()).unwrap() / scale;
                if d > worst.0 || worst.1.is_empty() {
                    worst = (d, n.clone());
                }
            }
            eprintln!(
                "{name}, speed-ups {s} against none: largest relative difference {:.2e} (`{}`), train loss {} vs {}",
                worst.0, worst.1, m.train_loss, m0.train_loss
            );
            assert!(worst.0 <= *allowed, "{name} with {s}: `{}` differs by {:e} (relative)", worst.1, worst.0);
            // The epoch's loss is summed in another order with device-metrics.
            let loss_tolerance = if *allowed == 0.0 { 1e-12 } else { 1e-6 };
            assert!((m.train_loss - m0.train_loss).abs() <= loss_tolerance * m0.train_loss);
            if *allowed == 0.0 {
                assert_eq!(m.train_acc, m0.train_acc);
            }
        }
    }
}

/// The `cuda-graphs` step (fixed input tensors, the learning rate read from a tensor, the
/// sums kept in the step's own tensors) computes what the plain step does. On the CPU it
/// runs without capture, so this checks everything but the capture itself: two epochs of
/// 16 full batches and a smaller last one (which runs eagerly), a cosine schedule (a new
/// rate every step), with and without channels-last and the fused batch norm.
#[test]
fn cuda_graph_step_computes_the_plain_step() {
    use resnetc::train::{Schedule, Speedups};
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(800, 16);
    let c = compiled("fmnist-resnet20.yaml");
    let cpu = tch::Device::Cpu;
    for base in ["fused-sgd,device-metrics", "all"] {
        let mut runs = Vec::new();
        for graphs in [false, true] {
            let list = if graphs { format!("{base},cuda-graphs") } else { base.to_owned() };
            let out = scratch(&format!("graphs-{graphs}"));
            let opts = TrainOptions {
                epochs: 2,
                batch_size: 48, // 16 batches of 48 and one of 32
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 5e-4,
                schedule: Schedule::Cosine,
                float64: true,
                speedups: Some(Speedups::parse(&list, cpu).unwrap()),
                ..quiet(&out)
            };
            let report = train::train_spec(&c, train_set.clone(), test_set.clone(), &opts).unwrap();
            runs.push((report.history, checkpoint_tensors(&out)));
            let _ = std::fs::remove_dir_all(&out);
        }
        let ((plain_m, plain), (graph_m, graph)) = (&runs[0], &runs[1]);
        assert_eq!(plain.len(), graph.len());
        for ((n, a), (n2, b)) in plain.iter().zip(graph) {
            assert_eq!(n, n2);
            assert!(a.equal(b), "{base}: `{n}` differs with cuda-graphs");
        }
        for (p, g) in plain_m.iter().zip(graph_m) {
            assert_eq!(p.train_acc, g.train_acc);
            assert_eq!(p.test_acc, g.test_acc);
            // The loss is summed in another order (the fixed step keeps its own sum).
            assert!((p.train_loss - g.train_loss).abs() <= 1e-12 * p.train_loss, "{} vs {}", p.train_loss, g.train_loss);
        }
        eprintln!("{base}: identical weights, momentum and statistics with cuda-graphs; train loss {} / {}", plain_m[1].train_loss, graph_m[1].train_loss);
    }
}

#[test]
fn zoo_constructs_learn() {
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(2000, 1000);
    let out = scratch("zoo");
    let c = zoo_tiny();
    let opts = TrainOptions { epochs: 3, batch_size: 32, momentum: 0.9, lr: 0.02, ..quiet(&out) };
    let report = train::train_spec(&c, train_set, test_set, &opts).unwrap();
    let m = report.history[2];
    eprintln!("zoo-tiny: train loss {:.3}, test accuracy {:.3}", m.train_loss, m.test_acc);
    assert!(m.train_loss.is_finite());
    assert!(m.test_acc > 0.4, "test accuracy {} after three epochs", m.test_acc);
}

/// `--precision bf16` trains under bfloat16 autocast: the same run as float32 up to
/// bfloat16's rounding (the loss after 50 steps within 10%, but not equal) and the
/// checkpoint still float32.
#[test]
fn bf16_autocast_trains_like_f32() {
    let _serial = serial();
    let (train_set, test_set) = fashion_mnist(800, 100);
    let c = compiled("fmnist-resnet20.yaml");
    let mut runs = Vec::new();
    for bf16 in [false, true] {
        let out = scratch(&format!("bf16-{bf16}"));
        let opts = TrainOptions {
            epochs: 1,
            batch_size: 16,
            lr: 0.02,
            momentum: 0.9,
            bf16,
            ..quiet(&out)
        };
        let report = train::train_spec(&c, train_set.clone(), test_set.clone(), &opts).unwrap();
        let tensors = checkpoint_tensors(&out);
        assert!(tensors.iter().all(|(n, t)| n.ends_with("num_batches_tracked") || t.kind() == tch::Kind::Float));
        runs.push(report.history[0]);
        let _ = std::fs::remove_dir_all(&out);
    }
    let (f32_run, bf16_run) = (runs[0], runs[1]);
    eprintln!(
        "50 steps: train loss f32 {:.4}, bf16 {:.4}; test accuracy f32 {:.3}, bf16 {:.3}",
        f32_run.train_loss, bf16_run.train_loss, f32_run.test_acc, bf16_run.test_acc
    );
    assert!(bf16_run.train_loss.is_finite() && bf16_run.train_loss < 2.2);
    assert_ne!(bf16_run.train_loss, f32_run.train_loss, "autocast changed nothing");
    assert!((bf16_run.train_loss - f32_run.train_loss).abs() < 0.1 * f32_run.train_loss);

    // bf16 autocast and float64 exclude each other on the command line.
    let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(["train", "specs/fmnist-resnet20.yaml", "--data", "fashion-mnist"])
        .args(["--out", "unused", "--precision", "bf16", "--float64"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--precision") && stderr.contains("--float64"), "{stderr}");
}

/// `cuda-graphs` is refused on the CPU and without the speed-ups it needs, before any
/// training, naming the fix, with the usage exit status.
#[test]
fn cuda_graphs_are_refused_where_they_cannot_run() {
    for (list, device, says) in [
        ("all,cuda-graphs", "cpu", "cuda-graphs needs --device cuda"),
        ("cuda-graphs", "cpu", "needs fused-sgd and device-metrics"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_resnetc"))
            .args(["train", "specs/fmnist-resnet20.yaml", "--data", "fashion-mnist"])
            .args(["--out", "unused", "--speedups", list, "--device", device])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("bad --speedups") && stderr.contains(says), "{list}: {stderr}");
        assert!(!std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("unused").exists());
    }
}
