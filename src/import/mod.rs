//! Pretrained weights from PyTorch checkpoints and Keras files, without Python and
//! without running a pickle: `resnetc import`, and `--weights FILE.pth|.h5|.keras` of
//! the runtime commands.
//!
//! - [`torch`]: `torch.save` archives (`.pth`, `.pt`, `.bin`), read by a restricted
//!   unpickler ([`pickle`]) that builds tensors, dicts and numbers and refuses every
//!   other Python global by name; a state_dict inside `{"state_dict": ...}` or
//!   `{"model": ...}` is found, DataParallel's `module.` prefixes are removed.
//! - [`keras`]: Keras 3 `.weights.h5` files and `.keras` archives, with Keras
//!   Applications' layer names mapped to resnetc's and kernels transposed.
//! - [`rename`]: `--map FILE`, regex rename rules for other code bases.
//!
//! Every source is first read as a list of [`SourceTensor`]s (name, dtype, shape): the
//! file's structure is checked, nothing is read yet. [`plan`] compares that list with
//! the spec's variables ([`expected`]) and lists every missing, unexpected and
//! mis-shaped key at once; only the tensors that fit are then read
//! ([`TensorSource::read`]), so memory is bounded by the network, whatever the file
//! claims. [`write_safetensors`] converts dtypes on request and writes atomically.
//!
//! This module needs no libtorch; the runtime (`runtime::weights::load_file`) copies the
//! same tensors into a network's variables.

pub mod keras;
pub mod pickle;
pub mod rename;
pub mod report;
pub mod torch;

use std::io::Read;
use std::path::Path;

pub use report::{LoadMode, LoadReport, Mismatch};

use crate::valid::Network;
use crate::Compiled;

/// Element types of tensors in weights files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// A floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
    }

    /// The safetensors name (`F32`).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }

    /// `--dtype f32|f16|bf16`.
    pub fn parse_float(s: &str) -> Option<DType> {
        Some(match s {
            "f32" => DType::F32,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            _ => return None,
        })
    }
}

impl std::fmt::Display for DType {
    /// `f32`, `i64`: the names resnetc's messages use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        })
    }
}

/// One tensor a weights file offers, under the name it has for resnetc (after the
/// format's own mapping, prefixes removed and `--map` applied), in resnetc's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    /// Where it is in the file, for messages (the checkpoint key, the Keras variable).
    pub origin: String,
}

impl SourceTensor {
    /// Number of elements, `None` on overflow.
    pub fn numel(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
}

/// What a [`TensorSource`] holds besides its data: its tensors, the entries that are
/// not tensors, and notes on what opening did.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// The tensors, in the file's order.
    pub tensors: Vec<SourceTensor>,
    /// Entries that are not tensors, as `name (what it is)`: unexpected keys.
    pub extras: Vec<String>,
    /// What opening did to the file's structure (`took the state_dict under ...`).
    pub notes: Vec<String>,
}

/// A weights file opened and checked, its tensors listed but not read.
pub trait TensorSource {
    /// What the file is, for messages (`PyTorch checkpoint, torch.save archive`).
    fn describe(&self) -> String;
    /// The tensors, extras and notes.
    fn listing(&self) -> &Listing;
    /// The same, to rename tensors.
    fn listing_mut(&mut self) -> &mut Listing;
    /// Reads tensor `index`: its elements in row-major order, little-endian, in its
    /// dtype (`numel * size` bytes).
    fn read(&mut self, index: usize) -> Result<Vec<u8>, ImportError>;

    /// The tensors, in the file's order.
    fn tensors(&self) -> &[SourceTensor] {
        &self.listing().tensors
    }
    /// Entries that are not tensors: unexpected keys.
    fn extras(&self) -> &[String] {
        &self.listing().extras
    }
    /// What opening did to the file's structure.
    fn notes(&self) -> &[String] {
        &self.listing().notes
    }
    /// Gives tensor `index` another name.
    fn rename(&mut self, index: usize, name: String) {
        self.listing_mut().tensors[index].name = name;
    }
}

