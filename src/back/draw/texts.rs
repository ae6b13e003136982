//! What the boxes and labels of a drawing say, in the paper's words: `3x3 conv, 128, /2`
//! for a layer, `[1x1, 128; 3x3, 128, /2; 1x1, 512]` for a closed block,
//! `projection 1x1, 512, /2` for its shortcut.

use crate::valid::{AttentionKind, BlockPlan, ConvLayer, Layer};

/// `conv2` of `layer1.0.conv2`: a layer's name inside its block.
fn short(name: &str) -> &str {
    name.splitn(3, '.').nth(2).unwrap_or(name)
}

/// `, /2` for a stride above 1, nothing for 1.
fn stride_text(stride: u64) -> String {
    if stride > 1 {
        format!(", /{stride}")
    } else {
        String::new()
    }
}

/// `, 128, g32, /2`: a convolution's filters, grouping, dilation and stride.
fn conv_text(c: &ConvLayer) -> String {
    format!(
        ", {}{}{}",
        c.out_channels,
        c.options_text(),
        stride_text(c.stride)
    )
}

/// A layer as its box reads, in the paper's words: `3x3 conv, 128, /2`.
pub fn describe(l: &Layer) -> String {
    match l {
        Layer::Conv(c) => format!("{0}x{0} conv{1}", c.kernel, conv_text(c)),
        Layer::Norm(n) => format!(
            "{}{}",
            n.norm.abbreviation(),
            if n.relu { ", ReLU" } else { "" }
        ),
        Layer::Relu { .. } => "ReLU".into(),
        Layer::Pool(p) => format!(
            "{0}x{0} {1} pool{2}",
            p.pool.kernel,
            p.pool.kind.keyword(),
            stride_text(p.pool.stride)
        ),
        Layer::Blur(b) => format!("blur pool{}", stride_text(b.stride)),
        Layer::Attention(a) => match a.kind {
            AttentionKind::Se { hidden } => format!("SE {0}>{hidden}>{0}", a.channels),
            AttentionKind::Eca { kernel } => format!("ECA, k{kernel}"),
        },
        Layer::Subsample {
            stride,
            extra_channels,
            ..
        } => {
            let pad = if *extra_channels > 0 {
                format!(", +{extra_channels} zero ch")
            } else {
                String::new()
            };
            format!("subsample /{stride}{pad}")
        }
        Layer::DropPath { rate, .. } => format!("drop path {rate}"),
    }
}

/// A layer's box text: its name in the block, then [`describe`].
pub fn layer_text(l: &Layer) -> String {
    format!("{}  {}", short(l.name()), describe(l))
}

/// The class that colours a layer's box.
pub fn layer_class(l: &Layer) -> &'static str {
    match l {
        Layer::Conv(_) => "conv",
        Layer::Norm(_) | Layer::Relu { .. } => "norm",
        Layer::Pool(_) | Layer::Blur(_) | Layer::Subsample { .. } => "pool",
        Layer::Attention(_) => "attn",
        Layer::DropPath { .. } => "misc",
    }
}

/// `avg pool /2`, `blur /2`: a pooling layer inside a block's line or a shortcut's label.
fn pooling_text(l: &Layer) -> Option<String> {
    match l {
        Layer::Pool(p) => Some(format!("{} pool /{}", p.pool.kind.keyword(), p.pool.stride)),
        Layer::Blur(b) => Some(format!("blur /{}", b.stride)),
        _ => None,
    }
}

/// A closed block's box text: `layer2.0  [1x1, 128; 3x3, 128, /2; 1x1, 512]` and what
/// else its branch holds.
pub fn block_text(b: &BlockPlan) -> String {
    let mut convs = Vec::new();
    let mut extras = Vec::new();
    for l in &b.branch {
        match l {
            Layer::Conv(c) => convs.push(format!("{0}x{0}{1}", c.kernel, conv_text(c))),
            Layer::Attention(a) => extras.push(match a.kind {
                AttentionKind::Se { .. } => "SE".to_string(),
                AttentionKind::Eca { .. } => "ECA".to_string(),
            }),
            Layer::Blur(_) | Layer::Pool(_) => extras.extend(pooling_text(l)),
            Layer::DropPath { .. } => extras.push("drop path".into()),
            Layer::Norm(_) | Layer::Relu { .. } | Layer::Subsample { .. } => {}
        }
    }
    let pre = if b.pre.is_empty() { "" } else { "pre-act " };
    let extras: String = extras.iter().map(|e| format!(" + {e}")).collect();
    format!("{}  {pre}[{}]{extras}", b.name, convs.join("; "))
}

/// What a block's shortcut does, as its label reads (`None` for the identity and for
/// plain blocks): `projection 1x1, 512, /2`, `avg pool /2 + projection 1x1, 512`,
/// `zero-pad: subsample /2, +16 ch`.
pub fn shortcut_text(b: &BlockPlan) -> Option<String> {
    let layers = b.shortcut.layers();
    if layers.is_empty() {
        return None;
    }
    let parts: Vec<String> = layers
        .iter()
        .filter_map(|l| match l {
            Layer::Conv(c) => Some(format!("projection {0}x{0}{1}", c.kernel, conv_text(c))),
            Layer::Pool(_) | Layer::Blur(_) => pooling_text(l),
            Layer::Subsample {
                stride,
                extra_channels,
                ..
            } if *extra_channels > 0 => Some(format!(
                "zero-pad: subsample /{stride}, +{extra_channels} ch"
            )),
            Layer::Subsample { stride, .. } => Some(format!("subsample /{stride}")),
            _ => None,
        })
        .collect();
    Some(parts.join(" + "))
}
