//! `resnetc train SPEC --data fashion-mnist|mnist|DIR --out RUN_DIR [...]`
use super::{compile_or_report, CliError, EXIT_SPEC};
use super::{outln, say};
use crate::train::folder::OnBadImage;
use crate::train::{self, Augment, DataSource, Dataset, Schedule, Split, TrainOptions};
use crate::{Compiled, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Per-channel mean and standard deviation measured on a data set.
type MeanStd = (Vec<f32>, Vec<f32>);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Data set: fashion-mnist, mnist (from scripts/fetch-data.sh), or an image folder
    /// (DIR/<class>/*.png|jpg, or DIR/train/<class>/ beside DIR/test/<class>/).
    #[arg(long, value_name = "fashion-mnist|mnist|DIR")]
    data: DataSource,
    /// Run folder: metrics.csv, curves.png/svg, checkpoint.safetensors, weights.safetensors.
    #[arg(long, value_name = "RUN_DIR")]
    out: PathBuf,
    /// Total epochs (with --resume, the run continues up to this many).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    epochs: u64,
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: u64,
    /// Base learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = non_negative)]
    lr: f64,
    /// SGD momentum (0: plain SGD, as the article).
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    weight_decay: f64,
    /// Learning-rate schedule: constant, step (/10 at 50% and 75% of the epochs) or cosine
    /// (to 0, per step).
    #[arg(long, value_enum, default_value_t = Schedule::Constant)]
    schedule: Schedule,
    /// Resize images to NxN instead of the spec's input size (the network is checked for it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    resize: Option<u64>,
    /// Seed of initialization, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, cuda:N or auto (CUDA when available).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Train on N evenly spaced training examples only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit_train: Option<u64>,
    /// Test on N evenly spaced test examples only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit_test: Option<u64>,
    /// Training augmentation: crop (random crop, 4-pixel padding), flip (horizontal), or both: crop,flip.
    #[arg(long, value_name = "LIST", default_value = "none")]
    augment: Augment,
    /// Continue the run in --out from its checkpoint (start one if there is none).
    #[arg(long)]
    resume: bool,
    /// Start from these weights instead of the spec's initialization: safetensors, a
    /// PyTorch checkpoint or Keras 3 weights, checked against the spec as `run` does.
    #[arg(long, value_name = "FILE")]
    init_from: Option<String>,
    /// With --init-from: load the weights that match (all but a new head, say) and
    /// report the rest, instead of failing.
    #[arg(long, requires = "init_from")]
    partial: bool,
    /// CPU threads of libtorch's operators (default: libtorch's choice, one per core). On a
    /// busy machine fewer threads, or OMP_WAIT_POLICY=passive, can be much faster.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Speed-ups of the training step: all (default), none, or a comma-separated list of
    /// all, channels-last, fused-sgd, foreach-sgd, fused-bn, in-place, keep-memory,
    /// device-metrics, cuda-graphs. They change how the step is computed, not what
    /// (results agree to rounding); `all` leaves channels-last and fused-bn (CPU only) out
    /// on CUDA, and cuda-graphs (CUDA only, e.g. `all,cuda-graphs`) everywhere.
    #[arg(long, value_name = "LIST", default_value = "all")]
    speedups: String,
    /// Train in float64 (slow), to compare runs closely (float32 rounding grows quickly in
    /// early training); weights.safetensors is still float32.
    #[arg(long)]
    float64: bool,
    /// Precision of the forward pass: f32 (default) or bf16 (autocast to bfloat16:
    /// convolutions and the classifier in bfloat16; weights, gradients, the optimizer and
    /// the files in float32).
    #[arg(long, value_enum, default_value = "f32", conflicts_with = "float64")]
    precision: Precision,
    #[command(flatten)]
    folder: FolderArgs,
}

/// `--precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Precision {
    F32,
    Bf16,
}

/// How image folders are read (`train`, `eval`, `bench-data`).
#[derive(clap::Args, Debug, Clone)]
pub(super) struct FolderArgs {
    /// Threads that read, decode and augment the images of a folder (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// An image of a folder that cannot be read or decoded: stop with an error naming it
    /// (fail), or leave it out, count it and go on (skip).
    #[arg(long, value_enum, default_value_t = OnBadImage::Fail)]
    pub on_bad_image: OnBadImage,
    /// Normalization of image folders: ImageNet's mean and std (0.5 for grey inputs), or
    /// the training images' own, measured on up to 1,000 of them.
    #[arg(long, value_enum, default_value_t = Normalize::Imagenet)]
    pub normalize: Normalize,
}

