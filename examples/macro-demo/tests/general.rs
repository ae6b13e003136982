//! The general form of the generated module on libtorch: the networks of `variants.rs`
//! (deep stems, ResNet-D, SE/ECA, GroupNorm, BlurPool, Keras V2 blocks, dilation,
//! stochastic depth), as `resnetc build` writes them (`macro_demo::built::general`),
//! against resnetc's runtime with the same weights: the same variables (names, shapes,
//! trainability), the same logits in eval and train mode, the same BN statistics after.

mod common;

#[path = "../variants.rs"]
mod variants;

use common::{build, check_against_runtime};
use macro_demo::built::general;
use resnetc::Compiled;
use std::collections::BTreeMap;
use std::path::Path;
use tch::nn::{self, ModuleT};

fn variant(name: &str) -> Compiled {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    variants::all(&root)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

/// Name -> (shape, trainable) of a VarStore's variables, without the runtime's
/// `num_batches_tracked` counters (tch's BatchNorm has none).
fn variables(vs: &nn::VarStore) -> BTreeMap<String, (Vec<i64>, bool)> {
    vs.variables()
        .into_iter()
        .filter(|(name, _)| !name.ends_with(".num_batches_tracked"))
        .map(|(name, t)| (name, (t.size(), t.requires_grad())))
        .collect()
}

/// The generated module creates exactly the runtime's variables, and its constants and
/// parameter count are the checked network's; then [`check_against_runtime`].
fn check<M: ModuleT>(
    name: &str,
    new: impl Fn(&nn::Path) -> M + Copy,
    consts: (i64, i64, [i64; 3]),
    input: [i64; 3],
) {
    let compiled = variant(name);
    let (vs, _) = build(new);
    let (runtime_vs, _) = build(|p| resnetc::runtime::ResNet::new(p, &compiled).expect("builds"));
    let generated = variables(&vs);
    assert_eq!(generated, variables(&runtime_vs), "{name}: variables");
    let trainable: u64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as u64)
        .sum();
    let net = &compiled.network;
    assert_eq!(trainable, net.totals.trainable_params, "{name}");
    let (params, macs, shape) = consts;
    assert_eq!(params as u64, net.totals.trainable_params, "{name}");
    assert_eq!(macs as u64, net.totals.macs, "{name}");
    assert_eq!(
        shape.map(|v| v as u64),
        [net.input.c, net.input.h, net.input.w]
    );
    check_against_runtime(new, &compiled, input);
}

/// `general!(test, module, Type, input)`: the variant `module` (its file stem with `_`).
macro_rules! general {
    ($test:ident, $variant:literal, $ty:path, $input:expr) => {
        #[test]
        fn $test() {
            use $ty as Net;
            check(
                $variant,
                Net::new,
                (Net::TRAINABLE_PARAMS, Net::MACS, Net::INPUT_SHAPE),
                $input,
            );
        }
    };
}

general!(
    resnet50d_deep_stem_and_avg_down,
    "resnet50d",
    general::resnet50d::ResNet50d,
    [3, 64, 64]
);
general!(
    seresnet50_squeeze_excitation,
    "seresnet50",
    general::seresnet50::Seresnet50,
    [3, 64, 64]
);
general!(
    ecaresnet26_efficient_channel_attention,
    "ecaresnet26",
    general::ecaresnet26::Ecaresnet26,
    [3, 64, 64]
);
general!(
    resnet50_group_norm,
    "resnet50-gn",
    general::resnet50_gn::ResNet50Gn,
    [3, 64, 64]
);
general!(
    resnetblur50_blur_pool,
    "resnetblur50",
    general::resnetblur50::ResNetblur50,
    [3, 64, 64]
);
general!(
    keras_resnet50v2_stride_last_and_bias,
    "keras-resnet50v2",
    general::keras_resnet50v2::KerasResNet50v2,
    [3, 64, 64]
);
general!(
    resnet50_dilated,
    "resnet50-dilated",
    general::resnet50_dilated::ResNet50Dilated,
    [3, 64, 64]
);
general!(
    resnet_rs_like_with_drop_path,
    "resnet-rs-like",
    general::resnet_rs_like::ResNetRsLike,
    [3, 64, 64]
);
general!(
    preact_group_norm_blur_stem,
    "preact-gn-blur",
    general::preact_gn_blur::PreActGnBlur,
    [3, 64, 64]
);
general!(
    cifar_eca_option_a_and_plain,
    "cifar-eca-mixed",
    general::cifar_eca_mixed::CifarEcaMixed,
    [3, 32, 32]
);

/// Stochastic depth really drops something in training, and nothing in evaluation: the
/// comparison with the runtime would also pass for a drop path that never fires.
#[test]
fn drop_path_drops_whole_samples_in_training_only() {
    use general::resnet_rs_like::{Layer, ResNetRsLike as Net};
    let compiled = variant("resnet-rs-like");
    let (_vs, net) = build(Net::new);
    // The generated blocks carry the checked network's rates.
    let rates: Vec<f64> = [&net.layer1, &net.layer2, &net.layer3, &net.layer4]
        .into_iter()
        .flatten()
        .flat_map(|b| &b.branch)
        .filter_map(|l| match l {
            Layer::DropPath { rate } => Some(*rate),
            _ => None,
        })
        .collect();
    let expected: Vec<f64> = compiled
        .network
        .body_layers()
        .filter_map(|l| match l {
            resnetc::valid::Layer::DropPath { rate, .. } => Some(*rate),
            _ => None,
        })
        .collect();
    assert_eq!(rates, expected);
    assert!(!rates.is_empty());

    let layer = Layer::DropPath { rate: 0.5 };
    let ones = tch::Tensor::ones([256, 2, 3, 3], (tch::Kind::Float, tch::Device::Cpu));
    assert_eq!(common::max_diff(&layer.forward_t(&ones, false), &ones), 0.0);
    let _rng = common::rng();
    let y = layer.forward_t(&ones, true);
    // Each sample is all 0 (dropped) or all 2 (kept, scaled by 1 / 0.5).
    let per_sample = y.flatten(1, -1);
    let (min, max) = (per_sample.min_dim(1, false).0, per_sample.max_dim(1, false).0);
    assert_eq!(common::max_diff(&min, &max), 0.0, "whole samples");
    let kept = max.eq(2.0).sum(tch::Kind::Int64).int64_value(&[]);
    let dropped = max.eq(0.0).sum(tch::Kind::Int64).int64_value(&[]);
    assert_eq!(kept + dropped, 256);
    assert!((64..=192).contains(&kept), "kept {kept} of 256 at rate 0.5");
}
