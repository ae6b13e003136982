//! Training on libtorch (feature `torch`): what `resnetc train` and `resnetc eval` run.
//!
//! - [`data`] loads Fashion-MNIST and MNIST ([`idx`] files, gzipped or raw) and image
//!   folders into memory; [`loader`] turns them into batches on a background thread
//!   (seeded shuffling, `crop`/`flip` augmentation, normalization, resizing).
//! - [`optim`] is SGD with momentum and weight decay whose state is plain tensors;
//!   [`schedule`] gives the learning rate of every step.
//! - [`train_model`] runs the epochs: a progress bar, one summary line per epoch,
//!   `metrics.csv` ([`metrics`]), `curves.png`/`curves.svg` ([`plot`]) and
//!   `checkpoint.safetensors` ([`checkpoint`]) after every epoch, `weights.safetensors`
//!   at the end; with `resume` it continues a run from its checkpoint and, on the CPU,
//!   reproduces the uninterrupted run's metrics exactly.
//!
//! ```no_run
//! use resnetc::train::{self, DataSource, Split, TrainOptions};
//! use std::sync::Arc;
//! let spec = resnetc::span::SourceFile::new(
//!     "fmnist-resnet20.yaml",
//!     std::fs::read_to_string("specs/fmnist-resnet20.yaml").unwrap(),
//!     resnetc::span::Syntax::Yaml,
//! );
//! let compiled = resnetc::compile(&spec).expect("valid spec");
//! let source: DataSource = "fashion-mnist".parse().unwrap();
//! let opts = TrainOptions { epochs: 1, ..TrainOptions::new("runs/demo") };
//! let (train_set, test_set) = train::load_splits(&source, &compiled, Some(2000), Some(1000)).unwrap();
//! let report = train::train_spec(&compiled, Arc::new(train_set), Arc::new(test_set), &opts).unwrap();
//! println!("test accuracy {:.3}", report.history.last().unwrap().test_acc);
//! ```

pub mod atomic;
pub mod checkpoint;
pub mod data;
mod error;
pub mod eval;
pub mod folder;
mod graphed;
pub mod idx;
pub mod loader;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod schedule;
pub mod speed;

pub use data::{DataSource, Dataset, Split};
pub use error::{DataError, TrainError};
pub use eval::{evaluate, Evaluation};
pub use loader::Augment;
pub use metrics::EpochMetrics;
pub use schedule::Schedule;
pub use speed::Speedups;

use crate::ir::Shape;
use crate::Compiled;

/// A progress line on stdout. A closed or failing stdout never stops a training run (its
/// weights and checkpoints are what matter), so write errors are ignored.
macro_rules! progress_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
use indicatif::{ProgressBar, ProgressStyle};
use loader::{Loader, Prep};
use optim::Sgd;
use rng::{Purpose, Rng};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// A network that maps a batch of images to pre-softmax logits `[N, classes]`.
pub trait Classifier {
    /// Logits for `xs` (`[N, C, H, W]`), in training mode (batch statistics, dropout) or not.
    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, TrainError>;
}

impl Classifier for crate::runtime::ResNet {
    fn logits(&self, xs: &Tensor, train: bool) -> Result<Tensor, TrainError> {
        self.f_logits_t(xs, train)
            .map_err(|e| TrainError::Model(Box::new(e)))
    }
}

