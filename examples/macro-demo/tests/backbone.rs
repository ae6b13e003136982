//! A backbone through `#[resnet]`: torchvision's resnet50 with output stride 8
//! (`specs/resnet50-os8.yaml`) returns the feature maps of layer3 and layer4 from
//! `features_t`, with the runtime's variables and values in eval and train mode.

mod common;

use common::{batch, build, check_variables, compile, max_diff, randomize_batch_norms};
use resnetc::Overrides;
use resnetc_macros::resnet;

#[resnet(spec = "../../specs/resnet50-os8.yaml", input = "3x64x64")]
struct ResNet50Os8;

#[test]
fn backbone_feature_maps_match_the_runtime() {
    let compiled = compile(
        "../../specs/resnet50-os8.yaml",
        &Overrides { input: Some(resnetc::ir::Shape::new(3, 64, 64)), ..Overrides::default() },
    );
    assert!(compiled.network.head.is_none());
    assert_eq!(ResNet50Os8::FEATURES, ["layer3", "layer4"]);
    assert_eq!(ResNet50Os8::TRAINABLE_PARAMS as u64, compiled.network.totals.trainable_params);

    let (runtime_vs, runtime) = build(|p| resnetc::runtime::ResNet::new(p, &compiled).expect("runtime"));
    randomize_batch_norms(&runtime_vs);
    let (mut generated_vs, generated) = build(ResNet50Os8::new);
    check_variables(&generated_vs, &compiled);
    generated_vs.copy(&runtime_vs).expect("the runtime has every generated variable");

    let x = batch(2, ResNet50Os8::INPUT_SHAPE);
    for train in [false, true, false] {
        let ours = generated.features_t(&x, train);
        let theirs = runtime.f_features_t(&x, train).expect("runtime features");
        assert_eq!(ours.len(), theirs.len());
        for (a, (name, b)) in ours.iter().zip(&theirs) {
            assert_eq!(a.size(), b.size(), "{name}");
            // Output stride 8: a 64x64 input gives 8x8 maps at layer3 and layer4.
            assert_eq!(&a.size()[2..], &[8, 8], "{name}");
            let d = max_diff(a, b);
            assert!(d <= 1e-5, "{name}: generated and runtime differ by {d} (train = {train})");
        }
    }
}
