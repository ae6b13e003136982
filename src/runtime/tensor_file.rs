//! Reading safetensors files without trusting them.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header mapping
//! each tensor's name to its `dtype`, `shape` and `data_offsets` (begin, end) in the data
//! that follows, then the data. [`TensorFile::open`] reads and checks the header alone —
//! its length against [`MAX_HEADER_BYTES`] and the file, every dtype, every shape against
//! its byte count, the offsets covering the data exactly with no gap or overlap — before
//! any tensor is read; callers then compare names, dtypes and shapes with what they
//! expect and read only the tensors they need ([`TensorFile::read`]), so memory is bounded
//! by what the caller accepts, not by what the file claims.

use crate::files;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use tch::{Kind, Tensor};

/// The longest header read: a ResNet-152 checkpoint's header is about 100 KB.
pub const MAX_HEADER_BYTES: u64 = 16 << 20;

/// Why a safetensors file cannot be used. The message names no path: the caller's error
/// does.
#[derive(Debug, thiserror::Error)]
pub enum TensorFileError {
    /// The file could not be opened or read (missing, a FIFO or device, an I/O error).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The bytes are not a well-formed safetensors file.
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    /// A tensor's element type is not one libtorch holds.
    #[error("tensor `{name}` has dtype {dtype}, which resnetc does not read (use F32, F64, F16, BF16 or an integer type)")]
    Dtype { name: String, dtype: String },
}

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The tensor's name.
    pub name: String,
    /// Its element type.
    pub kind: Kind,
    /// Its shape (each dimension fits an `i64`).
    pub shape: Vec<i64>,
    /// Offset of its data from the start of the file.
    start: u64,
    /// Size of its data in bytes (`numel * element size`, checked).
    pub bytes: u64,
}

impl Entry {
    /// Number of elements.
    pub fn numel(&self) -> u64 {
        // Checked against the data's size when the header was read.
        self.shape.iter().map(|&d| d as u64).product()
    }
}