/// `--normalize`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Normalize {
    /// ImageNet's statistics (what torchvision's pretrained weights expect).
    Imagenet,
    /// The data set's own, from its training images.
    Dataset,
}

impl FolderArgs {
    pub fn workers(&self) -> usize {
        self.workers
            .map_or_else(train::loader::default_workers, usize::from)
    }

    /// Applies the options to a loaded split (`--on-bad-image`; with `--normalize dataset`,
    /// the statistics of `source`'s training images). IDX data sets are left as they are.
    pub fn apply(
        &self,
        source: &DataSource,
        compiled: &Compiled,
        sets: &mut [&mut Dataset],
    ) -> Result<Option<MeanStd>, CliError> {
        for d in sets.iter_mut() {
            if let Some(f) = d.files.as_mut() {
                f.on_bad = self.on_bad_image;
            }
        }
        if self.normalize != Normalize::Dataset || sets.iter().all(|d| d.files.is_none()) {
            return Ok(None);
        }
        let train = load_split(source, Split::Train, None, compiled)?;
        let files = train.files.as_ref().expect("a folder");
        let (mean, std) = files.statistics(1000).map_err(|e| {
            CliError::other(format!("cannot measure the statistics of {source}"), e)
        })?;
        for d in sets.iter_mut() {
            d.mean = mean.clone();
            d.std = std.clone();
        }
        Ok(Some((mean, std)))
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a non-negative number")),
    }
}

/// Compiles `spec` for `resize` and the data's classes, loading the data with `load` once
/// the input size is known. `None` when the spec has errors (already printed).
pub(super) fn prepare<T>(
    spec: &str,
    resize: Option<u64>,
    load: impl FnOnce(&Compiled) -> Result<T, CliError>,
    classes_of: impl Fn(&T) -> usize,
) -> Result<Option<(Compiled, T)>, CliError> {
    let file = super::read_spec(spec)?;
    // A quiet first pass for the input size; a failing spec is reported by the second.
    let Ok(first) = crate::compile(&file) else {
        return Ok(compile_or_report(spec, &Overrides::default())?.and(None));
    };
    if first.model.head.is_none() {
        return Err(CliError::msg(format!(
            "`{spec}` is a backbone (`features`): it has no classifier head to train; give the spec a head"
        )));
    }
    let mut overrides = Overrides::default();
    if let Some(n) = resize {
        overrides.input = Some(crate::ir::Shape::new(first.model.input.c, n, n));
    }
    let sized = if overrides.input.is_some() {
        match crate::compile_with(&file, &overrides) {
            Ok(c) => c,
            Err(_) => return Ok(compile_or_report(spec, &overrides)?.and(None)),
        }
    } else {
        first
    };
    let data = load(&sized)?;
    let classes = classes_of(&data) as u64;
    let declared = sized.model.head.as_ref().map_or(0, |h| h.classes);
    if classes != declared {
        say!(
            "note: `{spec}` declares {declared} classes; the data set has {classes}, so its fc layer gets {classes} outputs \
             (pass --classes {classes} to other commands)"
        );
        overrides.classes = Some(classes);
    }
    let Some((_, compiled)) = compile_or_report(spec, &overrides)? else {
        return Ok(None);
    };
    Ok(Some((compiled, data)))
}

/// Loads one split of `source` for `compiled`'s input.
pub(super) fn load_split(
    source: &DataSource,
    split: Split,
    limit: Option<u64>,
    compiled: &Compiled,
) -> Result<Dataset, CliError> {
    let input = compiled.network.input;
    let limit = limit.map(|n| n as usize);
    source
        .load(
            split,
            limit,
            (input.h as usize, input.w as usize),
            input.c as usize,
        )
        .map_err(|e| {
            CliError::other(
                format!("cannot load the {} set of {source}", split_name(split)),
                e,
            )
        })
}

fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "training",
        Split::Test => "test",
    }
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let load = |c: &Compiled| -> Result<(Dataset, Dataset), CliError> {
        Ok((
            load_split(&args.data, Split::Train, args.limit_train, c)?,
            load_split(&args.data, Split::Test, args.limit_test, c)?,
        ))
    };
    let Some((compiled, (mut train_set, mut test_set))) =
        prepare(&args.spec, args.resize, load, |d| d.0.classes.len())?
    else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let stats = args
        .folder
        .apply(&args.data, &compiled, &mut [&mut train_set, &mut test_set])?;
    if let Some((mean, std)) = &stats {
        outln!("normalizing with the training images' mean {mean:.4?} and std {std:.4?}");
    }
    let device =
        crate::runtime::parse_device(&args.device).map_err(|e| CliError::usage("--device", e))?;
    if device.is_cuda() {
        // Every batch but the last has the same shape: let cuDNN pick its fastest kernels.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if let Some(n) = args.threads {
        tch::set_num_threads(i32::from(n));
    }
    let speedups = train::Speedups::parse(&args.speedups, device)
        .map_err(|e| CliError::usage("--speedups", e))?;
    if let Some(why) = speedups.conflict() {
        return Err(CliError::usage("--speedups", why));
    }
    if speedups.cuda_graphs && !device.is_cuda() {
        return Err(CliError::usage(
            "--speedups",
            "cuda-graphs needs --device cuda",
        ));
    }
    let compiled = &compiled;
    let input = compiled.network.input;
    outln!(
        "training {} ({} parameters) on {}: {} training / {} test images at {}x{}x{}, {} on {} (threads: {}, speed-ups: {speedups})",
        compiled.model.name,
        compiled.network.totals.trainable_params,
        args.data,
        train_set.len(),
        test_set.len(),
        input.c,
        input.h,
        input.w,
        describe(&args),
        crate::runtime::device::device_name(device),
        tch::get_num_threads(),
    );
    let opts = TrainOptions {
        out: args.out.clone(),
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        schedule: args.schedule,
        seed: args.seed,
        device,
        augment: args.augment,
        resume: args.resume,
        stop_after: None,
        progress: true,
        summary: true,
        spec: compiled.model.name.clone(),
        data: args.data.to_string(),
        workers: args.folder.workers(),
        normalize: stats.map(|(mean, std)| format!("dataset: mean {mean:?}, std {std:?}")),
        speedups: Some(speedups),
        float64: args.float64,
        bf16: args.precision == Precision::Bf16,
    };
    let started = std::time::Instant::now();
    // --init-from: pretrained weights replace the spec's initialization.
    let init = |vs: &tch::nn::VarStore| match &args.init_from {
        Some(path) => super::run::load_weights(vs, compiled, path, args.partial).map_err(|e| {
            train::TrainError::Init {
                path: path.into(),
                source: e.into(),
            }
        }),
        None => Ok(()),
    };
    let (train_set, test_set) = (Arc::new(train_set), Arc::new(test_set));
    let report = train::train_spec_from(compiled, train_set, test_set, &opts, init)
        .map_err(|e| CliError::other(format!("training `{}` failed", args.spec), e))?;
    if let Some(last) = report.history.last() {
        outln!(
            "loss {:.3}, train acc {:.3}, test acc {:.3}\n{:.1} examples/sec on {}; {} epoch{} in {:.1} s ({} this session)",
            last.train_loss,
            last.train_acc,
            last.test_acc,
            last.examples_per_sec,
            crate::runtime::device::device_name(device),
            report.history.len(),
            if report.history.len() == 1 { "" } else { "s" },
            report.history.iter().map(|m| m.seconds).sum::<f64>(),
            report.history.len() - report.resumed_from,
        );
    }
    outln!(
        "wrote {} (and metrics.csv, curves.png, curves.svg, checkpoint.safetensors) in {:.1} s",
        report.weights.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The optimizer settings in one phrase.
fn describe(args: &Args) -> String {
    let mut s = format!("SGD lr {} ({})", args.lr, args.schedule.keyword());
    if args.momentum != 0.0 {
        s.push_str(&format!(", momentum {}", args.momentum));
    }
    if args.weight_decay != 0.0 {
        s.push_str(&format!(", weight decay {}", args.weight_decay));
    }
    s.push_str(&format!(
        ", batch {}, {} epochs",
        args.batch_size, args.epochs
    ));
    if args.augment != Augment::default() {
        s.push_str(&format!(", augment {}", args.augment));
    }
    if args.float64 {
        s.push_str(", float64");
    }
    if args.precision == Precision::Bf16 {
        s.push_str(", bf16 autocast");
    }
    s
}
