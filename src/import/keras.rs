//! Keras 3 weights: `model.save_weights("x.weights.h5")` and the `model.weights.h5`
//! inside a `.keras` file, for specs written as Keras Applications builds its ResNets
//! (`specs/keras/*.yaml`, `specs/article-keras.yaml`).
//!
//! A Keras 3 weights file holds one HDF5 group per layer, `layers/<auto name>/vars`,
//! whose attribute `name` is the layer's name (`conv2_block1_1_conv`) and whose
//! datasets `0`, `1`, ... are its variables in order. Names map to resnetc's by the
//! network's structure (see [`layer_names`]): stage `s` (from 0) and block `b` (from 0)
//! are Keras's `conv{s+2}_block{b+1}`, the branch's k-th convolution and the norm after
//! it `_k_conv` / `_k_bn`, a pre-activation block's first norm `_preact_bn`, the
//! projection `_0_conv` / `_0_bn`, the stem `conv1_conv` / `conv1_bn`, the head's norm
//! `post_bn` and the classifier `predictions`. Kernels are transposed from Keras's HWIO
//! to OIHW, the dense kernel from (in, out) to (out, in) (and, after a `Flatten` of an
//! H x W map, its rows from Keras's (h, w, c) order to PyTorch's (c, h, w)); BN's
//! gamma, beta, moving mean and moving variance become weight, bias, running_mean and
//! running_var. A `.keras` file's `config.json` also gives each BN's epsilon, which
//! must equal the spec's `batch_norm` eps; a `.weights.h5` file does not record it.
//!
//! HDF5 is read by `hdf5-reader`, a pure-Rust decoder, from bytes resnetc read itself
//! (a regular file of bounded size): no C library parses the file. The alternative,
//! `hdf5-metno` (well kept, the bindings most Rust HDF5 users have), links the system's
//! libhdf5: a C parser of an untrusted file (Debian 12's 1.10.8 has open CVEs for
//! crafted files), a shared library every resnetc binary would then need (the CUDA
//! checks run a binary built here on a machine with torch's libraries only), and a
//! build that fails before `scripts/setup.sh` installs `libhdf5-dev`. hdf5-reader bounds
//! its reads by the file, checks its structures and is fuzzed; resnetc checks every
//! dataset's dtype and shape against the spec before reading its data.

use std::collections::HashMap;

use hdf5_reader::{Datatype, Hdf5File};

use super::{DType, ImportError, Listing, SourceTensor, TensorSource};
use crate::ir::{HeadPool, Norm};
use crate::valid::{Layer, Network};

/// The largest `config.json` of a `.keras` file read (ResNet152's is about 400 KB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// What a Keras layer with weights is in resnetc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KerasLayer {
    /// `Conv2D`: kernel, then bias.
    Conv { name: String },
    /// `BatchNormalization` (gamma, beta, moving mean, moving variance) or
    /// `GroupNormalization` (gamma, beta).
    Norm { name: String, batch: bool },
    /// `Dense`: kernel, then bias; `flatten` is the (C, H, W) map a `Flatten` fed it.
    Dense {
        name: String,
        flatten: Option<[u64; 3]>,
    },
}

impl KerasLayer {
    /// resnetc's name of the layer's `index`-th variable, if it has one.
    fn variable(&self, index: usize) -> Option<String> {
        let (name, suffixes): (&str, &[&str]) = match self {
            KerasLayer::Conv { name } | KerasLayer::Dense { name, .. } => {
                (name, &["weight", "bias"])
            }
            KerasLayer::Norm { name, batch: true } => {
                (name, &["weight", "bias", "running_mean", "running_var"])
            }
            KerasLayer::Norm { name, batch: false } => (name, &["weight", "bias"]),
        };
        suffixes.get(index).map(|s| format!("{name}.{s}"))
    }
}

