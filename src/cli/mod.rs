//! The `resnetc` command line: one module per subcommand, diagnostics printed here.

#[cfg(feature = "torch")]
mod bench;
#[cfg(feature = "torch")]
mod bench_data;
mod build;
mod check;
#[cfg(feature = "torch")]
mod curves;
mod diff;
#[cfg(feature = "torch")]
mod eval;
#[cfg(feature = "torch")]
mod export;
mod fmt;
mod graph;
mod import;
#[cfg(feature = "torch")]
mod predict;
#[cfg(feature = "torch")]
mod run;
mod table;
#[cfg(feature = "torch")]
mod train;

use crate::diag::{self, Diagnostic};
use crate::ir::{Limits, Shape};
use crate::span::{SourceFile, Syntax};
use crate::{Compiled, Overrides};
use clap::{Parser, Subcommand};
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};
use std::io::IsTerminal;
use std::process::ExitCode;

/// Exit status: a spec had errors.
pub const EXIT_SPEC: u8 = 1;
/// Exit status: bad command-line usage (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a file could not be read or written.
pub const EXIT_IO: u8 = 3;

/// resnetc compiles declarative ResNet-family model specs (YAML or the .resnet DSL):
/// it checks the shape flow, prints exact layer tables and draws the network.
#[derive(Parser, Debug)]
#[command(name = "resnetc", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check specs; print every problem and exit non-zero on any error.
    Check(check::Args),
    /// Print the layer table: every layer with output shape, parameters and MACs.
    Table(table::Args),
    /// Draw the network: Graphviz DOT, an SVG picture or an interactive HTML page, output shapes on the edges.
    Graph(graph::Args),
    /// Print a spec converted to YAML or the DSL.
    Fmt(fmt::Args),
    /// Compare two specs: totals, stages and layers that differ, and whether a checkpoint of A loads into B.
    Diff(diff::Args),
    /// Check a PyTorch checkpoint or Keras weights file against a spec and write it as safetensors.
    Import(import::Args),
    /// Write a Rust module (tch) or, with `--target pytorch`, a Python file (PyTorch) that builds the network (`--target torchrun`: with a training entry point).
    Build(build::Args),
    /// Run the forward pass on a tensor stored in a safetensors file (libtorch).
    #[cfg(feature = "torch")]
    Run(run::Args),
    /// Classify images: top-5 classes with probabilities (libtorch).
    #[cfg(feature = "torch")]
    Predict(predict::Args),
    /// Measure inference throughput (libtorch).
    #[cfg(feature = "torch")]
    Bench(bench::Args),
    /// Measure the image-folder input pipeline alone: images/s of decoding, augmentation and batching.
    #[cfg(feature = "torch")]
    BenchData(bench_data::Args),
    /// Train a spec on Fashion-MNIST, MNIST or an image folder (libtorch).
    #[cfg(feature = "torch")]
    Train(train::Args),
    /// Test accuracy and confusion matrix of trained weights (libtorch).
    #[cfg(feature = "torch")]
    Eval(eval::Args),
    /// Redraw a run folder's curves.png and curves.svg from its metrics.csv.
    #[cfg(feature = "torch")]
    Curves(curves::Args),
    /// Write the network as an ONNX model, with its weights (libtorch reads them).
    #[cfg(feature = "torch")]
    Export(export::Args),
}

/// Parses the arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print to stdout and succeed; usage errors go to
            // stderr with EXIT_USAGE. A closed pipe is quiet; a failed write is EXIT_IO.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            return match e.print() {
                Err(w) if w.kind() != std::io::ErrorKind::BrokenPipe && !e.use_stderr() => {
                    report_error(&CliError::Write {
                        path: "<stdout>".into(),
                        source: w,
                    });
                    ExitCode::from(EXIT_IO)
                }
                _ => ExitCode::from(code),
            };
        }
    };
    let result = match cli.command {
        Command::Check(a) => check::run(a),
        Command::Table(a) => table::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Diff(a) => diff::run(a),
        Command::Import(a) => import::run(a),
        Command::Build(a) => build::run(a),
        #[cfg(feature = "torch")]
        Command::Run(a) => run::run(a),
        #[cfg(feature = "torch")]
        Command::Predict(a) => predict::run(a),
        #[cfg(feature = "torch")]
        Command::Bench(a) => bench::run(a),
        #[cfg(feature = "torch")]
        Command::BenchData(a) => bench_data::run(a),
        #[cfg(feature = "torch")]
        Command::Train(a) => train::run(a),
        #[cfg(feature = "torch")]
        Command::Eval(a) => eval::run(a),
        #[cfg(feature = "torch")]
        Command::Curves(a) => curves::run(a),
        #[cfg(feature = "torch")]
        Command::Export(a) => export::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            ExitCode::from(match e {
                CliError::Usage { .. } => EXIT_USAGE,
                _ => EXIT_IO,
            })
        }
    }
}

