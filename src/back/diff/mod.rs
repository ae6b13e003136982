//! Two checked networks side by side (`resnetc diff A B`): the totals of each with the
//! difference, the stages, every layer that differs and whether a checkpoint of A loads
//! into B.
//!
//! Layers are matched by their torchvision/timm module name (`layer2.0.conv1`), which is
//! stable across specs: blocks by stage and index (`layer3.4`), layers within the stem,
//! a block and the head by name. Every number comes from the layer table
//! ([`crate::valid::Network::layers`], what `resnetc table` prints) and every state_dict
//! key from [`crate::import::expected`] (what `resnetc import` checks a file against),
//! so the diff says exactly what those commands say of each spec.
//!
//! [`Diff`] serializes to the JSON of `resnetc diff --format json` (keys in field order);
//! [`text`] renders it for a terminal.
//!
//! ```
//! use resnetc::span::{SourceFile, Syntax};
//! let load = |path: &str| {
//!     let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
//!     resnetc::compile(&SourceFile::new(path, text, Syntax::Yaml)).expect("a shipped spec")
//! };
//! let (a, b) = (load("specs/resnet50.yaml"), load("specs/resnet50-v1.yaml"));
//! let diff = resnetc::back::diff::compare(
//!     resnetc::back::diff::Spec { path: "specs/resnet50.yaml", model: &a.model, network: &a.network },
//!     resnetc::back::diff::Spec { path: "specs/resnet50-v1.yaml", model: &b.model, network: &b.network },
//! );
//! // v1 strides on the first 1x1 of each downsampling block: same weights, fewer MACs.
//! assert!(diff.state_dict.a_loads_into_b);
//! assert!(diff.totals.macs.difference < 0);
//! ```

mod align;
mod layers;
mod state_dict;
pub mod text;

use crate::ir::Model;
use crate::valid::{Network, StageSummary};
use align::align;
use serde::Serialize;

/// One side of the comparison: the spec's path (as given, for the header) and its
/// checked model.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    pub path: &'a str,
    pub model: &'a Model,
    pub network: &'a Network,
}

/// Whether an item is in both specs and alike, in both and different, or in one only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Same,
    Changed,
    /// Only in B.
    Added,
    /// Only in A.
    Removed,
}

/// The comparison of A and B. Serialized, this is `resnetc diff --format json`.
#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// True when nothing below differs: the same layers with the same shapes, parameters
    /// and MACs, the same settings and the same state_dict (names may differ).
    pub identical: bool,
    pub a: Side,
    pub b: Side,
    pub totals: TotalsDiff,
    /// Model-wide settings that the layer table does not show, where they differ: `init`,
    /// `zero_init_residual`, `batch_norm.eps`, `batch_norm.momentum`, `drop_path_rate`,
    /// `features` (a backbone's outputs, as modules: `layer3, layer4`).
    pub settings: Vec<SettingChange>,
    /// Every stage of either spec, matched by position (`layer1`, `layer2`, ...).
    pub stages: Vec<StageDiff>,
    /// Blocks in one spec only (`layer3.4` of resnet50 against resnet34's `layer3`).
    pub blocks: Vec<BlockChange>,
    /// Every layer table row that differs, in execution order: those of added and removed
    /// blocks too.
    pub layers: Vec<LayerChange>,
    /// Rows of the layer table that are the same in both.
    pub same_layers: usize,
    pub state_dict: StateDictDiff,
}

/// A spec as the header shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub path: String,
    pub name: String,
    pub input: [u64; 3],
    pub output: Vec<u64>,
}

/// The totals of `resnetc table`, A against B.
#[derive(Clone, Debug, Serialize)]
pub struct TotalsDiff {
    pub trainable_params: Count,
    pub non_trainable_params: Count,
    pub macs: Count,
}

/// A count in A and in B, with `b - a` and that as a percentage of A (`null` when A's
/// is 0).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Count {
    pub a: u64,
    pub b: u64,
    pub difference: i128,
    pub percent: Option<f64>,
}

impl Count {
    fn new(a: u64, b: u64) -> Count {
        let difference = i128::from(b) - i128::from(a);
        Count {
            a,
            b,
            difference,
            percent: (a > 0).then(|| difference as f64 / a as f64 * 100.0),
        }
    }
}

