//! The surface AST: what a spec *says*, before defaults are applied.
//!
//! Both front ends ([`crate::front::yaml`] and [`crate::front::dsl`]) produce this one
//! tree, so everything after parsing (defaults, arity checks, shape flow) is shared and
//! both syntaxes report the same mistakes the same way. Every field is optional and
//! carries the span it was written at; [`crate::lower`] fills in defaults and turns
//! keyword strings into enums (with "did you mean" help for typos).
//!
//! Numbers are kept as `i64`/`f64` exactly as written, so that `-3` or `10^12` reach
//! the lowering pass and get a precise range error instead of a parse error.

use crate::span::{Span, Spanned};

/// Shorthand for an optional, spanned field.
pub type Field<T> = Option<Spanned<T>>;

/// A whole spec file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecAst {
    /// Span of the whole document (used when a required section is missing).
    pub span: Span,
    /// `name: resnet50` / `model resnet50`.
    pub name: Field<String>,
    /// Input tensor, channels x height x width.
    pub input: Field<InputAst>,
    /// The stem (paper's `conv1`, plus its max-pool).
    pub stem: Field<StemAst>,
    /// Block options that apply to every stage unless the stage overrides them.
    pub defaults: Field<BlockOptionsAst>,
    /// The residual stages in order (`conv2_x` ... `conv5_x`).
    pub stages: Field<Vec<Spanned<StageAst>>>,
    /// Global pool, dropout, fully connected layer, softmax.
    pub head: Field<HeadAst>,
    /// Weight initialization scheme keyword (`kaiming_normal`, `xavier_uniform`).
    pub init: Field<String>,
    /// Zero-initialize the last BN of every residual block (torchvision's `zero_init_residual`);
    /// `true` is an error when every block is plain.
    pub zero_init_residual: Field<bool>,
    /// Batch-norm hyper-parameters shared by every BN layer.
    pub batch_norm: Field<BatchNormAst>,
    /// The normalization layer everywhere: `batch` (default) or `group` with its groups.
    pub norm: Field<NormAst>,
    /// A backbone's outputs: the stages whose feature maps it returns (no head then).
    pub features: Field<Vec<Spanned<String>>>,
    /// timm's `drop_path_rate` (stochastic depth), in [0, 1).
    pub drop_path_rate: Field<f64>,
    /// Keys the front end did not recognise, kept so lowering can report them all at
    /// once with a "did you mean" (the YAML front end stops at serde's first unknown key
    /// instead; the DSL front end collects them here).
    pub unknown: Vec<UnknownKey>,
}

/// A key that is not part of the spec language, with the section it was found in.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownKey {
    pub key: Spanned<String>,
    /// Section path such as `stem.conv` or `stages[1]`.
    pub section: String,
    /// The keys that would have been accepted there.
    pub expected: Vec<&'static str>,
}

impl UnknownKey {
    /// "unknown key `k` in SECTION", with a suggestion and the accepted keys: one wording
    /// whether lowering or the DSL front end (when another line failed) reports it.
    pub fn diagnostic(&self) -> crate::diag::Diagnostic {
        let mut d = crate::diag::Diagnostic::error(
            "E-unknown-key",
            format!("unknown key `{}` in {}", self.key.value, self.section),
        )
        .with_primary(self.key.span, "not a key of the spec language here");
        if let Some(s) = crate::diag::did_you_mean(&self.key.value, self.expected.iter().copied()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        if !self.expected.is_empty() {
            d = d.with_note(format!("accepted here: {}", self.expected.join(", ")));
        }
        d
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputAst {
    pub channels: Field<i64>,
    pub height: Field<i64>,
    pub width: Field<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchNormAst {
    pub eps: Field<f64>,
    pub momentum: Field<f64>,
}

/// `norm: batch`, `norm: {kind: group, groups: 32}` / `norm group 32`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormAst {
    /// `batch` or `group`.
    pub kind: Field<String>,
    /// GroupNorm's groups (required with `group`, an error with `batch`).
    pub groups: Field<i64>,
}

/// Channel attention as written: `se`, `eca`, or a mapping with the kind's numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttentionAst {
    /// `se` or `eca`.
    pub kind: Field<String>,
    /// SE: hidden channels = channels / reduction (default 16), rounded to `divisor` (8).
    pub reduction: Field<i64>,
    pub divisor: Field<i64>,
    /// ECA: the adaptive kernel's `gamma` (default 2) and `beta` (1).
    pub gamma: Field<i64>,
    pub beta: Field<i64>,
}

/// `bias: true` (every convolution of the block) or `bias: [false, false, true]` (one
/// per convolution).
#[derive(Clone, Debug, PartialEq)]
pub enum BiasAst {
    All(bool),
    PerConv(Vec<Spanned<bool>>),
}

/// A convolution's settings as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvAst {
    pub filters: Field<i64>,
    pub kernel: Field<i64>,
    pub stride: Field<i64>,
    pub padding: Field<i64>,
    pub bias: Field<bool>,
}

/// A pooling layer's settings as written.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolAst {
    /// `max` or `avg`.
    pub kind: Field<String>,
    pub kernel: Field<i64>,
    pub stride: Field<i64>,
    pub padding: Field<i64>,
    /// Round the output size up (Caffe's pooling) instead of down.
    pub ceil_mode: Field<bool>,
    /// `blur` or `avg`: the pooling (or convolution) runs at stride 1 and this layer
    /// strides.
    pub anti_alias: Field<String>,
    /// Kind `conv` only (ResNet-RS's stem convolution in place of the pooling).
    pub filters: Field<i64>,
    pub bias: Field<bool>,
}

