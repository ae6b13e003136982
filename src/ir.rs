//! The IR: a fully resolved model description, every default applied.
//!
//! Invariants (established by [`crate::lower`], relied on by [`crate::valid`] and the back
//! ends):
//! - every count, size and channel number is within the limits of [`Limits`] (so shape
//!   arithmetic in `u64` cannot overflow; the checker sums parameters and MACs with
//!   checked arithmetic and enforces the total limits itself);
//! - `Stage::filters` has exactly [`BlockKind::arity`] entries;
//! - stage names are unique.
//!
//! Shapes are *not* part of the IR: [`crate::valid::validate`] derives them. Spans live
//! beside it in [`crate::lower::SpanTable`].

/// Channels x height x width of one sample (the batch dimension is implicit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub c: u64,
    pub h: u64,
    pub w: u64,
}

impl Shape {
    pub fn new(c: u64, h: u64, w: u64) -> Self {
        Shape { c, h, w }
    }

    pub fn numel(self) -> u64 {
        self.c * self.h * self.w
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {}, {}]", self.c, self.h, self.w)
    }
}

/// A whole network.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub name: String,
    pub input: Shape,
    pub stem: Stem,
    pub stages: Vec<Stage>,
    /// The classifier head; `None` for a backbone, which returns the feature maps of the
    /// stages in [`Model::features`] instead (timm's `features_only`).
    pub head: Option<Head>,
    /// Indices of the stages whose outputs a backbone returns, ascending (timm's
    /// `out_indices`, torchvision's feature extractor); empty for a classifier. Exactly
    /// one of `head` and `features` is set.
    pub features: Vec<usize>,
    pub init: Init,
    /// torchvision's `zero_init_residual` (timm's `zero_init_last`): the last norm layer
    /// of each residual block starts with weight 0.
    pub zero_init_residual: bool,
    /// Hyper-parameters of every norm layer (GroupNorm uses `eps` only).
    pub batch_norm: BatchNorm,
    /// The normalization layer everywhere (stem, blocks, projections, head).
    pub norm: Norm,
    /// timm's `drop_path_rate`: stochastic depth on the residual branch, rising linearly
    /// from 0 at the first block to this rate at the last (training only).
    pub drop_path_rate: f64,
}

/// Which normalization layer the network uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `BatchNorm2d`: weight and bias, running mean and variance.
    Batch,
    /// `GroupNorm(groups, channels)`: weight and bias, no running statistics.
    Group { groups: u64 },
}

impl Norm {
    pub const KEYWORDS: &'static [&'static str] = &["batch", "group"];

    pub fn keyword(self) -> &'static str {
        match self {
            Norm::Batch => "batch",
            Norm::Group { .. } => "group",
        }
    }

    /// PyTorch's module class.
    pub fn class(self) -> &'static str {
        match self {
            Norm::Batch => "BatchNorm2d",
            Norm::Group { .. } => "GroupNorm",
        }
    }

    /// `BN` or `GN 32`, as the drawings label a norm layer.
    pub fn abbreviation(self) -> String {
        match self {
            Norm::Batch => "BN".to_string(),
            Norm::Group { groups } => format!("GN {groups}"),
        }
    }
}

/// Anti-aliased downsampling (timm's `aa_layer`): the strided layer runs at stride 1 and
/// this layer does the downsampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AntiAlias {
    /// `BlurPool2d`: a fixed binomial 3x3 filter ([1, 2, 1] outer product / 16), reflect
    /// padding, applied per channel with the stride.
    Blur,
    /// `AvgPool2d(2, stride)` (timm's `create_aa` with `nn.AvgPool2d`).
    Avg,
}

impl AntiAlias {
    pub const KEYWORDS: &'static [&'static str] = &["blur", "avg"];

    pub fn keyword(self) -> &'static str {
        match self {
            AntiAlias::Blur => "blur",
            AntiAlias::Avg => "avg",
        }
    }
}

/// Channel attention after the residual branch's last norm layer, as timm places it
/// (module `se` of the block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attention {
    /// Squeeze-and-excitation (timm's `SEModule`): global average, `fc1` 1x1 conv to
    /// `hidden` channels with bias, ReLU, `fc2` 1x1 conv back with bias, sigmoid gate.
    /// `hidden` = timm's `make_divisible(channels / reduction, divisor)`.
    Se { reduction: u64, divisor: u64 },
    /// Efficient channel attention (timm's `EcaModule`): global average, a `Conv1d` over
    /// channels (no bias) with the adaptive odd kernel `max(3, t | 1)` where
    /// `t = int(|log2(channels) + beta| / gamma)`, sigmoid gate.
    Eca { gamma: u64, beta: u64 },
}

