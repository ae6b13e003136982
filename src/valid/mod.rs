//! Shape checking: follows the tensor shape through every layer of a [`Model`].
//!
//! [`validate`] is the one analysis pass. It produces a [`Network`]: every layer with its
//! torchvision module name, input and output shapes, parameters and multiply-accumulates
//! (MACs). Back ends (tables, drawings, code, the runtime) read the `Network` and never
//! redo this work.
//!
//! Problems are reported all at once: a residual add with mismatched shapes is reported
//! and checking continues with the residual branch's shape; only a spatial size that
//! reaches zero stops the flow (every later layer would repeat the same error).

pub mod shape;

use crate::diag::Diagnostic;
use crate::ir::{
    AntiAlias, Attention, BlockKind, HeadPool, Limits, Model, Norm, Order, PoolKind, Shape,
    ShortcutOption, Stage, StemPool, StrideAt,
};
use crate::lower::SpanTable;
use shape::{conv_out, pool_out, pool_output_size, PoolError};

#[cfg(test)]
mod tests {
    use crate::ir::{
        BlockKind, Conv, HeadPool, Limits, Pool, PoolKind, Shape, ShortcutOption, Stage, StrideOn,
    };
    use crate::span::{SourceFile, Syntax};
    use proptest::prelude::*;

    #[test]
    fn suggests_the_nearest_group_count() {
        assert_eq!(super::nearest_divisor(64, 3), 2);
        assert_eq!(super::nearest_divisor(64, 30), 32);
        assert_eq!(super::nearest_divisor(7, 3), 1);
    }

    fn compile(
        text: &str,
        syntax: Syntax,
    ) -> Result<crate::Compiled, Vec<crate::diag::Diagnostic>> {
        crate::compile(&SourceFile::new("test", text.to_string(), syntax))
    }

    fn no_spans() -> crate::lower::SpanTable {
        crate::lower::SpanTable {
            doc: crate::span::Span::new(0, 0),
            syntax: Syntax::Yaml,
            map: Default::default(),
        }
    }

    /// What every outcome of [`super::validate`] must satisfy: a failure carries an
    /// error; a success has totals within the limits that equal the sums of its rows.
    fn check_outcome(model: &crate::ir::Model) {
        match super::validate(model, &no_spans()) {
            Err(diags) => assert!(
                crate::diag::has_errors(&diags),
                "failed without an error: {diags:?}"
            ),
            Ok((net, warnings)) => {
                assert!(!crate::diag::has_errors(&warnings));
                let t = net.totals;
                assert!(
                    t.trainable_params <= Limits::MAX_PARAMS
                        && t.non_trainable_params <= Limits::MAX_PARAMS
                );
                assert!(t.macs <= Limits::MAX_MACS);
                let sum = |f: fn(&super::LayerRow) -> u64| {
                    net.layers.iter().map(|r| u128::from(f(r))).sum::<u128>()
                };
                assert_eq!(u128::from(t.trainable_params), sum(|r| r.params));
                assert_eq!(u128::from(t.non_trainable_params), sum(|r| r.non_trainable));
                assert_eq!(u128::from(t.macs), sum(|r| r.macs));
                let stage_macs: u128 = net.stages.iter().map(|s| u128::from(s.macs)).sum();
                let block_macs: u128 = net
                    .blocks
                    .iter()
                    .flat_map(|b| b.convs())
                    .map(|c| u128::from(c.macs()))
                    .sum();
                assert!(
                    stage_macs >= block_macs,
                    "a stage's MACs include its blocks' convolutions"
                );
                assert_eq!(
                    net.head.as_ref().map_or(0, |h| h.fc.macs()),
                    net.layers
                        .iter()
                        .find(|r| r.name == "fc")
                        .map_or(0, |r| r.macs)
                );
            }
        }
    }

    /// Every field at the top of its range at once: an error, not an overflow (this is
    /// a debug build, where overflow panics).
    #[test]
    fn every_field_at_its_limit_is_an_error_not_an_overflow() {
        let c = Limits::MAX_CHANNELS;
        for block in [
            BlockKind::Basic,
            BlockKind::Bottleneck,
            BlockKind::PreActBottleneck,
            BlockKind::Plain,
        ] {
            let filters = vec![c; block.arity()];
            let mut model = crate::ir::fixtures::resnet50();
            model.input = Shape::new(c, 8192, 8192);
            model.stem.convs = vec![Conv {
                filters: c,
                kernel: 1,
                stride: 1,
                padding: Limits::MAX_PADDING,
                bias: true,
            }];
            model.stem.pool = crate::ir::StemPool::None;
            model.stages = (0..4)
                .map(|i| Stage {
                    groups: 1,
                    ..Stage::new(format!("s{i}"), block, Limits::MAX_REPEAT, &filters, 1)
                })
                .collect();
            let head = model.head.as_mut().expect("resnet50 has a head");
            head.pool = HeadPool::Flatten;
            head.classes = Limits::MAX_CLASSES;
            let errors = super::validate(&model, &no_spans()).expect_err("far over the limits");
            assert_eq!(
                errors
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| d.code)
                    .collect::<Vec<_>>(),
                ["E-limit"]
            );
        }
    }

    /// A layer built by hand with absurd sizes saturates instead of overflowing.
    #[test]
    fn layer_counts_saturate() {
        let huge = Shape::new(u64::MAX, u64::MAX, u64::MAX);
        let conv = super::ConvLayer {
            name: "conv1".into(),
            in_channels: u64::MAX,
            out_channels: u64::MAX,
            kernel: u64::MAX,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 0,
            bias: true,
            input: huge,
            output: huge,
        };
        assert_eq!((conv.params(), conv.macs()), (u64::MAX, u64::MAX));
        let fc = super::LinearLayer {
            name: "fc".into(),
            in_features: u64::MAX,
            out_features: u64::MAX,
        };
        assert_eq!((fc.params(), fc.macs()), (u64::MAX, u64::MAX));
    }

    fn any_block() -> impl Strategy<Value = BlockKind> {
        prop::sample::select(vec![
            BlockKind::Basic,
            BlockKind::Bottleneck,
            BlockKind::PreActBasic,
            BlockKind::PreActBottleneck,
            BlockKind::Plain,
            BlockKind::PlainBottleneck,
        ])
    }

    /// Small, large and limit values alike.
    fn count(max: u64) -> impl Strategy<Value = u64> {
        prop_oneof![Just(1), Just(max), 1..=max, 1..=8u64]
    }

    fn any_stage() -> impl Strategy<Value = Stage> {
        (
            any_block(),
            1..=8u64,
            prop::collection::vec(count(Limits::MAX_CHANNELS), 3),
            count(Limits::MAX_STRIDE),
            // Mostly ungrouped: random group counts rarely divide the channels.
            prop_oneof![3 => Just(1), 1 => count(Limits::MAX_CHANNELS)],
            prop::sample::select(vec![
                ShortcutOption::A,
                ShortcutOption::B,
                ShortcutOption::C,
                ShortcutOption::Identity,
            ]),
            any::<bool>(),
        )
            .prop_map(
                |(block, repeat, filters, stride, groups, shortcut, bias)| Stage {
                    groups,
                    shortcut,
                    bias: vec![bias; block.arity()],
                    stride_on: if bias {
                        StrideOn::Conv1
                    } else {
                        StrideOn::Conv2
                    },
                    ..Stage::new("s", block, repeat, &filters[..block.arity()], stride)
                },
            )
    }

    fn any_model() -> impl Strategy<Value = crate::ir::Model> {
        let input = (count(Limits::MAX_CHANNELS), count(8192), count(8192))
            .prop_map(|(c, h, w)| Shape::new(c, h, w));
        let conv = (
            count(Limits::MAX_CHANNELS),
            count(Limits::MAX_KERNEL),
            count(Limits::MAX_STRIDE),
            0..=Limits::MAX_PADDING,
        )
            .prop_map(|(filters, kernel, stride, padding)| Conv {
                filters,
                kernel,
                stride,
                padding,
                bias: false,
            });
        let pool = prop::option::of(
            (
                any::<bool>(),
                count(Limits::MAX_KERNEL),
                count(Limits::MAX_STRIDE),
                prop_oneof![3 => Just(0), 1 => 0..=Limits::MAX_PADDING],
                any::<bool>(),
            )
                .prop_map(|(max, kernel, stride, padding, ceil_mode)| Pool {
                    kind: if max { PoolKind::Max } else { PoolKind::Avg },
                    kernel,
                    stride,
                    padding,
                    ceil_mode,
                    anti_alias: None,
                }),
        );
        let head = (
            prop::sample::select(vec![HeadPool::Avg, HeadPool::Max, HeadPool::Flatten]),
            count(Limits::MAX_CLASSES),
        );
        (
            input,
            conv,
            pool,
            prop::collection::vec(any_stage(), 1..=3),
            head,
        )
            .prop_map(|(input, conv, pool, stages, (hp, classes))| {
                let mut model = crate::ir::fixtures::resnet50();
                model.input = input;
                model.stem.convs = vec![conv];
                model.stem.pool = pool.map_or(crate::ir::StemPool::None, crate::ir::StemPool::Pool);
                model.stages = stages;
                if let Some(head) = model.head.as_mut() {
                    head.pool = hp;
                    head.classes = classes;
                }
                model
            })
    }

    proptest! {
        /// Any model within the per-field limits: no panic (debug build: no overflow),
        /// an error on failure, exact totals within the limits on success.
        #[test]
        fn any_model_within_field_limits_checks_without_overflow(model in any_model()) {
            check_outcome(&model);
        }
    }

    /// PyTorch 2.11: `MaxPool2d(3, 2, 0, ceil_mode=True)` on a 2x2 map gives 1x1.
    #[test]
    fn ceil_mode_pooling_on_a_2x2_map_gives_1x1() {
        let text = "model ceil-on-2x2\ninput 3x4x4\n\
                    stem conv 3x3/2 pad 1 -> 8, bn, relu, maxpool 3x3/2 pad 0 ceil\n\
                    conv2_x: basic [8, 8] x1 /1\nhead avgpool, fc 10\n";
        let compiled = compile(text, Syntax::Dsl).unwrap_or_else(|d| panic!("{d:?}"));
        let pool = match compiled.network.stem.layers.last() {
            Some(super::Layer::Pool(p)) => p.clone(),
            other => panic!("the spec has a stem pooling: {other:?}"),
        };
        assert_eq!(pool.input, Shape::new(8, 2, 2));
        assert_eq!(pool.output, Shape::new(8, 1, 1));
        assert_eq!(compiled.network.blocks[0].output, Shape::new(8, 1, 1));

        // Without ceil_mode PyTorch rejects it, and so does resnetc.
        let errors = compile(&text.replace(" ceil\n", "\n"), Syntax::Dsl)
            .expect_err("floor mode leaves no window");
        assert_eq!(
            errors
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.code)
                .collect::<Vec<_>>(),
            ["E-spatial-zero"]
        );
    }
}

