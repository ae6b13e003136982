//! What the generated module needs, read off the checked network once.
//!
//! The generated code has one struct per block kind the model uses, one `Downsample`
//! struct for projection shortcuts, and small builder functions. A setting that is the
//! same in every block of a kind (groups, conv bias, where a bottleneck strides) is
//! written into the block's code as a literal; one that varies becomes a constructor
//! parameter. This module decides which, and computes every block's constructor
//! arguments from its [`BlockPlan`], so the emitter never looks at the IR's options.

use crate::ir::{BlockKind, Model};
use crate::valid::{HeadPlan, 
    BlockPlan, ConvLayer, Layer, Network, NormLayer, PoolLayer, ShortcutPlan, StemPlan,
};
use crate::Compiled;

/// A setting of generated code: the same value everywhere (written inline), or a
/// parameter of the function that needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Knob<T> {
    Fixed(T),
    Param,
}

impl<T: Copy + PartialEq> Knob<T> {
    /// `Fixed` when every value is equal (or there is none: then `default`).
    fn of(values: impl IntoIterator<Item = T>, default: T) -> Self {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return Knob::Fixed(default);
        };
        if values.all(|v| v == first) {
            Knob::Fixed(first)
        } else {
            Knob::Param
        }
    }

    pub fn is_param(self) -> bool {
        matches!(self, Knob::Param)
    }
}

/// How residual blocks hold their shortcut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ShortcutStyle {
    /// Every residual block adds its input unchanged (or there is no residual block).
    Identity,
    /// Every residual block projects: a `downsample: Downsample` field.
    Projection,
    /// Some blocks project: `downsample: Option<Downsample>` and a `project: bool` argument.
    OptionalProjection,
    /// Zero-padding shortcuts (option A) appear: a `shortcut: Shortcut` field whose enum has
    /// the variants used; a `ShortcutKind` argument when there is more than one.
    Enum {
        identity: bool,
        zero_pad: bool,
        projection: bool,
    },
}

impl ShortcutStyle {
    pub fn has_projection(self) -> bool {
        match self {
            ShortcutStyle::Identity => false,
            ShortcutStyle::Projection | ShortcutStyle::OptionalProjection => true,
            ShortcutStyle::Enum { projection, .. } => projection,
        }
    }

    /// The enum style with more than one variant takes a `ShortcutKind` argument.
    pub fn takes_kind(self) -> bool {
        match self {
            ShortcutStyle::Enum {
                identity,
                zero_pad,
                projection,
            } => usize::from(identity) + usize::from(zero_pad) + usize::from(projection) > 1,
            _ => false,
        }
    }
}

/// The shortcut one block gets, as its constructor argument says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ShortcutArg {
    /// A plain block: no shortcut.
    None,
    Identity,
    ZeroPad,
    Projection,
}

/// Settings of the `Downsample` struct (projection shortcuts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DownsamplePlan {
    /// Whether a BN (`downsample.1`) follows the 1x1 convolution.
    pub bn: Knob<bool>,
    /// The convolution's bias; `None` when the `conv2d` helper fixes the bias for all.
    pub bias: Option<Knob<bool>>,
}

/// One generated block struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KindPlan {
    pub kind: BlockKind,
    /// The struct's name (`Bottleneck`, `BasicBlock`, ...).
    pub ident: String,
    /// Groups of the grouped convolution(s); `None` when no convolution is grouped.
    pub groups: Option<Knob<u64>>,
    /// Convolution bias; `None` when the `conv2d` helper fixes it for every convolution.
    pub bias: Option<Knob<bool>>,
    /// Bottleneck kinds: whether the stride sits on the first 1x1 (v1) rather than the 3x3.
    pub stride_first: Option<Knob<bool>>,
}

/// The constructor arguments of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct BlockCall {
    pub c_in: u64,
    pub filters: Vec<u64>,
    pub stride: u64,
    pub groups: u64,
    pub bias: bool,
    pub stride_first: bool,
    pub shortcut: ShortcutArg,
    pub projection_bn: bool,
    pub projection_bias: bool,
}