impl Attention {
    pub const KEYWORDS: &'static [&'static str] = &["se", "eca"];

    pub fn keyword(self) -> &'static str {
        match self {
            Attention::Se { .. } => "se",
            Attention::Eca { .. } => "eca",
        }
    }

    /// SE's hidden channels for `channels` inputs: timm's
    /// `make_divisible(channels / reduction, divisor, round_limit=0)`, i.e.
    /// `max(divisor, int(v + divisor / 2) // divisor * divisor)` with `v = channels / reduction`,
    /// in exact integer arithmetic.
    pub fn se_hidden(channels: u64, reduction: u64, divisor: u64) -> u64 {
        let (c, r, d) = (
            u128::from(channels),
            u128::from(reduction.max(1)),
            u128::from(divisor.max(1)),
        );
        // int(c / r + d / 2) = floor((2c + d r) / (2r)).
        let rounded = (2 * c + d * r) / (2 * r) / d * d;
        u64::try_from(rounded.max(d)).unwrap_or(u64::MAX)
    }

    /// ECA's kernel for `channels` inputs, as timm computes it (`math.log(channels, 2)`).
    pub fn eca_kernel(channels: u64, gamma: u64, beta: u64) -> u64 {
        let t = (((channels.max(1) as f64).ln() / 2f64.ln() + beta as f64).abs()
            / gamma.max(1) as f64) as u64;
        let k = if t % 2 == 1 { t } else { t + 1 };
        k.max(3)
    }
}

/// Where a stage's stride goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrideAt {
    /// The first block (the paper, torchvision, timm).
    First,
    /// The last block, whose identity shortcut is subsampled (Keras's ResNetV2).
    Last,
}

impl StrideAt {
    pub const KEYWORDS: &'static [&'static str] = &["first", "last"];

    pub fn keyword(self) -> &'static str {
        match self {
            StrideAt::First => "first",
            StrideAt::Last => "last",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    pub eps: f64,
    /// PyTorch convention: weight of the new batch statistic (Keras's 0.99 is 0.01 here).
    pub momentum: f64,
}

impl Default for BatchNorm {
    fn default() -> Self {
        BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

/// Weight initialization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// torchvision: convolutions Kaiming-normal (fan-out, ReLU gain), BN weight 1 bias 0,
    /// the fully connected layer as `nn.Linear`'s default.
    KaimingNormal,
    /// Glorot/Xavier uniform for convolutions and the fully connected layer, biases 0
    /// (Keras's default; d2l's `init_cnn`).
    XavierUniform,
}

impl Init {
    pub const KEYWORDS: &'static [&'static str] = &["kaiming_normal", "xavier_uniform"];

    pub fn keyword(self) -> &'static str {
        match self {
            Init::KaimingNormal => "kaiming_normal",
            Init::XavierUniform => "xavier_uniform",
        }
    }
}

/// A 2-D convolution's hyper-parameters (square kernel, symmetric padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv {
    pub filters: u64,
    pub kernel: u64,
    pub stride: u64,
    pub padding: u64,
    pub bias: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    pub const KEYWORDS: &'static [&'static str] = &["max", "avg"];

    pub fn keyword(self) -> &'static str {
        match self {
            PoolKind::Max => "max",
            PoolKind::Avg => "avg",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub kind: PoolKind,
    pub kernel: u64,
    pub stride: u64,
    pub padding: u64,
    pub ceil_mode: bool,
    /// With anti-aliasing the pool runs at stride 1 and this layer strides (timm's
    /// `resnetblur50`: `maxpool.0` MaxPool2d 3x3/1, `maxpool.1` BlurPool2d /2).
    pub anti_alias: Option<AntiAlias>,
}

/// What follows the stem's convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StemPool {
    None,
    Pool(Pool),
    /// A strided convolution + norm + ReLU in place of the pooling (timm's
    /// `replace_stem_pool`, ResNet-RS: `maxpool.0`, `maxpool.1`), optionally anti-aliased.
    Conv {
        conv: Conv,
        anti_alias: Option<AntiAlias>,
    },
}

impl StemPool {
    pub fn is_none(&self) -> bool {
        matches!(self, StemPool::None)
    }
}