/// Settings of a training run. [`TrainOptions::new`] gives the article's: plain SGD
/// (no momentum, no weight decay), learning rate 0.05, batch 128, 10 epochs, constant rate.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The run folder: metrics, curves, checkpoint and weights go here.
    pub out: PathBuf,
    /// Total epochs (a resumed run continues up to this).
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum (0: none).
    pub momentum: f64,
    /// L2 penalty added to every gradient.
    pub weight_decay: f64,
    /// How the learning rate changes over the steps.
    pub schedule: Schedule,
    /// Seeds initialization (by the caller, see [`init_seed`]), shuffling, augmentation
    /// and libtorch's generator.
    pub seed: u64,
    /// Where the model and the batches live.
    pub device: Device,
    /// Random augmentation of the training batches.
    pub augment: Augment,
    /// Continue the run in `out` from its checkpoint (a new run when there is none).
    pub resume: bool,
    /// Stop once this many epochs are complete, as if interrupted there (the schedule
    /// still plans for `epochs`); `resume` continues such a run. `None`: run to `epochs`.
    pub stop_after: Option<usize>,
    /// Draw a progress bar on stderr (shown only on a terminal).
    pub progress: bool,
    /// Print one summary line per epoch on stdout.
    pub summary: bool,
    /// Names recorded in the checkpoint to recognise the run on `--resume`.
    pub spec: String,
    /// The data set's name (`fashion-mnist`, a folder), recorded like `spec`.
    pub data: String,
    /// Threads that read and decode image folders ([`loader::default_workers`]: one per
    /// core).
    pub workers: usize,
    /// Normalization other than the data set's default, recorded like `spec`.
    pub normalize: Option<String>,
    /// Speed-ups of the step; `None`: [`Speedups::all`] for `device`.
    pub speedups: Option<Speedups>,
    /// Train in float64 (slow): runs that should agree can then be compared closely,
    /// float32 rounding being amplified by early training. `weights.safetensors` is
    /// still written in float32.
    pub float64: bool,
    /// Mixed precision: the forward pass under bfloat16 autocast
    /// ([`crate::runtime::autocast`]); weights, gradients and the optimizer stay float32.
    pub bf16: bool,
}

impl TrainOptions {
    /// The article's settings, writing into `out`.
    pub fn new(out: impl Into<PathBuf>) -> TrainOptions {
        TrainOptions {
            out: out.into(),
            epochs: 10,
            batch_size: 128,
            lr: 0.05,
            momentum: 0.0,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            seed: 0,
            device: Device::Cpu,
            augment: Augment::default(),
            resume: false,
            stop_after: None,
            progress: true,
            summary: true,
            spec: String::new(),
            data: String::new(),
            workers: loader::default_workers(),
            normalize: None,
            speedups: None,
            float64: false,
            bf16: false,
        }
    }

    /// The speed-ups in use.
    pub fn speedups(&self) -> Speedups {
        self.speedups.unwrap_or_else(|| Speedups::all(self.device))
    }
}

/// What a finished run leaves behind.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Metrics of every epoch, the resumed ones included.
    pub history: Vec<EpochMetrics>,
    /// Epochs completed before this call (0 for a new run).
    pub resumed_from: usize,
    /// `RUN_DIR/weights.safetensors`.
    pub weights: PathBuf,
}

/// Files of a run folder.
#[derive(Clone, Debug)]
pub struct RunFiles {
    /// `metrics.csv`.
    pub metrics: PathBuf,
    /// `curves.png`.
    pub png: PathBuf,
    /// `curves.svg`.
    pub svg: PathBuf,
    /// `checkpoint.safetensors`.
    pub checkpoint: PathBuf,
    /// `weights.safetensors`.
    pub weights: PathBuf,
}

impl RunFiles {
    /// The files in `dir`.
    pub fn new(dir: &Path) -> RunFiles {
        RunFiles {
            metrics: dir.join("metrics.csv"),
            png: dir.join("curves.png"),
            svg: dir.join("curves.svg"),
            checkpoint: dir.join("checkpoint.safetensors"),
            weights: dir.join("weights.safetensors"),
        }
    }
}

/// Seeds libtorch's generator before a model is built, so its initial weights depend on
/// the seed only.
pub fn init_seed(seed: u64) {
    tch::manual_seed(Rng::stream(seed, &[0]).next_u64() as i64);
}

/// The input size of a compiled spec as (channels, height, width).
fn input_of(shape: Shape) -> (usize, usize, usize) {
    (shape.c as usize, shape.h as usize, shape.w as usize)
}

