//! 1. Gives the tests an rpath to libtorch's `lib/` folder so they run without
//!    LD_LIBRARY_PATH (as the root crate's build script does for `resnetc`).
//! 2. Writes the module `resnetc build` would write for every shipped spec and every spec
//!    under `specs/` into `$OUT_DIR/<spec name>.rs`, for `macro_demo::built`.
//! 3. Writes the modules of the networks of `variants.rs` (IR built in code: constructs no
//!    shipped spec uses) into `$OUT_DIR/general-<name>.rs`, for `macro_demo::built::general`.
use resnetc::back::rust::{module_source, RustOptions};
use resnetc::span::{SourceFile, Syntax};
use std::path::Path;

#[path = "variants.rs"]
mod variants;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let dir = std::fs::canonicalize(&dir)
            .map(|p| p.display().to_string())
            .unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }

    let out_dir = std::env::var("OUT_DIR").expect("Cargo sets OUT_DIR");
    for dir in ["../../specs", "specs"] {
        println!("cargo:rerun-if-changed={dir}");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path.display().to_string();
            println!("cargo:rerun-if-changed={name}");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let syntax = Syntax::from_path(&name).unwrap_or(Syntax::Yaml);
            let file = SourceFile::new(name.clone(), text, syntax);
            let compiled = resnetc::compile(&file)
                .unwrap_or_else(|diags| panic!("{}", resnetc::diag::render(&file, &diags)));
            let source = module_source(
                &compiled,
                &RustOptions {
                    name: None,
                    source: Some(name),
                },
            );
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("UTF-8 file name");
            std::fs::write(Path::new(&out_dir).join(format!("{stem}.rs")), source)
                .expect("write to OUT_DIR");
        }
    }

    println!("cargo:rerun-if-changed=variants.rs");
    for (stem, compiled) in variants::all(Path::new("../..")) {
        let source = module_source(
            &compiled,
            &RustOptions {
                name: None,
                source: Some(format!("variants.rs: {stem}")),
            },
        );
        std::fs::write(
            Path::new(&out_dir).join(format!("general-{stem}.rs")),
            source,
        )
        .expect("write to OUT_DIR");
    }
}
