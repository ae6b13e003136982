//! The fuzzing harness: one input through every command's code path, with the
//! properties each path must keep.
//!
//! [`exercise`] reads bytes the way the CLI reads a spec file, then runs what `check`,
//! `table` (text, `--stages`, `--format json`), `graph` (DOT, SVG, HTML),
//! `fmt --to yaml|dsl` and `build` run. It never catches panics: a panic is the finding, and the caller (the in-suite
//! fuzz loop in `tests/fuzz.rs`, or the cargo-fuzz target in `fuzz/`) reports it.
//! Everything else that must hold is returned as [`Violation`]s:
//!
//! - a failed compile carries at least one error, and its rendered diagnostics stay
//!   within [`diagnostics_budget`] and print no control or bidi characters;
//! - the tables and the drawings print no control or bidi characters, the DOT text
//!   quotes every string it opens, and nothing of the SVG drawing overlaps;
//! - `fmt` to either syntax compiles back to the same model;
//! - `diff` against a shipped spec prints no control or bidi characters;
//! - the generated Rust module passes [`audit_generated_module`]: it parses, holds no
//!   item beyond the model's, and no doc comment holds a doc-test;
//! - the generated Python file (`build --target pytorch`, or `--target torchrun` when the
//!   network has a head) passes
//!   [`crate::back::pytorch::audit_source`].
//!
//! ```
//! use resnetc::fuzz::{exercise, Outcome};
//! use resnetc::span::Syntax;
//! let report = exercise("model tiny\nconv2_x: basic [8, 8] x1 /1\nhead avgpool, fc 2\n".as_bytes(), Syntax::Dsl);
//! assert_eq!(report.outcome, Outcome::Compiled);
//! assert!(report.violations.is_empty(), "{:?}", report.violations);
//! ```

use crate::back::rust::{module_source, RustOptions};
use crate::span::{SourceFile, Syntax};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::ToTokens;

/// Rendered diagnostics may take this many bytes per byte of input ...
pub const DIAGNOSTIC_BYTES_PER_INPUT_BYTE: usize = 64;
/// ... plus this many bytes, whatever the input.
pub const DIAGNOSTIC_BYTES_SLACK: usize = 1 << 20;

/// The most bytes the rendered diagnostics of an `input_len`-byte spec may take.
pub fn diagnostics_budget(input_len: usize) -> usize {
    input_len
        .saturating_mul(DIAGNOSTIC_BYTES_PER_INPUT_BYTE)
        .saturating_add(DIAGNOSTIC_BYTES_SLACK)
}

/// A property the harness checks, named so that known failures can be listed by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// A failed compile returned no error diagnostic (the CLI would say "0 errors").
    ErrorWithoutDiagnostic,
    /// Rendered diagnostics exceed [`diagnostics_budget`].
    DiagnosticsBounded,
    /// Rendered diagnostics print a control or bidi character taken from the spec.
    DiagnosticsInert,
    /// A table or the DOT drawing prints a control or bidi character.
    OutputsInert,
    /// The DOT text leaves a string open on some line.
    DotWellFormed,
    /// Two boxes, labels or frames of the SVG drawing overlap, or a wire crosses one
    /// ([`crate::back::draw::check_marks`]).
    DrawingLaidOut,
    /// `fmt --to yaml|dsl` prints a spec that does not compile back to the same model.
    RoundTrip,
    /// The generated Rust module fails [`audit_generated_module`].
    GeneratedModule,
    /// The generated Python file (`build --target pytorch`) fails
    /// [`crate::back::pytorch::audit_source`], or could not be generated.
    GeneratedPython,
}

impl Property {
    pub fn as_str(self) -> &'static str {
        match self {
            Property::ErrorWithoutDiagnostic => "error-without-diagnostic",
            Property::DiagnosticsBounded => "diagnostics-bounded",
            Property::DiagnosticsInert => "diagnostics-inert",
            Property::OutputsInert => "outputs-inert",
            Property::DotWellFormed => "dot-well-formed",
            Property::DrawingLaidOut => "drawing-laid-out",
            Property::RoundTrip => "round-trip",
            Property::GeneratedModule => "generated-module",
            Property::GeneratedPython => "generated-python",
        }
    }
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken property, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: Property,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.property, self.detail)
    }
}

/// How far an input got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not UTF-8: the CLI's I/O error (exit 3).
    NotUtf8,
    /// Diagnostics with this many errors (exit 1).
    Rejected { errors: usize },
    /// A checked network: every back end ran.
    Compiled,
}

