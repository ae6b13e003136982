//! Unit tests of the ONNX writer (no libtorch: synthetic weights).

use super::*;
use crate::span::{SourceFile, Syntax};

fn compile(name: &str) -> Compiled {
    let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("shipped spec");
    crate::compile(&SourceFile::new(name, text, Syntax::Yaml)).expect("shipped spec compiles")
}

/// Deterministic weights of the right shapes (variances positive): one value per tensor,
/// cheap even for the largest shipped specs in a debug build.
fn params(c: &Compiled) -> Params {
    param_shapes(&c.network)
        .into_iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n: usize = shape.iter().product();
            let v = (i % 97) as f32 / 97.0;
            let v = if name.ends_with("running_var") {
                0.5 + v
            } else {
                v - 0.5
            };
            (
                name,
                Param {
                    shape,
                    data: vec![v; n],
                },
            )
        })
        .collect()
}

#[test]
fn the_graph_carries_the_tables_names() {
    let c = compile("resnet18.yaml");
    let m = model(&c, &params(&c), &OnnxOptions::default()).unwrap();
    assert_eq!(m.ir_version, Some(8));
    assert_eq!(m.opset_import[0].version, Some(17));
    let g = m.graph.unwrap();
    let inits: Vec<&str> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    for name in [
        "conv1.weight",
        "bn1.running_var",
        "layer2.0.downsample.0.weight",
        "fc.bias",
    ] {
        assert!(inits.contains(&name), "{name}");
    }
    // 20 convolutions, 20 BN, fc: every parameter the state_dict has but the counters.
    assert_eq!(inits.len(), 20 + 20 * 4 + 2);
    let node = |n: &str| {
        g.node
            .iter()
            .find(|x| x.name.as_deref() == Some(n))
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(node("layer1.0.conv1").op_type.as_deref(), Some("Conv"));
    assert_eq!(
        node("layer1.0.bn1").op_type.as_deref(),
        Some("BatchNormalization")
    );
    assert_eq!(node("fc").op_type.as_deref(), Some("Gemm"));
    // Every convolution's output value is named as its table row.
    for conv in c.network.convs() {
        assert!(
            g.node.iter().any(|n| n.output == [conv.name.clone()]),
            "{}",
            conv.name
        );
    }
    assert_eq!(g.input[0].name.as_deref(), Some("input"));
    assert_eq!(
        g.output
            .iter()
            .map(|o| o.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["logits"]
    );
    assert!(g.doc_string.unwrap().contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn folding_removes_every_bn_after_a_convolution() {
    let c = compile("resnet18.yaml");
    let p = params(&c);
    let opts = OnnxOptions {
        fold_bn: true,
        ..Default::default()
    };
    let g = model(&c, &p, &opts).unwrap().graph.unwrap();
    assert!(!g
        .node
        .iter()
        .any(|n| n.op_type.as_deref() == Some("BatchNormalization")));
    assert!(!g
        .initializer
        .iter()
        .any(|t| t.name.as_deref().unwrap().contains("running")));
    // conv1 folded with bn1: w * gamma / sqrt(var + eps), bias beta - mean * scale.
    let t = g
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some("conv1.bias"))
        .unwrap();
    let raw = t.raw_data.as_ref().unwrap();
    let b0 = f32::from_le_bytes(raw[..4].try_into().unwrap());
    let get = |n: &str| p[n].data[0] as f64;
    let scale = get("bn1.weight") / (get("bn1.running_var") + 1e-5).sqrt();
    assert_eq!(
        b0,
        (get("bn1.bias") - get("bn1.running_mean") * scale) as f32
    );
}

#[test]
fn the_same_weights_give_the_same_bytes() {
    let c = compile("timm/seresnet50.yaml");
    let p = params(&c);
    let a = export(&c, &p, &OnnxOptions::default()).unwrap();
    let b = export(&c, &p, &OnnxOptions::default()).unwrap();
    assert!(a == b);
    let half = export(
        &c,
        &p,
        &OnnxOptions {
            dtype: DType::F16,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(half.len() < a.len() * 6 / 10);
}

#[test]
fn missing_or_misshapen_weights_and_bad_opsets_are_errors() {
    let c = compile("resnet18.yaml");
    let mut p = params(&c);
    p.remove("layer3.1.bn2.running_mean");
    assert_eq!(
        model(&c, &p, &OnnxOptions::default()).unwrap_err(),
        OnnxError::Missing("layer3.1.bn2.running_mean".into())
    );
    let mut p = params(&c);
    p.get_mut("fc.weight").unwrap().shape = vec![512, 1000];
    assert!(matches!(
        model(&c, &p, &OnnxOptions::default()),
        Err(OnnxError::Shape { .. })
    ));
    let opts = OnnxOptions {
        opset: 12,
        ..Default::default()
    };
    assert_eq!(
        model(&c, &params(&c), &opts).unwrap_err(),
        OnnxError::Opset(12)
    );
}

#[test]
fn a_backbone_outputs_its_feature_maps() {
    let c = compile("resnet50-os8.yaml");
    let g = model(&c, &params(&c), &OnnxOptions::default())
        .unwrap()
        .graph
        .unwrap();
    let outs: Vec<String> = g.output.iter().map(|o| o.name.clone().unwrap()).collect();
    assert_eq!(outs, ["layer3", "layer4"]);
    assert!(!g.node.iter().any(|n| n.op_type.as_deref() == Some("Gemm")));
}

/// Every shipped spec up to 30M parameters (the larger ones repeat the same layers).
#[test]
fn every_shipped_spec_exports() {
    let mut names = vec![];
    for dir in ["", "timm/", "keras/"] {
        let d = format!("{}/specs/{dir}", env!("CARGO_MANIFEST_DIR"));
        for e in std::fs::read_dir(&d).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            if n.ends_with(".yaml") {
                names.push(format!("{dir}{n}"));
            }
        }
    }
    names.sort();
    for n in names {
        let c = compile(&n);
        // The largest ones (resnet101/152, wide-resnet50-2, ...) take long in a debug build;
        // their layers are all in the smaller ones.
        if c.network.totals.trainable_params > 30_000_000 {
            continue;
        }
        let p = params(&c);
        for fold_bn in [false, true] {
            let m = model(
                &c,
                &p,
                &OnnxOptions {
                    fold_bn,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{n}: {e}"));
            let g = m.graph.unwrap();
            // Node names are unique, and every value is produced once.
            let mut seen = HashSet::new();
            let mut produced = HashSet::new();
            for node in &g.node {
                assert!(
                    seen.insert(node.name.clone().unwrap()),
                    "{n}: node {:?} twice",
                    node.name
                );
                for o in &node.output {
                    assert!(produced.insert(o.clone()), "{n}: value {o} twice");
                }
            }
        }
    }
}
