//! `resnetc check SPEC...`
use super::{
    print_diagnostics, read_spec, report_error, say, write_stdout, CliError, OverrideArgs, EXIT_IO,
    EXIT_SPEC,
};
use crate::diag::escape;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec files (.yaml, .yml or .resnet).
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<String>,
    #[command(flatten)]
    overrides: OverrideArgs,
    /// Print nothing for valid specs.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let mut failed = 0usize;
    let mut unreadable = 0usize;
    let overrides = args.overrides.overrides();
    for path in &args.specs {
        let file = match read_spec(path) {
            Ok(f) => f,
            Err(e) => {
                report_error(&e);
                unreadable += 1;
                continue;
            }
        };
        match crate::compile_with(&file, &overrides) {
            Ok(c) => {
                print_diagnostics(&file, &c.warnings);
                if !args.quiet {
                    let t = c.network.totals;
                    write_stdout(&format!(
                        "ok: {}: {} ({} block{}), {} params, {} MACs\n",
                        escape(path),
                        escape(&c.model.name),
                        c.network.blocks.len(),
                        if c.network.blocks.len() == 1 { "" } else { "s" },
                        crate::back::table::thousands(t.trainable_params),
                        crate::back::table::thousands(t.macs)
                    ))?;
                }
            }
            Err(diags) => {
                print_diagnostics(&file, &diags);
                let n = diags.iter().filter(|d| d.is_error()).count();
                say!(
                    "error: `{}` has {n} error{}",
                    escape(path),
                    if n == 1 { "" } else { "s" }
                );
                failed += 1;
            }
        }
    }
    // An unreadable file outranks a spec error: the check did not happen at all.
    Ok(if unreadable > 0 {
        ExitCode::from(EXIT_IO)
    } else if failed > 0 {
        ExitCode::from(EXIT_SPEC)
    } else {
        ExitCode::SUCCESS
    })
}