/// The paper's `conv1` (plus its pooling), torchvision's `conv1`/`bn1`/`relu`/`maxpool`.
///
/// With several convolutions (timm's deep stems) they are `conv1.0`, `conv1.3`, `conv1.6`,
/// ... with a norm layer and ReLU between each two (`conv1.1`, `conv1.4`); `bn` and `relu`
/// follow the last one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stem {
    /// At least one.
    pub convs: Vec<Conv>,
    pub bn: bool,
    pub relu: bool,
    pub pool: StemPool,
}

impl Stem {
    /// The last convolution (its filters are the stem's output channels).
    pub fn last_conv(&self) -> &Conv {
        self.convs
            .last()
            .expect("a stem has at least one convolution")
    }
}

/// Residual block kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34).
    Basic,
    /// 1x1, 3x3, 1x1 (ResNet-50 and deeper).
    Bottleneck,
    /// BN-ReLU-conv ordering of "Identity Mappings in Deep Residual Networks".
    PreActBasic,
    PreActBottleneck,
    /// No shortcut at all: the paper's plain networks.
    Plain,
    PlainBottleneck,
}

impl BlockKind {
    pub const KEYWORDS: &'static [&'static str] = &[
        "basic",
        "bottleneck",
        "preact_basic",
        "preact_bottleneck",
        "plain",
        "plain_bottleneck",
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            BlockKind::Basic => "basic",
            BlockKind::Bottleneck => "bottleneck",
            BlockKind::PreActBasic => "preact_basic",
            BlockKind::PreActBottleneck => "preact_bottleneck",
            BlockKind::Plain => "plain",
            BlockKind::PlainBottleneck => "plain_bottleneck",
        }
    }

    pub fn from_keyword(s: &str) -> Option<Self> {
        Some(match s {
            "basic" => BlockKind::Basic,
            "bottleneck" => BlockKind::Bottleneck,
            "preact_basic" => BlockKind::PreActBasic,
            "preact_bottleneck" => BlockKind::PreActBottleneck,
            "plain" => BlockKind::Plain,
            "plain_bottleneck" => BlockKind::PlainBottleneck,
            _ => return None,
        })
    }

    /// How many numbers `filters` takes: 2 for basic-style, 3 for bottleneck-style blocks.
    pub fn arity(self) -> usize {
        if self.is_bottleneck() {
            3
        } else {
            2
        }
    }

    pub fn is_bottleneck(self) -> bool {
        matches!(
            self,
            BlockKind::Bottleneck | BlockKind::PreActBottleneck | BlockKind::PlainBottleneck
        )
    }

    pub fn is_preact(self) -> bool {
        matches!(self, BlockKind::PreActBasic | BlockKind::PreActBottleneck)
    }

    pub fn has_shortcut(self) -> bool {
        !matches!(self, BlockKind::Plain | BlockKind::PlainBottleneck)
    }
}

/// Which convolution of a bottleneck carries the block's stride.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrideOn {
    /// v1: the first 1x1 (the paper, Caffe, Keras).
    Conv1,
    /// v1.5: the 3x3 (torchvision).
    Conv2,
}

impl StrideOn {
    pub const KEYWORDS: &'static [&'static str] = &["conv1", "conv2", "v1", "v1.5"];

    pub fn keyword(self) -> &'static str {
        match self {
            StrideOn::Conv1 => "conv1",
            StrideOn::Conv2 => "conv2",
        }
    }
}

/// The paper's shortcut options (section 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShortcutOption {
    /// Identity; where the shape changes, subsample and zero-pad the extra channels
    /// (parameter-free).
    A,
    /// Identity; a projection (1x1 conv) only where the shape changes.
    B,
    /// A projection on every block.
    C,
    /// Identity always, never a projection: only valid where no block changes shape
    /// (the checker reports every block where it would be needed).
    Identity,
}

impl ShortcutOption {
    pub const KEYWORDS: &'static [&'static str] = &["A", "B", "C", "identity"];

    pub fn keyword(self) -> &'static str {
        match self {
            ShortcutOption::A => "A",
            ShortcutOption::B => "B",
            ShortcutOption::C => "C",
            ShortcutOption::Identity => "identity",
        }
    }
}

