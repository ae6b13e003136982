//! Every shipped spec, and fixtures using what the shipped ones do not (option A with
//! projections in one network, options C, mixed block kinds, groups and biases that vary
//! between stages, pre-activation and plain bottlenecks, `zero_init_residual`, dropout,
//! average and ceil-mode stem pooling, a max-pooling or flattening head, softmax, custom
//! BN settings), expanded by `#[resnet]`, checked against the layer table and against the
//! runtime graph.

mod common;

use common::{build, check_against_runtime, check_same_network, check_variables, compile};
use macro_demo::built;
use resnetc::Overrides;
use resnetc_macros::resnet;

/// `check!(test, Type, "spec path", [C, H, W] input for the comparisons, the type in the
/// file `resnetc build` writes)`.
macro_rules! check {
    ($test:ident, $ty:ident, $spec:literal, $input:expr, $built:ty) => {
        #[resnet(spec = $spec)]
        struct $ty;

        #[test]
        fn $test() {
            let compiled = compile($spec, &Overrides::default());
            let (vs, _net) = build($ty::new);
            check_variables(&vs, &compiled);
            assert_eq!(
                $ty::TRAINABLE_PARAMS as u64,
                compiled.network.totals.trainable_params
            );
            assert_eq!($ty::MACS as u64, compiled.network.totals.macs);
            assert_eq!(
                Some($ty::NUM_CLASSES as u64),
                compiled.network.classes()
            );
            let input: [i64; 3] = $input;
            let input = if input == [0, 0, 0] {
                $ty::INPUT_SHAPE
            } else {
                input
            };
            check_against_runtime($ty::new, &compiled, input);
            check_same_network($ty::new, <$built>::new, input);
        }
    };
}

// Pooling heads accept any input size: compare on small ones to keep the CPU time low.
// `[0, 0, 0]` means the spec's own input (flattening heads need it).
check!(
    article_keras,
    ArticleKeras,
    "../../specs/article-keras.yaml",
    [0, 0, 0],
    built::article_keras::ArticleKeras
);
check!(
    cifar_resnet20,
    CifarResNet20,
    "../../specs/cifar-resnet20.yaml",
    [0, 0, 0],
    built::cifar_resnet20::CifarResNet20
);
check!(
    cifar_resnet110,
    CifarResNet110,
    "../../specs/cifar-resnet110.yaml",
    [3, 16, 16],
    built::cifar_resnet110::CifarResNet110
);
check!(
    fmnist_resnet20,
    FmnistResNet20,
    "../../specs/fmnist-resnet20.yaml",
    [0, 0, 0],
    built::fmnist_resnet20::FmnistResNet20
);
check!(
    plain34,
    Plain34,
    "../../specs/plain34.yaml",
    [3, 64, 64],
    built::plain34::Plain34
);
check!(
    preact_resnet18,
    PreActResNet18,
    "../../specs/preact-resnet18.yaml",
    [0, 0, 0],
    built::preact_resnet18::PreActResNet18
);
check!(
    resnet34,
    ResNet34,
    "../../specs/resnet34.yaml",
    [3, 64, 64],
    built::resnet34::ResNet34
);
check!(
    resnet50,
    ResNet50,
    "../../specs/resnet50.yaml",
    [3, 64, 64],
    built::resnet50::ResNet50
);
check!(
    resnet50_v1,
    ResNet50V1,
    "../../specs/resnet50-v1.yaml",
    [3, 64, 64],
    built::resnet50_v1::ResNet50V1
);
check!(
    resnet101,
    ResNet101,
    "../../specs/resnet101.yaml",
    [3, 64, 64],
    built::resnet101::ResNet101
);
check!(
    resnet152,
    ResNet152,
    "../../specs/resnet152.yaml",
    [3, 64, 64],
    built::resnet152::ResNet152
);
check!(
    resnext50,
    ResNeXt50_32x4d,
    "../../specs/resnext50-32x4d.yaml",
    [3, 64, 64],
    built::resnext50_32x4d::ResNeXt50_32x4d
);
check!(
    wide_resnet50,
    WideResNet50_2,
    "../../specs/wide-resnet50-2.yaml",
    [3, 64, 64],
    built::wide_resnet50_2::WideResNet50_2
);
check!(
    mixed_features,
    MixedFeatures,
    "specs/mixed-features.yaml",
    [0, 0, 0],
    built::mixed_features::MixedFeatures
);
check!(
    preact_flatten,
    PreActFlatten,
    "specs/preact-flatten.yaml",
    [0, 0, 0],
    built::preact_flatten::PreActFlatten
);
check!(
    option_c,
    OptionC,
    "specs/option-c.yaml",
    [0, 0, 0],
    built::option_c::OptionC
);
