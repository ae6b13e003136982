//! Weights as safetensors files with torchvision's `state_dict` names.
//!
//! Files written by `safetensors.torch.save_file(model.state_dict(), ...)` load directly,
//! BN running statistics included; files written by [`save`] load into torchvision with
//! `model.load_state_dict(safetensors.torch.load_file(...))` (every
//! `num_batches_tracked` is written). [`load_file`] also takes PyTorch checkpoints and
//! Keras weights files through [`crate::import`] (a restricted unpickler: nothing in a
//! pickle is executed); inputs and checkpoints of runs are safetensors only.
//!
//! [`LoadMode::Strict`] fails unless every variable is present with the right shape and
//! nothing else is in the file, and reports every problem at once. [`LoadMode::Partial`]
//! loads what matches (fine-tuning a new head) and returns what it skipped.

use super::tensor_file::{is_float, kind_name, Entry, TensorFile, TensorFileError};
use crate::import::report::is_counter;
use crate::import::{self, DType, TensorSource};
pub use crate::import::{LoadMode, LoadReport, Mismatch};
use std::io::Read;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Kind, TchError, Tensor};

/// Errors reading, matching or writing weights and tensor files.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A pickled PyTorch checkpoint where a safetensors file is required (an input).
    #[error("`{path}` looks like a pickled PyTorch checkpoint; this file must be safetensors (weights files are read by --weights and `resnetc import`)")]
    Pickle { path: String },
    /// A PyTorch checkpoint or Keras file that could not be imported.
    #[error("cannot import `{path}`")]
    Import {
        path: String,
        #[source]
        source: import::ImportError,
    },
    /// The file could not be read or is not valid safetensors.
    #[error("cannot read safetensors file `{path}`")]
    Read {
        path: String,
        #[source]
        source: TensorFileError,
    },
    /// Strict loading found differences between the file and the network.
    #[error("weights in `{path}` do not match the network ({} missing, {} unexpected, {} mismatched; --partial loads what matches):\n{report}", report.missing.len(), report.unexpected.len(), report.mismatched.len())]
    Mismatch { path: String, report: LoadReport },
    /// The file of a `run` input holds no tensor, or more than one.
    #[error("`{path}` must hold exactly one tensor, found {found}{}", if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) })]
    TensorCount {
        path: String,
        found: usize,
        names: Vec<String>,
    },
    /// The tensor of a `run` input has a dtype or shape the network cannot take.
    #[error("input tensor `{name}` in `{path}` does not fit the network: it {problem}")]
    Input {
        path: String,
        name: String,
        problem: String,
    },
    /// The tensor of a `run` input is larger than [`MAX_INPUT_BYTES`].
    #[error("input tensor `{name}` in `{path}` holds {bytes} bytes, more than the {} resnetc run reads at once; split the batch into several files", crate::files::human(*max))]
    InputTooLarge {
        path: String,
        name: String,
        bytes: u64,
        max: u64,
    },
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
    /// The output path was refused or could not be replaced.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// The largest input tensor `resnetc run` reads: 1 GiB (about 1,700 images of 3x224x224
/// in f32). Larger batches are split into several files.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Opens a safetensors file and checks its header (refusing pickles); no tensor is read.
pub fn open(path: &str) -> Result<TensorFile, WeightsError> {
    if looks_like_pickle(path) {
        return Err(WeightsError::Pickle {
            path: path.to_string(),
        });
    }
    TensorFile::open(Path::new(path)).map_err(|source| WeightsError::Read {
        path: path.to_string(),
        source,
    })
}

/// Reads every tensor of a safetensors file (refusing pickles), in name order. Memory is
/// bounded by the file's length; [`load`] and [`read_input`] read only what fits the
/// network.
pub fn read_tensors(path: &str) -> Result<Vec<(String, Tensor)>, WeightsError> {
    open(path)?.read_all().map_err(|source| WeightsError::Read {
        path: path.to_string(),
        source,
    })
}

