//! Splitting a spec into statement lines and deciding what each line is.

use super::Rule;
use crate::ir::BlockKind;
use crate::span::Span;

/// One non-blank, non-comment line of the spec.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The whole line, without its `\n`.
    pub text: &'a str,
    /// Byte offset of the line's first character in the file.
    pub start: usize,
    pub kind: LineKind,
}

impl Line<'_> {
    /// Span of the statement: first token to the last one, without comment or blanks.
    pub fn content_span(&self) -> Span {
        let body = strip_comment(self.text);
        let lead = body.len() - body.trim_start().len();
        let end = body.trim_end().len();
        Span::new(self.start + lead, self.start + end)
    }
}

/// What a line's first word says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A statement parsed with this entry rule of the grammar.
    Statement(Rule),
    /// An identifier that starts no statement: a top-level key the language lacks.
    Unknown(Span),
    /// Something that cannot start a statement at all (`3x224`, `->`).
    Garbage,
}

/// The statement keywords, with the rule that parses each line kind.
pub const STATEMENTS: &[(&str, Rule)] = &[
    ("model", Rule::model_line),
    ("input", Rule::input_line),
    ("stem", Rule::stem_line),
    ("defaults", Rule::defaults_line),
    ("head", Rule::head_line),
    ("init", Rule::init_line),
    ("zero_init_residual", Rule::zero_init_residual_line),
    ("batch_norm", Rule::batch_norm_line),
    ("norm", Rule::norm_line),
    ("drop_path", Rule::drop_path_line),
    ("features", Rule::features_line),
];

/// The keys accepted at the top level (for "unknown key" reports).
pub const STATEMENT_KEYS: &[&str] = &[
    "model",
    "input",
    "stem",
    "defaults",
    "head",
    "init",
    "zero_init_residual",
    "batch_norm",
    "norm",
    "drop_path",
    "features",
];

/// The statement lines of `text`, blank and comment-only lines left out.
pub fn split(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    // A byte-order mark (which some editors write) is no part of the first line, as in YAML.
    let mut start = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    for raw in text[start..].split_inclusive('\n') {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let body = line.trim_start_matches(is_blank);
        if !body.is_empty() && !body.starts_with('#') {
            let lead = line.len() - body.len();
            out.push(Line {
                text: line,
                start,
                kind: classify(body, start + lead),
            });
        }
        start += raw.len();
    }
    out
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// The line without a trailing `#` comment. Quoted names may hold `#`, so quotes are
/// skipped over.
pub fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Decides the kind of a line from its first word. `body` starts at the line's first
/// non-blank character, which is at byte `at` of the file.
///
/// A word followed by `:` names a stage (even `head: basic [...]`); a statement keyword
/// starts that statement; a block kind, or a `[` anywhere, makes a stage without a name.
fn classify(body: &str, at: usize) -> LineKind {
    if body.starts_with('"') {
        return LineKind::Statement(Rule::stage_line);
    }
    let word_len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let word = &body[..word_len];
    let after = body[word_len..].trim_start_matches(is_blank);
    if !word.is_empty() && after.starts_with(':') {
        return LineKind::Statement(Rule::stage_line);
    }
    if let Some((_, rule)) = STATEMENTS.iter().find(|(kw, _)| *kw == word) {
        return LineKind::Statement(*rule);
    }
    if BlockKind::from_keyword(word).is_some() || strip_comment(body).contains('[') {
        return LineKind::Statement(Rule::stage_line);
    }
    if word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return LineKind::Unknown(Span::new(at, at + word_len));
    }
    LineKind::Garbage
}

