//! `resnetc predict`: classify images, top-5 classes with probabilities.

use super::run::{build_network, compile, DeviceArgs, PassArgs};
use super::CliError;
use super::{outln, say};
use crate::runtime::image::Preprocess;
use crate::runtime::InferenceModel;
use crate::Overrides;
use std::process::ExitCode;
use tch::{Kind, Tensor};

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
    /// Images (PNG, JPEG, BMP, TGA, GIF).
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
    /// Class names, one per line, in class order.
    #[arg(long, value_name = "FILE")]
    labels: Option<String>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 5, value_name = "K")]
    top: usize,
    /// Resize the shorter side to this before cropping (default: crop x 256/224).
    #[arg(long, value_name = "PIXELS", value_parser = clap::value_parser!(i64).range(1..=16384))]
    resize: Option<i64>,
    /// Normalization mean per channel (default: ImageNet's).
    #[arg(long, value_delimiter = ',', value_name = "M,M,M")]
    mean: Option<Vec<f64>>,
    /// Normalization standard deviation per channel (default: ImageNet's).
    #[arg(long, value_delimiter = ',', value_name = "S,S,S")]
    std: Option<Vec<f64>>,
    /// Load the weights that match and report the rest, instead of failing.
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    device: DeviceArgs,
    #[command(flatten)]
    passes: PassArgs,
}

/// Images per forward pass.
const CHUNK: usize = 16;

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some(compiled) = compile(&args.spec, &Overrides::default())? else {
        return Ok(ExitCode::from(super::EXIT_SPEC));
    };
    let (device, dtype) = args.device.resolve()?;
    let mut pre = Preprocess::imagenet(compiled.network.input);
    if let Some(r) = args.resize {
        pre.resize = r;
    }
    if let Some(m) = &args.mean {
        pre.mean = m.clone();
    }
    if let Some(s) = &args.std {
        pre.std = s.clone();
    }
    pre.check()
        .map_err(|m| CliError::msg(format!("cannot preprocess images for `{}`: {m}", args.spec)))?;

    let Some(classes) = compiled.network.classes() else {
        return Err(CliError::msg(format!(
            "`{}` is a backbone (`features`): it has no classes to predict; `resnetc run` returns its feature maps",
            args.spec
        )));
    };
    let classes = classes as usize;
    let labels = match &args.labels {
        Some(path) => Some(read_labels(path, classes)?),
        None => None,
    };
    let net = build_network(&compiled, device, Some(&args.weights), args.partial)?;
    let measure = args.images.len() > CHUNK;
    let fast = InferenceModel::new(&net, args.passes.options(dtype, measure))
        .map_err(|e| CliError::other("cannot prepare the network", e))?;
    let k = args.top.clamp(1, classes);

    for chunk in args.images.chunks(CHUNK) {
        let mut batch = Vec::with_capacity(chunk.len());
        for path in chunk {
            // The error names the file and what is wrong with it.
            batch.push(pre.load(path).map_err(|e| CliError::msg(e.to_string()))?);
        }
        let x = Tensor::f_stack(&batch, 0)
            .map_err(|e| CliError::other("cannot batch the images", e))?;
        let logits = fast
            .logits(&x)
            .map_err(|e| CliError::other("forward pass failed", e))?;
        let probs = logits
            .f_to_kind(Kind::Float)
            .and_then(|l| l.f_softmax(-1, Kind::Float))
            .and_then(|p| p.f_to_device(tch::Device::Cpu))
            .map_err(|e| CliError::other("softmax failed", e))?;
        let (top_p, top_i) = probs
            .f_topk(k as i64, -1, true, true)
            .map_err(|e| CliError::other("top-k failed", e))?;
        for (row, path) in chunk.iter().enumerate() {
            outln!("{path}");
            for j in 0..k {
                let p = top_p.double_value(&[row as i64, j as i64]);
                let class = top_i.int64_value(&[row as i64, j as i64]);
                let name = labels
                    .as_ref()
                    .and_then(|l| l.get(class as usize))
                    .map_or(String::new(), |n| format!("  {n}"));
                outln!("  {:>2}. {:>6.2}%  class {class}{name}", j + 1, 100.0 * p);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The largest class-name file read (a million classes of 64 bytes).
const MAX_LABELS_BYTES: u64 = 64 << 20;

/// One class name per line (blank lines at the end ignored); there must be at least as
/// many names as classes. The file must be UTF-8 text of at most [`MAX_LABELS_BYTES`].
fn read_labels(path: &str, classes: usize) -> Result<Vec<String>, CliError> {
    let bytes = crate::files::read_bounded(std::path::Path::new(path), MAX_LABELS_BYTES).map_err(
        |source| CliError::Read {
            path: path.into(),
            source,
        },
    )?;
    let text = String::from_utf8(bytes).map_err(|e| {
        CliError::msg(format!(
            "class-name file `{path}` is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let labels: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| crate::diag::escape(l.trim()).into_owned())
        .collect();
    if labels.len() < classes {
        return Err(CliError::msg(format!(
            "`{path}` has {} class name{} but the network has {classes} classes",
            labels.len(),
            if labels.len() == 1 { "" } else { "s" }
        )));
    }
    if labels.len() > classes {
        say!("warning: `{path}` has {} class names, the network {classes} classes; extra names are ignored", labels.len());
    }
    Ok(labels)
}
