//! Networks with the constructs the shipped specs do not use (deep stems, ResNet-D,
//! SE/ECA attention, GroupNorm, BlurPool and average anti-aliasing, Keras V2 blocks,
//! dilation, stochastic depth, a convolution in place of the stem pooling), built by
//! mutating the IR of shipped specs and checking it again with `resnetc::valid::validate`.
//!
//! Shared by `build.rs` (which writes their generated modules into `OUT_DIR` for
//! `macro_demo::built::general`), `tests/general.rs` (which checks those modules against
//! resnetc's runtime) and the root crate's `tests/codegen.rs` (which compiles them against
//! a stand-in `tch` without libtorch).
#![allow(dead_code)]

use resnetc::ir::{
    AntiAlias, Attention, BlockKind, Conv, Model, Norm, Pool, PoolKind, Projection, StemPool,
    StrideAt,
};
use resnetc::span::{SourceFile, Syntax};
use resnetc::Compiled;
use std::path::Path;

/// Compiles `specs/<spec>` under the repository root `root`.
fn shipped(root: &Path, spec: &str) -> Compiled {
    let path = root.join("specs").join(spec);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = SourceFile::new(spec, text, Syntax::Yaml);
    resnetc::compile(&file).unwrap_or_else(|d| panic!("{}", resnetc::diag::render(&file, &d)))
}

/// `compiled` with its model changed by `edit` and checked again.
fn mutate(mut compiled: Compiled, name: &str, edit: impl FnOnce(&mut Model)) -> Compiled {
    compiled.model.name = name.to_string();
    edit(&mut compiled.model);
    let (network, warnings) = resnetc::valid::validate(&compiled.model, &compiled.spans)
        .unwrap_or_else(|d| panic!("{name}: {d:?}"));
    compiled.network = network;
    compiled.warnings = warnings;
    compiled
}

fn conv(filters: u64, kernel: u64, stride: u64) -> Conv {
    Conv {
        filters,
        kernel,
        stride,
        padding: kernel / 2,
        bias: false,
    }
}

/// timm's deep stem: 3x3/2 to `w`, 3x3 to `w`, 3x3 to `out`.
fn deep_stem(m: &mut Model, w: u64, out: u64) {
    m.stem.convs = vec![conv(w, 3, 2), conv(w, 3, 1), conv(out, 3, 1)];
}

