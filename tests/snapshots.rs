//! Snapshot tests (insta): the layer table of every shipped spec, and the rendered
//! diagnostics of every spec in the invalid corpus `tests/specs/invalid/`.
//!
//! Review changes with `cargo insta review`; never edit a `.snap` by hand.

mod common;

use resnetc::back::table;
use resnetc::diag::render;

#[test]
fn tables_of_shipped_specs() {
    insta::glob!("../specs", "*.{yaml,resnet}", |path| {
        let file = common::load(path);
        let c = resnetc::compile(&file).unwrap_or_else(|d| panic!("{}", render(&file, &d)));
        assert!(c.warnings.is_empty(), "{}", render(&file, &c.warnings));
        let out = format!(
            "## Stages\n{}\n## Table\n{}",
            table::stages(&c.model, &c.network),
            table::layers(&c.model, &c.network)
        );
        insta::assert_snapshot!(out);
    });
}

#[test]
fn diagnostics_of_invalid_specs() {
    insta::glob!("specs/invalid/*.{yaml,resnet}", |path| {
        let file = common::load(path);
        let diags = match resnetc::compile(&file) {
            Ok(c) => panic!("{} compiled but should not ({} warnings)", file.name, c.warnings.len()),
            Err(d) => d,
        };
        assert!(resnetc::diag::has_errors(&diags), "{}: no error", file.name);
        // Every error points into the file.
        for d in diags.iter().filter(|d| d.is_error()) {
            assert!(d.primary_span().is_some(), "{}: `{}` has no location", file.name, d.message);
        }
        insta::assert_snapshot!(render(&file, &diags));
    });
}
