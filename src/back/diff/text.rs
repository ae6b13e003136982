//! [`Diff`] as text, in the manner of a unified diff: lines of A marked `-`, lines of B
//! marked `+`, lines alike in both unmarked. Each line carries its [`Mark`] so that the
//! CLI can colour it on a terminal; [`plain`] joins them for a pipe or a file.

use super::{BlockChange, Count, Diff, LayerInfo, StageDiff, StageInfo, Status, Tensor};
use crate::back::table::thousands;
use crate::diag::escape;
use std::collections::BTreeMap;

/// What a line shows, for colouring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Context: the same in both, or a section's title or summary.
    Context,
    /// A's side (`-`).
    A,
    /// B's side (`+`).
    B,
}

/// One line of output, without its newline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub mark: Mark,
    pub text: String,
}

/// The lines joined, each ending in `\n`.
pub fn plain(lines: &[Line]) -> String {
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.text);
        out.push('\n');
    }
    out
}

/// Renders the diff: header, totals, then (when anything differs) settings, stages,
/// layers and the state_dict. Names from the specs are shown with control characters
/// escaped.
pub fn render(d: &Diff) -> Vec<Line> {
    let mut out = Lines::default();
    for (mark, prefix, side) in [(Mark::A, "---", &d.a), (Mark::B, "+++", &d.b)] {
        let letter = if mark == Mark::A { "A" } else { "B" };
        out.push(
            mark,
            format!(
                "{prefix} {letter}: {} ({}, input {} -> {})",
                escape(&side.path),
                escape(&side.name),
                shape(&side.input),
                shape(&side.output)
            ),
        );
    }
    out.blank();
    if d.identical {
        out.context(format!(
            "no differences: the same {} layers (shapes, parameters, MACs), settings and state_dict ({} tensors)",
            d.same_layers, d.state_dict.b_tensors
        ));
        out.blank();
    }
    totals(&mut out, d);
    if d.identical {
        return out.0;
    }
    settings(&mut out, d);
    stages(&mut out, d);
    layers(&mut out, d);
    state_dict(&mut out, d);
    out.0
}

#[derive(Default)]
struct Lines(Vec<Line>);

impl Lines {
    fn push(&mut self, mark: Mark, text: String) {
        self.0.push(Line { mark, text });
    }
    fn context(&mut self, text: String) {
        self.push(Mark::Context, text);
    }
    fn blank(&mut self) {
        self.context(String::new());
    }

    /// Rows as aligned columns after a one-character mark (`-`, `+` or a space); `right`
    /// says which columns are right-aligned. Trailing blanks are trimmed.
    fn columns(&mut self, rows: &[(Mark, Vec<String>)], right: &[bool]) {
        let mut widths: Vec<usize> = Vec::new();
        for (_, cells) in rows {
            widths.resize(widths.len().max(cells.len()), 0);
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        for (mark, cells) in rows {
            let sign = match mark {
                Mark::Context => ' ',
                Mark::A => '-',
                Mark::B => '+',
            };
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, &w))| {
                    if right.get(i).copied().unwrap_or(false) {
                        format!("{c:>w$}")
                    } else {
                        format!("{c:<w$}")
                    }
                })
                .collect();
            let text = format!("{sign} {}", padded.join("  "));
            self.push(*mark, text.trim_end().to_string());
        }
    }
}

