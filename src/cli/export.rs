//! `resnetc export SPEC --format onnx [--weights W] [--seed N] [--opset N] [--fold-bn]
//! [--no-dynamic-batch] [--dtype f32|f16] -o model.onnx`
//!
//! The graph is written by [`crate::back::onnx`] from the checked network; the weights
//! come from the runtime: a safetensors file loaded strictly, as `run` loads it, or the
//! spec's own initialization under a seed.

use super::{compile_or_report, say, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::onnx::{self, DType, OnnxOptions, Param, Params};
use crate::runtime::weights::{self, LoadMode};
use crate::runtime::ResNet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tch::nn::VarStore;
use tch::{Device, Kind};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ONNX (opset 13 to 21).
    Onnx,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportDType {
    F32,
    F16,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Format,
    /// Weights: safetensors with torchvision's state_dict names, a PyTorch checkpoint or
    /// Keras 3 weights, loaded strictly (as `run` loads them). Without it, the spec's own
    /// initialization (`--seed`).
    #[arg(long, value_name = "FILE")]
    weights: Option<String>,
    /// Seed of the spec's initialization when no weights are given.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        conflicts_with = "weights"
    )]
    seed: u64,
    /// ONNX opset of the default domain.
    #[arg(long, default_value_t = onnx::DEFAULT_OPSET, value_name = "N",
          value_parser = clap::value_parser!(i64).range(*onnx::OPSETS.start()..=*onnx::OPSETS.end()))]
    opset: i64,
    /// Fold each BN that follows a convolution into it (scale and shift in f64).
    #[arg(long)]
    fold_bn: bool,
    /// Fix the batch dimension at 1 instead of a symbolic `batch`.
    #[arg(long)]
    no_dynamic_batch: bool,
    /// Element type of the weights, the input and the outputs.
    #[arg(long, value_enum, default_value = "f32", value_name = "DTYPE")]
    dtype: ExportDType,
    /// Output file, written atomically (a temporary file, then a rename). It must be a
    /// regular file or not exist.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    overrides: OverrideArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let Format::Onnx = args.format;
    // The spec's initialization draws from libtorch's generator: seed it first.
    tch::manual_seed(args.seed as i64);
    let vs = VarStore::new(Device::Cpu);
    let _net = ResNet::new(&vs.root(), &compiled)
        .map_err(|e| CliError::other("cannot build the network", e))?;
    if let Some(path) = &args.weights {
        weights::load_file(&vs, path, LoadMode::Strict, &compiled)
            .map_err(|e| CliError::other(format!("cannot load weights `{path}`"), e))?;
    }
    let params = params(&vs)?;
    let opts = OnnxOptions {
        opset: args.opset,
        fold_bn: args.fold_bn,
        dynamic_batch: !args.no_dynamic_batch,
        dtype: match args.dtype {
            ExportDType::F32 => DType::F32,
            ExportDType::F16 => DType::F16,
        },
        source: Some(args.spec.clone()),
    };
    let bytes = onnx::export(&compiled, &params, &opts)
        .map_err(|e| CliError::other("cannot export the network to ONNX", e))?;
    super::write_output(&args.output, Path::new(&args.spec), &bytes)?;
    let weights = args.weights.as_deref().map_or_else(
        || format!("initialization seed {}", args.seed),
        |w| format!("weights `{w}`"),
    );
    say!(
        "wrote `{}` (ONNX opset {}, {} bytes, {weights}{})",
        crate::diag::escape(&args.output.display().to_string()),
        args.opset,
        bytes.len(),
        if args.fold_bn { ", BN folded" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Every floating-point variable of `vs` as f32 (`num_batches_tracked` is left out).
fn params(vs: &VarStore) -> Result<Params, CliError> {
    let torch = |e| CliError::other("cannot read the network's variables", e);
    let mut out = Params::new();
    for (name, t) in vs.variables() {
        if !matches!(
            t.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            continue;
        }
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let t = t
            .f_detach()
            .and_then(|t| t.f_to_kind(Kind::Float))
            .and_then(|t| t.f_contiguous())
            .and_then(|t| t.f_flatten(0, -1))
            .map_err(torch)?;
        let data = Vec::<f32>::try_from(&t).map_err(torch)?;
        out.insert(name, Param { shape, data });
    }
    Ok(out)
}