/// The stem's pooling: written out, or explicitly switched off (`pool: none`).
#[derive(Clone, Debug, PartialEq)]
pub enum StemPoolAst {
    None,
    Pool(Box<PoolAst>),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StemAst {
    /// One convolution (the paper's conv1).
    pub conv: Field<ConvAst>,
    /// Several convolutions (timm's deep stems), norm + ReLU between each two; exclusive
    /// with `conv`.
    pub convs: Field<Vec<Spanned<ConvAst>>>,
    pub bn: Field<bool>,
    pub relu: Field<bool>,
    /// Absent: torchvision's max-pool 3x3/2 pad 1. `none`: no pooling (CIFAR stem). A YAML
    /// null (`pool: ~`, an empty `pool:`) is neither, and an error.
    pub pool: Field<StemPoolAst>,
}

/// Options of a residual block; set per stage or for all stages in `defaults`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockOptionsAst {
    /// Block kind keyword: `basic`, `bottleneck`, `preact_basic`, `preact_bottleneck`,
    /// `plain`, `plain_bottleneck`.
    pub block: Field<String>,
    /// Where a bottleneck puts its stride: `conv1` (v1, the paper's first 1x1) or
    /// `conv2` (v1.5, torchvision's 3x3). Aliases `v1` and `v1.5`. An error on a stage
    /// without bottlenecks.
    pub stride_on: Field<String>,
    /// Paper's shortcut option: `A` (zero-padding identity), `B` (projection where the
    /// shape changes), `C` (projection always). An error on a plain stage, which has no
    /// shortcut.
    pub shortcut: Field<String>,
    /// Settings of projection shortcuts (an error on a plain stage, like `shortcut`, and
    /// under shortcut `A` or `identity`, which never project).
    pub projection: Field<ProjectionAst>,
    /// Groups of the 3x3 convolution (ResNeXt's cardinality).
    pub groups: Field<i64>,
    /// torchvision's `width_per_group` (ResNeXt's base width): a check of the grouped 3x3's
    /// filters, which the stage's `filters` set. Accepted when the 3x3 has
    /// `planes * width_per_group / 64 * groups` filters (torchvision's rule, `planes` being
    /// the block's output channels / 4 for bottlenecks, / 1 for basic blocks), so that
    /// `groups 32, width_per_group 4` under `defaults` fits every stage of
    /// `resnext50_32x4d`; or when it has `groups * width_per_group` filters (the value read
    /// as that stage's own channels per group).
    pub width_per_group: Field<i64>,
    /// Bias on every convolution inside the blocks, or one flag per convolution.
    pub bias: Field<BiasAst>,
    /// Channel attention after the residual branch (`se`, `eca`).
    pub attention: Field<AttentionAst>,
    /// Anti-aliased downsampling in the strided block: `blur` or `avg`.
    pub anti_alias: Field<String>,
    /// Which block of the stage strides: `first` (default) or `last` (Keras's V2).
    pub stride_at: Field<String>,
    /// Dilation of the spatial convolutions (at least 1).
    pub dilation: Field<i64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectionAst {
    pub bn: Field<bool>,
    pub bias: Field<bool>,
    /// Kernel of the projection convolution (timm's `down_kernel_size`).
    pub kernel: Field<i64>,
    /// `avg` (ResNet-D's average-pool downsampling) or `none` (default).
    pub pool: Field<String>,
}

/// One stage (a `layerN` of torchvision, a `convN_x` of the paper).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageAst {
    /// Defaults to the paper's `conv{N+1}_x`; an empty or blank name is an error.
    pub name: Field<String>,
    /// Number of blocks.
    pub repeat: Field<i64>,
    /// Output channels of each convolution of the block: a pair for basic/plain blocks,
    /// a triple for bottlenecks.
    pub filters: Field<Vec<Spanned<i64>>>,
    /// Stride of the stage's first block.
    pub stride: Field<i64>,
    /// Per-stage overrides of the model-wide block options.
    pub options: BlockOptionsAst,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadAst {
    /// BN + ReLU before pooling (pre-activation networks).
    pub norm: Field<bool>,
    /// `avg` (global average, default), `max` (global max) or `flatten` (no pooling:
    /// flatten the whole feature map, as Keras's `Flatten` does).
    pub pool: Field<String>,
    pub dropout: Field<f64>,
    /// If given, checked against what the feature map flattens to.
    pub in_features: Field<i64>,
    pub classes: Field<i64>,
    pub softmax: Field<bool>,
}
