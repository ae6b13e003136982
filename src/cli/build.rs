//! `resnetc build SPEC [-o FILE] [--name NAME] [--input CxHxW] [--classes N]`
use super::{compile_or_report, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::rust::{is_type_name, module_source, RustOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Write the module to FILE (atomically: a temporary file, then a rename) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Name of the generated struct (default: from the model's name, `resnet50` -> `ResNet50`).
    #[arg(long, value_name = "NAME", value_parser = parse_type_name)]
    name: Option<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

fn parse_type_name(s: &str) -> Result<String, String> {
    if is_type_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a Rust identifier usable as a struct name"))
    }
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, compiled)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let opts = RustOptions { name: args.name, source: Some(args.spec.clone()) };
    let source = module_source(&compiled, &opts);
    match &args.output {
        Some(path) => write_atomically(path, source.as_bytes())
            .map_err(|source| CliError::Write { path: path.display().to_string(), source })?,
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`resnetc build x | head`) is not worth an error message.
            if let Err(e) = stdout.write_all(source.as_bytes()).and_then(|()| stdout.flush()) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(CliError::Write { path: "<stdout>".into(), source: e });
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so a
/// reader (or a build running at the same time) never sees half a module.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "module.rs".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
