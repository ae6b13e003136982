//! `resnetc run`: the forward pass on a tensor stored in a safetensors file.
//!
//! Also holds what `predict` and `bench` share: building a network on a device with its
//! weights, and the switches of the inference passes.

use super::say;
use super::CliError;
use crate::runtime::weights::{self, LoadMode};
use crate::runtime::{device, DType, InferenceModel, InferenceOptions, MemoryFormat, ResNet};
use crate::{Compiled, Overrides};
use std::process::ExitCode;
use tch::nn::VarStore;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Weights: safetensors with torchvision's state_dict names, a PyTorch checkpoint
    /// (torch.save's .pth/.pt/.bin, read without running its pickle) or Keras 3 weights
    /// (.weights.h5, .keras) for a Keras spec; checked against the spec.
    #[arg(long, value_name = "FILE")]
    weights: String,
    /// Input: a safetensors file holding one float tensor [N, C, H, W].
    #[arg(long, value_name = "X.safetensors")]
    input: String,
    /// Output safetensors file; receives `logits` (and `probabilities` if the spec's head
    /// has a softmax).
    #[arg(short, long, value_name = "Y.safetensors")]
    output: String,
    #[command(flatten)]
    device: DeviceArgs,
    /// Run in training mode (BN uses batch statistics, dropout is active); the inference
    /// passes do not apply.
    #[arg(long)]
    train_mode: bool,
    /// Load the weights that match and report the rest, instead of failing.
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    passes: PassArgs,
}

/// `--device` and `--dtype`.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArgs {
    /// cpu, cuda, cuda:N or auto (CUDA when available).
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: String,
    /// f32, f16 or bf16 (half types on CUDA only).
    #[arg(long, default_value = "f32", value_name = "DTYPE")]
    pub dtype: String,
    /// CUDA: run without cuDNN, on libtorch's own kernels. cuDNN computes f32 convolutions
    /// in TF32 (10-bit mantissa) by default, as in PyTorch; without it f32 is exact f32.
    #[arg(long)]
    pub no_cudnn: bool,
}

impl DeviceArgs {
    /// The parsed device and dtype, checked against each other; turns cuDNN off for the
    /// process if `--no-cudnn` was given.
    pub fn resolve(&self) -> Result<(Device, DType), CliError> {
        let device =
            device::parse_device(&self.device).map_err(|e| CliError::usage("--device", e))?;
        let dtype = DType::parse(&self.dtype).map_err(|e| CliError::usage("--dtype", e))?;
        dtype
            .check_device(device)
            .map_err(|e| CliError::usage("--dtype", e))?;
        if self.no_cudnn {
            tch::Cuda::set_user_enabled_cudnn(false);
        }
        Ok((device, dtype))
    }
}

/// Switches for the inference passes (all on by default in eval mode).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PassArgs {
    /// Do not fold BN into the preceding convolutions.
    #[arg(long)]
    pub no_fold_bn: bool,
    /// Keep autograd bookkeeping (no no-grad mode).
    #[arg(long)]
    pub no_inference_mode: bool,
    /// Memory format: auto (measure or pick), contiguous, channels-last, mkldnn (CPU).
    #[arg(long, default_value = "auto", value_parser = MemoryFormat::parse, value_name = "FORMAT")]
    pub memory_format: MemoryFormat,
    /// Never use oneDNN's blocked layout (MKLDNN tensors) on the CPU.
    #[arg(long)]
    pub no_mkldnn: bool,
    /// CUDA: no cuDNN benchmark mode.
    #[arg(long)]
    pub no_cudnn_benchmark: bool,
    /// No fused conv+bias(+add)+ReLU kernels (oneDNN on the CPU, cuDNN on CUDA).
    #[arg(long)]
    pub no_fuse: bool,
    /// CUDA f16/bf16: cast everything to the half type instead of autocast-style mixed
    /// precision (BN, logits and softmax in f32).
    #[arg(long)]
    pub no_autocast: bool,
    /// Turn every pass off (the plain eval-mode forward pass).
    #[arg(long)]
    pub no_passes: bool,
}

impl PassArgs {
    /// The options; `measure` says whether `auto` may measure layouts on the first call.
    pub fn options(&self, dtype: DType, measure: bool) -> InferenceOptions {
        if self.no_passes {
            return InferenceOptions {
                dtype,
                ..InferenceOptions::none()
            };
        }
        InferenceOptions {
            fold_bn: !self.no_fold_bn,
            no_grad: !self.no_inference_mode,
            memory_format: self.memory_format,
            mkldnn: !self.no_mkldnn,
            measure,
            cudnn_benchmark: !self.no_cudnn_benchmark,
            fuse: !self.no_fuse,
            dtype,
            autocast: !self.no_autocast,
        }
    }
}

