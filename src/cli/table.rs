//! `resnetc table SPEC [--stages] [--format text|json] [--input CxHxW]`
use super::{compile_or_report, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::table;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Show the paper's Table 1 view (one row per stage) instead of every layer.
    #[arg(long)]
    stages: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    overrides: OverrideArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, c)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let text = match (args.format, args.stages) {
        (Format::Json, _) => {
            // Serialising a serde_json::Value to a string cannot fail.
            let mut s = serde_json::to_string_pretty(&table::json(&c.model, &c.network))
                .unwrap_or_default();
            s.push('\n');
            s
        }
        (Format::Text, true) => table::stages(&c.model, &c.network),
        (Format::Text, false) => table::layers(&c.model, &c.network),
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