/// What [`exercise`] saw for one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub violations: Vec<Violation>,
}

/// The name inputs are reported under, by syntax.
pub fn input_name(syntax: Syntax) -> &'static str {
    match syntax {
        Syntax::Yaml => "fuzz-input.yaml",
        Syntax::Dsl => "fuzz-input.resnet",
    }
}

/// Runs `data`, as a spec in `syntax`, through every command's code path.
pub fn exercise(data: &[u8], syntax: Syntax) -> Report {
    exercise_named(input_name(syntax), data, syntax)
}

/// Runs `data` through both front ends (what the cargo-fuzz target does: one input,
/// both syntaxes).
pub fn exercise_both(data: &[u8]) -> [Report; 2] {
    [exercise(data, Syntax::Yaml), exercise(data, Syntax::Dsl)]
}

/// [`exercise`] with the path the spec is reported under (it reaches diagnostics and the
/// generated module's header and docs, as `resnetc build PATH` puts it there).
pub fn exercise_named(path: &str, data: &[u8], syntax: Syntax) -> Report {
    let mut violations = Vec::new();
    // As the CLI's `read_spec`: bytes that are not UTF-8 are an I/O error, before any parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return Report {
            outcome: Outcome::NotUtf8,
            violations,
        };
    };
    let file = SourceFile::new(path, text, syntax);
    let compiled = match crate::compile(&file) {
        Ok(c) => c,
        Err(diags) => {
            let errors = diags.iter().filter(|d| d.is_error()).count();
            if errors == 0 {
                violations.push(Violation {
                    property: Property::ErrorWithoutDiagnostic,
                    detail: format!(
                        "compile failed with {} diagnostics, none an error",
                        diags.len()
                    ),
                });
            }
            check_diagnostics(&file, &diags, &mut violations);
            return Report {
                outcome: Outcome::Rejected { errors },
                violations,
            };
        }
    };
    check_diagnostics(&file, &compiled.warnings, &mut violations);

    // `table`, `table --stages`, `table --format json`, `graph`.
    let (model, net) = (&compiled.model, &compiled.network);
    let layers = crate::back::table::layers(model, net);
    let stages = crate::back::table::stages(model, net);
    let json = serde_json::to_string_pretty(&crate::back::table::json(model, net));
    let dot = crate::back::dot::graph(model, net);
    // The drawings of networks up to DRAWN_BLOCKS blocks: larger ones only repeat the same
    // pieces (tests/draw.rs draws the largest a spec may describe), and drawing thousands
    // of blocks for every mutant of the many-blocks seed would double the run.
    let drawings = (net.blocks.len() <= DRAWN_BLOCKS).then(|| {
        let opts = crate::back::draw::DrawOptions::default();
        (
            crate::back::draw::svg(&file, &compiled, &opts),
            crate::back::draw::html(&file, &compiled, &opts),
        )
    });
    let (svg, page) = drawings
        .as_ref()
        .map_or(("", ""), |(p, h)| (p.svg.as_str(), h.as_str()));
    for (what, text) in [
        ("table", layers.as_str()),
        ("table --stages", stages.as_str()),
        ("graph", dot.as_str()),
        ("graph --format svg", svg),
        ("graph --format html", page),
    ] {
        if let Some(found) = first_unsafe_char(text) {
            violations.push(Violation {
                property: Property::OutputsInert,
                detail: format!("`{what}` prints {found}"),
            });
        }
    }
    if let Err(e) = json {
        violations.push(Violation {
            property: Property::OutputsInert,
            detail: format!("`table --format json` failed: {e}"),
        });
    }
    let marks = drawings.as_ref().map_or(&[][..], |(p, _)| &p.marks[..]);
    if let Some(problem) = crate::back::draw::check_marks(marks).first() {
        violations.push(Violation {
            property: Property::DrawingLaidOut,
            detail: format!("`graph --format svg`: {problem}"),
        });
    }
    if let Some(line) = dot.lines().find(|l| !quotes_balanced(l)) {
        violations.push(Violation {
            property: Property::DotWellFormed,
            detail: format!("unclosed string in DOT line {line:?}"),
        });
    }

    // `fmt --to yaml|dsl`: each must compile back to the same model.
    for (to, printed) in [
        (Syntax::Yaml, crate::back::yaml::print(model)),
        (Syntax::Dsl, crate::back::dsl::print(model)),
    ] {
        let again = SourceFile::new(input_name(to), printed, to);
        match crate::compile(&again) {
            Ok(back) if back.model == *model => {}
            Ok(back) => violations.push(Violation {
                property: Property::RoundTrip,
                detail: format!(
                    "`fmt --to {to:?}` compiles to a different model:\n{}\n{:?}\n!=\n{:?}",
                    again.text, back.model, model
                ),
            }),
            Err(d) => violations.push(Violation {
                property: Property::RoundTrip,
                detail: format!(
                    "`fmt --to {to:?}` prints a spec that fails:\n{}\n{}",
                    again.text,
                    crate::diag::render(&again, &d)
                ),
            }),
        }
    }

    // `build`: what `resnetc build PATH` prints.
    let opts = RustOptions {
        name: None,
        source: Some(path.to_string()),
    };
    let source = module_source(&compiled, &opts);
    let struct_name = opts.struct_name(&compiled);
    if let Err(problems) = audit_generated_module(&source, &struct_name) {
        violations.push(Violation {
            property: Property::GeneratedModule,
            detail: problems.join("\n"),
        });
    }
    // The back end's own audit, written apart from this one: both must accept the module.
    if let Err(problem) = crate::back::rust::audit::audit_module(&source, &struct_name) {
        violations.push(Violation {
            property: Property::GeneratedModule,
            detail: format!("back::rust::audit: {problem}"),
        });
    }
    // `build --target pytorch`.
    let py_opts = crate::back::pytorch::PyOptions {
        name: None,
        source: Some(path.to_string()),
    };
    // With a head, the file with the torchrun entry point (the module is its first part).
    let py = if compiled.network.head.is_some() {
        crate::back::pytorch::trainer_source(&compiled, &py_opts).map_err(|e| e.to_string())
    } else {
        crate::back::pytorch::module_source(&compiled, &py_opts).map_err(|e| e.to_string())
    };
    match py {
        Ok(py) => {
            let mut texts: Vec<&str> = vec![path, &compiled.model.name];
            texts.extend(compiled.model.stages.iter().map(|s| s.name.as_str()));
            let class = py_opts.class_name(&compiled);
            if let Err(problems) = crate::back::pytorch::audit_source(&py, &class, &texts) {
                violations.push(Violation {
                    property: Property::GeneratedPython,
                    detail: problems.join("\n"),
                });
            }
        }
        Err(e) => violations.push(Violation {
            property: Property::GeneratedPython,
            detail: e,
        }),
    }
    check_diff(&compiled, path, &mut violations);
    Report {
        outcome: Outcome::Compiled,
        violations,
    }
}