/// Writes one line to stderr. Unlike `eprintln!`, never panics: when stderr itself
/// cannot be written there is no one left to tell.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

/// Writes one line of a command's output to stdout through [`write_stdout`]: a closed
/// pipe is ignored; any other failure (a full disk) reports `cannot write <stdout>` and
/// exits with [`EXIT_IO`], since the output is what the command was run for.
#[cfg_attr(not(feature = "torch"), allow(unused_macros))]
macro_rules! outln {
    () => {
        $crate::cli::stdout_line("")
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout_line(&format!($($arg)*))
    };
}
#[allow(unused_imports)]
pub(crate) use outln;

/// [`outln!`]'s body.
pub fn stdout_line(text: &str) {
    if let Err(e) = write_stdout(&format!("{text}\n")) {
        report_error(&e);
        std::process::exit(i32::from(EXIT_IO));
    }
}

/// Prints `error: ...` and the cause chain to stderr.
pub fn report_error(e: &CliError) {
    say!("error: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        say!("\nCaused by:\n    {s}");
        source = s.source();
    }
}

/// Writes a command's output to stdout and flushes it. A closed pipe (`resnetc table x |
/// head -1`) ends the output quietly; any other failure (a full disk) is an error.
/// Control characters from a spec are escaped when stdout is a terminal, and written as
/// they are into a pipe or a file.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let text = if stdout.is_terminal() {
        diag::escape_keeping_layout(text)
    } else {
        text.into()
    };
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes a command's output file safely (see [`crate::output`]): through an exclusive
/// temporary file and a rename, refusing non-regular targets, symbolic links and the spec
/// being compiled.
pub fn write_output(path: &std::path::Path, spec: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    crate::output::write_bytes(path, &[spec], bytes).map_err(|e| match e {
        crate::output::OutputError::Refused { .. } => CliError::msg(e.to_string()),
        crate::output::OutputError::Io { path, source } => CliError::Write { path, source },
    })
}

