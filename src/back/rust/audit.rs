//! A check that a generated module holds only the model: no item beyond those the
//! generator emits, no code block in any doc comment (so `cargo test` runs nothing from
//! it), and no control or bidirectional character anywhere.
//!
//! The test suite and the fuzz harness run it on modules of hostile specs.
//!
//! ```
//! # let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/resnet18.yaml")).unwrap();
//! use resnetc::back::rust::{audit::audit_module, module_source, RustOptions};
//! let spec = resnetc::span::SourceFile::new("resnet18.yaml", text, resnetc::span::Syntax::Yaml);
//! let compiled = resnetc::compile(&spec).expect("a shipped spec is valid");
//! let source = module_source(&compiled, &RustOptions::default());
//! assert_eq!(audit_module(&source, "ResNet18"), Ok(()));
//! assert!(audit_module(&format!("{source}\npub fn injected() {{}}"), "ResNet18").is_err());
//! ```

use syn::visit::Visit;

/// Why [`audit_module`] refused a module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The source is not Rust.
    #[error("the module does not parse: {0}")]
    Parse(String),
    /// A control, line-separator or bidirectional character (in the source text, or in a
    /// doc or string literal's value; `line` is 0 there).
    #[error("line {line}: character U+{code:04X} ({where_}) has no place in a generated module", code = u32::from(*ch))]
    Character {
        line: usize,
        ch: char,
        where_: &'static str,
    },
    /// An item the generator never emits (`fn injected`, a `use`, a macro call, ...).
    #[error("unexpected item: {0}")]
    UnexpectedItem(String),
    /// The model's struct is missing.
    #[error("no `pub struct {0}`")]
    MissingStruct(String),
    /// A doc comment holds a code block rustdoc would compile and run as a doc test (or an
    /// unclosed `text` block, which would swallow what follows).
    #[error("a doc comment holds a code block ({kind}) at `{line}`")]
    DocCodeBlock { kind: &'static str, line: String },
}

