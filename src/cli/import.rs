//! `resnetc import FILE --spec SPEC -o W.safetensors [--map FILE] [--partial] [--dtype T]`:
//! a PyTorch checkpoint or Keras weights file, checked against a spec, as safetensors.

use super::{compile_or_report, say, CliError, OverrideArgs, EXIT_SPEC};
use crate::import::{self, rename::RenameMap, DType, LoadMode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The weights: a PyTorch checkpoint (torch.save's archive: .pth, .pt, .bin) or a
    /// Keras 3 file (.weights.h5, .keras).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The spec the weights are for (.yaml, .yml or .resnet): every tensor is checked
    /// against it.
    #[arg(long, value_name = "SPEC")]
    spec: String,
    /// Output safetensors file, written atomically (a temporary file, then a rename).
    #[arg(short, long, value_name = "W.safetensors")]
    output: PathBuf,
    /// Rename rules for checkpoints of other code bases: lines `REGEX => REPLACEMENT`
    /// applied to whole keys, first match wins (`$1` names a group); an empty replacement
    /// drops the key.
    #[arg(long, value_name = "FILE")]
    map: Option<PathBuf>,
    /// Write the tensors that match and report the rest, instead of failing.
    #[arg(long)]
    partial: bool,
    /// Convert floating-point tensors to f32, f16 or bf16 (default: keep the file's).
    #[arg(long, value_name = "DTYPE", value_parser = parse_dtype)]
    dtype: Option<DType>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

fn parse_dtype(s: &str) -> Result<DType, String> {
    DType::parse_float(s).ok_or_else(|| format!("unknown dtype `{s}`: use f32, f16 or bf16"))
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let shown = crate::diag::escape(&args.file.display().to_string()).into_owned();
    let fail = |e: import::ImportError| CliError::other(format!("cannot import `{shown}`"), e);
    let map = match &args.map {
        Some(p) => Some(RenameMap::read(p).map_err(|e| {
            CliError::msg(format!(
                "cannot use the map `{}`: {e}",
                crate::diag::escape(&p.display().to_string())
            ))
        })?),
        None => None,
    };
    let mut source = import::open(&args.file, &compiled).map_err(fail)?;
    let (notes, unmatched) = import::normalize(source.as_mut(), map.as_ref()).map_err(fail)?;
    let mode = if args.partial {
        LoadMode::Partial
    } else {
        LoadMode::Strict
    };
    for n in &notes {
        say!("note: {n}");
    }
    if !unmatched.is_empty() {
        say!(
            "note: {} key{} matched no rule of the map and kept {} name{}: {}",
            unmatched.len(),
            if unmatched.len() == 1 { "" } else { "s" },
            if unmatched.len() == 1 { "its" } else { "their" },
            if unmatched.len() == 1 { "" } else { "s" },
            unmatched
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
                + &if unmatched.len() > 20 {
                    format!(" and {} more", unmatched.len() - 20)
                } else {
                    String::new()
                }
        );
    }
    let expected = import::expected(&compiled.network);
    let (report, take) = import::plan(source.as_ref(), &expected, mode).map_err(fail)?;
    if !report.is_exact() {
        say!(
            "warning: importing {} of {} variables; skipped:\n{report}",
            report.loaded.len(),
            expected.iter().filter(|e| e.float).count()
        );
    }
    let describe = source.describe();
    let metadata = [
        ("format", "pt".to_string()),
        ("source", args.file.display().to_string()),
        ("spec", compiled.model.name.clone()),
        ("resnetc_version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    let bytes = import::write_safetensors(
        &args.output,
        &[Path::new(&args.spec), &args.file],
        source.as_mut(),
        &take,
        args.dtype,
        &metadata,
    )
    .map_err(|e| match e {
        crate::output::ReplaceError::Output(e) => CliError::other("cannot write the weights", e),
        crate::output::ReplaceError::Write(e) => fail(e),
    })?;
    say!(
        "imported {} tensors from `{shown}` ({describe}) into `{}` ({}{bytes} bytes)",
        take.len(),
        crate::diag::escape(&args.output.display().to_string()),
        args.dtype.map_or(String::new(), |d| format!("{d}, "))
    );
    Ok(ExitCode::SUCCESS)
}
