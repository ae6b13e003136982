//! Diagnostics: problems found in a spec, as data until they are rendered at the edge.
//!
//! Every stage of the compiler (front ends, lowering, shape checking) reports problems
//! as [`Diagnostic`] values carrying spans into the spec. They become text only in
//! [`render`], through codespan-reporting, which prints the rustc-style
//! `--> file:line:col` header and the offending source line.
//!
//! Rendering is bounded whatever the spec: at most [`MAX_SHOWN`] diagnostics are printed
//! (then a count of the rest), a source line longer than [`MAX_LINE_CHARS`] characters is
//! shown as windows around its labels, and control characters from the spec (terminal
//! escapes, NUL, bidi overrides) are printed as `\u{1b}` escapes, never raw.

use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic as cr;
use codespan_reporting::files::{self, Files};
use codespan_reporting::term::{self, termcolor};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

/// At most this many diagnostics are rendered for one spec; the rest are only counted.
pub const MAX_SHOWN: usize = 50;
/// A source line longer than this many characters is cut to windows around its labels.
pub const MAX_LINE_CHARS: usize = 120;
/// Characters kept on each side of a labelled position in a cut line.
const WINDOW_CHARS: usize = 40;
/// Messages, labels, notes and file names are cut after this many characters.
const MAX_MESSAGE_CHARS: usize = 300;

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
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    /// Adds the primary label (where the problem is).
    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Adds a secondary label (related context).
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
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
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word.to_ascii_lowercase(), c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// True for characters never written raw to a terminal: C0 and C1 controls, DEL, and the
/// invisible bidi and byte-order marks that make text read differently from what it is.
/// Characters never printed as they are: controls (C0, DEL, C1), bidi marks and
/// overrides, line and paragraph separators, and the byte order mark.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}'
        )
}

/// `s` with every control character (newlines and tabs included) and bidi mark written as
/// a Rust escape (`\u{1b}`), for names and paths printed in one-line messages.
///
/// ```
/// assert_eq!(resnetc::diag::escape("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
/// assert_eq!(resnetc::diag::escape("conv2_x"), "conv2_x");
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &[])
}

/// [`escape`], keeping line breaks and tabs: for whole printed texts (tables, DOT, specs).
pub fn escape_keeping_layout(s: &str) -> Cow<'_, str> {
    escape_keeping(s, &['\n', '\t'])
}

/// [`escape`], keeping the given characters as they are.
fn escape_keeping<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| is_unprintable(c) && !keep.contains(&c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c, keep);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char, keep: &[char]) {
    if is_unprintable(c) && !keep.contains(&c) {
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// Message text as printed: controls escaped (line breaks and tabs kept), cut if very long.
fn printable_message(s: &str) -> String {
    let escaped = escape_keeping_layout(s);
    cut(&escaped, MAX_MESSAGE_CHARS)
}

/// The first `max` characters of `s`, with `…` when something was left out.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn to_codespan(d: &Diagnostic, excerpt: &Excerpt) -> cr::Diagnostic<()> {
    let severity = match d.severity {
        Severity::Error => cr::Severity::Error,
        Severity::Warning => cr::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let style = if l.primary {
                cr::LabelStyle::Primary
            } else {
                cr::LabelStyle::Secondary
            };
            cr::Label::new(style, (), excerpt.range_of(l.span))
                .with_message(printable_message(&l.message))
        })
        .collect();
    let mut notes: Vec<String> = d
        .notes
        .iter()
        .map(|n| format!("note: {}", printable_message(n)))
        .collect();
    notes.extend(
        d.help
            .iter()
            .map(|h| format!("help: {}", printable_message(h))),
    );
    cr::Diagnostic::new(severity)
        .with_code(d.code)
        .with_message(printable_message(&d.message))
        .with_labels(labels)
        .with_notes(notes)
}

