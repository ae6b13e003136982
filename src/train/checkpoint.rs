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
use crate::runtime::tensor_file::{is_float, kind_name, Entry, TensorFile};
use std::path::{Path, PathBuf};
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

/// A checkpoint read back: its state, and its file to read the tensors from.
pub struct Checkpoint {
    /// Epoch, seed, metrics and settings.
    pub state: RunState,
    /// Every tensor of the file by name (`model.*`, `momentum.*`, `run.*`), read on request.
    pub tensors: StoredTensors,
}

/// The tensors of a safetensors file whose header has been checked
/// ([`crate::runtime::tensor_file`]), read one at a time once their dtype and shape are
/// known to fit: memory stays bounded by the model, whatever the file claims.
pub struct StoredTensors {
    path: PathBuf,
    file: TensorFile,
}

impl StoredTensors {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<StoredTensors, TrainError> {
        if crate::runtime::weights::looks_like_pickle(&path.display().to_string()) {
            let message = "a pickled PyTorch checkpoint; resnetc reads only safetensors (pickles can run code when loaded): \
                           convert it with `safetensors.torch.save_file(torch.load(path, weights_only=True), \"model.safetensors\")`";
            return Err(TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: message.into(),
            });
        }
        let file = TensorFile::open(path).map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: format!("unreadable ({e})"),
        })?;
        Ok(StoredTensors {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file holds a tensor named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.file.entry(name).is_some()
    }

    /// Checks that `name` is in the file with `like`'s shape and a dtype of the same
    /// family (floating point, integer or bool); the message says what differs.
    pub fn check_like(&self, name: &str, like: &Tensor) -> Result<(), String> {
        self.entry_like(name, like).map(|_| ())
    }

    fn entry_like(&self, name: &str, like: &Tensor) -> Result<&Entry, String> {
        let entry = self
            .file
            .entry(name)
            .ok_or_else(|| format!("no tensor `{name}`"))?;
        let (size, kind) = (like.size(), like.kind());
        let family = |k: Kind| {
            if is_float(k) {
                "floating-point"
            } else if k == Kind::Bool {
                "bool"
            } else {
                "integer"
            }
        };
        if entry.shape != size || family(entry.kind) != family(kind) {
            return Err(format!(
                "`{name}` is {:?} {}, expected {size:?} {}",
                entry.shape,
                kind_name(entry.kind),
                kind_name(kind)
            ));
        }
        Ok(entry)
    }

    /// Reads `name` if [`StoredTensors::check_like`] accepts it.
    pub fn read_like(&self, name: &str, like: &Tensor) -> Result<Tensor, String> {
        let entry = self.entry_like(name, like)?;
        self.file.read(entry).map_err(|e| format!("`{name}`: {e}"))
    }

    /// Reads `name`, which must have dtype `kind` and a shape `shape_ok` accepts, checked
    /// before reading.
    fn read_checked(
        &self,
        name: &str,
        kind: Kind,
        what: &str,
        shape_ok: impl Fn(&[i64]) -> bool,
    ) -> Result<Tensor, String> {
        let entry = self
            .file
            .entry(name)
            .ok_or_else(|| format!("no `{name}` entry: not a resnetc checkpoint"))?;
        if entry.kind != kind || !shape_ok(&entry.shape) {
            return Err(format!(
                "`{name}` is {:?} {}, expected {what}",
                entry.shape,
                kind_name(entry.kind)
            ));
        }
        self.file.read(entry).map_err(|e| format!("`{name}`: {e}"))
    }
}

/// The longest `run.config` read (the settings are a few hundred bytes of JSON).
const MAX_CONFIG_BYTES: i64 = 1 << 20;

fn cpu(t: &Tensor) -> Result<Tensor, tch::TchError> {
    t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()
}

fn write_tensors(path: &Path, named: Vec<(String, Tensor)>) -> Result<(), TrainError> {
    atomic::replace_with(path, |tmp| Tensor::write_safetensors(&named, tmp)).map_err(|e| match e {
        Ok(source) => TrainError::Write {
            path: path.to_path_buf(),
            source,
        },
        Err(source) => TrainError::Torch {
            context: format!("writing `{}`", path.display()),
            source,
        },
    })
}

/// The VarStore's variables by name, on the CPU, in name order.
fn variables(vs: &VarStore) -> Result<Vec<(String, Tensor)>, TrainError> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .map(|(n, t)| {
            Ok((
                n,
                cpu(&t).map_err(TrainError::torch("copying weights to the CPU"))?,
            ))
        })
        .collect()
}

/// Writes a checkpoint atomically.
pub fn save(path: &Path, vs: &VarStore, opt: &Sgd, state: &RunState) -> Result<(), TrainError> {
    let torch = TrainError::torch;
    let mut named: Vec<(String, Tensor)> = variables(vs)?
        .into_iter()
        .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t))
        .collect();
    for (n, t) in opt.state() {
        named.push((
            n,
            cpu(&t).map_err(torch("copying momentum buffers to the CPU"))?,
        ));
    }
    let rows: Vec<f64> = state.history.iter().flat_map(|m| m.to_array()).collect();
    let history = Tensor::f_from_slice(&rows)
        .and_then(|t| t.f_view([state.history.len() as i64, EpochMetrics::FIELDS as i64]))
        .map_err(torch("storing the metrics"))?;
    named.push((
        "run.epoch".into(),
        Tensor::from_slice(&[state.epoch as i64]),
    ));
    named.push(("run.seed".into(), Tensor::from_slice(&[state.seed as i64])));
    named.push(("run.history".into(), history));
    named.push((
        "run.config".into(),
        Tensor::from_slice(state.config.as_bytes()),
    ));
    write_tensors(path, named)
}

