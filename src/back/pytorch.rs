//! The PyTorch back end: a self-contained Python file (it imports only `torch`) that builds
//! the checked network as `nn.Module`s, the way torchvision's `resnet.py` reads.
//!
//! - one class per block layout the network uses (`BasicBlock`, `Bottleneck`,
//!   `PreActBottleneck`, ...; a second layout of the same kind, say a strided block with an
//!   anti-aliasing layer, gets `Bottleneck2`), whose `forward` is written out layer by layer
//!   exactly as resnetc's runtime runs the block; settings that are the same in every block
//!   of a class are literals, the others constructor arguments;
//! - small parameter-free or fixed modules when the network needs them (`BlurPool2d`,
//!   `SEModule`, `EcaModule`, `Subsample`, `DropPath`), named and computed as timm's;
//! - the model class, built with explicit block calls per stage, with the spec's
//!   initialization (torchvision's Kaiming-normal fan-out or Xavier uniform,
//!   `zero_init_residual`) and BN settings.
//!
//! Every module sits under the name resnetc's runtime gives its variables (torchvision's and
//! timm's `state_dict` keys: `layer1.0.downsample.1.weight`, `conv1.3.weight`,
//! `layer1.0.se.fc1.bias`, ...), so `model.load_state_dict(load_file(W), strict=True)` takes
//! resnetc's weights and resnetc takes the model's. A backbone returns a dict of feature
//! maps by module name (`layer3`, `layer4`), as torchvision's `IntermediateLayerGetter`.
//!
//! Spec text (the spec's path, the model's and stages' names) appears only in `#` comments,
//! through [`comment_text`]; the first two lines are fixed text, so no spec text can act as a
//! Python source-encoding declaration.

use crate::back::rust::doc_text;
use crate::ir::{HeadPool, Init, Norm, PoolKind};
use crate::valid::{AttentionKind, BlockPlan, Layer, Network, ShortcutPlan};
use crate::Compiled;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Settings of the generated file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PyOptions {
    /// The model class's name; `None` derives it from the model's name (see
    /// [`class_name`]).
    pub name: Option<String>,
    /// The spec's path as the user gave it, quoted (escaped) in the header comment.
    pub source: Option<String>,
}

/// Spec text as it may appear in a `#` comment of the generated file: one line, without
/// control characters, line separators or bidirectional controls (see
/// [`crate::back::rust::doc_text`], which this is).
pub fn comment_text(text: &str) -> String {
    doc_text(text)
}

/// Python's keywords (a class may not take these names).
const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Names the generated file defines or uses at module level, besides block classes
/// ([`BLOCK_CLASSES`]).
const RESERVED: &[&str] = &[
    "torch",
    "nn",
    "F",
    "Tensor",
    "List",
    "Dict",
    "Optional",
    "batch_norm",
    "group_norm",
    "BlurPool2d",
    "SEModule",
    "EcaModule",
    "Subsample",
    "DropPath",
    "super",
    "isinstance",
    "int",
    "float",
    "bool",
    "print",
    "object",
    "type",
];

/// The block classes the generated file may define (further layouts of a kind are numbered:
/// `Bottleneck2`).
const BLOCK_CLASSES: &[&str] = &[
    "BasicBlock",
    "Bottleneck",
    "PreActBlock",
    "PreActBottleneck",
    "PlainBlock",
    "PlainBottleneck",
];