/// Renders diagnostics as plain text (no colour), as tests and the macro use it.
pub fn render(file: &SourceFile, diags: &[Diagnostic]) -> String {
    let mut buffer = termcolor::Buffer::no_color();
    emit(file, diags, &mut buffer);
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

/// Writes diagnostics to any termcolor writer (coloured on a terminal): the first
/// [`MAX_SHOWN`], then a line counting the others.
pub fn emit(file: &SourceFile, diags: &[Diagnostic], writer: &mut dyn termcolor::WriteColor) {
    // rustc's ASCII layout (`--> file:line:col`, `|` gutters): readable in any terminal,
    // log file or compiler error message.
    let config = term::Config {
        chars: term::Chars::ascii(),
        ..term::Config::default()
    };
    let lines = LineIndex::new(&file.text);
    let name = cut(&escape(&file.name), MAX_MESSAGE_CHARS);
    for d in diags.iter().take(MAX_SHOWN) {
        let excerpt = Excerpt::new(&name, &file.text, &lines, d, &config);
        // The excerpt holds every line a label touches, so the only failure here is an
        // I/O error on the writer, which we cannot report anyway.
        let _ = term::emit_to_write_style(writer, &config, &excerpt, &to_codespan(d, &excerpt));
    }
    if let Some(rest) = diags.get(MAX_SHOWN..).filter(|r| !r.is_empty()) {
        let errors = rest.iter().filter(|d| d.is_error()).count();
        let warnings = rest.len() - errors;
        let mut counts = Vec::new();
        if errors > 0 {
            counts.push(format!(
                "{errors} more error{}",
                if errors == 1 { "" } else { "s" }
            ));
        }
        if warnings > 0 {
            counts.push(format!(
                "{warnings} more warning{}",
                if warnings == 1 { "" } else { "s" }
            ));
        }
        let _ = writeln!(
            writer,
            "... and {} (only the first {MAX_SHOWN} are shown)\n",
            counts.join(" and ")
        );
    }
}

/// Where each line of a text starts, found once per rendering.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// A line's text without its line break (`\n` or `\r\n`).
    fn line<'t>(&self, text: &'t str, line: usize) -> (usize, &'t str) {
        let start = self.starts[line];
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&next| next - 1);
        let s = &text[start..end];
        (start, s.strip_suffix('\r').unwrap_or(s))
    }
}

/// What codespan is given for one diagnostic: only the source lines its labels show,
/// each cut to windows around the labels when long and with controls escaped, together
/// with the true line and column of every labelled position.
///
/// codespan numbers lines by index and walks every line inside a multi-line label, so the
/// excerpt has its own line indices: one per line shown, and two hidden ones where lines
/// are left out (which codespan prints as a break, as it would for the whole file).
struct Excerpt<'a> {
    name: &'a str,
    text: String,
    lines: Vec<ExcerptLine>,
    /// Original byte offset of a labelled position -> its offset in `text`.
    offsets: HashMap<usize, usize>,
    /// Offset in `text` of a labelled position -> its line and column in the spec.
    locations: HashMap<usize, files::Location>,
}

/// One line of an [`Excerpt`].
struct ExcerptLine {
    /// 1-based line number in the spec (for a hidden line, that of the next line shown).
    number: usize,
    /// Where it is in the excerpt's text (empty for a hidden line).
    range: Range<usize>,
    hidden: bool,
}

impl<'a> Excerpt<'a> {
    fn new(
        name: &'a str,
        source: &str,
        lines: &LineIndex,
        d: &Diagnostic,
        config: &term::Config,
    ) -> Self {
        let len = source.len();
        let clamp = |o: usize| floor_boundary(source, o.min(len));
        // Lines to show: those codespan renders for each label (its first and last lines,
        // and the context lines of a multi-line label).
        let mut wanted = BTreeSet::new();
        let mut points: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for l in &d.labels {
            let (start, end) = (clamp(l.span.start), clamp(l.span.end.max(l.span.start)));
            let (first, last) = (lines.line_of(start), lines.line_of(end));
            wanted.insert(first);
            wanted.insert(last);
            if last > first {
                wanted.extend(first + 1..=(first + config.start_context_lines).min(last));
                wanted.extend(last.saturating_sub(config.end_context_lines).max(first)..last);
            }
            // Positions are recorded as the label gives them, so that `range_of` finds them.
            points.entry(first).or_default().push(l.span.start);
            points
                .entry(last)
                .or_default()
                .push(l.span.end.max(l.span.start));
        }
        // codespan prints a single line left between two shown lines instead of a break.
        let gaps: Vec<usize> = wanted
            .iter()
            .zip(wanted.iter().skip(1))
            .filter(|(a, b)| **b == **a + 2)
            .map(|(a, _)| a + 1)
            .collect();
        wanted.extend(gaps);

        let mut excerpt = Excerpt {
            name,
            text: String::new(),
            lines: Vec::new(),
            offsets: HashMap::new(),
            locations: HashMap::new(),
        };
        let mut previous: Option<usize> = None;
        for line in wanted {
            if previous.is_some_and(|p| line > p + 1) {
                // Two hidden lines: an index gap codespan shows as a break.
                for _ in 0..2 {
                    let at = excerpt.text.len();
                    excerpt.lines.push(ExcerptLine {
                        number: line + 1,
                        range: at..at,
                        hidden: true,
                    });
                }
            }
            previous = Some(line);
            let mut at = points.remove(&line).unwrap_or_default();
            at.sort_unstable();
            at.dedup();
            excerpt.push_line(source, lines, line, &at);
        }
        excerpt
    }