/// One stage: a `layerN: Vec<Kind>` field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StagePlan {
    /// `layer1`, `layer2`, ... (torchvision's module names).
    pub field: String,
    /// Index into [`Plan::kinds`].
    pub kind: usize,
    /// Index into [`Network::stages`].
    pub summary: usize,
    pub calls: Vec<BlockCall>,
    /// Every block after the first takes the same arguments: build them in a loop.
    pub loop_tail: bool,
}

/// Names of the module's private types, kept apart from the model's own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TypeNames {
    pub downsample: String,
    pub shortcut: String,
    pub shortcut_kind: String,
}

/// Everything the emitter needs.
pub(super) struct Plan<'a> {
    pub model: &'a Model,
    pub net: &'a Network,
    /// The classifier head (the block structs' form has one).
    pub head: &'a HeadPlan,
    /// The model struct's name.
    pub name: String,
    /// The `conv2d` helper's bias: fixed when every convolution agrees.
    pub conv_bias: Knob<bool>,
    /// Whether the `conv2d` helper takes a `groups` argument.
    pub conv_groups: bool,
    pub shortcut: ShortcutStyle,
    pub downsample: Option<DownsamplePlan>,
    pub kinds: Vec<KindPlan>,
    pub stages: Vec<StagePlan>,
    /// `zero_init_residual` applies to at least one block.
    pub zero_init: bool,
    pub types: TypeNames,
}

impl<'a> Plan<'a> {
    /// The plan of a network with a head (`None` for a backbone).
    pub fn new(compiled: &'a Compiled, name: String) -> Option<Self> {
        let model = &compiled.model;
        let net = &compiled.network;
        let head = net.head.as_ref()?;

        let all_convs: Vec<&ConvLayer> = net.convs().collect();
        let conv_bias = Knob::of(all_convs.iter().map(|c| c.bias), false);
        let conv_groups = all_convs.iter().any(|c| c.groups != 1);

        let residual = || net.blocks.iter().filter(|b| b.kind.has_shortcut());
        let has = |f: fn(&ShortcutPlan) -> bool| residual().any(|b| f(&b.shortcut));
        let identity = has(|s| matches!(classic_shortcut(s), Classic::Identity));
        let zero_pad = has(|s| matches!(classic_shortcut(s), Classic::ZeroPad { .. }));
        let projection = has(|s| matches!(classic_shortcut(s), Classic::Projection { .. }));
        let shortcut = match (identity, zero_pad, projection) {
            (_, false, false) => ShortcutStyle::Identity,
            (false, false, true) => ShortcutStyle::Projection,
            (true, false, true) => ShortcutStyle::OptionalProjection,
            _ => ShortcutStyle::Enum {
                identity,
                zero_pad,
                projection,
            },
        };
        let projections: Vec<(bool, bool)> = residual()
            .filter_map(|b| match classic_shortcut(&b.shortcut) {
                Classic::Projection { conv, bn } => Some((bn.is_some(), conv.bias)),
                _ => None,
            })
            .collect();
        let downsample = projection.then(|| DownsamplePlan {
            bn: Knob::of(projections.iter().map(|p| p.0), true),
            bias: conv_bias
                .is_param()
                .then(|| Knob::of(projections.iter().map(|p| p.1), false)),
        });

        let mut kinds: Vec<KindPlan> = Vec::new();
        for block in &net.blocks {
            if kinds.iter().any(|k| k.kind == block.kind) {
                continue;
            }
            let of_kind = || net.blocks.iter().filter(|b| b.kind == block.kind);
            kinds.push(KindPlan {
                kind: block.kind,
                ident: kind_ident(block.kind).to_string(),
                groups: conv_groups.then(|| Knob::of(of_kind().map(grouped), 1)),
                bias: conv_bias
                    .is_param()
                    .then(|| Knob::of(of_kind().map(block_bias), false)),
                stride_first: block.kind.is_bottleneck().then(|| {
                    Knob::of(
                        of_kind().filter(|b| block_stride(b) > 1).map(stride_first),
                        false,
                    )
                }),
            });
        }

        let mut stages = Vec::new();
        let mut blocks = net.blocks.iter().peekable();
        for (si, stage) in model.stages.iter().enumerate() {
            let mut calls = Vec::new();
            while let Some(block) = blocks.next_if(|b| b.stage == si) {
                calls.push(block_call(
                    block,
                    stage.projection.bn,
                    stage.projection.bias,
                ));
            }
            let kind = kinds
                .iter()
                .position(|k| k.kind == stage.block)
                .unwrap_or(0);
            let loop_tail = calls.len() >= 3 && calls[2..].iter().all(|c| *c == calls[1]);
            stages.push(StagePlan {
                field: format!("layer{}", si + 1),
                kind,
                summary: si,
                calls,
                loop_tail,
            });
        }

        // The model's own name wins; a private type of the same name steps aside.
        let avoid = |base: &str| {
            if base == name {
                format!("{base}Inner")
            } else {
                base.to_string()
            }
        };
        for k in &mut kinds {
            k.ident = avoid(&k.ident);
        }
        let types = TypeNames {
            downsample: avoid("Downsample"),
            shortcut: avoid("Shortcut"),
            shortcut_kind: avoid("ShortcutKind"),
        };

        let zero_init =
            model.zero_init_residual && net.blocks.iter().any(|b| b.kind.has_shortcut());
        Some(Plan {
            model,
            net,
            head,
            name,
            conv_bias,
            conv_groups,
            shortcut,
            downsample,
            kinds,
            stages,
            zero_init,
            types,
        })
    }

