//! `checkpoint.safetensors` (everything needed to resume) and `weights.safetensors` (the
//! model alone, torchvision names).
//!
//! A checkpoint holds, as safetensors tensors:
//! - `model.<name>`: every variable of the VarStore (weights and BN running statistics),
//!   with torchvision's names (`model.layer1.0.conv1.weight`);
//! - `momentum.<name>`: the optimizer's momentum buffers ([`super::optim`]);
//! - `run.epoch` (int64 `[1]`): epochs completed; `run.seed` (int64 `[1]`, the seed's bits);
//! - `run.history` (float64 `[epochs, 6]`): the rows of `metrics.csv`;
//! - `run.config` (uint8): the run's settings as JSON, compared on `--resume`.
//!
//! Random streams are derived from the seed and the epoch ([`super::rng`]), so the seed and
//! the epoch are the whole random state. Files are replaced atomically.

use super::atomic;
use super::metrics::EpochMetrics;
use super::optim::Sgd;
use super::TrainError;
use std::collections::HashMap;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Prefix of the model's variables in a checkpoint.
pub const MODEL_PREFIX: &str = "model.";

/// The run's progress, besides weights and optimizer state.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    /// Epochs completed.
    pub epoch: usize,
    /// The run's seed: with the epoch, names every random stream.
    pub seed: u64,
    /// Metrics of the completed epochs.
    pub history: Vec<EpochMetrics>,
    /// The run's settings as JSON.
    pub config: String,
}

/// A checkpoint read back: its state and every tensor by name.
pub struct Checkpoint {
    /// Epoch, seed, metrics and settings.
    pub state: RunState,
    /// Every tensor of the file by name (`model.*`, `momentum.*`, `run.*`).
    pub tensors: HashMap<String, Tensor>,
}

fn cpu(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()
}

fn write_tensors(path: &Path, named: Vec<(String, Tensor)>) -> Result<(), TrainError> {
    atomic::replace_with(path, |tmp| Tensor::write_safetensors(&named, tmp)).map_err(|e| match e {
        Ok(source) => TrainError::Write { path: path.to_path_buf(), source },
        Err(source) => TrainError::Torch { context: format!("writing `{}`", path.display()), source },
    })
}

/// The VarStore's variables by name, on the CPU, in name order.
fn variables(vs: &VarStore) -> Result<Vec<(String, Tensor)>, TrainError> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .map(|(n, t)| Ok((n, cpu(&t).map_err(TrainError::torch("copying weights to the CPU"))?)))
        .collect()
}

/// Writes a checkpoint atomically.
pub fn save(path: &Path, vs: &VarStore, opt: &Sgd, state: &RunState) -> Result<(), TrainError> {
    let torch = TrainError::torch;
    let mut named: Vec<(String, Tensor)> =
        variables(vs)?.into_iter().map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t)).collect();
    for (n, t) in opt.state() {
        named.push((n, cpu(&t).map_err(torch("copying momentum buffers to the CPU"))?));
    }
    let rows: Vec<f64> = state.history.iter().flat_map(|m| m.to_array()).collect();
    let history = Tensor::f_from_slice(&rows)
        .and_then(|t| t.f_view([state.history.len() as i64, EpochMetrics::FIELDS as i64]))
        .map_err(torch("storing the metrics"))?;
    named.push(("run.epoch".into(), Tensor::from_slice(&[state.epoch as i64])));
    named.push(("run.seed".into(), Tensor::from_slice(&[state.seed as i64])));
    named.push(("run.history".into(), history));
    named.push(("run.config".into(), Tensor::from_slice(state.config.as_bytes())));
    write_tensors(path, named)
}

/// Writes the model's variables with their own (torchvision) names, atomically.
pub fn save_weights(path: &Path, vs: &VarStore) -> Result<(), TrainError> {
    write_tensors(path, variables(vs)?)
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
    let bad = |message: String| TrainError::Checkpoint { path: path.to_path_buf(), message };
    if !path.exists() {
        return Err(TrainError::NoCheckpoint { path: path.to_path_buf() });
    }
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("unreadable ({e})")))?
        .into_iter()
        .collect();
    let get = |name: &str| tensors.get(name).ok_or_else(|| bad(format!("no `{name}` entry: not a resnetc checkpoint")));
    let int = |name: &str| -> Result<i64, TrainError> {
        let t = get(name)?;
        if t.kind() != Kind::Int64 || t.numel() != 1 {
            return Err(bad(format!("`{name}` is not one int64")));
        }
        Ok(t.int64_value(&[0]))
    };
    let epoch = usize::try_from(int("run.epoch")?).map_err(|_| bad("negative epoch".into()))?;
    let seed = int("run.seed")? as u64;
    let h = get("run.history")?;
    let size = h.size();
    if h.kind() != Kind::Double || size.len() != 2 || size[1] != EpochMetrics::FIELDS as i64 || size[0] as usize != epoch {
        return Err(bad(format!("`run.history` has shape {size:?}, expected [{epoch}, {}]", EpochMetrics::FIELDS)));
    }
    let rows = Vec::<f64>::try_from(h.flatten(0, -1)).map_err(|e| bad(format!("`run.history`: {e}")))?;
    let history = rows
        .chunks_exact(EpochMetrics::FIELDS)
        .map(|c| EpochMetrics::from_array(std::array::from_fn(|i| c[i])))
        .collect();
    let c = get("run.config")?;
    let bytes = Vec::<u8>::try_from(c).map_err(|e| bad(format!("`run.config`: {e}")))?;
    let config = String::from_utf8(bytes).map_err(|_| bad("`run.config` is not UTF-8".into()))?;
    Ok(Checkpoint { state: RunState { epoch, seed, history, config }, tensors })
}

/// Copies `source[prefix + name]` into every variable of `vs`, checking names and shapes.
/// `what` names the file for errors.
pub fn copy_into(vs: &VarStore, source: &HashMap<String, Tensor>, prefix: &str, path: &Path) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Checkpoint { path: path.to_path_buf(), message };
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in vars {
        let key = format!("{prefix}{name}");
        let src = source.get(&key).ok_or_else(|| bad(format!("no tensor `{key}` for the model's `{name}`")))?;
        if src.size() != var.size() {
            return Err(bad(format!("`{key}` has shape {:?}, the model's `{name}` {:?}", src.size(), var.size())));
        }
        tch::no_grad(|| var.f_copy_(src)).map_err(|e| bad(format!("`{key}`: {e}")))?;
    }
    Ok(())
}

/// Loads a weights file (as written by [`save_weights`], or torchvision's names exported
/// from PyTorch) into `vs`. A checkpoint's model is taken too.
pub fn load_weights(path: &Path, vs: &VarStore) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Checkpoint { path: path.to_path_buf(), message };
    if !path.exists() {
        return Err(bad("no such file".into()));
    }
    let tensors: HashMap<String, Tensor> =
        Tensor::read_safetensors(path).map_err(|e| bad(format!("unreadable ({e})")))?.into_iter().collect();
    let prefix = if tensors.contains_key("run.epoch") { MODEL_PREFIX } else { "" };
    copy_into(vs, &tensors, prefix, path)
}

/// Differences between two runs' JSON settings, ignoring `ignore` keys, as `key: a -> b`.
pub fn config_differences(saved: &str, now: &str, ignore: &[&str]) -> Vec<String> {
    let parse = |s: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).unwrap_or_default();
    let (a, b) = (parse(saved), parse(now));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !ignore.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
            format!("{k}: {} -> {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}
