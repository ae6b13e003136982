//! `resnetc eval`.
use super::CliError;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    Err(CliError::msg(format!("`resnetc eval {}` is not available in this build", args.spec)))
}