/// `diff SPEC specs/cifar-resnet20.yaml` (a small network, so that stages and blocks
/// are added, removed and changed), in text. One direction only: the other runs the
/// same code with the sides swapped, and each diff costs about as much as a compile.
fn check_diff(compiled: &crate::Compiled, path: &str, violations: &mut Vec<Violation>) {
    use crate::back::diff::{compare, text, Spec};
    static REFERENCE: std::sync::OnceLock<Option<crate::Compiled>> = std::sync::OnceLock::new();
    let reference = REFERENCE.get_or_init(|| {
        let path = "specs/cifar-resnet20.yaml";
        let text = include_str!("../specs/cifar-resnet20.yaml");
        crate::compile(&SourceFile::new(path, text, Syntax::Yaml)).ok()
    });
    let Some(reference) = reference else { return };
    let d = compare(
        Spec {
            path,
            model: &compiled.model,
            network: &compiled.network,
        },
        Spec {
            path: "specs/cifar-resnet20.yaml",
            model: &reference.model,
            network: &reference.network,
        },
    );
    if let Some(found) = first_unsafe_char(&text::plain(&text::render(&d))) {
        violations.push(Violation {
            property: Property::OutputsInert,
            detail: format!("`diff` prints {found}"),
        });
    }
}

fn check_diagnostics(
    file: &SourceFile,
    diags: &[crate::diag::Diagnostic],
    violations: &mut Vec<Violation>,
) {
    if diags.is_empty() {
        return;
    }
    let rendered = crate::diag::render(file, diags);
    let budget = diagnostics_budget(file.text.len());
    if rendered.len() > budget {
        violations.push(Violation {
            property: Property::DiagnosticsBounded,
            detail: format!(
                "{} diagnostics render to {} bytes for a {}-byte spec (budget {budget})",
                diags.len(),
                rendered.len(),
                file.text.len()
            ),
        });
    }
    if let Some(found) = first_unsafe_char(&rendered) {
        violations.push(Violation {
            property: Property::DiagnosticsInert,
            detail: format!("diagnostics print {found}"),
        });
    }
}

