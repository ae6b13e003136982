//! `resnetc diff A B [--format text|json] [--input CxHxW] [--classes N]`
//!
//! Exit status: 0 whenever both specs compile, whether or not they differ (`identical`
//! in the JSON says which); 1 when either has errors, 3 when either cannot be read.
//! `diff(1)`'s "1 when different" would collide with [`EXIT_SPEC`].
use super::table::Format;
use super::{compile_or_report, report_error, write_stdout, CliError, OverrideArgs, EXIT_SPEC};
use crate::back::diff::{self, text, Spec};
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The first spec (A, its lines marked `-`).
    #[arg(value_name = "A")]
    a: String,
    /// The second spec (B, its lines marked `+`).
    #[arg(value_name = "B")]
    b: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Overrides for both specs, so that they compare at one input size.
    #[command(flatten)]
    overrides: OverrideArgs,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let overrides = args.overrides.overrides();
    // Both are compiled before anything fails, so each gets its own diagnostics.
    let (a, b) = match (
        compile_or_report(&args.a, &overrides),
        compile_or_report(&args.b, &overrides),
    ) {
        (Err(e), Err(second)) => {
            report_error(&e);
            return Err(second);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
        (Ok(Some((_, a))), Ok(Some((_, b)))) => (a, b),
        _ => return Ok(ExitCode::from(EXIT_SPEC)),
    };
    let d = diff::compare(
        Spec {
            path: &args.a,
            model: &a.model,
            network: &a.network,
        },
        Spec {
            path: &args.b,
            model: &b.model,
            network: &b.network,
        },
    );
    match args.format {
        Format::Json => {
            // The diff holds strings, numbers and finite floats: serializing cannot fail.
            let mut s = serde_json::to_string_pretty(&d).unwrap_or_default();
            s.push('\n');
            write_stdout(&s)?;
        }
        Format::Text => {
            let lines = text::render(&d);
            if std::io::stdout().is_terminal() {
                write_coloured(&lines)?;
            } else {
                write_stdout(&text::plain(&lines))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the lines to a terminal: A's red, B's green (unless `NO_COLOR` or
/// `TERM=dumb`), control characters from the specs escaped as [`write_stdout`] does.
fn write_coloured(lines: &[text::Line]) -> Result<(), CliError> {
    use codespan_reporting::term::termcolor::{
        Color, ColorChoice, ColorSpec, StandardStream, WriteColor,
    };
    use std::io::Write as _;
    let mut stdout = StandardStream::stdout(ColorChoice::Auto);
    let mut write = || -> std::io::Result<()> {
        for l in lines {
            let colour = match l.mark {
                text::Mark::A => Some(Color::Red),
                text::Mark::B => Some(Color::Green),
                text::Mark::Context => None,
            };
            let text = crate::diag::escape_keeping_layout(&l.text);
            match colour {
                Some(c) => {
                    stdout.set_color(ColorSpec::new().set_fg(Some(c)))?;
                    write!(stdout, "{text}")?;
                    stdout.reset()?;
                }
                None => write!(stdout, "{text}")?,
            }
            writeln!(stdout)?;
        }
        stdout.flush()
    };
    match write() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
