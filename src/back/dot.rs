//! Graphviz DOT drawing of the network (`resnetc graph`), output shapes on the edges.
//!
//! Each residual block is a cluster; the shortcut is drawn as its own edge into the
//! block's addition, so identity and projection shortcuts are visible at a glance.

use crate::ir::{Model, Shape};
use crate::valid::{AttentionKind, BlockPlan, Layer, Network, ShortcutPlan};
use std::fmt::Write;

struct Dot {
    out: String,
}

impl Dot {
    fn node(&mut self, id: &str, label: &str, style: &str) {
        let _ = writeln!(self.out, "  \"{id}\" [label=\"{}\"{style}];", escape(label));
    }

    fn edge(&mut self, from: &str, to: &str, shape: Shape, extra: &str) {
        let _ = writeln!(
            self.out,
            "  \"{from}\" -> \"{to}\" [label=\"{} x {} x {}\"{extra}];",
            shape.c, shape.h, shape.w
        );
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            // Other controls, bidi marks and separators from a spec's names are shown as
            // `\u{1b}` (the backslash escaped, so Graphviz prints it as it is).
            c if crate::diag::is_unprintable(c) => {
                out.push_str(&format!("\\\\u{{{:x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out
}

/// The whole network as a DOT digraph.
pub fn graph(model: &Model, net: &Network) -> String {
    let mut d = Dot { out: String::new() };
    let _ = writeln!(d.out, "digraph \"{}\" {{", escape(&model.name));
    let _ = writeln!(d.out, "  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];");
    d.node("input", &format!("input\n{}", net.input), ", shape=oval");

    let (mut last, mut shape) = chain(&mut d, &net.stem.layers, "input", net.input, "");

    for b in &net.blocks {
        let (out, out_shape) = block(&mut d, b, &last, shape);
        last = out;
        shape = out_shape;
    }

    match &net.head {
        Some(h) => {
        if let Some(bn) = &h.norm {
            d.node(&bn.name, &format!("{}\nBN + ReLU", bn.name), "");
            d.edge(&last, &bn.name, shape, "");
            last = bn.name.clone();
        }
        let pool = h.pool.keyword();
        d.node("pool", &format!("{pool} pool"), "");
        d.edge(&last, "pool", shape, "");
        d.node(
            "fc",
            &format!(
                "fc\n{} -> {}{}",
                h.fc.in_features,
                h.fc.out_features,
                if h.softmax { ", softmax" } else { "" }
            ),
            "",
        );
        d.edge("pool", "fc", h.pooled, "");
        d.node(
            "output",
            &format!("output\n[{}]", h.fc.out_features),
            ", shape=oval",
        );
        let _ = writeln!(
            d.out,
            "  \"fc\" -> \"output\" [label=\"{}\"];",
            h.fc.out_features
        );
        }
        None => {
            // A backbone: one output per feature map, from its stage's last block.
            for f in &net.features {
                let Some(b) = net.blocks.iter().rfind(|b| b.stage == f.stage) else { continue };
                let out = format!("output {}", f.module);
                d.node(&out, &format!("{}\n{}", f.module, escape(&f.name)), ", shape=oval");
                d.edge(&format!("{}.add", b.name), &out, f.shape, "");
            }
        }
    }
    d.out.push_str("}\n");
    d.out
}

/// What a node shows under the layer's name.
fn describe(l: &Layer) -> String {
    match l {
        Layer::Conv(c) => format!(
            "{}x{}/{}, {}{}",
            c.kernel,
            c.kernel,
            c.stride,
            c.out_channels,
            c.options_text()
        ),
        Layer::Norm(n) => format!(
            "{}{}",
            n.norm.abbreviation(),
            if n.relu { " + ReLU" } else { "" }
        ),
        Layer::Relu { .. } => "ReLU".into(),
        Layer::Pool(p) => format!("{}x{}/{}", p.pool.kernel, p.pool.kernel, p.pool.stride),
        Layer::Blur(b) => format!("blur 3x3/{}", b.stride),
        Layer::Attention(a) => match a.kind {
            AttentionKind::Se { hidden } => format!("SE {0} -> {hidden} -> {0}", a.channels),
            AttentionKind::Eca { kernel } => format!("ECA k{kernel}"),
        },
        Layer::Subsample {
            stride,
            extra_channels: 0,
            ..
        } => format!("subsample /{stride}"),
        Layer::Subsample {
            stride,
            extra_channels,
            ..
        } => format!("subsample /{stride}\nzero-pad +{extra_channels}ch"),
        Layer::DropPath { rate, .. } => format!("drop path {rate}"),
    }
}

/// Draws `layers` one after the other from node `from`; returns the last node and shape.
fn chain(d: &mut Dot, layers: &[Layer], from: &str, shape: Shape, style: &str) -> (String, Shape) {
    let mut last = from.to_string();
    let mut shape = shape;
    for l in layers {
        let extra = if matches!(l, Layer::Subsample { .. }) {
            format!("{style}, style=dashed")
        } else {
            style.to_string()
        };
        d.node(
            l.name(),
            &format!("{}\n{}", short(l.name()), describe(l)),
            &extra,
        );
        d.edge(&last, l.name(), shape, &extra);
        last = l.name().to_string();
        shape = l.output();
    }
    (last, shape)
}

/// Draws one block; returns its output node and shape.
fn block(d: &mut Dot, b: &BlockPlan, input: &str, in_shape: Shape) -> (String, Shape) {
    let _ = writeln!(
        d.out,
        "  subgraph \"cluster_{}\" {{\n    label=\"{}\"; style=rounded; color=gray;",
        b.name, b.name
    );
    let (pre, pre_shape) = chain(d, &b.pre, input, in_shape, "");
    let (last, shape) = chain(d, &b.branch, &pre, pre_shape, "");
    let add = format!("{}.add", b.name);
    match &b.shortcut {
        ShortcutPlan::None => {
            d.node(&add, "ReLU", ", shape=circle");
            d.edge(&last, &add, shape, "");
        }
        ShortcutPlan::Path { from_pre, layers } => {
            let label = if b.relu_after_add { "+ ReLU" } else { "+" };
            d.node(&add, label, ", shape=circle");
            d.edge(&last, &add, shape, "");
            if layers.is_empty() {
                d.edge(input, &add, in_shape, ", style=dashed");
            } else {
                let (from, from_shape) = if *from_pre {
                    (pre.as_str(), pre_shape)
                } else {
                    (input, in_shape)
                };
                let (end, _) = chain(d, layers, from, from_shape, ", color=blue");
                let style = if matches!(layers[..], [Layer::Subsample { .. }]) {
                    ", color=blue, style=dashed"
                } else {
                    ", color=blue"
                };
                d.edge(&end, &add, b.output, style);
            }
        }
    }
    let _ = writeln!(d.out, "  }}");
    (add, b.output)
}

/// `layer1.0.conv1` -> `conv1` inside its block's cluster.
fn short(name: &str) -> &str {
    name.splitn(3, '.').nth(2).unwrap_or(name)
}