/// Bidirectional-text controls: they make text display differently from what a compiler
/// reads (rustc denies them in source by default).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A control character other than `\n` and `\t`, or a bidi control: what must never reach
/// a terminal or a source file from a spec.
/// The most blocks a network may have for the harness to draw it.
const DRAWN_BLOCKS: usize = 64;

fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)
}

/// The first unsafe character of `text`, described with its line.
fn first_unsafe_char(text: &str) -> Option<String> {
    let (at, c) = text.char_indices().find(|&(_, c)| is_unsafe_char(c))?;
    let line = text[..at].matches('\n').count() + 1;
    Some(format!("{:?} (U+{:04X}) on line {line}", c, c as u32))
}

/// Whether every `"` opened on a DOT line is closed on it (backslash escapes honoured).
fn quotes_balanced(line: &str) -> bool {
    let mut open = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if open => {
                chars.next();
            }
            '"' => open = !open,
            _ => {}
        }
    }
    !open
}

// ---------------------------------------------------------------------------------------
// The generated-module audit.

/// Struct names of block kinds, as the Rust back end names them.
const BLOCK_STRUCTS: &[&str] = &[
    "BasicBlock",
    "Bottleneck",
    "PreActBlock",
    "PreActBottleneck",
    "PlainBlock",
    "PlainBottleneck",
    // The general form's block.
    "Block",
];
/// The projection shortcut's struct.
const SHORTCUT_STRUCTS: &[&str] = &["Downsample"];
/// The shortcut enums (option A or mixed shortcuts).
const SHORTCUT_ENUMS: &[&str] = &["Shortcut", "ShortcutKind", "Layer"];
/// Free builder functions.
const HELPER_FNS: &[&str] = &[
    "conv2d",
    "batch_norm2d",
    "linear",
    "zero_pad",
    "group_norm",
    "conv1d",
    "squeeze_excitation",
    "forward_layers",
];
/// Associated constants of the model struct.
const MODEL_CONSTS: &[&str] = &[
    "INPUT_SHAPE",
    "NUM_CLASSES",
    "TRAINABLE_PARAMS",
    "MACS",
    "FEATURES",
];
/// The one trait the module implements, by path.
const MODULE_TRAIT: &str = ":: tch :: nn :: ModuleT";
/// Outer attributes the generator writes besides docs.
const ALLOWED_ATTRIBUTES: &[&str] = &["derive", "allow"];
/// Keywords that start an item: none may appear inside a function body.
const ITEM_KEYWORDS: &[&str] = &[
    "fn",
    "struct",
    "enum",
    "union",
    "impl",
    "trait",
    "mod",
    "use",
    "extern",
    "static",
    "const",
    "type",
    "macro_rules",
    "unsafe",
];
/// Names of the Rust 2021 prelude that the generated code uses as the prelude's own.
const PRELUDE_NAMES: &[&str] = &[
    "Vec", "Option", "Box", "Some", "None", "Result", "Ok", "Err", "String", "Default", "Clone",
    "Copy",
];