/// Checks a module written by [`super::module_source`] (or the tokens of
/// [`super::module_tokens`] as text) for the model struct `expected_struct`:
///
/// - it parses as a Rust file;
/// - it holds `pub struct {expected_struct}` and otherwise only the generator's own items:
///   the block structs (`BasicBlock`, `Bottleneck`, `PreActBlock`, `PreActBottleneck`,
///   `PlainBlock`, `PlainBottleneck`), `Downsample`, `Shortcut`, `ShortcutKind`, and the
///   general form's `Layer` and `Block` (each perhaps with an `Inner` suffix), their
///   inherent impls and `impl ::tch::nn::ModuleT`, and the functions `conv2d`,
///   `batch_norm2d`, `linear`, `zero_pad`, `group_norm`, `conv1d`, `squeeze_excitation`
///   and `forward_layers`;
///   no macro call, and no attribute but `doc`, `derive` and `allow`;
/// - no doc comment holds a code block that rustdoc would run: only ```` ```text ````
///   blocks are allowed (closed in the same doc), and no line is indented as a code block;
/// - no control character but `\n`, no U+2028/U+2029 and no bidirectional control occurs
///   in the source, nor in the value of any doc or string literal.
///
/// `expected_struct` is the name the options give the struct,
/// [`RustOptions::struct_name`](super::RustOptions::struct_name). The first problem found
/// is returned.
pub fn audit_module(source: &str, expected_struct: &str) -> Result<(), AuditError> {
    for (i, line) in source.split('\n').enumerate() {
        if let Some(ch) = line.chars().find(|&c| is_forbidden(c)) {
            return Err(AuditError::Character {
                line: i + 1,
                ch,
                where_: "source text",
            });
        }
    }
    let file = syn::parse_file(source).map_err(|e| AuditError::Parse(e.to_string()))?;
    check_items(&file, expected_struct)?;
    let mut visitor = Auditor::default();
    visitor.visit_file(&file);
    visitor.end_doc();
    match visitor.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The number of code blocks rustdoc would run as doc tests in `file`'s doc comments:
/// every fenced block not marked `text`, and every indented code block.
pub fn doc_code_blocks(file: &syn::File) -> usize {
    let mut visitor = Auditor {
        count_only: true,
        ..Auditor::default()
    };
    visitor.visit_file(file);
    visitor.end_doc();
    visitor.blocks
}

fn is_forbidden(c: char) -> bool {
    crate::diag::is_unprintable(c) && c != '\n'
}

/// The generator's own type names.
const TYPES: &[&str] = &[
    "BasicBlock",
    "Bottleneck",
    "PreActBlock",
    "PreActBottleneck",
    "PlainBlock",
    "PlainBottleneck",
    "Downsample",
    "Shortcut",
    "ShortcutKind",
    "Layer",
    "Block",
];

/// The generator's helper functions.
const FUNCTIONS: &[&str] = &[
    "conv2d",
    "batch_norm2d",
    "linear",
    "zero_pad",
    "group_norm",
    "conv1d",
    "squeeze_excitation",
    "forward_layers",
];

fn check_items(file: &syn::File, expected: &str) -> Result<(), AuditError> {
    let is_type = |name: &str| {
        name == expected
            || TYPES.contains(&name)
            || name
                .strip_suffix("Inner")
                .is_some_and(|base| base == expected && TYPES.contains(&base))
    };
    if !file.attrs.is_empty() {
        return Err(AuditError::UnexpectedItem("an inner attribute".into()));
    }
    let mut found = false;
    for item in &file.items {
        match item {
            syn::Item::Struct(s) if is_type(&s.ident.to_string()) => found |= s.ident == expected,
            syn::Item::Enum(e) if is_type(&e.ident.to_string()) => {}
            syn::Item::Fn(f) if FUNCTIONS.contains(&f.sig.ident.to_string().as_str()) => {}
            syn::Item::Impl(i) => {
                let self_ty = match &*i.self_ty {
                    syn::Type::Path(p) if p.qself.is_none() => {
                        p.path.get_ident().map(ToString::to_string)
                    }
                    _ => None,
                };
                if !self_ty.as_deref().is_some_and(is_type) {
                    return Err(AuditError::UnexpectedItem(format!(
                        "impl for `{}`",
                        quote::ToTokens::to_token_stream(&i.self_ty)
                    )));
                }
                if let Some((path, _)) = &i.trait_ {
                    let text = quote::ToTokens::to_token_stream(path)
                        .to_string()
                        .replace(' ', "");
                    if text != "::tch::nn::ModuleT" {
                        return Err(AuditError::UnexpectedItem(format!("impl of `{text}`")));
                    }
                }
                for member in &i.items {
                    if !matches!(member, syn::ImplItem::Fn(_) | syn::ImplItem::Const(_)) {
                        return Err(AuditError::UnexpectedItem(format!(
                            "`{}` in an impl",
                            quote::ToTokens::to_token_stream(member)
                        )));
                    }
                }
            }
            other => return Err(AuditError::UnexpectedItem(describe(other))),
        }
    }
    if found {
        Ok(())
    } else {
        Err(AuditError::MissingStruct(expected.to_string()))
    }
}

/// `fn injected`, `struct Net`, `use`, ...: what an unexpected item is.
fn describe(item: &syn::Item) -> String {
    let named = |what: &str, ident: &syn::Ident| format!("{what} `{ident}`");
    match item {
        syn::Item::Const(i) => named("const", &i.ident),
        syn::Item::Enum(i) => named("enum", &i.ident),
        syn::Item::ExternCrate(i) => named("extern crate", &i.ident),
        syn::Item::Fn(i) => named("fn", &i.sig.ident),
        syn::Item::Mod(i) => named("mod", &i.ident),
        syn::Item::Static(i) => named("static", &i.ident),
        syn::Item::Struct(i) => named("struct", &i.ident),
        syn::Item::Trait(i) => named("trait", &i.ident),
        syn::Item::Type(i) => named("type", &i.ident),
        syn::Item::Union(i) => named("union", &i.ident),
        syn::Item::Use(_) => "a `use` declaration".into(),
        syn::Item::Macro(m) => format!(
            "a macro call `{}!`",
            quote::ToTokens::to_token_stream(&m.mac.path)
        ),
        syn::Item::ForeignMod(_) => "an `extern` block".into(),
        _ => "an item the generator never writes".into(),
    }
}

/// Walks the file: checks attributes, macros and literals, and reads each item's doc
/// comment (its consecutive `#[doc]` attributes) as rustdoc does.
#[derive(Default)]
struct Auditor {
    /// The lines of the doc comment being read.
    doc: Vec<String>,
    count_only: bool,
    blocks: usize,
    error: Option<AuditError>,
}

impl Auditor {
    fn fail(&mut self, e: AuditError) {
        if !self.count_only && self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// The doc comment read so far is complete: scan it as Markdown.
    fn end_doc(&mut self) {
        let lines = std::mem::take(&mut self.doc);
        if lines.is_empty() {
            return;
        }
        for (kind, line) in code_blocks(&lines) {
            self.blocks += 1;
            self.fail(AuditError::DocCodeBlock { kind, line });
        }
    }

    fn check_value(&mut self, value: &str, where_: &'static str) {
        if let Some(ch) = value.chars().find(|&c| is_forbidden(c)) {
            self.fail(AuditError::Character {
                line: 0,
                ch,
                where_,
            });
        }
    }
}

impl<'ast> Visit<'ast> for Auditor {
    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        let path = attr.path();
        if path.is_ident("doc") {
            let value = match &attr.meta {
                syn::Meta::NameValue(syn::MetaNameValue {
                    value:
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }),
                    ..
                }) => Some(s.value()),
                _ => None,
            };
            match value {
                Some(value) => {
                    self.check_value(&value, "doc comment");
                    // rustdoc joins a doc's attributes with line breaks; one attribute may
                    // hold several lines.
                    self.doc.extend(value.split('\n').map(str::to_string));
                }
                None => self.fail(AuditError::UnexpectedItem(
                    "a `doc` attribute that is not a string".into(),
                )),
            }
            return;
        }
        if !(path.is_ident("derive") || path.is_ident("allow")) {
            let text = quote::ToTokens::to_token_stream(attr).to_string();
            self.fail(AuditError::UnexpectedItem(format!("attribute {text}")));
        }
    }

    // Anything between two attributes ends a doc comment: an item's name follows its
    // attributes, so every item's doc is read on its own.
    fn visit_ident(&mut self, _: &'ast proc_macro2::Ident) {
        self.end_doc();
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.end_doc();
        let text = quote::ToTokens::to_token_stream(&mac.path).to_string();
        self.fail(AuditError::UnexpectedItem(format!(
            "a macro call `{text}!`"
        )));
    }

    fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
        self.end_doc();
        self.check_value(&lit.value(), "string literal");
    }
}

