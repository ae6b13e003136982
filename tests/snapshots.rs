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
            Ok(c) => panic!(
                "{} compiled but should not ({} warnings)",
                file.name,
                c.warnings.len()
            ),
            Err(d) => d,
        };
        assert!(resnetc::diag::has_errors(&diags), "{}: no error", file.name);
        // Every error points into the file.
        for d in diags.iter().filter(|d| d.is_error()) {
            assert!(
                d.primary_span().is_some(),
                "{}: `{}` has no location",
                file.name,
                d.message
            );
        }
        insta::assert_snapshot!(render(&file, &diags));
    });
}

#[test]
fn graph_of_cifar_resnet20() {
    let file = common::load(&common::root().join("specs/cifar-resnet20.yaml"));
    let c = resnetc::compile(&file).unwrap();
    insta::assert_snapshot!(resnetc::back::dot::graph(&c.model, &c.network));
}

#[test]
fn json_table_has_the_documented_fields() {
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let c = resnetc::compile(&file).unwrap();
    let v = table::json(&c.model, &c.network);
    assert_eq!(v["params"]["trainable"], 25_557_032);
    assert_eq!(v["params"]["non_trainable"], 53_120);
    assert_eq!(v["macs"], 4_089_184_256u64);
    assert_eq!(v["output"], serde_json::json!([1000]));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers[0]["name"], "conv1");
    assert_eq!(layers[0]["output"], serde_json::json!([64, 112, 112]));
    for l in layers {
        for key in ["name", "op", "output", "params", "macs"] {
            assert!(l.get(key).is_some(), "{l} lacks {key}");
        }
    }
    let sum: u64 = layers.iter().map(|l| l["params"].as_u64().unwrap()).sum();
    assert_eq!(sum, 25_557_032);
}