/// Checks a module as `resnetc build` writes it for a model whose struct is
/// `struct_name`. Returns every problem found:
///
/// - the text holds no control character other than `\n` and `\t`, and no bidi control;
/// - it parses as a Rust file, with no inner attribute;
/// - its items are exactly the generator's: the model struct, block structs, the
///   `Downsample` struct and shortcut enums, their inherent impls and
///   `impl ::tch::nn::ModuleT`, and the helper functions `conv2d`, `batch_norm2d`,
///   `linear`, `zero_pad`; each impl holds only `new`, `forward_t` and the model's
///   metadata constants; no function body holds an item or a macro call; attributes are
///   `doc`, `derive` and `allow` only;
/// - no item defines a prelude name the module then uses as the prelude's (`Vec<`,
///   `Option<`, `Box::`), which would stop the module compiling;
/// - every doc comment is a string literal, and none holds a code block rustdoc would run:
///   a fenced block is allowed only as ```` ```text ````, and no indented (4 spaces) block
///   starts after a blank line.
pub fn audit_generated_module(source: &str, struct_name: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if let Some(found) = first_unsafe_char(source) {
        problems.push(format!("the module text holds {found}"));
    }
    let file = match syn::parse_file(source) {
        Ok(f) => f,
        Err(e) => {
            problems.push(format!("the module does not parse: {e}"));
            return Err(problems);
        }
    };
    if !file.attrs.is_empty() {
        problems.push(format!(
            "the module has {} inner attribute(s)",
            file.attrs.len()
        ));
    }
    audit_items(&file, struct_name, &mut problems);
    let tokens = file.to_token_stream();
    audit_docs(tokens.clone(), &mut problems);
    audit_shadowing(&file, tokens, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `base`, or `{base}Inner` where the model's own name took `base` (the generator's rule).
fn is_private_type(name: &str, bases: &[&str], struct_name: &str) -> bool {
    bases
        .iter()
        .any(|b| name == *b || (struct_name == *b && name == format!("{b}Inner")))
}

fn audit_attrs(attrs: &[syn::Attribute], what: &str, problems: &mut Vec<String>) {
    for a in attrs {
        let path = a.path().to_token_stream().to_string();
        if path != "doc" && !ALLOWED_ATTRIBUTES.contains(&path.as_str()) {
            problems.push(format!(
                "{what} has the attribute `#[{}]`",
                a.meta.to_token_stream()
            ));
        }
    }
}

fn audit_items(file: &syn::File, struct_name: &str, problems: &mut Vec<String>) {
    let mut types: Vec<String> = Vec::new();
    let mut fns: Vec<String> = Vec::new();
    let mut impls: Vec<(String, Option<String>)> = Vec::new();
    for item in &file.items {
        match item {
            syn::Item::Struct(s) => {
                let name = s.ident.to_string();
                audit_attrs(&s.attrs, &format!("struct `{name}`"), problems);
                for f in &s.fields {
                    audit_attrs(&f.attrs, &format!("a field of `{name}`"), problems);
                }
                if name != struct_name
                    && !is_private_type(&name, BLOCK_STRUCTS, struct_name)
                    && !is_private_type(&name, SHORTCUT_STRUCTS, struct_name)
                {
                    problems.push(format!("unexpected struct `{name}`"));
                }
                if !s.generics.params.is_empty() {
                    problems.push(format!("struct `{name}` is generic"));
                }
                types.push(name);
            }
            syn::Item::Enum(e) => {
                let name = e.ident.to_string();
                audit_attrs(&e.attrs, &format!("enum `{name}`"), problems);
                for v in &e.variants {
                    audit_attrs(&v.attrs, &format!("a variant of `{name}`"), problems);
                    for f in &v.fields {
                        audit_attrs(&f.attrs, &format!("a field of `{name}`"), problems);
                    }
                }
                if !is_private_type(&name, SHORTCUT_ENUMS, struct_name) {
                    problems.push(format!("unexpected enum `{name}`"));
                }
                types.push(name);
            }
            syn::Item::Fn(f) => {
                let name = f.sig.ident.to_string();
                audit_attrs(&f.attrs, &format!("fn `{name}`"), problems);
                if !HELPER_FNS.contains(&name.as_str()) {
                    problems.push(format!("unexpected fn `{name}`"));
                }
                audit_signature(&f.sig, &name, problems);
                audit_body(f.block.to_token_stream(), &name, problems);
                fns.push(name);
            }
            syn::Item::Impl(i) => {
                let self_ty = i.self_ty.to_token_stream().to_string();
                let of_trait = i
                    .trait_
                    .as_ref()
                    .map(|(path, _)| path.to_token_stream().to_string());
                let what = match &of_trait {
                    Some(t) => format!("`impl {t} for {self_ty}`"),
                    None => format!("`impl {self_ty}`"),
                };
                audit_attrs(&i.attrs, &what, problems);
                if i.unsafety.is_some() || !i.generics.params.is_empty() {
                    problems.push(format!("{what} is unsafe or generic"));
                }
                if of_trait.as_deref().is_some_and(|t| t != MODULE_TRAIT) {
                    problems.push(format!("unexpected trait impl {what}"));
                }
                for it in &i.items {
                    match it {
                        syn::ImplItem::Fn(f) => {
                            let name = f.sig.ident.to_string();
                            audit_attrs(&f.attrs, &format!("`{self_ty}::{name}`"), problems);
                            // A backbone's struct has `features_t` instead of the trait.
                            let expected: &[&str] = if of_trait.is_some() {
                                &["forward_t"]
                            } else if self_ty == struct_name {
                                &["new", "features_t"]
                            } else {
                                &["new"]
                            };
                            if !expected.contains(&name.as_str()) {
                                problems.push(format!("unexpected fn `{name}` in {what}"));
                            }
                            audit_signature(&f.sig, &name, problems);
                            audit_body(
                                f.block.to_token_stream(),
                                &format!("{self_ty}::{name}"),
                                problems,
                            );
                        }
                        syn::ImplItem::Const(c) => {
                            let name = c.ident.to_string();
                            audit_attrs(&c.attrs, &format!("`{self_ty}::{name}`"), problems);
                            if of_trait.is_some()
                                || self_ty != struct_name
                                || !MODEL_CONSTS.contains(&name.as_str())
                            {
                                problems.push(format!("unexpected const `{name}` in {what}"));
                            }
                            audit_body(
                                c.expr.to_token_stream(),
                                &format!("{self_ty}::{name}"),
                                problems,
                            );
                        }
                        other => problems.push(format!(
                            "unexpected impl item in {what}: `{}`",
                            short(other.to_token_stream())
                        )),
                    }
                }
                impls.push((self_ty, of_trait));
            }
            other => problems.push(format!(
                "unexpected item `{}`",
                short(other.to_token_stream())
            )),
        }
    }
    // Each name once; the model present; every impl for a type of the module.
    for (kind, names) in [("type", &types), ("fn", &fns)] {
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        for w in sorted.windows(2) {
            if w[0] == w[1] {
                problems.push(format!("{kind} `{}` is defined twice", w[0]));
            }
        }
    }
    if !types.iter().any(|t| t == struct_name) {
        problems.push(format!("no struct `{struct_name}`"));
    }
    for (self_ty, of_trait) in &impls {
        if !types.contains(self_ty) {
            problems.push(format!(
                "an impl for `{self_ty}`, which the module does not define"
            ));
        }
        let same = impls
            .iter()
            .filter(|(s, t)| s == self_ty && t == of_trait)
            .count();
        // The model's constants, `new`, and a backbone's `features_t`.
        let allowed = if of_trait.is_none() && self_ty == struct_name {
            3
        } else {
            1
        };
        if same > allowed {
            problems.push(format!("{same} impls of the same kind for `{self_ty}`"));
        }
    }
}

fn audit_signature(sig: &syn::Signature, name: &str, problems: &mut Vec<String>) {
    if !matches!(sig.safety, syn::Safety::Default)
        || sig.abi.is_some()
        || sig.asyncness.is_some()
        || sig.constness.is_some()
        || !sig.generics.params.is_empty()
    {
        problems.push(format!(
            "fn `{name}` is unsafe, extern, async, const or generic"
        ));
    }
}

/// No item and no macro call inside a function body or constant.
fn audit_body(tokens: TokenStream, what: &str, problems: &mut Vec<String>) {
    let mut prev_ident: Option<String> = None;
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match &tt {
            TokenTree::Ident(i) => {
                let s = i.to_string();
                if ITEM_KEYWORDS.contains(&s.as_str()) {
                    problems.push(format!("`{what}` holds the keyword `{s}`"));
                }
                prev_ident = Some(s);
                continue;
            }
            TokenTree::Punct(p) if p.as_char() == '!' => {
                let not_eq = matches!(iter.peek(), Some(TokenTree::Punct(q)) if q.as_char() == '=');
                if let (Some(name), false) = (&prev_ident, not_eq) {
                    problems.push(format!("`{what}` calls the macro `{name}!`"));
                }
            }
            TokenTree::Group(g) => audit_body(g.stream(), what, problems),
            _ => {}
        }
        prev_ident = None;
    }
}