/// Projection shortcut settings (torchvision: conv without bias, then BN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection {
    pub bn: bool,
    pub bias: bool,
    /// Kernel of the projection convolution (timm's `down_kernel_size`; padding keeps the
    /// size, `kernel / 2`). A stride-1, undilated projection always uses 1, as in timm.
    pub kernel: u64,
    /// ResNet-D (timm's `avg_down`): an `AvgPool2d(2, stride, ceil_mode=True,
    /// count_include_pad=False)` does the downsampling and the convolution has stride 1
    /// (`downsample.0` pool, `.1` conv, `.2` norm; no pool at stride 1).
    pub avg_pool: bool,
}

impl Default for Projection {
    fn default() -> Self {
        Projection {
            bn: true,
            bias: false,
            kernel: 1,
            avg_pool: false,
        }
    }
}

/// One stage: `repeat` blocks of one kind; one block strides (the first, or the last with
/// [`StrideAt::Last`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The paper's name (`conv3_x`); torchvision's module path is `layer{index+1}`.
    pub name: String,
    /// The block preset; [`Stage::layout`] expands it into the block as data.
    pub block: BlockKind,
    pub repeat: u64,
    /// Output channels of each convolution in the block ([`BlockKind::arity`] entries).
    pub filters: Vec<u64>,
    pub stride: u64,
    pub stride_on: StrideOn,
    pub shortcut: ShortcutOption,
    pub projection: Projection,
    /// Groups of the 3x3 convolution (ResNeXt cardinality).
    pub groups: u64,
    /// Bias of each convolution of the block ([`BlockKind::arity`] entries).
    pub bias: Vec<bool>,
    /// Channel attention after the branch's last norm layer.
    pub attention: Option<Attention>,
    /// Anti-aliased downsampling in the strided block (`layerN.0.aa`).
    pub anti_alias: Option<AntiAlias>,
    /// Dilation of the blocks' spatial convolutions (torchvision's
    /// `replace_stride_with_dilation`); the first block keeps the previous stage's dilation.
    pub dilation: u64,
    pub stride_at: StrideAt,
}

impl Stage {
    /// A stage with every other setting at its default ([`defaults`], torchvision's
    /// behaviour).
    pub fn new(
        name: impl Into<String>,
        block: BlockKind,
        repeat: u64,
        filters: &[u64],
        stride: u64,
    ) -> Stage {
        Stage {
            name: name.into(),
            block,
            repeat,
            filters: filters.to_vec(),
            stride,
            stride_on: defaults::STRIDE_ON,
            shortcut: defaults::SHORTCUT,
            projection: defaults::projection(block),
            groups: defaults::GROUPS,
            bias: vec![defaults::BIAS; block.arity()],
            attention: None,
            anti_alias: None,
            dilation: 1,
            stride_at: StrideAt::First,
        }
    }

    /// Output channels of the stage's blocks.
    pub fn out_channels(&self) -> u64 {
        *self.filters.last().unwrap_or(&0)
    }

    /// The stride of block `index` (0-based).
    pub fn block_stride(&self, index: u64) -> u64 {
        let strided = match self.stride_at {
            StrideAt::First => index == 0,
            StrideAt::Last => index + 1 == self.repeat,
        };
        if strided {
            self.stride
        } else {
            1
        }
    }

    /// Block `index` of this stage as data: the residual branch's convolutions in order
    /// and where norm, activation, attention and anti-aliasing sit. `previous_dilation`
    /// is the dilation the previous stage ended with (the first block keeps it, as in
    /// torchvision and timm). This is the one place where the block presets are expanded.
    pub fn layout(&self, index: u64, previous_dilation: u64) -> BlockLayout {
        let stride = self.block_stride(index);
        let dilation = if index == 0 {
            previous_dilation
        } else {
            self.dilation
        };
        let kind = self.block;
        let f = &self.filters;
        let g = self.groups;
        let bias = |i: usize| self.bias.get(i).copied().unwrap_or(defaults::BIAS);
        let spatial = |filters, stride, d: u64, groups, bias| BranchConv {
            filters,
            kernel: 3,
            stride,
            padding: d,
            dilation: d,
            groups,
            bias,
        };
        let pointwise = |filters, stride, bias| BranchConv {
            filters,
            kernel: 1,
            stride,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias,
        };
        // With anti-aliasing the strided convolution runs at stride 1 and the aa layer
        // after its activation strides (timm: `use_aa = aa_layer and stride == 2`).
        let aa = self.anti_alias.filter(|_| stride > 1);
        let conv_stride = if aa.is_some() { 1 } else { stride };
        let (convs, strided) = if kind.is_bottleneck() {
            let on_first = self.stride_on == StrideOn::Conv1;
            let (s1, s2) = if on_first {
                (conv_stride, 1)
            } else {
                (1, conv_stride)
            };
            (
                vec![
                    pointwise(f[0], s1, bias(0)),
                    spatial(f[1], s2, dilation, g, bias(1)),
                    pointwise(f[2], 1, bias(2)),
                ],
                usize::from(!on_first),
            )
        } else {
            // timm's BasicBlock: conv1 keeps the first dilation, conv2 has the stage's.
            (
                vec![
                    spatial(f[0], conv_stride, dilation, g, bias(0)),
                    spatial(f[1], 1, self.dilation, g, bias(1)),
                ],
                0,
            )
        };
        BlockLayout {
            order: if kind.is_preact() {
                Order::Pre
            } else {
                Order::Post
            },
            convs,
            residual: kind.has_shortcut(),
            attention: self.attention,
            anti_alias: aa.map(|kind| (kind, strided, stride)),
            stride,
        }
    }
}