/// A 2-D convolution layer, fully resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvLayer {
    /// torchvision module path, e.g. `layer2.0.conv1` (its weight is `<name>.weight`).
    pub name: String,
    pub in_channels: u64,
    pub out_channels: u64,
    pub kernel: u64,
    pub stride: u64,
    pub padding: u64,
    pub dilation: u64,
    pub groups: u64,
    pub bias: bool,
    pub input: Shape,
    pub output: Shape,
}

impl ConvLayer {
    /// `, g32, d2`: the grouping and dilation, when not 1, as the drawings show them.
    pub fn options_text(&self) -> String {
        let mut out = String::new();
        if self.groups > 1 {
            out.push_str(&format!(", g{}", self.groups));
        }
        if self.dilation > 1 {
            out.push_str(&format!(", d{}", self.dilation));
        }
        out
    }

    /// Weights and bias. Exact for every layer of a checked [`Network`] (its totals are
    /// within [`Limits::MAX_PARAMS`]); saturates at `u64::MAX` otherwise.
    pub fn params(&self) -> u64 {
        saturate(self.exact_params())
    }

    /// Multiply-accumulates for one sample. Exact for every layer of a checked
    /// [`Network`] (within [`Limits::MAX_MACS`]); saturates at `u64::MAX` otherwise.
    pub fn macs(&self) -> u64 {
        saturate(self.exact_macs())
    }

    /// Input channels each filter sees.
    fn fan_in_channels(&self) -> u128 {
        u128::from(self.in_channels / self.groups.max(1))
    }

    // A layer of a checked network is far inside u128; saturating keeps a hand-built
    // layer with absurd sizes from overflowing.
    fn exact_params(&self) -> u128 {
        let weights = u128::from(self.out_channels)
            .saturating_mul(self.fan_in_channels())
            .saturating_mul(u128::from(self.kernel).saturating_mul(u128::from(self.kernel)));
        weights.saturating_add(if self.bias {
            u128::from(self.out_channels)
        } else {
            0
        })
    }

    fn exact_macs(&self) -> u128 {
        let o = self.output;
        u128::from(o.c)
            .saturating_mul(u128::from(o.h))
            .saturating_mul(u128::from(o.w))
            .saturating_mul(self.fan_in_channels())
            .saturating_mul(u128::from(self.kernel).saturating_mul(u128::from(self.kernel)))
    }
}

/// A norm layer: `BatchNorm2d` (`weight`, `bias`, `running_mean`, `running_var`,
/// `num_batches_tracked`) or `GroupNorm` (`weight`, `bias`), optionally followed by ReLU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormLayer {
    pub name: String,
    pub norm: Norm,
    pub channels: u64,
    pub shape: Shape,
    pub relu: bool,
}

/// The former name of [`NormLayer`].
pub type BnLayer = NormLayer;

/// A pooling layer's hyper-parameters, as PyTorch's `MaxPool2d` / `AvgPool2d` take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub kernel: u64,
    pub stride: u64,
    pub padding: u64,
    pub ceil_mode: bool,
    /// `AvgPool2d`'s `count_include_pad` (PyTorch's default true; ResNet-D's pool false).
    pub count_include_pad: bool,
}

/// A pooling layer (`maxpool`, `maxpool.0`, `layer2.0.downsample.0`, `layer2.0.aa`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolLayer {
    pub name: String,
    pub pool: Pool2d,
    pub input: Shape,
    pub output: Shape,
}

/// timm's `BlurPool2d`: reflect padding, then a fixed binomial filter per channel
/// (`[1, 2, 1]` outer product, divided by 16) with the stride. The filter is a
/// constant, not a parameter; its multiply-accumulates are not counted in the totals
/// (as timm's and fvcore's counters do not see them), see [`BlurLayer::filter_macs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlurLayer {
    pub name: String,
    pub channels: u64,
    pub stride: u64,
    /// Reflect padding on each side: `((stride - 1) + (3 - 1)) / 2`, as timm's.
    pub padding: u64,
    pub input: Shape,
    pub output: Shape,
}

impl BlurLayer {
    pub const FILTER: u64 = 3;

    /// The fixed filter's multiply-accumulates per sample (C x Ho x Wo x 9).
    pub fn filter_macs(&self) -> u64 {
        let o = self.output;
        saturate(u128::from(o.c) * u128::from(o.h) * u128::from(o.w) * 9)
    }
}

/// Channel attention (module `se` of a block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttentionLayer {
    pub name: String,
    pub channels: u64,
    pub shape: Shape,
    pub kind: AttentionKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionKind {
    /// `se.fc1` (channels -> hidden, 1x1, bias), ReLU, `se.fc2` (hidden -> channels, bias).
    Se { hidden: u64 },
    /// `se.conv`: Conv1d(1, 1, kernel, padding (kernel - 1) / 2, no bias).
    Eca { kernel: u64 },
}

impl AttentionLayer {
    pub fn params(&self) -> u64 {
        let c = self.channels;
        match self.kind {
            AttentionKind::Se { hidden } => saturate(
                2 * u128::from(c) * u128::from(hidden) + u128::from(c) + u128::from(hidden),
            ),
            AttentionKind::Eca { kernel } => kernel,
        }
    }

    pub fn macs(&self) -> u64 {
        let c = u128::from(self.channels);
        saturate(match self.kind {
            AttentionKind::Se { hidden } => 2 * c * u128::from(hidden),
            AttentionKind::Eca { kernel } => c * u128::from(kernel),
        })
    }
}

