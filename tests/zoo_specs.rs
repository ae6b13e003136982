//! The zoo's specs (`specs/timm/*.yaml`, `specs/keras/*.yaml`) against the golden numbers
//! of the live models (`tests/zoo/reference/{timm,keras}/*.json`, written by
//! `scripts/zoo_reference.py`; `tests/zoo.rs` checks that they are what the models report).
//!
//! Every spec is compiled at the golden file's `default_input` and at each other input it
//! lists, and must give exactly the same trainable and non-trainable parameters and MACs
//! (BlurPool's fixed filter is left out of both totals). For timm every module with
//! parameters must also be a layer of the checked network with the same name, the same
//! parameter counts and the same output shape (batch 1 first). Keras names its layers its
//! own way, so only the totals are compared there.
//!
//! Needs no libtorch: `cargo test -j2 --test zoo_specs -- --nocapture` prints one line per
//! model.

mod common;

use resnetc::ir::Shape;
use resnetc::{compile_with, Overrides};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// `3x224x224` -> the shape.
fn parse_tag(tag: &str) -> Shape {
    let dims: Vec<u64> = tag
        .split('x')
        .map(|d| d.parse().unwrap_or_else(|e| panic!("input tag {tag}: {e}")))
        .collect();
    assert_eq!(dims.len(), 3, "input tag {tag}");
    Shape::new(dims[0], dims[1], dims[2])
}

fn tag_of(shape: Shape) -> String {
    format!("{}x{}x{}", shape.c, shape.h, shape.w)
}

fn u64_at(v: &Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur.as_u64()
        .unwrap_or_else(|| panic!("{} is not an integer: {cur}", path.join(".")))
}

fn shape_of(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a shape: {v}"))
        .iter()
        .map(|d| d.as_u64().expect("a dimension"))
        .collect()
}

/// Checks one spec against its golden file; returns the summary line.
fn check(source: &str, golden_path: &Path) -> String {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(golden_path)
            .unwrap_or_else(|e| panic!("{}: {e}", golden_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let name = golden_path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file name");
    // torchvision's variant is a top-level spec (`specs/resnet50-os8.yaml`).
    let spec = match source {
        "torchvision" => common::root().join(format!("specs/{name}.yaml")),
        _ => common::root().join(format!("specs/{source}/{name}.yaml")),
    };
    let file = common::load(&spec);

    let default = Shape::new(
        golden["default_input"][0].as_u64().expect("C"),
        golden["default_input"][1].as_u64().expect("H"),
        golden["default_input"][2].as_u64().expect("W"),
    );
    let mut tags = vec![tag_of(default)];
    for tag in golden["inputs"].as_object().expect("inputs").keys() {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }

    let trainable = u64_at(&golden, &["params", "trainable"]);
    let non_trainable = u64_at(&golden, &["params", "non_trainable"]);
    let mut failures = Vec::new();
    let mut macs_text = Vec::new();
    let mut modules_checked = 0;
    for tag in &tags {
        let input = parse_tag(tag);
        let overrides = Overrides {
            input: Some(input),
            ..Overrides::default()
        };
        let compiled = compile_with(&file, &overrides).unwrap_or_else(|d| {
            panic!(
                "{} does not compile at {tag}:\n{}",
                spec.display(),
                resnetc::diag::render(&file, &d)
            )
        });
        let totals = compiled.network.totals;
        let macs = u64_at(&golden, &["inputs", tag, "macs"]);
        let mut expect = |what: &str, ours: u64, theirs: u64| {
            if ours != theirs {
                failures.push(format!("{tag}: {what}: ours {ours}, golden {theirs}"));
            }
        };
        expect("trainable params", totals.trainable_params, trainable);
        expect("non-trainable params", totals.non_trainable_params, non_trainable);
        expect("MACs", totals.macs, macs);
        macs_text.push(format!("{tag} {macs}"));

        // A backbone's outputs: `{module: [1, C, H, W]}`.
        if let Some(outputs) = golden["inputs"][tag.as_str()]["output_shape"].as_object() {
            let ours: BTreeMap<String, Vec<u64>> = compiled
                .network
                .features
                .iter()
                .map(|f| (f.module.clone(), vec![1, f.shape.c, f.shape.h, f.shape.w]))
                .collect();
            let theirs: BTreeMap<String, Vec<u64>> = outputs.iter().map(|(k, v)| (k.clone(), shape_of(v))).collect();
            if ours != theirs {
                failures.push(format!("{tag}: feature maps ours {ours:?}, golden {theirs:?}"));
            }
        }

        if source != "keras" {
            let rows: BTreeMap<&str, &resnetc::valid::LayerRow> = compiled
                .network
                .layers
                .iter()
                .map(|r| (r.name.as_str(), r))
                .collect();
            for m in golden["modules"].as_array().expect("modules") {
                let mname = m["name"].as_str().expect("module name");
                let Some(row) = rows.get(mname) else {
                    failures.push(format!("{tag}: no layer `{mname}` ({})", m["class"]));
                    continue;
                };
                modules_checked += 1;
                let params = m["params"].as_u64().expect("params");
                let nt = m["non_trainable"].as_u64().expect("non_trainable");
                if row.params != params || row.non_trainable != nt {
                    failures.push(format!(
                        "{tag}: `{mname}` ({}): params ours {} + {}, golden {params} + {nt}",
                        m["class"], row.params, row.non_trainable
                    ));
                }
                let theirs = shape_of(&m["output_shape"][tag.as_str()]);
                let mut ours = vec![1];
                ours.extend(&row.output);
                if ours != theirs {
                    failures.push(format!(
                        "{tag}: `{mname}` ({}): output ours {ours:?}, golden {theirs:?}",
                        m["class"]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differs from {}:\n  {}",
        spec.display(),
        golden_path.display(),
        failures.join("\n  ")
    );
    let modules = if source != "keras" {
        format!(", {modules_checked} module checks")
    } else {
        String::new()
    };
    format!(
        "{source}/{name}: {trainable} trainable + {non_trainable} non-trainable params, MACs {}{modules}: equal",
        macs_text.join(", ")
    )
}

fn golden_files(source: &str) -> Vec<std::path::PathBuf> {
    let dir = common::root().join("tests/zoo/reference").join(source);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn timm_specs_match_the_live_models() {
    let files = golden_files("timm");
    assert_eq!(files.len(), 13, "13 timm models: {files:?}");
    for golden in files {
        println!("{}", check("timm", &golden));
    }
}

#[test]
fn keras_specs_match_the_live_models() {
    let files = golden_files("keras");
    assert_eq!(files.len(), 6, "6 Keras models: {files:?}");
    for golden in files {
        println!("{}", check("keras", &golden));
    }
}

#[test]
fn torchvision_backbone_matches_the_live_model() {
    let files = golden_files("torchvision");
    assert_eq!(files.len(), 1, "resnet50-os8: {files:?}");
    for golden in files {
        println!("{}", check("torchvision", &golden));
    }
}

#[test]
fn every_zoo_spec_has_a_golden_file() {
    for source in ["timm", "keras"] {
        let dir = common::root().join("specs").join(source);
        for entry in std::fs::read_dir(&dir).expect("specs dir") {
            let path = entry.expect("dir entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
            let golden = common::root()
                .join("tests/zoo/reference")
                .join(source)
                .join(format!("{stem}.json"));
            assert!(golden.exists(), "{} has no {}", path.display(), golden.display());
        }
    }
}
