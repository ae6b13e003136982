//! serde-saphyr errors -> [`Diagnostic`]s with a primary label where saphyr located them.
//!
//! Codes: `E-yaml-syntax` (not YAML at all), `E-unknown-key`, `E-duplicate-key`,
//! `E-yaml-type` (a value of the wrong kind), `E-yaml-limit` (the document is too big or
//! too deep to be a spec: nesting, alias expansion, node counts).

use super::convert::{first_line_from, opens_scalar, Spans};
use super::schema;
use crate::diag::{did_you_mean, Diagnostic};
use crate::span::{SourceFile, Span};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Error, Location};

/// One diagnostic for a failed deserialization.
pub fn diagnostic(file: &SourceFile, error: &Error) -> Diagnostic {
    let spans = Spans::new(file);
    let (inner, location) = innermost(error);
    let span = location.map_or_else(|| Span::new(0, 0), |l| label_span(file, &spans, &l));
    let found = file.text.get(span.range()).unwrap_or("").to_owned();
    match inner {
        Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_key(field, expected, span),
        Error::DuplicateMappingKey { key, .. } => {
            let key = key.clone().unwrap_or_else(|| found.clone());
            let d = Diagnostic::error("E-duplicate-key", format!("duplicate key `{key}`"))
                .with_primary(span, "given a second time")
                .with_help("remove one of the two entries");
            match first_occurrence(&file.text, &key, span.start) {
                Some(first) => d.with_secondary(first, "first given here"),
                None => d,
            }
        }
        Error::InvalidScalar { ty, .. } => match tag_before(&file.text, span.start) {
            Some(tag) => tagged_scalar(ty, tag, &found, span),
            None => invalid_scalar(ty, &found, span),
        },
        Error::InvalidBooleanStrict { .. } => wrong_type("`true` or `false`", &found, span),
        Error::NullIntoString { .. } => wrong_type("a value", "nothing (null)", span),
        Error::NonFiniteFloat { value, .. } => {
            Diagnostic::error("E-yaml-type", format!("`{value}` is not a finite number"))
                .with_primary(span, "expected a finite number")
        }
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Diagnostic::error(
            "E-yaml-type",
            format!(
                "wrong type: expected {}, found {unexpected}",
                plain_expected(expected)
            ),
        )
        .with_primary(span, format!("expected {}", plain_expected(expected))),
        Error::SerdeInvalidLength { len, expected, .. } => Diagnostic::error(
            "E-yaml-type",
            format!(
                "wrong length: expected {expected}, found {len} item{}",
                if *len == 1 { "" } else { "s" }
            ),
        )
        .with_primary(span, format!("expected {expected}")),
        Error::Unexpected { expected, .. } => {
            let what = match *expected {
                "mapping start" => "a mapping (`key: value` entries)",
                "sequence start" => "a list",
                "string scalar" | "scalar" | "value" => "a single value",
                other => other,
            };
            Diagnostic::error(
                "E-yaml-type",
                format!("wrong type: expected {what}, found {}", describe(&found)),
            )
            .with_primary(span, format!("expected {what}"))
        }
        Error::SerdeMissingField { field, .. } => {
            Diagnostic::error("E-yaml-type", format!("missing key `{field}`"))
                .with_primary(span, "in this mapping")
        }
        Error::TaggedScalarCannotDeserializeIntoString { .. }
        | Error::TaggedEnumMismatch { .. }
        | Error::UnexpectedValueForUnit { .. }
        | Error::ExpectedEmptyMappingForUnitStruct { .. }
        | Error::InvalidCharNull { .. }
        | Error::InvalidCharNotSingleScalar { .. }
        | Error::BytesNotSupportedMissingBinaryTag { .. }
        | Error::QuotingRequired { .. } => {
            let message = plain_message(inner);
            Diagnostic::error("E-yaml-type", format!("wrong type: {message}"))
                .with_primary(span, message)
        }
        Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        }
        | Error::MultipleDocuments { .. } => several_documents(file, span),
        Error::Budget { breach, .. } => limit(&budget_message(breach), span),
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => limit("aliases expand to too much", span),
        _ => {
            let message = plain_message(inner);
            let d = Diagnostic::error("E-yaml-syntax", format!("invalid YAML: {message}"))
                .with_primary(span, message);
            match unclosed_bracket(&file.text, span.start) {
                Some((open, c)) => {
                    let close = if c == '[' { ']' } else { '}' };
                    d.with_secondary(
                        Span::new(open, open + 1),
                        format!("this `{c}` is still open here"),
                    )
                    .with_help(format!("close it with `{close}`"))
                }
                None => d,
            }
        }
    }
}