/// A zip archive (torch.save's format since 1.6) or a raw pickle (`0x80` then the
/// protocol, 2 to 5); a safetensors file starts with an 8-byte header length and then the
/// header's `{`.
pub(crate) fn looks_like_pickle(path: &str) -> bool {
    let mut head = [0u8; 9];
    let Ok((mut f, _)) = crate::files::open_regular(Path::new(path)) else {
        return false;
    };
    if f.read_exact(&mut head).is_err() || head[8] == b'{' {
        return false;
    }
    head[..4] == *b"PK\x03\x04" || (head[0] == 0x80 && (2..=5).contains(&head[1]))
}

/// Reads the one tensor of a safetensors file (the input of `resnetc run`).
pub fn read_single_tensor(path: &str) -> Result<(String, Tensor), WeightsError> {
    let file = open(path)?;
    let entry = single_entry(path, &file)?;
    let t = file.read(entry).map_err(|source| WeightsError::Read {
        path: path.to_string(),
        source,
    })?;
    Ok((entry.name.clone(), t))
}

fn single_entry<'f>(path: &str, file: &'f TensorFile) -> Result<&'f Entry, WeightsError> {
    match file.entries() {
        [one] => Ok(one),
        many => {
            let mut names: Vec<String> = many.iter().map(|e| e.name.clone()).collect();
            names.sort();
            Err(WeightsError::TensorCount {
                path: path.to_string(),
                found: names.len(),
                names,
            })
        }
    }
}

/// Reads the input of `resnetc run`: exactly one floating-point `[N, channels, H, W]`
/// tensor with N, H, W >= 1, of at most [`MAX_INPUT_BYTES`]. Dtype, rank, channels and
/// size are checked from the header, before the data is read.
pub fn read_input(path: &str, channels: i64) -> Result<(String, Tensor), WeightsError> {
    let file = open(path)?;
    let entry = single_entry(path, &file)?;
    let input = |problem: String| WeightsError::Input {
        path: path.to_string(),
        name: entry.name.clone(),
        problem,
    };
    if !is_float(entry.kind) {
        return Err(input(format!(
            "has dtype {}; a floating-point tensor (f32, f64, f16 or bf16) is required",
            kind_name(entry.kind)
        )));
    }
    let ok_shape = matches!(entry.shape.as_slice(), &[n, c, h, w] if n >= 1 && c == channels && h >= 1 && w >= 1);
    if !ok_shape {
        return Err(input(format!(
            "has shape {:?}; the network takes [N, {channels}, H, W] (N, H, W >= 1)",
            entry.shape
        )));
    }
    if entry.bytes > MAX_INPUT_BYTES {
        return Err(WeightsError::InputTooLarge {
            path: path.to_string(),
            name: entry.name.clone(),
            bytes: entry.bytes,
            max: MAX_INPUT_BYTES,
        });
    }
    let t = file.read(entry).map_err(|source| WeightsError::Read {
        path: path.to_string(),
        source,
    })?;
    Ok((entry.name.clone(), t))
}

/// Writes named tensors (moved to the CPU, made contiguous) as a safetensors file.
pub fn write_tensors(path: &str, tensors: &[(String, Tensor)]) -> Result<(), WeightsError> {
    let torch = |context: &str| {
        let (path, context) = (path.to_string(), context.to_string());
        move |source| WeightsError::Torch {
            path,
            context,
            source,
        }
    };
    let mut cpu = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.f_detach().map_err(torch("detaching"))?;
        let t = if t.is_mkldnn() {
            t.f_to_dense(None::<Kind>, false)
                .map_err(torch("converting from oneDNN layout"))?
        } else {
            t
        };
        let t = t
            .f_to_device(tch::Device::Cpu)
            .map_err(torch("moving to the CPU"))?
            .f_contiguous()
            .map_err(torch("making contiguous"))?;
        cpu.push((name.clone(), t));
    }
    cpu.sort_by(|a, b| a.0.cmp(&b.0));
    // Through an exclusive temporary file and a rename (links, folders and devices refused).
    crate::output::replace_with(std::path::Path::new(path), &[], |_, tmp| {
        Tensor::write_safetensors(&cpu, tmp)
    })
    .map_err(|e| match e {
        crate::output::ReplaceError::Output(e) => WeightsError::Output(e),
        crate::output::ReplaceError::Write(source) => WeightsError::Write {
            path: path.to_string(),
            source,
        },
    })
}

