//! DSL front end: `.resnet` text -> [`SpecAst`], through the pest grammar in
//! `grammar/resnet.pest`.
//!
//! The language is line-oriented, so the text is split into lines and each line is parsed
//! on its own with the rule its first word names (`lines.rs`). A broken line therefore
//! costs one diagnostic and the next line is read as usual: several mistakes are reported
//! in one run. Keys the language does not know are kept in the AST for lowering to report;
//! when a line is broken lowering does not run, and the front end reports them itself. `build.rs` turns each line's parse tree into AST pieces with byte spans into
//! the whole file; `syntax.rs` turns pest's errors into readable diagnostics.
//!
//! Values are taken as written (`x-3` and `x99999999999` both reach [`crate::lower`],
//! which range-checks them); only a number that does not fit an `i64` is reported here.
//!
//! ```
//! use resnetc::span::{SourceFile, Syntax};
//! let text = "model tiny\ninput 3x32x32\nbasic [16, 16] x3\n";
//! let file = SourceFile::new("tiny.resnet", text, Syntax::Dsl);
//! let ast = resnetc::front::dsl::parse(&file).expect("valid DSL");
//! assert_eq!(ast.name.map(|n| n.value).as_deref(), Some("tiny"));
//! assert_eq!(ast.stages.map(|s| s.value.len()), Some(1));
//! ```

mod build;
mod lines;
mod syntax;
#[cfg(test)]
mod tests;

use crate::ast::SpecAst;
use crate::diag::Diagnostic;
use crate::span::SourceFile;

use grammar::{ResnetParser, Rule};

/// The generated parser, kept private: its `Rule` enum is an implementation detail.
mod grammar {
    /// Each statement has its own entry rule (`model_line`, `stage_line`, ...); the line's
    /// first word picks it (see `lines::classify`).
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/resnet.pest"]
    pub struct ResnetParser;
}

/// Diagnostic code of every syntax error of the DSL.
pub const SYNTAX_ERROR: &str = "E-dsl-syntax";
/// A number too large for the compiler to hold (beyond `i64`).
pub const NUMBER_ERROR: &str = "E-dsl-number";
/// A kernel written with two different sides (`7x5`): kernels are square.
pub const KERNEL_ERROR: &str = "E-dsl-kernel";
/// A statement or setting given twice.
pub const DUPLICATE_ERROR: &str = "E-duplicate";

/// Parses a `.resnet` spec into the surface AST, or returns every problem found (syntax
/// errors, one per broken line, duplicates, out-of-range numbers and, since lowering will
/// not see them, unknown keys), in source order.
pub fn parse(file: &SourceFile) -> Result<SpecAst, Vec<Diagnostic>> {
    let mut builder = build::Builder::new();
    for line in lines::split(&file.text) {
        builder.line(&line);
    }
    builder.finish()
}