/// One layer of the checked network, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    Conv(ConvLayer),
    /// Norm layer, with its ReLU if `relu`.
    Norm(NormLayer),
    /// A ReLU on its own (a stem without norm).
    Relu {
        name: String,
        shape: Shape,
    },
    Pool(PoolLayer),
    Blur(BlurLayer),
    Attention(AttentionLayer),
    /// `x[:, :, ::stride, ::stride]`, then `extra_channels` zero channels appended: the
    /// paper's option A, or (with no extra channels) Keras V2's `MaxPooling2D(1, stride)`.
    Subsample {
        name: String,
        stride: u64,
        extra_channels: u64,
        input: Shape,
        output: Shape,
    },
    /// Stochastic depth of the residual branch: in training, each sample's branch is
    /// zeroed with probability `rate` and the others scaled by `1 / (1 - rate)`.
    DropPath {
        name: String,
        rate: f64,
        shape: Shape,
    },
}

impl Layer {
    pub fn name(&self) -> &str {
        match self {
            Layer::Conv(c) => &c.name,
            Layer::Norm(n) => &n.name,
            Layer::Pool(p) => &p.name,
            Layer::Blur(b) => &b.name,
            Layer::Attention(a) => &a.name,
            Layer::Relu { name, .. }
            | Layer::Subsample { name, .. }
            | Layer::DropPath { name, .. } => name,
        }
    }

    pub fn output(&self) -> Shape {
        match self {
            Layer::Conv(c) => c.output,
            Layer::Norm(n) => n.shape,
            Layer::Pool(p) => p.output,
            Layer::Blur(b) => b.output,
            Layer::Attention(a) => a.shape,
            Layer::Relu { shape, .. } | Layer::DropPath { shape, .. } => *shape,
            Layer::Subsample { output, .. } => *output,
        }
    }
}

/// The fully connected layer (`fc`), always with bias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearLayer {
    pub name: String,
    pub in_features: u64,
    pub out_features: u64,
}

impl LinearLayer {
    /// Weights and bias. Exact for the `fc` of a checked [`Network`] (within
    /// [`Limits::MAX_PARAMS`]); saturates at `u64::MAX` otherwise.
    pub fn params(&self) -> u64 {
        saturate(self.exact_macs() + u128::from(self.out_features))
    }

    /// Multiply-accumulates for one sample (one per weight).
    pub fn macs(&self) -> u64 {
        saturate(self.exact_macs())
    }

    // Two factors below 2^64: the product fits in u128.
    fn exact_macs(&self) -> u128 {
        u128::from(self.in_features) * u128::from(self.out_features)
    }
}

fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The stem: `conv1` (or `conv1.0`, `conv1.1`, ... for deep stems), `bn1`, `relu`,
/// `maxpool` (or its replacement), in order.
#[derive(Clone, Debug, PartialEq)]
pub struct StemPlan {
    pub layers: Vec<Layer>,
}

impl StemPlan {
    /// The stem's first convolution.
    pub fn first_conv(&self) -> &ConvLayer {
        self.layers
            .iter()
            .find_map(|l| {
                if let Layer::Conv(c) = l {
                    Some(c)
                } else {
                    None
                }
            })
            .expect("a stem has a convolution")
    }

    pub fn output(&self) -> Shape {
        self.layers
            .last()
            .map(Layer::output)
            .unwrap_or_else(|| self.first_conv().output)
    }
}

/// How a block's input reaches the addition.
#[derive(Clone, Debug, PartialEq)]
pub enum ShortcutPlan {
    /// Plain blocks: no shortcut, no addition.
    None,
    /// The shortcut's own layers, in order (none: the identity). `from_pre`: it reads
    /// the block's pre-activated input (pre-activation blocks' projections) rather than
    /// the input itself.
    Path { from_pre: bool, layers: Vec<Layer> },
}

impl ShortcutPlan {
    pub fn layers(&self) -> &[Layer] {
        match self {
            ShortcutPlan::None => &[],
            ShortcutPlan::Path { layers, .. } => layers,
        }
    }

    pub fn is_identity(&self) -> bool {
        matches!(self, ShortcutPlan::Path { layers, .. } if layers.is_empty())
    }
}

/// One residual block, e.g. `layer3.4`: `pre` (a pre-activation block's first norm +
/// ReLU, shared by the branch and a projection), the residual `branch`, the `shortcut`,
/// their addition, then a ReLU if `relu_after_add`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockPlan {
    pub name: String,
    /// Index into [`Network::stages`].
    pub stage: usize,
    /// Position within the stage (0-based).
    pub index: u64,
    pub kind: BlockKind,
    pub input: Shape,
    pub output: Shape,
    pub pre: Vec<Layer>,
    pub branch: Vec<Layer>,
    pub shortcut: ShortcutPlan,
    pub relu_after_add: bool,
}

impl BlockPlan {
    /// Every layer of the block in execution order (pre, branch, shortcut).
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.pre
            .iter()
            .chain(&self.branch)
            .chain(self.shortcut.layers())
    }

    /// The convolutions of the residual branch.
    pub fn convs(&self) -> impl Iterator<Item = &ConvLayer> {
        self.branch.iter().filter_map(|l| {
            if let Layer::Conv(c) = l {
                Some(c)
            } else {
                None
            }
        })
    }
}

/// `final_bn` (pre-activation networks), global pooling, dropout, `fc`, softmax.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadPlan {
    pub norm: Option<NormLayer>,
    pub pool: HeadPool,
    /// Shape that reaches the head (the last block's output).
    pub input: Shape,
    /// Shape after pooling (`[C, 1, 1]`, or the input itself for `flatten`).
    pub pooled: Shape,
    pub dropout: f64,
    pub fc: LinearLayer,
    pub softmax: bool,
}

/// One output of a backbone: a stage's last feature map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureMap {
    /// Index into [`Network::stages`].
    pub stage: usize,
    /// The stage's name in the spec (`conv4_x`).
    pub name: String,
    /// torchvision's module path (`layer3`), the name the output is written under.
    pub module: String,
    pub shape: Shape,
}

/// One stage as the paper's Table 1 shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSummary {
    pub name: String,
    /// torchvision's module path, `layer{N}`.
    pub module: String,
    pub block: BlockKind,
    pub repeat: u64,
    pub filters: Vec<u64>,
    pub groups: u64,
    pub stride: u64,
    pub input: Shape,
    pub output: Shape,
    pub params: u64,
    pub macs: u64,
}

/// One row of the layer table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRow {
    pub name: String,
    pub op: String,
    /// Output shape without the batch dimension (`[C, H, W]`, or `[N]` after `fc`).
    pub output: Vec<u64>,
    pub params: u64,
    pub non_trainable: u64,
    pub macs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Weights and biases of convolutions, norm weights and biases, `fc`.
    pub trainable_params: u64,
    /// BN running means and variances (Keras's "non-trainable params").
    pub non_trainable_params: u64,
    /// Multiply-accumulates of convolutions (2-D and 1-D) and `fc` for one sample.
    pub macs: u64,
}

/// The checked network: everything back ends need, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub input: Shape,
    pub stem: StemPlan,
    pub blocks: Vec<BlockPlan>,
    /// The classifier head; `None` for a backbone.
    pub head: Option<HeadPlan>,
    /// A backbone's outputs, in stage order (empty for a classifier).
    pub features: Vec<FeatureMap>,
    pub stages: Vec<StageSummary>,
    pub layers: Vec<LayerRow>,
    pub totals: Totals,
}

impl Network {
    /// Output shape for one sample: `[classes]`, or for a backbone its first feature
    /// map's `[C, H, W]` (see [`Network::features`] for all of them).
    pub fn output(&self) -> Vec<u64> {
        match (&self.head, self.features.first()) {
            (Some(h), _) => vec![h.fc.out_features],
            (None, Some(f)) => vec![f.shape.c, f.shape.h, f.shape.w],
            (None, None) => Vec::new(),
        }
    }

    /// Number of classes of a classifier (`fc`'s outputs); `None` for a backbone.
    pub fn classes(&self) -> Option<u64> {
        self.head.as_ref().map(|h| h.fc.out_features)
    }

    /// Every layer of the stem and the blocks, in execution order.
    pub fn body_layers(&self) -> impl Iterator<Item = &Layer> {
        self.stem
            .layers
            .iter()
            .chain(self.blocks.iter().flat_map(BlockPlan::layers))
    }

    /// Every norm layer, in execution order (the head's last).
    pub fn norms(&self) -> impl Iterator<Item = &NormLayer> {
        self.body_layers()
            .filter_map(|l| {
                if let Layer::Norm(n) = l {
                    Some(n)
                } else {
                    None
                }
            })
            .chain(self.head.iter().flat_map(|h| h.norm.iter()))
    }