/// The first 120 characters of some tokens, for a message.
fn short(tokens: TokenStream) -> String {
    let s = tokens.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{} ...", &s[..i]),
        None => s,
    }
}

/// A prelude name defined by the module and used unqualified as the prelude's generic type
/// (`Vec<`) or through a path (`Vec::from`, `None::<i64>`).
fn audit_shadowing(file: &syn::File, tokens: TokenStream, problems: &mut Vec<String>) {
    let defined: Vec<String> = file
        .items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Struct(s) => Some(s.ident.to_string()),
            syn::Item::Enum(e) => Some(e.ident.to_string()),
            syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .filter(|n| PRELUDE_NAMES.contains(&n.as_str()))
        .collect();
    if defined.is_empty() {
        return;
    }
    let mut flat = Vec::new();
    flatten(tokens, &mut flat);
    for (i, tt) in flat.iter().enumerate() {
        let TokenTree::Ident(id) = tt else { continue };
        let name = id.to_string();
        if !defined.contains(&name) {
            continue;
        }
        let is_colon =
            |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
        let qualified = i >= 2 && is_colon(flat.get(i - 1)) && is_colon(flat.get(i - 2));
        let generic = matches!(flat.get(i + 1), Some(TokenTree::Punct(p)) if p.as_char() == '<');
        let path = is_colon(flat.get(i + 1)) && is_colon(flat.get(i + 2));
        if !qualified && (generic || path) {
            problems.push(format!(
                "the module defines `{name}` and also uses the prelude's `{name}`"
            ));
            return;
        }
    }
}

