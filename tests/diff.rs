//! `resnetc diff A B`: what it says of known pairs (the stride of ResNet v1, ResNet-D's
//! stem and projections, resnet34's extra blocks), that its numbers are `table`'s, its
//! JSON structure, exit codes, hostile names, and invariants over every pair of shipped
//! specs.
//!
//! Review snapshot changes with `cargo insta review`; never edit a `.snap` by hand.

mod common;

use resnetc::back::diff::{self, Diff, Spec, Status};
use serde_json::Value;

/// Runs `resnetc diff` (paths relative to the repository root) and returns stdout,
/// requiring exit 0 and nothing on stderr.
fn diff_text(a: &str, b: &str, extra: &[&str]) -> String {
    let mut args = vec!["diff", a, b];
    args.extend(extra);
    let out = common::resnetc(&args);
    assert_eq!(out.code, Some(0), "resnetc {args:?}:\n{}", out.stderr);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    out.stdout
}

fn diff_json(a: &str, b: &str) -> Value {
    let text = diff_text(a, b, &["--format", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

fn table_json(spec: &str) -> Value {
    let out = common::resnetc(&["table", spec, "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("table JSON")
}

/// The entry of `d["layers"]` named `name`.
fn layer<'v>(d: &'v Value, name: &str) -> &'v Value {
    d["layers"]
        .as_array()
        .expect("layers[]")
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no layer {name} in the diff"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// The diff's totals are each spec's `table --format json` totals, with `b - a`.
fn assert_totals_are_tables(d: &Value, a: &str, b: &str) {
    let (ta, tb) = (table_json(a), table_json(b));
    for (key, table_key) in [
        ("trainable_params", &["params", "trainable"][..]),
        ("non_trainable_params", &["params", "non_trainable"][..]),
        ("macs", &["macs"][..]),
    ] {
        let pick = |t: &Value| {
            table_key
                .iter()
                .fold(t, |v, k| &v[*k])
                .as_i64()
                .expect("a count")
        };
        let c = &d["totals"][key];
        assert_eq!(c["a"].as_i64(), Some(pick(&ta)), "{key} of {a}");
        assert_eq!(c["b"].as_i64(), Some(pick(&tb)), "{key} of {b}");
        assert_eq!(
            c["difference"].as_i64(),
            Some(pick(&tb) - pick(&ta)),
            "{key}"
        );
    }
}

#[test]
fn resnet50_against_v1_shows_the_stride_moving_to_the_first_1x1() {
    let (a, b) = ("specs/resnet50.yaml", "specs/resnet50-v1.yaml");
    let d = diff_json(a, b);
    assert_totals_are_tables(&d, a, b);
    assert_eq!(d["identical"], false);
    assert_eq!(d["totals"]["trainable_params"]["difference"], 0);
    assert_eq!(d["totals"]["macs"]["difference"], -231_211_008);
    for stage in ["layer2", "layer3", "layer4"] {
        let conv1 = layer(&d, &format!("{stage}.0.conv1"));
        assert_eq!(conv1["status"], "changed");
        assert_eq!(strings(&conv1["changed"]), ["stride", "output", "macs"]);
        assert!(conv1["a"]["op"]
            .as_str()
            .unwrap()
            .starts_with("Conv2d 1x1/1"));
        assert!(conv1["b"]["op"]
            .as_str()
            .unwrap()
            .starts_with("Conv2d 1x1/2"));
        let conv2 = layer(&d, &format!("{stage}.0.conv2"));
        assert_eq!(strings(&conv2["changed"]), ["stride"]);
        assert!(conv2["a"]["op"]
            .as_str()
            .unwrap()
            .starts_with("Conv2d 3x3/2"));
        assert!(conv2["b"]["op"]
            .as_str()
            .unwrap()
            .starts_with("Conv2d 3x3/1"));
    }
    // Only the first block of each downsampling stage changes: conv1, bn1, conv2.
    assert_eq!(d["layers"].as_array().unwrap().len(), 9);
    assert!(d["layers"].as_array().unwrap().iter().all(|l| l["name"]
        .as_str()
        .unwrap()
        .contains(".0.conv")
        || l["name"].as_str().unwrap().contains(".0.bn1")));
    // The same weights: a checkpoint moves across as it is.
    let sd = &d["state_dict"];
    assert_eq!(sd["a_loads_into_b"], true);
    assert_eq!(sd["same"], sd["b_tensors"]);

    let text = diff_text(a, b, &[]);
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line `{start}`:\n{text}"))
    };
    let (minus, plus) = (line("- layer2.0.conv1 "), line("+ layer2.0.conv1 "));
    assert!(
        minus.contains("Conv2d 1x1/1 p0, 256->128") && minus.contains("[128, 56, 56]"),
        "{minus}"
    );
    assert!(
        plus.contains("Conv2d 1x1/2 p0, 256->128") && plus.contains("[128, 28, 28]"),
        "{plus}"
    );
    assert!(plus.ends_with("stride, output, MACs"), "{plus}");
    assert!(
        text.contains("state_dict: a checkpoint of A loads into B: yes"),
        "{text}"
    );
    insta::assert_snapshot!("resnet50_vs_resnet50-v1", text);
}

#[test]
fn resnet50_against_resnet50d_shows_the_deep_stem_and_the_pooled_projections() {
    let (a, b) = ("specs/resnet50.yaml", "specs/timm/resnet50d.yaml");
    let d = diff_json(a, b);
    assert_totals_are_tables(&d, a, b);
    assert_eq!(layer(&d, "conv1")["status"], "removed");
    for name in ["conv1.0", "conv1.3", "conv1.6"] {
        assert_eq!(layer(&d, name)["status"], "added", "{name}");
    }
    // ResNet-D: an average pool takes the projection's stride; the conv moves to `.1`.
    let pool = layer(&d, "layer2.0.downsample.0");
    assert_eq!(pool["status"], "changed");
    assert_eq!(strings(&pool["changed"])[0], "op");
    assert!(pool["b"]["op"]
        .as_str()
        .unwrap()
        .starts_with("AvgPool2d 2x2/2"));
    assert_eq!(layer(&d, "layer2.0.downsample.2")["status"], "added");
    // The stages themselves are alike: every difference is in the stem and projections.
    assert!(d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "same"));

    let sd = &d["state_dict"];
    assert_eq!(sd["a_loads_into_b"], false);
    let missing: Vec<&str> = sd["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&"conv1.0.weight"), "{missing:?}");
    assert!(missing.contains(&"layer1.0.downsample.2.running_var"));
    let first = sd["missing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "conv1.0.weight")
        .unwrap();
    assert_eq!(first["shape"], serde_json::json!([32, 3, 3, 3]));
    let unexpected: Vec<&str> = sd["unexpected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(unexpected.contains(&"conv1.weight"), "{unexpected:?}");
    let mismatch = sd["mismatched"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "layer1.0.downsample.1.weight")
        .expect("the BN weight that became a conv weight");
    assert_eq!(mismatch["a"], serde_json::json!([256]));
    assert_eq!(mismatch["b"], serde_json::json!([256, 64, 1, 1]));

    let text = diff_text(a, b, &[]);
    assert!(
        text.contains("state_dict: a checkpoint of A loads into B: no"),
        "{text}"
    );
    assert!(
        text.contains("+ conv1.1.{bias, running_mean, running_var, weight}"),
        "{text}"
    );
    insta::assert_snapshot!("resnet50_vs_resnet50d", text);
}

#[test]
fn resnet18_against_resnet34_lists_the_added_blocks() {
    let (a, b) = ("specs/resnet18.yaml", "specs/resnet34.yaml");
    let d = diff_json(a, b);
    assert_totals_are_tables(&d, a, b);
    let added: Vec<&str> = d["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["status"], "added");
            b["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        added,
        [
            "layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4", "layer3.5",
            "layer4.2"
        ]
    );
    let repeats: Vec<(i64, i64)> = d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["changed"][0], "repeat");
            (
                s["a"]["repeat"].as_i64().unwrap(),
                s["b"]["repeat"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(repeats, [(2, 3), (2, 4), (2, 6), (2, 3)]);
    assert_eq!(
        strings(&d["stages"][2]["blocks_added"]),
        ["layer3.2", "layer3.3", "layer3.4", "layer3.5"]
    );
    // The added blocks' layers are the only differences, and their sums are the totals'.
    assert!(d["layers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "added" && l["block"].is_string()));
    let block_params: i64 = d["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["params"].as_i64().unwrap())
        .sum();
    assert_eq!(
        Some(block_params),
        d["totals"]["trainable_params"]["difference"].as_i64()
    );
    // resnet18's checkpoint lacks exactly the new blocks' tensors.
    let sd = &d["state_dict"];
    assert_eq!(sd["a_loads_into_b"], false);
    assert!(sd["unexpected"].as_array().unwrap().is_empty());
    assert!(sd["missing"].as_array().unwrap().iter().all(|t| {
        let n = t["name"].as_str().unwrap();
        added.iter().any(|b| n.starts_with(&format!("{b}.")))
    }));

    let text = diff_text(a, b, &[]);
    assert!(text.contains("+ layer3.5  basic block, 5 layers"), "{text}");
    assert!(
        text.contains("+ layer3.5.*  10 tensors: the whole basic block"),
        "{text}"
    );
    insta::assert_snapshot!("resnet18_vs_resnet34", text);
}

#[test]
fn a_spec_against_itself_and_its_other_syntax_has_no_differences() {
    for (a, b) in [
        ("specs/resnet50.yaml", "specs/resnet50.yaml"),
        ("specs/resnet50.yaml", "specs/resnet50.resnet"),
    ] {
        let d = diff_json(a, b);
        assert_eq!(d["identical"], true, "{a} {b}");
        assert!(d["layers"].as_array().unwrap().is_empty());
        assert_eq!(d["state_dict"]["a_loads_into_b"], true);
        let text = diff_text(a, b, &[]);
        assert!(
            text.contains("\nno differences: the same 126 layers"),
            "{text}"
        );
    }
    insta::assert_snapshot!(
        "resnet50_vs_itself",
        diff_text("specs/resnet50.yaml", "specs/resnet50.resnet", &[])
    );
}

#[test]
fn json_has_its_keys_in_the_documented_order_and_is_stable() {
    let text = diff_text(
        "specs/resnet50.yaml",
        "specs/timm/resnet50d.yaml",
        &["--format", "json"],
    );
    let top = [
        "identical",
        "a",
        "b",
        "totals",
        "settings",
        "stages",
        "blocks",
        "layers",
        "same_layers",
        "state_dict",
    ];
    let positions: Vec<usize> = top
        .iter()
        .map(|k| {
            text.find(&format!("\n  \"{k}\":"))
                .unwrap_or_else(|| panic!("no top-level key {k}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let again = diff_text(
        "specs/resnet50.yaml",
        "specs/timm/resnet50d.yaml",
        &["--format", "json"],
    );
    assert_eq!(text, again);
}

/// `d["settings"]` as (name, a, b).
fn settings(d: &Value) -> Vec<(String, String, String)> {
    d["settings"]
        .as_array()
        .expect("settings[]")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().expect("a string").to_string();
            (text("name"), text("a"), text("b"))
        })
        .collect()
}

#[test]
fn settings_outside_the_layer_table_are_compared() {
    // Keras's ResNet50: Xavier init, Keras's BN epsilon and momentum.
    let d = diff_json("specs/resnet50.yaml", "specs/keras/ResNet50.yaml");
    let want = [
        ("init", "kaiming_normal", "xavier_uniform"),
        ("batch_norm.eps", "0.00001", "0.00001001"),
        ("batch_norm.momentum", "0.1", "0.01"),
    ]
    .map(|(n, a, b)| (n.to_string(), a.to_string(), b.to_string()));
    assert_eq!(settings(&d), want);

    // A backbone's outputs: the same layers and weights, other feature maps.
    let dir = tempfile::tempdir().expect("temporary folder");
    let spec = |features: &str| {
        let path = dir.path().join(format!("{}.yaml", features.len()));
        std::fs::write(
            &path,
            format!(
                "name: bb\ninput: [3, 64, 64]\nstages:\n  - {{stage: s1, block: basic, repeat: 1, filters: [16, 16]}}\n  - {{stage: s2, block: basic, repeat: 1, filters: [32, 32]}}\nfeatures: {features}\n"
            ),
        )
        .unwrap();
        path.display().to_string()
    };
    let (a, b) = (spec("[s1, s2]"), spec("[s2]"));
    let d = diff_json(&a, &b);
    assert_eq!(d["identical"], false);
    assert_eq!(
        settings(&d),
        [("features".into(), "layer1, layer2".into(), "layer2".into())]
    );
    assert_eq!(d["state_dict"]["a_loads_into_b"], true);
}

#[test]
fn an_invalid_spec_gets_its_diagnostics_and_exit_1() {
    let bad = "tests/specs/invalid/identity-where-projection.yaml";
    let out = common::resnetc(&["diff", bad, "specs/resnet50.yaml"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!("{bad}:12:5")),
        "{}",
        out.stderr
    );
    // Both invalid: each one's diagnostics.
    let other = "tests/specs/invalid/empty-stages.yaml";
    let out = common::resnetc(&["diff", bad, other]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("could not compile `{bad}`")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("could not compile `{other}`")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_file_is_exit_3() {
    let out = common::resnetc(&["diff", "specs/resnet50.yaml", "specs/nope.yaml"]);
    common::assert_refused(&out, "specs/nope.yaml", &["cannot read"]);
    // Also when the other spec is invalid: the comparison did not happen at all.
    let out = common::resnetc(&[
        "diff",
        "specs/nope.yaml",
        "tests/specs/invalid/empty-stages.yaml",
    ]);
    common::assert_refused(&out, "specs/nope.yaml", &["cannot read"]);
    assert!(
        out.stderr.contains("the spec has no stages"),
        "{}",
        out.stderr
    );
}

#[test]
fn hostile_stage_names_are_escaped_in_text_and_kept_in_json() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let name = "conv2_x\u{1b}[31m\"\\\u{202e}";
    let spec = dir.path().join("hostile.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: hostile\ninput: [3, 32, 32]\nstages:\n  - {{stage: {}, block: basic, repeat: 1, filters: [16, 16]}}\nhead: {{classes: 10}}\n",
            common::yaml_quoted(name)
        ),
    )
    .unwrap();
    let plain = dir.path().join("plain.yaml");
    std::fs::write(
        &plain,
        "name: plain\ninput: [3, 32, 32]\nstages:\n  - {stage: s1, block: basic, repeat: 2, filters: [16, 16]}\nhead: {classes: 10}\n",
    )
    .unwrap();
    let (a, b) = (spec.display().to_string(), plain.display().to_string());
    let text = diff_text(&a, &b, &[]);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text}"
    );
    assert!(text.contains("conv2_x\\u{1b}[31m"), "{text}");
    let d = diff_json(&a, &b);
    assert_eq!(d["stages"][0]["a"]["name"], name);
    assert_eq!(strings(&d["stages"][0]["changed"])[..2], ["name", "repeat"]);
}

/// Every pair of shipped and zoo specs, in process: nothing panics, and the diff
/// accounts for every row of both layer tables and every tensor of both state_dicts.
#[test]
fn every_pair_of_specs_is_accounted_for() {
    let specs: Vec<(String, resnetc::Compiled)> = common::shipped_specs()
        .into_iter()
        .chain(common::zoo_specs())
        .map(|p| {
            let file = common::load(&p);
            let c = resnetc::compile(&file)
                .unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)));
            (file.name, c)
        })
        .collect();
    fn spec((path, c): &(String, resnetc::Compiled)) -> Spec<'_> {
        Spec {
            path: path.as_str(),
            model: &c.model,
            network: &c.network,
        }
    }
    for a in &specs {
        for b in &specs {
            let d: Diff = diff::compare(spec(a), spec(b));
            let what = format!("{} against {}", a.0, b.0);
            let (na, nb) = (&a.1.network, &b.1.network);
            let count = |st: Status| d.layers.iter().filter(|l| l.status == st).count();
            assert_eq!(
                d.same_layers + count(Status::Changed) + count(Status::Removed),
                na.layers.len(),
                "{what}: A's rows"
            );
            assert_eq!(
                d.same_layers + count(Status::Changed) + count(Status::Added),
                nb.layers.len(),
                "{what}: B's rows"
            );
            let s = &d.state_dict;
            assert_eq!(
                s.same + s.mismatched.len() + s.unexpected.len(),
                s.a_tensors,
                "{what}: A's tensors"
            );
            assert_eq!(
                s.same + s.mismatched.len() + s.missing.len() + s.missing_counters,
                s.b_tensors,
                "{what}: B's tensors"
            );
            assert_eq!(d.totals.macs.a, na.totals.macs, "{what}");
            assert_eq!(d.totals.macs.b, nb.totals.macs, "{what}");
            if a.0 == b.0 {
                assert!(d.identical, "{what}");
            }
            if d.identical {
                assert_eq!(na.layers, nb.layers, "{what}");
            }
            assert!(!diff::text::render(&d).is_empty());
        }
    }
}
