//! The Rust back end (`resnetc build`, `#[resnet]`): a snapshot of the generated module
//! for every shipped spec, and properties every generated module has. No libtorch here:
//! `examples/macro-demo` compiles and runs the generated code.

mod common;

use resnetc::back::rust::{module_source, module_tokens, RustOptions};
use std::process::Command;

fn options(file: &resnetc::span::SourceFile) -> RustOptions {
    RustOptions {
        name: None,
        source: Some(file.name.clone()),
    }
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
        let items = syn::parse2::<syn::File>(tokens)
            .unwrap_or_else(|e| panic!("{}: tokens: {e}", file.name));
        assert!(!items.items.is_empty());
        let source = module_source(&compiled, &options(&file));
        syn::parse_file(&source).unwrap_or_else(|e| panic!("{}: source: {e}", file.name));
        for banned in ["unwrap", "expect(", "panic!", "unsafe", "use "] {
            assert!(
                !source.contains(banned),
                "{}: generated code contains `{banned}`",
                file.name
            );
        }
        // Absolute paths only: every tch item is named `::tch::...`.
        let relative_tch = source
            .match_indices("tch::")
            .filter(|(i, _)| !source[..*i].ends_with("::"))
            .count();
        assert_eq!(
            relative_tch, 0,
            "{}: a `tch::` path without the leading `::`",
            file.name
        );
        // The struct is named after the model, and carries its layer table.
        let name = resnetc::back::rust::struct_name(&compiled.model.name);
        assert!(
            source.contains(&format!("pub struct {name} {{")),
            "{}",
            file.name
        );
        // A classifier is a tch module; a backbone returns its feature maps instead.
        let entry = if compiled.network.head.is_some() {
            format!("impl ::tch::nn::ModuleT for {name} {{")
        } else {
            "pub fn features_t(".to_string()
        };
        assert!(source.contains(&entry), "{}: {entry}", file.name);
        for row in &compiled.network.layers {
            assert!(
                source.contains(&format!("/// {} ", row.name)),
                "{}: table row {}",
                file.name,
                row.name
            );
        }
    }
}

