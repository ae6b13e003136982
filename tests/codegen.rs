//! The Rust back end (`resnetc build`, `#[resnet]`): a snapshot of the generated module
//! for every shipped spec, and properties every generated module has. No libtorch here:
//! `examples/macro-demo` compiles and runs the generated code.

mod common;

use resnetc::back::rust::{module_source, module_tokens, RustOptions};
use std::process::Command;

fn options(file: &resnetc::span::SourceFile) -> RustOptions {
    RustOptions { name: None, source: Some(file.name.clone()) }
}

#[test]
fn generated_module_of_every_shipped_spec() {
    insta::glob!("../specs", "*.yaml", |path| {
        let file = common::load(path);
        let compiled = resnetc::compile(&file).expect("a shipped spec is valid");
        insta::assert_snapshot!(module_source(&compiled, &options(&file)));
    });
}

#[test]
fn generated_modules_parse_and_never_unwrap() {
    for path in common::shipped_specs() {
        let file = common::load(&path);
        let compiled = resnetc::compile(&file).expect("a shipped spec is valid");
        let tokens = module_tokens(&compiled, &options(&file));
        let items = syn::parse2::<syn::File>(tokens).unwrap_or_else(|e| panic!("{}: tokens: {e}", file.name));
        assert!(!items.items.is_empty());
        let source = module_source(&compiled, &options(&file));
        syn::parse_file(&source).unwrap_or_else(|e| panic!("{}: source: {e}", file.name));
        for banned in ["unwrap", "expect(", "panic!", "unsafe", "use "] {
            assert!(!source.contains(banned), "{}: generated code contains `{banned}`", file.name);
        }
        // Absolute paths only: every tch item is named `::tch::...`.
        let relative_tch = source.match_indices("tch::").filter(|(i, _)| !source[..*i].ends_with("::")).count();
        assert_eq!(relative_tch, 0, "{}: a `tch::` path without the leading `::`", file.name);
        // The struct is named after the model, and carries its layer table.
        let name = resnetc::back::rust::struct_name(&compiled.model.name);
        assert!(source.contains(&format!("pub struct {name} {{")), "{}", file.name);
        assert!(source.contains(&format!("impl ::tch::nn::ModuleT for {name} {{")), "{}", file.name);
        for row in &compiled.network.layers {
            assert!(source.contains(&format!("/// {} ", row.name)), "{}: table row {}", file.name, row.name);
        }
    }
}

#[test]
fn options_rename_the_struct() {
    let file = common::load(&common::root().join("specs/resnet18.yaml"));
    let compiled = resnetc::compile(&file).expect("valid");
    let renamed = RustOptions { name: Some("Backbone".into()), source: None };
    let source = module_source(&compiled, &renamed);
    assert!(source.contains("pub struct Backbone {"));
    assert!(!source.contains("ResNet18"));
    // A name that cannot name a struct falls back to the derived one rather than panic.
    for bad in ["fn", "Self", "r#type", "3D", "a-b", ""] {
        let source = module_source(&compiled, &RustOptions { name: Some(bad.into()), source: None });
        assert!(source.contains("pub struct ResNet18 {"), "{bad:?}");
    }
    // A model named like a generated helper type keeps its name; the helper steps aside.
    let source = module_source(&compiled, &RustOptions { name: Some("BasicBlock".into()), source: None });
    assert!(source.contains("pub struct BasicBlock {"));
    assert!(source.contains("pub struct BasicBlockInner {"));
    syn::parse_file(&source).expect("parses");
}

fn resnetc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("resnetc runs")
}

#[test]
fn build_prints_or_writes_the_module() {
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let compiled = resnetc::compile(&file).expect("valid");
    let expected = module_source(&compiled, &options(&file));

    let out = resnetc(&["build", "specs/resnet50.yaml"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let dir = std::env::temp_dir().join(format!("resnetc-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let target = dir.join("resnet50.rs");
    let target_str = target.to_str().expect("UTF-8 temp path");
    let out = resnetc(&["build", "specs/resnet50.yaml", "-o", target_str]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&target).expect("written"), expected);
    // Nothing but the module is left behind (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);

    let out = resnetc(&["build", "specs/resnet50.yaml", "--name", "Backbone", "--classes", "10", "-o", target_str]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&target).expect("written");
    assert!(written.contains("pub struct Backbone {"));
    assert!(written.contains("pub const NUM_CLASSES: i64 = 10;"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn build_reports_bad_specs_and_names() {
    let out = resnetc(&["build", "tests/specs/invalid/identity-where-projection.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("residual add shape mismatch"));

    let out = resnetc(&["build", "specs/resnet50.yaml", "--name", "not a name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a Rust identifier"));

    let out = resnetc(&["build", "specs/does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(3));
}