/// Loads a safetensors file into `vs` by name. See the module docs for the modes. Names,
/// shapes and dtypes are compared from the file's header first; only the tensors that
/// fit are read, so memory stays bounded by the network whatever the file claims.
pub fn load(vs: &VarStore, path: &str, mode: LoadMode) -> Result<LoadReport, WeightsError> {
    let file = open(path)?;
    let header = file
        .entries()
        .iter()
        .map(|e| (e.name.clone(), e.shape.clone(), e.kind));
    let (report, matched) = plan(vs, header, mode, path)?;
    copy_matched(path, report, matched, |name| {
        let entry = file
            .entry(name)
            .expect("matched names are unique names of the file's entries");
        file.read(entry).map_err(|source| WeightsError::Read {
            path: path.to_string(),
            source,
        })
    })
}

/// Loads any weights file resnetc reads into `vs`, the variables of `compiled`'s
/// network: safetensors as [`load`] does; a PyTorch checkpoint (torch.save's archive:
/// `.pth`, `.pt`, `.bin`) or Keras 3 weights (`.weights.h5`, `.keras`) through
/// [`crate::import`], with the same checks (every tensor listed and compared with the
/// network before any is read; strict or partial). State_dict wrappers and `module.`
/// prefixes are handled as by `resnetc import`.
pub fn load_file(
    vs: &VarStore,
    path: &str,
    mode: LoadMode,
    compiled: &crate::Compiled,
) -> Result<LoadReport, WeightsError> {
    if !is_foreign(Path::new(path)) {
        return load(vs, path, mode);
    }
    let failed = |source| WeightsError::Import {
        path: path.to_string(),
        source,
    };
    let mut source = import::open(Path::new(path), compiled).map_err(failed)?;
    import::normalize(source.as_mut(), None).map_err(failed)?;
    load_source(vs, path, source.as_mut(), mode)
}

/// Whether `path` holds a weights file that [`load_file`] reads through
/// [`crate::import`] (a zip archive, HDF5 or a raw pickle) rather than safetensors.
pub fn is_foreign(path: &Path) -> bool {
    use import::Format;
    matches!(
        import::sniff(path),
        Ok(Format::Zip | Format::Hdf5 | Format::Pickle)
    )
}

/// [`load`] for an opened import source (`origin` names it in messages).
pub fn load_source(
    vs: &VarStore,
    origin: &str,
    source: &mut dyn TensorSource,
    mode: LoadMode,
) -> Result<LoadReport, WeightsError> {
    let index: std::collections::HashMap<String, usize> = source
        .tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.name.is_empty())
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let header: Vec<(String, Vec<i64>, Kind)> = source
        .tensors()
        .iter()
        .filter(|t| !t.name.is_empty())
        .map(|t| {
            let shape = t.shape.iter().map(|&d| d.min(i64::MAX as u64) as i64).collect();
            (t.name.clone(), shape, kind_of(t.dtype))
        })
        .collect();
    let extras = source.extras().to_vec();
    let (report, matched) = plan_with(vs, header.into_iter(), &extras, mode, origin)?;
    copy_matched(origin, report, matched, |name| {
        let i = index[name];
        let failed = |source| WeightsError::Import {
            path: origin.to_string(),
            source,
        };
        let data = source.read(i).map_err(failed)?;
        let t = &source.tensors()[i];
        let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        Tensor::f_from_data_size(&data, &shape, kind_of(t.dtype)).map_err(|source| {
            WeightsError::Torch {
                path: origin.to_string(),
                context: format!("making tensor `{name}`"),
                source,
            }
        })
    })
}

