//! The generator against the checked network: the arguments it writes for each block,
//! put through what its block templates do with them, give exactly the network's layers.
//! (`examples/macro-demo` checks the same by building the code with libtorch.)

use super::emit::doc_wrap;
use super::plan::{classic_shortcut, Classic};
use super::plan::{BlockCall, KindPlan, Knob, Plan, ShortcutArg, ShortcutStyle};
use crate::span::{SourceFile, Syntax};
use crate::valid::ConvLayer;
use crate::Compiled;

fn specs() -> Vec<Compiled> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut out = Vec::new();
    for dir in ["specs", "examples/macro-demo/specs"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.display().to_string();
            let Some(syntax) = Syntax::from_path(&name) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("readable spec");
            let file = SourceFile::new(name.clone(), text, syntax);
            out.push(
                crate::compile(&file)
                    .unwrap_or_else(|d| panic!("{}", crate::diag::render(&file, &d))),
            );
        }
    }
    assert!(out.len() > 10, "the shipped specs are there");
    out
}

/// (kernel, stride, padding, groups, bias, in, out) of a convolution.
type ConvKey = (u64, u64, u64, u64, bool, u64, u64);

fn key(c: &ConvLayer) -> ConvKey {
    (
        c.kernel,
        c.stride,
        c.padding,
        c.groups,
        c.bias,
        c.in_channels,
        c.out_channels,
    )
}

fn fixed_bias(plan: &Plan) -> bool {
    match plan.conv_bias {
        Knob::Fixed(b) => b,
        Knob::Param => unreachable!("only asked when the helper fixes the bias"),
    }
}

/// What the block template builds from `call`, as the emitter writes it.
fn template_convs(plan: &Plan, kind: &KindPlan, call: &BlockCall) -> Vec<ConvKey> {
    let groups = match kind.groups {
        Some(Knob::Param) => call.groups,
        Some(Knob::Fixed(g)) => g,
        None => 1,
    };
    let bias = match kind.bias {
        Some(Knob::Param) => call.bias,
        Some(Knob::Fixed(b)) => b,
        None => fixed_bias(plan),
    };
    let f = &call.filters;
    if kind.kind.is_bottleneck() {
        let first = match kind.stride_first {
            Some(Knob::Param) => call.stride_first,
            Some(Knob::Fixed(b)) => b,
            None => false,
        };
        let (s1, s2) = if first {
            (call.stride, 1)
        } else {
            (1, call.stride)
        };
        vec![
            (1, s1, 0, 1, bias, call.c_in, f[0]),
            (3, s2, 1, groups, bias, f[0], f[1]),
            (1, 1, 0, 1, bias, f[1], f[2]),
        ]
    } else {
        vec![
            (3, call.stride, 1, groups, bias, call.c_in, f[0]),
            (3, 1, 1, groups, bias, f[0], f[1]),
        ]
    }
}