/// The innermost flow bracket (`[` or `{`) still open at `offset`, if any: the usual
/// cause of a confusing syntax error a line or two further down.
fn unclosed_bracket(text: &str, offset: usize) -> Option<(usize, char)> {
    let before = text.get(..offset)?;
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut line_start = 0;
    for line in before.split_inclusive('\n') {
        let code = first_line_from(before, line_start);
        let code_text = before.get(code.range()).unwrap_or("");
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for (i, c) in code_text.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') if opens_scalar(prev) => quote = Some(c),
                (None, '[' | '{') => open.push((code.start + i, c)),
                (None, ']' | '}') => {
                    open.pop();
                }
                _ => {}
            }
            prev = c;
        }
        line_start += line.len();
    }
    open.pop()
}

/// The error that says what went wrong (unwrapping snippets and alias wrappers), and the
/// place to report it: where the alias was used, if one was involved.
fn innermost(error: &Error) -> (&Error, Option<Location>) {
    let mut location = None;
    let mut e = error;
    // Wrappers nest only a few levels; the bound keeps this loop obviously finite.
    for _ in 0..16 {
        match e {
            Error::WithSnippet { error, .. } => e = error,
            Error::AliasError {
                error, locations, ..
            } => {
                location = location.or_else(|| locations.primary_location());
                e = error;
            }
            _ => break,
        }
    }
    (e, location.or_else(|| e.location()))
}

/// A location as a span worth underlining: the token there, or the next character.
fn label_span(file: &SourceFile, spans: &Spans, loc: &Location) -> Span {
    if loc.span().byte_len().is_some_and(|l| l > 0) {
        return spans.token(loc);
    }
    // Where saphyr knows only a position (syntax errors), one character is underlined.
    let span = Span::new(spans.start_of(loc), spans.start_of(loc));
    let next = file.text.get(span.start..).and_then(|r| r.chars().next());
    match next {
        Some(c) if c != '\n' => Span::new(span.start, span.start + c.len_utf8()),
        _ => span,
    }
}

/// How a value that is not what was expected looks, from its first characters.
fn describe(found: &str) -> String {
    let found = found.trim();
    match found.chars().next() {
        None => "nothing".to_owned(),
        Some('-' | '[') => "a list".to_owned(),
        Some('{') => "a mapping".to_owned(),
        Some(_) => {
            let short: String = found.chars().take(40).collect();
            format!("`{short}`")
        }
    }
}

/// The earlier `key:` of the block mapping whose duplicate key starts at `dup`: the
/// nearest line above at the same column that starts with that key, looking no
/// further up than where the mapping begins (a line indented less, without a key
/// at that column). Flow mappings are not searched.
fn first_occurrence(text: &str, key: &str, dup: usize) -> Option<Span> {
    let line_start = text.get(..dup)?.rfind('\n').map_or(0, |i| i + 1);
    let column = dup - line_start;
    let mut end = line_start;
    while end > 0 {
        let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[start..end - 1];
        end = start;
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        // Text before the column may only be indentation and `- ` list markers.
        let (before, at) = (line.get(..column), line.get(column..));
        if let (Some(before), Some(at)) = (before, at) {
            if before.chars().all(|c| c == ' ' || c == '-')
                && at
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            {
                return Some(Span::new(start + column, start + column + key.len()));
            }
        }
        let indent = line.len() - body.len();
        if indent < column {
            return None;
        }
    }
    None
}

/// A document too big or too deep to be a spec.
pub fn limit(what: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "E-yaml-limit",
        format!("the document is too large to be a spec: {what}"),
    )
    .with_primary(span, "limit reached here")
    .with_note(
        "a spec is a few dozen lines of mappings and lists; size, nesting and aliases are limited",
    )
}

/// What a budget breach means for a spec author: the limit that was passed, in words.
/// (saphyr reports the count at the moment of the breach, one past the limit.)
fn budget_message(breach: &BudgetBreach) -> String {
    let past = |n: usize| n.saturating_sub(1);
    match breach {
        BudgetBreach::Depth { depth } => format!("nested {depth} levels deep"),
        BudgetBreach::Nodes { nodes } => format!("more than {} values", past(*nodes)),
        BudgetBreach::Events { events } => format!("more than {} YAML events", past(*events)),
        BudgetBreach::Aliases { aliases } => {
            format!("more than {} aliases (`*name`)", past(*aliases))
        }
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("{aliases} aliases (`*name`) of only {anchors} anchors")
        }
        BudgetBreach::Anchors { anchors } => {
            format!("more than {} anchors (`&name`)", past(*anchors))
        }
        BudgetBreach::MergeKeys { merge_keys } => {
            format!("more than {} merge keys (`<<`)", past(*merge_keys))
        }
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            "anchored values (`&name`) too large to repeat".to_owned()
        }
        BudgetBreach::ScalarBytes { .. } | BudgetBreach::InputBytes { .. } => {
            "too much text".to_owned()
        }
        BudgetBreach::SequenceUnbalanced => "a closing bracket without its opening one".to_owned(),
        // Limits of YAML features a spec never uses (includes, property interpolation).
        _ => "a limit of the YAML reader".to_owned(),
    }
}

