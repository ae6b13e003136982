//! PyTorch checkpoints as `torch.save` writes them (its zip format, the default since
//! PyTorch 1.6): `<name>/data.pkl` (the pickled object, read by [`super::pickle`]),
//! `<name>/data/<key>` (the raw bytes of each storage), `<name>/byteorder`.
//!
//! Opening reads the pickle and checks every tensor against its storage (dtype, element
//! count, the view's extent) and every storage against its archive entry (present,
//! stored without compression, as many bytes as its elements need) before any tensor
//! data is read. A tensor is read only when asked for, so memory stays bounded by what
//! the caller accepts. The legacy format (`_use_new_zipfile_serialization=False`) has
//! no well-kept reader in Rust and is refused with the way to re-save the file.

use std::io::{Read, Seek};
use std::path::Path;
use std::rc::Rc;

use super::pickle::{self, Storage, TensorRef, Value};
use super::{read_stored, ImportError, Listing, SourceTensor, TensorSource};

/// The largest `data.pkl` read: a ResNet-152 state_dict's pickle is about 80 KB.
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Keys under which training scripts keep the state_dict, tried in this order when the
/// file holds a dict without tensors.
pub const WRAPPER_KEYS: [&str; 3] = ["state_dict", "model_state_dict", "model"];

/// An opened `torch.save` archive (a file, or bytes in memory).
pub struct TorchCheckpoint<R: Read + Seek = std::fs::File> {
    archive: zip::ZipArchive<R>,
    /// `<name>/`, the folder of data.pkl in the archive.
    prefix: String,
    listing: Listing,
    /// The view of each tensor of the listing.
    views: Vec<Rc<TensorRef>>,
}