/// A setting with different values (`init`: `kaiming_normal` against `xavier_uniform`).
#[derive(Clone, Debug, Serialize)]
pub struct SettingChange {
    pub name: &'static str,
    pub a: String,
    pub b: String,
}

/// One stage position (`layer2`) in A and B.
#[derive(Clone, Debug, Serialize)]
pub struct StageDiff {
    pub module: String,
    pub status: Status,
    pub a: Option<StageInfo>,
    pub b: Option<StageInfo>,
    /// The fields of [`StageInfo`] that differ (for a stage in both).
    pub changed: Vec<&'static str>,
    pub blocks_added: Vec<String>,
    pub blocks_removed: Vec<String>,
}

/// A stage as `resnetc table --format json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageInfo {
    pub name: String,
    /// The paper's Table 1 notation, as `resnetc table --stages` prints it
    /// (`[1x1, 128; 3x3, 128; 1x1, 512], /2`).
    pub summary: String,
    pub block: &'static str,
    pub repeat: u64,
    pub filters: Vec<u64>,
    pub groups: u64,
    pub stride: u64,
    pub output: [u64; 3],
    pub params: u64,
    pub macs: u64,
}

/// A block in one spec only, with the sums of its layer table rows.
#[derive(Clone, Debug, Serialize)]
pub struct BlockChange {
    pub name: String,
    /// Its stage's module (`layer3`).
    pub stage: String,
    pub status: Status,
    pub block: &'static str,
    pub layers: usize,
    pub output: [u64; 3],
    pub params: u64,
    pub non_trainable: u64,
    pub macs: u64,
}

/// A layer table row that differs.
#[derive(Clone, Debug, Serialize)]
pub struct LayerChange {
    pub name: String,
    /// The block it belongs to (`layer2.0`); `null` in the stem and the head.
    pub block: Option<String>,
    pub status: Status,
    pub a: Option<LayerInfo>,
    pub b: Option<LayerInfo>,
    /// What differs, for a layer in both: hyper-parameters of the layer (`kernel`,
    /// `stride`, `padding`, `dilation`, `groups`, `bias`, `in_channels`, `out_channels`,
    /// `pool`, `norm`, `relu`, `attention`, ..., or `op` when the layers are of different
    /// kinds), then `output`, `params`, `non_trainable`, `macs`.
    pub changed: Vec<&'static str>,
}

/// A row of the layer table (`resnetc table --format json`'s `layers[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerInfo {
    pub op: String,
    pub output: Vec<u64>,
    pub params: u64,
    pub non_trainable: u64,
    pub macs: u64,
}

/// Whether a checkpoint of A (every tensor of its state_dict) loads into B, as
/// `resnetc import --spec B` and the runtime's `--weights` would find.
#[derive(Clone, Debug, Serialize)]
pub struct StateDictDiff {
    /// True when it loads strictly: every tensor of B in A with its shape, nothing else.
    pub a_loads_into_b: bool,
    pub a_tensors: usize,
    pub b_tensors: usize,
    /// Tensors in both with the same shape.
    pub same: usize,
    /// B's tensors that A lacks, but for BN's `num_batches_tracked`.
    pub missing: Vec<Tensor>,
    /// B's `num_batches_tracked` counters that A lacks: loading tolerates them (they
    /// start at 0), and they are not in `missing`.
    pub missing_counters: usize,
    /// A's tensors that B has no variable for.
    pub unexpected: Vec<Tensor>,
    /// Tensors in both with different shapes.
    pub mismatched: Vec<ShapeChange>,
}

/// A state_dict key and its shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<u64>,
}

/// A key whose shape differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShapeChange {
    pub name: String,
    pub a: Vec<u64>,
    pub b: Vec<u64>,
}