    /// Whether the model has any BN layer (and so needs the `batch_norm2d` helper).
    pub fn has_batch_norm(&self) -> bool {
        self.net.batch_norms().next().is_some()
    }
}

/// The struct name of each block kind.
fn kind_ident(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Basic => "BasicBlock",
        BlockKind::Bottleneck => "Bottleneck",
        BlockKind::PreActBasic => "PreActBlock",
        BlockKind::PreActBottleneck => "PreActBottleneck",
        BlockKind::Plain => "PlainBlock",
        BlockKind::PlainBottleneck => "PlainBottleneck",
    }
}

/// The block's stride (its one strided convolution's, or 1).
fn block_stride(b: &BlockPlan) -> u64 {
    b.convs().map(|c| c.stride).max().unwrap_or(1)
}

/// Bottlenecks: the stride is on the first 1x1 (v1).
fn stride_first(b: &BlockPlan) -> bool {
    b.convs().next().is_some_and(|c| c.stride > 1)
}

/// Groups of the grouped convolution: the 3x3 of a bottleneck, both 3x3s of a basic block.
fn grouped(b: &BlockPlan) -> u64 {
    let i = if b.kind.is_bottleneck() { 1 } else { 0 };
    b.convs().nth(i).map_or(1, |c| c.groups)
}

fn block_bias(b: &BlockPlan) -> bool {
    b.convs().next().is_some_and(|c| c.bias)
}

fn block_call(b: &BlockPlan, stage_projection_bn: bool, stage_projection_bias: bool) -> BlockCall {
    let (shortcut, projection_bn, projection_bias) = match classic_shortcut(&b.shortcut) {
        Classic::None | Classic::Other => (
            ShortcutArg::None,
            stage_projection_bn,
            stage_projection_bias,
        ),
        Classic::Identity => (
            ShortcutArg::Identity,
            stage_projection_bn,
            stage_projection_bias,
        ),
        Classic::ZeroPad { .. } => (
            ShortcutArg::ZeroPad,
            stage_projection_bn,
            stage_projection_bias,
        ),
        Classic::Projection { conv, bn } => (ShortcutArg::Projection, bn.is_some(), conv.bias),
    };
    BlockCall {
        c_in: b.input.c,
        filters: b.convs().map(|c| c.out_channels).collect(),
        stride: block_stride(b),
        groups: grouped(b),
        bias: block_bias(b),
        stride_first: stride_first(b),
        shortcut,
        projection_bn,
        projection_bias,
    }
}

