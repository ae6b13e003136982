//! `resnetc graph SPEC` (Graphviz DOT on stdout; pipe to `dot -Tsvg`).
use super::{compile_or_report, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    #[command(flatten)]
    overrides: OverrideArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, c)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    write_stdout(&crate::back::dot::graph(&c.model, &c.network))?;
    Ok(ExitCode::SUCCESS)
}
