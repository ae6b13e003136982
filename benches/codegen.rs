//! Code generation time for resnet152, the largest shipped spec:
//! - `module_source`: what `resnetc build` does after checking (tokens, then prettyplease);
//! - `module_tokens`: what `#[resnet]` does after checking;
//! - `resnetc build` and `#[resnet]` end to end from the spec text (parse, lower, check,
//!   generate), file I/O aside.
//!
//! Run: `cargo bench --bench codegen`.
use criterion::{criterion_group, criterion_main, Criterion};
use resnetc::back::rust::{module_source, module_tokens, RustOptions};
use resnetc::span::{SourceFile, Syntax};
use std::hint::black_box;

fn load(name: &str) -> SourceFile {
    let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("shipped spec");
    SourceFile::new(
        format!("specs/{name}"),
        text,
        Syntax::from_path(&path).expect("extension"),
    )
}

fn bench(c: &mut Criterion) {
    let file = load("resnet152.yaml");
    let compiled = resnetc::compile(&file).expect("valid");
    let opts = RustOptions {
        name: None,
        source: Some(file.name.clone()),
    };
    c.bench_function("module_source resnet152", |b| {
        b.iter(|| module_source(black_box(&compiled), &opts).len())
    });
    c.bench_function("module_tokens resnet152", |b| {
        b.iter(|| module_tokens(black_box(&compiled), &opts).is_empty())
    });
    c.bench_function("build resnet152 (compile + module_source)", |b| {
        b.iter(|| {
            let compiled = resnetc::compile(black_box(&file)).expect("valid");
            module_source(&compiled, &opts).len()
        })
    });
    c.bench_function("macro resnet152 (compile + module_tokens)", |b| {
        b.iter(|| {
            let compiled = resnetc::compile(black_box(&file)).expect("valid");
            module_tokens(&compiled, &opts).is_empty()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