/// Loads the train and test splits of `source` for `compiled`'s input (image folders are
/// resized and converted as they load).
pub fn load_splits(
    source: &DataSource,
    compiled: &Compiled,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
) -> Result<(Dataset, Dataset), DataError> {
    let (c, h, w) = input_of(compiled.network.input);
    let train = source.load(Split::Train, limit_train, (h, w), c)?;
    let test = source.load(Split::Test, limit_test, (h, w), c)?;
    Ok((train, test))
}

/// Builds the runtime network of `compiled` (seeded by `opts.seed`) on `opts.device` and
/// trains it with [`train_model`].
pub fn train_spec(
    compiled: &Compiled,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    opts: &TrainOptions,
) -> Result<TrainReport, TrainError> {
    train_spec_from(compiled, train, test, opts, |_| Ok(()))
}

/// [`train_spec`], with the initial weights then set by `init` (fine-tuning from
/// pretrained weights, `resnetc train --init-from`); a resumed run continues from its
/// checkpoint instead.
pub fn train_spec_from(
    compiled: &Compiled,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    opts: &TrainOptions,
    init: impl FnOnce(&VarStore) -> Result<(), TrainError>,
) -> Result<TrainReport, TrainError> {
    let mut vs = VarStore::new(opts.device);
    if opts.float64 {
        // Before the variables exist, so that they are drawn in float64.
        vs.set_kind(tch::Kind::Double);
    }
    let mut net = {
        // libtorch's generator is global: hold it while seeding and drawing the initial
        // weights, so that runs on other threads cannot change them.
        let _guard = INIT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        init_seed(opts.seed);
        crate::runtime::ResNet::new(&vs.root(), compiled)
            .map_err(|e| TrainError::Model(Box::new(e)))?
    };
    init(&vs)?;
    let speed = opts.speedups();
    net.set_train_in_place(speed.in_place);
    net.set_train_fused(speed.fused_bn);
    net.set_train_channels_last(speed.channels_last);
    train_model(&net, &vs, compiled.network.input, train, test, opts)
}

/// Serializes the use of libtorch's global generator for initialization.
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The settings that must not change when a run is resumed, as JSON. `epochs` and
/// `device` are recorded but may change.
#[derive(serde::Serialize)]
struct RunConfig<'a> {
    spec: &'a str,
    data: &'a str,
    input: [usize; 3],
    classes: usize,
    train_examples: usize,
    test_examples: usize,
    epochs: usize,
    batch_size: usize,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    schedule: Schedule,
    seed: u64,
    augment: String,
    device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    float64: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    bf16: bool,
}