/// Whether `name` can name the generated model class, and if not, why: an ASCII Python
/// identifier that is neither a keyword nor a name the file itself uses (`nn`, `Tensor`,
/// `Bottleneck`, `int`, ...), and that does not start with `__`.
pub fn check_class_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{}` is not a Python class name: use ASCII letters, digits and `_`, not starting with a digit",
            crate::diag::escape(name)
        ));
    }
    if KEYWORDS.contains(&name) {
        return Err(format!(
            "`{name}` is a Python keyword; choose another class name"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "`{name}` starts with `__`; choose another class name"
        ));
    }
    if RESERVED.contains(&name) || BLOCK_CLASSES.contains(&name) || is_numbered_block(name) {
        return Err(format!(
            "`{name}` is a name the generated file uses itself; choose another class name"
        ));
    }
    Ok(())
}

/// `Bottleneck2`, `BasicBlock3`, ...: the names of further block layouts.
fn is_numbered_block(name: &str) -> bool {
    BLOCK_CLASSES.iter().any(|k| {
        name.strip_prefix(k)
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
    })
}

/// The model class's name for a model name: the Rust back end's struct name
/// ([`crate::back::rust::struct_name`]) when it is a usable Python class name, with a
/// `Model` suffix otherwise (`True` -> `TrueModel`, `Bottleneck` -> `BottleneckModel`).
pub fn class_name(model_name: &str) -> String {
    let mut name = crate::back::rust::struct_name(model_name);
    // `struct_name` gives ASCII letters, digits and `_`; keywords and reserved names remain.
    for _ in 0..3 {
        if check_class_name(&name).is_ok() {
            return name;
        }
        name.push_str("Model");
    }
    "ResNetModel".to_string()
}

impl PyOptions {
    /// The class name these options give `compiled`.
    pub fn class_name(&self, compiled: &Compiled) -> String {
        match &self.name {
            Some(n) if check_class_name(n).is_ok() => n.clone(),
            _ => class_name(&compiled.model.name),
        }
    }
}

/// Why a network has no PyTorch form (never for the networks resnetc's checker produces,
/// whose module names follow a fixed pattern; kept as an error rather than a panic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the PyTorch back end cannot place layer `{0}`")]
pub struct PyError(pub String);

/// The generated Python file: what `resnetc build --target pytorch` writes.
pub fn module_source(compiled: &Compiled, opts: &PyOptions) -> Result<String, PyError> {
    let net = &compiled.network;
    let model = &compiled.model;
    let class = opts.class_name(compiled);
    let classes = block_classes(net)?;

    let mut uses = Uses::default();
    for l in net.body_layers() {
        uses.note(l);
    }
    if let Some(h) = &net.head {
        if let Some(n) = &h.norm {
            uses.note(&Layer::Norm(n.clone()));
        }
        uses.dropout = h.dropout > 0.0;
    }

    let mut out = String::new();
    let version = env!("CARGO_PKG_VERSION");
    // Lines 1 and 2 are fixed: Python reads a source encoding from either.
    let _ = writeln!(
        out,
        "# @generated by resnetc {version}: edit the spec and rebuild rather than this file."
    );
    let _ = writeln!(out, "# -*- coding: utf-8 -*-");
    if let Some(src) = &opts.source {
        let _ = writeln!(out, "# Spec: `{}`", comment_text(src));
    }
    let _ = writeln!(out, "# Model: `{}`", comment_text(&model.name));
    let _ = writeln!(
        out,
        "# Needs only `torch`. Trainable parameters: {}; the state_dict uses resnetc's (torchvision's\n\
         # and timm's) names, so `model.load_state_dict(safetensors.torch.load_file(path))` loads\n\
         # resnetc's weights.",
        crate::back::table::thousands(net.totals.trainable_params)
    );
    out.push_str("\nfrom typing import Dict, List, Optional\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import Tensor, nn\n");

    // Norm helpers.
    let bn = model.batch_norm;
    if uses.batch_norm {
        let _ = write!(
            out,
            "\n\ndef batch_norm(channels: int) -> nn.BatchNorm2d:\n    \
             \"\"\"BatchNorm2d with the spec's settings (PyTorch's momentum convention).\"\"\"\n    \
             return nn.BatchNorm2d(channels, eps={}, momentum={})\n",
            float(bn.eps),
            float(bn.momentum)
        );
    }
    if let Some(groups) = uses.group_norm {
        let _ = write!(
            out,
            "\n\ndef group_norm(channels: int) -> nn.GroupNorm:\n    \
             \"\"\"GroupNorm with the spec's groups and eps.\"\"\"\n    \
             return nn.GroupNorm({groups}, channels, eps={})\n",
            float(bn.eps)
        );
    }
    if uses.blur {
        out.push_str(BLUR);
    }
    if uses.se {
        out.push_str(SE);
    }
    if uses.eca {
        out.push_str(ECA);
    }
    if uses.subsample {
        out.push_str(SUBSAMPLE);
    }
    if uses.drop_path {
        out.push_str(DROP_PATH);
    }
    for c in &classes {
        out.push_str(&c.source(net));
    }
    out.push_str(&model_class(compiled, &class, &classes)?);
    Ok(out)
}

/// Which helpers the file needs.
#[derive(Default)]
struct Uses {
    batch_norm: bool,
    group_norm: Option<u64>,
    blur: bool,
    se: bool,
    eca: bool,
    subsample: bool,
    drop_path: bool,
    dropout: bool,
}

impl Uses {
    fn note(&mut self, l: &Layer) {
        match l {
            Layer::Norm(n) => match n.norm {
                Norm::Batch => self.batch_norm = true,
                Norm::Group { groups } => self.group_norm = Some(groups),
            },
            Layer::Blur(_) => self.blur = true,
            Layer::Attention(a) => match a.kind {
                AttentionKind::Se { .. } => self.se = true,
                AttentionKind::Eca { .. } => self.eca = true,
            },
            Layer::Subsample { .. } => self.subsample = true,
            Layer::DropPath { .. } => self.drop_path = true,
            _ => {}
        }
    }
}

const BLUR: &str = r#"

class BlurPool2d(nn.Module):
    """timm's BlurPool2d: reflect padding, then a fixed [1, 2, 1] x [1, 2, 1] / 16 filter per
    channel with the stride. The filter is a non-persistent buffer, not in the state_dict."""

    def __init__(self, channels: int, stride: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.padding = (stride - 1 + 2) // 2
        taps = torch.tensor([1.0, 2.0, 1.0])
        filt = torch.outer(taps, taps) / 16.0
        self.register_buffer("filt", filt.reshape(1, 1, 3, 3).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        p = self.padding
        x = F.pad(x, [p, p, p, p], mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=self.channels)
"#;

const SE: &str = r#"

class SEModule(nn.Module):
    """Squeeze-and-excitation (timm's SEModule): global mean, 1x1 conv, ReLU, 1x1 conv,
    sigmoid gate."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.relu(self.fc1(s)))
        return x * torch.sigmoid(s)
"#;

const ECA: &str = r#"

class EcaModule(nn.Module):
    """Efficient channel attention (timm's EcaModule): global mean, a 1-D convolution across
    channels, sigmoid gate."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        s = x.mean((2, 3)).view(n, 1, -1)
        s = self.conv(s)
        return x * torch.sigmoid(s).view(n, -1, 1, 1)
"#;

const SUBSAMPLE: &str = r#"

class Subsample(nn.Module):
    """A parameter-free shortcut: x[:, :, ::stride, ::stride], then extra zero channels (the
    paper's option A; without extra channels, Keras's strided identity)."""

    def __init__(self, stride: int, extra_channels: int = 0) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels > 0:
            x = F.pad(x, [0, 0, 0, 0, 0, self.extra_channels])
        return x
"#;

const DROP_PATH: &str = r#"

class DropPath(nn.Module):
    """Stochastic depth (timm's drop_path): in training, each sample's branch is zeroed with
    probability `rate` and the others scaled by 1 / (1 - rate)."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate <= 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty([x.shape[0], 1, 1, 1]).bernoulli_(keep)
        return x * (mask / keep)
"#;

/// A float as Python reads it (Rust's `Debug`: `0.1`, `1e-5`, `1.001e-5`).
fn float(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A hyper-parameter value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Val {
    Int(u64),
    Bool(bool),
    Float(f64),
}

impl Val {
    fn lit(self) -> String {
        match self {
            Val::Int(v) => v.to_string(),
            Val::Bool(b) => py_bool(b).to_string(),
            Val::Float(f) => float(f),
        }
    }

    fn ty(self) -> &'static str {
        match self {
            Val::Int(_) => "int",
            Val::Bool(_) => "bool",
            Val::Float(_) => "float",
        }
    }
}

/// One module attribute of a class: a layer, or an `nn.Sequential` of slots
/// (`conv1.0`, `conv1.1`, ...; a norm's ReLU takes the next index; gaps are `nn.Identity`).
#[derive(Debug)]
enum Attr<'a> {
    Single(&'a Layer),
    Seq(Vec<Slot<'a>>),
}

#[derive(Debug, Clone, Copy)]
enum Slot<'a> {
    Layer(&'a Layer),
    Relu,
    Identity,
}

/// Groups `layers` (names relative to `prefix`) into module attributes, in order.
fn group<'a>(layers: &[&'a Layer], prefix: &str) -> Result<Vec<(String, Attr<'a>)>, PyError> {
    let mut out: Vec<(String, Attr<'a>)> = Vec::new();
    let mut seq_slots: Vec<BTreeMap<u64, Slot<'a>>> = Vec::new();
    let mut seq_of: Vec<Option<usize>> = Vec::new();
    for &l in layers {
        let bad = || PyError(l.name().to_string());
        let rel = l.name().strip_prefix(prefix).ok_or_else(bad)?;
        let (top, rest) = match rel.split_once('.') {
            Some((t, r)) => (t, Some(r)),
            None => (rel, None),
        };
        if !is_attr_name(top) {
            return Err(bad());
        }
        match rest {
            None => {
                if out.iter().any(|(n, _)| n == top) {
                    return Err(bad());
                }
                out.push((top.to_string(), Attr::Single(l)));
                seq_of.push(None);
            }
            Some(index) => {
                let i: u64 = index.parse().map_err(|_| bad())?;
                if i > 64 {
                    return Err(bad());
                }
                let last_is_this = out
                    .last()
                    .is_some_and(|(n, a)| n == top && matches!(a, Attr::Seq(_)));
                if !last_is_this {
                    if out.iter().any(|(n, _)| n == top) {
                        return Err(bad());
                    }
                    out.push((top.to_string(), Attr::Seq(Vec::new())));
                    seq_of.push(Some(seq_slots.len()));
                    seq_slots.push(BTreeMap::new());
                }
                let slots = seq_of
                    .last()
                    .copied()
                    .flatten()
                    .and_then(|s| seq_slots.get_mut(s))
                    .ok_or_else(bad)?;
                if slots.insert(i, Slot::Layer(l)).is_some() {
                    return Err(bad());
                }
                if matches!(l, Layer::Norm(n) if n.relu)
                    && slots.insert(i + 1, Slot::Relu).is_some()
                {
                    return Err(bad());
                }
            }
        }
    }
    for ((_, attr), seq) in out.iter_mut().zip(&seq_of) {
        if let (Attr::Seq(v), Some(s)) = (attr, seq) {
            let slots = &seq_slots[*s];
            let max = slots.keys().next_back().copied().unwrap_or(0);
            *v = (0..=max)
                .map(|i| slots.get(&i).copied().unwrap_or(Slot::Identity))
                .collect();
        }
    }
    Ok(out)
}

/// The module names resnetc's checker gives: lowercase ASCII identifiers.
fn is_attr_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !KEYWORDS.contains(&s)
}

/// How a layer's hyper-parameters are written: `k(layer_rel_name, attribute, value)`
/// gives the text; channel counts come from `ch`.
fn layer_expr(
    l: &Layer,
    ch_in: &str,
    ch_out: &str,
    k: &mut dyn FnMut(&str, Val) -> String,
) -> String {
    match l {
        Layer::Conv(c) => {
            let mut s = format!(
                "nn.Conv2d({ch_in}, {ch_out}, kernel_size={}",
                k("kernel", Val::Int(c.kernel))
            );
            for (attr, v, default) in [
                ("stride", Val::Int(c.stride), Val::Int(1)),
                ("padding", Val::Int(c.padding), Val::Int(0)),
                ("dilation", Val::Int(c.dilation), Val::Int(1)),
                ("groups", Val::Int(c.groups), Val::Int(1)),
            ] {
                let text = k(attr, v);
                if text != default.lit() {
                    let _ = write!(s, ", {attr}={text}");
                }
            }
            let _ = write!(s, ", bias={})", k("bias", Val::Bool(c.bias)));
            s
        }
        Layer::Norm(n) => match n.norm {
            Norm::Batch => format!("batch_norm({ch_in})"),
            Norm::Group { .. } => format!("group_norm({ch_in})"),
        },
        Layer::Relu { .. } => "nn.ReLU(inplace=True)".into(),
        Layer::Pool(p) => {
            let q = p.pool;
            let mut s = match q.kind {
                PoolKind::Max => "nn.MaxPool2d(".to_string(),
                PoolKind::Avg => "nn.AvgPool2d(".to_string(),
            };
            let _ = write!(
                s,
                "kernel_size={}, stride={}, padding={}",
                k("kernel", Val::Int(q.kernel)),
                k("stride", Val::Int(q.stride)),
                k("padding", Val::Int(q.padding))
            );
            let ceil = k("ceil_mode", Val::Bool(q.ceil_mode));
            if ceil != "False" {
                let _ = write!(s, ", ceil_mode={ceil}");
            }
            if q.kind == PoolKind::Avg {
                let cip = k("count_include_pad", Val::Bool(q.count_include_pad));
                if cip != "True" {
                    let _ = write!(s, ", count_include_pad={cip}");
                }
            }
            s.push(')');
            s
        }
        Layer::Blur(b) => format!(
            "BlurPool2d({ch_in}, stride={})",
            k("stride", Val::Int(b.stride))
        ),
        Layer::Attention(a) => match a.kind {
            AttentionKind::Se { hidden } => {
                format!("SEModule({ch_in}, {})", k("hidden", Val::Int(hidden)))
            }
            AttentionKind::Eca { kernel } => {
                format!("EcaModule({})", k("kernel", Val::Int(kernel)))
            }
        },
        Layer::Subsample {
            stride,
            extra_channels,
            ..
        } => {
            let extra = k("extra_channels", Val::Int(*extra_channels));
            if extra == "0" {
                format!("Subsample({})", k("stride", Val::Int(*stride)))
            } else {
                format!("Subsample({}, {extra})", k("stride", Val::Int(*stride)))
            }
        }
        Layer::DropPath { rate, .. } => format!("DropPath({})", k("rate", Val::Float(*rate))),
    }
}

/// The output channels of a layer (for layers that change them: convolutions and
/// zero-padding shortcuts).
fn out_channels(l: &Layer) -> Option<u64> {
    match l {
        Layer::Conv(c) => Some(c.out_channels),
        Layer::Subsample { output, .. } => Some(output.c),
        _ => None,
    }
}

/// A module expression with every value a literal (stem, head, shortcuts).
fn literal_expr(l: &Layer, c_in: u64) -> String {
    let out = out_channels(l).unwrap_or(c_in);
    layer_expr(l, &c_in.to_string(), &out.to_string(), &mut |_, v| v.lit())
}

fn literal_attr(attr: &Attr, c_in: &mut u64, multiline: bool) -> String {
    match attr {
        Attr::Single(l) => {
            let s = literal_expr(l, *c_in);
            *c_in = out_channels(l).unwrap_or(*c_in);
            s
        }
        Attr::Seq(slots) => {
            let parts: Vec<String> = slots
                .iter()
                .map(|s| match s {
                    Slot::Layer(l) => {
                        let e = literal_expr(l, *c_in);
                        *c_in = out_channels(l).unwrap_or(*c_in);
                        e
                    }
                    Slot::Relu => "nn.ReLU(inplace=True)".into(),
                    Slot::Identity => "nn.Identity()".into(),
                })
                .collect();
            if multiline {
                format!(
                    "nn.Sequential(\n{},\n)",
                    indent_lines(&parts.join(",\n"), 4)
                )
            } else {
                format!("nn.Sequential({})", parts.join(", "))
            }
        }
    }
}

fn indent_lines(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The statements that run `attrs` on the variable `var`.
fn forward_lines(attrs: &[(String, Attr)], var: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, attr) in attrs {
        match attr {
            Attr::Single(Layer::Relu { .. }) => lines.push(format!("{var} = self.relu({var})")),
            Attr::Single(l) => {
                lines.push(format!("{var} = self.{name}({var})"));
                if matches!(l, Layer::Norm(n) if n.relu) {
                    lines.push(format!("{var} = self.relu({var})"));
                }
            }
            Attr::Seq(_) => lines.push(format!("{var} = self.{name}({var})")),
        }
    }
    lines
}

// ---------------------------------------------------------------------------------------
// Block classes.

/// A block's shortcut as its class sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ShortcutKey {
    /// Plain blocks.
    None,
    /// An identity shortcut (joins a class with a module shortcut).
    Identity,
    /// A module under `attr`, reading the pre-activated input if `from_pre`.
    Module { attr: String, from_pre: bool },
}

fn shortcut_key(b: &BlockPlan) -> Result<ShortcutKey, PyError> {
    Ok(match &b.shortcut {
        ShortcutPlan::None => ShortcutKey::None,
        ShortcutPlan::Path { layers, .. } if layers.is_empty() => ShortcutKey::Identity,
        ShortcutPlan::Path { from_pre, layers } => {
            let refs: Vec<&Layer> = layers.iter().collect();
            let attrs = group(&refs, &format!("{}.", b.name))?;
            match &attrs[..] {
                [(attr, _)] => ShortcutKey::Module {
                    attr: attr.clone(),
                    from_pre: *from_pre,
                },
                _ => return Err(PyError(layers[0].name().to_string())),
            }
        }
    })
}

/// The structure of a block's pre-activation and branch: what decides its class.
fn branch_signature(b: &BlockPlan) -> String {
    let mut s = String::new();
    for l in b.pre.iter().chain(&b.branch) {
        let rel = l
            .name()
            .strip_prefix(&format!("{}.", b.name))
            .unwrap_or(l.name());
        let tag = match l {
            Layer::Conv(_) => "conv".to_string(),
            Layer::Norm(n) => format!("{:?}/{}", n.norm, n.relu),
            Layer::Relu { .. } => "relu".into(),
            Layer::Pool(p) => format!("{:?}", p.pool.kind),
            Layer::Blur(_) => "blur".into(),
            Layer::Attention(a) => match a.kind {
                AttentionKind::Se { .. } => "se".into(),
                AttentionKind::Eca { .. } => "eca".into(),
            },
            Layer::Subsample { .. } => "sub".into(),
            Layer::DropPath { .. } => "dp".into(),
        };
        let _ = write!(s, "{rel}:{tag};");
    }
    let _ = write!(s, "pre={};relu_after_add={}", b.pre.len(), b.relu_after_add);
    s
}

/// One generated block class and the blocks it builds.
struct BlockClass<'a> {
    name: String,
    kind_doc: &'static str,
    /// The first block: the class's layout.
    proto: &'a BlockPlan,
    blocks: Vec<&'a BlockPlan>,
    /// `None` for plain blocks; else the shortcut attribute and whether it reads the
    /// pre-activated input.
    shortcut: Option<(String, bool)>,
    /// Per hyper-parameter key (`conv2.stride`): its text in the class.
    knobs: BTreeMap<String, String>,
    /// Constructor parameters beyond in_channels, filters, stride and the shortcut:
    /// (name, type, value per block).
    params: Vec<(String, &'static str, Vec<Val>)>,
    uses_stride: bool,
}

fn kind_names(kind: crate::ir::BlockKind) -> (&'static str, &'static str) {
    use crate::ir::BlockKind::*;
    match kind {
        Basic => (
            "BasicBlock",
            "Two 3x3 convolutions with a shortcut (ResNet-18/34).",
        ),
        Bottleneck => (
            "Bottleneck",
            "1x1, 3x3, 1x1 convolutions with a shortcut (ResNet-50 and deeper).",
        ),
        PreActBasic => (
            "PreActBlock",
            "Pre-activation basic block (norm and ReLU before each convolution).",
        ),
        PreActBottleneck => (
            "PreActBottleneck",
            "Pre-activation bottleneck (norm and ReLU before each convolution).",
        ),
        Plain => (
            "PlainBlock",
            "Two 3x3 convolutions without a shortcut (the paper's plain network).",
        ),
        PlainBottleneck => (
            "PlainBottleneck",
            "1x1, 3x3, 1x1 convolutions without a shortcut.",
        ),
    }
}

/// The hyper-parameters of a block's pre and branch layers, in order, as (key, value):
/// channel counts are left out (they come from `in_channels` and `filters`).
fn block_values(b: &BlockPlan) -> Vec<(String, Val)> {
    let mut out = Vec::new();
    for l in b.pre.iter().chain(&b.branch) {
        let rel = l
            .name()
            .strip_prefix(&format!("{}.", b.name))
            .unwrap_or(l.name())
            .to_string();
        layer_expr(l, "", "", &mut |attr, v| {
            out.push((format!("{rel}.{attr}"), v));
            v.lit()
        });
    }
    out
}

/// The block's stride: its largest layer stride.
fn block_stride(b: &BlockPlan) -> u64 {
    b.pre
        .iter()
        .chain(&b.branch)
        .map(|l| match l {
            Layer::Conv(c) => c.stride,
            Layer::Pool(p) => p.pool.stride,
            Layer::Blur(bl) => bl.stride,
            _ => 1,
        })
        .max()
        .unwrap_or(1)
}

fn block_classes(net: &Network) -> Result<Vec<BlockClass<'_>>, PyError> {
    let keys: Vec<(String, ShortcutKey)> = net
        .blocks
        .iter()
        .map(|b| Ok((branch_signature(b), shortcut_key(b)?)))
        .collect::<Result<_, PyError>>()?;
    // An identity block joins a class of its layout with a module shortcut (preferring
    // `downsample`), or gets one of its own with a `downsample` argument.
    let resolved: Vec<(String, ShortcutKey)> = keys
        .iter()
        .map(|(sig, key)| {
            let key = match key {
                ShortcutKey::Identity => {
                    let candidates: Vec<&ShortcutKey> = keys
                        .iter()
                        .filter(|(s, k)| s == sig && matches!(k, ShortcutKey::Module { .. }))
                        .map(|(_, k)| k)
                        .collect();
                    candidates
                        .iter()
                        .find(|k| matches!(k, ShortcutKey::Module { attr, .. } if attr == "downsample"))
                        .or(candidates.first())
                        .map(|k| (*k).clone())
                        .unwrap_or(ShortcutKey::Module { attr: "downsample".into(), from_pre: false })
                }
                k => k.clone(),
            };
            (sig.clone(), key)
        })
        .collect();
    let mut classes: Vec<BlockClass> = Vec::new();
    let mut class_keys: Vec<(String, ShortcutKey)> = Vec::new();
    for (b, key) in net.blocks.iter().zip(resolved) {
        if let Some(i) = class_keys.iter().position(|k| *k == key) {
            classes[i].blocks.push(b);
            continue;
        }
        let (base, kind_doc) = kind_names(b.kind);
        let n = classes.iter().filter(|c| c.proto.kind == b.kind).count();
        let name = if n == 0 {
            base.to_string()
        } else {
            format!("{base}{}", n + 1)
        };
        let shortcut = match &key.1 {
            ShortcutKey::Module { attr, from_pre } => Some((attr.clone(), *from_pre)),
            _ => None,
        };
        class_keys.push(key);
        classes.push(BlockClass {
            name,
            kind_doc,
            proto: b,
            blocks: vec![b],
            shortcut,
            knobs: BTreeMap::new(),
            params: Vec::new(),
            uses_stride: false,
        });
    }
    for c in &mut classes {
        c.resolve_knobs();
    }
    Ok(classes)
}

impl BlockClass<'_> {
    /// Decides, per hyper-parameter, whether it is `stride`, a literal or a parameter.
    fn resolve_knobs(&mut self) {
        let per_block: Vec<Vec<(String, Val)>> =
            self.blocks.iter().map(|b| block_values(b)).collect();
        let strides: Vec<u64> = self.blocks.iter().map(|b| block_stride(b)).collect();
        let keys: Vec<String> = per_block[0].iter().map(|(k, _)| k.clone()).collect();
        let mut pending: Vec<(String, Vec<Val>)> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let vals: Vec<Val> = per_block.iter().map(|v| v[i].1).collect();
            let constant = vals.iter().all(|v| *v == vals[0]);
            if key.ends_with(".stride")
                && vals.iter().zip(&strides).all(|(v, s)| *v == Val::Int(*s))
                && strides.iter().any(|&s| s > 1)
            {
                self.knobs.insert(key.clone(), "stride".into());
                self.uses_stride = true;
            } else if constant {
                self.knobs.insert(key.clone(), vals[0].lit());
            } else {
                pending.push((key.clone(), vals));
            }
        }
        // Parameters with the same values in every block share one name; dilation and
        // groups first, so that a padding that follows the dilation reads `dilation`.
        pending.sort_by_key(|(key, _)| !(key.ends_with(".dilation") || key.ends_with(".groups")));
        for (key, vals) in pending {
            if let Some(p) = self.params.iter().find(|p| p.2 == vals) {
                self.knobs.insert(key, p.0.clone());
                continue;
            }
            let (layer, attr) = key.split_once('.').unwrap_or((&key, ""));
            let short = matches!(attr, "dilation" | "groups");
            let mut name = if short {
                attr.to_string()
            } else {
                format!("{layer}_{attr}")
            };
            if self.params.iter().any(|p| p.0 == name)
                || ["in_channels", "filters", "stride"].contains(&name.as_str())
            {
                name = format!("{layer}_{attr}");
            }
            self.knobs.insert(key, name.clone());
            self.params.push((name, vals[0].ty(), vals));
        }
    }

    fn source(&self, _net: &Network) -> String {
        let proto = self.proto;
        let prefix = format!("{}.", proto.name);
        let mut init = Vec::new();
        let mut ch = "in_channels".to_string();
        let mut conv_index = 0;
        let layers: Vec<&Layer> = proto.pre.iter().chain(&proto.branch).collect();
        for l in &layers {
            let rel = l
                .name()
                .strip_prefix(&prefix)
                .unwrap_or(l.name())
                .to_string();
            let out = if matches!(l, Layer::Conv(_)) {
                let o = format!("filters[{conv_index}]");
                conv_index += 1;
                o
            } else {
                ch.clone()
            };
            let knobs = &self.knobs;
            let expr = layer_expr(l, &ch, &out, &mut |attr, v| {
                knobs
                    .get(&format!("{rel}.{attr}"))
                    .cloned()
                    .unwrap_or_else(|| v.lit())
            });
            ch = out;
            if !matches!(l, Layer::Relu { .. }) {
                init.push(format!("self.{rel} = {expr}"));
            }
        }
        init.push("self.relu = nn.ReLU(inplace=True)".into());
        if let Some((attr, _)) = &self.shortcut {
            init.push(format!("self.{attr} = {attr}"));
        }

        let mut sig = vec![
            "self".to_string(),
            "in_channels: int".into(),
            "filters: List[int]".into(),
        ];
        if self.uses_stride {
            sig.push("stride: int = 1".into());
        }
        if let Some((attr, _)) = &self.shortcut {
            sig.push(format!("{attr}: Optional[nn.Module] = None"));
        }
        if !self.params.is_empty() {
            sig.push("*".into());
            for (n, ty, _) in &self.params {
                sig.push(format!("{n}: {ty}"));
            }
        }

        let pre_refs: Vec<&Layer> = proto.pre.iter().collect();
        let branch_refs: Vec<&Layer> = proto.branch.iter().collect();
        let pre_attrs = group(&pre_refs, &prefix).unwrap_or_default();
        let branch_attrs = group(&branch_refs, &prefix).unwrap_or_default();
        let mut fwd = vec!["out = x".to_string()];
        fwd.extend(forward_lines(&pre_attrs, "out"));
        let reads_pre = matches!(&self.shortcut, Some((_, true)));
        if reads_pre {
            fwd.push("pre = out".into());
        }
        fwd.extend(forward_lines(&branch_attrs, "out"));
        if let Some((attr, from_pre)) = &self.shortcut {
            let src = if *from_pre { "pre" } else { "x" };
            fwd.push("identity = x".into());
            fwd.push(format!("if self.{attr} is not None:"));
            fwd.push(format!("    identity = self.{attr}({src})"));
            fwd.push("out += identity".into());
        }
        if proto.relu_after_add {
            fwd.push("out = self.relu(out)".into());
        }
        fwd.push("return out".into());
        // `out = x` then `out = self.conv1(out)` reads better as `out = self.conv1(x)`.
        if fwd.len() > 1 && fwd[1].starts_with("out = self.") && fwd[1].ends_with("(out)") {
            let first = fwd.remove(1);
            fwd[0] = format!("{}(x)", first.trim_end_matches("(out)"));
        }

        let mut s = String::new();
        let _ = write!(
            s,
            "\n\nclass {}(nn.Module):\n    \"\"\"{}",
            self.name, self.kind_doc
        );
        let _ = write!(
            s,
            "\n\n    `filters` are the output channels of the convolutions, in order.\n    \"\"\"\n\n"
        );
        let _ = writeln!(
            s,
            "    def __init__(\n{}\n    ) -> None:",
            sig.iter()
                .map(|a| format!("        {a},"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let _ = writeln!(s, "        super().__init__()");
        for line in init {
            let _ = writeln!(s, "        {line}");
        }
        let _ = writeln!(s, "\n    def forward(self, x: Tensor) -> Tensor:");
        for line in fwd {
            let _ = writeln!(s, "        {line}");
        }
        s
    }

    /// The last norm of the pre-activation and branch: what `zero_init_residual` zeroes.
    fn last_norm(&self) -> Option<String> {
        let prefix = format!("{}.", self.proto.name);
        self.proto
            .pre
            .iter()
            .chain(&self.proto.branch)
            .rev()
            .find(|l| matches!(l, Layer::Norm(_)))
            .map(|l| {
                l.name()
                    .strip_prefix(&prefix)
                    .unwrap_or(l.name())
                    .to_string()
            })
    }

    /// The constructor call building block `b` (one of this class's).
    fn call(&self, b: &BlockPlan, index: usize) -> Result<String, PyError> {
        let filters: Vec<String> = b.convs().map(|c| c.out_channels.to_string()).collect();
        let mut args = vec![b.input.c.to_string(), format!("[{}]", filters.join(", "))];
        if self.uses_stride {
            let s = block_stride(b);
            if s != 1 {
                args.push(format!("stride={s}"));
            }
        }
        if let (Some((attr, _)), ShortcutPlan::Path { layers, .. }) = (&self.shortcut, &b.shortcut)
        {
            if !layers.is_empty() {
                let refs: Vec<&Layer> = layers.iter().collect();
                let attrs = group(&refs, &format!("{}.", b.name))?;
                let mut c_in = b.input.c;
                let exprs: Vec<String> = attrs
                    .iter()
                    .map(|(_, a)| literal_attr(a, &mut c_in, false))
                    .collect();
                args.push(format!("{attr}={}", exprs.join("")));
            }
        }
        for (name, _, vals) in &self.params {
            args.push(format!("{name}={}", vals[index].lit()));
        }
        Ok(format!("{}({})", self.name, args.join(", ")))
    }
}

// ---------------------------------------------------------------------------------------
// The model class.

fn model_class(
    compiled: &Compiled,
    class: &str,
    classes: &[BlockClass],
) -> Result<String, PyError> {
    let net = &compiled.network;
    let model = &compiled.model;
    let mut s = String::new();
    let _ = write!(
        s,
        "\n\n# The model `{}`.\nclass {class}(nn.Module):\n",
        comment_text(&model.name)
    );
    let i = net.input;
    let what = if net.head.is_some() {
        "Returns the logits\n    (probabilities if the spec's head has softmax; `logits` gives the scores before it)."
    } else {
        "A backbone: returns\n    a dict of feature maps by module name, as torchvision's IntermediateLayerGetter."
    };
    let _ = write!(
        s,
        "    \"\"\"Generated by resnetc. Input [N, {}, {}, {}]. {what}\"\"\"\n\n",
        i.c, i.h, i.w
    );
    let residual_classes: Vec<(&BlockClass, String)> = classes
        .iter()
        .filter(|c| c.shortcut.is_some())
        .filter_map(|c| c.last_norm().map(|n| (c, n)))
        .collect();
    let mut sig = vec!["self".to_string()];
    if let Some(h) = &net.head {
        sig.push(format!("num_classes: int = {}", h.fc.out_features));
    }
    if !residual_classes.is_empty() {
        sig.push(format!(
            "zero_init_residual: bool = {}",
            py_bool(model.zero_init_residual)
        ));
    }
    let _ = writeln!(s, "    def __init__({}) -> None:", sig.join(", "));
    let _ = writeln!(s, "        super().__init__()");
    let mut body: Vec<String> = Vec::new();
    // Stem.
    let stem: Vec<&Layer> = net.stem.layers.iter().collect();
    let stem_attrs = group(&stem, "")?;
    let mut c_in = net.input.c;
    let mut relu_declared = false;
    for (name, attr) in &stem_attrs {
        let relu_after = match attr {
            Attr::Single(Layer::Relu { .. }) => true,
            Attr::Single(Layer::Norm(n)) => n.relu,
            _ => false,
        };
        if !matches!(attr, Attr::Single(Layer::Relu { .. })) {
            body.push(format!(
                "self.{name} = {}",
                literal_attr(attr, &mut c_in, true)
            ));
        }
        if relu_after && !relu_declared {
            body.push("self.relu = nn.ReLU(inplace=True)".into());
            relu_declared = true;
        }
    }
    if !relu_declared {
        body.push("self.relu = nn.ReLU(inplace=True)".into());
    }
    // Stages.
    let mut layer_names: Vec<(String, usize)> = Vec::new();
    for (si, stage) in net.stages.iter().enumerate() {
        let blocks: Vec<&BlockPlan> = net.blocks.iter().filter(|b| b.stage == si).collect();
        if blocks.is_empty() {
            continue;
        }
        let module = &stage.module;
        if !is_attr_name(module) {
            return Err(PyError(module.clone()));
        }
        let mut calls = Vec::new();
        for b in &blocks {
            if b.name != format!("{module}.{}", b.index) {
                return Err(PyError(b.name.clone()));
            }
            let (class, index) = classes
                .iter()
                .find_map(|c| {
                    c.blocks
                        .iter()
                        .position(|x| std::ptr::eq(*x, *b))
                        .map(|i| (c, i))
                })
                .ok_or_else(|| PyError(b.name.clone()))?;
            calls.push(class.call(b, index)?);
        }
        body.push(format!(
            "# Stage `{}`: {} block{}.",
            comment_text(&stage.name),
            blocks.len(),
            if blocks.len() == 1 { "" } else { "s" }
        ));
        // Runs of the same call become a comprehension.
        let mut items = Vec::new();
        let mut k = 0;
        while k < calls.len() {
            let run = calls[k..].iter().take_while(|c| **c == calls[k]).count();
            if run >= 3 {
                items.push(format!("*[{} for _ in range({run})]", calls[k]));
            } else {
                items.extend(calls[k..k + run].iter().cloned());
            }
            k += run;
        }
        body.push(format!(
            "self.{module} = nn.Sequential(\n{}\n)",
            indent_lines(&(items.join(",\n") + ","), 4)
        ));
        layer_names.push((module.clone(), si));
    }
    // Head.
    if let Some(h) = &net.head {
        if let Some(n) = &h.norm {
            body.push(format!(
                "self.{} = {}",
                n.name,
                literal_expr(&Layer::Norm(n.clone()), n.channels)
            ));
        }
        match h.pool {
            HeadPool::Avg => body.push("self.avgpool = nn.AdaptiveAvgPool2d((1, 1))".into()),
            HeadPool::Max => body.push("self.maxpool_head = nn.AdaptiveMaxPool2d((1, 1))".into()),
            HeadPool::Flatten => {}
        }
        if h.dropout > 0.0 {
            body.push(format!("self.dropout = nn.Dropout(p={})", float(h.dropout)));
        }
        body.push(format!(
            "self.fc = nn.Linear({}, num_classes)",
            h.fc.in_features
        ));
    }
    // Initialization.
    body.push(String::new());
    match model.init {
        Init::KaimingNormal => {
            body.push(
                "# torchvision's initialization: Kaiming-normal (fan-out) convolutions, norm"
                    .into(),
            );
            body.push(
                "# weight 1 and bias 0, the fully connected layer as nn.Linear's default.".into(),
            );
            body.push("for m in self.modules():".into());
            body.push("    if isinstance(m, nn.Conv2d):".into());
            body.push("        nn.init.kaiming_normal_(m.weight, mode=\"fan_out\", nonlinearity=\"relu\")".into());
            body.push("    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):".into());
            body.push("        nn.init.constant_(m.weight, 1)".into());
            body.push("        nn.init.constant_(m.bias, 0)".into());
        }
        Init::XavierUniform => {
            body.push(
                "# Xavier-uniform convolutions and fully connected layer with zero biases, norm"
                    .into(),
            );
            body.push("# weight 1 and bias 0.".into());
            body.push("for m in self.modules():".into());
            body.push("    if isinstance(m, (nn.Conv2d, nn.Linear)):".into());
            body.push("        nn.init.xavier_uniform_(m.weight)".into());
            body.push("        if m.bias is not None:".into());
            body.push("            nn.init.zeros_(m.bias)".into());
            body.push("    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):".into());
            body.push("        nn.init.constant_(m.weight, 1)".into());
            body.push("        nn.init.constant_(m.bias, 0)".into());
        }
    }
    if !residual_classes.is_empty() {
        body.push(
            "# Each residual block starts as its shortcut: its last norm's weight is 0.".into(),
        );
        body.push("if zero_init_residual:".into());
        body.push("    for m in self.modules():".into());
        for (j, (c, norm)) in residual_classes.iter().enumerate() {
            let kw = if j == 0 { "if" } else { "elif" };
            body.push(format!("        {kw} isinstance(m, {}):", c.name));
            body.push(format!("            nn.init.constant_(m.{norm}.weight, 0)"));
        }
    }
    for line in body {
        for l in line.lines() {
            let _ = writeln!(s, "        {l}");
        }
        if line.is_empty() {
            s.push('\n');
        }
    }

    // forward (with a softmax head, `logits` and a `forward` that applies the softmax)
    let softmax = net.head.as_ref().is_some_and(|h| h.softmax);
    let ret = if net.head.is_some() {
        "Tensor"
    } else {
        "Dict[str, Tensor]"
    };
    if softmax {
        let _ = writeln!(s, "\n    def forward(self, x: Tensor) -> Tensor:");
        let _ = writeln!(s, "        return torch.softmax(self.logits(x), dim=-1)");
        let _ = writeln!(s, "\n    def logits(self, x: Tensor) -> Tensor:");
        let _ = writeln!(
            s,
            "        \"\"\"The scores before the softmax (what a loss takes).\"\"\""
        );
    } else {
        let _ = writeln!(s, "\n    def forward(self, x: Tensor) -> {ret}:");
    }
    let mut fwd = Vec::new();
    if net.head.is_none() {
        fwd.push("features: Dict[str, Tensor] = {}".to_string());
    }
    fwd.extend(forward_lines(&stem_attrs, "x"));
    for (module, si) in &layer_names {
        fwd.push(format!("x = self.{module}(x)"));
        if let Some(f) = net.features.iter().find(|f| f.stage == *si) {
            fwd.push(format!("features[\"{}\"] = x", f.module));
        }
    }
    match &net.head {
        Some(h) => {
            if let Some(n) = &h.norm {
                fwd.push(format!("x = self.relu(self.{}(x))", n.name));
            }
            match h.pool {
                HeadPool::Avg => fwd.push("x = self.avgpool(x)".into()),
                HeadPool::Max => fwd.push("x = self.maxpool_head(x)".into()),
                HeadPool::Flatten => {}
            }
            fwd.push("x = torch.flatten(x, 1)".into());
            if h.dropout > 0.0 {
                fwd.push("x = self.dropout(x)".into());
            }
            fwd.push("x = self.fc(x)".into());
            fwd.push("return x".into());
        }
        None => fwd.push("return features".into()),
    }
    for l in fwd {
        let _ = writeln!(s, "        {l}");
    }
    Ok(s)
}

/// The training entry point appended by [`trainer_source`]: the same code for every spec.
const TRAINER: &str = include_str!("torchrun_train.py");

/// Why a network cannot be trained by the generated entry point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrainerError {
    /// The network has no PyTorch form.
    #[error(transparent)]
    Py(#[from] PyError),
    /// A backbone (`features`, no head) has no classifier to train.
    #[error("`{0}` is a backbone (it lists `features` and has no head): the training entry point trains classifiers; give the spec a head to train it")]
    Backbone(String),
}

/// The model module of [`module_source`] followed by a training entry point for one
/// process or `torchrun` (DistributedDataParallel): what `resnetc build --target torchrun`
/// writes. The appended code is fixed; only the class name (an identifier checked by
/// [`check_class_name`]) and the input shape (numbers) come from the spec.
pub fn trainer_source(compiled: &Compiled, opts: &PyOptions) -> Result<String, TrainerError> {
    if compiled.network.head.is_none() {
        return Err(TrainerError::Backbone(doc_text(&compiled.model.name)));
    }
    let mut out = module_source(compiled, opts)?;
    let i = compiled.network.input;
    let _ = write!(
        out,
        "\n\n# The model the entry point below trains, and its input [C, H, W].\nMODEL_CLASS = {}\nINPUT_SHAPE = ({}, {}, {})\n",
        opts.class_name(compiled),
        i.c,
        i.h,
        i.w
    );
    out.push_str(TRAINER);
    Ok(out)
}

/// A check of a generated file without Python, for the fuzz harness and the tests: lines 1
/// and 2 are the fixed header, no character is a control (other than the line feed), a line
/// separator or a bidirectional control, every line that is not a `#` comment is printable
/// ASCII and holds none of `spec_texts` (the model's and stages' names, the path; those of
/// at least 6 characters that are not plain identifiers, which code may hold by chance),
/// and the model class is defined once. Returns every problem found.
pub fn audit_source(source: &str, class: &str, spec_texts: &[&str]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = source.split('\n').collect();
    if !lines
        .first()
        .is_some_and(|l| l.starts_with("# @generated by resnetc ") && l.is_ascii())
    {
        problems.push("line 1 is not the fixed header".to_string());
    }
    if lines.get(1) != Some(&"# -*- coding: utf-8 -*-") {
        problems.push("line 2 is not the utf-8 declaration".to_string());
    }
    if let Some(c) = source
        .chars()
        .find(|&c| c != '\n' && (c.is_control() || crate::diag::is_unprintable(c)))
    {
        problems.push(format!("holds the character U+{:04X}", u32::from(c)));
    }
    let plain = |t: &str| t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if !line.chars().all(|c| (' '..='~').contains(&c)) {
            problems.push(format!("line {} is code with non-ASCII text", i + 1));
        }
        for t in spec_texts
            .iter()
            .filter(|t| t.chars().count() >= 6 && !plain(t))
        {
            if line.contains(*t) {
                problems.push(format!("line {} is code holding spec text", i + 1));
            }
        }
    }
    let defs = lines
        .iter()
        .filter(|l| **l == format!("class {class}(nn.Module):"))
        .count();
    if defs != 1 {
        problems.push(format!("the class `{class}` is defined {defs} times"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names() {
        assert_eq!(class_name("resnet50"), "ResNet50");
        assert_eq!(class_name("true"), "TrueModel");
        assert_eq!(class_name("bottleneck"), "BottleneckModel");
        assert_eq!(class_name("bottleneck-2"), "Bottleneck_2");
        assert!(check_class_name("Bottleneck2").is_err());
        assert!(check_class_name("class").is_err());
        assert!(check_class_name("Модель").is_err());
        assert!(check_class_name("__init__").is_err());
        assert!(check_class_name("MyNet").is_ok());
    }

    #[test]
    fn floats_read_as_python_floats() {
        assert_eq!(float(1e-5), "1e-5");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(1.001e-5), "1.001e-5");
    }
}