/// Code blocks in one doc comment's lines: `(kind, first line)` for every fenced block not
/// marked `text` (and any unclosed `text` block), and every indented code block.
fn code_blocks(lines: &[String]) -> Vec<(&'static str, String)> {
    // rustdoc removes the indentation common to all non-blank lines first.
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indentation(l))
        .min()
        .unwrap_or(0);
    let mut found = Vec::new();
    // The open fence: its character and length.
    let mut fence: Option<(char, usize)> = None;
    let mut previous_blank = true;
    for raw in lines {
        let line = strip_columns(raw, indent);
        let cols = indentation(line);
        let rest = line.trim_start();
        let run = |c: char| rest.chars().take_while(|&x| x == c).count();
        match fence {
            Some((c, len)) => {
                if cols < 4 && run(c) >= len && rest.trim_start_matches(c).trim().is_empty() {
                    fence = None;
                }
            }
            None => {
                let fence_char = ['`', '~'].into_iter().find(|&c| run(c) >= 3);
                if let (Some(c), true) = (fence_char, cols < 4) {
                    let info = rest.trim_start_matches(c).trim();
                    if !(c == '`' && info == "text") {
                        found.push(("a fenced block rustdoc would test", line.to_string()));
                    }
                    fence = Some((c, run(c)));
                } else if cols >= 4 && previous_blank && !rest.is_empty() {
                    found.push(("an indented code block", line.to_string()));
                }
            }
        }
        previous_blank = rest.is_empty();
    }
    if fence.is_some() {
        found.push(("an unclosed fenced block", String::new()));
    }
    found
}

/// Leading indentation in columns (a tab to the next multiple of 4, as CommonMark).
fn indentation(line: &str) -> usize {
    let mut cols = 0;
    for c in line.chars() {
        match c {
            ' ' => cols += 1,
            '\t' => cols += 4 - cols % 4,
            _ => break,
        }
    }
    cols
}