/// Every variant: `(file stem of its generated module, compiled network)`.
pub fn all(root: &Path) -> Vec<(&'static str, Compiled)> {
    let r50 = || shipped(root, "resnet50.yaml");
    let r18 = || shipped(root, "resnet18.yaml");
    vec![
        // timm's resnet50d: deep stem 32-32-64, average-pool downsampling (ResNet-D).
        (
            "resnet50d",
            mutate(r50(), "resnet50d", |m| {
                deep_stem(m, 32, 64);
                for s in &mut m.stages {
                    s.projection.avg_pool = true;
                }
            }),
        ),
        // timm's seresnet50.
        (
            "seresnet50",
            mutate(r50(), "seresnet50", |m| {
                for s in &mut m.stages {
                    s.attention = Some(Attention::Se {
                        reduction: 16,
                        divisor: 8,
                    });
                }
            }),
        ),
        // timm's ecaresnet26t-like: ECA, a deep stem, ResNet-D downsampling, 2 blocks a stage.
        (
            "ecaresnet26",
            mutate(r50(), "ecaresnet26", |m| {
                deep_stem(m, 24, 64);
                for s in &mut m.stages {
                    s.repeat = 2;
                    s.projection.avg_pool = true;
                    s.attention = Some(Attention::Eca { gamma: 2, beta: 1 });
                }
            }),
        ),
        // GroupNorm everywhere (32 groups), zero_init_residual.
        (
            "resnet50-gn",
            mutate(r50(), "resnet50-gn", |m| {
                m.norm = Norm::Group { groups: 32 };
                m.zero_init_residual = true;
            }),
        ),
        // timm's resnetblur50: blur in the stem pooling and the strided blocks.
        (
            "resnetblur50",
            mutate(r50(), "resnetblur50", |m| {
                if let StemPool::Pool(p) = &mut m.stem.pool {
                    p.anti_alias = Some(AntiAlias::Blur);
                }
                for s in &mut m.stages {
                    s.anti_alias = Some(AntiAlias::Blur);
                }
            }),
        ),
        // Keras's ResNet50V2: a biased stem convolution without BN, pre-activation
        // bottlenecks striding in their last block, bias on the last 1x1, final BN.
        (
            "keras-resnet50v2",
            mutate(r50(), "keras-resnet50v2", |m| {
                m.stem.convs[0].bias = true;
                m.stem.bn = false;
                m.stem.relu = false;
                let strides = [2, 2, 2, 1];
                for (s, stride) in m.stages.iter_mut().zip(strides) {
                    s.block = BlockKind::PreActBottleneck;
                    s.stride = stride;
                    s.stride_at = StrideAt::Last;
                    s.bias = vec![false, false, true];
                    s.projection = Projection {
                        bn: false,
                        bias: true,
                        ..Projection::default()
                    };
                }
                if let Some(h) = &mut m.head {
                    h.norm = true;
                }
            }),
        ),
        // torchvision's replace_stride_with_dilation=[False, True, True].
        (
            "resnet50-dilated",
            mutate(r50(), "resnet50-dilated", |m| {
                m.stages[2].stride = 1;
                m.stages[2].dilation = 2;
                m.stages[3].stride = 1;
                m.stages[3].dilation = 4;
            }),
        ),
        // ResNet-RS-like: a convolution in place of the stem pooling, average
        // anti-aliasing, SE, per-convolution bias, stochastic depth.
        (
            "resnet-rs-like",
            mutate(r50(), "resnet-rs-like", |m| {
                deep_stem(m, 32, 64);
                m.stem.pool = StemPool::Conv {
                    conv: conv(64, 3, 2),
                    anti_alias: None,
                };
                m.drop_path_rate = 0.3;
                for s in &mut m.stages {
                    s.repeat = 2;
                    s.anti_alias = Some(AntiAlias::Avg);
                    s.attention = Some(Attention::Se {
                        reduction: 4,
                        divisor: 8,
                    });
                    s.bias = vec![true, false, true];
                    s.projection.avg_pool = true;
                }
            }),
        ),
        // Anti-aliased stem convolution and average-pool stem, GroupNorm pre-activation
        // basic blocks with a GroupNorm head, projections of kernel 3.
        (
            "preact-gn-blur",
            mutate(r18(), "preact-gn-blur", |m| {
                m.norm = Norm::Group { groups: 16 };
                m.stem.bn = false;
                m.stem.relu = true;
                m.stem.pool = StemPool::Conv {
                    conv: conv(64, 3, 2),
                    anti_alias: Some(AntiAlias::Blur),
                };
                for s in &mut m.stages {
                    s.block = BlockKind::PreActBasic;
                    s.projection = Projection {
                        bn: false,
                        kernel: 3,
                        ..Projection::default()
                    };
                }
                if let Some(h) = &mut m.head {
                    h.norm = true;
                }
            }),
        ),
        // Option A shortcuts and plain blocks with ECA, an average-pooled ceil-mode stem
        // with average anti-aliasing.
        (
            "cifar-eca-mixed",
            mutate(shipped(root, "cifar-resnet20.yaml"), "cifar-eca-mixed", |m| {
                m.stem.pool = StemPool::Pool(Pool {
                    kind: PoolKind::Avg,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    ceil_mode: true,
                    anti_alias: Some(AntiAlias::Avg),
                });
                m.stages[1].block = BlockKind::Plain;
                for s in &mut m.stages {
                    s.attention = Some(Attention::Eca { gamma: 2, beta: 1 });
                }
            }),
        ),
    ]
}