/// Writes the model's variables with their own (torchvision) names, atomically; a
/// float64 run's in float32, the dtype every other command loads.
pub fn save_weights(path: &Path, vs: &VarStore) -> Result<(), TrainError> {
    let vars = variables(vs)?
        .into_iter()
        .map(|(n, t)| match t.kind() {
            tch::Kind::Double => t
                .f_to_kind(tch::Kind::Float)
                .map(|t| (n, t))
                .map_err(TrainError::torch("converting weights to float32")),
            _ => Ok((n, t)),
        })
        .collect::<Result<_, _>>()?;
    write_tensors(path, vars)
}

/// Reads a checkpoint written by [`save`]: its header and the `run.*` entries, whose
/// dtypes and shapes are checked before they are read; the model's and the optimizer's
/// tensors are read later, against the model ([`copy_into`], [`Sgd::load_state`]).
pub fn load(path: &Path) -> Result<Checkpoint, TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        return Err(TrainError::NoCheckpoint {
            path: path.to_path_buf(),
        });
    }
    let tensors = StoredTensors::open(path)?;
    let one_int = |name: &str| -> Result<i64, TrainError> {
        tensors
            .read_checked(name, Kind::Int64, "one i64", |s| {
                s.iter().product::<i64>() == 1
            })
            .and_then(|t| {
                t.f_reshape([1])
                    .and_then(|t| t.f_int64_value(&[0]))
                    .map_err(|e| format!("`{name}`: {e}"))
            })
            .map_err(bad)
    };
    let epoch = usize::try_from(one_int("run.epoch")?).map_err(|_| bad("negative epoch".into()))?;
    let seed = one_int("run.seed")? as u64;
    let fields = EpochMetrics::FIELDS as i64;
    let h = tensors
        .read_checked(
            "run.history",
            Kind::Double,
            &format!("[{epoch}, {fields}] f64"),
            |s| s == [epoch as i64, fields],
        )
        .map_err(bad)?;
    let rows =
        Vec::<f64>::try_from(h.flatten(0, -1)).map_err(|e| bad(format!("`run.history`: {e}")))?;
    let history = rows
        .chunks_exact(EpochMetrics::FIELDS)
        .map(|c| EpochMetrics::from_array(std::array::from_fn(|i| c[i])))
        .collect();
    let c = tensors
        .read_checked(
            "run.config",
            Kind::Uint8,
            "[n] u8 of at most 1 MiB",
            |s| matches!(s, &[n] if n <= MAX_CONFIG_BYTES),
        )
        .map_err(bad)?;
    let bytes = Vec::<u8>::try_from(c).map_err(|e| bad(format!("`run.config`: {e}")))?;
    let config = String::from_utf8(bytes).map_err(|_| bad("`run.config` is not UTF-8".into()))?;
    Ok(Checkpoint {
        state: RunState {
            epoch,
            seed,
            history,
            config,
        },
        tensors,
    })
}

/// Copies `source[prefix + name]` into every variable of `vs`. Names, shapes and dtypes
/// are all checked before any tensor is read; every problem is reported (the first ten
/// and a count).
pub fn copy_into(vs: &VarStore, source: &StoredTensors, prefix: &str) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: source.path().to_path_buf(),
        message,
    };
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let problems: Vec<String> = vars
        .iter()
        .filter_map(|(name, var)| {
            source
                .check_like(&format!("{prefix}{name}"), var)
                .err()
                .map(|m| format!("{m} (the model's `{name}`)"))
        })
        .collect();
    if !problems.is_empty() {
        let shown = problems
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = if problems.len() > 10 {
            format!("; and {} more", problems.len() - 10)
        } else {
            String::new()
        };
        return Err(bad(format!("does not fit the model: {shown}{more}")));
    }
    for (name, mut var) in vars {
        let key = format!("{prefix}{name}");
        let src = source.read_like(&key, &var).map_err(bad)?;
        tch::no_grad(|| var.f_copy_(&src)).map_err(|e| bad(format!("`{key}`: {e}")))?;
    }
    Ok(())
}

/// Loads a weights file (as written by [`save_weights`], or torchvision's names exported
/// from PyTorch) into `vs`. A checkpoint's model is taken too.
pub fn load_weights(path: &Path, vs: &VarStore) -> Result<(), TrainError> {
    let tensors = StoredTensors::open(path)?;
    let prefix = if tensors.contains("run.epoch") {
        MODEL_PREFIX
    } else {
        ""
    };
    copy_into(vs, &tensors, prefix)
}

/// Differences between two runs' JSON settings, ignoring `ignore` keys, as `key: a -> b`.
pub fn config_differences(saved: &str, now: &str, ignore: &[&str]) -> Vec<String> {
    let parse = |s: &str| {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s).unwrap_or_default()
    };
    let (a, b) = (parse(saved), parse(now));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !ignore.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .map(|k| {
            let show =
                |v: Option<&serde_json::Value>| v.map_or("(none)".to_string(), |v| v.to_string());
            format!("{k}: {} -> {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}