/// A shortcut of the forms the block structs implement.
pub(super) enum Classic<'a> {
    None,
    Identity,
    // The fields are checked against the generated code by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    ZeroPad {
        stride: u64,
        extra_channels: u64,
    },
    Projection {
        conv: &'a ConvLayer,
        bn: Option<&'a NormLayer>,
    },
    /// Anything else.
    Other,
}

pub(super) fn classic_shortcut(s: &ShortcutPlan) -> Classic<'_> {
    match s {
        ShortcutPlan::None => Classic::None,
        ShortcutPlan::Path { layers, .. } => match &layers[..] {
            [] => Classic::Identity,
            [Layer::Subsample {
                stride,
                extra_channels,
                ..
            }] => Classic::ZeroPad {
                stride: *stride,
                extra_channels: *extra_channels,
            },
            [Layer::Conv(conv)] if conv.kernel == 1 => Classic::Projection { conv, bn: None },
            [Layer::Conv(conv), Layer::Norm(bn)]
                if conv.kernel == 1 && bn.norm == crate::ir::Norm::Batch =>
            {
                Classic::Projection { conv, bn: Some(bn) }
            }
            _ => Classic::Other,
        },
    }
}

/// The stem's parts as the generated code builds them: `conv1`, `bn1`, a ReLU, one pool.
pub(super) struct ClassicStem<'a> {
    pub conv: &'a ConvLayer,
    pub bn: Option<&'a NormLayer>,
    pub relu: bool,
    pub pool: Option<&'a PoolLayer>,
}

pub(super) fn classic_stem(stem: &StemPlan) -> Option<ClassicStem<'_>> {
    let mut it = stem.layers.iter().peekable();
    let Some(Layer::Conv(conv)) = it.next() else {
        return None;
    };
    let mut out = ClassicStem {
        conv,
        bn: None,
        relu: false,
        pool: None,
    };
    match it.peek() {
        Some(Layer::Norm(n)) if n.norm == crate::ir::Norm::Batch => {
            out.bn = Some(n);
            out.relu = n.relu;
            it.next();
        }
        Some(Layer::Relu { .. }) => {
            out.relu = true;
            it.next();
        }
        _ => {}
    }
    if let Some(Layer::Pool(p)) = it.peek() {
        out.pool = Some(p);
        it.next();
    }
    it.next().is_none().then_some(out)
}

/// Whether a block is one of the forms the block structs implement: its preset's
/// convolutions with BN after (or before) each, and a classic shortcut.
fn classic_block(b: &BlockPlan) -> bool {
    let batch = |l: &Layer| matches!(l, Layer::Norm(n) if n.norm == crate::ir::Norm::Batch);
    let layers_ok = b
        .pre
        .iter()
        .chain(&b.branch)
        .all(|l| matches!(l, Layer::Conv(_)) || batch(l));
    // The block structs write one bias for all of a block's convolutions, and the presets'
    // kernels and paddings.
    let first_bias = b.convs().next().is_some_and(|c| c.bias);
    let convs_ok = b.convs().all(|c| {
        c.dilation == 1 && c.bias == first_bias && c.padding == c.kernel / 2
    });
    layers_ok && convs_ok && !matches!(classic_shortcut(&b.shortcut), Classic::Other)
}

/// Whether the block structs describe the whole network: a one-convolution stem with BN,
/// blocks of their presets' layers with BN and a classic shortcut, a BN head. Anything
/// else gets the general form ([`super::general`]).
pub(super) fn fits_classic(net: &Network) -> bool {
    classic_stem(&net.stem).is_some()
        && net.blocks.iter().all(classic_block)
        && net
            .head
            .as_ref()
            .is_some_and(|h| h.norm.as_ref().is_none_or(|n| n.norm == crate::ir::Norm::Batch))
}
