//! Lowering: [`SpecAst`] -> [`Model`], applying defaults and checking ranges.
use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::ir::Model;
use crate::span::Span;
use std::collections::BTreeMap;

/// Where each IR setting was written, keyed by spec path (`stages[1].filters[2]`).
#[derive(Clone, Debug, Default)]
pub struct SpanTable {
    pub doc: Span,
    pub map: BTreeMap<String, Span>,
}

pub fn lower(ast: &SpecAst) -> Result<(Model, SpanTable, Vec<Diagnostic>), Vec<Diagnostic>> {
    let _ = ast;
    todo!()
}