impl<R: Read + Seek> TorchCheckpoint<R> {
    /// Opens the archive in `file`; `len` is its size.
    pub fn open(file: R, len: u64) -> Result<TorchCheckpoint<R>, ImportError> {
        let mut archive = zip::ZipArchive::new(file).map_err(|e| {
            ImportError::Format(format!(
                "not a readable zip archive ({e}): a PyTorch checkpoint (torch.save) cut short or damaged?"
            ))
        })?;
        let pickles: Vec<String> = archive
            .file_names()
            .filter(|n| {
                n.strip_suffix("data.pkl")
                    .is_some_and(|p| p.ends_with('/') && p.matches('/').count() == 1)
            })
            .map(str::to_string)
            .collect();
        let pkl = match pickles.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(ImportError::Format(
                    "a zip archive without `<name>/data.pkl`: not a torch.save checkpoint".into(),
                ))
            }
            many => {
                return Err(ImportError::Format(format!(
                    "a zip archive with {} pickles ({}): not one torch.save checkpoint",
                    many.len(),
                    many.join(", ")
                )))
            }
        };
        let prefix = pkl.trim_end_matches("data.pkl").to_string();
        if let Ok(order) = read_stored(&mut archive, &format!("{prefix}byteorder"), 16, len) {
            if order != b"little" {
                return Err(ImportError::Format(format!(
                    "the storages are {} (byteorder); resnetc reads little-endian checkpoints: re-save it on a little-endian machine",
                    String::from_utf8_lossy(&order)
                )));
            }
        }
        let bytes = read_stored(&mut archive, &pkl, MAX_PICKLE_BYTES, len)?;
        let value = pickle::load(&bytes).map_err(|e| ImportError::Pickle {
            entry: pkl.clone(),
            source: e,
        })?;
        let mut notes = Vec::new();
        let dict = unwrap_state_dict(&value, &mut notes)?;
        let mut tensors = Vec::new();
        let mut views = Vec::new();
        let mut extras = Vec::new();
        for (k, v) in &dict.borrow().entries {
            let Value::Str(name) = k else {
                return Err(ImportError::Format(format!(
                    "the state_dict has a key that is {}, not a string",
                    k.kind()
                )));
            };
            let Value::Tensor(t) = v else {
                extras.push(format!("{name} ({}, not a tensor)", v.kind()));
                continue;
            };
            tensors.push(SourceTensor {
                name: name.to_string(),
                dtype: t.storage.dtype,
                shape: t.shape.clone(),
                origin: name.to_string(),
            });
            views.push(t.clone());
        }
        let mut checkpoint = TorchCheckpoint {
            archive,
            prefix,
            listing: Listing {
                tensors,
                extras,
                notes,
            },
            views,
        };
        checkpoint.check(len)?;
        Ok(checkpoint)
    }

    /// Every view fits its storage, and every storage's entry holds exactly its bytes.
    fn check(&mut self, len: u64) -> Result<(), ImportError> {
        for (t, view) in self.listing.tensors.iter().zip(&self.views) {
            let s = &view.storage;
            let numel = view.numel().ok_or_else(|| {
                ImportError::Format(format!(
                    "tensor `{}` has shape {:?}, too large to exist",
                    t.name, view.shape
                ))
            })?;
            let fits = view.extent().is_some_and(|e| e <= s.numel);
            if !fits {
                return Err(ImportError::Format(format!(
                    "tensor `{}` ({} {:?}, {numel} elements from offset {} with strides {:?}) reaches beyond its storage `{}`, which holds {} elements",
                    t.name, s.dtype, view.shape, view.offset, view.stride, s.key, s.numel
                )));
            }
        }
        let mut storages: Vec<&Rc<Storage>> = self.views.iter().map(|v| &v.storage).collect();
        storages.sort_by(|a, b| a.key.cmp(&b.key));
        storages.dedup_by(|a, b| a.key == b.key);
        for s in storages {
            let shared = self
                .views
                .iter()
                .find(|v| v.storage.key == s.key && v.storage.dtype != s.dtype);
            if let Some(other) = shared {
                return Err(ImportError::Format(format!(
                    "storage `{}` is named as both {} and {}",
                    s.key, s.dtype, other.storage.dtype
                )));
            }
            let name = format!("{}data/{}", self.prefix, s.key);
            let expected = s.numel.checked_mul(s.dtype.size());
            let entry = self.archive.by_name(&name).map_err(|_| {
                ImportError::Format(format!(
                    "storage `{}` ({} elements of {}) has no entry `{name}` in the archive",
                    s.key, s.numel, s.dtype
                ))
            })?;
            if entry.compression() != zip::CompressionMethod::Stored {
                return Err(ImportError::Format(format!(
                    "entry `{name}` is compressed ({}); torch.save stores storages uncompressed",
                    entry.compression()
                )));
            }
            if expected != Some(entry.size()) || entry.size() > len {
                return Err(ImportError::Format(format!(
                    "storage `{}` declares {} elements of {} ({} bytes), but its entry `{name}` holds {} bytes",
                    s.key,
                    s.numel,
                    s.dtype,
                    expected.map_or("too many".to_string(), |b| b.to_string()),
                    entry.size()
                )));
            }
        }
        Ok(())
    }
}

impl<R: Read + Seek> TensorSource for TorchCheckpoint<R> {
    fn describe(&self) -> String {
        "PyTorch checkpoint, torch.save archive".into()
    }

    fn listing(&self) -> &Listing {
        &self.listing
    }

