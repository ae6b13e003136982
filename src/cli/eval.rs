//! `resnetc eval SPEC --weights W --data fashion-mnist|mnist|DIR [...]`: test accuracy and
//! the confusion matrix with class names.
use super::outln;
use super::train::{load_split, prepare};
use super::{CliError, EXIT_SPEC};
use crate::train::loader::Prep;
use crate::train::{self, DataSource, Split};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Weights: safetensors with torchvision names (`resnetc train`'s weights.safetensors
    /// or checkpoint.safetensors, a state_dict saved with safetensors), a PyTorch
    /// checkpoint (.pth/.pt/.bin) or Keras 3 weights (.weights.h5, .keras).
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Data set: fashion-mnist, mnist or an image folder (its test part).
    #[arg(long, value_name = "fashion-mnist|mnist|DIR")]
    data: DataSource,
    /// Resize images to NxN instead of the spec's input size (as in training).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    resize: Option<u64>,
    /// Evaluate on N evenly spaced test examples only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit_test: Option<u64>,
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_size: u64,
    /// cpu, cuda, cuda:N or auto (CUDA when available).
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads of libtorch's operators (default: libtorch's choice, one per core). On a
    /// busy machine fewer threads, or OMP_WAIT_POLICY=passive, can be much faster.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    #[command(flatten)]
    folder: super::train::FolderArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let load = |c: &crate::Compiled| load_split(&args.data, Split::Test, args.limit_test, c);
    let Some((compiled, mut test_set)) =
        prepare(&args.spec, args.resize, load, |d| d.classes.len())?
    else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    args.folder
        .apply(&args.data, &compiled, &mut [&mut test_set])?;
    let device = crate::runtime::parse_device(&args.device)
        .map_err(|e| CliError::usage("--device", e))?;
    if let Some(n) = args.threads {
        tch::set_num_threads(i32::from(n));
    }
    let vs = tch::nn::VarStore::new(device);
    let net = crate::runtime::ResNet::new(&vs.root(), &compiled)
        .map_err(|e| CliError::other(format!("cannot build `{}`", args.spec), e))?;
    let cannot = |e: Box<dyn std::error::Error + Send + Sync>| {
        CliError::other(format!("cannot load weights for `{}`", args.spec), e)
    };
    if crate::runtime::weights::is_foreign(&args.weights) {
        let path = args.weights.display().to_string();
        let strict = crate::runtime::weights::LoadMode::Strict;
        crate::runtime::weights::load_file(&vs, &path, strict, &compiled)
            .map_err(|e| cannot(e.into()))?;
    } else {
        train::checkpoint::load_weights(&args.weights, &vs).map_err(|e| cannot(e.into()))?;
    }
    let input = compiled.network.input;
    let prep = Prep {
        channels: input.c as usize,
        height: input.h as usize,
        width: input.w as usize,
        augment: Default::default(),
        device,
        workers: args.folder.workers(),
    };
    let classes = test_set.classes.clone();
    let eval = train::evaluate(&net, Arc::new(test_set), &prep, args.batch_size as usize)
        .map_err(|e| CliError::other("evaluation failed", e))?;
    let skipped = if eval.skipped > 0 {
        format!("; {} unreadable images skipped", eval.skipped)
    } else {
        String::new()
    };
    outln!(
        "test accuracy {:.4} ({} of {} {} test images, {} on {}{skipped})",
        eval.accuracy(),
        eval.correct(),
        eval.total(),
        args.data,
        compiled.model.name,
        crate::runtime::device::device_name(device)
    );
    outln!();
    super::write_stdout(&eval.render(&classes))?;
    Ok(ExitCode::SUCCESS)
}