/// libtorch's kind of an imported dtype.
fn kind_of(d: DType) -> Kind {
    match d {
        DType::F64 => Kind::Double,
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::I16 => Kind::Int16,
        DType::I8 => Kind::Int8,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
    }
}

/// [`load`] for tensors already in memory (`origin` names them in messages).
pub fn load_tensors(
    vs: &VarStore,
    origin: &str,
    file: Vec<(String, Tensor)>,
    mode: LoadMode,
) -> Result<LoadReport, WeightsError> {
    let header = file.iter().map(|(n, t)| (n.clone(), t.size(), t.kind()));
    let (report, matched) = plan(vs, header, mode, origin)?;
    let mut tensors: std::collections::HashMap<String, Tensor> = file.into_iter().collect();
    copy_matched(origin, report, matched, |name| {
        Ok(tensors
            .remove(name)
            .expect("matched names are unique names of the tensors"))
    })
}

/// Compares the file's (name, shape, kind) with the network's variables: the report and
/// the variables to set, each with its name in the file. Fails in strict mode unless the
/// two match exactly.
fn plan(
    vs: &VarStore,
    file: impl Iterator<Item = (String, Vec<i64>, Kind)>,
    mode: LoadMode,
    origin: &str,
) -> Result<(LoadReport, Vec<(String, Tensor)>), WeightsError> {
    plan_with(vs, file, &[], mode, origin)
}

/// [`plan`] with entries of the file that are not tensors (`extras`), unexpected keys.
fn plan_with(
    vs: &VarStore,
    file: impl Iterator<Item = (String, Vec<i64>, Kind)>,
    extras: &[String],
    mode: LoadMode,
    origin: &str,
) -> Result<(LoadReport, Vec<(String, Tensor)>), WeightsError> {
    let vars = vs.variables();
    let mut report = LoadReport::default();
    report.unexpected.extend(extras.iter().cloned());
    let mut matched: Vec<(String, Tensor)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (name, fsize, fkind) in file {
        if !seen.insert(name.clone()) {
            // Only tensors in memory can repeat a name (a file's header is a JSON object).
            report.unexpected.push(format!("{name} (a second time)"));
            continue;
        }
        let Some(var) = vars.get(&name) else {
            report.unexpected.push(name);
            continue;
        };
        let vsize = var.size();
        let same_shape = vsize == fsize
            // num_batches_tracked is 0-d in PyTorch; accept a 1-element vector too.
            || (is_counter(&name) && var.numel() == 1 && fsize.iter().product::<i64>() == 1);
        // A floating-point variable takes any floating-point dtype (converted, as
        // PyTorch's load_state_dict does); integers and booleans are refused.
        let kind_ok = if is_float(var.kind()) {
            is_float(fkind)
        } else {
            !matches!(fkind, Kind::Bool)
        };
        if same_shape && kind_ok {
            matched.push((name, var.shallow_clone()));
        } else {
            report.mismatched.push(Mismatch {
                name,
                expected: describe(&vsize, var.kind()),
                found: describe(&fsize, fkind),
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
        return Err(WeightsError::Mismatch {
            path: origin.to_string(),
            report,
        });
    }
    Ok((report, matched))
}

/// Copies each matched variable's tensor, fetched by name, into it.
fn copy_matched(
    origin: &str,
    mut report: LoadReport,
    matched: Vec<(String, Tensor)>,
    mut fetch: impl FnMut(&str) -> Result<Tensor, WeightsError>,
) -> Result<LoadReport, WeightsError> {
    tch::no_grad(|| -> Result<(), WeightsError> {
        for (name, mut var) in matched {
            let src = fetch(&name)?;
            let src = if is_counter(&name) {
                src.f_reshape(var.size()).unwrap_or(src)
            } else {
                src
            };
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

fn describe(size: &[i64], kind: Kind) -> String {
    format!("{size:?} {}", kind_name(kind))
}