/// Trains `model`, whose variables live in `vs`, on `train`, testing on `test` after
/// every epoch. See the [module documentation](self) for what it writes.
pub fn train_model<M: Classifier>(
    model: &M,
    vs: &VarStore,
    input: Shape,
    train: Arc<Dataset>,
    test: Arc<Dataset>,
    opts: &TrainOptions,
) -> Result<TrainReport, TrainError> {
    let torch = TrainError::torch;
    if opts.batch_size == 0 || opts.epochs == 0 {
        return Err(TrainError::Config(
            "--epochs and --batch-size must be at least 1".into(),
        ));
    }
    if train.is_empty() || test.is_empty() {
        return Err(TrainError::Config(format!(
            "nothing to train on: {} training and {} test examples",
            train.len(),
            test.len()
        )));
    }
    if let Some(why) = opts.speedups().conflict() {
        return Err(TrainError::Config(why));
    }
    if opts.augment.rrc && train.files.is_none() {
        return Err(TrainError::Config(
            "--augment rrc (RandomResizedCrop) applies to image folders; the IDX data sets take crop and flip".into(),
        ));
    }
    let (c, h, w) = input_of(input);
    // The cuda-graphs step's tensors (and on CUDA its graph), before anything is written.
    let mut fixed = if opts.speedups().cuda_graphs {
        Some(graphed::FixedStep::new(opts.device, opts.bf16)?)
    } else {
        None
    };
    let files = RunFiles::new(&opts.out);
    std::fs::create_dir_all(&opts.out).map_err(|source| TrainError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let config = serde_json::to_string(&RunConfig {
        spec: &opts.spec,
        data: &opts.data,
        input: [c, h, w],
        classes: train.classes.len(),
        train_examples: train.len(),
        test_examples: test.len(),
        epochs: opts.epochs,
        batch_size: opts.batch_size,
        lr: opts.lr,
        momentum: opts.momentum,
        weight_decay: opts.weight_decay,
        schedule: opts.schedule,
        seed: opts.seed,
        augment: opts.augment.to_string(),
        device: format!("{:?}", opts.device),
        normalize: opts.normalize.as_deref(),
        float64: opts.float64,
        bf16: opts.bf16,
    })
    .unwrap_or_default(); // Serialising plain numbers and strings cannot fail.

    let speed = opts.speedups();
    if speed.keep_memory {
        speed::keep_freed_memory();
    }
    if speed.channels_last {
        speed::variables_channels_last(vs).map_err(torch("reordering the weights"))?;
    }
    let mut opt = Sgd::with_kernel(vs, opts.momentum, opts.weight_decay, speed.sgd)
        .map_err(torch("creating the optimizer"))?;
    let mut history: Vec<EpochMetrics> = Vec::new();
    let has_checkpoint = files.checkpoint.exists();
    if opts.resume && has_checkpoint {
        let ckpt = checkpoint::load(&files.checkpoint)?;
        let diffs =
            checkpoint::config_differences(&ckpt.state.config, &config, &["epochs", "device"]);
        if !diffs.is_empty() {
            return Err(TrainError::ResumeMismatch {
                path: files.checkpoint.clone(),
                differences: diffs.join("; "),
            });
        }
        checkpoint::copy_into(vs, &ckpt.tensors, checkpoint::MODEL_PREFIX)?;
        opt.load_state(&ckpt.tensors)
            .map_err(|message| TrainError::Checkpoint {
                path: files.checkpoint.clone(),
                message,
            })?;
        history = ckpt.state.history;
    } else if !opts.resume
        && [&files.checkpoint, &files.weights, &files.metrics]
            .iter()
            .any(|p| p.exists())
    {
        return Err(TrainError::RunExists {
            path: opts.out.clone(),
        });
    }
    let resumed_from = history.len();
    if opts.summary && opts.resume {
        if has_checkpoint {
            progress_line!(
                "resuming {} at epoch {} of {}",
                opts.out.display(),
                resumed_from + 1,
                opts.epochs
            );
        } else {
            progress_line!(
                "no checkpoint in {}: starting a new run",
                opts.out.display()
            );
        }
    }

    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let prep = Prep {
        channels: c,
        height: h,
        width: w,
        augment: opts.augment,
        device: opts.device,
        workers: opts.workers,
    };
    let test_prep = Prep {
        augment: Augment::default(),
        ..prep.clone()
    };
    // The forward pass and the mean loss, under bfloat16 autocast with --precision bf16.
    let forward_loss = |images: &Tensor, labels: &Tensor| -> Result<(Tensor, Tensor), TrainError> {
        let logits = if opts.bf16 {
            let _autocast = crate::runtime::autocast::Bf16Autocast::enter(opts.device)
                .map_err(torch("switching on bfloat16 autocast"))?;
            let logits = model.logits(images, true)?;
            // The loss and the metrics in float32.
            logits
                .f_to_kind(tch::Kind::Float)
                .map_err(torch("casting the logits"))?
        } else {
            model.logits(images, true)?
        };
        let loss = logits
            .f_cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, 0.0)
            .map_err(torch("computing the loss"))?;
        Ok((logits, loss))
    };
    let last = opts
        .stop_after
        .map_or(opts.epochs, |s| s.min(opts.epochs))
        .max(resumed_from);
    for epoch in resumed_from..last {
        let started = Instant::now();
        tch::manual_seed(
            Rng::stream(opts.seed, &[Purpose::Torch as u64, epoch as u64]).next_u64() as i64,
        );
        let mut order: Vec<usize> = (0..train.len()).collect();
        Rng::stream(opts.seed, &[Purpose::Shuffle as u64, epoch as u64]).shuffle(&mut order);
        let loader = Loader::spawn(
            train.clone(),
            order,
            opts.batch_size,
            prep.clone(),
            (opts.seed, epoch as u64),
        );
        let bar = progress_bar(opts.progress, steps_per_epoch, epoch + 1, opts.epochs);

        let (mut loss_sum, mut correct, mut seen) = (0f64, 0i64, 0usize);
        // With device-metrics: sums on the device not yet added to the two above.
        let mut pending: Option<(Tensor, Tensor)> = None;
        let mut skipped: Vec<crate::runtime::image::ImageError> = Vec::new();
        let mut train_time = 0f64;
        for (step, batch) in loader.enumerate() {
            let step_start = Instant::now();
            let mut batch = batch.map_err(|e| e.into_train("preparing a batch"))?;
            skipped.append(&mut batch.skipped);
            if batch.labels.size()[0] == 0 {
                // Every image of the batch was unreadable and skipped.
                bar.inc(1);
                continue;
            }
            let lr = opts.schedule.lr(
                opts.lr,
                epoch * steps_per_epoch + step,
                steps_per_epoch,
                opts.epochs,
            );
            let images = if speed.channels_last {
                speed::channels_last(&batch.images).map_err(torch("reordering a batch"))?
            } else {
                batch.images
            };
            let fixed_step = fixed.as_mut().filter(|f| f.fits(&images));
            let eager = if let Some(fixed) = fixed_step {
                fixed.step(&images, &batch.labels, lr, &mut opt, &forward_loss)?;
                None
            } else {
                let (logits, loss) = forward_loss(&images, &batch.labels)?;
                opt.zero_grad();
                loss.f_backward().map_err(torch("the backward pass"))?;
                opt.step(lr).map_err(torch("the optimizer step"))?;
                Some((logits, loss))
            };
            let n = batch.labels.size()[0] as usize;
            seen += n;
            let update = step % 5 == 0 || step + 1 == steps_per_epoch;
            match &eager {
                None => {}
                Some((logits, loss)) if speed.device_metrics => {
                    let (l, c) = step_sums(loss, logits, &batch.labels, n)
                        .map_err(torch("summing the loss and accuracy"))?;
                    pending = Some(match pending.take() {
                        None => (l, c),
                        Some((pl, pc)) => (pl + l, pc + c),
                    });
                }
                Some((logits, loss)) => {
                    loss_sum += loss
                        .f_double_value(&[])
                        .map_err(torch("reading the loss"))?
                        * n as f64;
                    correct += count_correct(logits, &batch.labels)
                        .map_err(torch("counting correct predictions"))?;
                }
            }
            if update {
                drain(&mut pending, &mut loss_sum, &mut correct)?;
                if let Some(fixed) = fixed.as_mut() {
                    fixed.drain(&mut loss_sum, &mut correct)?;
                }
            }
            train_time += step_start.elapsed().as_secs_f64();
            bar.inc(1);
            if update {
                bar.set_message(format!(
                    "loss {:.4}  acc {:.3}  {:.0} ex/s",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64,
                    seen as f64 / train_time.max(1e-9)
                ));
            }
        }
        // Steps after the last update (the last batch was all skipped images).
        drain(&mut pending, &mut loss_sum, &mut correct)?;
        if let Some(fixed) = fixed.as_mut() {
            fixed.drain(&mut loss_sum, &mut correct)?;
        }
        bar.finish_and_clear();
        if seen + skipped.len() != train.len() {
            return Err(TrainError::Config(format!(
                "the loader stopped after {} of {} examples",
                seen + skipped.len(),
                train.len()
            )));
        }
        if opts.summary {
            if let Some(first) = skipped.first() {
                progress_line!(
                    "epoch {}: skipped {} unreadable image(s), the first: {first}",
                    epoch + 1,
                    skipped.len()
                );
            }
        }
        let test_eval = evaluate(model, test.clone(), &test_prep, opts.batch_size)?;
        let m = EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_acc: correct as f64 / seen as f64,
            test_acc: test_eval.accuracy(),
            examples_per_sec: seen as f64 / train_time.max(1e-9),
            // Training and testing; writing the reports takes a few milliseconds more.
            seconds: started.elapsed().as_secs_f64(),
        };
        history.push(m);
        // Checkpoint first: metrics and curves are rebuilt from it on resume.
        let state = checkpoint::RunState {
            epoch: epoch + 1,
            seed: opts.seed,
            history: history.clone(),
            config: config.clone(),
        };
        checkpoint::save(&files.checkpoint, vs, &opt, &state)?;
        write_reports(&files, &history, opts.epochs)?;
        if opts.summary {
            let m = history.last().expect("just pushed");
            let skips = if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} images skipped", skipped.len())
            };
            progress_line!(
                "epoch {}/{}: loss {:.4}, train acc {:.4}, test acc {:.4}, {:.1} examples/s, {:.1} s{skips}",
                m.epoch, opts.epochs, m.train_loss, m.train_acc, m.test_acc, m.examples_per_sec, m.seconds
            );
        }
    }
    if resumed_from >= opts.epochs {
        // Already complete: make sure the reports exist (they are rebuilt from the checkpoint).
        write_reports(&files, &history, opts.epochs)?;
    }
    checkpoint::save_weights(&files.weights, vs)?;
    Ok(TrainReport {
        history,
        resumed_from,
        weights: files.weights,
    })
}

