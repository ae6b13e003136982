//! Layer tables: one row per layer (`resnetc table`), the paper's Table 1 view
//! (`--stages`), and the same data as JSON (`--format json`).

use crate::ir::{BlockKind, HeadPool, Model};
use crate::valid::{HeadPlan, Layer, LayerRow, Network, StageSummary};
use std::fmt::Write;

/// The convention every table states in its header.
pub const MACS_NOTE: &str =
    "MACs = multiply-accumulates of convolutions and the fully connected layer for one image (FLOPs = 2 x MACs); BN, ReLU, pooling and additions are not counted";

/// `12345678` -> `12,345,678`.
pub fn thousands(n: u64) -> String {
    grouped(u128::from(n))
}

/// [`thousands`] for totals that may exceed `u64` (the checker's limit messages).
pub fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The per-layer table with totals.
pub fn layers(model: &Model, net: &Network) -> String {
    let mut out = String::new();
    header(&mut out, model, net);
    let rows: Vec<[String; 5]> = net.layers.iter().map(layer_cells).collect();
    let titles = ["layer", "op", "output", "params", "MACs"];
    columns(
        &mut out,
        titles,
        &rows,
        [false, false, false, true, true],
        true,
    );
    totals(&mut out, net);
    out
}

/// One row of the layer table as printed: name, op, output, params and MACs (`-` for none).
pub fn layer_cells(r: &LayerRow) -> [String; 5] {
    let count = |n: u64| if n > 0 { thousands(n) } else { "-".into() };
    [
        r.name.clone(),
        r.op.clone(),
        shape_list(&r.output),
        count(r.params),
        count(r.macs),
    ]
}