/// Builds `compiled`'s network on `device` and loads `weights` ([`load_weights`]).
/// (The network keeps its variables alive; the store itself is not needed afterwards.)
pub fn build_network(
    compiled: &Compiled,
    device: Device,
    weights: Option<&str>,
    partial: bool,
) -> Result<ResNet, CliError> {
    let vs = VarStore::new(device);
    let net = ResNet::new(&vs.root(), compiled)
        .map_err(|e| CliError::other("cannot build the network", e))?;
    if let Some(path) = weights {
        load_weights(&vs, compiled, path, partial)?;
    }
    Ok(net)
}

/// Loads a weights file of any format [`weights::load_file`] reads into `vs` (strict
/// unless `partial`); prints what partial loading skipped.
pub fn load_weights(
    vs: &VarStore,
    compiled: &Compiled,
    path: &str,
    partial: bool,
) -> Result<(), CliError> {
    let mode = if partial {
        LoadMode::Partial
    } else {
        LoadMode::Strict
    };
    let report = weights::load_file(vs, path, mode, compiled)
        .map_err(|e| CliError::other(format!("cannot load weights `{path}`"), e))?;
    if !report.is_exact() {
        say!(
            "warning: loaded {} of {} variables from `{path}`; skipped:\n{report}",
            report.loaded.len(),
            vs.variables().len()
        );
    }
    Ok(())
}

/// Compiles a spec (diagnostics to stderr); `None` means it had errors.
pub fn compile(spec: &str, overrides: &Overrides) -> Result<Option<Compiled>, CliError> {
    Ok(super::compile_or_report(spec, overrides)?.map(|(_, c)| c))
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some(compiled) = compile(&args.spec, &Overrides::default())? else {
        return Ok(ExitCode::from(super::EXIT_SPEC));
    };
    let (device, dtype) = args.device.resolve()?;
    let net = build_network(&compiled, device, Some(&args.weights), args.partial)?;
    let channels = compiled.network.input.c as i64;
    let (name, x) = weights::read_input(&args.input, channels)
        .map_err(|e| CliError::other(format!("cannot read the input `{}`", args.input), e))?;
    let bad_input = |e| {
        CliError::other(
            format!(
                "input tensor `{name}` in `{}` does not fit the network",
                args.input
            ),
            e,
        )
    };
    net.check_input(&x).map_err(bad_input)?;

    if net.is_backbone() {
        // A backbone's outputs: its feature maps, named by module (`layer3`, ...).
        if dtype != DType::F32 {
            return Err(CliError::msg("a backbone runs in f32 (the inference passes take classifiers); drop --dtype"));
        }
        let features = if args.train_mode {
            net.f_features_t(&x, true)
        } else {
            let _guard = tch::no_grad_guard();
            net.f_features_t(&x, false)
        }
        .map_err(bad_input)?;
        weights::write_tensors(&args.output, &features).map_err(|e| CliError::other("cannot write the output", e))?;
        let shapes: Vec<String> = features.iter().map(|(n, t)| format!("{n} {:?}", t.size())).collect();
        let how = if args.train_mode { "train mode" } else { "eval mode" };
        say!("wrote feature maps {} to `{}` ({}, {how})", shapes.join(", "), args.output, device::device_name(device));
        return Ok(ExitCode::SUCCESS);
    }

    let (logits, how) = if args.train_mode {
        if dtype != DType::F32 {
            return Err(CliError::msg("--train-mode runs in f32; drop --dtype"));
        }
        (
            net.f_logits_t(&x, true).map_err(bad_input)?,
            "train mode".to_string(),
        )
    } else {
        // One call: no point measuring layouts.
        let opts = args.passes.options(dtype, false);
        let fast = InferenceModel::new(&net, opts)
            .map_err(|e| CliError::other("cannot prepare the network", e))?;
        let logits = fast.logits(&x).map_err(bad_input)?;
        let report = fast.report();
        let layout = report.layout.map_or("-".to_string(), |l| {
            format!("{l}{}", if report.fused { "+fused" } else { "" })
        });
        (
            logits,
            format!(
                "eval mode, {dtype}, layout {layout}, {} BN folded",
                fast.report().folded
            ),
        )
    };
    let mut out = vec![("logits".to_string(), logits.shallow_clone())];
    if net.has_softmax() {
        let probs = logits
            .f_softmax(-1, tch::Kind::Float)
            .map_err(|e| CliError::other("softmax failed", e))?;
        out.push(("probabilities".to_string(), probs));
    }
    weights::write_tensors(&args.output, &out)
        .map_err(|e| CliError::other("cannot write the output", e))?;
    say!(
        "wrote logits {:?} to `{}` ({}, {how})",
        logits.size(),
        args.output,
        device::device_name(device)
    );
    Ok(ExitCode::SUCCESS)
}