/// Why a weights file could not be imported. Messages name no file: the caller's
/// error does.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not what its format requires, or holds something resnetc refuses.
    #[error("{0}")]
    Format(String),
    /// The checkpoint's pickle was refused.
    #[error("its pickle `{entry}` was refused")]
    Pickle {
        entry: String,
        #[source]
        source: pickle::PickleError,
    },
    /// Strict loading found differences between the file and the network.
    #[error("the weights do not match the network ({} missing, {} unexpected, {} mismatched; --partial loads what matches):\n{report}", report.missing.len(), report.unexpected.len(), report.mismatched.len())]
    Mismatch { report: LoadReport },
    /// Two keys of the file have the same name after renaming.
    #[error("{0}")]
    Rename(String),
}

/// What kind of weights file a path holds, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Safetensors (8-byte header length, then `{`).
    Safetensors,
    /// A zip archive: torch.save's format, or a `.keras` file.
    Zip,
    /// HDF5 (a Keras `.weights.h5`).
    Hdf5,
    /// A raw pickle (torch.save's legacy format).
    Pickle,
    /// Anything else.
    Unknown,
}

const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Sniffs the format of the regular file at `path`.
pub fn sniff(path: &Path) -> std::io::Result<Format> {
    let (f, _) = crate::files::open_regular(path)?;
    let mut head = Vec::with_capacity(9);
    f.take(9).read_to_end(&mut head)?;
    Ok(if head.len() == 9 && head[8] == b'{' {
        Format::Safetensors
    } else if head.starts_with(b"PK\x03\x04") {
        Format::Zip
    } else if head.starts_with(HDF5_SIGNATURE) {
        Format::Hdf5
    } else if torch::is_raw_pickle(&head) {
        Format::Pickle
    } else {
        Format::Unknown
    })
}

/// The largest Keras HDF5 file read into memory (ResNet152's weights are 240 MB).
pub const MAX_HDF5_BYTES: u64 = 4 << 30;

/// Opens a PyTorch checkpoint or Keras weights file for `compiled`'s network (Keras
/// names are mapped through the network's structure); its tensors are listed, not read.
/// A safetensors file is refused here: it needs no import.
pub fn open(path: &Path, compiled: &Compiled) -> Result<Box<dyn TensorSource>, ImportError> {
    match sniff(path)? {
        Format::Zip => {
            let (file, len) = crate::files::open_regular(path)?;
            let is_keras = {
                let archive = zip::ZipArchive::new(&file).ok();
                archive.is_some_and(|a| a.file_names().any(|n| n == "model.weights.h5"))
            };
            if is_keras {
                return open_keras_archive(file, len, compiled).map(|k| Box::new(k) as Box<dyn TensorSource>);
            }
            Ok(Box::new(torch::TorchCheckpoint::open(file, len)?))
        }
        Format::Hdf5 => {
            let (_, len) = crate::files::open_regular(path)?;
            if len > MAX_HDF5_BYTES {
                return Err(ImportError::Format(format!(
                    "an HDF5 file of {len} bytes, more than resnetc reads ({})",
                    crate::files::human(MAX_HDF5_BYTES)
                )));
            }
            let bytes = crate::files::read_bounded(path, MAX_HDF5_BYTES)?;
            let mut k = keras::KerasWeights::from_bytes(bytes, &compiled.network, "Keras weights, HDF5")?;
            k.note(format!(
                "a .weights.h5 file does not record BN epsilon: the spec's {:e} is used (Keras Applications use 1.001e-5)",
                compiled.model.batch_norm.eps
            ));
            Ok(Box::new(k))
        }
        Format::Pickle => Err(torch::legacy_error()),
        Format::Safetensors => Err(ImportError::Format(
            "already a safetensors file: give it to --weights as it is".into(),
        )),
        Format::Unknown => Err(ImportError::Format(
            "neither a PyTorch checkpoint (torch.save's zip archive), a Keras `.weights.h5` / `.keras` file, nor safetensors".into(),
        )),
    }
}