#[test]
fn block_arguments_rebuild_every_layer() {
    for compiled in specs() {
        // Backbones have no head: the general form writes them.
        let Some(plan) = Plan::new(&compiled, "Model".into()) else { continue };
        let name = &compiled.model.name;
        let blocks = plan
            .stages
            .iter()
            .flat_map(|s| s.calls.iter().map(move |c| (s.kind, c)));
        assert_eq!(
            blocks.clone().count(),
            compiled.network.blocks.len(),
            "{name}"
        );
        for ((kind, call), block) in blocks.zip(&compiled.network.blocks) {
            let kind = &plan.kinds[kind];
            assert_eq!(kind.kind, block.kind, "{name} {}", block.name);
            let built = template_convs(&plan, kind, call);
            let expected: Vec<ConvKey> = block.convs().map(key).collect();
            assert_eq!(built, expected, "{name} {}", block.name);
            let last = *call.filters.last().expect("filters");
            match (classic_shortcut(&block.shortcut), call.shortcut) {
                (Classic::None, ShortcutArg::None) => {}
                (Classic::Identity, ShortcutArg::Identity) => {}
                (
                    Classic::ZeroPad {
                        stride,
                        extra_channels,
                    },
                    ShortcutArg::ZeroPad,
                ) => {
                    assert_eq!(
                        (stride, extra_channels),
                        (call.stride, last - call.c_in),
                        "{name} {}",
                        block.name
                    );
                }
                (Classic::Projection { conv, bn }, ShortcutArg::Projection) => {
                    let ds = plan
                        .downsample
                        .expect("a projection needs the Downsample struct");
                    let bias = match ds.bias {
                        Some(Knob::Param) => call.projection_bias,
                        Some(Knob::Fixed(b)) => b,
                        None => fixed_bias(&plan),
                    };
                    let has_bn = match ds.bn {
                        Knob::Param => call.projection_bn,
                        Knob::Fixed(b) => b,
                    };
                    assert_eq!(
                        key(conv),
                        (1, call.stride, 0, 1, bias, call.c_in, last),
                        "{name} {}",
                        block.name
                    );
                    assert_eq!(bn.is_some(), has_bn, "{name} {}", block.name);
                }
                (_, arg) => panic!(
                    "{name} {}: {:?} written as {arg:?}",
                    block.name, block.shortcut
                ),
            }
        }
        // A block style without a choice never gets a shortcut argument that varies.
        match plan.shortcut {
            ShortcutStyle::Identity => {
                assert!(compiled.network.blocks.iter().all(|b| matches!(
                    classic_shortcut(&b.shortcut),
                    Classic::None | Classic::Identity
                )));
            }
            ShortcutStyle::Projection => {
                assert!(compiled.network.blocks.iter().all(|b| matches!(
                    classic_shortcut(&b.shortcut),
                    Classic::None | Classic::Projection { .. }
                )));
            }
            _ => {}
        }
    }
}

#[test]
fn loops_only_where_the_blocks_are_alike() {
    for compiled in specs() {
        // Backbones have no head: the general form writes them.
        let Some(plan) = Plan::new(&compiled, "Model".into()) else { continue };
        for stage in &plan.stages {
            if stage.loop_tail {
                assert!(stage.calls.len() >= 3);
                assert!(stage.calls[2..].iter().all(|c| *c == stage.calls[1]));
            }
        }
    }
}

#[test]
fn shipped_specs_use_the_plainest_style() {
    let plans: Vec<(String, ShortcutStyle, bool, Knob<bool>)> = specs()
        .iter()
        .filter_map(|c| {
            let p = Plan::new(c, "Model".into())?;
            Some((c.model.name.clone(), p.shortcut, p.conv_groups, p.conv_bias))
        })
        .collect();
    let find = |n: &str| plans.iter().find(|p| p.0 == n).cloned().expect(n);
    // torchvision: projections only where needed, no groups, no conv bias.
    assert_eq!(find("resnet50").1, ShortcutStyle::OptionalProjection);
    assert!(!find("resnet50").2);
    assert_eq!(find("resnet50").3, Knob::Fixed(false));
    assert!(find("resnext50-32x4d").2);
    assert_eq!(find("article-pytorch").3, Knob::Fixed(true));
    assert_eq!(find("plain34").1, ShortcutStyle::Identity);
    assert_eq!(
        find("cifar-resnet20").1,
        ShortcutStyle::Enum {
            identity: true,
            zero_pad: true,
            projection: false
        }
    );
    assert_eq!(find("option-c").1, ShortcutStyle::Projection);
}

#[test]
fn doc_prose_is_wrapped_and_code_kept() {
    let text = "one two three four five six\n\n```text\na    b     c d e f g h\n```\nseven eight";
    assert_eq!(
        doc_wrap(text, 10),
        [
            "one two",
            "three four",
            "five six",
            "",
            "```text",
            "a    b     c d e f g h",
            "```",
            "seven",
            "eight"
        ]
    );
}

#[test]
fn doc_wrap_never_breaks_a_code_span() {
    let text = "The `# not a heading - nor <b>list</b>` network, `[N, 3, 224, 224]` in.";
    assert_eq!(
        doc_wrap(text, 10),
        [
            "The",
            "`# not a heading - nor <b>list</b>`",
            "network,",
            "`[N, 3, 224, 224]`",
            "in."
        ]
    );
}
