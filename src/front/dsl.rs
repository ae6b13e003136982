//! DSL front end (pest). Filled in by the DSL work.
use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::SourceFile;

pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    let _ = file;
    Err(vec![Diagnostic::error("E-dsl", "DSL front end not written yet")])
}
