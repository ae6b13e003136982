//! resnetc: a compiler for declarative ResNet-family model specs.
//!
//! The pipeline, one stage one job:
//!
//! ```text
//! spec text --front--> SpecAst --lower--> Model (IR) + SpanTable --valid--> Network --back--> table / json / dot / yaml / dsl
//! ```
//!
//! - [`front`] parses YAML (serde) or the `.resnet` DSL (pest) into one surface [`ast`].
//! - [`lower`] applies torchvision's defaults, resolves keywords, checks ranges and arity.
//! - [`valid`] follows the shape through every layer, reporting every problem at once, and
//!   produces a [`valid::Network`]: every layer with its torchvision name, shapes,
//!   parameters and MACs.
//! - [`back`] prints tables, JSON, Graphviz and specs in either syntax.
//! - [`import`] reads PyTorch checkpoints (without running their pickle) and Keras weights,
//!   checked against a network (`resnetc import`, the runtime's `--weights`).
//!
//! ```
//! let spec = resnetc::span::SourceFile::new(
//!     "resnet18.yaml",
//!     std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/specs/resnet18.yaml")).unwrap(),
//!     resnetc::span::Syntax::Yaml,
//! );
//! let compiled = resnetc::compile(&spec).expect("a shipped spec is valid");
//! assert_eq!(compiled.network.totals.trainable_params, 11_689_512);
//! ```

pub mod ast;
pub mod back;
pub mod cli;
pub mod diag;
pub mod files;
pub mod front;
#[doc(hidden)]
pub mod fuzz;
pub mod import;
pub mod ir;
pub mod lower;
pub mod output;
#[cfg(feature = "torch")]
pub mod runtime;
pub mod span;
#[cfg(feature = "torch")]
pub mod train;
pub mod valid;

use diag::Diagnostic;
use span::SourceFile;

/// Everything the compiler knows about a valid spec.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub model: ir::Model,
    pub spans: lower::SpanTable,
    pub network: valid::Network,
    /// Warnings (never errors) found along the way.
    pub warnings: Vec<Diagnostic>,
}

/// Parses, lowers and checks one spec. On failure returns every diagnostic found
/// (errors and warnings), in source order.
pub fn compile(file: &SourceFile) -> Result<Compiled, Vec<Diagnostic>> {
    compile_with(file, &Overrides::default())
}

/// Settings that replace what the spec says (CLI `--input`, macro arguments).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub input: Option<ir::Shape>,
    pub classes: Option<u64>,
    pub name: Option<String>,
}

/// [`compile`] with overrides applied after lowering, before shape checking.
pub fn compile_with(file: &SourceFile, overrides: &Overrides) -> Result<Compiled, Vec<Diagnostic>> {
    compile_stages(file, overrides).map_err(|mut diags| {
        // A failure always says why: a stage that fails with warnings only is a bug of
        // resnetc, reported as one rather than as "0 errors".
        if !diags.iter().any(Diagnostic::is_error) {
            diags.push(
                Diagnostic::error(
                    "E-internal",
                    "resnetc rejected this spec without saying why",
                )
                .with_primary(span::Span::new(0, 0), "in this spec")
                .with_help("this is a bug of resnetc; please report it with the spec"),
            );
        }
        diags
    })
}

fn compile_stages(file: &SourceFile, overrides: &Overrides) -> Result<Compiled, Vec<Diagnostic>> {
    let ast = front::parse(file)?;
    let (mut model, spans, mut diags) = lower::lower(&ast, file.syntax)?;
    if let Some(input) = overrides.input {
        model.input = input;
    }
    if let Some(classes) = overrides.classes {
        match &mut model.head {
            Some(head) => head.classes = classes,
            None => {
                return Err(vec![Diagnostic::error("E-no-effect", "`--classes` has no effect on a backbone")
                    .with_primary(spans.get("features"), "this network returns feature maps, not classes")
                    .with_help("drop `--classes`, or give the spec a head instead of `features`")])
            }
        }
    }
    if let Some(name) = &overrides.name {
        model.name = name.clone();
    }
    match valid::validate(&model, &spans) {
        Ok((network, warnings)) => {
            diags.extend(warnings);
            Ok(Compiled {
                model,
                spans,
                network,
                warnings: diags,
            })
        }
        Err(errors) => {
            diags.extend(errors);
            diags.sort_by_key(|d| d.primary_span().map(|s| s.start).unwrap_or(usize::MAX));
            Err(diags)
        }
    }
}