/// Tokens in order, groups opened (their delimiters dropped).
fn flatten(tokens: TokenStream, out: &mut Vec<TokenTree>) {
    for tt in tokens {
        match tt {
            TokenTree::Group(g) => flatten(g.stream(), out),
            other => out.push(other),
        }
    }
}

/// Walks every attribute of the token stream: each `doc` attribute must be
/// `#[doc = "literal"]`, and the docs of one attribute run (one item's, one field's) must
/// hold no code block rustdoc would run.
fn audit_docs(tokens: TokenStream, problems: &mut Vec<String>) {
    let mut unit: Vec<String> = Vec::new();
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tts.len() {
        if let TokenTree::Punct(p) = &tts[i] {
            if p.as_char() == '#' {
                let bang =
                    matches!(tts.get(i + 1), Some(TokenTree::Punct(q)) if q.as_char() == '!');
                let at = i + 1 + usize::from(bang);
                if let Some(TokenTree::Group(g)) = tts.get(at) {
                    if g.delimiter() == Delimiter::Bracket {
                        let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                        if matches!(inner.first(), Some(TokenTree::Ident(d)) if d == "doc") {
                            match doc_literal(&inner) {
                                Some(text) => unit.push(text),
                                None => problems.push(format!(
                                    "a doc attribute is not a string literal: `#[{}]`",
                                    short(g.stream())
                                )),
                            }
                        }
                        // Any attribute keeps the run open: rustdoc joins an item's docs.
                        i = at + 1;
                        continue;
                    }
                }
            }
        }
        if !unit.is_empty() {
            audit_doc_text(&std::mem::take(&mut unit), problems);
        }
        if let TokenTree::Group(g) = &tts[i] {
            audit_docs(g.stream(), problems);
        }
        i += 1;
    }
    if !unit.is_empty() {
        audit_doc_text(&unit, problems);
    }
}

/// The text of `doc = "..."`, if the attribute is exactly that.
fn doc_literal(inner: &[TokenTree]) -> Option<String> {
    let [_, TokenTree::Punct(eq), TokenTree::Literal(lit)] = inner else {
        return None;
    };
    if eq.as_char() != '=' {
        return None;
    }
    match syn::Lit::new(lit.clone()) {
        syn::Lit::Str(s) => Some(s.value()),
        _ => None,
    }
}

