//! Graphviz DOT drawing of the network (`resnetc graph`), output shapes on the edges.
//!
//! Each residual block is a cluster; the shortcut is drawn as its own edge into the
//! block's addition, so identity and projection shortcuts are visible at a glance.

use crate::ir::{Model, Shape};
use crate::valid::{BlockPlan, Network, ShortcutPlan};
use std::fmt::Write;

struct Dot {
    out: String,
}

impl Dot {
    fn node(&mut self, id: &str, label: &str, style: &str) {
        let _ = writeln!(self.out, "  \"{id}\" [label=\"{}\"{style}];", escape(label));
    }

    fn edge(&mut self, from: &str, to: &str, shape: Shape, extra: &str) {
        let _ = writeln!(self.out, "  \"{from}\" -> \"{to}\" [label=\"{} x {} x {}\"{extra}];", shape.c, shape.h, shape.w);
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
            c if crate::diag::is_unprintable(c) => out.push_str(&format!("\\\\u{{{:x}}}", u32::from(c))),
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

    let stem = &net.stem;
    let c = &stem.conv;
    d.node("conv1", &format!("conv1\n{}x{}/{}, {}", c.kernel, c.kernel, c.stride, c.out_channels), "");
    d.edge("input", "conv1", net.input, "");
    let mut last = "conv1".to_string();
    let mut shape = c.output;
    if let Some(bn) = &stem.bn {
        d.node(&bn.name, &format!("{}\nBN{}", bn.name, if stem.relu { " + ReLU" } else { "" }), "");
        d.edge(&last, &bn.name, shape, "");
        last = bn.name.clone();
    }
    if let Some(p) = &stem.pool {
        d.node(&p.name, &format!("{}\n{}x{}/{}", p.name, p.pool.kernel, p.pool.kernel, p.pool.stride), "");
        d.edge(&last, &p.name, shape, "");
        last = p.name.clone();
        shape = p.output;
    }

    for b in &net.blocks {
        let (out, out_shape) = block(&mut d, b, &last, shape);
        last = out;
        shape = out_shape;
    }

    let h = &net.head;
    if let Some(bn) = &h.norm {
        d.node(&bn.name, &format!("{}\nBN + ReLU", bn.name), "");
        d.edge(&last, &bn.name, shape, "");
        last = bn.name.clone();
    }
    let pool = h.pool.keyword();
    d.node("pool", &format!("{pool} pool"), "");
    d.edge(&last, "pool", shape, "");
    d.node("fc", &format!("fc\n{} -> {}{}", h.fc.in_features, h.fc.out_features, if h.softmax { ", softmax" } else { "" }), "");
    d.edge("pool", "fc", h.pooled, "");
    d.node("output", &format!("output\n[{}]", h.fc.out_features), ", shape=oval");
    let _ = writeln!(d.out, "  \"fc\" -> \"output\" [label=\"{}\"];", h.fc.out_features);
    d.out.push_str("}\n");
    d.out
}

/// Draws one block; returns its output node and shape.
fn block(d: &mut Dot, b: &BlockPlan, input: &str, in_shape: Shape) -> (String, Shape) {
    let _ = writeln!(d.out, "  subgraph \"cluster_{}\" {{\n    label=\"{}\"; style=rounded; color=gray;", b.name, b.name);
    let mut last = input.to_string();
    let mut shape = in_shape;
    let preact = b.kind.is_preact();
    for (i, conv) in b.convs.iter().enumerate() {
        let bn = b.bns.get(i);
        if preact {
            if let Some(bn) = bn {
                d.node(&bn.name, &format!("{}\nBN + ReLU", short(&bn.name)), "");
                d.edge(&last, &bn.name, shape, "");
                last = bn.name.clone();
            }
        }
        let g = if conv.groups > 1 { format!(", g{}", conv.groups) } else { String::new() };
        d.node(&conv.name, &format!("{}\n{}x{}/{}, {}{g}", short(&conv.name), conv.kernel, conv.kernel, conv.stride, conv.out_channels), "");
        d.edge(&last, &conv.name, shape, "");
        last = conv.name.clone();
        shape = conv.output;
        if !preact {
            if let Some(bn) = bn {
                let relu = if i + 1 < b.convs.len() { " + ReLU" } else { "" };
                d.node(&bn.name, &format!("{}\nBN{relu}", short(&bn.name)), "");
                d.edge(&last, &bn.name, shape, "");
                last = bn.name.clone();
            }
        }
    }
    let add = format!("{}.add", b.name);
    match &b.shortcut {
        ShortcutPlan::None => {
            d.node(&add, "ReLU", ", shape=circle");
            d.edge(&last, &add, shape, "");
        }
        sc => {
            let label = if preact { "+" } else { "+ ReLU" };
            d.node(&add, label, ", shape=circle");
            d.edge(&last, &add, shape, "");
            match sc {
                ShortcutPlan::Projection { conv, bn } => {
                    d.node(&conv.name, &format!("{}\n1x1/{}, {}", short(&conv.name), conv.stride, conv.out_channels), ", color=blue");
                    d.edge(input, &conv.name, in_shape, ", color=blue");
                    let mut from = conv.name.clone();
                    if let Some(bn) = bn {
                        d.node(&bn.name, &format!("{}\nBN", short(&bn.name)), ", color=blue");
                        d.edge(&from, &bn.name, conv.output, ", color=blue");
                        from = bn.name.clone();
                    }
                    d.edge(&from, &add, b.output, ", color=blue");
                }
                ShortcutPlan::ZeroPad { stride, extra_channels } => {
                    let pad = format!("{}.shortcut", b.name);
                    d.node(&pad, &format!("subsample /{stride}\nzero-pad +{extra_channels}ch"), ", color=blue, style=dashed");
                    d.edge(input, &pad, in_shape, ", color=blue, style=dashed");
                    d.edge(&pad, &add, b.output, ", color=blue, style=dashed");
                }
                _ => d.edge(input, &add, in_shape, ", style=dashed"),
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