    /// Appends one line of the spec, cut around the positions `at` (sorted) if it is long.
    /// Only the kept windows are walked character by character, so a diagnostic costs the
    /// same on a one-megabyte line as on a short one.
    fn push_line(&mut self, source: &str, lines: &LineIndex, line: usize, at: &[usize]) {
        let (line_start, text) = lines.line(source, line);
        let within = |p: usize| floor_boundary(text, p.saturating_sub(line_start).min(text.len()));
        let windows: Vec<Range<usize>> =
            if text.len() > MAX_LINE_CHARS && text.chars().nth(MAX_LINE_CHARS).is_some() {
                let mut windows: Vec<Range<usize>> = Vec::new();
                for &p in at {
                    let p = within(p);
                    let lo = text[..p]
                        .char_indices()
                        .rev()
                        .nth(WINDOW_CHARS - 1)
                        .map_or(0, |(i, _)| i);
                    let hi = text[p..]
                        .char_indices()
                        .nth(WINDOW_CHARS)
                        .map_or(text.len(), |(i, _)| p + i);
                    match windows.last_mut() {
                        Some(last) if last.end >= lo => last.end = last.end.max(hi),
                        _ => windows.push(lo..hi),
                    }
                }
                windows
            } else {
                let whole = 0..text.len();
                vec![whole]
            };
        let start = self.text.len();
        let mut points = at.iter().map(|&p| (p, within(p))).peekable();
        let mut done = 0;
        for w in windows
            .iter()
            .chain(std::iter::once(&(text.len()..text.len())))
        {
            if w.start > done {
                // Positions in the part left out are shown at its `…`.
                while let Some((p, rel)) = points.next_if(|&(_, rel)| rel < w.start) {
                    self.mark(p, line, text, rel);
                }
                self.text.push('…');
            }
            for (i, c) in text[w.clone()].char_indices() {
                while let Some((p, rel)) = points.next_if(|&(_, rel)| rel <= w.start + i) {
                    self.mark(p, line, text, rel);
                }
                push_escaped(&mut self.text, c, &['\t']);
            }
            done = w.end;
        }
        // Positions at the end of the line (or on its line break).
        for (p, rel) in points {
            self.mark(p, line, text, rel);
        }
        self.lines.push(ExcerptLine {
            number: line + 1,
            range: start..self.text.len(),
            hidden: false,
        });
        self.text.push('\n');
    }

    /// Records that spec offset `offset`, at byte `rel` of `line` (whose text is
    /// `line_text`), is at the current end of `text`.
    fn mark(&mut self, offset: usize, line: usize, line_text: &str, rel: usize) {
        let here = self.text.len();
        self.offsets.insert(offset, here);
        let column = line_text[..rel].chars().count() + 1;
        self.locations.entry(here).or_insert(files::Location {
            line_number: line + 1,
            column_number: column,
        });
    }

    /// A span of the spec as a range of `text`.
    fn range_of(&self, span: Span) -> Range<usize> {
        // Every label's ends were marked when the excerpt was built.
        let start = self.offsets.get(&span.start).copied().unwrap_or(0);
        let end = self
            .offsets
            .get(&span.end.max(span.start))
            .copied()
            .unwrap_or(start)
            .max(start);
        start..end
    }
}

