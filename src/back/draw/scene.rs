//! Gathering a [`Scene`] from a compiled spec: the groups and their boxes, and for every
//! item its rows of the layer table, its numbers and its spec line.

use super::texts::{describe, layer_class, layer_text, shortcut_text};
use super::{block_id, dims_text, shape_text, stage_id, Group, Item, ItemKind, Scene, Unit};
use crate::back::table::{self, shape_list, thousands};
use crate::span::SourceFile;
use crate::valid::{BlockPlan, Layer, LayerRow, ShortcutPlan};
use crate::Compiled;
use std::collections::{BTreeMap, HashMap};

impl<'a> Scene<'a> {
    /// Gathers what to draw from a compiled spec; `file` gives the spec lines the page
    /// shows for each item.
    pub fn new(file: &SourceFile, c: &'a Compiled) -> Scene<'a> {
        let net = &c.network;
        let rows = &net.layers;
        let mut b = Builder {
            file,
            c,
            items: BTreeMap::new(),
            row_item: vec![None; rows.len()],
            by_item: HashMap::new(),
            line_starts: std::iter::once(0)
                .chain(file.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
        };
        let by_name: BTreeMap<&str, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();

        // Every layer and addition claims its own row, then the rows under its name
        // (`layer1.0.se.conv` belongs to `layer1.0.se`).
        let mut owners: Vec<(&str, String)> = Vec::new();
        for l in &net.stem.layers {
            owners.push((l.name(), l.name().to_string()));
        }
        for blk in &net.blocks {
            for l in blk.layers() {
                owners.push((l.name(), l.name().to_string()));
            }
            owners.push((blk.name.as_str(), blk.name.clone()));
        }
        for (name, id) in &owners {
            if let Some(&i) = by_name.get(name) {
                b.row_item[i] = Some(id.clone());
            }
        }
        let owner_names: std::collections::HashSet<&str> = owners.iter().map(|(n, _)| *n).collect();
        for (i, r) in rows.iter().enumerate() {
            if b.row_item[i].is_some() {
                continue;
            }
            let mut name = r.name.as_str();
            while let Some((parent, _)) = name.rsplit_once('.') {
                if owner_names.contains(parent) {
                    b.row_item[i] = Some(parent.to_string());
                    break;
                }
                name = parent;
            }
        }
        for (i, owner) in b.row_item.iter().enumerate() {
            if let Some(owner) = owner {
                b.by_item.entry(owner.clone()).or_default().push(i);
            }
        }

        let mut groups = Vec::new();
        // The stem.
        let stem_configs: Vec<String> = net
            .stem
            .layers
            .iter()
            .filter_map(table::stem_config)
            .collect();
        let stem_rows =
            b.rows_of_group(&net.stem.layers.iter().map(|l| l.name()).collect::<Vec<_>>());
        let (p, m) = b.sums(&stem_rows);
        let stem_out = net.stem.output();
        b.insert(
            "stem".into(),
            Item {
                kind: ItemKind::Stem,
                name: "stem".into(),
                op: stem_configs.join("; "),
                output: stem_out.to_string(),
                params: thousands(p),
                macs: thousands(m),
                rows: stem_rows,
                group: Some("stem".into()),
                block: None,
                line: b.line("stem"),
            },
        );
        let mut convs = 0;
        let mut units = Vec::new();
        for l in &net.stem.layers {
            let key = match l {
                Layer::Conv(_) => {
                    let key = format!("stem.convs[{convs}]");
                    convs += 1;
                    if c.spans.has(&key) {
                        key
                    } else {
                        "stem.pool".into()
                    }
                }
                Layer::Norm(_) => "stem.bn".into(),
                Layer::Relu { .. } => "stem.relu".into(),
                _ => "stem.pool".into(),
            };
            b.layer_item(l, Some("stem".into()), None, &key);
            units.push(Unit::Layer {
                id: l.name().to_string(),
                text: layer_text(l),
                class: layer_class(l),
                output: shape_text(l.output()),
            });
        }
        groups.push(Group {
            id: "stem".into(),
            title: [
                format!("stem  {}", stem_configs.join("; ")),
                format!(
                    "out {}  params {}  MACs {}",
                    shape_text(stem_out),
                    thousands(p),
                    thousands(m)
                ),
            ],
            incoming: shape_text(net.input),
            units,
        });

        // The stages.
        let mut incoming = shape_text(stem_out);
        for (si, s) in net.stages.iter().enumerate() {
            let gid = stage_id(&s.module);
            let key = format!("stages[{si}]");
            let blocks: Vec<&BlockPlan> = net.blocks.iter().filter(|blk| blk.stage == si).collect();
            let mut stage_rows = Vec::new();
            let mut units = Vec::new();
            for blk in &blocks {
                let bid = block_id(blk);
                let mut block_rows = Vec::new();
                for l in blk.layers() {
                    block_rows.extend(b.layer_item(l, Some(gid.clone()), Some(bid.clone()), &key));
                }
                let add_rows = b.rows_of(&blk.name);
                if let Some(&r) = add_rows.first() {
                    let mut add =
                        Item::of_row(ItemKind::Add, &rows[r], r, Some(gid.clone()), b.line(&key));
                    add.block = Some(bid.clone());
                    add.rows = add_rows.clone();
                    b.insert(blk.name.clone(), add);
                }
                block_rows.extend(add_rows);
                block_rows.sort_unstable();
                let (p, m) = b.sums(&block_rows);
                let shortcut = match &blk.shortcut {
                    ShortcutPlan::None => "no shortcut".to_string(),
                    ShortcutPlan::Path { layers, .. } if layers.is_empty() => {
                        "identity shortcut".into()
                    }
                    ShortcutPlan::Path { .. } => shortcut_text(blk).unwrap_or_default(),
                };
                b.insert(
                    bid.clone(),
                    Item {
                        kind: ItemKind::Block,
                        name: blk.name.clone(),
                        op: format!("{} block, {shortcut}", blk.kind.keyword()),
                        output: blk.output.to_string(),
                        params: thousands(p),
                        macs: thousands(m),
                        rows: block_rows.clone(),
                        group: Some(gid.clone()),
                        block: Some(bid),
                        line: b.line(&key),
                    },
                );
                stage_rows.extend(block_rows);
                units.push(Unit::Block(blk));
            }
            let feature = net.features.iter().find(|f| f.stage == si);
            if let Some(f) = feature {
                let fid = format!("feature/{}", f.module);
                for (i, r) in rows.iter().enumerate() {
                    if b.row_item[i].is_none() && r.name == f.module {
                        b.row_item[i] = Some(fid.clone());
                        b.by_item.entry(fid.clone()).or_default().push(i);
                    }
                }
                let rows = b.rows_of(&fid);
                b.insert(
                    fid.clone(),
                    Item {
                        kind: ItemKind::Feature,
                        name: f.module.clone(),
                        op: format!("feature map ({})", f.name),
                        output: f.shape.to_string(),
                        params: "0".into(),
                        macs: "0".into(),
                        rows,
                        group: Some(gid.clone()),
                        block: None,
                        line: b.line(&format!(
                            "features[{}]",
                            net.features.iter().position(|x| x.stage == si).unwrap_or(0)
                        )),
                    },
                );
                units.push(Unit::Feature {
                    id: fid,
                    text: format!("output {} ({}): {}", f.module, f.name, shape_text(f.shape)),
                    last: si + 1 == net.stages.len(),
                });
            }
            let config = format!("{}  x{}", table::block_config(s), s.repeat);
            b.insert(
                gid.clone(),
                Item {
                    kind: ItemKind::Stage,
                    name: s.name.clone(),
                    op: config.clone(),
                    output: s.output.to_string(),
                    params: thousands(s.params),
                    macs: thousands(s.macs),
                    rows: stage_rows,
                    group: Some(gid.clone()),
                    block: None,
                    line: b.line(&key),
                },
            );
            groups.push(Group {
                id: gid,
                title: [
                    format!("{}  {config}", s.name),
                    format!(
                        "out {}  params {}  MACs {}",
                        shape_text(s.output),
                        thousands(s.params),
                        thousands(s.macs)
                    ),
                ],
                incoming: std::mem::replace(&mut incoming, shape_text(s.output)),
                units,
            });
        }

        // The head: every row no layer of the body claimed, features aside.
        let mut output = None;
        if let Some(h) = &net.head {
            let head_rows: Vec<usize> = (0..rows.len())
                .filter(|&i| b.row_item[i].is_none())
                .collect();
            let mut units = Vec::new();
            for &i in &head_rows {
                let r = &rows[i];
                let key = match r.name.as_str() {
                    "dropout" => "head.dropout",
                    "avgpool" | "maxpool" | "flatten" => "head.pool",
                    "softmax" => "head.softmax",
                    "final_bn" => "head.norm",
                    _ => "head",
                };
                b.row_item[i] = Some(r.name.clone());
                let item = Item::of_row(ItemKind::Layer, r, i, Some("head".into()), b.line(key));
                b.insert(r.name.clone(), item);
                let class = if r.params > 0 && r.macs > 0 {
                    "conv"
                } else if r.params > 0 {
                    "norm"
                } else {
                    "pool"
                };
                units.push(Unit::Layer {
                    id: r.name.clone(),
                    text: format!("{}  {}", r.name, r.op),
                    class,
                    output: dims_text(&r.output),
                });
            }
            let (p, m) = b.sums(&head_rows);
            let last = head_rows
                .last()
                .map(|&i| dims_text(&rows[i].output))
                .unwrap_or_default();
            let out = net.output();
            b.insert(
                "head".into(),
                Item {
                    kind: ItemKind::Head,
                    name: "head".into(),
                    op: table::head_config(h),
                    output: shape_list(&out),
                    params: thousands(p),
                    macs: thousands(m),
                    rows: head_rows,
                    group: Some("head".into()),
                    block: None,
                    line: b.line("head"),
                },
            );
            groups.push(Group {
                id: "head".into(),
                title: [
                    format!("head  {}", table::head_config(h)),
                    format!(
                        "out {}  params {}  MACs {}",
                        shape_list(&out),
                        thousands(p),
                        thousands(m)
                    ),
                ],
                incoming,
                units,
            });
            b.insert(
                "output".into(),
                Item {
                    kind: ItemKind::Output,
                    name: "output".into(),
                    op: format!("{} classes", h.fc.out_features),
                    output: shape_list(&out),
                    params: "0".into(),
                    macs: "0".into(),
                    rows: Vec::new(),
                    group: None,
                    block: None,
                    line: b.line("head"),
                },
            );
            output = Some((format!("output {}", shape_list(&out)), last));
        }
        b.insert(
            "input".into(),
            Item {
                kind: ItemKind::Input,
                name: "input".into(),
                op: "one image".into(),
                output: net.input.to_string(),
                params: "0".into(),
                macs: "0".into(),
                rows: Vec::new(),
                group: None,
                block: None,
                line: b.line("input"),
            },
        );

        let t = &net.totals;
        let non_trainable = if t.non_trainable_params > 0 {
            format!(" (+{} non-trainable)", thousands(t.non_trainable_params))
        } else {
            String::new()
        };
        let lines = b
            .items
            .values()
            .filter_map(|i| i.line)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|n| (n, b.line_text(n)))
            .collect();
        Scene {
            compiled: c,
            name: c.model.name.clone(),
            summary: format!(
                "input {} -> output {}   params {}{non_trainable}   MACs {}",
                shape_text(net.input),
                shape_list(&net.output()),
                thousands(t.trainable_params),
                thousands(t.macs)
            ),
            input: format!("input {}", shape_text(net.input)),
            groups,
            output,
            row_items: b
                .row_item
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect(),
            lines,
            items: b.items,
            spec: file.name.clone(),
        }
    }
}

impl Item {
    /// The item of one row of the layer table (row `i`): a block's addition, a layer of
    /// the head.
    fn of_row(
        kind: ItemKind,
        r: &LayerRow,
        i: usize,
        group: Option<String>,
        line: Option<usize>,
    ) -> Item {
        Item {
            kind,
            name: r.name.clone(),
            op: r.op.clone(),
            output: shape_list(&r.output),
            params: thousands(r.params),
            macs: thousands(r.macs),
            rows: vec![i],
            group,
            block: None,
            line,
        }
    }
}

struct Builder<'f, 'c> {
    file: &'f SourceFile,
    c: &'c Compiled,
    items: BTreeMap<String, Item>,
    /// The item each layer-table row belongs to, and the rows of each item, in order.
    row_item: Vec<Option<String>>,
    by_item: HashMap<String, Vec<usize>>,
    /// Byte offset of each line of the spec.
    line_starts: Vec<usize>,
}

impl Builder<'_, '_> {
    fn rows(&self) -> &[LayerRow] {
        &self.c.network.layers
    }