/// Errors of the CLI itself (as opposed to problems in a spec, which are diagnostics).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is {kind}, not a regular file; a spec must be a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("`{path}` is larger than {limit} bytes (the limit for a spec)")]
    TooLarge { path: String, limit: usize },
    /// `offset` counts bytes from 0, as `cmp` and hex dumps do; `line` and `column` from 1.
    #[error("`{path}` is not UTF-8 text: byte 0x{byte:02x} at offset {offset} (line {line}, column {column})")]
    NotUtf8 {
        path: String,
        offset: usize,
        line: usize,
        column: usize,
        byte: u8,
    },
    #[error("`{path}`: unknown spec extension; use .yaml, .yml or .resnet")]
    Extension { path: String },
    #[error("cannot write `{path}`")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An option's value that clap accepts but the command cannot use (an unknown device
    /// or speed-up, a combination that cannot run): exit status [`EXIT_USAGE`].
    #[error("bad {option}")]
    Usage {
        option: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other failure of a command, with its cause chain (runtime, weights, data).
    #[error("{message}")]
    Other {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl CliError {
    /// A failure described by `message`, caused by `source`.
    pub fn other(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CliError::Other {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A bad value of `option` (`--device`), for the reason `source`.
    pub fn usage(
        option: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        CliError::Usage {
            option,
            source: source.into(),
        }
    }

    /// A failure with no underlying cause.
    pub fn msg(message: impl Into<String>) -> Self {
        CliError::Other {
            message: message.into(),
            source: None,
        }
    }
}

/// Reads a spec file, choosing the syntax by its extension.
///
/// Only a regular file is read (a FIFO, device, socket or directory is refused before it is
/// opened, so nothing blocks), and at most [`Limits::MAX_SPEC_BYTES`] of it, in either syntax.
pub fn read_spec(path: &str) -> Result<SourceFile, CliError> {
    let shown = diag::escape(path).into_owned();
    let syntax = Syntax::from_path(path).ok_or_else(|| CliError::Extension {
        path: shown.clone(),
    })?;
    let text = read_spec_text(std::path::Path::new(path), &shown)?;
    Ok(SourceFile::new(path, text, syntax))
}

/// Reads the text of a spec file at `path` (named `shown` in errors): only a regular file
/// is opened (a FIFO would block, a device could be endless), at most
/// [`Limits::MAX_SPEC_BYTES`] are read, and the text must be UTF-8. Used by the CLI and by
/// the `#[resnet]` macro.
pub fn read_spec_text(path: &std::path::Path, shown: &str) -> Result<String, CliError> {
    use std::io::Read as _;
    let shown = || shown.to_string();
    let read_error = |source| CliError::Read {
        path: shown(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if let Some(kind) = crate::files::not_regular(&meta) {
        return Err(CliError::NotRegular {
            path: shown(),
            kind,
        });
    }
    let file = crate::files::open_without_blocking(path).map_err(read_error)?;
    // Look again at what was opened: the path may have changed in between.
    if let Some(kind) = crate::files::not_regular(&file.metadata().map_err(read_error)?) {
        return Err(CliError::NotRegular {
            path: shown(),
            kind,
        });
    }
    let limit = Limits::MAX_SPEC_BYTES;
    let mut bytes = Vec::new();
    // One byte more than the limit tells a file at the limit from a larger one.
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > limit {
        return Err(CliError::TooLarge {
            path: shown(),
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        // Everything before `offset` is UTF-8, so columns count characters as editors do.
        let before = String::from_utf8_lossy(&bytes[..offset]);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        CliError::NotUtf8 {
            path: shown(),
            offset,
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            // An invalid sequence starts at `valid_up_to`, which is therefore inside `bytes`.
            byte: bytes[offset],
        }
    })
}

/// Prints diagnostics to stderr, coloured when stderr is a terminal.
pub fn print_diagnostics(file: &SourceFile, diags: &[Diagnostic]) {
    if diags.is_empty() {
        return;
    }
    let choice = if std::io::stderr().is_terminal() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let mut stderr = StandardStream::stderr(choice);
    diag::emit(file, diags, &mut stderr);
}

/// Compiles one spec for a printing command: diagnostics to stderr; `None` on errors.
pub fn compile_or_report(
    path: &str,
    overrides: &Overrides,
) -> Result<Option<(SourceFile, Compiled)>, CliError> {
    let file = read_spec(path)?;
    match crate::compile_with(&file, overrides) {
        Ok(c) => {
            print_diagnostics(&file, &c.warnings);
            Ok(Some((file, c)))
        }
        Err(diags) => {
            print_diagnostics(&file, &diags);
            let n = diags.iter().filter(|d| d.is_error()).count();
            say!(
                "error: could not compile `{}` due to {n} previous error{}",
                diag::escape(path),
                if n == 1 { "" } else { "s" }
            );
            Ok(None)
        }
    }
}

/// Parses `CxHxW` (e.g. `3x224x224`) for `--input`.
pub fn parse_shape(s: &str) -> Result<Shape, String> {
    let parts: Vec<&str> = s.split(['x', 'X']).collect();
    let [c, h, w] = parts.as_slice() else {
        return Err(format!("expected CxHxW such as 3x224x224, found `{s}`"));
    };
    let num = |p: &str, what: &str, max: u64| -> Result<u64, String> {
        let v: u64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{what} `{p}` is not a positive integer"))?;
        if v == 0 || v > max {
            return Err(format!("{what} {v} is outside 1..={max}"));
        }
        Ok(v)
    };
    let shape = Shape::new(
        num(c, "channels", Limits::MAX_CHANNELS)?,
        num(h, "height", Limits::MAX_SIDE)?,
        num(w, "width", Limits::MAX_SIDE)?,
    );
    if shape.h * shape.w > Limits::MAX_PIXELS {
        return Err(format!(
            "{}x{} is more than {} pixels",
            shape.h,
            shape.w,
            Limits::MAX_PIXELS
        ));
    }
    Ok(shape)
}

/// Common overrides shared by the printing commands.
#[derive(clap::Args, Debug, Clone)]
pub struct OverrideArgs {
    /// Override the spec's input size, as CxHxW (e.g. 1x28x28).
    #[arg(long, value_name = "CxHxW", value_parser = parse_shape)]
    input: Option<Shape>,
    /// Override the number of classes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=Limits::MAX_CLASSES))]
    classes: Option<u64>,
}

impl OverrideArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            input: self.input,
            classes: self.classes,
            name: None,
        }
    }
}