impl<'f> Files<'f> for Excerpt<'_> {
    type FileId = ();
    type Name = &'f str;
    type Source = &'f str;

    fn name(&'f self, (): ()) -> Result<&'f str, files::Error> {
        Ok(self.name)
    }

    fn source(&'f self, (): ()) -> Result<&'f str, files::Error> {
        Ok(&self.text)
    }

    fn line_index(&'f self, (): (), byte_index: usize) -> Result<usize, files::Error> {
        self.lines
            .iter()
            .position(|l| !l.hidden && l.range.start <= byte_index && byte_index <= l.range.end)
            .ok_or(files::Error::IndexTooLarge {
                given: byte_index,
                max: self.text.len(),
            })
    }

    fn line_number(&'f self, (): (), line_index: usize) -> Result<usize, files::Error> {
        self.line(line_index).map(|l| l.number)
    }

    fn line_range(&'f self, (): (), line_index: usize) -> Result<Range<usize>, files::Error> {
        self.line(line_index).map(|l| l.range.clone())
    }

    fn location(&'f self, id: (), byte_index: usize) -> Result<files::Location, files::Error> {
        match self.locations.get(&byte_index) {
            Some(l) => Ok(*l),
            None => {
                let line = self.line(self.line_index(id, byte_index)?)?;
                let column = self
                    .text
                    .get(line.range.start..byte_index)
                    .map_or(0, |s| s.chars().count());
                Ok(files::Location {
                    line_number: line.number,
                    column_number: column + 1,
                })
            }
        }
    }
}

impl Excerpt<'_> {
    fn line(&self, index: usize) -> Result<&ExcerptLine, files::Error> {
        self.lines.get(index).ok_or(files::Error::LineTooLarge {
            given: index,
            max: self.lines.len().saturating_sub(1),
        })
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Syntax;

    fn one(text: &str, span: Span) -> String {
        let file = SourceFile::new("x.resnet", text, Syntax::Dsl);
        render(
            &file,
            &[Diagnostic::error("E-test", "bad").with_primary(span, "here")],
        )
    }

    #[test]
    fn a_long_line_is_cut_around_the_label_and_keeps_its_column() {
        let text = format!("{}BAD{}\n", "a".repeat(5000), "b".repeat(5000));
        let out = one(&text, Span::new(5000, 5003));
        assert!(out.contains("--> x.resnet:1:5001"), "{out}");
        let shown = out.lines().find(|l| l.starts_with("1 |")).unwrap();
        assert_eq!(
            shown,
            format!(
                "1 | …{}BAD{}…",
                "a".repeat(WINDOW_CHARS),
                "b".repeat(WINDOW_CHARS)
            )
        );
        let carets = out.lines().find(|l| l.contains('^')).unwrap();
        assert_eq!(
            carets.chars().position(|c| c == '^'),
            shown.chars().position(|c| c == 'B'),
            "{out}"
        );
    }

    #[test]
    fn controls_in_the_source_line_are_escaped_under_a_matching_label() {
        let out = one("model \u{1b}[2J\r\n", Span::new(6, 7));
        assert!(out.contains("1 | model \\u{1b}[2J\n"), "{out:?}");
        assert!(out.contains("  |       ^^^^^^ here"), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out:?}");
    }

    #[test]
    fn labels_on_other_lines_keep_their_line_numbers() {
        let text = "a\nb\nc\nd\ne\nf\n";
        let file = SourceFile::new("x.resnet", text, Syntax::Dsl);
        let d = Diagnostic::error("E-test", "bad")
            .with_primary(Span::new(10, 11), "f")
            .with_secondary(Span::new(2, 3), "b");
        let out = render(&file, &[d]);
        assert!(out.contains("--> x.resnet:6:1"), "{out}");
        assert!(
            out.contains("2 | b") && out.contains("6 | f") && !out.contains("4 | d"),
            "{out}"
        );
    }

    #[test]
    fn only_the_first_diagnostics_are_shown() {
        let file = SourceFile::new("x.resnet", "a\n", Syntax::Dsl);
        let mut diags: Vec<Diagnostic> = (0..MAX_SHOWN + 3)
            .map(|_| Diagnostic::error("E-test", "bad").with_primary(Span::new(0, 1), "a"))
            .collect();
        diags.push(Diagnostic::warning("W-test", "meh").with_primary(Span::new(0, 1), "a"));
        let out = render(&file, &diags);
        assert_eq!(out.matches("error[E-test]").count(), MAX_SHOWN);
        assert!(
            out.contains(&format!(
                "... and 3 more errors and 1 more warning (only the first {MAX_SHOWN} are shown)"
            )),
            "{out}"
        );
    }

    #[test]
    fn a_span_past_the_end_points_at_the_end() {
        let out = one("model a\nbasic\n", Span::new(100, 200));
        assert!(out.contains("--> x.resnet:3:1"), "{out}");
        let out = one("model é", Span::new(7, 8));
        assert!(out.contains("--> x.resnet:1:7"), "{out}");
        assert!(out.contains("1 | model é\n  |       ^ here"), "{out}");
    }

    /// codespan's own rendering of the whole file, for comparison.
    fn plain_codespan(file: &SourceFile, d: &Diagnostic) -> String {
        let files =
            codespan_reporting::files::SimpleFile::new(file.name.as_str(), file.text.as_str());
        let config = term::Config {
            chars: term::Chars::ascii(),
            ..term::Config::default()
        };
        let labels = d
            .labels
            .iter()
            .map(|l| {
                let style = if l.primary {
                    cr::LabelStyle::Primary
                } else {
                    cr::LabelStyle::Secondary
                };
                cr::Label::new(style, (), l.span.range()).with_message(l.message.clone())
            })
            .collect();
        let diagnostic = cr::Diagnostic::error()
            .with_code(d.code)
            .with_message(d.message.clone())
            .with_labels(labels);
        let mut buffer = termcolor::Buffer::no_color();
        term::emit_to_write_style(&mut buffer, &config, &files, &diagnostic).unwrap();
        String::from_utf8(buffer.into_inner()).unwrap()
    }

    #[test]
    fn short_clean_lines_render_as_codespan_renders_the_whole_file() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let file = SourceFile::new("x.resnet", text.as_str(), Syntax::Dsl);
        let at = |line: usize| file.offset_of(line, 1);
        let cases: Vec<Vec<(usize, usize, bool)>> = vec![
            vec![(at(3), at(3) + 4, true)],
            vec![(at(3), at(3) + 4, true), (at(5), at(5) + 4, false)],
            vec![(at(3), at(3) + 4, true), (at(4), at(4) + 4, false)],
            vec![(at(3), at(3) + 4, true), (at(20), at(20) + 6, false)],
            vec![(at(2), at(18) + 3, true)],
            vec![(at(2), at(18) + 3, true), (at(25), at(25) + 2, false)],
            vec![(at(29), text.len(), true)],
        ];
        for labels in cases {
            let mut d = Diagnostic::error("E-test", "bad");
            for (start, end, primary) in labels {
                d.labels.push(Label {
                    span: Span::new(start, end),
                    message: "here".into(),
                    primary,
                });
            }
            assert_eq!(
                render(&file, std::slice::from_ref(&d)),
                plain_codespan(&file, &d),
                "{:?}",
                d.labels
            );
        }
    }

    #[test]
    fn a_label_over_half_a_million_lines_renders_a_few() {
        let text = "x\n".repeat(500_000);
        let file = SourceFile::new("x.resnet", text.as_str(), Syntax::Dsl);
        let d =
            Diagnostic::error("E-test", "bad").with_primary(Span::new(0, text.len() - 1), "all");
        let out = render(&file, &vec![d; MAX_SHOWN]);
        assert!(
            out.contains("     1 | / x\n") && out.contains("500000 | | x\n"),
            "{out}"
        );
        assert!(out.len() < 20_000, "{} bytes", out.len());
    }

    #[test]
    fn escape_keeping_layout_keeps_line_breaks_and_tabs() {
        assert_eq!(
            escape_keeping_layout("a\tb\n\u{1b}[0m\u{202e}\0"),
            "a\tb\n\\u{1b}[0m\\u{202e}\\u{0}"
        );
    }
}