    fn listing_mut(&mut self) -> &mut Listing {
        &mut self.listing
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>, ImportError> {
        let view = self.views[index].clone();
        let s = &view.storage;
        let size = s.dtype.size();
        let name = format!("{}data/{}", self.prefix, s.key);
        // Checked at open: the entry holds exactly numel * size bytes.
        let bytes = read_stored(&mut self.archive, &name, s.numel * size, u64::MAX)?;
        let numel = view.numel().expect("checked at open") as usize;
        let esize = size as usize;
        if view.is_contiguous() {
            let start = view.offset as usize * esize;
            return Ok(bytes[start..start + numel * esize].to_vec());
        }
        // A strided view: gather element by element (within the storage, checked at open).
        let mut out = Vec::with_capacity(numel * esize);
        let mut index = vec![0u64; view.shape.len()];
        for _ in 0..numel {
            let element = view.offset
                + index
                    .iter()
                    .zip(&view.stride)
                    .map(|(i, s)| i * s)
                    .sum::<u64>();
            let start = element as usize * esize;
            out.extend_from_slice(&bytes[start..start + esize]);
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < view.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok(out)
    }
}

/// The dict of tensors in a checkpoint: the object itself, or the dict under one of
/// [`WRAPPER_KEYS`] (nested at most three deep).
fn unwrap_state_dict(
    value: &Value,
    notes: &mut Vec<String>,
) -> Result<Rc<std::cell::RefCell<pickle::Dict>>, ImportError> {
    let mut current = value.clone();
    let mut path = Vec::new();
    for _ in 0..4 {
        let Value::Dict(d) = &current else {
            return Err(ImportError::Format(format!(
                "the checkpoint{} holds {}, not a state_dict (a dict of tensors)",
                at(&path),
                current.kind()
            )));
        };
        let next = {
            let dict = d.borrow();
            if dict.entries.is_empty() {
                return Err(ImportError::Format(format!(
                    "the checkpoint{} holds an empty dict",
                    at(&path)
                )));
            }
            if dict
                .entries
                .iter()
                .any(|(_, v)| matches!(v, Value::Tensor(_)))
            {
                None
            } else {
                let key = WRAPPER_KEYS
                    .iter()
                    .find(|k| matches!(dict.get(k), Some(Value::Dict(_))));
                match key {
                    Some(k) => {
                        let others: Vec<String> = dict
                            .entries
                            .iter()
                            .filter_map(|(key, _)| match key {
                                Value::Str(s) if &**s != *k => Some(s.to_string()),
                                _ => None,
                            })
                            .collect();
                        notes.push(format!(
                            "took the state_dict under `{k}`{}",
                            if others.is_empty() {
                                String::new()
                            } else {
                                format!(" (left out: {})", others.join(", "))
                            }
                        ));
                        path.push(k.to_string());
                        Some(dict.get(k).cloned().expect("found above"))
                    }
                    None => {
                        let keys: Vec<String> = dict
                            .entries
                            .iter()
                            .take(10)
                            .map(|(k, v)| match k {
                                Value::Str(s) => format!("{s} ({})", v.kind()),
                                other => other.kind().to_string(),
                            })
                            .collect();
                        return Err(ImportError::Format(format!(
                            "the checkpoint{} holds a dict without tensors and without a `{}` entry (keys: {})",
                            at(&path),
                            WRAPPER_KEYS.join("`, `"),
                            keys.join(", ")
                        )));
                    }
                }
            }
        };
        match next {
            None => return Ok(d.clone()),
            Some(v) => current = v,
        }
    }
    Err(ImportError::Format(format!(
        "no state_dict within {} nested wrappers",
        path.len()
    )))
}

fn at(path: &[String]) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (under `{}`)", path.join("` / `"))
    }
}

/// Whether `head` (a file's first bytes) is a raw pickle: torch.save's legacy format
/// (`_use_new_zipfile_serialization=False`), or `pickle.dump` of a state_dict.
pub fn is_raw_pickle(head: &[u8]) -> bool {
    head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1])
}

/// The error for a raw pickle.
pub fn legacy_error() -> ImportError {
    ImportError::Format(
        "a raw pickle: torch.save's legacy format (before PyTorch 1.6, or `_use_new_zipfile_serialization=False`) or a pickle.dump, \
         which resnetc does not read (no well-kept reader exists in Rust); re-save it with torch.save's default format: \
         `torch.save(torch.load(path, weights_only=True), \"model.pth\")`"
            .into(),
    )
}

/// Whether a zip archive at `path` holds a torch.save checkpoint (a `<name>/data.pkl`).
pub fn is_torch_archive(path: &Path) -> bool {
    let Ok((file, _)) = crate::files::open_regular(path) else {
        return false;
    };
    zip::ZipArchive::new(file).is_ok_and(|a| {
        a.file_names()
            .any(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
    })
}
