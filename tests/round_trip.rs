//! `resnetc fmt` round trip: converting a spec to YAML or the DSL and back gives the same
//! IR, for every shipped spec.

mod common;

use resnetc::span::{SourceFile, Syntax};

#[test]
fn every_shipped_spec_round_trips_through_both_syntaxes() {
    for path in common::shipped_specs() {
        let file = common::load(&path);
        let model = resnetc::compile(&file).unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d))).model;
        for (syntax, text) in [(Syntax::Yaml, resnetc::back::yaml::print(&model)), (Syntax::Dsl, resnetc::back::dsl::print(&model))] {
            let printed = SourceFile::new(format!("{} as {syntax:?}", file.name), text, syntax);
            let back = resnetc::compile(&printed)
                .unwrap_or_else(|d| panic!("{}\n{}", printed.text, resnetc::diag::render(&printed, &d)))
                .model;
            assert_eq!(back, model, "{} through {syntax:?}:\n{}", file.name, printed.text);
        }
    }
}

#[test]
fn dsl_and_yaml_versions_of_torchvision_depths_agree() {
    for depth in [18, 34, 50, 101, 152] {
        let yaml = common::load(&common::root().join(format!("specs/resnet{depth}.yaml")));
        let dsl = common::load(&common::root().join(format!("specs/resnet{depth}.resnet")));
        let a = resnetc::compile(&yaml).unwrap().model;
        let b = resnetc::compile(&dsl).unwrap().model;
        assert_eq!(a, b, "resnet{depth}");
    }
}