    /// Every BN layer (norm layers with running statistics).
    pub fn batch_norms(&self) -> impl Iterator<Item = &NormLayer> {
        self.norms().filter(|n| n.norm == Norm::Batch)
    }

    /// Every 2-D convolution, in execution order.
    pub fn convs(&self) -> impl Iterator<Item = &ConvLayer> {
        self.body_layers().filter_map(|l| {
            if let Layer::Conv(c) = l {
                Some(c)
            } else {
                None
            }
        })
    }
}

/// Checks `model` and builds its [`Network`]. Returns warnings beside it, or every error.
pub fn validate(
    model: &Model,
    spans: &SpanTable,
) -> Result<(Network, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut v = Validator {
        spans,
        model,
        diags: Vec::new(),
        rows: Vec::new(),
        totals: Totals {
            trainable_params: 0,
            non_trainable_params: 0,
            macs: 0,
        },
    };
    let network = v.network(model);
    // Blocks of a stage share their spec line: report each problem once per place.
    let mut seen = std::collections::HashSet::new();
    v.diags.retain(|d| seen.insert((d.code, d.primary_span())));
    match network {
        Some(n) if !crate::diag::has_errors(&v.diags) => Ok((n, v.diags)),
        _ => {
            // Every path that gives up pushes its error first; should one ever fail to,
            // say so rather than fail with no error at all.
            if !crate::diag::has_errors(&v.diags) {
                v.diags.push(
                    Diagnostic::error(
                        "E-internal",
                        "internal error: the shape check stopped without reporting why",
                    )
                    .with_primary(spans.doc, "while checking this spec")
                    .with_help("this is a bug in resnetc: please report it with this spec"),
                );
            }
            Err(v.diags)
        }
    }
}

struct Validator<'a> {
    spans: &'a SpanTable,
    model: &'a Model,
    diags: Vec<Diagnostic>,
    rows: Vec<LayerRow>,
    /// Sums over `rows`, kept within [`Limits::MAX_PARAMS`] and [`Limits::MAX_MACS`].
    totals: Totals,
}

/// Raised when the shape flow cannot continue (a spatial size reached zero or a count
/// overflowed); the error has already been pushed.
struct Stop;

