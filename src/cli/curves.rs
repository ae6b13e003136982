//! `resnetc curves RUN_DIR [--epochs N]`: redraws `curves.png` and `curves.svg` from a run
//! folder's `metrics.csv` (a run of `resnetc train`, or of the torchrun entry point that
//! `resnetc build --target torchrun` writes).
use super::CliError;
use crate::train::{metrics, plot, RunFiles};
use std::path::PathBuf;
use std::process::ExitCode;

/// `metrics.csv` is one short line per epoch: 16 MiB is over 100,000 epochs.
const MAX_METRICS_BYTES: u64 = 16 << 20;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder holding `metrics.csv`; the curves are written beside it.
    #[arg(value_name = "RUN_DIR")]
    run_dir: PathBuf,
    /// Length of the x axis in epochs (default: the last epoch in `metrics.csv`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    epochs: Option<u64>,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let files = RunFiles::new(&args.run_dir);
    let path = files.metrics.display().to_string();
    let bytes =
        crate::files::read_bounded(&files.metrics, MAX_METRICS_BYTES).map_err(|source| {
            CliError::Read {
                path: path.clone(),
                source,
            }
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::msg(format!("`{path}` is not UTF-8 text")))?;
    let history = metrics::parse_csv(&text)
        .map_err(|m| CliError::msg(format!("`{path}`: {}", crate::diag::escape(&m))))?;
    if history.is_empty() {
        return Err(CliError::msg(format!(
            "`{path}` has no epochs yet: nothing to draw"
        )));
    }
    let last = history.iter().map(|m| m.epoch).max().unwrap_or(1);
    let epochs = args.epochs.map_or(last, |e| e as usize).max(last);
    plot::draw(&files.png, &files.svg, &history, epochs)
        .map_err(|e| CliError::other("cannot draw the curves", e))?;
    super::outln!(
        "wrote {} and {} ({} epochs)",
        files.png.display(),
        files.svg.display(),
        history.len()
    );
    Ok(ExitCode::SUCCESS)
}