/// One convolution of a block's residual branch (`conv{i+1}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchConv {
    pub filters: u64,
    pub kernel: u64,
    pub stride: u64,
    pub padding: u64,
    pub dilation: u64,
    pub groups: u64,
    pub bias: bool,
}

/// Where a block's norm layers and activations sit relative to its convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// `conv_i -> norm_i -> ReLU`, the last ReLU after the addition (the paper).
    Post,
    /// `norm_i -> ReLU -> conv_i`, nothing after the addition ("Identity Mappings"); the
    /// projection reads the pre-activated input.
    Pre,
}

/// One residual block as data, from [`Stage::layout`]: what the checker, the runtime and
/// the code generator follow, so that a new construct is one more field here and one
/// more case in each of them, not a new block kind.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockLayout {
    pub order: Order,
    pub convs: Vec<BranchConv>,
    /// False for plain blocks: no shortcut, no addition.
    pub residual: bool,
    /// After the last norm layer (post-activation) or the last convolution (pre-activation).
    pub attention: Option<Attention>,
    /// `(kind, i, stride)`: the anti-aliasing layer follows convolution `i`'s activation.
    pub anti_alias: Option<(AntiAlias, usize, u64)>,
    /// The block's stride (carried by a convolution or the anti-aliasing layer).
    pub stride: u64,
}

/// How the head reduces the last feature map before the fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadPool {
    /// Global average pooling (torchvision's `AdaptiveAvgPool2d(1)`).
    Avg,
    /// Global max pooling.
    Max,
    /// No pooling: flatten C x H x W (Keras's `Flatten`).
    Flatten,
}