impl Validator<'_> {
    fn network(&mut self, model: &Model) -> Option<Network> {
        let input = model.input;
        if let Err(d) = check_input(input, self.spans.get("input")) {
            self.diags.push(d);
            return None;
        }
        let stem = self.stem(model).ok()?;
        let mut shape = stem.output();

        let mut blocks = Vec::new();
        let mut stages = Vec::new();
        // timm's drop_path_rate: block i of n gets rate * i / (n - 1).
        let total_blocks: u64 = model.stages.iter().map(|s| s.repeat).sum();
        let mut global = 0u64;
        let mut dilation = 1;
        for (si, stage) in model.stages.iter().enumerate() {
            let stage_input = shape;
            let before = self.totals;
            for bi in 0..stage.repeat {
                let rate = if total_blocks > 1 {
                    model.drop_path_rate * global as f64 / (total_blocks - 1) as f64
                } else {
                    0.0
                };
                global += 1;
                let block = self.block(si, stage, bi, shape, dilation, rate).ok()?;
                shape = block.output;
                blocks.push(block);
            }
            dilation = stage.dilation;
            stages.push(StageSummary {
                name: stage.name.clone(),
                module: format!("layer{}", si + 1),
                block: stage.block,
                repeat: stage.repeat,
                filters: stage.filters.clone(),
                groups: stage.groups,
                stride: stage.stride,
                input: stage_input,
                output: shape,
                // Running totals only grow: the differences cannot underflow.
                params: self.totals.trainable_params - before.trainable_params,
                macs: self.totals.macs - before.macs,
            });
        }

        let head = match &model.head {
            Some(h) => Some(self.head(h, shape).ok()?),
            None => None,
        };
        let features: Vec<FeatureMap> = model
            .features
            .iter()
            .filter_map(|&si| stages.get(si).map(|s| (si, s)))
            .map(|(si, s)| FeatureMap { stage: si, name: s.name.clone(), module: s.module.clone(), shape: s.output })
            .collect();
        for f in &features {
            self.row(&f.module, format!("Feature map ({})", crate::diag::escape(&f.name)), f.shape);
        }
        let rows = std::mem::take(&mut self.rows);
        Some(Network {
            input,
            stem,
            blocks,
            head,
            features,
            stages,
            layers: rows,
            totals: self.totals,
        })
    }

    fn stem(&mut self, model: &Model) -> Result<StemPlan, Stop> {
        let s = &model.stem;
        let mut layers = Vec::new();
        let mut shape = model.input;
        let n = s.convs.len();
        for (i, c) in s.convs.iter().enumerate() {
            let (name, field) = if n == 1 {
                ("conv1".to_string(), "stem.conv".to_string())
            } else {
                (format!("conv1.{}", 3 * i), format!("stem.convs[{i}]"))
            };
            let ctx = format!("the stem convolution ({name})");
            let conv = self.conv(
                &name, shape, c.filters, c.kernel, c.stride, c.padding, 1, 1, c.bias, &field, &ctx,
            )?;
            shape = conv.output;
            layers.push(Layer::Conv(conv));
            if i + 1 < n {
                // timm's deep stems: norm and ReLU between each two convolutions.
                layers.push(Layer::Norm(self.norm(
                    &format!("conv1.{}", 3 * i + 1),
                    shape,
                    true,
                )?));
            }
        }
        if s.bn {
            layers.push(Layer::Norm(self.norm("bn1", shape, s.relu)?));
        } else if s.relu {
            self.row("relu", "ReLU".into(), shape);
            layers.push(Layer::Relu {
                name: "relu".into(),
                shape,
            });
        }
        match s.pool {
            StemPool::None => {}
            StemPool::Pool(p) => {
                let pool = Pool2d {
                    kind: p.kind,
                    kernel: p.kernel,
                    stride: p.stride,
                    padding: p.padding,
                    ceil_mode: p.ceil_mode,
                    count_include_pad: true,
                };
                match p.anti_alias {
                    None => layers.push(Layer::Pool(self.pool(
                        "maxpool",
                        pool,
                        shape,
                        "stem.pool",
                        "the stem's pooling",
                        model,
                    )?)),
                    Some(aa) => {
                        // timm: MaxPool2d(3, stride=1, padding=1), then the aa layer strides.
                        let pool = self.pool(
                            "maxpool.0",
                            Pool2d { stride: 1, ..pool },
                            shape,
                            "stem.pool",
                            "the stem's pooling",
                            model,
                        )?;
                        shape = pool.output;
                        layers.push(Layer::Pool(pool));
                        layers.push(self.anti_alias(
                            "maxpool.1",
                            aa,
                            p.stride,
                            shape,
                            "stem.pool",
                            "the stem's anti-aliasing",
                            model,
                        )?);
                    }
                }
            }
            StemPool::Conv {
                conv: c,
                anti_alias,
            } => {
                let stride = if anti_alias.is_some() { 1 } else { c.stride };
                let conv = self.conv(
                    "maxpool.0",
                    shape,
                    c.filters,
                    c.kernel,
                    stride,
                    c.padding,
                    1,
                    1,
                    c.bias,
                    "stem.pool",
                    "the stem's pooling convolution (maxpool.0)",
                )?;
                shape = conv.output;
                layers.push(Layer::Conv(conv));
                let mut next = 1;
                if let Some(aa) = anti_alias {
                    let l = self.anti_alias(
                        "maxpool.1",
                        aa,
                        c.stride,
                        shape,
                        "stem.pool",
                        "the stem's anti-aliasing",
                        model,
                    )?;
                    shape = l.output();
                    layers.push(l);
                    next = 2;
                }
                layers.push(Layer::Norm(self.norm(
                    &format!("maxpool.{next}"),
                    shape,
                    true,
                )?));
            }
        }
        Ok(StemPlan { layers })
    }

    /// A `MaxPool2d` / `AvgPool2d` with PyTorch's checks (`field` locates it in the spec).
    fn pool(
        &mut self,
        name: &str,
        p: Pool2d,
        input: Shape,
        field: &str,
        ctx: &str,
        model: &Model,
    ) -> Result<PoolLayer, Stop> {
        let at = self.spans.get(field);
        let verdict = pool_output_size(input.h, p.kernel, p.stride, p.padding, p.ceil_mode)
            .and_then(|h| {
                Ok((
                    h,
                    pool_output_size(input.w, p.kernel, p.stride, p.padding, p.ceil_mode)?,
                ))
            });
        let (h, w) = match verdict {
            Ok(hw) => hw,
            Err(PoolError::PaddingOverHalfKernel) => {
                self.diags.push(
                    Diagnostic::error(
                        "E-pool-padding",
                        format!(
                            "pool padding {} is more than half its kernel {}",
                            p.padding, p.kernel
                        ),
                    )
                    .with_primary(at, "PyTorch rejects this pooling at run time")
                    .with_help(format!("use padding {} or less", p.kernel / 2)),
                );
                // Follow the shape anyway, so later independent problems are found too.
                match pool_out(input.h, p.kernel, p.stride, p.padding, p.ceil_mode).zip(pool_out(
                    input.w,
                    p.kernel,
                    p.stride,
                    p.padding,
                    p.ceil_mode,
                )) {
                    Some(hw) => hw,
                    None => return Err(Stop),
                }
            }
            Err(PoolError::OutputTooSmall | PoolError::ZeroKernelOrStride) => {
                let mut d =
                    spatial_zero(at, ctx, input, p.kernel, p.stride, p.padding, model.input);
                let ceil =
                    pool_output_size(input.h, p.kernel, p.stride, p.padding, true).and_then(|h| {
                        Ok((
                            h,
                            pool_output_size(input.w, p.kernel, p.stride, p.padding, true)?,
                        ))
                    });
                if let (false, Ok((h, w))) = (p.ceil_mode, ceil) {
                    d = d.with_help(format!(
                        "or round up with `{}` (PyTorch's ceil_mode=True), which keeps the partial window and gives {h}x{w}",
                        self.spans.example("ceil_mode: true", "ceil")
                    ));
                }
                self.diags.push(d);
                return Err(Stop);
            }
        };
        let output = Shape::new(input.c, h, w);
        let op = format!(
            "{} {}x{}/{} p{}{}{}",
            if p.kind == crate::ir::PoolKind::Max {
                "MaxPool2d"
            } else {
                "AvgPool2d"
            },
            p.kernel,
            p.kernel,
            p.stride,
            p.padding,
            if p.ceil_mode { " ceil" } else { "" },
            if p.kind == crate::ir::PoolKind::Avg && !p.count_include_pad {
                " exclude-pad"
            } else {
                ""
            }
        );
        self.row(name, op, output);
        Ok(PoolLayer {
            name: name.into(),
            pool: p,
            input,
            output,
        })
    }

    /// The anti-aliasing layer that does a stride: `BlurPool2d` or `AvgPool2d(2, stride)`.
    #[allow(clippy::too_many_arguments)]
    fn anti_alias(
        &mut self,
        name: &str,
        aa: AntiAlias,
        stride: u64,
        input: Shape,
        field: &str,
        ctx: &str,
        model: &Model,
    ) -> Result<Layer, Stop> {
        match aa {
            AntiAlias::Avg => {
                let p = Pool2d {
                    kind: crate::ir::PoolKind::Avg,
                    kernel: 2,
                    stride,
                    padding: 0,
                    ceil_mode: false,
                    count_include_pad: true,
                };
                Ok(Layer::Pool(self.pool(name, p, input, field, ctx, model)?))
            }
            AntiAlias::Blur => {
                let k = BlurLayer::FILTER;
                let padding = ((stride - 1) + (k - 1)) / 2;
                let at = self.spans.get(field);
                // Reflect padding needs more input than padding on each side.
                let fits = input.h > padding && input.w > padding;
                let Some((h, w)) = conv_out(input.h, k, stride, padding)
                    .zip(conv_out(input.w, k, stride, padding))
                    .filter(|_| fits)
                else {
                    self.diags.push(spatial_zero(
                        at,
                        ctx,
                        input,
                        k,
                        stride,
                        padding,
                        model.input,
                    ));
                    return Err(Stop);
                };
                let output = Shape::new(input.c, h, w);
                let layer = BlurLayer {
                    name: name.into(),
                    channels: input.c,
                    stride,
                    padding,
                    input,
                    output,
                };
                self.row(name, format!("BlurPool2d {k}x{k}/{stride} reflect p{padding} (fixed filter: {} MACs, not counted)", layer.filter_macs()), output);
                Ok(Layer::Blur(layer))
            }
        }
    }

    fn attention(
        &mut self,
        name: &str,
        attention: Attention,
        shape: Shape,
        field: &str,
    ) -> Result<Layer, Stop> {
        let c = shape.c;
        let kind = match attention {
            Attention::Se { reduction, divisor } => {
                let hidden = Attention::se_hidden(c, reduction, divisor);
                if reduction > c {
                    // timm computes channels / reduction before rounding up to the divisor:
                    // below 1, the squeeze no longer reduces anything it was meant to.
                    self.diags.push(
                        Diagnostic::error(
                            "E-se-reduction",
                            format!("SE reduction {reduction} is larger than the {c} channels of {name}"),
                        )
                        .with_primary(self.spans.get(field), format!("{c} / {reduction} is below 1 channel"))
                        .with_note(format!(
                            "squeeze-and-excitation squeezes to channels / reduction hidden channels (rounded to a multiple of {divisor}, at least {divisor}): here {hidden}, more than {c} / {reduction}"
                        ))
                        .with_help(format!("use a reduction of at most {c} (timm's SE uses 16; ResNet-RS uses 4)")),
                    );
                }
                let (p1, p2) = (
                    u128::from(c) * u128::from(hidden) + u128::from(hidden),
                    u128::from(hidden) * u128::from(c) + u128::from(c),
                );
                let m = u128::from(c) * u128::from(hidden);
                self.counted_row(
                    &format!("{name}.fc1"),
                    format!("Conv2d 1x1/1 p0 +bias, {c}->{hidden}"),
                    vec![hidden, 1, 1],
                    p1,
                    0,
                    m,
                )?;
                self.counted_row(
                    &format!("{name}.fc2"),
                    format!("Conv2d 1x1/1 p0 +bias, {hidden}->{c}"),
                    vec![c, 1, 1],
                    p2,
                    0,
                    m,
                )?;
                self.row(
                    name,
                    format!("SEModule (squeeze {c}->{hidden}->{c}, sigmoid gate)"),
                    shape,
                );
                AttentionKind::Se { hidden }
            }
            Attention::Eca { gamma, beta } => {
                let k = Attention::eca_kernel(c, gamma, beta);
                self.counted_row(
                    &format!("{name}.conv"),
                    format!("Conv1d {k} p{}, 1->1", (k - 1) / 2),
                    vec![1, c],
                    u128::from(k),
                    0,
                    u128::from(c) * u128::from(k),
                )?;
                self.row(name, "EcaModule (sigmoid gate)".into(), shape);
                AttentionKind::Eca { kernel: k }
            }
        };
        Ok(Layer::Attention(AttentionLayer {
            name: name.into(),
            channels: c,
            shape,
            kind,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        si: usize,
        stage: &Stage,
        bi: u64,
        input: Shape,
        previous_dilation: u64,
        drop_rate: f64,
    ) -> Result<BlockPlan, Stop> {
        let name = format!("layer{}.{}", si + 1, bi);
        let sp = format!("stages[{si}]");
        let layout = stage.layout(bi, previous_dilation);
        let stride = layout.stride;
        let kind = stage.block;
        let ctx = |conv: &str| format!("{} block {} ({name}.{conv})", stage.name, bi + 1);
        let pre_order = layout.order == Order::Pre;

        let mut pre = Vec::new();
        let mut branch = Vec::new();
        let mut shape = input;
        let n = layout.convs.len();
        for (i, c) in layout.convs.iter().enumerate() {
            let cname = format!("conv{}", i + 1);
            let field = if c.groups > 1 {
                format!("{sp}.groups")
            } else {
                format!("{sp}.filters[{i}]")
            };
            if pre_order {
                let norm = Layer::Norm(self.norm(&format!("{name}.bn{}", i + 1), shape, true)?);
                if i == 0 {
                    pre.push(norm);
                } else {
                    branch.push(norm);
                }
            }
            let conv = self.conv(
                &format!("{name}.{cname}"),
                shape,
                c.filters,
                c.kernel,
                c.stride,
                c.padding,
                c.dilation,
                c.groups,
                c.bias,
                &field,
                &ctx(&cname),
            )?;
            shape = conv.output;
            branch.push(Layer::Conv(conv));
            if !pre_order {
                // The last norm's ReLU comes after the addition (shown on the block's row).
                branch.push(Layer::Norm(self.norm(
                    &format!("{name}.bn{}", i + 1),
                    shape,
                    i + 1 < n,
                )?));
            }
            if let Some((aa, at, s)) = layout.anti_alias {
                if at == i {
                    let l = self.anti_alias(
                        &format!("{name}.aa"),
                        aa,
                        s,
                        shape,
                        &format!("{sp}.anti_alias"),
                        &format!("{} block {} ({name}.aa)", stage.name, bi + 1),
                        self.model,
                    )?;
                    shape = l.output();
                    branch.push(l);
                }
            }
        }
        if let Some(a) = layout.attention {
            branch.push(self.attention(
                &format!("{name}.se"),
                a,
                shape,
                &format!("{sp}.attention"),
            )?);
        }
        if drop_rate > 0.0 && layout.residual {
            self.row(
                &format!("{name}.drop_path"),
                format!("DropPath p={drop_rate}"),
                shape,
            );
            branch.push(Layer::DropPath {
                name: format!("{name}.drop_path"),
                rate: drop_rate,
                shape,
            });
        }
        let main = shape;

        let shape_changes = input != main;
        let shortcut = if !layout.residual {
            ShortcutPlan::None
        } else {
            let project = match stage.shortcut {
                ShortcutOption::B => match stage.stride_at {
                    StrideAt::First => shape_changes || stride != 1,
                    // Keras V2: only a change of channels projects; a stride alone
                    // subsamples the identity.
                    StrideAt::Last => input.c != main.c,
                },
                ShortcutOption::C => true,
                ShortcutOption::A | ShortcutOption::Identity => false,
            };
            if project {
                let p = stage.projection;
                let mut layers = Vec::new();
                let mut x = input;
                let mut index = 0;
                let mut conv_stride = stride;
                if p.avg_pool {
                    if stride > 1 {
                        let pool = Pool2d {
                            kind: crate::ir::PoolKind::Avg,
                            kernel: 2,
                            stride,
                            padding: 0,
                            ceil_mode: true,
                            count_include_pad: false,
                        };
                        let l = self.pool(
                            &format!("{name}.downsample.0"),
                            pool,
                            x,
                            &format!("{sp}.projection"),
                            &ctx("downsample.0"),
                            self.model,
                        )?;
                        x = l.output;
                        layers.push(Layer::Pool(l));
                    }
                    // timm keeps the index of the (identity) pool at stride 1.
                    index = 1;
                    conv_stride = 1;
                }
                // timm's downsample_conv: a stride-1, undilated projection is 1x1.
                let kernel = if p.avg_pool || (conv_stride == 1 && stage.dilation == 1) {
                    1
                } else {
                    p.kernel
                };
                let conv = self.conv(
                    &format!("{name}.downsample.{index}"),
                    x,
                    main.c,
                    kernel,
                    conv_stride,
                    kernel / 2,
                    1,
                    1,
                    p.bias,
                    &format!("{sp}.shortcut"),
                    &ctx(&format!("downsample.{index}")),
                )?;
                let out = conv.output;
                layers.push(Layer::Conv(conv));
                if p.bn {
                    layers.push(Layer::Norm(self.norm(
                        &format!("{name}.downsample.{}", index + 1),
                        out,
                        false,
                    )?));
                }
                if out != main {
                    self.add_mismatch(stage, bi, &name, out, main, "projection shortcut");
                }
                ShortcutPlan::Path {
                    from_pre: pre_order,
                    layers,
                }
            } else if shape_changes
                && (stage.shortcut == ShortcutOption::A
                    || (stage.stride_at == StrideAt::Last && input.c == main.c))
            {
                let sub = Shape::new(input.c, input.h.div_ceil(stride), input.w.div_ceil(stride));
                if main.c < input.c || (sub.h, sub.w) != (main.h, main.w) {
                    let what = if stage.shortcut == ShortcutOption::A {
                        "zero-padding shortcut (option A)"
                    } else {
                        "subsampled identity shortcut"
                    };
                    self.add_mismatch(stage, bi, &name, sub, main, what);
                    ShortcutPlan::Path {
                        from_pre: false,
                        layers: Vec::new(),
                    }
                } else {
                    let extra = main.c - input.c;
                    let op = if extra > 0 {
                        format!("ZeroPadShortcut /{stride} +{extra}ch")
                    } else {
                        format!("MaxPool2d 1x1/{stride} p0 (subsampled identity)")
                    };
                    self.row(&format!("{name}.shortcut"), op, main);
                    let l = Layer::Subsample {
                        name: format!("{name}.shortcut"),
                        stride,
                        extra_channels: extra,
                        input,
                        output: main,
                    };
                    ShortcutPlan::Path {
                        from_pre: false,
                        layers: vec![l],
                    }
                }
            } else {
                if shape_changes {
                    self.add_mismatch(stage, bi, &name, input, main, "identity shortcut");
                }
                ShortcutPlan::Path {
                    from_pre: false,
                    layers: Vec::new(),
                }
            }
        };
        let relu_after_add = !pre_order;
        let op = match (&shortcut, pre_order) {
            (ShortcutPlan::None, false) => "ReLU (no shortcut)",
            (ShortcutPlan::None, true) => "(no shortcut)",
            (_, true) => "Add",
            (_, false) => "Add, ReLU",
        };
        self.row(&name, op.into(), main);
        Ok(BlockPlan {
            name,
            stage: si,
            index: bi,
            kind,
            input,
            output: main,
            pre,
            branch,
            shortcut,
            relu_after_add,
        })
    }

    fn add_mismatch(
        &mut self,
        stage: &Stage,
        bi: u64,
        name: &str,
        carried: Shape,
        produced: Shape,
        what: &str,
    ) {
        let si = name
            .strip_prefix("layer")
            .and_then(|r| r.split('.').next())
            .and_then(|n| n.parse::<usize>().ok());
        let sp = format!("stages[{}]", si.map_or(0, |i| i - 1));
        let at = self.spans.get(&sp);
        let channels_differ = carried.c != produced.c;
        let spatial_differ = (carried.h, carried.w) != (produced.h, produced.w);
        let mut d = Diagnostic::error(
            "E-shape-add",
            format!("residual add shape mismatch in {} block {} ({name})", stage.name, bi + 1),
        )
        .with_primary(at, format!("{what} carries {carried}, residual branch produces {produced}"))
        .with_note(format!("the addition needs equal shapes: expected {produced} from the shortcut, found {carried}"));
        if self.spans.has(&format!("{sp}.shortcut")) {
            d = d.with_secondary(
                self.spans.get(&format!("{sp}.shortcut")),
                "shortcut option set here",
            );
        }
        let stride = if bi == 0 { stage.stride } else { 1 };
        let help = match stage.shortcut {
            ShortcutOption::Identity | ShortcutOption::A if channels_differ || spatial_differ => {
                if stage.shortcut == ShortcutOption::A && produced.c < carried.c {
                    format!(
                        "option A can only add channels; use a projection shortcut (`{}`, 1x1 conv, stride {stride})",
                        self.spans.example("shortcut: B", "shortcut B")
                    )
                } else {
                    format!(
                        "use a projection shortcut (1x1 conv, stride {stride}; paper option B: `{}`)",
                        self.spans.example("shortcut: B", "shortcut B")
                    )
                }
            }
            _ => "the shortcut and the residual branch must produce the same shape".to_string(),
        };
        d = d.with_help(help);
        self.diags.push(d);
    }

    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: &str,
        input: Shape,
        out: u64,
        kernel: u64,
        stride: u64,
        padding: u64,
        dilation: u64,
        groups: u64,
        bias: bool,
        field: &str,
        ctx: &str,
    ) -> Result<ConvLayer, Stop> {
        let at = self.spans.get(field);
        if groups == 0 || input.c % groups != 0 || out % groups != 0 {
            let (bad, which) = if groups == 0 || input.c % groups != 0 {
                (input.c, "input")
            } else {
                (out, "output")
            };
            self.diags.push(
                Diagnostic::error("E-groups", format!("{ctx}: {groups} groups do not divide its {bad} {which} channels"))
                    .with_primary(at, format!("{groups} groups"))
                    .with_note(format!("a grouped convolution needs input ({}) and output ({out}) channels divisible by its groups", input.c))
                    .with_help(format!("use a number of groups that divides both, e.g. {}", nearest_divisor(gcd(input.c, out), groups))),
            );
            // Keep going with groups = 1 so later independent problems are found too.
            return self.conv(
                name, input, out, kernel, stride, padding, dilation, 1, bias, field, ctx,
            );
        }
        // The window a dilated kernel spans.
        let span = dilation.max(1) * (kernel.max(1) - 1) + 1;
        let Some((h, w)) =
            conv_out(input.h, span, stride, padding).zip(conv_out(input.w, span, stride, padding))
        else {
            self.diags.push(spatial_zero(
                at,
                ctx,
                input,
                span,
                stride,
                padding,
                self.model.input,
            ));
            return Err(Stop);
        };
        let layer = ConvLayer {
            name: name.to_string(),
            in_channels: input.c,
            out_channels: out,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias,
            input,
            output: Shape::new(out, h, w),
        };
        let op = format!(
            "Conv2d {k}x{k}/{stride} p{padding}{}{}{}, {}->{out}",
            if dilation > 1 {
                format!(" d{dilation}")
            } else {
                String::new()
            },
            if groups > 1 {
                format!(" g{groups}")
            } else {
                String::new()
            },
            if bias { " +bias" } else { "" },
            input.c,
            k = kernel
        );
        let (params, macs) = (layer.exact_params(), layer.exact_macs());
        let output = vec![layer.output.c, layer.output.h, layer.output.w];
        self.counted_row(name, op, output, params, 0, macs)?;
        Ok(layer)
    }

    fn norm(&mut self, name: &str, shape: Shape, relu: bool) -> Result<NormLayer, Stop> {
        let norm = self.model.norm;
        let c = shape.c;
        let op = match norm {
            Norm::Batch => "BatchNorm2d".to_string(),
            Norm::Group { groups } => {
                if groups == 0 || c % groups != 0 {
                    self.diags.push(
                        Diagnostic::error("E-groups", format!("GroupNorm: {groups} groups do not divide the {c} channels of {name}"))
                            .with_primary(self.spans.get("norm"), format!("{groups} groups"))
                            .with_note("GroupNorm splits the channels of every norm layer into equal groups")
                            .with_help(format!("use a number of groups that divides every norm layer's channels, e.g. {}", nearest_divisor(c, groups))),
                    );
                }
                format!("GroupNorm {groups}")
            }
        };
        let op = if relu { format!("{op}, ReLU") } else { op };
        // Weight and bias; BN's running mean and variance.
        let per_channel = 2 * u128::from(c);
        let stats = if norm == Norm::Batch { per_channel } else { 0 };
        self.counted_row(
            name,
            op,
            vec![shape.c, shape.h, shape.w],
            per_channel,
            stats,
            0,
        )?;
        Ok(NormLayer {
            name: name.to_string(),
            norm,
            channels: c,
            shape,
            relu,
        })
    }

    fn head(&mut self, h: &crate::ir::Head, input: Shape) -> Result<HeadPlan, Stop> {
        let norm = h
            .norm
            .then(|| self.norm("final_bn", input, true))
            .transpose()?;
        let pooled = match h.pool {
            HeadPool::Avg => {
                self.row(
                    "avgpool",
                    "AdaptiveAvgPool2d 1x1".into(),
                    Shape::new(input.c, 1, 1),
                );
                Shape::new(input.c, 1, 1)
            }
            HeadPool::Max => {
                self.row(
                    "maxpool_head",
                    "AdaptiveMaxPool2d 1x1".into(),
                    Shape::new(input.c, 1, 1),
                );
                Shape::new(input.c, 1, 1)
            }
            HeadPool::Flatten => input,
        };
        // Within the IR's limits this is below 2^45; saturate rather than trust them (a
        // saturated count fails the parameter limit below).
        let features = saturate(
            u128::from(pooled.c)
                .saturating_mul(u128::from(pooled.h))
                .saturating_mul(u128::from(pooled.w)),
        );
        self.rows.push(LayerRow {
            name: "flatten".into(),
            op: "Flatten".into(),
            output: vec![features],
            params: 0,
            non_trainable: 0,
            macs: 0,
        });
        if h.pool == HeadPool::Flatten && pooled.h * pooled.w > 1 {
            self.diags.push(
                Diagnostic::warning("W-flatten", format!("the head flattens a {pooled} feature map into {features} features"))
                    .with_primary(self.spans.get("head.pool"), format!("fc gets {} x {} x {} inputs", pooled.c, pooled.h, pooled.w))
                    .with_note(format!("this is input-size dependent: the fc layer alone has {} parameters", features.saturating_mul(h.classes).saturating_add(h.classes)))
                    .with_help(format!(
                        "use `{}` (global average pooling) to make the head independent of the input size",
                        self.spans.example("pool: avg", "head avgpool")
                    )),
            );
        }
        if let Some(declared) = h.in_features {
            if declared != features {
                let how = match h.pool {
                    HeadPool::Flatten => format!("flattening {pooled}"),
                    _ => format!("global pooling of {input}"),
                };
                self.diags.push(
                    Diagnostic::error("E-fc-input", format!("the fully connected layer expects {declared} inputs but gets {features}"))
                        .with_primary(self.spans.get("head.in_features"), format!("declared {declared}"))
                        .with_note(format!("{how} gives {features} features"))
                        .with_help(format!(
                            "set `{}`, or drop it to let resnetc infer it",
                            self.spans.example(&format!("in_features: {features}"), &format!("in {features}"))
                        )),
                );
            }
        }
        if h.dropout > 0.0 {
            self.rows.push(LayerRow {
                name: "dropout".into(),
                op: format!("Dropout p={}", h.dropout),
                output: vec![features],
                params: 0,
                non_trainable: 0,
                macs: 0,
            });
        }
        let fc = LinearLayer {
            name: "fc".into(),
            in_features: features,
            out_features: h.classes,
        };
        let macs = fc.exact_macs();
        // One weight per MAC, plus the bias.
        let params = macs + u128::from(h.classes);
        self.counted_row(
            "fc",
            format!("Linear {features}->{}", h.classes),
            vec![h.classes],
            params,
            0,
            macs,
        )?;
        if h.softmax {
            self.rows.push(LayerRow {
                name: "softmax".into(),
                op: "Softmax".into(),
                output: vec![h.classes],
                params: 0,
                non_trainable: 0,
                macs: 0,
            });
        }
        Ok(HeadPlan {
            norm,
            pool: h.pool,
            input,
            pooled,
            dropout: h.dropout,
            fc,
            softmax: h.softmax,
        })
    }

    /// A row without parameters or MACs (activations, pooling, additions).
    fn row(&mut self, name: &str, op: String, shape: Shape) {
        let output = vec![shape.c, shape.h, shape.w];
        self.rows.push(LayerRow {
            name: name.to_string(),
            op,
            output,
            params: 0,
            non_trainable: 0,
            macs: 0,
        });
    }

    /// A row with parameters or MACs: adds them to the running totals, or reports the
    /// layer that takes the model past [`Limits::MAX_PARAMS`] or [`Limits::MAX_MACS`].
    fn counted_row(
        &mut self,
        name: &str,
        op: String,
        output: Vec<u64>,
        params: u128,
        non_trainable: u128,
        macs: u128,
    ) -> Result<(), Stop> {
        let t = self.totals;
        let trainable_total = u128::from(t.trainable_params).saturating_add(params);
        let non_trainable_total = u128::from(t.non_trainable_params).saturating_add(non_trainable);
        let macs_total = u128::from(t.macs).saturating_add(macs);
        let params_over = (trainable_total > u128::from(Limits::MAX_PARAMS)
            || non_trainable_total > u128::from(Limits::MAX_PARAMS))
        .then_some((
            trainable_total.max(non_trainable_total),
            params.max(non_trainable),
        ));
        let macs_over = (macs_total > u128::from(Limits::MAX_MACS)).then_some((macs_total, macs));
        if params_over.is_some() || macs_over.is_some() {
            self.diags
                .push(self.over_limit(name, params_over, macs_over));
            return Err(Stop);
        }
        // Each is within a limit below 2^64 now: `saturate` is exact.
        let (trainable_total, non_trainable_total, macs_total) = (
            saturate(trainable_total),
            saturate(non_trainable_total),
            saturate(macs_total),
        );
        self.totals = Totals {
            trainable_params: trainable_total,
            non_trainable_params: non_trainable_total,
            macs: macs_total,
        };
        self.rows.push(LayerRow {
            name: name.to_string(),
            op,
            output,
            params: trainable_total - t.trainable_params,
            non_trainable: non_trainable_total - t.non_trainable_params,
            macs: macs_total - t.macs,
        });
        Ok(())
    }

    /// The error for the layer `name` that crosses a total limit, located at its stage
    /// (or the stem, or the head). `params` and `macs` are `(total, this layer's share)`
    /// for each limit crossed.
    fn over_limit(
        &self,
        name: &str,
        params: Option<(u128, u128)>,
        macs: Option<(u128, u128)>,
    ) -> Diagnostic {
        let macs_over = macs.is_some();
        let stage = block_of(name).and_then(|(si, bi)| Some((si, self.model.stages.get(si)?, bi)));
        let flatten = self.model.head.as_ref().is_some_and(|h| h.pool == HeadPool::Flatten);
        let (at, ctx) = match (stage, name) {
            (Some((si, stage, bi)), _) => (
                self.spans.get(&format!("stages[{si}]")),
                format!("{} block {} ({name})", stage.name, bi + 1),
            ),
            (None, "conv1" | "bn1") => (self.spans.get("stem.conv"), format!("the stem ({name})")),
            (None, "fc") if flatten => (
                self.spans.get("head.pool"),
                "the fully connected layer (fc)".to_string(),
            ),
            (None, "fc") => (
                self.spans.get("head"),
                "the fully connected layer (fc)".to_string(),
            ),
            _ => (self.spans.get("head"), format!("the head ({name})")),
        };
        let (max_params, max_macs) = (
            crate::back::table::grouped(Limits::MAX_PARAMS.into()),
            crate::back::table::grouped(Limits::MAX_MACS.into()),
        );
        let what = match (params.is_some(), macs_over) {
            (true, true) => format!("{max_params} trainable parameters and {max_macs} MACs"),
            (true, false) => format!("{max_params} trainable parameters"),
            _ => format!("{max_macs} multiply-accumulates (MACs) per sample"),
        };
        let mut label = Vec::new();
        if let Some((total, layer)) = params {
            label.push(format!(
                "{} parameters up to here, {} in {name}",
                crate::back::table::grouped(total),
                crate::back::table::grouped(layer)
            ));
        }
        if let Some((total, layer)) = macs {
            label.push(format!(
                "{} MACs up to here, {} in {name}",
                crate::back::table::grouped(total),
                crate::back::table::grouped(layer)
            ));
        }
        let help = if name == "fc" && flatten {
            format!(
                "use `{}` (global average pooling): the fc layer then has one input per channel",
                self.spans.example("pool: avg", "head avgpool")
            )
        } else if name == "fc" {
            "use fewer classes or fewer channels in the last stage".to_string()
        } else if macs_over {
            "use a smaller input (`--input`), fewer or narrower blocks, or downsample earlier \
             (stride 2 in the stem or an earlier stage)"
                .to_string()
        } else {
            "use fewer or narrower blocks".to_string()
        };
        // Where the total comes from: the layers counted so far, by stage.
        let mut by_stage: Vec<(String, u128)> = Vec::new();
        for r in &self.rows {
            let part = match block_of(&r.name) {
                Some((si, _)) => self
                    .model
                    .stages
                    .get(si)
                    .map_or_else(|| format!("layer{}", si + 1), |s| s.name.clone()),
                // Rows outside blocks come before them (the stem) or after them (the head).
                None if by_stage.len() > 1
                    || by_stage.first().is_some_and(|(p, _)| p != "stem") =>
                {
                    "head".to_string()
                }
                None => "stem".to_string(),
            };
            let n = u128::from(if macs_over { r.macs } else { r.params });
            match by_stage.last_mut() {
                Some((last, sum)) if *last == part => *sum += n,
                _ => by_stage.push((part, n)),
            }
        }
        let counted: Vec<String> = by_stage
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(part, n)| format!("{part} {}", crate::back::table::grouped(*n)))
            .collect();
        let mut d = Diagnostic::error("E-limit", format!("{ctx} takes the model past {what}"))
            .with_primary(at, label.join("; "))
            .with_note(format!(
                "resnetc checks models of up to {max_params} (2^36) trainable parameters and {max_macs} (2^53 - 1) \
                 MACs per sample; torchvision's largest ResNet, wide_resnet101_2, has 126,886,696 parameters and \
                 22.8 billion MACs at 224x224"
            ));
        if !counted.is_empty() {
            let what = if macs_over { "MACs" } else { "parameters" };
            d = d.with_note(format!("{what} before {name}: {}", counted.join(", ")));
        }
        d.with_help(help)
    }
}