/// A file with a second YAML document (`---` after the first one's content).
fn several_documents(file: &SourceFile, span: Span) -> Diagnostic {
    let second = second_document(&file.text).unwrap_or(span);
    Diagnostic::error(
        "E-yaml-syntax",
        "a spec is a single YAML document, but this file holds more than one",
    )
    .with_primary(second, "a second document starts here")
    .with_help("remove this `---` line and what follows it, or put each spec in a file of its own")
}

/// The `---` line that starts the second document: the first `---` after a line of
/// content (a `---` before any content opens the first document).
fn second_document(text: &str) -> Option<Span> {
    let mut offset = 0;
    let mut content = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end();
        if body == "---" || body.starts_with("--- ") || body.starts_with("---\t") {
            if content {
                return Some(Span::new(offset, offset + 3));
            }
        } else if !body.trim_start().is_empty()
            && !body.trim_start().starts_with('#')
            && !body.starts_with('%')
        {
            content = true;
        }
        offset += line.len();
    }
    None
}

fn unknown_key(field: &str, expected: &[&'static str], span: Span) -> Diagnostic {
    let section = schema::section_of(expected);
    let mut d = Diagnostic::error("E-unknown-key", format!("unknown key `{field}` {section}"))
        .with_primary(span, "not a key of this section");
    if let Some(s) = did_you_mean(field, expected.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d.with_note(format!("accepted keys {section}: {}", expected.join(", ")))
}

fn invalid_scalar(ty: &str, found: &str, span: Span) -> Diagnostic {
    let found = found.trim();
    match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize"
        | "isize" => {
            let digits = found.trim_start_matches(['-', '+']);
            let fits = found.replace('_', "").parse::<i64>().is_ok();
            if !fits && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
            {
                Diagnostic::error("E-yaml-type", format!("integer `{found}` is too large"))
                    .with_primary(span, "does not fit in 64 bits")
            } else {
                let d = wrong_type("an integer", found, span);
                if found.parse::<f64>().is_ok() {
                    d.with_help("write a whole number, without a decimal point or exponent")
                } else {
                    d
                }
            }
        }
        "f32" | "f64" => wrong_type("a number", found, span),
        "bool" => wrong_type("`true` or `false`", found, span),
        other => wrong_type(&format!("a value of type {other}"), found, span),
    }
}

/// The YAML tag (`!!str`) written just before the scalar at `start`, on the same line.
fn tag_before(text: &str, start: usize) -> Option<&str> {
    let before = text.get(..start)?;
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let tag = line.trim_end().rsplit([' ', '\t', '{', '[', ',']).next()?;
    (tag.starts_with('!') && line.ends_with([' ', '\t'])).then_some(tag)
}

/// A scalar whose explicit tag makes it something other than the field's type.
fn tagged_scalar(ty: &str, tag: &str, found: &str, span: Span) -> Diagnostic {
    let expected = match ty {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize"
        | "isize" => "an integer",
        "f32" | "f64" | "floating point" => "a number",
        "bool" | "boolean" => "`true` or `false`",
        _ => "a value of another type",
    };
    let what = match tag {
        "!!str" | "tag:yaml.org,2002:str" => "a string".to_owned(),
        "!!float" => "a float".to_owned(),
        "!!int" => "an integer".to_owned(),
        "!!bool" => "a boolean".to_owned(),
        "!!null" => "null".to_owned(),
        other => format!("a value tagged `{other}`"),
    };
    Diagnostic::error(
        "E-yaml-type",
        format!(
            "wrong type: expected {expected}, found {what} (`{tag} {}`)",
            found.trim()
        ),
    )
    .with_primary(span, format!("expected {expected}"))
    .with_help(format!("remove the `{tag}` tag: `{}`", found.trim()))
}

fn wrong_type(expected: &str, found: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        "E-yaml-type",
        format!("wrong type: expected {expected}, found `{found}`"),
    )
    .with_primary(span, format!("expected {expected}"))
}

/// serde's "expected" phrases, with the struct names of the private schema replaced by
/// what a spec author calls them.
fn plain_expected(expected: &str) -> String {
    if expected.starts_with("struct ") {
        "a mapping (`key: value` entries)".to_owned()
    } else {
        expected.to_owned()
    }
}

/// saphyr's message without its trailing ` at line N, column M` (the label shows where).
fn plain_message(error: &Error) -> String {
    let text = error.to_string();
    let text = text.lines().next().unwrap_or("").to_owned();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(", column ") => text[..i].to_owned(),
        _ => text,
    }
}
