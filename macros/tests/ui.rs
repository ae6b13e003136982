//! Compile errors of `#[resnet]`, checked with trybuild against `tests/ui/*.stderr`.
//! None of these programs reaches code that uses tch, so no libtorch is needed.

use std::path::Path;

#[test]
fn ui() {
    place_fixture_specs();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// trybuild compiles the tests as a crate of its own, in
/// `<target>/tests/trybuild/resnetc-macros/`, and `#[resnet]` resolves spec paths against
/// the compiling crate's root (CARGO_MANIFEST_DIR), so the fixtures go there: the UI
/// tests then name them as a user would, `spec = "specs/tiny.yaml"`.
fn place_fixture_specs() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
    let project = target
        .join("tests")
        .join("trybuild")
        .join(env!("CARGO_PKG_NAME"));
    let dest = project.join("specs");
    std::fs::create_dir_all(&dest).expect("trybuild project directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/specs");
    for entry in std::fs::read_dir(&source).expect("tests/ui/specs") {
        let path = entry.expect("directory entry").path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dest.join(name)).expect("copy a fixture spec");
        }
    }
}
