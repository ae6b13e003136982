//! `resnetc graph SPEC [--format dot|svg|html] [--expand] [-o FILE]`: the network drawn as
//! Graphviz DOT (pipe it to `dot -Tsvg`), as an SVG picture resnetc lays out itself, or as
//! a self-contained HTML page whose stages and blocks open on click.
use super::{
    compile_or_report, say, write_output, write_stdout, CliError, OverrideArgs, EXIT_SPEC,
    EXIT_USAGE,
};
use crate::back::draw::{self, DrawOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Spec file (.yaml, .yml or .resnet).
    #[arg(value_name = "SPEC")]
    spec: String,
    /// What to draw: Graphviz DOT, an SVG picture, or an interactive HTML page (one file,
    /// no network access).
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    /// Draw every layer of every block (SVG); open every block at first (HTML).
    #[arg(long)]
    expand: bool,
    /// Write the drawing to FILE (atomically: a temporary file, then a rename) instead of
    /// stdout. FILE must be a regular file or not exist; it keeps its permissions.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    overrides: OverrideArgs,
}

/// The drawings `graph` makes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Graphviz DOT, every layer a node (`dot -Tsvg` lays it out).
    Dot,
    /// An SVG picture laid out by resnetc: stages framed under their Table-1 line, one box
    /// per block, shortcuts beside them.
    Svg,
    /// One self-contained HTML page: the drawing with stages and blocks that fold and open
    /// on click, each layer's details, and the layer table, searchable.
    Html,
}

pub fn run(args: Args) -> Result<ExitCode, CliError> {
    if args.expand && args.format == Format::Dot {
        say!("error: `--expand` draws every layer of an SVG or HTML drawing; DOT always has every layer (use `--format svg` or `--format html`)");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let Some((file, c)) = compile_or_report(&args.spec, &args.overrides.overrides())? else {
        return Ok(ExitCode::from(EXIT_SPEC));
    };
    let opts = DrawOptions {
        expand: args.expand,
    };
    let text = match args.format {
        Format::Dot => crate::back::dot::graph(&c.model, &c.network),
        Format::Svg => draw::svg(&file, &c, &opts).svg,
        Format::Html => draw::html(&file, &c, &opts),
    };
    match &args.output {
        Some(path) => write_output(path, Path::new(&args.spec), text.as_bytes())?,
        None => write_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
