//! YAML front end (serde). Filled in by the YAML work.
use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::SourceFile;

pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    let _ = file;
    Err(vec![Diagnostic::error("E-yaml", "YAML front end not written yet")])
}