fn shape(v: &[u64]) -> String {
    let items: Vec<String> = v.iter().map(u64::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn count_or_dash(n: u64) -> String {
    if n > 0 {
        thousands(n)
    } else {
        "-".into()
    }
}

/// `+19,232`, `-231,211,008`, `0`.
fn signed(n: i128) -> String {
    let sign = match n.signum() {
        1 => "+",
        -1 => "-",
        _ => "",
    };
    // `unsigned_abs` of a difference of two u64 fits in u128.
    format!("{sign}{}", crate::back::table::grouped(n.unsigned_abs()))
}

/// `(+0.08%)`; `(new)` when A had none; nothing when there is no difference.
fn percent(c: &Count) -> String {
    match c.percent {
        _ if c.difference == 0 => String::new(),
        None => "(new)".into(),
        Some(p) if p.abs() < 0.005 => format!("({}<0.01%)", if p < 0.0 { "-" } else { "+" }),
        Some(p) => format!("({p:+.2}%)"),
    }
}

fn totals(out: &mut Lines, d: &Diff) {
    let t = &d.totals;
    let mut rows = vec![(
        Mark::Context,
        vec![
            "totals".to_string(),
            "A".into(),
            "B".into(),
            "B - A".into(),
            String::new(),
        ],
    )];
    for (label, c) in [
        ("trainable params", &t.trainable_params),
        ("non-trainable params", &t.non_trainable_params),
        ("MACs", &t.macs),
    ] {
        rows.push((
            Mark::Context,
            vec![
                label.to_string(),
                thousands(c.a),
                thousands(c.b),
                signed(c.difference),
                percent(c),
            ],
        ));
    }
    out.columns(&rows, &[false, true, true, true, false]);
}

fn settings(out: &mut Lines, d: &Diff) {
    if d.settings.is_empty() {
        return;
    }
    out.blank();
    out.context("settings".into());
    let mut rows = Vec::new();
    for s in &d.settings {
        rows.push((Mark::A, vec![s.name.to_string(), s.a.clone()]));
        rows.push((Mark::B, vec![s.name.to_string(), s.b.clone()]));
    }
    out.columns(&rows, &[false, false]);
}

/// The names of the fields that differ, as the JSON has them (`MACs` for `macs`).
fn changed_text(changed: &[&str]) -> String {
    let names: Vec<&str> = changed
        .iter()
        .map(|c| if *c == "macs" { "MACs" } else { c })
        .collect();
    names.join(", ")
}

fn stage_cells(module: &str, s: &StageInfo, changed: &[&str]) -> Vec<String> {
    vec![
        module.to_string(),
        escape(&s.name).into_owned(),
        s.summary.clone(),
        format!("x{}", s.repeat),
        shape(&s.output),
        thousands(s.params),
        thousands(s.macs),
        changed_text(changed),
    ]
}

fn stages(out: &mut Lines, d: &Diff) {
    if d.stages.is_empty() {
        return;
    }
    out.blank();
    let changed = d.stages.iter().filter(|s| s.status != Status::Same).count();
    out.context(format!(
        "stages: {changed} of {} differ (as `resnetc table --stages` shows them)",
        d.stages.len()
    ));
    let mut rows = vec![(
        Mark::Context,
        ["stage", "name", "block", "", "output", "params", "MACs", ""]
            .map(String::from)
            .to_vec(),
    )];
    for s in &d.stages {
        stage_rows(&mut rows, s);
    }
    out.columns(
        &rows,
        &[false, false, false, false, false, true, true, false],
    );
}

fn stage_rows(rows: &mut Vec<(Mark, Vec<String>)>, s: &StageDiff) {
    match (&s.a, &s.b) {
        (Some(a), Some(_)) if s.status == Status::Same => {
            rows.push((Mark::Context, stage_cells(&s.module, a, &[])));
        }
        (a, b) => {
            if let Some(a) = a {
                rows.push((Mark::A, stage_cells(&s.module, a, &[])));
            }
            if let Some(b) = b {
                rows.push((Mark::B, stage_cells(&s.module, b, &s.changed)));
            }
        }
    }
}

fn layer_cells(name: &str, l: &LayerInfo, changed: &[&str]) -> Vec<String> {
    vec![
        name.to_string(),
        l.op.clone(),
        shape(&l.output),
        count_or_dash(l.params),
        count_or_dash(l.macs),
        changed_text(changed),
    ]
}

fn block_cells(b: &BlockChange) -> Vec<String> {
    vec![
        b.name.clone(),
        format!(
            "{} block, {} layer{}",
            b.block,
            b.layers,
            if b.layers == 1 { "" } else { "s" }
        ),
        shape(&b.output),
        count_or_dash(b.params),
        count_or_dash(b.macs),
        String::new(),
    ]
}

fn layers(out: &mut Lines, d: &Diff) {
    if d.layers.is_empty() {
        return;
    }
    let one_sided = OneSided::new(d);
    out.blank();
    let count = |st: Status| d.layers.iter().filter(|l| l.status == st).count();
    let (added, removed) = (
        d.blocks
            .iter()
            .filter(|b| b.status == Status::Added)
            .count(),
        d.blocks
            .iter()
            .filter(|b| b.status == Status::Removed)
            .count(),
    );
    let blocks = match (added, removed) {
        (0, 0) => String::new(),
        _ => format!(" (blocks: {added} added, {removed} removed, one line each)"),
    };
    out.context(format!(
        "layers: {} changed, {} added, {} removed{blocks}, {} the same",
        count(Status::Changed),
        count(Status::Added),
        count(Status::Removed),
        d.same_layers
    ));
    let mut rows = vec![(
        Mark::Context,
        ["layer", "op", "output", "params", "MACs", ""]
            .map(String::from)
            .to_vec(),
    )];
    let mut shown_block: Option<&str> = None;
    for l in &d.layers {
        // The layers of a block in one spec only are that block's one line.
        if let Some(b) = l.block.as_deref().and_then(|name| one_sided.0.get(name)) {
            if shown_block != Some(b.name.as_str()) {
                shown_block = Some(b.name.as_str());
                let mark = if b.status == Status::Added {
                    Mark::B
                } else {
                    Mark::A
                };
                rows.push((mark, block_cells(b)));
            }
            continue;
        }
        if let Some(a) = &l.a {
            rows.push((Mark::A, layer_cells(&l.name, a, &[])));
        }
        if let Some(b) = &l.b {
            rows.push((Mark::B, layer_cells(&l.name, b, &l.changed)));
        }
    }
    out.columns(&rows, &[false, false, false, true, true, false]);
}

/// The blocks in one spec only, by name.
struct OneSided<'d>(BTreeMap<&'d str, &'d BlockChange>);

impl<'d> OneSided<'d> {
    fn new(d: &'d Diff) -> Self {
        OneSided(d.blocks.iter().map(|b| (b.name.as_str(), b)).collect())
    }

    /// The block only in A (`Removed`) or only in B (`Added`) that the layer or
    /// state_dict key `name` belongs to.
    fn of(&self, name: &str, status: Status) -> Option<&'d BlockChange> {
        let b = self.0.get(super::layers::block_prefix(name))?;
        (b.status == status && b.name.len() < name.len()).then_some(*b)
    }
}

fn state_dict(out: &mut Lines, d: &Diff) {
    let s = &d.state_dict;
    out.blank();
    if s.a_loads_into_b {
        out.context(format!(
            "state_dict: a checkpoint of A loads into B: yes (the same {} tensors, names and shapes)",
            s.b_tensors
        ));
        return;
    }
    out.context("state_dict: a checkpoint of A loads into B: no".into());
    let counters = match s.missing_counters {
        0 => String::new(),
        n => format!(" (and {n} num_batches_tracked, which loading tolerates)"),
    };
    out.context(format!(
        "  B has {} tensors: {} in A with the same shape, {} with another shape, {} missing from A{counters}; {} of A's {} are not in B",
        s.b_tensors,
        s.same,
        s.mismatched.len(),
        s.missing.len(),
        s.unexpected.len(),
        s.a_tensors,
    ));
    let mut rows: Vec<(Mark, Vec<String>)> = Vec::new();
    let mut list = |title: &str, mark: Mark, tensors: &[Tensor], only: Status| {
        if tensors.is_empty() {
            return;
        }
        rows.push((Mark::Context, vec![format!("{title} ({}):", tensors.len())]));
        for (key, shape) in grouped(d, tensors, only) {
            rows.push((mark, vec![key, shape]));
        }
    };
    list("missing from A", Mark::B, &s.missing, Status::Added);
    list("in A, not in B", Mark::A, &s.unexpected, Status::Removed);
    if !s.mismatched.is_empty() {
        rows.push((
            Mark::Context,
            vec![format!("another shape ({}):", s.mismatched.len())],
        ));
        for m in &s.mismatched {
            rows.push((Mark::A, vec![m.name.clone(), shape(&m.a)]));
            rows.push((Mark::B, vec![m.name.clone(), shape(&m.b)]));
        }
    }
    // Titles span the columns: align only the runs of key lines.
    for chunk in rows.chunk_by(|x, y| (x.0 == Mark::Context) == (y.0 == Mark::Context)) {
        out.columns(chunk, &[false, false]);
    }
}

/// The module of a state_dict key (`conv1.1` of `conv1.1.weight`).
fn module_of(name: &str) -> &str {
    name.rsplit_once('.').map_or("", |(m, _)| m)
}

/// State_dict keys as lines of (key, shape): every key of a block in one spec only as one
/// line (`layer1.2.*`), and a module's keys of one shape together
/// (`conv1.1.{bias, running_mean, running_var, weight}`). `tensors` is sorted by name, so
/// the keys of a block and of a module are contiguous.
fn grouped(d: &Diff, tensors: &[Tensor], only: Status) -> Vec<(String, String)> {
    let one_sided = OneSided::new(d);
    let block_of = |name: &str| one_sided.of(name, only);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while let Some(t) = tensors.get(i) {
        if let Some(b) = block_of(&t.name) {
            let n = tensors[i..]
                .iter()
                .take_while(|u| block_of(&u.name).is_some_and(|c| c.name == b.name))
                .count();
            out.push((
                format!("{}.*", b.name),
                format!("{n} tensors: the whole {} block", b.block),
            ));
            i += n;
            continue;
        }
        let module = module_of(&t.name);
        let run = tensors[i..]
            .iter()
            .take_while(|u| module_of(&u.name) == module && block_of(&u.name).is_none())
            .count()
            .max(1);
        // The module's keys by shape, shapes in the order they first occur.
        let mut by_shape: Vec<(&[u64], Vec<&Tensor>)> = Vec::new();
        for u in &tensors[i..i + run] {
            match by_shape.iter_mut().find(|(s, _)| *s == u.shape.as_slice()) {
                Some((_, keys)) => keys.push(u),
                None => by_shape.push((&u.shape, vec![u])),
            }
        }
        for (s, keys) in by_shape {
            let key = match keys.as_slice() {
                [one] => one.name.clone(),
                many if module.is_empty() => {
                    let names: Vec<&str> = many.iter().map(|u| u.name.as_str()).collect();
                    names.join(", ")
                }
                many => {
                    let leaves: Vec<&str> = many
                        .iter()
                        .map(|u| u.name.rsplit_once('.').map_or(u.name.as_str(), |(_, l)| l))
                        .collect();
                    format!("{module}.{{{}}}", leaves.join(", "))
                }
            };
            out.push((key, shape(s)));
        }
        i += run;
    }
    out
}