/// Keras Applications' name of every layer of `network` that has weights. An error
/// names the first layer Keras's ResNets have no counterpart for (a deep stem,
/// attention, ...).
pub fn layer_names(network: &Network) -> Result<Vec<(String, KerasLayer)>, String> {
    let mut out = Vec::new();
    let unsupported = |l: &Layer| {
        Err(format!(
            "layer `{}` has no counterpart in Keras Applications' ResNets, whose layer names resnetc maps",
            l.name()
        ))
    };
    let norm = |n: &crate::valid::NormLayer| KerasLayer::Norm {
        name: n.name.clone(),
        batch: n.norm == Norm::Batch,
    };
    let mut stem_convs = 0;
    for l in &network.stem.layers {
        match l {
            Layer::Conv(c) => {
                stem_convs += 1;
                if stem_convs > 1 {
                    return unsupported(l);
                }
                out.push((
                    "conv1_conv".to_string(),
                    KerasLayer::Conv {
                        name: c.name.clone(),
                    },
                ));
            }
            Layer::Norm(n) => out.push(("conv1_bn".to_string(), norm(n))),
            Layer::Pool(_) | Layer::Relu { .. } => {}
            _ => return unsupported(l),
        }
    }
    for b in &network.blocks {
        let prefix = format!("conv{}_block{}", b.stage + 2, b.index + 1);
        for l in &b.pre {
            match l {
                Layer::Norm(n) => out.push((format!("{prefix}_preact_bn"), norm(n))),
                _ => return unsupported(l),
            }
        }
        let mut k = 0;
        for l in &b.branch {
            match l {
                Layer::Conv(c) => {
                    k += 1;
                    out.push((
                        format!("{prefix}_{k}_conv"),
                        KerasLayer::Conv {
                            name: c.name.clone(),
                        },
                    ));
                }
                Layer::Norm(n) if k > 0 => out.push((format!("{prefix}_{k}_bn"), norm(n))),
                Layer::Relu { .. } | Layer::DropPath { .. } => {}
                _ => return unsupported(l),
            }
        }
        for l in b.shortcut.layers() {
            match l {
                Layer::Conv(c) => out.push((
                    format!("{prefix}_0_conv"),
                    KerasLayer::Conv {
                        name: c.name.clone(),
                    },
                )),
                Layer::Norm(n) => out.push((format!("{prefix}_0_bn"), norm(n))),
                Layer::Subsample {
                    extra_channels: 0, ..
                } => {}
                _ => return unsupported(l),
            }
        }
    }
    if let Some(h) = &network.head {
        if let Some(n) = &h.norm {
            out.push(("post_bn".to_string(), norm(n)));
        }
        let p = h.pooled;
        let flatten = (h.pool == HeadPool::Flatten && p.h * p.w > 1).then_some([p.c, p.h, p.w]);
        out.push((
            "predictions".to_string(),
            KerasLayer::Dense {
                name: h.fc.name.clone(),
                flatten,
            },
        ));
    }
    Ok(out)
}

/// How a variable's data becomes resnetc's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transform {
    Copy,
    /// HWIO `[kh, kw, cin, cout]` to OIHW.
    Kernel([u64; 4]),
    /// `[in, out]` to `[out, in]`, with rows of an H x W x C flatten reordered to C x H x W.
    Dense {
        fin: u64,
        fout: u64,
        flatten: Option<[u64; 3]>,
    },
}

impl Transform {
    /// The variable's shape in resnetc's layout, and how to get there.
    fn of(layer: &KerasLayer, index: usize, shape: &[u64]) -> (Vec<u64>, Transform) {
        match (layer, index, shape) {
            (KerasLayer::Conv { .. }, 0, &[kh, kw, ci, co]) => {
                (vec![co, ci, kh, kw], Transform::Kernel([kh, kw, ci, co]))
            }
            (KerasLayer::Dense { flatten, .. }, 0, &[fin, fout]) => {
                let flatten = flatten.filter(|f| f.iter().product::<u64>() == fin);
                (vec![fout, fin], Transform::Dense { fin, fout, flatten })
            }
            _ => (shape.to_vec(), Transform::Copy),
        }
    }