/// `metrics.csv` and the curves, from the whole history.
fn write_reports(
    files: &RunFiles,
    history: &[EpochMetrics],
    epochs: usize,
) -> Result<(), TrainError> {
    metrics::write_csv(&files.metrics, history).map_err(|source| TrainError::Write {
        path: files.metrics.clone(),
        source,
    })?;
    plot::draw(&files.png, &files.svg, history, epochs)
}

fn progress_bar(show: bool, steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

/// Adds the sums held on the device, if any, to the host's.
fn drain(
    pending: &mut Option<(Tensor, Tensor)>,
    loss_sum: &mut f64,
    correct: &mut i64,
) -> Result<(), TrainError> {
    match pending.take() {
        Some((l, c)) => add_sums(&l, &c, loss_sum, correct),
        None => Ok(()),
    }
}

/// Adds a loss sum (0-d float64) and a count of correct predictions (0-d int64) held on
/// the device to the host's.
fn add_sums(
    l: &Tensor,
    c: &Tensor,
    loss_sum: &mut f64,
    correct: &mut i64,
) -> Result<(), TrainError> {
    *loss_sum += l.f_double_value(&[]).map_err(TrainError::torch("reading the loss"))?;
    *correct += c
        .f_int64_value(&[])
        .map_err(TrainError::torch("counting correct predictions"))?;
    Ok(())
}

/// The batch's loss times its size (float64) and its count of correct predictions, as
/// 0-d tensors on the device.
fn step_sums(
    loss: &Tensor,
    logits: &Tensor,
    labels: &Tensor,
    n: usize,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let l = loss
        .f_detach()?
        .f_to_kind(tch::Kind::Double)?
        .f_mul_scalar(n as f64)?;
    let c = logits
        .f_argmax(-1, false)?
        .f_eq_tensor(labels)?
        .f_sum(tch::Kind::Int64)?;
    Ok((l, c))
}

/// How many rows of `logits` have their maximum at `labels`.
pub(crate) fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<i64, tch::TchError> {
    logits
        .f_argmax(-1, false)?
        .f_eq_tensor(labels)?
        .f_sum(tch::Kind::Int64)?
        .f_int64_value(&[])
}