/// `[256, 56, 56]`: an output shape as the tables print it.
pub fn shape_list(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Writes aligned columns: a title row, an optional rule under it and after the rows.
fn columns(
    out: &mut String,
    titles: [&str; 5],
    rows: &[[String; 5]],
    right: [bool; 5],
    rules: bool,
) {
    let mut widths = titles.map(str::len);
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |out: &mut String, cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(right)
            .map(|((c, w), r)| {
                if r {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
    line(out, titles);
    if rules {
        let _ = writeln!(out, "{rule}");
    }
    for r in rows {
        line(out, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    if rules {
        let _ = writeln!(out, "{rule}");
    }
}

fn header(out: &mut String, model: &Model, net: &Network) {
    let i = net.input;
    // Names from the spec are shown with controls and bidi marks escaped (`\u{1b}`).
    let _ = writeln!(
        out,
        "{}: input [{}, {}, {}] -> output {}",
        crate::diag::escape(&model.name),
        i.c,
        i.h,
        i.w,
        shape_list(&net.output())
    );
    let _ = writeln!(out, "{MACS_NOTE}");
    let _ = writeln!(out);
}

fn totals(out: &mut String, net: &Network) {
    let t = &net.totals;
    let w = thousands(t.macs)
        .len()
        .max(thousands(t.trainable_params).len());
    let _ = writeln!(
        out,
        "trainable params      {:>w$}",
        thousands(t.trainable_params)
    );
    let _ = writeln!(
        out,
        "non-trainable params  {:>w$}  (BN running mean and variance)",
        thousands(t.non_trainable_params)
    );
    let _ = writeln!(
        out,
        "MACs                  {:>w$}  ({:.2} GMACs, {:.2} GFLOPs)",
        thousands(t.macs),
        t.macs as f64 / 1e9,
        2.0 * t.macs as f64 / 1e9
    );
}

/// The paper's Table 1: stem, one row per stage, head.
pub fn stages(model: &Model, net: &Network) -> String {
    let mut out = String::new();
    header(&mut out, model, net);
    let mut rows: Vec<[String; 5]> = Vec::new();
    for l in &net.stem.layers {
        let first = rows.is_empty();
        let label = if first {
            "conv1".to_string()
        } else {
            String::new()
        };
        let o = l.output();
        let Some(config) = stem_config(l) else {
            continue;
        };
        let macs = match l {
            Layer::Conv(c) => thousands(c.macs()),
            _ => String::new(),
        };
        rows.push([
            label,
            format!("{}x{}", o.h, o.w),
            config,
            String::new(),
            macs,
        ]);
    }
    for s in &net.stages {
        rows.push([
            crate::diag::escape(&s.name).into_owned(),
            format!("{}x{}", s.output.h, s.output.w),
            block_config(s),
            format!("x{}", s.repeat),
            thousands(s.macs),
        ]);
    }
    if let Some(h) = &net.head {
        rows.push([
            "head".into(),
            format!("{}x{}", h.pooled.h, h.pooled.w),
            head_config(h),
            String::new(),
            thousands(h.fc.macs()),
        ]);
    }
    for f in &net.features {
        rows.push([
            "features".into(),
            format!("{}x{}", f.shape.h, f.shape.w),
            format!("{} ({}), {} channels", f.module, crate::diag::escape(&f.name), f.shape.c),
            String::new(),
            String::new(),
        ]);
    }

    let titles = ["stage", "output", "block", "", "MACs"];
    columns(
        &mut out,
        titles,
        &rows,
        [false, false, false, false, true],
        false,
    );
    let _ = writeln!(out);
    totals(&mut out, net);
    out
}

/// A stem layer as a row of the paper's Table 1 (`7x7, 64, stride 2`, `3x3 max pool,
/// stride 2`); `None` for layers the table leaves out (norms, activations).
pub fn stem_config(l: &Layer) -> Option<String> {
    match l {
        Layer::Conv(c) => Some(format!(
            "{}x{}, {}, stride {}",
            c.kernel, c.kernel, c.out_channels, c.stride
        )),
        Layer::Pool(p) => Some(format!(
            "{}x{} {} pool, stride {}",
            p.pool.kernel,
            p.pool.kernel,
            p.pool.kind.keyword(),
            p.pool.stride
        )),
        Layer::Blur(b) => Some(format!("3x3 blur pool, stride {}", b.stride)),
        _ => None,
    }
}

/// The head as the last row of the paper's Table 1: `average pool, 1000-d fc`.
pub fn head_config(h: &HeadPlan) -> String {
    let pool = match h.pool {
        HeadPool::Avg => "average pool",
        HeadPool::Max => "max pool",
        HeadPool::Flatten => "flatten",
    };
    format!(
        "{pool}, {}-d fc{}",
        h.fc.out_features,
        if h.softmax { ", softmax" } else { "" }
    )
}

/// `[1x1, 64; 3x3, 64; 1x1, 256]` in the paper's notation, with the block kind and, for
/// grouped convolutions, ResNeXt's `C=32, 4d`.
pub fn block_config(s: &StageSummary) -> String {
    let f = &s.filters;
    let convs = if s.block.is_bottleneck() {
        format!("[1x1, {}; 3x3, {}; 1x1, {}]", f[0], f[1], f[2])
    } else {
        format!("[3x3, {}; 3x3, {}]", f[0], f[1])
    };
    let kind = match s.block {
        BlockKind::Basic | BlockKind::Bottleneck => String::new(),
        other => format!(" {}", other.keyword()),
    };
    let groups = if s.groups > 1 {
        let grouped = if s.block.is_bottleneck() { f[1] } else { f[0] };
        format!(", C={} {}d", s.groups, grouped / s.groups)
    } else {
        String::new()
    };
    let stride = if s.stride > 1 {
        format!(", /{}", s.stride)
    } else {
        String::new()
    };
    format!("{convs}{kind}{groups}{stride}")
}

/// The table as JSON: `params.trainable`, `params.non_trainable`, `macs`, `output`,
/// `input`, `stages[]` and `layers[]` (`name`, `op`, `output`, `params`, `macs`); a
/// backbone also has `features[]` (`name`, `module`, `output`).
pub fn json(model: &Model, net: &Network) -> serde_json::Value {
    let i = net.input;
    let mut value = serde_json::json!({
        "name": model.name,
        "input": [i.c, i.h, i.w],
        "output": net.output(),
        "params": {
            "trainable": net.totals.trainable_params,
            "non_trainable": net.totals.non_trainable_params,
        },
        "macs": net.totals.macs,
        "macs_convention": MACS_NOTE,
        "stages": net.stages.iter().map(|s| serde_json::json!({
            "name": s.name,
            "module": s.module,
            "block": s.block.keyword(),
            "repeat": s.repeat,
            "filters": s.filters,
            "groups": s.groups,
            "stride": s.stride,
            "output": [s.output.c, s.output.h, s.output.w],
            "params": s.params,
            "macs": s.macs,
        })).collect::<Vec<_>>(),
        "layers": net.layers.iter().map(|r| serde_json::json!({
            "name": r.name,
            "op": r.op,
            "output": r.output,
            "params": r.params,
            "non_trainable": r.non_trainable,
            "macs": r.macs,
        })).collect::<Vec<_>>(),
    });
    if !net.features.is_empty() {
        value["features"] = net
            .features
            .iter()
            .map(|f| serde_json::json!({"name": f.name, "module": f.module, "output": [f.shape.c, f.shape.h, f.shape.w]}))
            .collect();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(25_557_032), "25,557,032");
    }
}
