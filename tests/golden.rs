//! The shipped specs' totals equal torchvision's and the papers' exactly
//! (numbers from ../shared/REFERENCE.md, computed with torchvision 0.26).

mod common;

use resnetc::compile;

/// (spec, trainable params, non-trainable params or None, MACs or None)
const GOLDEN: &[(&str, u64, Option<u64>, Option<u64>)] = &[
    ("resnet18", 11_689_512, Some(9_600), Some(1_814_073_344)),
    ("resnet34", 21_797_672, Some(17_024), Some(3_663_761_408)),
    ("resnet50", 25_557_032, Some(53_120), Some(4_089_184_256)),
    ("resnet101", 44_549_160, Some(105_344), Some(7_801_405_440)),
    ("resnet152", 60_192_808, Some(151_424), Some(11_513_626_624)),
    ("resnet50-v1", 25_557_032, Some(53_120), Some(3_857_973_248)),
    (
        "resnext50-32x4d",
        25_028_904,
        Some(68_224),
        Some(4_230_479_872),
    ),
    (
        "wide-resnet50-2",
        68_883_240,
        Some(68_224),
        Some(11_398_021_120),
    ),
    ("cifar-resnet20", 269_722, None, Some(40_551_040)),
    ("cifar-resnet32", 464_154, None, Some(68_862_592)),
    ("cifar-resnet44", 658_586, None, Some(97_174_144)),
    ("cifar-resnet56", 853_018, None, Some(125_485_696)),
    ("cifar-resnet110", 1_727_962, None, Some(252_887_680)),
    ("fmnist-resnet20", 269_434, None, Some(30_821_248)),
    (
        "article-pytorch",
        21_290_250,
        Some(15_232),
        Some(3_584_578_560),
    ),
    ("article-keras", 23_555_082, Some(53_120), None),
];

fn check(name: &str, ext: &str, params: u64, non_trainable: Option<u64>, macs: Option<u64>) {
    let path = common::root().join("specs").join(format!("{name}.{ext}"));
    let file = common::load(&path);
    let c = compile(&file)
        .unwrap_or_else(|d| panic!("{}:\n{}", file.name, resnetc::diag::render(&file, &d)));
    let t = c.network.totals;
    assert_eq!(t.trainable_params, params, "{name}.{ext}: trainable params");
    if let Some(n) = non_trainable {
        assert_eq!(t.non_trainable_params, n, "{name}.{ext}: BN running stats");
    }
    if let Some(m) = macs {
        assert_eq!(t.macs, m, "{name}.{ext}: MACs");
    }
}

#[test]
fn yaml_specs_match_golden_totals() {
    for &(name, p, n, m) in GOLDEN {
        check(name, "yaml", p, n, m);
    }
}

#[test]
fn dsl_specs_match_golden_totals() {
    for &(name, p, n, m) in GOLDEN
        .iter()
        .filter(|g| g.0.starts_with("resnet") && !g.0.contains('-'))
    {
        check(name, "resnet", p, n, m);
    }
}

#[test]
fn stage_output_sizes_follow_table_1() {
    let file = common::load(&common::root().join("specs/resnet50.yaml"));
    let c = compile(&file).unwrap();
    let stem = &c.network.stem;
    assert_eq!(stem.first_conv().output.h, 112);
    let sizes: Vec<u64> = c.network.stages.iter().map(|s| s.output.h).collect();
    assert_eq!(sizes, [56, 28, 14, 7]);
    let blocks: Vec<u64> = c.network.stages.iter().map(|s| s.repeat).collect();
    assert_eq!(blocks, [3, 4, 6, 3]);
}

#[test]
fn article_keras_spatial_flow_is_32_13_6_6_3_2_1() {
    let file = common::load(&common::root().join("specs/article-keras.yaml"));
    let c = compile(&file).unwrap();
    let n = &c.network;
    let mut flow = vec![n.input.h, n.stem.first_conv().output.h, n.stem.output().h];
    flow.extend(n.stages.iter().map(|s| s.output.h));
    assert_eq!(flow, [32, 13, 6, 6, 3, 2, 1]);
    // The same network at 224 flattens a 7x7x2048 map: the checker says so.
    let big = resnetc::compile_with(
        &file,
        &resnetc::Overrides {
            input: Some(resnetc::ir::Shape::new(3, 224, 224)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(big.network.head.as_ref().map(|h| h.fc.in_features), Some(7 * 7 * 2048));
    assert!(big.warnings.iter().any(|w| w.code == "W-flatten"));
}

#[test]
fn state_dict_key_counts_match_torchvision() {
    // torchvision's state_dict: conv weight (+bias), BN weight/bias/running_mean/running_var/
    // num_batches_tracked, fc weight and bias.
    for (name, keys) in [
        ("resnet18", 122),
        ("resnet34", 218),
        ("resnet50", 320),
        ("resnet101", 626),
        ("resnet152", 932),
    ] {
        let file = common::load(&common::root().join(format!("specs/{name}.yaml")));
        let c = compile(&file).unwrap();
        let n = &c.network;
        let convs = n
            .layers
            .iter()
            .filter(|r| r.op.starts_with("Conv2d"))
            .count();
        let bns = n.batch_norms().count();
        assert_eq!(convs + 5 * bns + 2, keys, "{name}");
    }
}