#[test]
fn options_rename_the_struct() {
    let file = common::load(&common::root().join("specs/resnet18.yaml"));
    let compiled = resnetc::compile(&file).expect("valid");
    let renamed = RustOptions {
        name: Some("Backbone".into()),
        source: None,
    };
    let source = module_source(&compiled, &renamed);
    assert!(source.contains("pub struct Backbone {"));
    assert!(!source.contains("ResNet18"));
    // A name that cannot name a struct falls back to the derived one rather than panic.
    for bad in ["fn", "Self", "r#type", "3D", "a-b", ""] {
        let source = module_source(
            &compiled,
            &RustOptions {
                name: Some(bad.into()),
                source: None,
            },
        );
        assert!(source.contains("pub struct ResNet18 {"), "{bad:?}");
    }
    // A model named like a generated helper type keeps its name; the helper steps aside.
    let source = module_source(
        &compiled,
        &RustOptions {
            name: Some("BasicBlock".into()),
            source: None,
        },
    );
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    let dir = common::scratch("codegen", "build");
    let target = dir.join("resnet50.rs");
    let target_str = target.to_str().expect("UTF-8 temp path");
    let out = resnetc(&["build", "specs/resnet50.yaml", "-o", target_str]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&target).expect("written"), expected);
    // Nothing but the module is left behind (the temporary file was renamed).
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);

    let out = resnetc(&[
        "build",
        "specs/resnet50.yaml",
        "--name",
        "Backbone",
        "--classes",
        "10",
        "-o",
        target_str,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&target).expect("written");
    assert!(written.contains("pub struct Backbone {"));
    assert!(written.contains("pub const NUM_CLASSES: i64 = 10;"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn build_reports_bad_specs_and_names() {
    let out = resnetc(&[
        "build",
        "tests/specs/invalid/identity-where-projection.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("residual add shape mismatch"));

    let out = resnetc(&["build", "specs/resnet50.yaml", "--name", "not a name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a Rust identifier"));

    let out = resnetc(&["build", "specs/does-not-exist.yaml"]);
    assert_eq!(out.status.code(), Some(3));
}

// ---------------------------------------------------------------------------------------
// Hostile specs, paths and names: the module holds the model and nothing else.

use resnetc::back::rust::audit::{audit_module, doc_code_blocks};
use resnetc::span::{SourceFile, Syntax};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Payloads that would run, or fail the doc tests, if they became code.
const PAYLOADS: &[&str] = &[
    "```\npanic!(\"doc test ran\");\n```",
    "```rust\nstd::fs::write(\"marker\", \"\").unwrap();\n```",
    "x\r```\rpanic!()\r```",
    "x\u{2028}```\u{2028}panic!()\u{2028}```",
    "~~~\npanic!()\n~~~",
    "a\n\n    panic!()",
    "evil\u{202e}txt.rs",
    "`, `\n*/ pub fn injected() {} /*",
    "<script>alert(1)</script>",
    "nul\0bell\u{7}esc\u{1b}[31m",
];

/// `examples/macro-demo/specs/mixed-features.yaml` (every block kind and shortcut style)
/// with the model and its stages renamed.
fn mixed_features(model: &str, stage: &str) -> String {
    let text = std::fs::read_to_string(
        common::root().join("examples/macro-demo/specs/mixed-features.yaml"),
    )
    .expect("examples/macro-demo/specs/mixed-features.yaml");
    let mut out = text.replace(
        "name: mixed-features",
        &format!("name: {}", common::yaml_quoted(model)),
    );
    for (i, letter) in "abcdefg".chars().enumerate() {
        let name = format!("{stage}{i}");
        out = out.replace(
            &format!("  - stage: {letter}\n"),
            &format!("  - stage: {}\n", common::yaml_quoted(&name)),
        );
    }
    out
}

fn compile_yaml(path: &str, text: String) -> resnetc::Compiled {
    let file = SourceFile::new(path, text, Syntax::Yaml);
    resnetc::compile(&file)
        .unwrap_or_else(|d| panic!("{path}: {}", resnetc::diag::render(&file, &d)))
}

fn audit_both(compiled: &resnetc::Compiled, opts: &RustOptions, what: &str) -> String {
    let name = opts.struct_name(compiled);
    let source = module_source(compiled, opts);
    audit_module(&source, &name).unwrap_or_else(|e| panic!("{what}: {e}\n{source}"));
    // The macro's tokens, printed as rustc would see them.
    let tokens = module_tokens(compiled, opts).to_string();
    audit_module(&tokens, &name).unwrap_or_else(|e| panic!("{what} (tokens): {e}"));
    let file = syn::parse_file(&source).expect("parses");
    assert_eq!(doc_code_blocks(&file), 0, "{what}");
    // Spec text shows up in comments only, escaped: no line of code carries it.
    for line in source
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
    {
        assert!(
            !line.contains("injected") && !line.contains("panic!"),
            "{what}: {line}"
        );
    }
    source
}

#[test]
fn hostile_model_and_stage_names_stay_in_their_docs() {
    for payload in PAYLOADS {
        let compiled = compile_yaml("hostile.yaml", mixed_features(payload, payload));
        let opts = RustOptions {
            name: None,
            source: Some("hostile.yaml".into()),
        };
        let source = audit_both(&compiled, &opts, payload);
        // The names are still shown, escaped.
        assert!(
            !source.contains("```rust") && !source.contains("~~~"),
            "{payload:?}"
        );
        assert!(
            source.contains(r"\u{60}") || !payload.contains('`'),
            "{payload:?}"
        );
    }
}

#[test]
fn hostile_paths_stay_in_the_header_comment() {
    let compiled = compile_yaml("spec.yaml", mixed_features("net", "s"));
    for path in [
        "spec.yaml\npub fn injected() {}\n//",
        "spec.yaml\r\npub fn injected() {}",
        "spec.yaml\u{2028}pub fn injected() {}",
        "spec.yaml */ pub fn injected() {} /*",
        "spec`.yaml\n```\npanic!()\n```",
        "\u{202e}lmay.ceps",
    ] {
        let opts = RustOptions {
            name: None,
            source: Some(path.into()),
        };
        let source = audit_both(&compiled, &opts, path);
        let header = source.lines().next().expect("a header line");
        assert!(
            header.starts_with("// @generated by resnetc from `"),
            "{header}"
        );
        assert!(
            source
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("// Needs only")),
            "{path:?}:\n{source}"
        );
    }
}

/// Names of std, core and tch items the module uses, which a struct could shadow.
const SHADOWING_NAMES: &[&str] = &[
    "Vec",
    "Option",
    "Result",
    "Box",
    "String",
    "Tensor",
    "Path",
    "Default",
    "Some",
    "None",
    "Ok",
    "Err",
    "std",
    "core",
    "tch",
    "nn",
    "Kind",
    "Init",
    "ModuleT",
    "Module",
    "Debug",
    "Clone",
    "Copy",
    "i64",
    "f64",
    "bool",
    "Downsample",
    "Shortcut",
    "ShortcutKind",
    "BasicBlock",
    "Bottleneck",
    "PreActBlock",
    "conv2d",
    "linear",
    "p",
    "xs",
    "train",
];

/// Every path in the module that starts with a std or tch name but not with `::`.
fn relative_std_paths(file: &syn::File, own: &str) -> Vec<String> {
    use syn::visit::Visit;
    struct Paths<'a>(&'a str, Vec<String>);
    impl<'ast> Visit<'ast> for Paths<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            let first = path
                .segments
                .first()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            let std_names = [
                "Vec", "Option", "Result", "Box", "String", "Default", "Tensor", "Path", "nn",
                "tch", "std", "core",
            ];
            if path.leading_colon.is_none()
                && first != self.0
                && std_names.contains(&first.as_str())
            {
                self.1
                    .push(quote::ToTokens::to_token_stream(path).to_string());
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut paths = Paths(own, Vec::new());
    paths.visit_file(file);
    paths.1
}

#[test]
fn std_and_tch_items_are_named_by_absolute_paths() {
    let compiled = compile_yaml("mixed.yaml", mixed_features("mixed", "s"));
    for name in ["Mixed"].iter().chain(SHADOWING_NAMES) {
        let opts = RustOptions {
            name: Some((*name).into()),
            source: None,
        };
        let source = audit_both(&compiled, &opts, name);
        assert!(source.contains(&format!("pub struct {name} {{")), "{name}");
        let file = syn::parse_file(&source).expect("parses");
        assert_eq!(
            relative_std_paths(&file, name),
            Vec::<String>::new(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Compiling generated modules (and running their doc tests) against a stand-in `tch`.

/// A folder with `libtch.rlib` built from `tests/codegen/tch_stub.rs`.
fn stub_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // In the build tree (kept for the process's lifetime, reused by the next run).
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("codegen-tch-stub");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let out = Command::new(tool("RUSTC", "rustc"))
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "lib",
                "--crate-name",
                "tch",
                "-o",
            ])
            .arg(dir.join("libtch.rlib"))
            .arg(common::root().join("tests/codegen/tch_stub.rs"))
            .output()
            .expect("rustc runs");
        assert!(
            out.status.success(),
            "the tch stand-in: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_string())
}

/// Writes `source` as the library crate `crate_name` and runs `rustc` (`doc_tests`:
/// `rustdoc --test`) on it with the stand-in `tch`.
fn run_on_module(source: &str, crate_name: &str, doc_tests: bool) -> std::process::Output {
    let dir = stub_dir();
    let file = dir.join(format!("{crate_name}.rs"));
    std::fs::write(&file, source).expect("write the module");
    let mut cmd = if doc_tests {
        let mut cmd = Command::new(tool("RUSTDOC", "rustdoc"));
        cmd.arg("--test");
        cmd
    } else {
        let mut cmd = Command::new(tool("RUSTC", "rustc"));
        cmd.args(["--crate-type", "lib", "--emit", "metadata", "--out-dir"])
            .arg(dir);
        cmd
    };
    cmd.args(["--edition", "2021", "--crate-name", crate_name, "-L"])
        .arg(dir)
        .arg("--extern")
        .arg(format!("tch={}", dir.join("libtch.rlib").display()))
        .arg(&file)
        .current_dir(dir)
        .output()
        .expect("rustc/rustdoc runs")
}

#[test]
fn modules_named_like_std_items_compile() {
    // One crate, a module per name: one rustc run.
    let compiled = compile_yaml("mixed.yaml", mixed_features("mixed", "s"));
    let mut source = String::new();
    for (i, name) in SHADOWING_NAMES.iter().enumerate() {
        let module = module_source(
            &compiled,
            &RustOptions {
                name: Some((*name).into()),
                source: None,
            },
        );
        source.push_str(&format!("pub mod m{i} {{\n{module}\n}}\n"));
    }
    let out = run_on_module(&source, "named", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn shipped_modules_compile_against_the_stand_in() {
    let mut source = String::new();
    for (i, path) in common::shipped_specs().iter().enumerate() {
        let file = common::load(path);
        let compiled = resnetc::compile(&file).expect("a shipped spec is valid");
        let module = module_source(&compiled, &options(&file));
        source.push_str(&format!(
            "/// {}\npub mod m{i} {{\n{module}\n}}\n",
            file.name
        ));
    }
    let out = run_on_module(&source, "shipped", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rustdoc --test` on a module: Ok(number of doc tests) when they all passed.
fn doc_tests(source: &str, crate_name: &str) -> Result<usize, String> {
    let out = run_on_module(source, crate_name, true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = || format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(report());
    }
    let count = stdout
        .lines()
        .find_map(|l| l.strip_prefix("running ")?.split(' ').next()?.parse().ok())
        .ok_or_else(report)?;
    Ok(count)
}

#[test]
fn no_doc_test_runs_from_a_hostile_spec() {
    // The check can fail: a doc comment with a code block runs it.
    let planted = "/// ```\n/// panic!(\"doc test ran\");\n/// ```\npub struct Planted;\n";
    assert!(doc_tests(planted, "planted").is_err_and(|e| e.contains("doc test ran")));
    let harmless = "/// ```\n/// assert_eq!(1 + 1, 2);\n/// ```\npub struct Harmless;\n";
    assert_eq!(doc_tests(harmless, "harmless"), Ok(1));

    let mut source = String::new();
    for (i, payload) in PAYLOADS.iter().enumerate() {
        let compiled = compile_yaml("hostile.yaml", mixed_features(payload, payload));
        let opts = RustOptions {
            name: Some(format!("Hostile{i}")),
            source: Some((*payload).into()),
        };
        source.push_str(&format!(
            "pub mod m{i} {{\n{}\n}}\n",
            module_source(&compiled, &opts)
        ));
    }
    assert_eq!(
        doc_tests(&source, "hostile"),
        Ok(0),
        "no doc test at all in the generated modules"
    );
}

// ---------------------------------------------------------------------------------------
// The general form: networks beyond the block structs (deep stems, ResNet-D, SE/ECA,
// GroupNorm, BlurPool, Keras V2 blocks, dilation, stochastic depth), built by mutating the
// IR of shipped specs (examples/macro-demo/variants.rs, which macro-demo runs on libtorch).

#[path = "../examples/macro-demo/variants.rs"]
mod variants;

fn general_variants() -> Vec<(&'static str, resnetc::Compiled)> {
    variants::all(&common::root())
}

#[test]
fn general_modules_hold_every_layer_and_pass_the_audit() {
    for (file, compiled) in general_variants() {
        let opts = RustOptions {
            name: None,
            source: Some(format!("{file}.yaml")),
        };
        let source = audit_both(&compiled, &opts, file);
        let name = opts.struct_name(&compiled);
        assert!(source.contains(&format!("pub struct {name} {{")), "{file}");
        assert!(source.contains("pub enum Layer {"), "{file}: the general form");
        for banned in ["unwrap", "expect(", "panic!", "unsafe", "use "] {
            assert!(!source.contains(banned), "{file}: contains `{banned}`");
        }
        let parsed = syn::parse_file(&source).expect("parses");
        assert_eq!(relative_std_paths(&parsed, &name), Vec::<String>::new(), "{file}");
        for row in &compiled.network.layers {
            assert!(
                source.contains(&format!("/// {} ", row.name)),
                "{file}: table row {}",
                row.name
            );
        }
        // Every variable-holding layer is built under its torchvision/timm path.
        for conv in compiled.network.convs() {
            let segments: Vec<String> = conv
                .name
                .split('.')
                .skip(2)
                .map(|s| format!("\"{s}\""))
                .collect();
            assert!(
                source.contains(&segments.join(" / ")),
                "{file}: no path for {}",
                conv.name
            );
        }
    }
}

#[test]
fn general_modules_compile_against_the_stand_in() {
    let mut source = String::new();
    for (i, (file, compiled)) in general_variants().into_iter().enumerate() {
        let module = module_source(
            &compiled,
            &RustOptions {
                name: None,
                source: Some(format!("{file}.yaml")),
            },
        );
        source.push_str(&format!("/// {file}\npub mod m{i} {{\n{module}\n}}\n"));
    }
    let out = run_on_module(&source, "general", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn general_modules_named_like_std_items_compile() {
    let (_, compiled) = general_variants()
        .into_iter()
        .find(|(f, _)| *f == "resnet-rs-like")
        .expect("the variant");
    let mut source = String::new();
    for (i, name) in SHADOWING_NAMES
        .iter()
        .chain(&["Layer", "Block", "Conv", "forward_layers", "group_norm", "conv1d"])
        .enumerate()
    {
        let opts = RustOptions {
            name: Some((*name).into()),
            source: None,
        };
        let module = audit_both(&compiled, &opts, name);
        let file = syn::parse_file(&module).expect("parses");
        assert_eq!(relative_std_paths(&file, name), Vec::<String>::new(), "{name}");
        source.push_str(&format!("pub mod m{i} {{\n{module}\n}}\n"));
    }
    let out = run_on_module(&source, "general_named", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_names_stay_in_the_docs_of_general_modules() {
    let (_, base) = general_variants()
        .into_iter()
        .find(|(f, _)| *f == "cifar-eca-mixed")
        .expect("the variant");
    let mut source = String::new();
    for (i, payload) in PAYLOADS.iter().enumerate() {
        let mut compiled = base.clone();
        compiled.model.name = (*payload).to_string();
        for s in &mut compiled.model.stages {
            s.name = (*payload).to_string();
        }
        let (network, _) = resnetc::valid::validate(&compiled.model, &compiled.spans)
            .expect("names do not change the checks");
        compiled.network = network;
        let opts = RustOptions {
            name: Some(format!("Hostile{i}")),
            source: Some((*payload).into()),
        };
        let module = audit_both(&compiled, &opts, payload);
        assert!(module.contains("pub enum Layer {"));
        source.push_str(&format!("pub mod m{i} {{\n{module}\n}}\n"));
    }
    assert_eq!(
        doc_tests(&source, "general_hostile"),
        Ok(0),
        "no doc test at all in the generated modules"
    );
}

#[test]
fn generated_modules_of_general_variants() {
    for (file, compiled) in general_variants() {
        if ["cifar-eca-mixed", "preact-gn-blur"].contains(&file) {
            let opts = RustOptions {
                name: None,
                source: Some(format!("variants.rs: {file}")),
            };
            insta::assert_snapshot!(format!("general-{file}"), module_source(&compiled, &opts));
        }
    }
}
