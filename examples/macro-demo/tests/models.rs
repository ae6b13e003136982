//! The `#[resnet]` networks of this crate: built on the CPU, run on a random batch, and
//! checked against the layer table, torchvision's key count and resnetc's runtime.

mod common;

use common::{batch, build, check_against_runtime, check_variables, compile};
use macro_demo::{ArticlePytorch, GrayResNet18, ResNet18};
use resnetc::ir::Shape;
use resnetc::Overrides;
use tch::nn::ModuleT;

#[test]
fn resnet18_builds_runs_and_matches_the_table() {
    let compiled = compile("../../specs/resnet18.yaml", &Overrides::default());
    let (vs, net) = build(ResNet18::new);
    check_variables(&vs, &compiled);
    // torchvision's state_dict has 122 keys: these 102 and 20 `num_batches_tracked`.
    assert_eq!(vs.variables().len(), 102);
    assert_eq!(
        vs.variables().len() + compiled.network.batch_norms().count(),
        122
    );
    assert_eq!(
        vs.variables()["layer2.0.downsample.1.running_var"].size(),
        [128]
    );
    assert_eq!(
        vs.variables()["layer4.1.conv2.weight"].size(),
        [512, 512, 3, 3]
    );

    assert_eq!(ResNet18::INPUT_SHAPE, [3, 224, 224]);
    assert_eq!(ResNet18::NUM_CLASSES, 1000);
    assert_eq!(ResNet18::TRAINABLE_PARAMS, 11_689_512);
    assert_eq!(ResNet18::MACS, 1_814_073_344);

    let x = batch(2, ResNet18::INPUT_SHAPE);
    assert_eq!(net.forward_t(&x, false).size(), [2, 1000]);
    assert_eq!(net.forward_t(&x, true).size(), [2, 1000]);
}

#[test]
fn article_pytorch_builds_runs_and_matches_the_table() {
    let compiled = compile("../../specs/article-pytorch.yaml", &Overrides::default());
    let (vs, net) = build(ArticlePytorch::new);
    check_variables(&vs, &compiled);
    assert_eq!(ArticlePytorch::INPUT_SHAPE, [1, 224, 224]);
    assert_eq!(ArticlePytorch::NUM_CLASSES, 10);
    assert_eq!(ArticlePytorch::TRAINABLE_PARAMS, 21_290_250);
    assert_eq!(ArticlePytorch::MACS, 3_584_578_560);
    // Every convolution has a bias; projections have no BN.
    let vars = vs.variables();
    assert!(vars.contains_key("conv1.bias"));
    assert!(vars.contains_key("layer2.0.downsample.0.bias"));
    assert!(!vars.contains_key("layer2.0.downsample.1.weight"));

    let x = batch(2, ArticlePytorch::INPUT_SHAPE);
    assert_eq!(net.forward_t(&x, false).size(), [2, 10]);
    assert_eq!(net.forward_t(&x, true).size(), [2, 10]);
}

#[test]
fn attribute_arguments_override_input_and_classes() {
    let overrides = Overrides {
        input: Some(Shape::new(1, 28, 28)),
        classes: Some(10),
        name: None,
    };
    let compiled = compile("../../specs/resnet18.yaml", &overrides);
    let (vs, net) = build(GrayResNet18::new);
    check_variables(&vs, &compiled);
    assert_eq!(vs.variables()["conv1.weight"].size(), [64, 1, 7, 7]);
    assert_eq!(GrayResNet18::INPUT_SHAPE, [1, 28, 28]);
    assert_eq!(GrayResNet18::NUM_CLASSES, 10);
    assert_eq!(
        GrayResNet18::TRAINABLE_PARAMS as u64,
        compiled.network.totals.trainable_params
    );
    assert_eq!(
        net.forward_t(&batch(4, GrayResNet18::INPUT_SHAPE), false)
            .size(),
        [4, 10]
    );
}

#[test]
fn initialization_follows_torchvision_and_xavier() {
    let (vs, _net) = build(ResNet18::new);
    let vars = vs.variables();
    // Kaiming-normal, fan-out: layer4.1.conv2 has fan_out = 512 * 9, std sqrt(2 / 4608).
    let std = vars["layer4.1.conv2.weight"].std(true).double_value(&[]);
    let expected = (2.0f64 / 4608.0).sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.02,
        "std {std}, expected {expected}"
    );
    assert_eq!(
        vars["layer1.0.bn1.weight"].mean(None).double_value(&[]),
        1.0
    );
    assert_eq!(vars["layer1.0.bn1.bias"].abs().max().double_value(&[]), 0.0);
    // fc as nn.Linear: U(-1/sqrt(512), 1/sqrt(512)).
    let bound = 1.0 / 512f64.sqrt();
    for v in ["fc.weight", "fc.bias"] {
        let max = vars[v].abs().max().double_value(&[]);
        assert!(
            max <= bound && max > 0.9 * bound,
            "{v}: max |w| {max}, bound {bound}"
        );
    }

    // Xavier-uniform (the article's d2l init): conv1 7x7, 1 -> 64, a = sqrt(6 / (49 + 3136)).
    let (vs, _net) = build(ArticlePytorch::new);
    let vars = vs.variables();
    let a = (6.0f64 / (49.0 + 64.0 * 49.0)).sqrt();
    let max = vars["conv1.weight"].abs().max().double_value(&[]);
    assert!(max <= a && max > 0.9 * a, "conv1: max |w| {max}, bound {a}");
    assert_eq!(vars["conv1.bias"].abs().max().double_value(&[]), 0.0);
    assert_eq!(vars["fc.bias"].abs().max().double_value(&[]), 0.0);
}

#[test]
fn resnet18_equals_the_runtime() {
    let compiled = compile("../../specs/resnet18.yaml", &Overrides::default());
    check_against_runtime(ResNet18::new, &compiled, [3, 64, 64]);
}

#[test]
fn article_pytorch_equals_the_runtime() {
    let compiled = compile("../../specs/article-pytorch.yaml", &Overrides::default());
    check_against_runtime(ArticlePytorch::new, &compiled, [1, 96, 96]);
}

#[test]
fn networks_of_a_hostile_spec_build_and_run() {
    use macro_demo::hostile;
    let compiled = compile("specs/hostile.yaml", &Overrides::default());
    let (vs, net) = build(hostile::Vec::new);
    check_variables(&vs, &compiled);
    assert_eq!(hostile::Vec::NUM_CLASSES, 5);
    let x = batch(2, hostile::Vec::INPUT_SHAPE);
    assert_eq!(net.forward_t(&x, false).size(), [2, 5]);

    let (_, net) = build(hostile::Option::new);
    assert_eq!(net.forward_t(&x, false).size(), [2, 3]);
    let (_, net) = build(hostile::Tensor::new);
    assert_eq!(net.forward_t(&x, true).size(), [2, 5]);
    let (_, net) =
        build(macro_demo::built::hostile::HostileCompileErrorADocTestFromTheModelNameRan::new);
    assert_eq!(net.forward_t(&x, false).size(), [2, 5]);
}
