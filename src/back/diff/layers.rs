//! The layer tables of A and B matched row by row: the stem, each block and the head
//! by module name, blocks by stage and index.

use super::align::align;
use super::{status, BlockChange, LayerChange, LayerInfo, Status};
use crate::valid::{BlockPlan, Layer, LayerRow, LinearLayer, Network, NormLayer};
use std::collections::BTreeMap;

/// The name of the block that a layer or state_dict key of a block belongs to
/// (`layer2.0` of `layer2.0.conv1` and of `layer2.0`): its first two parts.
pub(super) fn block_prefix(name: &str) -> &str {
    let mut parts = name.splitn(3, '.');
    match (parts.next(), parts.next()) {
        (Some(s), Some(b)) => name.get(..s.len() + 1 + b.len()).unwrap_or(name),
        _ => name,
    }
}

/// A run of layer table rows: the stem, one block, or the head.
struct Segment<'a> {
    /// `stem`, the block's name, or `head`.
    key: String,
    /// The block (with its stage's module) for a block's rows.
    block: Option<(&'a BlockPlan, &'a str)>,
    rows: Vec<&'a LayerRow>,
}

/// Splits the layer table into the stem, the blocks and the head. Rows are in execution
/// order, so each block's rows (its name, or its name and a dot, as prefix) are
/// contiguous.
fn segments(net: &Network) -> Vec<Segment<'_>> {
    let blocks: BTreeMap<&str, &BlockPlan> =
        net.blocks.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut out: Vec<Segment<'_>> = Vec::new();
    let mut seen_block = false;
    for row in &net.layers {
        let block = blocks.get(block_prefix(&row.name)).copied();
        let key = match block {
            Some(b) => {
                seen_block = true;
                b.name.as_str()
            }
            None if seen_block => "head",
            None => "stem",
        };
        match out.last_mut() {
            Some(seg) if seg.key == key => seg.rows.push(row),
            _ => out.push(Segment {
                key: key.to_string(),
                block: block.map(|b| {
                    let stage = net.stages.get(b.stage).map_or("", |s| s.module.as_str());
                    (b, stage)
                }),
                rows: vec![row],
            }),
        }
    }
    out
}

fn layer_info(r: &LayerRow) -> LayerInfo {
    LayerInfo {
        op: r.op.clone(),
        output: r.output.clone(),
        params: r.params,
        non_trainable: r.non_trainable,
        macs: r.macs,
    }
}

/// The layers of both networks, matched by name within the stem, each block and the
/// head: blocks in one spec only, every row that differs, and the number alike.
pub(super) fn compare(a: &Network, b: &Network) -> (Vec<BlockChange>, Vec<LayerChange>, usize) {
    let (layers_a, layers_b) = (by_name(a), by_name(b));
    let (sa, sb) = (segments(a), segments(b));
    let mut blocks = Vec::new();
    let mut layers = Vec::new();
    let mut same = 0;
    for (seg_a, seg_b) in align(&sa, &sb, |s| &s.key) {
        let block_name = seg_a
            .or(seg_b)
            .and_then(|s| s.block.map(|(b, _)| b.name.clone()));
        if let (Some(seg), None) | (None, Some(seg)) = (seg_a, seg_b) {
            if let Some((plan, stage)) = seg.block {
                let st = if seg_a.is_some() {
                    Status::Removed
                } else {
                    Status::Added
                };
                let sum = |f: fn(&LayerRow) -> u64| seg.rows.iter().map(|r| f(r)).sum();
                blocks.push(BlockChange {
                    name: plan.name.clone(),
                    stage: stage.to_string(),
                    status: st,
                    block: plan.kind.keyword(),
                    layers: seg.rows.len(),
                    output: [plan.output.c, plan.output.h, plan.output.w],
                    params: sum(|r| r.params),
                    non_trainable: sum(|r| r.non_trainable),
                    macs: sum(|r| r.macs),
                });
            }
        }
        let empty = Vec::new();
        let rows_a = seg_a.map_or(&empty, |s| &s.rows);
        let rows_b = seg_b.map_or(&empty, |s| &s.rows);
        for (ra, rb) in align(rows_a, rows_b, |r| &r.name) {
            let changed = match (ra, rb) {
                (Some(x), Some(y)) => row_fields_changed(
                    x,
                    y,
                    layers_a.get(x.name.as_str()).copied(),
                    layers_b.get(y.name.as_str()).copied(),
                ),
                _ => Vec::new(),
            };
            let st = status(ra.is_some(), rb.is_some(), changed.is_empty());
            if st == Status::Same {
                same += 1;
                continue;
            }
            layers.push(LayerChange {
                name: ra.or(rb).map(|r| r.name.clone()).unwrap_or_default(),
                block: block_name.clone(),
                status: st,
                a: ra.copied().map(layer_info),
                b: rb.copied().map(layer_info),
                changed,
            });
        }
    }
    (blocks, layers, same)
}

/// A layer's kind and hyper-parameters.
type Attributes = (&'static str, Vec<(&'static str, String)>);

