//! Diagnostics: problems found in a spec, as data until they are rendered at the edge.
//!
//! Every stage of the compiler (front ends, lowering, shape checking) reports problems
//! as [`Diagnostic`] values carrying spans into the spec. They become text only in
//! [`render`], through codespan-reporting, which prints the rustc-style
//! `--> file:line:col` header and the offending source line.

use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic as cr;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A labelled span: the primary one says what is wrong, secondary ones give context.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// One problem in a spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier of the kind of problem (`E-shape-add`, `E-unknown-key`, ...),
    /// so tests and tools can match on it without parsing prose.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    /// `= note:` lines (context such as expected vs found shapes).
    pub notes: Vec<String>,
    /// `= help:` lines: the fix, where one is known.
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Adds the primary label (where the problem is).
    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into(), primary: true });
        self
    }

    /// Adds a secondary label (related context).
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The primary span, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

/// True when any diagnostic is an error (warnings alone do not fail a check).
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}

/// "did you mean `x`?" for a misspelt keyword, if one candidate is close enough.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word.to_ascii_lowercase(), c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn to_codespan(d: &Diagnostic) -> cr::Diagnostic<()> {
    let severity = match d.severity {
        Severity::Error => cr::Severity::Error,
        Severity::Warning => cr::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let style = if l.primary { cr::LabelStyle::Primary } else { cr::LabelStyle::Secondary };
            cr::Label::new(style, (), l.span.range()).with_message(l.message.clone())
        })
        .collect();
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    notes.extend(d.help.iter().map(|h| format!("help: {h}")));
    cr::Diagnostic::new(severity)
        .with_code(d.code)
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders diagnostics as plain text (no colour), as tests and the macro use it.
pub fn render(file: &SourceFile, diags: &[Diagnostic]) -> String {
    let mut buffer = termcolor::Buffer::no_color();
    emit(file, diags, &mut buffer);
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

/// Writes diagnostics to any termcolor writer (coloured on a terminal).
pub fn emit(file: &SourceFile, diags: &[Diagnostic], writer: &mut dyn termcolor::WriteColor) {
    let files = SimpleFile::new(file.name.as_str(), file.text.as_str());
    // rustc's ASCII layout (`--> file:line:col`, `|` gutters): readable in any terminal,
    // log file or compiler error message.
    let config = term::Config { chars: term::Chars::ascii(), ..term::Config::default() };
    for d in diags {
        // Spans are produced by our own front ends and clamped to the text, so the
        // only failure here is an I/O error on the writer, which we cannot report anyway.
        let _ = term::emit_to_write_style(writer, &config, &files, &to_codespan(&clamped(d, file.text.len())));
    }
}

fn clamped(d: &Diagnostic, len: usize) -> Diagnostic {
    let mut d = d.clone();
    for l in &mut d.labels {
        l.span = Span::new(l.span.start.min(len), l.span.end.min(len));
    }
    d
}
