//! `resnetc fmt SPEC --to yaml|dsl`
use super::{compile_or_report, write_stdout, CliError, EXIT_SPEC};
use crate::Overrides;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Yaml,
    Dsl,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// Syntax to print.
    #[arg(long, value_enum)]
    to: Target,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let Some((_, c)) = compile_or_report(&args.spec, &Overrides::default())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let text = match args.to {
        Target::Yaml => crate::back::yaml::print(&c.model),
        Target::Dsl => crate::back::dsl::print(&c.model),
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