/// `line` without its first `cols` columns of leading spaces.
fn strip_columns(line: &str, cols: usize) -> &str {
    let n = line.chars().take(cols).take_while(|&c| c == ' ').count();
    &line[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(doc: &str) -> usize {
        let lines: Vec<String> = doc.split('\n').map(|l| format!(" {l}")).collect();
        code_blocks(&lines).len()
    }

    #[test]
    fn fences_other_than_text_are_code() {
        assert_eq!(blocks("Text.\n\n```text\nrow\n```"), 0);
        assert_eq!(blocks("```\npanic!()\n```"), 1);
        assert_eq!(blocks("```rust\npanic!()\n```"), 1);
        assert_eq!(blocks("~~~\npanic!()\n~~~"), 1);
        assert_eq!(blocks("   ```ignore\nx\n```"), 1);
        assert_eq!(blocks("```text\nrow\n```\n```\npanic!()\n```"), 1);
        // A ``` inside the text block does not end it unless it closes it.
        assert_eq!(blocks("```text\n```rust\n```"), 0);
        assert_eq!(blocks("```text\nrow"), 1, "unclosed");
        assert_eq!(blocks("a ``` b"), 0, "not at the start of a line");
    }

    #[test]
    fn indented_blocks_are_code() {
        assert_eq!(blocks("Text.\n\n    panic!()"), 1);
        assert_eq!(
            blocks("    Text,\n    all indented."),
            0,
            "common indentation is removed"
        );
        assert_eq!(blocks("    panic!()\nText."), 1, "at the start");
        assert_eq!(blocks("Text.\n\n\tpanic!()"), 1);
        assert_eq!(
            blocks("Text,\n    continued."),
            0,
            "a lazy continuation line"
        );
    }

    #[test]
    fn hand_written_modules() {
        let good = "/// The `Net` network.\n///\n/// ```text\n/// row\n/// ```\npub struct Net { pub fc: i64 }\nimpl Net { pub const X: i64 = 1; }\nfn linear() {}\n";
        assert_eq!(audit_module(good, "Net"), Ok(()));
        assert_eq!(
            audit_module(good, "Other"),
            Err(AuditError::UnexpectedItem("struct `Net`".into()))
        );
        let injected = format!("{good}pub fn injected() {{}}\n");
        assert_eq!(
            audit_module(&injected, "Net"),
            Err(AuditError::UnexpectedItem("fn `injected`".into()))
        );
        let doc_test = good.replace("```text", "```");
        assert!(matches!(
            audit_module(&doc_test, "Net"),
            Err(AuditError::DocCodeBlock { .. })
        ));
        let field_doc = good.replace(
            "pub fc",
            "/// ```\n    /// panic!()\n    /// ```\n    pub fc",
        );
        assert!(matches!(
            audit_module(&field_doc, "Net"),
            Err(AuditError::DocCodeBlock { .. })
        ));
        let bidi = good.replace("The `Net`", "The `Net\u{202e}`");
        assert!(matches!(
            audit_module(&bidi, "Net"),
            Err(AuditError::Character { ch: '\u{202e}', .. })
        ));
        let escaped = good.replace("/// The `Net` network.", "#[doc = \" a\\r```\"]");
        assert!(matches!(
            audit_module(&escaped, "Net"),
            Err(AuditError::Character { ch: '\r', .. })
        ));
        let cr = good.replace("network.", "network.\r");
        assert!(matches!(
            audit_module(&cr, "Net"),
            Err(AuditError::Character {
                ch: '\r',
                line: 1,
                ..
            })
        ));
        let mac = good.replace("fn linear() {}", "fn linear() { include!(\"x\"); }");
        assert!(matches!(
            audit_module(&mac, "Net"),
            Err(AuditError::UnexpectedItem(_))
        ));
        let attr = good.replace("fn linear", "#[export_name = \"main\"] fn linear");
        assert!(matches!(
            audit_module(&attr, "Net"),
            Err(AuditError::UnexpectedItem(_))
        ));
        assert!(matches!(
            audit_module("fn linear() {}", "Net"),
            Err(AuditError::MissingStruct(_))
        ));
        assert!(matches!(
            audit_module("pub struct", "Net"),
            Err(AuditError::Parse(_))
        ));
        let file = syn::parse_file(&doc_test).expect("parses");
        assert_eq!(doc_code_blocks(&file), 1);
    }
}
