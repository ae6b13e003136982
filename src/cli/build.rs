//! `resnetc build SPEC [-o FILE] [--name NAME] [--input CxHxW] [--classes N]`
use super::{compile_or_report, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::rust::{check_type_name, module_source, RustOptions};
use crate::output::OutputError;
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
    /// Name of the generated struct (default: from the model's name, `resnet50` -> `ResNet50`).
    #[arg(long, value_name = "NAME", value_parser = parse_type_name)]
    name: Option<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

fn parse_type_name(s: &str) -> Result<String, String> {
    check_type_name(s).map(|()| s.to_string())
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let opts = RustOptions {
        name: args.name,
        source: Some(args.spec.clone()),
    };
    let source = module_source(&compiled, &opts);
    match &args.output {
        Some(path) => write_module(path, Path::new(&args.spec), source.as_bytes())?,
        None => write_stdout(&source)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the module to `path` safely (see [`crate::output`]): through an exclusive
/// temporary file and a rename, refusing non-regular targets, symbolic links and the spec
/// being compiled.
fn write_module(path: &Path, spec: &Path, bytes: &[u8]) -> Result<(), CliError> {
    crate::output::write_bytes(path, &[spec], bytes).map_err(|e| match e {
        OutputError::Refused { .. } => CliError::msg(e.to_string()),
        OutputError::Io { path, source } => CliError::Write { path, source },
    })
}
