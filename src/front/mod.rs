//! Front ends: spec text -> [`SpecAst`]. One module per syntax; neither computes shapes
//! or applies defaults (that is [`crate::lower`]'s job).

pub mod dsl;
pub mod yaml;

use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::{SourceFile, Syntax};

/// Parses a spec in the syntax its [`SourceFile::syntax`] names.
pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    // The CLI and the macro never read more than this; a library caller gets the same limit.
    let limit = crate::ir::Limits::MAX_SPEC_BYTES;
    if file.text.len() > limit {
        return Err(vec![Diagnostic::error(
            "E-limit",
            format!(
                "the spec is {} bytes long, more than the limit of {limit} bytes",
                file.text.len()
            ),
        )
        .with_primary(crate::span::Span::new(0, 0), "the spec starts here")
        .with_help("real specs are a few kilobytes: is this the right file?")]);
    }
    match file.syntax {
        Syntax::Yaml => yaml::parse(file),
        Syntax::Dsl => dsl::parse(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_syntaxes_share_the_size_limit() {
        let limit = crate::ir::Limits::MAX_SPEC_BYTES;
        for (syntax, comment) in [(Syntax::Yaml, "#"), (Syntax::Dsl, "//")] {
            let at_limit = format!("{comment}{}", " ".repeat(limit - comment.len()));
            let diags = parse(&SourceFile::new("a", at_limit.clone(), syntax))
                .err()
                .unwrap_or_default();
            assert!(
                diags.iter().all(|d| d.code != "E-limit"),
                "{syntax:?}: {diags:?}"
            );
            let over = format!("{at_limit} ");
            let diags = parse(&SourceFile::new("a", over, syntax)).expect_err("over the limit");
            assert_eq!(diags.len(), 1);
            assert_eq!(diags[0].code, "E-limit");
            assert_eq!(
                diags[0].message,
                format!(
                    "the spec is {} bytes long, more than the limit of {limit} bytes",
                    limit + 1
                )
            );
        }
    }
}
