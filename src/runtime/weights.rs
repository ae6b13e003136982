//! Weights as safetensors files with torchvision's `state_dict` names.
//!
//! Files written by `safetensors.torch.save_file(model.state_dict(), ...)` load directly,
//! BN running statistics included; files written by [`save`] load into torchvision with
//! `model.load_state_dict(safetensors.torch.load_file(...))` (every
//! `num_batches_tracked` is written). Only safetensors is read: pickled checkpoints
//! (`.pt`, `.pth`) can execute code when loaded and are refused.
//!
//! [`LoadMode::Strict`] fails unless every variable is present with the right shape and
//! nothing else is in the file, and reports every problem at once. [`LoadMode::Partial`]
//! loads what matches (fine-tuning a new head) and returns what it skipped.

use tch::nn::VarStore;
use tch::{Kind, TchError, Tensor};

/// How [`load`] treats a file that does not match the network exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LoadMode {
    /// Every variable must be in the file with its shape, and nothing else may be.
    #[default]
    Strict,
    /// Load what matches; report what was skipped (unexpected keys, wrong shapes) and
    /// what was left at its initial value (missing keys).
    Partial,
}

/// A variable whose tensor in the file has another shape (or a non-float dtype).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub name: String,
    /// The network's shape and dtype, e.g. `[64, 3, 7, 7] f32`.
    pub expected: String,
    /// The file's.
    pub found: String,
}

/// What [`load`] did, or in strict mode would have had to ignore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables set from the file.
    pub loaded: Vec<String>,
    /// Variables the file lacks (`num_batches_tracked` is tolerated and not listed).
    pub missing: Vec<String>,
    /// Tensors in the file that the network has no variable for.
    pub unexpected: Vec<String>,
    /// Tensors whose shape (or dtype kind) differs from the variable's.
    pub mismatched: Vec<Mismatch>,
}

impl LoadReport {
    /// True when the file matched the network exactly.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    /// One line per problem, grouped: missing keys, unexpected keys, shape mismatches.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        let mut section = |f: &mut std::fmt::Formatter<'_>, title: &str, lines: Vec<String>| -> std::fmt::Result {
            if lines.is_empty() {
                return Ok(());
            }
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{title} ({}):", lines.len())?;
            for l in lines {
                write!(f, "\n  {l}")?;
            }
            Ok(())
        };
        section(f, "missing keys (in the network, not in the file)", self.missing.clone())?;
        section(f, "unexpected keys (in the file, not in the network)", self.unexpected.clone())?;
        section(
            f,
            "shape mismatches",
            self.mismatched.iter().map(|m| format!("{}: network {}, file {}", m.name, m.expected, m.found)).collect(),
        )
    }
}

/// Errors reading, matching or writing weights and tensor files.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A pickled PyTorch checkpoint: refused, it can execute code when loaded.
    #[error("`{path}` looks like a pickled PyTorch checkpoint; resnetc reads only safetensors (pickles can run code when loaded). Convert it in Python: `safetensors.torch.save_file(torch.load(path, weights_only=True), \"model.safetensors\")`")]
    Pickle { path: String },
    /// The file could not be read or is not valid safetensors.
    #[error("cannot read safetensors file `{path}`")]
    Read {
        path: String,
        #[source]
        source: TchError,
    },
    /// Strict loading found differences between the file and the network.
    #[error("weights in `{path}` do not match the network ({} missing, {} unexpected, {} mismatched; --partial loads what matches):\n{report}", report.missing.len(), report.unexpected.len(), report.mismatched.len())]
    Mismatch { path: String, report: LoadReport },
    /// The file of a `run` input holds no tensor, or more than one.
    #[error("`{path}` must hold exactly one tensor, found {found}{}", if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) })]
    TensorCount { path: String, found: usize, names: Vec<String> },
    /// Copying, converting or writing a tensor failed in libtorch.
    #[error("libtorch failed on `{path}` while {context}")]
    Torch {
        path: String,
        context: String,
        #[source]
        source: TchError,
    },
    /// The output file could not be written.
    #[error("cannot write `{path}`")]
    Write {
        path: String,
        #[source]
        source: TchError,
    },
}

/// Reads every tensor of a safetensors file (refusing pickles).
pub fn read_tensors(path: &str) -> Result<Vec<(String, Tensor)>, WeightsError> {
    if looks_like_pickle(path) {
        return Err(WeightsError::Pickle { path: path.to_string() });
    }
    Tensor::read_safetensors(path).map_err(|source| WeightsError::Read { path: path.to_string(), source })
}