/// `(stage index, block index)` of a layer named `layer{stage+1}.{block}...`.
fn block_of(name: &str) -> Option<(usize, u64)> {
    let (stage, rest) = name.strip_prefix("layer")?.split_once('.')?;
    let block = rest.split('.').next()?;
    Some((
        stage.parse::<usize>().ok()?.checked_sub(1)?,
        block.parse().ok()?,
    ))
}

fn check_input(input: Shape, at: crate::span::Span) -> Result<(), Diagnostic> {
    let ok = (1..=Limits::MAX_CHANNELS).contains(&input.c)
        && (1..=Limits::MAX_SIDE).contains(&input.h)
        && (1..=Limits::MAX_SIDE).contains(&input.w)
        && input.h * input.w <= Limits::MAX_PIXELS;
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::error(
            "E-limit",
            format!("input {input} is outside resnetc's limits"),
        )
        .with_primary(at, "input size")
        .with_note(format!(
            "channels 1..={}, height and width 1..={}, at most {} pixels",
            Limits::MAX_CHANNELS,
            Limits::MAX_SIDE,
            Limits::MAX_PIXELS
        )))
    }
}

fn spatial_zero(
    at: crate::span::Span,
    ctx: &str,
    input: Shape,
    kernel: u64,
    stride: u64,
    padding: u64,
    model_input: Shape,
) -> Diagnostic {
    let d = Diagnostic::error(
        "E-spatial-zero",
        format!("spatial size reaches zero at {ctx}"),
    )
    .with_primary(
        at,
        format!(
            "{} {kernel}x{kernel} window with padding {padding} does not fit the {}x{} input",
            article_for_number(kernel),
            input.h,
            input.w
        ),
    )
    .with_note(format!(
        "input {input}, kernel {kernel}, stride {stride}, padding {padding}: output size < 1"
    ));
    if model_input == input {
        d.with_help("use a smaller kernel or more padding")
    } else {
        d.with_help(format!(
            "the input {model_input} is too small for this network's downsampling: use a larger input (`--input`), fewer stride-2 stages, or drop the stem's pooling"
        ))
    }
}

/// The divisor of `n` closest to `want` (the smaller one on a tie).
fn nearest_divisor(n: u64, want: u64) -> u64 {
    (1..=n.min(1 << 16))
        .filter(|d| n % d == 0)
        .min_by_key(|d| (d.abs_diff(want), *d))
        .unwrap_or(1)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

/// The indefinite article before a number as it is read aloud: "an 8x8", "an 11x11", "a 7x7".
fn article_for_number(n: u64) -> &'static str {
    let mut lead = n;
    // 80..89, 800..899, ... read "eighty...", "eight hundred...".
    while lead >= 100 {
        lead /= 10;
    }
    if matches!(lead, 8 | 11 | 18 | 80..=89)
        || (n >= 1000 && matches!(n, 11_000..=11_999 | 18_000..=18_999))
    {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod article_tests {
    #[test]
    fn articles_before_numbers() {
        for (n, a) in [
            (1, "a"),
            (3, "a"),
            (7, "a"),
            (8, "an"),
            (11, "an"),
            (18, "an"),
            (80, "an"),
            (64, "a"),
            (800, "an"),
            (1000, "a"),
        ] {
            assert_eq!(super::article_for_number(n), a, "{n}");
        }
    }
}
