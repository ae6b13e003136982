//! The `resnetc` binary end to end: exit codes, output formats, overrides.

mod common;

use std::process::{Command, Output};

fn resnetc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resnetc"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("run resnetc")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_accepts_every_shipped_spec() {
    let specs: Vec<String> = common::shipped_specs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["check"];
    args.extend(specs.iter().map(String::as_str));
    let o = resnetc(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("ok: ")).count(),
        specs.len()
    );
}

#[test]
fn check_fails_with_exit_1_and_points_at_the_line() {
    let o = resnetc(&[
        "check",
        "tests/specs/invalid/identity-where-projection.yaml",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("tests/specs/invalid/identity-where-projection.yaml:12:5"),
        "{err}"
    );
    assert!(
        err.contains("[256, 56, 56]") && err.contains("[512, 28, 28]"),
        "{err}"
    );
}

#[test]
fn missing_file_and_unknown_extension_are_io_errors() {
    let o = resnetc(&["table", "specs/nope.yaml"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("cannot read `specs/nope.yaml`"),
        "{}",
        stderr(&o)
    );
    let o = resnetc(&["check", "README.md"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("unknown spec extension"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn table_json_and_input_override() {
    let o = resnetc(&[
        "table",
        "specs/resnet18.yaml",
        "--format",
        "json",
        "--input",
        "1x64x64",
        "--classes",
        "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["input"], serde_json::json!([1, 64, 64]));
    assert_eq!(v["output"], serde_json::json!([10]));
    // conv1 loses two input channels' weights (2 x 64 x 7 x 7) and fc shrinks to 10 classes.
    assert_eq!(
        v["params"]["trainable"],
        11_689_512 - 2 * 64 * 49 - 990 * 513
    );
    assert_eq!(v["layers"][0]["output"], serde_json::json!([64, 32, 32]));
}

#[test]
fn bad_input_override_is_a_usage_error() {
    let o = resnetc(&["table", "specs/resnet18.yaml", "--input", "3x100000x100000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("height 100000 is outside"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn stages_view_reads_like_table_1() {
    let o = resnetc(&["table", "specs/resnet50.resnet", "--stages"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("conv3_x  28x28    [1x1, 128; 3x3, 128; 1x1, 512], /2   x4"),
        "{out}"
    );
    assert!(out.contains("4,089,184,256"), "{out}");
}

#[test]
fn fmt_converts_between_syntaxes() {
    let o = resnetc(&["fmt", "specs/resnet50.yaml", "--to", "dsl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("conv3_x: bottleneck [128, 128, 512] x4 /2"),
        "{}",
        stdout(&o)
    );
    let o = resnetc(&["fmt", "specs/resnet50.resnet", "--to", "yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("filters: [128, 128, 512]"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn graph_is_dot() {
    let o = resnetc(&["graph", "specs/resnet18.yaml"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("digraph \"resnet18\" {"));
    assert!(
        out.contains("\"layer2.0.downsample.0\""),
        "projection drawn"
    );
    assert!(out.trim_end().ends_with('}'));
}