impl HeadPool {
    pub const KEYWORDS: &'static [&'static str] = &["avg", "max", "flatten"];

    pub fn keyword(self) -> &'static str {
        match self {
            HeadPool::Avg => "avg",
            HeadPool::Max => "max",
            HeadPool::Flatten => "flatten",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Head {
    /// BN + ReLU on the last feature map (pre-activation networks).
    pub norm: bool,
    pub pool: HeadPool,
    /// Dropout probability before the fully connected layer (0 = none).
    pub dropout: f64,
    /// Declared input features of the fully connected layer, checked if present.
    pub in_features: Option<u64>,
    pub classes: u64,
    pub softmax: bool,
}

/// Bounds that keep every spec cheap to check: anything beyond them is an error, never
/// an allocation or a hang.
pub struct Limits;

impl Limits {
    pub const MAX_CHANNELS: u64 = 1 << 16;
    pub const MAX_SIDE: u64 = 1 << 14;
    pub const MAX_PIXELS: u64 = 1 << 26;
    pub const MAX_KERNEL: u64 = 64;
    pub const MAX_STRIDE: u64 = 64;
    pub const MAX_PADDING: u64 = 64;
    pub const MAX_REPEAT: u64 = 1024;
    pub const MAX_BLOCKS: u64 = 4096;
    pub const MAX_STAGES: usize = 64;
    pub const MAX_CLASSES: u64 = 1 << 20;
    /// The largest spec file read, in bytes, in either syntax (real specs are a few kilobytes).
    pub const MAX_SPEC_BYTES: usize = 1 << 20;
    /// Trainable parameters of the whole model (2^36, about 68.7 billion: 275 GB of f32
    /// weights, over 500 times torchvision's largest ResNet, wide_resnet101_2, with
    /// 126.9 million). Non-trainable ones (BN statistics) never exceed the trainable.
    pub const MAX_PARAMS: u64 = 1 << 36;
    /// Multiply-accumulates per sample of the whole model (2^53 - 1, about 9.0e15: the
    /// largest integer an f64 or a JSON reader holds exactly, so every total resnetc
    /// prints or writes as JSON is exact): about 300 times what wide_resnet101_2 needs at
    /// the largest input [`Limits::MAX_PIXELS`] allows, 8192x8192 (3.0e13).
    pub const MAX_MACS: u64 = (1 << 53) - 1;
}

/// torchvision's behaviour, used wherever a spec leaves something out. The printers in
/// [`crate::back`] omit a setting exactly when it equals these.
pub mod defaults {
    use super::*;

    pub const INPUT: Shape = Shape {
        c: 3,
        h: 224,
        w: 224,
    };
    pub const STEM_FILTERS: u64 = 64;
    pub const STEM_KERNEL: u64 = 7;
    pub const STEM_STRIDE: u64 = 2;
    pub const POOL_KERNEL: u64 = 3;
    pub const POOL_STRIDE: u64 = 2;
    pub const STRIDE_ON: StrideOn = StrideOn::Conv2;
    pub const SHORTCUT: ShortcutOption = ShortcutOption::B;
    pub const GROUPS: u64 = 1;
    pub const BIAS: bool = false;
    pub const INIT: Init = Init::KaimingNormal;
    pub const ZERO_INIT_RESIDUAL: bool = false;
    pub const CLASSES: u64 = 1000;

    /// Padding that keeps the size at stride 1 ("same" for odd kernels): `kernel / 2`.
    pub fn padding(kernel: u64) -> u64 {
        kernel / 2
    }

    /// torchvision's stem: conv 7x7/2 pad 3, 64 filters, no bias; BN; ReLU; max-pool 3x3/2 pad 1.
    pub fn stem() -> Stem {
        Stem {
            convs: vec![Conv {
                filters: STEM_FILTERS,
                kernel: STEM_KERNEL,
                stride: STEM_STRIDE,
                padding: 3,
                bias: false,
            }],
            bn: true,
            relu: true,
            pool: StemPool::Pool(Pool {
                kind: PoolKind::Max,
                kernel: POOL_KERNEL,
                stride: POOL_STRIDE,
                padding: 1,
                ceil_mode: false,
                anti_alias: None,
            }),
        }
    }

    /// torchvision's projection (conv without bias, then BN); pre-activation blocks
    /// project with a bare convolution, as in "Identity Mappings".
    pub fn projection(block: BlockKind) -> Projection {
        Projection {
            bn: !block.is_preact(),
            ..Projection::default()
        }
    }

    /// The first stage keeps the size, every later one halves it.
    pub fn stage_stride(index: usize) -> u64 {
        if index == 0 {
            1
        } else {
            2
        }
    }

    /// The paper's Table 1 names: `conv2_x`, `conv3_x`, ...
    pub fn stage_name(index: usize) -> String {
        format!("conv{}_x", index + 2)
    }

    /// Pre-activation networks end with BN + ReLU before pooling; others do not.
    pub fn head_norm(last_block: Option<BlockKind>) -> bool {
        last_block.is_some_and(BlockKind::is_preact)
    }

    pub fn head(last_block: Option<BlockKind>) -> Head {
        Head {
            norm: head_norm(last_block),
            pool: HeadPool::Avg,
            dropout: 0.0,
            in_features: None,
            classes: CLASSES,
            softmax: false,
        }
    }
}

/// Models built in code, for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// torchvision's resnet50: every setting at its default.
    pub fn resnet50() -> Model {
        let b = BlockKind::Bottleneck;
        Model {
            name: "resnet50".into(),
            input: defaults::INPUT,
            stem: defaults::stem(),
            stages: vec![
                Stage::new("conv2_x", b, 3, &[64, 64, 256], 1),
                Stage::new("conv3_x", b, 4, &[128, 128, 512], 2),
                Stage::new("conv4_x", b, 6, &[256, 256, 1024], 2),
                Stage::new("conv5_x", b, 3, &[512, 512, 2048], 2),
            ],
            head: Some(defaults::head(Some(b))),
            features: Vec::new(),
            init: defaults::INIT,
            zero_init_residual: false,
            batch_norm: BatchNorm::default(),
            norm: Norm::Batch,
            drop_path_rate: 0.0,
        }
    }
}