/// A `.keras` archive: its `model.weights.h5`, with the BN epsilons of its
/// `config.json` checked against the spec's.
fn open_keras_archive(
    file: std::fs::File,
    len: u64,
    compiled: &Compiled,
) -> Result<keras::KerasWeights, ImportError> {
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| ImportError::Format(format!("not a readable zip archive ({e})")))?;
    let config = read_stored(&mut archive, "config.json", keras::MAX_CONFIG_BYTES, len)?;
    let h5 = read_stored(&mut archive, "model.weights.h5", MAX_HDF5_BYTES, len)?;
    let spec_eps = compiled.model.batch_norm.eps;
    let wrong: Vec<String> = keras::bn_epsilons(&config)?
        .into_iter()
        .filter(|(_, e)| (e - spec_eps).abs() > 1e-6 * spec_eps.abs().max(1e-12))
        .map(|(n, e)| format!("{n} {e:e}"))
        .collect();
    if !wrong.is_empty() {
        return Err(ImportError::Format(format!(
            "the Keras model's BatchNormalization epsilon differs from the spec's batch_norm eps {spec_eps:e}: {}{}; set `batch_norm: {{eps: ...}}` in the spec to the model's",
            wrong.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if wrong.len() > 5 { format!(" and {} more", wrong.len() - 5) } else { String::new() }
        )));
    }
    let mut k =
        keras::KerasWeights::from_bytes(h5, &compiled.network, "Keras model, .keras archive")?;
    k.note(format!(
        "BN epsilon {spec_eps:e} checked against the model's config.json"
    ));
    Ok(k)
}

