//! Front ends: spec text -> [`SpecAst`]. One module per syntax; neither computes shapes
//! or applies defaults (that is [`crate::lower`]'s job).

pub mod dsl;
pub mod yaml;

use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::{SourceFile, Syntax};

/// Parses a spec in the syntax its [`SourceFile::syntax`] names.
pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    match file.syntax {
        Syntax::Yaml => yaml::parse(file),
        Syntax::Dsl => dsl::parse(file),
    }
}