/// A zip archive (torch.save's format since 1.6) or a raw pickle (`0x80` then the
/// protocol, 2 to 5); a safetensors file starts with an 8-byte header length and then the
/// header's `{`.
fn looks_like_pickle(path: &str) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    let Ok(mut f) = std::fs::File::open(path) else { return false };
    if f.read_exact(&mut head).is_err() || head[8] == b'{' {
        return false;
    }
    head[..4] == *b"PK\x03\x04" || (head[0] == 0x80 && (2..=5).contains(&head[1]))
}

/// Reads the one tensor of a safetensors file (the input of `resnetc run`).
pub fn read_single_tensor(path: &str) -> Result<(String, Tensor), WeightsError> {
    let mut tensors = read_tensors(path)?;
    if tensors.len() != 1 {
        let mut names: Vec<String> = tensors.into_iter().map(|(n, _)| n).collect();
        names.sort();
        return Err(WeightsError::TensorCount { path: path.to_string(), found: names.len(), names });
    }
    // Exactly one element: checked above.
    Ok(tensors.remove(0))
}

/// Writes named tensors (moved to the CPU, made contiguous) as a safetensors file.
pub fn write_tensors(path: &str, tensors: &[(String, Tensor)]) -> Result<(), WeightsError> {
    let torch = |context: &str| {
        let (path, context) = (path.to_string(), context.to_string());
        move |source| WeightsError::Torch { path, context, source }
    };
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.f_detach().map_err(torch("detaching"))?;
        let t = if t.is_mkldnn() { t.f_to_dense(None::<Kind>, false).map_err(torch("converting from oneDNN layout"))? } else { t };
        let t = t.f_to_device(tch::Device::Cpu).map_err(torch("moving to the CPU"))?.f_contiguous().map_err(torch("making contiguous"))?;
        cpu.push((name.clone(), t));
    }
    cpu.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&cpu, path).map_err(|source| WeightsError::Write { path: path.to_string(), source })
}

/// Loads a safetensors file into `vs` by name. See the module docs for the modes.
pub fn load(vs: &VarStore, path: &str, mode: LoadMode) -> Result<LoadReport, WeightsError> {
    let file = read_tensors(path)?;
    load_tensors(vs, path, file, mode)
}

/// [`load`] for tensors already in memory (`origin` names them in messages).
pub fn load_tensors(
    vs: &VarStore,
    origin: &str,
    file: Vec<(String, Tensor)>,
    mode: LoadMode,
) -> Result<LoadReport, WeightsError> {
    let vars = vs.variables();
    let mut report = LoadReport::default();
    let mut matched: Vec<(String, Tensor, Tensor)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, src) in file {
        seen.insert(name.clone());
        let Some(var) = vars.get(&name) else {
            report.unexpected.push(name);
            continue;
        };
        let (vsize, fsize) = (var.size(), src.size());
        let same_shape = vsize == fsize
            // num_batches_tracked is 0-d in PyTorch; accept a 1-element vector too.
            || (is_counter(&name) && var.numel() == 1 && src.numel() == 1);
        let float_ok = !var.is_floating_point() || src.is_floating_point();
        if same_shape && float_ok {
            matched.push((name, var.shallow_clone(), src));
        } else {
            report.mismatched.push(Mismatch {
                name,
                expected: describe(&vsize, var.kind()),
                found: describe(&fsize, src.kind()),
            });
        }
    }
    for name in vars.keys() {
        if !seen.contains(name) && !is_counter(name) {
            report.missing.push(name.clone());
        }
    }
    report.missing.sort();
    report.unexpected.sort();
    report.mismatched.sort_by(|a, b| a.name.cmp(&b.name));
    if mode == LoadMode::Strict && !report.is_exact() {
        return Err(WeightsError::Mismatch { path: origin.to_string(), report });
    }
    tch::no_grad(|| -> Result<(), WeightsError> {
        for (name, mut var, src) in matched {
            let src = if is_counter(&name) { src.f_reshape(var.size()).unwrap_or(src) } else { src };
            var.f_copy_(&src).map_err(|source| WeightsError::Torch {
                path: origin.to_string(),
                context: format!("copying `{name}`"),
                source,
            })?;
            report.loaded.push(name);
        }
        Ok(())
    })?;
    report.loaded.sort();
    Ok(report)
}

/// Saves every variable of `vs` (trainable, BN running statistics and
/// `num_batches_tracked`) under its torchvision name.
pub fn save(vs: &VarStore, path: &str) -> Result<(), WeightsError> {
    let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    write_tensors(path, &tensors)
}

fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

fn describe(size: &[i64], kind: Kind) -> String {
    let k = match kind {
        Kind::Float => "f32",
        Kind::Double => "f64",
        Kind::Half => "f16",
        Kind::BFloat16 => "bf16",
        Kind::Int64 => "i64",
        Kind::Int => "i32",
        Kind::Uint8 => "u8",
        Kind::Bool => "bool",
        _ => "other",
    };
    format!("{size:?} {k}")
}