    fn insert(&mut self, id: String, item: Item) {
        self.items.insert(id, item);
    }

    /// The rows claimed by item `id`, in table order.
    fn rows_of(&self, id: &str) -> Vec<usize> {
        self.by_item.get(id).cloned().unwrap_or_default()
    }

    fn rows_of_group(&self, ids: &[&str]) -> Vec<usize> {
        let mut rows: Vec<usize> = ids.iter().flat_map(|id| self.rows_of(id)).collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    fn sums(&self, rows: &[usize]) -> (u64, u64) {
        let all = self.rows();
        rows.iter().fold((0u64, 0u64), |(p, m), &i| {
            (
                p.saturating_add(all[i].params),
                m.saturating_add(all[i].macs),
            )
        })
    }

    /// The spec line (1-based) of span path `key` (or its closest recorded ancestor).
    fn line(&self, key: &str) -> Option<usize> {
        if self.file.text.is_empty() {
            return None;
        }
        let at = self.c.spans.get(key).start;
        // The lines that start at or before `at`: the last of them holds it.
        Some(self.line_starts.partition_point(|&s| s <= at))
    }

    /// The text of line `n` (1-based), without its line break.
    fn line_text(&self, n: usize) -> String {
        let start = self
            .line_starts
            .get(n - 1)
            .copied()
            .unwrap_or(self.file.text.len());
        let end = self
            .line_starts
            .get(n)
            .map_or(self.file.text.len(), |&next| next - 1);
        let line = self
            .file
            .text
            .get(start..end.max(start))
            .unwrap_or_default();
        line.strip_suffix('\r').unwrap_or(line).to_string()
    }

    /// Adds the item of a layer of the body; returns its rows.
    fn layer_item(
        &mut self,
        l: &Layer,
        group: Option<String>,
        block: Option<String>,
        key: &str,
    ) -> Vec<usize> {
        let rows = self.rows_of(l.name());
        let all = self.rows();
        // The layer's own row names it; rows under it (an ECA's conv) add their counts.
        let own = rows
            .iter()
            .copied()
            .find(|&i| all[i].name == l.name())
            .or(rows.first().copied());
        let (p, m) = self.sums(&rows);
        let (op, output) = match own {
            Some(i) => (all[i].op.clone(), shape_list(&all[i].output)),
            None => (describe(l), l.output().to_string()),
        };
        let line = self.line(key);
        self.insert(
            l.name().to_string(),
            Item {
                kind: ItemKind::Layer,
                name: l.name().to_string(),
                op,
                output,
                params: thousands(p),
                macs: thousands(m),
                rows: rows.clone(),
                group,
                block,
                line,
            },
        );
        rows
    }
}