    fn apply(self, data: Vec<u8>, esize: usize) -> Vec<u8> {
        let mut out = vec![0u8; data.len()];
        let mut put = |to: u64, from: u64| {
            let (to, from) = (to as usize * esize, from as usize * esize);
            out[to..to + esize].copy_from_slice(&data[from..from + esize]);
        };
        match self {
            Transform::Copy => return data,
            Transform::Kernel([kh, kw, ci, co]) => {
                for h in 0..kh {
                    for w in 0..kw {
                        for i in 0..ci {
                            for o in 0..co {
                                let from = ((h * kw + w) * ci + i) * co + o;
                                let to = ((o * ci + i) * kh + h) * kw + w;
                                put(to, from);
                            }
                        }
                    }
                }
            }
            Transform::Dense { fin, fout, flatten } => {
                for r in 0..fin {
                    // Row r of Keras's kernel is input feature r in Keras's order.
                    let torch_in = match flatten {
                        Some([c, h, w]) => {
                            let (hw, ch) = (r / c, r % c);
                            let (y, x) = (hw / w, hw % w);
                            (ch * h + y) * w + x
                        }
                        None => r,
                    };
                    for o in 0..fout {
                        put(o * fin + torch_in, r * fout + o);
                    }
                }
            }
        }
        out
    }
}

/// One variable of the file.
struct Variable {
    dataset: String,
    transform: Transform,
    swap: bool,
}

/// An opened Keras 3 weights file.
pub struct KerasWeights {
    file: Hdf5File,
    kind: &'static str,
    listing: Listing,
    /// Where each tensor of the listing is, and how it becomes resnetc's.
    variables: Vec<Variable>,
}

fn hdf5_error(e: impl std::fmt::Display) -> ImportError {
    ImportError::Format(format!("not a readable HDF5 file ({e})"))
}

impl KerasWeights {
    /// Reads the HDF5 file in `bytes` and maps its variables onto `network`.
    pub fn from_bytes(
        bytes: Vec<u8>,
        network: &Network,
        kind: &'static str,
    ) -> Result<KerasWeights, ImportError> {
        // Reads are bounded by the network: a dataset is read only once its shape equals
        // a variable's, and its byte count is checked again before the read
        // ([`KerasWeights::read`]). External files and links are never followed (no
        // resolver is given).
        let file = Hdf5File::from_vec(bytes).map_err(hdf5_error)?;
        let layers = file.group("/layers").map_err(|_| {
            ImportError::Format(
                "an HDF5 file without a `layers` group: not a Keras 3 weights file (Keras 2 `.h5` files are not read: \
                 load the model in Keras 3 and `save_weights` it to a `.weights.h5`)"
                    .into(),
            )
        })?;
        let names = layer_names(network)
            .map_err(|e| ImportError::Format(format!("the spec cannot take Keras weights: {e}")))?;
        let by_keras: HashMap<&str, &KerasLayer> =
            names.iter().map(|(k, l)| (k.as_str(), l)).collect();
        let mut out = KerasWeights {
            file,
            kind,
            listing: Listing::default(),
            variables: Vec::new(),
        };
        let groups = layers.groups().map_err(hdf5_error)?;
        for g in groups {
            let Ok(vars) = g.group("vars") else {
                continue;
            };
            let keras_name = vars
                .attribute("name")
                .ok()
                .and_then(|a| a.read_string().ok())
                .unwrap_or_else(|| g.name().to_string());
            if let Ok(nested) = g.group("layers") {
                if !nested.groups().map_err(hdf5_error)?.is_empty() {
                    out.listing.extras.push(format!(
                        "{keras_name} (a nested model, layers/{}/layers)",
                        g.name()
                    ));
                }
            }
            let mut datasets = vars.datasets().map_err(hdf5_error)?;
            datasets.sort_by_key(|d| {
                (
                    d.name().parse::<usize>().unwrap_or(usize::MAX),
                    d.name().to_string(),
                )
            });
            for d in datasets {
                let path = format!("layers/{}/vars/{}", g.name(), d.name());
                let origin = format!("{keras_name}/vars/{} ({path})", d.name());
                let (dtype, swap) = dtype_of(d.dtype()).ok_or_else(|| {
                    ImportError::Format(format!(
                        "variable {origin} has HDF5 type {:?}, not numbers: not Keras weights",
                        d.dtype()
                    ))
                })?;
                let index = d.name().parse::<usize>().ok();
                let layer = by_keras.get(keras_name.as_str());
                let target = layer
                    .zip(index)
                    .and_then(|(l, i)| l.variable(i).map(|n| (l, i, n)));
                let (name, shape, transform) = match target {
                    Some((l, i, n)) => {
                        let (shape, t) = Transform::of(l, i, d.shape());
                        (n, shape, t)
                    }
                    None => (
                        format!("{keras_name}/vars/{}", d.name()),
                        d.shape().to_vec(),
                        Transform::Copy,
                    ),
                };
                out.listing.tensors.push(SourceTensor {
                    name,
                    dtype,
                    shape,
                    origin,
                });
                out.variables.push(Variable {
                    dataset: format!("/{path}"),
                    transform,
                    swap,
                });
            }
        }
        Ok(out)
    }

