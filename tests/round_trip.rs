//! `resnetc fmt` round trip: converting a spec to YAML or the DSL and back gives the same
//! IR, for every shipped spec and every zoo spec.

mod common;

use resnetc::span::{SourceFile, Syntax};

#[test]
fn every_shipped_spec_round_trips_through_both_syntaxes() {
    for path in common::shipped_specs().into_iter().chain(common::zoo_specs()) {
        let file = common::load(&path);
        let model = resnetc::compile(&file)
            .unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
            .model;
        for (syntax, text) in [
            (Syntax::Yaml, resnetc::back::yaml::print(&model)),
            (Syntax::Dsl, resnetc::back::dsl::print(&model)),
        ] {
            let printed = SourceFile::new(format!("{} as {syntax:?}", file.name), text, syntax);
            let back = resnetc::compile(&printed)
                .unwrap_or_else(|d| {
                    panic!("{}\n{}", printed.text, resnetc::diag::render(&printed, &d))
                })
                .model;
            assert_eq!(
                back, model,
                "{} through {syntax:?}:\n{}",
                file.name, printed.text
            );
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

#[test]
fn names_with_unprintable_characters_round_trip_and_print_escaped() {
    // Controls, an escape sequence, bidi overrides, separators and a BOM in the model's
    // and a stage's name: printed as escapes in both syntaxes, read back exactly.
    let hostile = "a\u{1b}[31m\u{202e}b\u{2028}c\u{7f}\u{85}\u{feff}\u{2066}d\r\n\t\0";
    let quoted: String = hostile
        .chars()
        .map(|c| format!("\\U{:08X}", u32::from(c)))
        .collect();
    let text = format!(
        "name: \"{quoted}\"\ninput: [3, 32, 32]\nstem: {{conv: {{filters: 16, kernel: 3}}, pool: none}}\n\
         defaults: {{block: basic}}\nstages:\n  - {{stage: \"{quoted}\", repeat: 1, filters: [16, 16]}}\n\
         head: {{pool: avg, classes: 10}}\n"
    );
    let file = SourceFile::new("hostile.yaml", text, Syntax::Yaml);
    let model = resnetc::compile(&file)
        .unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
        .model;
    assert_eq!(model.name, hostile);
    for (syntax, text) in [
        (Syntax::Yaml, resnetc::back::yaml::print(&model)),
        (Syntax::Dsl, resnetc::back::dsl::print(&model)),
    ] {
        let shown: Vec<char> = text
            .chars()
            .filter(|&c| resnetc::diag::is_unprintable(c) && c != '\n')
            .collect();
        assert!(
            shown.is_empty(),
            "{syntax:?} prints {shown:?} as it is:\n{text}"
        );
        let printed = SourceFile::new(format!("hostile as {syntax:?}"), text, syntax);
        let back = resnetc::compile(&printed)
            .unwrap_or_else(|d| panic!("{}\n{}", printed.text, resnetc::diag::render(&printed, &d)))
            .model;
        assert_eq!(back, model, "through {syntax:?}:\n{}", printed.text);
    }
}
