//! Whether a checkpoint of A loads into B, as `resnetc import --spec B` would find.

use super::{ShapeChange, StateDictDiff, Tensor};
use crate::import::{self, LoadReport};
use crate::valid::Network;
use std::collections::BTreeMap;

/// Loads A's state_dict into B the way `resnetc import` would, without a file.
pub(super) fn compare(a: &Network, b: &Network) -> StateDictDiff {
    let (tensors_a, expected_b) = (import::state_dict(a), import::expected(b));
    let (report, _) = import::compare(&tensors_a, &[], &expected_b);
    let shapes = |names: &[String], of: &BTreeMap<&str, &Vec<u64>>| -> Vec<Tensor> {
        names
            .iter()
            .map(|n| Tensor {
                name: n.clone(),
                shape: of.get(n.as_str()).map(|s| s.to_vec()).unwrap_or_default(),
            })
            .collect()
    };
    let shape_a: BTreeMap<&str, &Vec<u64>> = tensors_a
        .iter()
        .map(|t| (t.name.as_str(), &t.shape))
        .collect();
    let shape_b: BTreeMap<&str, &Vec<u64>> = expected_b
        .iter()
        .map(|e| (e.name.as_str(), &e.shape))
        .collect();
    let LoadReport {
        loaded,
        missing,
        unexpected,
        mismatched,
    } = report;
    let counters = expected_b
        .len()
        .saturating_sub(loaded.len() + missing.len() + mismatched.len());
    StateDictDiff {
        a_loads_into_b: missing.is_empty() && unexpected.is_empty() && mismatched.is_empty(),
        a_tensors: tensors_a.len(),
        b_tensors: expected_b.len(),
        same: loaded.len(),
        missing: shapes(&missing, &shape_b),
        missing_counters: counters,
        unexpected: shapes(&unexpected, &shape_a),
        mismatched: mismatched
            .iter()
            .map(|m| ShapeChange {
                name: m.name.clone(),
                a: shape_a
                    .get(m.name.as_str())
                    .map(|s| s.to_vec())
                    .unwrap_or_default(),
                b: shape_b
                    .get(m.name.as_str())
                    .map(|s| s.to_vec())
                    .unwrap_or_default(),
            })
            .collect(),
    }
}