    /// Adds a note shown with the import's summary.
    pub fn note(&mut self, note: String) {
        self.listing.notes.push(note);
    }
}

/// resnetc's dtype of an HDF5 numeric type, and whether its bytes are big-endian.
fn dtype_of(t: &Datatype) -> Option<(DType, bool)> {
    use hdf5_reader::ByteOrder;
    let (d, order) = match t {
        Datatype::FloatingPoint { size, byte_order } => (
            match size {
                2 => DType::F16,
                4 => DType::F32,
                8 => DType::F64,
                _ => return None,
            },
            byte_order,
        ),
        Datatype::FixedPoint {
            size,
            signed,
            byte_order,
        } => (
            match (size, signed) {
                (1, true) => DType::I8,
                (1, false) => DType::U8,
                (2, true) => DType::I16,
                (4, true) => DType::I32,
                (8, true) => DType::I64,
                _ => return None,
            },
            byte_order,
        ),
        _ => return None,
    };
    Some((d, matches!(order, ByteOrder::BigEndian)))
}

impl TensorSource for KerasWeights {
    fn describe(&self) -> String {
        self.kind.to_string()
    }

    fn listing(&self) -> &Listing {
        &self.listing
    }

    fn listing_mut(&mut self) -> &mut Listing {
        &mut self.listing
    }

    fn read(&mut self, index: usize) -> Result<Vec<u8>, ImportError> {
        let t = &self.listing.tensors[index];
        let v = &self.variables[index];
        let esize = t.dtype.size() as usize;
        let expected = t.numel().map(|n| n as usize * esize);
        let d = self.file.dataset(&v.dataset).map_err(hdf5_error)?;
        // The shape was compared with the network's before this read; check the
        // dataset's byte count from its own header before the decoder allocates it.
        let declared = d.raw_byte_len().map_err(hdf5_error)?;
        if Some(declared) != expected {
            return Err(ImportError::Format(format!(
                "variable {} declares {declared} bytes, its shape {:?} of {} needs {}",
                t.origin,
                t.shape,
                t.dtype,
                expected.map_or("too many".to_string(), |b| b.to_string())
            )));
        }
        let mut data = d
            .read_raw_bytes()
            .map_err(|e| ImportError::Format(format!("cannot read variable {} ({e})", t.origin)))?;
        if data.len() != declared {
            return Err(ImportError::Format(format!(
                "variable {} gave {} bytes instead of {declared}",
                t.origin,
                data.len()
            )));
        }
        if v.swap {
            for e in data.chunks_exact_mut(esize) {
                e.reverse();
            }
        }
        Ok(v.transform.apply(data, esize))
    }
}

