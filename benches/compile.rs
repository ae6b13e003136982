//! Compiler time of `resnetc check` and `resnetc table` on the largest shipped specs
//! (parse + lower + check, and + table rendering). Run: `cargo bench --bench compile`.
use criterion::{criterion_group, criterion_main, Criterion};
use resnetc::span::{SourceFile, Syntax};
use std::hint::black_box;

fn load(name: &str) -> SourceFile {
    let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("shipped spec");
    SourceFile::new(
        path.clone(),
        text,
        Syntax::from_path(&path).expect("extension"),
    )
}

fn bench(c: &mut Criterion) {
    for name in ["resnet152.yaml", "resnet152.resnet", "cifar-resnet110.yaml"] {
        let file = load(name);
        c.bench_function(&format!("check {name}"), |b| {
            b.iter(|| resnetc::compile(black_box(&file)).is_ok())
        });
        c.bench_function(&format!("table {name}"), |b| {
            b.iter(|| {
                let compiled = resnetc::compile(black_box(&file)).expect("valid");
                resnetc::back::table::layers(&compiled.model, &compiled.network).len()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