/// A layer of the checked network that a row of the layer table shows (rows such as
/// additions and the head's pooling have none: their op text is compared instead).
#[derive(Clone, Copy)]
enum Described<'a> {
    Layer(&'a Layer),
    Norm(&'a NormLayer),
    Linear(&'a LinearLayer),
}

impl Described<'_> {
    fn attributes(self) -> Attributes {
        match self {
            Described::Layer(l) => layer_attributes(l),
            Described::Norm(n) => norm_attributes(n),
            Described::Linear(fc) => (
                "linear",
                vec![
                    ("in_features", fc.in_features.to_string()),
                    ("out_features", fc.out_features.to_string()),
                ],
            ),
        }
    }
}

fn by_name(net: &Network) -> BTreeMap<&str, Described<'_>> {
    let mut out: BTreeMap<&str, Described<'_>> = net
        .body_layers()
        .map(|l| (l.name(), Described::Layer(l)))
        .collect();
    if let Some(h) = &net.head {
        if let Some(n) = &h.norm {
            out.insert(n.name.as_str(), Described::Norm(n));
        }
        out.insert(h.fc.name.as_str(), Described::Linear(&h.fc));
    }
    out
}

fn norm_attributes(n: &NormLayer) -> Attributes {
    let norm = match n.norm {
        crate::ir::Norm::Batch => "batch".to_string(),
        crate::ir::Norm::Group { groups } => format!("group {groups}"),
    };
    (
        "norm",
        vec![
            ("norm", norm),
            ("channels", n.channels.to_string()),
            ("relu", n.relu.to_string()),
        ],
    )
}

/// One arm per layer op: the hyper-parameters a reviewer compares.
fn layer_attributes(l: &Layer) -> Attributes {
    let s = |v: u64| v.to_string();
    match l {
        Layer::Conv(c) => (
            "conv",
            vec![
                ("in_channels", s(c.in_channels)),
                ("out_channels", s(c.out_channels)),
                ("kernel", s(c.kernel)),
                ("stride", s(c.stride)),
                ("padding", s(c.padding)),
                ("dilation", s(c.dilation)),
                ("groups", s(c.groups)),
                ("bias", c.bias.to_string()),
            ],
        ),
        Layer::Norm(n) => norm_attributes(n),
        Layer::Relu { .. } => ("relu", Vec::new()),
        Layer::Pool(p) => (
            "pool",
            vec![
                ("pool", p.pool.kind.keyword().to_string()),
                ("kernel", s(p.pool.kernel)),
                ("stride", s(p.pool.stride)),
                ("padding", s(p.pool.padding)),
                ("ceil_mode", p.pool.ceil_mode.to_string()),
                ("count_include_pad", p.pool.count_include_pad.to_string()),
            ],
        ),
        Layer::Blur(b) => (
            "blur",
            vec![
                ("channels", s(b.channels)),
                ("stride", s(b.stride)),
                ("padding", s(b.padding)),
            ],
        ),
        Layer::Attention(a) => {
            let kind = match a.kind {
                crate::valid::AttentionKind::Se { hidden } => format!("se {hidden}"),
                crate::valid::AttentionKind::Eca { kernel } => format!("eca {kernel}"),
            };
            (
                "attention",
                vec![("attention", kind), ("channels", s(a.channels))],
            )
        }
        Layer::Subsample {
            stride,
            extra_channels,
            ..
        } => (
            "subsample",
            vec![
                ("stride", s(*stride)),
                ("extra_channels", s(*extra_channels)),
            ],
        ),
        Layer::DropPath { rate, .. } => ("drop_path", vec![("rate", rate.to_string())]),
    }
}

fn row_fields_changed(
    a: &LayerRow,
    b: &LayerRow,
    layer_a: Option<Described<'_>>,
    layer_b: Option<Described<'_>>,
) -> Vec<&'static str> {
    // A row shows every hyper-parameter of its layer in its op text or its output shape:
    // equal rows are equal layers, and most rows are equal (the common, cheap case).
    if a == b {
        return Vec::new();
    }
    let mut changed: Vec<&'static str> = Vec::new();
    match (
        layer_a.map(Described::attributes),
        layer_b.map(Described::attributes),
    ) {
        (Some((kind_a, va)), Some((kind_b, vb))) if kind_a == kind_b => {
            changed.extend(
                va.iter()
                    .zip(vb)
                    .filter(|((_, x), (_, y))| x != y)
                    .map(|((name, _), _)| *name),
            );
            // Every difference of the op text is a hyper-parameter above; this only
            // guards a layer whose text shows something not listed there.
            if changed.is_empty() && a.op != b.op {
                changed.push("op");
            }
        }
        _ if a.op != b.op => changed.push("op"),
        _ => {}
    }
    let fields: [(&'static str, bool); 4] = [
        ("output", a.output != b.output),
        ("params", a.params != b.params),
        ("non_trainable", a.non_trainable != b.non_trainable),
        ("macs", a.macs != b.macs),
    ];
    changed.extend(
        fields
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name)),
    );
    changed
}
