//! `resnetc build SPEC [--target rust|pytorch|torchrun] [-o FILE] [--name NAME] [--input CxHxW] [--classes N]`
use super::{compile_or_report, write_output, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::pytorch::{self, PyOptions};
use crate::back::rust::{check_type_name, module_source, RustOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Write the module to FILE (atomically: a temporary file, then a rename) instead of
    /// stdout. FILE must be a regular file or not exist; it keeps its permissions.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// What to generate: a Rust module for tch, a Python file for PyTorch, or that file
    /// with a training entry point for torchrun.
    #[arg(long, value_enum, default_value_t = Target::Rust)]
    target: Target,
    /// Name of the generated struct or Python class (default: from the model's name,
    /// `resnet50` -> `ResNet50`).
    #[arg(long, value_name = "NAME", value_parser = parse_type_name)]
    name: Option<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

/// The back end `build` writes with.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Rust module for the tch crate.
    Rust,
    /// A self-contained Python file for PyTorch (`nn.Module` classes).
    Pytorch,
    /// The PyTorch file plus a training entry point for one process or `torchrun`
    /// (DistributedDataParallel), with `resnetc train`'s flags and run files.
    Torchrun,
}

fn parse_type_name(s: &str) -> Result<String, String> {
    check_type_name(s).map(|()| s.to_string())
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let source = match args.target {
        Target::Rust => module_source(
            &compiled,
            &RustOptions {
                name: args.name,
                source: Some(args.spec.clone()),
            },
        ),
        Target::Pytorch | Target::Torchrun => {
            if let Some(name) = &args.name {
                pytorch::check_class_name(name).map_err(CliError::msg)?;
            }
            let opts = PyOptions {
                name: args.name,
                source: Some(args.spec.clone()),
            };
            let source = if args.target == Target::Torchrun {
                pytorch::trainer_source(&compiled, &opts).map_err(|e| e.to_string())
            } else {
                pytorch::module_source(&compiled, &opts).map_err(|e| e.to_string())
            };
            source.map_err(CliError::msg)?
        }
    };
    match &args.output {
        Some(path) => write_output(path, Path::new(&args.spec), source.as_bytes())?,
        None => write_stdout(&source)?,
    }
    Ok(ExitCode::SUCCESS)
}