/// An open safetensors file whose header has been checked.
#[derive(Debug)]
pub struct TensorFile {
    file: File,
    /// Entries in the order of their data in the file.
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

impl TensorFile {
    /// Opens `path` and checks its header (see the module documentation). Reads at most
    /// `8 + MAX_HEADER_BYTES` bytes.
    pub fn open(path: &Path) -> Result<TensorFile, TensorFileError> {
        let bad = |m: String| TensorFileError::Format(m);
        let (file, len) = files::open_regular(path)?;
        if len < 8 {
            return Err(bad(format!(
                "the file holds {len} bytes, fewer than the 8 of the header length"
            )));
        }
        let mut word = [0u8; 8];
        (&file).read_exact(&mut word)?;
        let n = u64::from_le_bytes(word);
        if n > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "the header length field says {n} bytes, more than resnetc reads ({}); the file is corrupt or not safetensors",
                files::human(MAX_HEADER_BYTES)
            )));
        }
        if n > len - 8 {
            return Err(bad(format!(
                "truncated: the header length field says {n} bytes, but only {} follow it",
                len - 8
            )));
        }
        let mut header = vec![0u8; n as usize];
        (&file).read_exact(&mut header)?;
        if header.first() != Some(&b'{') {
            return Err(bad("the header is not a JSON object".into()));
        }
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("the JSON header is malformed: {e}")))?;
        let data_start = 8 + n;
        let data_len = len - data_start;
        let mut entries = Vec::with_capacity(map.len());
        for (name, value) in map {
            if name == "__metadata__" {
                continue;
            }
            let raw: RawEntry = serde_json::from_value(value)
                .map_err(|e| bad(format!("the header entry of `{name}` is malformed: {e}")))?;
            let (kind, size) = dtype(&raw.dtype).ok_or_else(|| TensorFileError::Dtype {
                name: name.clone(),
                dtype: raw.dtype.clone(),
            })?;
            let numel = raw
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d));
            let bytes = numel.and_then(|n| n.checked_mul(size));
            let [begin, end] = raw.data_offsets;
            let Some(bytes) = bytes.filter(|_| raw.shape.iter().all(|&d| d <= i64::MAX as u64))
            else {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, too large to exist",
                    raw.shape
                )));
            };
            if end < begin || end - begin != bytes {
                return Err(bad(format!(
                    "tensor `{name}` ({} {:?}) needs {bytes} bytes, but its data offsets [{begin}, {end}] span {}",
                    raw.dtype,
                    raw.shape,
                    if end < begin { "a negative length".to_string() } else { format!("{} bytes", end - begin) }
                )));
            }
            if end > data_len {
                return Err(bad(format!(
                    "truncated: tensor `{name}` ends at byte {end} of the data, which holds only {data_len} bytes"
                )));
            }
            let shape = raw.shape.iter().map(|&d| d as i64).collect();
            entries.push(Entry {
                name,
                kind,
                shape,
                start: data_start + begin,
                bytes,
            });
        }
        entries.sort_by_key(|e| (e.start, e.bytes));
        let mut at = data_start;
        for e in &entries {
            if e.start != at {
                return Err(bad(format!("the data of tensor `{}` does not start where the previous one ends (gap or overlap)", e.name)));
            }
            at += e.bytes;
        }
        if at != len {
            return Err(bad(format!(
                "{} bytes follow the data the header describes",
                len - at
            )));
        }
        Ok(TensorFile { file, entries })
    }

    /// The tensors' entries, in the order of their data.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry of tensor `name`.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.entries.iter().map(|e| e.bytes).sum()
    }

    /// Reads one tensor (on the CPU). Allocates exactly the bytes its entry states, which
    /// the file was checked to hold.
    pub fn read(&self, entry: &Entry) -> Result<Tensor, TensorFileError> {
        let mut data = vec![0u8; entry.bytes as usize];
        (&self.file).seek(SeekFrom::Start(entry.start))?;
        (&self.file).read_exact(&mut data).map_err(|e| {
            TensorFileError::Format(format!(
                "tensor `{}` could not be read ({e}); was the file truncated while it was read?",
                entry.name
            ))
        })?;
        Tensor::f_from_data_size(&data, &entry.shape, entry.kind)
            .map_err(|e| TensorFileError::Format(format!("tensor `{}`: {e}", entry.name)))
    }

    /// Reads every tensor, in name order.
    pub fn read_all(&self) -> Result<Vec<(String, Tensor)>, TensorFileError> {
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            out.push((e.name.clone(), self.read(e)?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// libtorch's kind and the element size of a safetensors dtype.
fn dtype(name: &str) -> Option<(Kind, u64)> {
    Some(match name {
        "F64" => (Kind::Double, 8),
        "F32" => (Kind::Float, 4),
        "F16" => (Kind::Half, 2),
        "BF16" => (Kind::BFloat16, 2),
        "I64" => (Kind::Int64, 8),
        "I32" => (Kind::Int, 4),
        "I16" => (Kind::Int16, 2),
        "I8" => (Kind::Int8, 1),
        "U8" => (Kind::Uint8, 1),
        "BOOL" => (Kind::Bool, 1),
        _ => return None,
    })
}

/// A short name of a kind for messages: `f32`, `i64`.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "f32",
        Kind::Double => "f64",
        Kind::Half => "f16",
        Kind::BFloat16 => "bf16",
        Kind::Int64 => "i64",
        Kind::Int => "i32",
        Kind::Int16 => "i16",
        Kind::Int8 => "i8",
        Kind::Uint8 => "u8",
        Kind::Bool => "bool",
        _ => "other",
    }
}

/// Whether `kind` is a floating-point type.
pub fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::files::temp_file as file;

    fn with_header(json: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (json.len() as u64).to_le_bytes().to_vec();
        v.extend(json.as_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn reads_what_the_header_describes() {
        let json = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let f = TensorFile::open(&file(
            "ok.safetensors",
            &with_header(json, &[0, 0, 128, 63, 7, 9]),
        ))
        .unwrap();
        assert_eq!(f.entries().len(), 2);
        assert_eq!(f.data_bytes(), 6);
        let all = f.read_all().unwrap();
        assert_eq!(all[0].0, "a");
        assert_eq!(all[0].1.double_value(&[0]), 1.0);
        assert_eq!(Vec::<u8>::try_from(&all[1].1).unwrap(), vec![7, 9]);
    }

    #[test]
    fn refuses_malformed_headers() {
        let cases: &[(&str, Vec<u8>, &str)] = &[
            ("short", vec![1, 2, 3], "fewer than the 8"),
            (
                "huge",
                (1u64 << 63).to_le_bytes().to_vec(),
                "more than resnetc reads",
            ),
            ("array", with_header("[1]", &[]), "not a JSON object"),
            ("json", with_header("{\"a\":", &[]), "malformed"),
            (
                "entry",
                with_header(r#"{"a":{"dtype":"F32"}}"#, &[]),
                "header entry of `a`",
            ),
            (
                "dtype",
                with_header(
                    r#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "dtype C64",
            ),
            (
                "overflow",
                with_header(
                    r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "too large to exist",
            ),
            (
                "count",
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                    &[0; 4],
                ),
                "needs 8 bytes",
            ),
            (
                "beyond",
                with_header(
                    r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                    &[0; 4],
                ),
                "truncated",
            ),
            (
                "gap",
                with_header(
                    r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                    &[0; 2],
                ),
                "gap or overlap",
            ),
            (
                "trailing",
                with_header(
                    r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                    &[0; 3],
                ),
                "2 bytes follow",
            ),
        ];
        for (name, bytes, expected) in cases {
            let e = TensorFile::open(&file(name, bytes))
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{name}: {e}");
        }
    }
}