/// Reads entry `name` of a zip archive of `len` bytes: stored without compression (as
/// torch.save and Keras store every entry) and of at most `max` bytes, both checked
/// before anything is allocated; the entry's CRC is checked as it is read.
pub(crate) fn read_stored<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    max: u64,
    len: u64,
) -> Result<Vec<u8>, ImportError> {
    let entry = archive
        .by_name(name)
        .map_err(|e| ImportError::Format(format!("cannot open entry `{name}` ({e})")))?;
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(ImportError::Format(format!(
            "entry `{name}` is compressed ({}); torch.save and Keras store their entries uncompressed",
            entry.compression()
        )));
    }
    let size = entry.size();
    if size > max.min(len) {
        return Err(ImportError::Format(format!(
            "entry `{name}` holds {size} bytes, more than resnetc reads ({})",
            crate::files::human(max.min(len))
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry.take(size + 1).read_to_end(&mut bytes).map_err(|e| {
        ImportError::Format(format!(
            "cannot read entry `{name}` ({e}); is the file truncated?"
        ))
    })?;
    if bytes.len() as u64 != size {
        return Err(ImportError::Format(format!(
            "entry `{name}` should hold {size} bytes, {} were read",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Removes DataParallel's `module.` prefix (when every key has it) and applies a
/// rename map; returns notes on what changed, and the keys no rule of the map matched.
pub fn normalize(
    source: &mut dyn TensorSource,
    map: Option<&rename::RenameMap>,
) -> Result<(Vec<String>, Vec<String>), ImportError> {
    let mut notes: Vec<String> = source.notes().to_vec();
    let names: Vec<String> = source.tensors().iter().map(|t| t.name.clone()).collect();
    if !names.is_empty() && names.iter().all(|n| n.starts_with("module.")) {
        for (i, n) in names.iter().enumerate() {
            source.rename(i, n["module.".len()..].to_string());
        }
        notes.push("removed the `module.` prefix of every key (DataParallel)".into());
    }
    let mut unmatched = Vec::new();
    if let Some(map) = map {
        let names: Vec<String> = source.tensors().iter().map(|t| t.name.clone()).collect();
        let renamed = map.apply(names.iter().map(String::as_str));
        for (i, new) in renamed.names.into_iter().enumerate() {
            // A dropped key gets a name no network has; `plan` then leaves it out.
            source.rename(i, new.unwrap_or_default());
        }
        unmatched = renamed.unmatched;
    }
    let mut seen = std::collections::HashMap::new();
    for t in source.tensors() {
        if t.name.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(t.name.clone(), t.origin.clone()) {
            return Err(ImportError::Rename(format!(
                "two tensors of the file are both named `{}` ({first} and {})",
                t.name, t.origin
            )));
        }
    }
    Ok((notes, unmatched))
}

/// One variable of a network, as a weights file must provide it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub shape: Vec<u64>,
    /// False for BN's `num_batches_tracked` (an i64 scalar that a file may lack).
    pub float: bool,
}

/// Every variable of `network` in execution order: the parameters and BN statistics,
/// then each BN's `num_batches_tracked`. The runtime's variables are the same (a test
/// checks it for every shipped spec).
pub fn expected(network: &Network) -> Vec<Expected> {
    let mut out: Vec<Expected> = crate::back::onnx::param_shapes(network)
        .into_iter()
        .map(|(name, shape)| Expected {
            name,
            shape: shape.into_iter().map(|d| d as u64).collect(),
            float: true,
        })
        .collect();
    out.extend(network.batch_norms().map(|n| Expected {
        name: format!("{}.num_batches_tracked", n.name),
        shape: Vec::new(),
        float: false,
    }));
    out
}

/// The tensors a checkpoint of `network` holds (a state_dict saved by the runtime, or by
/// PyTorch from the same model): every variable of [`expected`] with its name, shape
/// and dtype (f32, and i64 for `num_batches_tracked`).
pub fn state_dict(network: &Network) -> Vec<SourceTensor> {
    expected(network)
        .into_iter()
        .map(|e| SourceTensor {
            origin: e.name.clone(),
            name: e.name,
            dtype: if e.float { DType::F32 } else { DType::I64 },
            shape: e.shape,
        })
        .collect()
}

/// Compares a source's tensors with the network's variables: the report, and for each
/// tensor to take, its index in the source. Fails in strict mode unless they match
/// exactly (every problem listed). Dropped keys (empty names) are left out.
pub fn plan(
    source: &dyn TensorSource,
    expected: &[Expected],
    mode: LoadMode,
) -> Result<(LoadReport, Vec<usize>), ImportError> {
    let (report, take) = compare(source.tensors(), source.extras(), expected);
    if mode == LoadMode::Strict && !report.is_exact() {
        return Err(ImportError::Mismatch { report });
    }
    Ok((report, take))
}

/// [`plan`]'s comparison without a file: `tensors` (and the non-tensor entries `extras`)
/// against the network's variables, as loading in partial mode would treat them. Also
/// what `resnetc diff` uses to say whether a checkpoint of one spec loads into another.
pub fn compare(
    tensors: &[SourceTensor],
    extras: &[String],
    expected: &[Expected],
) -> (LoadReport, Vec<usize>) {
    let by_name: std::collections::HashMap<&str, &Expected> =
        expected.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut report = LoadReport::default();
    let mut take = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tensors.iter().enumerate() {
        if t.name.is_empty() {
            continue;
        }
        seen.insert(t.name.as_str());
        let Some(e) = by_name.get(t.name.as_str()) else {
            report.unexpected.push(t.name.clone());
            continue;
        };
        let same_shape =
            t.shape == e.shape || (!e.float && t.numel() == Some(1) && e.shape.is_empty());
        let kind_ok = if e.float {
            t.dtype.is_float()
        } else {
            t.dtype != DType::Bool && !t.dtype.is_float()
        };
        if same_shape && kind_ok {
            take.push(i);
            report.loaded.push(t.name.clone());
        } else {
            report.mismatched.push(Mismatch {
                name: t.name.clone(),
                expected: format!("{:?} {}", e.shape, if e.float { "f32" } else { "i64" }),
                found: format!("{:?} {}", t.shape, t.dtype),
            });
        }
    }
    report.unexpected.extend(extras.iter().cloned());
    for e in expected {
        if !seen.contains(e.name.as_str()) && e.float {
            report.missing.push(e.name.clone());
        }
    }
    report.sort();
    (report, take)
}

/// Converts little-endian float elements from one float dtype to another.
pub fn convert(data: &[u8], from: DType, to: DType) -> Vec<u8> {
    use half::{bf16, f16};
    if from == to {
        return data.to_vec();
    }
    let values: Vec<f64> = match from {
        DType::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8")))
            .collect(),
        DType::F32 => data
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4"))))
            .collect(),
        DType::F16 => data
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes(b.try_into().expect("2")).to_f64())
            .collect(),
        DType::BF16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes(b.try_into().expect("2")).to_f64())
            .collect(),
        _ => return data.to_vec(),
    };
    let mut out = Vec::with_capacity(values.len() * to.size() as usize);
    for v in values {
        match to {
            DType::F64 => out.extend(v.to_le_bytes()),
            DType::F32 => out.extend((v as f32).to_le_bytes()),
            // Through f32, as PyTorch's `.half()` of an f32 tensor rounds.
            DType::F16 => out.extend(f16::from_f32(v as f32).to_le_bytes()),
            DType::BF16 => out.extend(bf16::from_f32(v as f32).to_le_bytes()),
            _ => unreachable!("conversions go to float types"),
        }
    }
    out
}

/// Writes the tensors `take` of `source` as a safetensors file at `path`, atomically
/// (a temporary file, then a rename; `protect` lists files never to replace). Float
/// tensors are converted to `dtype` when given. Tensors are read one at a time, as they
/// are written. Returns the bytes written.
pub fn write_safetensors(
    path: &Path,
    protect: &[&Path],
    source: &mut dyn TensorSource,
    take: &[usize],
    dtype: Option<DType>,
    metadata: &[(&str, String)],
) -> Result<u64, crate::output::ReplaceError<ImportError>> {
    let mut order: Vec<usize> = take.to_vec();
    order.sort_by(|&a, &b| source.tensors()[a].name.cmp(&source.tensors()[b].name));
    let out_dtype = |t: &SourceTensor| match dtype {
        Some(d) if t.dtype.is_float() => d,
        _ => t.dtype,
    };
    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    for (k, v) in metadata {
        meta.insert(k.to_string(), serde_json::Value::String(v.clone()));
    }
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0u64;
    for &i in &order {
        let t = &source.tensors()[i];
        let d = out_dtype(t);
        // The shape was checked against the network: the product fits.
        let bytes = t.numel().unwrap_or(0) * d.size();
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": d.safetensors_name(), "shape": t.shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut json = serde_json::to_vec(&header).expect("a JSON map of strings and numbers");
    // Pad the header with spaces to 8 bytes, as safetensors' own writer does.
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let total = 8 + json.len() as u64 + offset;
    crate::output::replace_with(path, protect, |file, _| {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(file);
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        for &i in &order {
            let data = source.read(i)?;
            let t = &source.tensors()[i];
            let data = convert(&data, t.dtype, out_dtype(t));
            w.write_all(&data)?;
        }
        w.flush()?;
        Ok::<(), ImportError>(())
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_float_types() {
        let x: Vec<u8> = [1.0f32, -2.5, 65504.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let h = convert(&x, DType::F32, DType::F16);
        assert_eq!(h.len(), 6);
        assert_eq!(convert(&h, DType::F16, DType::F32), x);
        let b = convert(&x, DType::F32, DType::BF16);
        assert_eq!(&b[..2], &half::bf16::from_f32(1.0).to_le_bytes());
    }
}