/// The form of each statement, shown as help under a syntax error.
pub fn expected_form(rule: Rule) -> &'static str {
    match rule {
        Rule::model_line => "the model line reads `model resnet50`",
        Rule::input_line => "the input line reads `input 3x224x224` (channels x height x width)",
        Rule::stem_line => {
            "the stem reads `stem conv 7x7/2 pad 3 -> 64, bn, relu, maxpool 3x3/2 pad 1` \
             (or `no pool` for no pooling)"
        }
        Rule::defaults_line => "the defaults line reads `defaults bottleneck, stride_on conv2, shortcut B`",
        Rule::stage_line => {
            "a stage reads `conv3_x: bottleneck [128, 128, 512] x4 /2`, options may follow: `, groups 32`"
        }
        Rule::head_line => "the head reads `head avgpool, dropout 0.5, fc 1000, softmax`",
        Rule::init_line => "the init line reads `init kaiming_normal` or `init xavier_uniform`",
        Rule::zero_init_residual_line => "the line reads `zero_init_residual` (or `zero_init_residual false`)",
        Rule::batch_norm_line => "the batch-norm line reads `batch_norm eps 1e-5 momentum 0.1`",
        Rule::norm_line => "the norm line reads `norm batch` or `norm group 32`",
        Rule::drop_path_line => "the drop-path line reads `drop_path 0.05` (a rate in [0, 1))",
        Rule::features_line => "the features line reads `features conv4_x, conv5_x` (stage names)",
        _ => STATEMENT_HELP,
    }
}

/// Help for a line that starts no statement.
pub const STATEMENT_HELP: &str = "a line is one of `model NAME`, `input CxHxW`, `stem ...`, \
     `defaults ...`, a stage such as `conv2_x: basic [64, 64] x2`, `head ...`, `init ...`, \
     `zero_init_residual`, `batch_norm ...`, `norm ...`, `drop_path P`, `features STAGE, ...`";

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> LineKind {
        classify(line, 0)
    }

    #[test]
    fn first_word_picks_the_statement() {
        assert_eq!(kind("model x"), LineKind::Statement(Rule::model_line));
        assert_eq!(kind("stem conv 3x3"), LineKind::Statement(Rule::stem_line));
        assert_eq!(
            kind("conv2_x: basic [64, 64] x2"),
            LineKind::Statement(Rule::stage_line)
        );
        assert_eq!(
            kind("head: basic [64, 64] x2"),
            LineKind::Statement(Rule::stage_line)
        );
        assert_eq!(kind("bottleneck x3"), LineKind::Statement(Rule::stage_line));
        assert_eq!(
            kind("bottlenek [1, 2, 3] x3"),
            LineKind::Statement(Rule::stage_line)
        );
        assert_eq!(
            kind("\"a b\": basic [1, 2]"),
            LineKind::Statement(Rule::stage_line)
        );
        assert_eq!(kind("modle resnet50"), LineKind::Unknown(Span::new(0, 5)));
        assert_eq!(
            kind("modle resnet50 # [x]"),
            LineKind::Unknown(Span::new(0, 5))
        );
        assert_eq!(kind("3x224x224"), LineKind::Garbage);
        assert_eq!(kind("-> 64"), LineKind::Garbage);
    }

    #[test]
    fn statement_keys_match_the_dispatch_table() {
        let keys: Vec<&str> = STATEMENTS.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, STATEMENT_KEYS);
    }

    #[test]
    fn split_skips_blanks_and_comments() {
        let lines = split("# title\n\n  model a # note\r\n\tinput 1x2x3");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].start, 9);
        assert_eq!(lines[0].content_span(), Span::new(11, 18));
        assert_eq!(lines[1].start, 27);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let lines = split("\u{feff}model a\ninput 1x2x3\n");
        assert_eq!(lines[0].text, "model a");
        assert_eq!(lines[0].start, 3);
        assert_eq!(lines[0].kind, LineKind::Statement(Rule::model_line));
        assert_eq!(lines[1].start, 11);
    }

    #[test]
    fn comments_skip_quoted_names() {
        assert_eq!(strip_comment("model \"a#b\" # c"), "model \"a#b\" ");
        assert_eq!(strip_comment("model \"a\\\"#b\""), "model \"a\\\"#b\"");
    }
}