/// Compares two checked specs.
pub fn compare(a: Spec<'_>, b: Spec<'_>) -> Diff {
    let (na, nb) = (a.network, b.network);
    let totals = TotalsDiff {
        trainable_params: Count::new(na.totals.trainable_params, nb.totals.trainable_params),
        non_trainable_params: Count::new(
            na.totals.non_trainable_params,
            nb.totals.non_trainable_params,
        ),
        macs: Count::new(na.totals.macs, nb.totals.macs),
    };
    let settings = settings(a, b);
    let (blocks, layers, same_layers) = layers::compare(na, nb);
    let stages = compare_stages(na, nb, &blocks);
    let state_dict = state_dict::compare(na, nb);
    let identical = settings.is_empty()
        && layers.is_empty()
        && stages.iter().all(|s| s.status == Status::Same)
        && state_dict.a_loads_into_b
        && state_dict.same == state_dict.b_tensors;
    Diff {
        identical,
        a: side(a),
        b: side(b),
        totals,
        settings,
        stages,
        blocks,
        layers,
        same_layers,
        state_dict,
    }
}

fn side(s: Spec<'_>) -> Side {
    let i = s.network.input;
    Side {
        path: s.path.to_string(),
        name: s.model.name.clone(),
        input: [i.c, i.h, i.w],
        output: s.network.output(),
    }
}

/// Settings that no row of the layer table shows: those of training and numerics, and a
/// backbone's outputs (`features`: the stages whose maps it returns).
fn settings(a: Spec<'_>, b: Spec<'_>) -> Vec<SettingChange> {
    let values = |s: Spec<'_>| -> [(&'static str, String); 6] {
        let (m, features) = (s.model, &s.network.features);
        let features: Vec<&str> = features.iter().map(|f| f.module.as_str()).collect();
        [
            ("init", m.init.keyword().to_string()),
            ("zero_init_residual", m.zero_init_residual.to_string()),
            ("batch_norm.eps", m.batch_norm.eps.to_string()),
            ("batch_norm.momentum", m.batch_norm.momentum.to_string()),
            ("drop_path_rate", m.drop_path_rate.to_string()),
            ("features", features.join(", ")),
        ]
    };
    values(a)
        .into_iter()
        .zip(values(b))
        .filter(|((_, va), (_, vb))| va != vb)
        .map(|((name, a), (_, b))| SettingChange { name, a, b })
        .collect()
}

fn stage_info(s: &StageSummary) -> StageInfo {
    StageInfo {
        name: s.name.clone(),
        summary: crate::back::table::block_config(s),
        block: s.block.keyword(),
        repeat: s.repeat,
        filters: s.filters.clone(),
        groups: s.groups,
        stride: s.stride,
        output: [s.output.c, s.output.h, s.output.w],
        params: s.params,
        macs: s.macs,
    }
}

fn compare_stages(a: &Network, b: &Network, blocks: &[BlockChange]) -> Vec<StageDiff> {
    let pairs = align(&a.stages, &b.stages, |s| &s.module);
    pairs
        .into_iter()
        .map(|(sa, sb)| {
            let (ia, ib) = (sa.map(stage_info), sb.map(stage_info));
            let module = sa.or(sb).map(|s| s.module.clone()).unwrap_or_default();
            let changed = match (&ia, &ib) {
                (Some(x), Some(y)) => stage_fields_changed(x, y),
                _ => Vec::new(),
            };
            let status = status(sa.is_some(), sb.is_some(), changed.is_empty());
            let of_stage = |st: Status| -> Vec<String> {
                blocks
                    .iter()
                    .filter(|c| c.stage == module && c.status == st)
                    .map(|c| c.name.clone())
                    .collect()
            };
            StageDiff {
                blocks_added: of_stage(Status::Added),
                blocks_removed: of_stage(Status::Removed),
                module,
                status,
                a: ia,
                b: ib,
                changed,
            }
        })
        .collect()
}

fn stage_fields_changed(a: &StageInfo, b: &StageInfo) -> Vec<&'static str> {
    let fields: [(&'static str, bool); 9] = [
        ("name", a.name != b.name),
        ("block", a.block != b.block),
        ("repeat", a.repeat != b.repeat),
        ("filters", a.filters != b.filters),
        ("groups", a.groups != b.groups),
        ("stride", a.stride != b.stride),
        ("output", a.output != b.output),
        ("params", a.params != b.params),
        ("macs", a.macs != b.macs),
    ];
    fields
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
}

fn status(in_a: bool, in_b: bool, alike: bool) -> Status {
    match (in_a, in_b) {
        (true, false) => Status::Removed,
        (false, true) => Status::Added,
        _ if alike => Status::Same,
        _ => Status::Changed,
    }
}