/// The epsilon of every `BatchNormalization` layer in a `.keras` file's `config.json`,
/// by layer name.
pub fn bn_epsilons(config: &[u8]) -> Result<Vec<(String, f64)>, ImportError> {
    let v: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| ImportError::Format(format!("`config.json` is not valid JSON ({e})")))?;
    let mut out = Vec::new();
    let mut stack = vec![&v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("class_name").and_then(|c| c.as_str()) == Some("BatchNormalization") {
                    let c = m.get("config");
                    let name = c.and_then(|c| c.get("name")).and_then(|n| n.as_str());
                    let eps = c.and_then(|c| c.get("epsilon")).and_then(|e| e.as_f64());
                    if let (Some(n), Some(e)) = (name, eps) {
                        out.push((n.to_string(), e));
                    }
                }
                stack.extend(m.values());
            }
            // Reversed, so that layers come out in the model's order.
            serde_json::Value::Array(a) => stack.extend(a.iter().rev()),
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(spec: &str) -> crate::Compiled {
        let path = format!("{}/specs/{spec}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        crate::compile(&crate::span::SourceFile::new(
            path,
            text,
            crate::span::Syntax::Yaml,
        ))
        .unwrap()
    }

    /// Every Keras weight of the live models (`tests/zoo/reference/keras/*.json`, from
    /// Keras 3.15.1) maps to a variable of the spec with the same number of elements and
    /// the transposed shape, and every variable of the spec is one of them.
    #[test]
    fn keras_applications_names_map_onto_every_keras_spec() {
        for model in [
            "ResNet50",
            "ResNet101",
            "ResNet152",
            "ResNet50V2",
            "ResNet101V2",
            "ResNet152V2",
        ] {
            let compiled = compile(&format!("keras/{model}.yaml"));
            let names = layer_names(&compiled.network).unwrap();
            let by_keras: HashMap<&str, &KerasLayer> =
                names.iter().map(|(k, l)| (k.as_str(), l)).collect();
            let path = format!(
                "{}/tests/zoo/reference/keras/{model}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let golden: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let mut mapped: HashMap<String, Vec<u64>> = HashMap::new();
            for layer in golden["layers"].as_array().unwrap() {
                let weights = layer["weights"].as_array().unwrap();
                if weights.is_empty() {
                    continue;
                }
                let keras = layer["name"].as_str().unwrap();
                let l = by_keras
                    .get(keras)
                    .unwrap_or_else(|| panic!("{model}: no mapping for {keras}"));
                for (i, w) in weights.iter().enumerate() {
                    let shape: Vec<u64> = w["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap())
                        .collect();
                    let name = l
                        .variable(i)
                        .unwrap_or_else(|| panic!("{model}: {keras} var {i}"));
                    let (shape, _) = Transform::of(l, i, &shape);
                    assert!(
                        mapped.insert(name.clone(), shape).is_none(),
                        "{model}: {name} twice"
                    );
                }
            }
            let expected: HashMap<String, Vec<u64>> =
                crate::back::onnx::param_shapes(&compiled.network)
                    .into_iter()
                    .map(|(n, s)| (n, s.into_iter().map(|d| d as u64).collect()))
                    .collect();
            assert_eq!(mapped, expected, "{model}");
        }
        // The article's Keras network has Keras Applications' ResNet50 structure.
        assert!(layer_names(&compile("article-keras.yaml").network).is_ok());
        // torchvision's layout has no Keras names for a deep stem or attention.
        let e = layer_names(&compile("timm/resnet50d.yaml").network).unwrap_err();
        assert!(e.contains("conv1."), "{e}");
    }

    #[test]
    fn transposes_kernels_and_dense_layers() {
        // A 1x2 kernel, 2 inputs, 3 outputs: element (h, w, i, o) = its HWIO index.
        let data: Vec<u8> = (0u8..12).collect();
        let out = Transform::Kernel([1, 2, 2, 3]).apply(data, 1);
        // OIHW: [o][i][h][w] = ((h*2 + w)*2 + i)*3 + o.
        let expected: Vec<u8> = (0..3)
            .flat_map(|o| {
                (0..2).flat_map(move |i| (0..2).map(move |w| ((w * 2 + i) * 3 + o) as u8))
            })
            .collect();
        assert_eq!(out, expected);
        // Dense after Flatten of a 2-channel 1x2 map: Keras rows are (h, w, c).
        let data: Vec<u8> = (0u8..4).collect(); // kernel [4, 1]
        let t = Transform::Dense {
            fin: 4,
            fout: 1,
            flatten: Some([2, 1, 2]),
        };
        // Keras row r = (w, c) -> torch column c*2 + w: rows 0 (w0c0), 1 (w0c1), 2 (w1c0), 3 (w1c1).
        assert_eq!(t.apply(data, 1), [0, 2, 1, 3]);
    }

    #[test]
    fn reads_bn_epsilons_from_a_config() {
        let config = br#"{"class_name": "Functional", "config": {"layers": [
            {"class_name": "Conv2D", "config": {"name": "conv1_conv"}},
            {"class_name": "BatchNormalization", "config": {"name": "conv1_bn", "epsilon": 1.001e-05}}]}}"#;
        assert_eq!(
            bn_epsilons(config).unwrap(),
            [("conv1_bn".to_string(), 1.001e-5)]
        );
    }
}
