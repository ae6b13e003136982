//! Byte spans into one spec source, and the source file they point into.

use std::ops::Range;

/// A half-open byte range `start..end` into a [`SourceFile`]'s text.
///
/// Spans are kept beside the IR (see [`crate::lower::SpanTable`]), never inside
/// IR nodes, so the IR stays plain data that back ends can compare and print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (clamped so that `end >= start`).
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    /// The empty span at the very start of a file: used when nothing better is known.
    pub const DUMMY: Span = Span { start: 0, end: 0 };

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// A value together with the place in the spec it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// The syntax a spec is written in, chosen by file extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Syntax {
    /// `.yaml` / `.yml`, read with serde.
    #[default]
    Yaml,
    /// `.resnet`, the compact DSL of `grammar/resnet.pest`.
    Dsl,
}

impl Syntax {
    /// The syntax for a path's extension, if it is one resnetc reads.
    pub fn from_path(path: &str) -> Option<Syntax> {
        let ext = std::path::Path::new(path).extension()?.to_str()?;
        match ext {
            "yaml" | "yml" => Some(Syntax::Yaml),
            "resnet" => Some(Syntax::Dsl),
            _ => None,
        }
    }
}

/// One spec's text and the name it is reported under.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path as the user gave it (used in `--> path:line:col`).
    pub name: String,
    pub text: String,
    pub syntax: Syntax,
}

impl SourceFile {
    /// A spec's text as read. A leading UTF-8 byte order mark is dropped, in both syntaxes:
    /// editors do not show it, so line 1's columns then count as the editor does, and every
    /// span points into `text` as stored here (which is what diagnostics print).
    pub fn new(name: impl Into<String>, text: impl Into<String>, syntax: Syntax) -> Self {
        let mut text = text.into();
        if text.starts_with(BOM) {
            text.drain(..BOM.len_utf8());
        }
        SourceFile {
            name: name.into(),
            text,
            syntax,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// Byte offset of a 1-based line and column (in characters); clamped to the text.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let within: usize = l
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + within;
            }
            offset += l.len();
        }
        self.text.len()
    }
}

/// U+FEFF, the byte order mark some editors put at the start of UTF-8 files.
const BOM: char = '\u{feff}';

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_round_trips() {
        let f = SourceFile::new("x", "ab\ncdé\nf", Syntax::Yaml);
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(4), (2, 2));
        assert_eq!(f.offset_of(2, 2), 4);
        assert_eq!(f.line_col(f.offset_of(3, 1)), (3, 1));
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        let f = SourceFile::new("x", "\u{feff}model a\n", Syntax::Dsl);
        assert_eq!(f.text, "model a\n");
        assert_eq!(f.line_col(0), (1, 1));
        // Only at the start: elsewhere it is text like any other.
        let f = SourceFile::new("x", "a\u{feff}", Syntax::Dsl);
        assert_eq!(f.text, "a\u{feff}");
    }
}