/// Columns of leading whitespace (a tab counts 4, as CommonMark's tab stops do at most).
fn indent_of(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// The code blocks of one item's docs, read as rustdoc reads them: the fragments joined
/// by newlines, the common indentation removed, then CommonMark's fenced and indented
/// code blocks.
fn audit_doc_text(fragments: &[String], problems: &mut Vec<String>) {
    let joined = fragments.join("\n");
    let lines: Vec<&str> = joined.split('\n').collect();
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .min()
        .unwrap_or(0);
    let mut fence: Option<(char, usize)> = None;
    let mut prev_blank = true;
    for line in &lines {
        let indent = indent_of(line).saturating_sub(common);
        let rest = line.trim_start_matches([' ', '\t']);
        if let Some((c, n)) = fence {
            let run = rest.chars().take_while(|&x| x == c).count();
            if indent < 4 && run >= n && rest[run * c.len_utf8()..].trim().is_empty() {
                fence = None;
                prev_blank = true;
            }
            continue;
        }
        let fence_char = rest.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = fence_char.map_or(0, |c| rest.chars().take_while(|&x| x == c).count());
        if let (Some(c), true, true) = (fence_char, indent < 4, run >= 3) {
            let info = rest[run..].trim();
            if info != "text" {
                problems.push(format!(
                    "a doc comment opens a code block rustdoc would test: {:?}",
                    short_str(line)
                ));
            }
            fence = Some((c, run));
        } else if indent >= 4 && prev_blank && !rest.trim().is_empty() {
            problems.push(format!(
                "a doc comment holds an indented code block: {:?}",
                short_str(line)
            ));
        }
        prev_blank = rest.trim().is_empty();
    }
}

fn short_str(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> (SourceFile, crate::Compiled) {
        let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("shipped spec");
        let syntax = Syntax::from_path(name).expect("spec extension");
        let file = SourceFile::new(name, text, syntax);
        let compiled = crate::compile(&file).expect("shipped spec compiles");
        (file, compiled)
    }

    #[test]
    fn shipped_modules_pass_the_audit() {
        for name in [
            "resnet18.yaml",
            "resnet50.resnet",
            "cifar-resnet20.yaml",
            "preact-resnet18.yaml",
            "plain34.yaml",
            "resnext50-32x4d.yaml",
        ] {
            let (_, c) = shipped(name);
            let opts = RustOptions {
                name: None,
                source: Some(format!("specs/{name}")),
            };
            let source = module_source(&c, &opts);
            assert_eq!(
                audit_generated_module(&source, &opts.struct_name(&c)),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn audit_rejects_doc_tests_items_and_controls() {
        let (_, c) = shipped("resnet18.yaml");
        let opts = RustOptions::default();
        let good = module_source(&c, &opts);
        let bad = |source: String, needle: &str| {
            let problems =
                audit_generated_module(&source, "ResNet18").expect_err("must be rejected");
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:#?}"
            );
        };
        bad(
            format!("{good}\npub fn injected() {{}}\n"),
            "unexpected fn `injected`",
        );
        bad(format!("{good}\nuse std::fs;\n"), "unexpected item");
        bad(format!("/// ```\n/// std::fs::write(\"x\", \"y\").unwrap();\n/// ```\nfn zero_pad() {{}}\n{good}"), "rustdoc would test");
        bad(
            format!("/// a\n///\n///     std::process::exit(1);\nfn zero_pad() {{}}\n{good}"),
            "indented code block",
        );
        bad(format!("/// ```text\n/// ok\n/// ```\n/// ~~~rust\n/// x\n/// ~~~\nfn zero_pad() {{}}\n{good}"), "rustdoc would test");
        bad(good.replacen("resnet18", "resnet\u{202E}18", 1), "U+202E");
        bad(good.replacen("resnet18", "resnet\r18", 1), "U+000D");
        bad(
            good.replacen("let conv1 =", "std::println!(\"hi\"); let conv1 =", 1),
            "calls the macro `println!`",
        );
        bad(
            good.replacen("let conv1 =", "fn inner() {} let conv1 =", 1),
            "holds the keyword `fn`",
        );
        bad(
            good.replacen("#[derive(Debug)]", "#[derive(Debug)] #[no_mangle]", 1),
            "#[no_mangle]",
        );
        // A module named `Vec` that used the prelude's `Vec` unqualified would not compile.
        assert!(
            good.contains("::std::vec::Vec"),
            "the generator names Vec by its full path"
        );
        let shadowing = good
            .replace("ResNet18", "Vec")
            .replace("::std::vec::Vec", "Vec");
        let problems = audit_generated_module(&shadowing, "Vec").expect_err("must be rejected");
        assert!(
            problems.iter().any(|p| p.contains("defines `Vec`")),
            "{problems:#?}"
        );
        bad(
            good.replace("fn linear(", "fn linear_(")
                .replace("linear(p", "linear_(p"),
            "unexpected fn `linear_`",
        );
    }

    #[test]
    fn doc_text_rules() {
        let problems = |docs: &[&str]| {
            let mut p = Vec::new();
            audit_doc_text(
                &docs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &mut p,
            );
            p
        };
        assert!(
            problems(&[" ```text", " ```rust", " ```"]).is_empty(),
            "an opener inside a text fence is text"
        );
        assert!(
            problems(&[" a", "     continued paragraph"]).is_empty(),
            "a lazy continuation is not code"
        );
        assert_eq!(
            problems(&[" ```text", " ```", " ```"]).len(),
            1,
            "the second fence opens a doc-test"
        );
        assert_eq!(problems(&[" ~~~~", " code"]).len(), 1);
        assert_eq!(
            problems(&[" text", "", "     code"]).len(),
            1,
            "an indented block after a blank line"
        );
        assert!(
            problems(&["     all", "     indented"]).is_empty(),
            "common indentation is removed"
        );
    }

    #[test]
    fn diagnostics_budget_saturates() {
        assert_eq!(diagnostics_budget(0), DIAGNOSTIC_BYTES_SLACK);
        assert_eq!(diagnostics_budget(usize::MAX), usize::MAX);
    }
}
