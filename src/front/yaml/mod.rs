//! YAML front end: spec text -> [`SpecAst`], through serde and serde-saphyr.
//!
//! [`schema`] declares the accepted document with `deny_unknown_fields` and a
//! [`serde_saphyr::Spanned`] on every value; [`convert`] turns that into the surface AST
//! with byte spans; [`errors`] turns serde-saphyr's errors into diagnostics. Values are
//! taken as written (`repeat: -3` and `repeat: 1000000000000` both get through): range
//! checks belong to [`crate::lower`]. A null value and a quoted number or boolean
//! (`repeat: "2"`) are errors here: YAML reads the first as nothing and the second as a
//! string, though serde-saphyr would hand both on.
//!
//! ```
//! use resnetc::span::{SourceFile, Syntax};
//! let file = SourceFile::new("tiny.yaml", "name: tiny\ninput: [3, 32, 32]\n", Syntax::Yaml);
//! let ast = resnetc::front::yaml::parse(&file).expect("valid YAML");
//! assert_eq!(ast.name.map(|n| n.value).as_deref(), Some("tiny"));
//! ```

mod convert;
mod errors;
mod schema;

use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::SourceFile;

/// Parses a YAML spec into the surface AST, or reports the first problem serde found
/// (plus any that conversion found).
pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    let span = convert::document_span(&file.text);
    if span == crate::span::Span::DUMMY && file.text.trim().is_empty() {
        // Nothing but blanks: an empty spec, whose missing sections lowering reports.
        return Ok(SpecAst {
            span,
            ..SpecAst::default()
        });
    }
    let root: schema::RootRepr = match serde_saphyr::from_str_with_options(&file.text, options()) {
        Ok(root) => root,
        Err(e) => return Err(vec![errors::diagnostic(file, &e)]),
    };
    let mut converter = convert::Converter::new(file);
    let ast = converter.root(root, span);
    if converter.errors.is_empty() {
        Ok(ast)
    } else {
        Err(converter.errors)
    }
}

/// Limits far above any real spec (a few hundred nodes), far below what would take
/// noticeable time or memory: deep nesting and alias bombs fail fast with `E-yaml-limit`.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.flow_nesting_limit = 32;
    budget.max_events = 50_000;
    budget.max_nodes = 20_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 2;
    budget.max_total_scalar_bytes = 8 << 20;
    budget.max_recorded_anchor_events = 10_000;
    budget.max_merge_keys = 100;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 10_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options.with_snippet = false;
    options
}

#[cfg(test)]
mod tests;
