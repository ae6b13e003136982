//! Spec text made inert before it reaches a comment of the generated module.
//!
//! A model name, a stage name or a spec path is arbitrary text. Put raw into a `///` doc
//! it could open a Markdown code block (which `cargo test` then runs as a doc test), break
//! the line (and so add items after a `//` comment), or hide code behind bidirectional
//! control characters. [`doc_text`] is the one function every such string goes through.

/// Spec text as it may appear in a doc or plain comment of the generated module: one line,
/// with no character that Markdown, rustdoc or rustc would read as anything but text.
///
/// These characters become a visible `\u{..}` escape:
/// - every control character (`\n`, `\r`, `\t`, NUL, ...) and the line and paragraph
///   separators U+2028 and U+2029, so the text stays on its line;
/// - the bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
///   U+2069) and the byte order mark U+FEFF, so the source reads as it compiles;
/// - `` ` `` and `~`, so the text can neither open a code block (```` ``` ````, `~~~`) nor
///   end the inline code span it is quoted in;
/// - `<`, so it cannot start raw HTML in the rendered documentation;
/// - the `/` of `*/`, so the text cannot end a block comment.
///
/// Every other character is kept, so ordinary names read as written. The result contains
/// no escaped character, so applying the function twice changes nothing.
///
/// ```
/// use resnetc::back::rust::doc_text;
/// assert_eq!(doc_text("resnet50"), "resnet50");
/// assert_eq!(doc_text("a```rust"), r"a\u{60}\u{60}\u{60}rust");
/// assert_eq!(doc_text("line\nbreak"), r"line\u{a}break");
/// assert_eq!(doc_text("abc\u{202e}def"), r"abc\u{202e}def");
/// ```
pub fn doc_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous = None;
    for c in text.chars() {
        // Controls, line separators, bidi marks and the BOM: what a terminal or rustc
        // would take for something else.
        let escape = crate::diag::is_unprintable(c)
            || matches!(c, '`' | '~' | '<')
            || (c == '/' && previous == Some('*'));
        if escape {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// Spec text quoted as inline code in a doc comment: `` `text` ``, made inert by
/// [`doc_text`] so it cannot end the span.
pub(super) fn doc_code(text: &str) -> String {
    format!("`{}`", doc_text(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unicode's bidirectional formatting characters: they reorder how source text is shown
    /// (the "Trojan Source" attack; rustc denies them by default in comments and literals).
    fn is_bidi_control(c: char) -> bool {
        matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }

    /// U+2028 and U+2029: line breaks to some editors and Markdown renderers, not to rustc.
    fn is_line_separator(c: char) -> bool {
        matches!(c, '\u{2028}' | '\u{2029}')
    }

    fn assert_inert(text: &str) {
        let out = doc_text(text);
        for bad in ["```", "~~~", "`", "~", "\n", "\r", "\0", "*/", "<"] {
            assert!(!out.contains(bad), "{text:?} -> {out:?} keeps {bad:?}");
        }
        assert!(
            !out.chars()
                .any(|c| c.is_control() || is_bidi_control(c) || is_line_separator(c)),
            "{out:?}"
        );
        assert_eq!(doc_text(&out), out, "idempotent");
    }

    #[test]
    fn ordinary_names_are_kept() {
        for name in [
            "resnet50",
            "conv2_x",
            "wide-resnet50-2",
            "my net (v2)",
            "ünïcode",
            "a/b.yaml",
            "x*y",
            "a / b",
        ] {
            assert_eq!(doc_text(name), name);
        }
    }

    #[test]
    fn fences_cannot_open() {
        assert_eq!(doc_text("```"), r"\u{60}\u{60}\u{60}");
        assert_eq!(doc_text("~~~rust"), r"\u{7e}\u{7e}\u{7e}rust");
        assert_inert("```rust\nstd::fs::write(\"x\", \"\").unwrap();\n```");
        assert_inert("` ``");
    }

    #[test]
    fn line_breaks_and_controls_are_escaped() {
        assert_eq!(doc_text("a\rb"), r"a\u{d}b");
        assert_eq!(doc_text("a\r\nb"), r"a\u{d}\u{a}b");
        assert_eq!(doc_text("a\u{2028}b\u{2029}"), r"a\u{2028}b\u{2029}");
        assert_eq!(doc_text("nul\0"), r"nul\u{0}");
        assert_eq!(doc_text("tab\there"), r"tab\u{9}here");
        assert_eq!(doc_text("\u{1b}[31mred"), r"\u{1b}[31mred");
        assert_eq!(doc_text("\u{85}"), r"\u{85}");
        assert_inert("a\rb\u{2028}c\u{2029}\0\u{7f}\u{85}");
    }

    #[test]
    fn bidi_controls_are_escaped() {
        for c in [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{feff}',
        ] {
            let text = format!("x{c}y");
            assert_eq!(doc_text(&text), format!("x\\u{{{:x}}}y", u32::from(c)));
            assert_inert(&text);
        }
    }

    #[test]
    fn block_comment_ends_and_html_are_escaped() {
        assert_eq!(doc_text("a */ b"), r"a *\u{2f} b");
        assert_eq!(doc_text("*/*/"), r"*\u{2f}*\u{2f}");
        assert_eq!(doc_text("<script>"), r"\u{3c}script>");
        assert_inert("*/ pub fn injected() {} /*");
    }

    #[test]
    fn doc_code_cannot_be_closed_early() {
        assert_eq!(doc_code("a`b"), r"`a\u{60}b`");
    }
}
