//! ONNX export: the checked [`Network`] as an ONNX model (`resnetc export --format onnx`).
//!
//! The graph is built here, in Rust, from the layer lists of the checked network, with the
//! message types of the ONNX schema (`proto/onnx/onnx.proto`, compiled by `build.rs`); no
//! libtorch and no Python is involved. The weights come in as plain `f32` arrays named as
//! in the state_dict ([`Params`]); the CLI reads them from the runtime (`--weights` or the
//! spec's own initialization), but any source works.
//!
//! What the file looks like:
//! - one input `input` `[N, C, H, W]` (`N` the symbolic `batch` unless the batch is fixed);
//!   outputs `logits` (and `probabilities` when the head has a softmax), or for a backbone
//!   one output per feature map named by module (`layer3`, `layer4`);
//! - initializers under the state_dict's names (`layer1.0.conv1.weight`,
//!   `layer1.0.bn1.running_mean`, `fc.bias`); constants that are not parameters are named
//!   after their layer (`maxpool.1.filt`, the blur filter) or `const.*`;
//! - nodes named by module path (`layer1.0.conv1`), helper nodes `<module>/<Op>`, and each
//!   layer's output value named as its row of the layer table (`resnetc table`), so Netron
//!   and shape inference show the table's names;
//! - the same network and weights always give the same bytes (no timestamp, fixed order).
//!
//! Operators (default opset [`DEFAULT_OPSET`] = 17; [`OPSETS`] are accepted): Conv,
//! BatchNormalization (or folded into the convolution before it, `fold_bn`), Relu,
//! MaxPool/AveragePool, Pad (reflect) + depthwise Conv for BlurPool2d, GlobalAveragePool +
//! Conv + Relu + Conv + Sigmoid + Mul for SE, GlobalAveragePool + Reshape + Conv (1-D) +
//! Sigmoid + Reshape + Mul for ECA, Slice + Pad for strided/zero-padded shortcuts, Add,
//! GlobalAveragePool/GlobalMaxPool, Flatten, Gemm, Softmax. GroupNorm is written out
//! (Reshape to `[N, G, -1]`, ReduceMean, Sub, Mul, ReduceMean, Add eps, Sqrt, Div, Reshape,
//! Mul weight, Add bias) at every opset: ONNX's GroupNormalization-18 takes one scale per
//! group, not per channel (fixed only in opset 21), and TensorRT 10 and older runtimes
//! lack the fixed version.

use crate::ir::{HeadPool, PoolKind};
use crate::valid::{AttentionKind, ConvLayer, Layer, Network, NormLayer, ShortcutPlan};
use crate::Compiled;
use prost::Message;
use std::collections::{BTreeMap, HashSet};

/// The ONNX schema's messages, generated from `proto/onnx/onnx.proto` by `build.rs`.
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The opset written unless told otherwise: ONNX Runtime 1.2x and TensorRT 10 take it.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets resnetc writes (ONNX 1.8 to 1.16's).
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;
/// The largest file protobuf can hold (2 GiB less one byte); larger models would need
/// ONNX's external data, which resnetc does not write.
pub const MAX_BYTES: usize = (1 << 31) - 1;

/// One parameter or buffer: shape and values in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Parameters by state_dict name (`layer1.0.conv1.weight`).
pub type Params = BTreeMap<String, Param>;

/// Element type of the weights, the input and the outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DType {
    #[default]
    F32,
    F16,
}

impl DType {
    fn onnx(self) -> i32 {
        match self {
            DType::F32 => DataType::Float as i32,
            DType::F16 => DataType::Float16 as i32,
        }
    }
}

/// How to write the model.
#[derive(Clone, Debug)]
pub struct OnnxOptions {
    /// Opset of the default domain, within [`OPSETS`].
    pub opset: i64,
    /// Fold each BN that follows a convolution into it (scale and shift in f64, as the
    /// runtime's inference pass does).
    pub fold_bn: bool,
    /// A symbolic batch dimension (`batch`); otherwise the batch is fixed at 1.
    pub dynamic_batch: bool,
    pub dtype: DType,
    /// Where the spec came from, for the graph's doc string.
    pub source: Option<String>,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            opset: DEFAULT_OPSET,
            fold_bn: false,
            dynamic_batch: true,
            dtype: DType::F32,
            source: None,
        }
    }
}

/// Why a model could not be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OnnxError {
    #[error("opset {0} is not supported: resnetc writes opsets {start} to {end}", start = OPSETS.start(), end = OPSETS.end())]
    Opset(i64),
    #[error("parameter `{0}` is missing")]
    Missing(String),
    #[error("parameter `{name}` has shape {found:?}, the network needs {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("the model takes {0} bytes as ONNX, more than protobuf's 2 GiB limit for one file (ONNX external data is not written)")]
    TooLarge(usize),
}

/// The IR version that goes with `opset` (ONNX's own version table).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// The ONNX file of `compiled`'s network with `params`, encoded.
pub fn export(
    compiled: &Compiled,
    params: &Params,
    opts: &OnnxOptions,
) -> Result<Vec<u8>, OnnxError> {
    let model = model(compiled, params, opts)?;
    let len = model.encoded_len();
    if len > MAX_BYTES {
        return Err(OnnxError::TooLarge(len));
    }
    Ok(model.encode_to_vec())
}

/// The ONNX model of `compiled`'s network with `params`.
pub fn model(
    compiled: &Compiled,
    params: &Params,
    opts: &OnnxOptions,
) -> Result<ModelProto, OnnxError> {
    if !OPSETS.contains(&opts.opset) {
        return Err(OnnxError::Opset(opts.opset));
    }
    let net = &compiled.network;
    let mut g = Graph {
        params,
        opts,
        eps: compiled.model.batch_norm.eps,
        nodes: Vec::new(),
        inits: Vec::new(),
        init_names: HashSet::new(),
    };
    let mut x = g.layers(&net.stem.layers, "input".to_string())?;
    let mut outputs = Vec::new();
    for (i, b) in net.blocks.iter().enumerate() {
        x = g.block(b, x)?;
        let last_of_stage = net.blocks.get(i + 1).is_none_or(|n| n.stage != b.stage);
        if let Some(f) = net
            .features
            .iter()
            .find(|f| f.stage == b.stage && last_of_stage)
        {
            g.node("Identity", &f.module, &[&x], &[&f.module], vec![]);
            outputs.push((
                f.module.clone(),
                vec![f.shape.c as i64, f.shape.h as i64, f.shape.w as i64],
            ));
        }
    }
    if let Some(h) = &net.head {
        if let Some(n) = &h.norm {
            // The head's norm is always followed by ReLU (pre-activation networks).
            let n = NormLayer {
                relu: true,
                ..n.clone()
            };
            x = g.norm(&n, &x, n.name.clone())?;
        }
        match h.pool {
            HeadPool::Avg => {
                g.node("GlobalAveragePool", "avgpool", &[&x], &["avgpool"], vec![]);
                x = "avgpool".into();
            }
            HeadPool::Max => {
                g.node(
                    "GlobalMaxPool",
                    "maxpool_head",
                    &[&x],
                    &["maxpool_head"],
                    vec![],
                );
                x = "maxpool_head".into();
            }
            HeadPool::Flatten => {}
        }
        g.node(
            "Flatten",
            "flatten",
            &[&x],
            &["flatten"],
            vec![int("axis", 1)],
        );
        let fc = &h.fc;
        let (i, o) = (fc.in_features as usize, fc.out_features as usize);
        let w = g.param(&format!("{}.weight", fc.name), &[o, i])?;
        let b = g.param(&format!("{}.bias", fc.name), &[o])?;
        g.node(
            "Gemm",
            &fc.name,
            &["flatten", &w, &b],
            &["logits"],
            vec![int("transB", 1)],
        );
        outputs.push(("logits".into(), vec![o as i64]));
        if h.softmax {
            g.node(
                "Softmax",
                "softmax",
                &["logits"],
                &["probabilities"],
                vec![int("axis", -1)],
            );
            outputs.push(("probabilities".into(), vec![o as i64]));
        }
    }

    let elem = opts.dtype.onnx();
    let batch = if opts.dynamic_batch {
        tensor_shape_proto::dimension::Value::DimParam("batch".into())
    } else {
        tensor_shape_proto::dimension::Value::DimValue(1)
    };
    let value_info = |name: &str, dims: &[i64]| {
        let mut d = vec![tensor_shape_proto::Dimension {
            value: Some(batch.clone()),
            denotation: None,
        }];
        d.extend(dims.iter().map(|&v| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(v)),
            denotation: None,
        }));
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(elem),
                    shape: Some(TensorShapeProto { dim: d }),
                })),
                denotation: None,
            }),
            ..Default::default()
        }
    };
    let i = net.input;
    let version = env!("CARGO_PKG_VERSION");
    let source = opts
        .source
        .as_deref()
        .map_or(String::new(), |s| format!(" from `{s}`"));
    let graph = GraphProto {
        name: Some(compiled.model.name.clone()),
        node: g.nodes,
        initializer: g.inits,
        doc_string: Some(format!(
            "{}{source}, exported by resnetc {version} (opset {}, {}{})",
            compiled.model.name,
            opts.opset,
            if opts.fold_bn {
                "BN folded"
            } else {
                "BN as BatchNormalization"
            },
            if opts.dtype == DType::F16 {
                ", f16"
            } else {
                ""
            },
        )),
        input: vec![value_info("input", &[i.c as i64, i.h as i64, i.w as i64])],
        output: outputs.iter().map(|(n, d)| value_info(n, d)).collect(),
        ..Default::default()
    };
    let mut metadata = vec![StringStringEntryProto {
        key: Some("resnetc_version".into()),
        value: Some(version.into()),
    }];
    if let Some(s) = &opts.source {
        metadata.push(StringStringEntryProto {
            key: Some("spec".into()),
            value: Some(s.clone()),
        });
    }
    Ok(ModelProto {
        ir_version: Some(ir_version(opts.opset)),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opts.opset),
        }],
        producer_name: Some("resnetc".into()),
        producer_version: Some(version.into()),
        model_version: Some(1),
        graph: Some(graph),
        metadata_props: metadata,
        ..Default::default()
    })
}

/// The graph under construction: nodes and initializers in order of first use.
struct Graph<'a> {
    params: &'a Params,
    opts: &'a OnnxOptions,
    eps: f64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    init_names: HashSet<String>,
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

impl<'a> Graph<'a> {
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }

    /// A float initializer in the export's dtype (once per name).
    fn float_init(&mut self, name: &str, dims: &[usize], data: &[f32]) {
        if !self.init_names.insert(name.to_string()) {
            return;
        }
        let raw: Vec<u8> = match self.opts.dtype {
            DType::F32 if cfg!(target_endian = "little") => bytemuck::cast_slice(data).to_vec(),
            DType::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            DType::F16 => data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        };
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(self.opts.dtype.onnx()),
            name: Some(name.into()),
            raw_data: Some(raw),
            ..Default::default()
        });
    }

    /// An int64 constant (shapes, pads, axes); returns its name.
    fn int_init(&mut self, name: &str, data: &[i64]) -> String {
        if self.init_names.insert(name.to_string()) {
            self.inits.push(TensorProto {
                dims: vec![data.len() as i64],
                data_type: Some(DataType::Int64 as i32),
                name: Some(name.into()),
                raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
                ..Default::default()
            });
        }
        name.to_string()
    }

    /// A parameter of the network, checked against the shape the network needs.
    fn get(&self, name: &str, shape: &[usize]) -> Result<&'a Param, OnnxError> {
        let p = self
            .params
            .get(name)
            .ok_or_else(|| OnnxError::Missing(name.into()))?;
        if p.shape != shape || p.data.len() != shape.iter().product::<usize>() {
            return Err(OnnxError::Shape {
                name: name.into(),
                expected: shape.to_vec(),
                found: p.shape.clone(),
            });
        }
        Ok(p)
    }

    /// A parameter as an initializer under its own name; returns the name.
    fn param(&mut self, name: &str, shape: &[usize]) -> Result<String, OnnxError> {
        let data = &self.get(name, shape)?.data;
        self.float_init(name, shape, data);
        Ok(name.to_string())
    }

    /// Runs `layers` from the value `x`; returns the last value's name.
    fn layers(&mut self, layers: &[Layer], mut x: String) -> Result<String, OnnxError> {
        let mut it = layers.iter().peekable();
        while let Some(l) = it.next() {
            x = match l {
                Layer::Conv(c) => {
                    let folded = match it.peek() {
                        Some(Layer::Norm(n))
                            if self.opts.fold_bn && n.norm == crate::ir::Norm::Batch =>
                        {
                            it.next();
                            Some(n)
                        }
                        _ => None,
                    };
                    self.conv(c, &x, folded)?
                }
                Layer::Norm(n) => self.norm(n, &x, n.name.clone())?,
                Layer::Relu { name, .. } => {
                    self.node("Relu", name, &[&x], &[name], vec![]);
                    name.clone()
                }
                Layer::Pool(p) => {
                    let q = p.pool;
                    let (k, s, pad) = (q.kernel as i64, q.stride as i64, q.padding as i64);
                    let mut attrs = vec![
                        int("ceil_mode", i64::from(q.ceil_mode)),
                        ints("kernel_shape", &[k, k]),
                        ints("pads", &[pad, pad, pad, pad]),
                        ints("strides", &[s, s]),
                    ];
                    let op = match q.kind {
                        PoolKind::Max => "MaxPool",
                        PoolKind::Avg => {
                            attrs.push(int("count_include_pad", i64::from(q.count_include_pad)));
                            "AveragePool"
                        }
                    };
                    self.node(op, &p.name, &[&x], &[&p.name], attrs);
                    p.name.clone()
                }
                Layer::Blur(b) => {
                    let (p, s, c) = (b.padding as i64, b.stride as i64, b.channels as usize);
                    let pads =
                        self.int_init(&format!("{}.pads", b.name), &[0, 0, p, p, 0, 0, p, p]);
                    let padded = format!("{}/Pad", b.name);
                    self.node(
                        "Pad",
                        &padded,
                        &[&x, &pads],
                        &[&padded],
                        vec![string("mode", "reflect")],
                    );
                    // timm's filter: [1, 2, 1] x [1, 2, 1] / 16, one per channel.
                    let taps = [1.0f32, 2.0, 1.0];
                    let k: Vec<f32> = taps
                        .iter()
                        .flat_map(|a| taps.iter().map(move |b| a * b / 16.0))
                        .collect();
                    let filt = format!("{}.filt", b.name);
                    let data: Vec<f32> = (0..c).flat_map(|_| k.iter().copied()).collect();
                    self.float_init(&filt, &[c, 1, 3, 3], &data);
                    self.node(
                        "Conv",
                        &b.name,
                        &[&padded, &filt],
                        &[&b.name],
                        vec![
                            ints("dilations", &[1, 1]),
                            int("group", c as i64),
                            ints("kernel_shape", &[3, 3]),
                            ints("pads", &[0, 0, 0, 0]),
                            ints("strides", &[s, s]),
                        ],
                    );
                    b.name.clone()
                }
                Layer::Attention(a) => {
                    let name = &a.name;
                    let c = a.channels as usize;
                    let pooled = format!("{name}/GlobalAveragePool");
                    self.node("GlobalAveragePool", &pooled, &[&x], &[&pooled], vec![]);
                    let gate = match a.kind {
                        AttentionKind::Se { hidden } => {
                            let h = hidden as usize;
                            let one = |n: String, i: usize, o: usize| ConvLayer {
                                name: n,
                                in_channels: i as u64,
                                out_channels: o as u64,
                                kernel: 1,
                                stride: 1,
                                padding: 0,
                                dilation: 1,
                                groups: 1,
                                bias: true,
                                input: crate::ir::Shape::new(i as u64, 1, 1),
                                output: crate::ir::Shape::new(o as u64, 1, 1),
                            };
                            let fc1 =
                                self.conv(&one(format!("{name}.fc1"), c, h), &pooled, None)?;
                            let relu = format!("{name}/Relu");
                            self.node("Relu", &relu, &[&fc1], &[&relu], vec![]);
                            self.conv(&one(format!("{name}.fc2"), h, c), &relu, None)?
                        }
                        AttentionKind::Eca { kernel } => {
                            let k = kernel as usize;
                            let to_seq = self.int_init("const.shape_n_1_c", &[0, 1, -1]);
                            let seq = format!("{name}/Reshape");
                            self.node("Reshape", &seq, &[&pooled, &to_seq], &[&seq], vec![]);
                            let conv = format!("{name}.conv");
                            let w = self.param(&format!("{conv}.weight"), &[1, 1, k])?;
                            let p = (k as i64 - 1) / 2;
                            self.node(
                                "Conv",
                                &conv,
                                &[&seq, &w],
                                &[&conv],
                                vec![
                                    ints("dilations", &[1]),
                                    int("group", 1),
                                    ints("kernel_shape", &[k as i64]),
                                    ints("pads", &[p, p]),
                                    ints("strides", &[1]),
                                ],
                            );
                            let back = self.int_init("const.shape_n_c_1_1", &[0, -1, 1, 1]);
                            let gate = format!("{name}/Reshape_1");
                            self.node("Reshape", &gate, &[&conv, &back], &[&gate], vec![]);
                            gate
                        }
                    };
                    let sig = format!("{name}/Sigmoid");
                    self.node("Sigmoid", &sig, &[&gate], &[&sig], vec![]);
                    self.node("Mul", name, &[&x, &sig], &[name], vec![]);
                    name.clone()
                }
                Layer::Subsample {
                    name,
                    stride,
                    extra_channels,
                    ..
                } => {
                    let (s, extra) = (*stride as i64, *extra_channels as i64);
                    let mut y = x.clone();
                    if s > 1 {
                        let starts = self.int_init("const.zeros2", &[0, 0]);
                        let ends = self.int_init("const.int64_max2", &[i64::MAX, i64::MAX]);
                        let axes = self.int_init("const.axes_hw", &[2, 3]);
                        let steps = self.int_init(&format!("const.steps{s}"), &[s, s]);
                        let out = if extra > 0 {
                            format!("{name}/Slice")
                        } else {
                            name.clone()
                        };
                        self.node(
                            "Slice",
                            &out,
                            &[&y, &starts, &ends, &axes, &steps],
                            &[&out],
                            vec![],
                        );
                        y = out;
                    }
                    if extra > 0 {
                        let pads =
                            self.int_init(&format!("{name}.pads"), &[0, 0, 0, 0, 0, extra, 0, 0]);
                        self.node(
                            "Pad",
                            name,
                            &[&y, &pads],
                            &[name],
                            vec![string("mode", "constant")],
                        );
                        y = name.clone();
                    }
                    if y == x {
                        self.node("Identity", name, &[&x], &[name], vec![]);
                        y = name.clone();
                    }
                    y
                }
                // Identity at inference.
                Layer::DropPath { .. } => x,
            };
        }
        Ok(x)
    }

    /// A convolution, with the BN after it folded in if `bn` is given (then followed by
    /// the BN's ReLU); returns the output's name.
    fn conv(
        &mut self,
        c: &ConvLayer,
        x: &str,
        bn: Option<&NormLayer>,
    ) -> Result<String, OnnxError> {
        let (out, k) = (c.out_channels as usize, c.kernel as usize);
        let in_per_group = (c.in_channels / c.groups.max(1)) as usize;
        let w_shape = [out, in_per_group, k, k];
        let w_name = format!("{}.weight", c.name);
        let b_name = format!("{}.bias", c.name);
        let mut inputs = vec![x.to_string()];
        match bn {
            None => {
                inputs.push(self.param(&w_name, &w_shape)?);
                if c.bias {
                    inputs.push(self.param(&b_name, &[out])?);
                }
            }
            Some(n) => {
                let (scale, shift) = self.scale_shift(n)?;
                // As the runtime's pass: the factors in f64, one rounding of the product
                // in f32.
                let w = self.get(&w_name, &w_shape)?;
                let per = in_per_group * k * k;
                let data: Vec<f32> = w
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * scale[i / per] as f32)
                    .collect();
                let bias: Vec<f32> = if c.bias {
                    let b = &self.get(&b_name, &[out])?.data;
                    (0..out)
                        .map(|o| (f64::from(b[o]) * scale[o] + shift[o]) as f32)
                        .collect()
                } else {
                    shift.iter().map(|&v| v as f32).collect()
                };
                self.float_init(&w_name, &w_shape, &data);
                self.float_init(&b_name, &[out], &bias);
                inputs.push(w_name.clone());
                inputs.push(b_name.clone());
            }
        }
        let (s, p, d) = (c.stride as i64, c.padding as i64, c.dilation as i64);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node(
            "Conv",
            &c.name,
            &inputs,
            &[&c.name],
            vec![
                ints("dilations", &[d, d]),
                int("group", c.groups as i64),
                ints("kernel_shape", &[k as i64, k as i64]),
                ints("pads", &[p, p, p, p]),
                ints("strides", &[s, s]),
            ],
        );
        match bn {
            Some(n) if n.relu => {
                self.node(
                    "Relu",
                    &format!("{}/Relu", n.name),
                    &[&c.name],
                    &[&n.name],
                    vec![],
                );
                Ok(n.name.clone())
            }
            _ => Ok(c.name.clone()),
        }
    }

    /// Eval-mode BN as `x * scale + shift` in f64 (`scale = weight / sqrt(var + eps)`).
    fn scale_shift(&self, n: &NormLayer) -> Result<(Vec<f64>, Vec<f64>), OnnxError> {
        let c = [n.channels as usize];
        let get = |what: &str| {
            self.get(&format!("{}.{what}", n.name), &c)
                .map(|p| p.data.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>())
        };
        let (w, b, m, v) = (
            get("weight")?,
            get("bias")?,
            get("running_mean")?,
            get("running_var")?,
        );
        let scale: Vec<f64> = w
            .iter()
            .zip(&v)
            .map(|(w, v)| w / (v + self.eps).sqrt())
            .collect();
        let shift = b
            .iter()
            .zip(&m)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok((scale, shift))
    }

    /// A norm layer (node `<name>`), then ReLU if it has one (node `<name>/Relu`); the
    /// final output is named `out`.
    fn norm(&mut self, n: &NormLayer, x: &str, out: String) -> Result<String, OnnxError> {
        let name = &n.name;
        let c = n.channels as usize;
        let y = if n.relu {
            format!("{name}/Norm")
        } else {
            out.clone()
        };
        match n.norm {
            crate::ir::Norm::Batch => {
                let inputs = [
                    self.param(&format!("{name}.weight"), &[c])?,
                    self.param(&format!("{name}.bias"), &[c])?,
                    self.param(&format!("{name}.running_mean"), &[c])?,
                    self.param(&format!("{name}.running_var"), &[c])?,
                ];
                self.node(
                    "BatchNormalization",
                    name,
                    &[x, &inputs[0], &inputs[1], &inputs[2], &inputs[3]],
                    &[&y],
                    vec![float("epsilon", self.eps as f32)],
                );
            }
            crate::ir::Norm::Group { groups } => self.group_norm(n, groups as i64, x, &y)?,
        }
        if n.relu {
            self.node("Relu", &format!("{name}/Relu"), &[&y], &[&out], vec![]);
        }
        Ok(out)
    }

    /// GroupNorm written out: normalize over `[N, G, C/G * H * W]` (population variance),
    /// then the per-channel weight and bias.
    fn group_norm(
        &mut self,
        n: &NormLayer,
        groups: i64,
        x: &str,
        out: &str,
    ) -> Result<(), OnnxError> {
        let name = &n.name;
        let c = n.channels as usize;
        let v = |op: &str| format!("{name}/{op}");
        let grouped = self.int_init(&format!("const.shape_n_{groups}_m1"), &[0, groups, -1]);
        self.node(
            "Reshape",
            &v("Reshape"),
            &[x, &grouped],
            &[&v("Reshape")],
            vec![],
        );
        let reduce = |g: &mut Self, node: &str, input: &str| {
            if g.opts.opset >= 18 {
                let axes = g.int_init("const.axes2", &[2]);
                g.node(
                    "ReduceMean",
                    node,
                    &[input, &axes],
                    &[node],
                    vec![int("keepdims", 1)],
                );
            } else {
                g.node(
                    "ReduceMean",
                    node,
                    &[input],
                    &[node],
                    vec![ints("axes", &[2]), int("keepdims", 1)],
                );
            }
        };
        reduce(self, &v("ReduceMean"), &v("Reshape"));
        self.node(
            "Sub",
            &v("Sub"),
            &[&v("Reshape"), &v("ReduceMean")],
            &[&v("Sub")],
            vec![],
        );
        self.node(
            "Mul",
            &v("Mul"),
            &[&v("Sub"), &v("Sub")],
            &[&v("Mul")],
            vec![],
        );
        reduce(self, &v("ReduceMean_1"), &v("Mul"));
        let eps = "const.eps".to_string();
        self.float_init(&eps, &[], &[self.eps as f32]);
        self.node(
            "Add",
            &v("Add_eps"),
            &[&v("ReduceMean_1"), &eps],
            &[&v("Add_eps")],
            vec![],
        );
        self.node("Sqrt", &v("Sqrt"), &[&v("Add_eps")], &[&v("Sqrt")], vec![]);
        self.node(
            "Div",
            &v("Div"),
            &[&v("Sub"), &v("Sqrt")],
            &[&v("Div")],
            vec![],
        );
        // Back to [N, C, H, W] (the map's size is fixed by the spec's input).
        let sh = n.shape;
        let back = self.int_init(
            &format!("const.shape_n_{}_{}_{}", sh.c, sh.h, sh.w),
            &[0, sh.c as i64, sh.h as i64, sh.w as i64],
        );
        self.node(
            "Reshape",
            &v("Reshape_1"),
            &[&v("Div"), &back],
            &[&v("Reshape_1")],
            vec![],
        );
        let c11 = self.int_init("const.shape_c_1_1", &[-1, 1, 1]);
        let w = self.param(&format!("{name}.weight"), &[c])?;
        let b = self.param(&format!("{name}.bias"), &[c])?;
        self.node(
            "Reshape",
            &v("weight"),
            &[&w, &c11],
            &[&v("weight")],
            vec![],
        );
        self.node("Reshape", &v("bias"), &[&b, &c11], &[&v("bias")], vec![]);
        self.node(
            "Mul",
            &v("Mul_weight"),
            &[&v("Reshape_1"), &v("weight")],
            &[&v("Mul_weight")],
            vec![],
        );
        self.node("Add", name, &[&v("Mul_weight"), &v("bias")], &[out], vec![]);
        Ok(())
    }

    /// One residual block: pre, branch, shortcut, addition (node `<block>`, or `<block>/Add`
    /// when a ReLU follows as `<block>/Relu`); the output is named `<block>`.
    fn block(&mut self, b: &crate::valid::BlockPlan, x: String) -> Result<String, OnnxError> {
        let pre = self.layers(&b.pre, x.clone())?;
        let out = self.layers(&b.branch, pre.clone())?;
        let name = &b.name;
        let sum = match &b.shortcut {
            ShortcutPlan::None => out,
            ShortcutPlan::Path { from_pre, layers } => {
                let s = self.layers(layers, if *from_pre { pre } else { x })?;
                let y = if b.relu_after_add {
                    format!("{name}/Add")
                } else {
                    name.clone()
                };
                self.node("Add", &y, &[&out, &s], &[&y], vec![]);
                y
            }
        };
        if b.relu_after_add {
            self.node("Relu", &format!("{name}/Relu"), &[&sum], &[name], vec![]);
            return Ok(name.clone());
        }
        Ok(sum)
    }
}

/// The parameters `network` reads, with their shapes, in execution order: what a weights
/// source must provide (`num_batches_tracked` is not among them).
pub fn param_shapes(network: &Network) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut push = |n: String, shape: Vec<usize>| out.push((n, shape));
    let norm = |n: &NormLayer, push: &mut dyn FnMut(String, Vec<usize>)| {
        let c = vec![n.channels as usize];
        push(format!("{}.weight", n.name), c.clone());
        push(format!("{}.bias", n.name), c.clone());
        if n.norm == crate::ir::Norm::Batch {
            push(format!("{}.running_mean", n.name), c.clone());
            push(format!("{}.running_var", n.name), c);
        }
    };
    for l in network.body_layers() {
        match l {
            Layer::Conv(c) => {
                let (o, k) = (c.out_channels as usize, c.kernel as usize);
                let i = (c.in_channels / c.groups.max(1)) as usize;
                push(format!("{}.weight", c.name), vec![o, i, k, k]);
                if c.bias {
                    push(format!("{}.bias", c.name), vec![o]);
                }
            }
            Layer::Norm(n) => norm(n, &mut push),
            Layer::Attention(a) => {
                let c = a.channels as usize;
                match a.kind {
                    AttentionKind::Se { hidden } => {
                        let h = hidden as usize;
                        push(format!("{}.fc1.weight", a.name), vec![h, c, 1, 1]);
                        push(format!("{}.fc1.bias", a.name), vec![h]);
                        push(format!("{}.fc2.weight", a.name), vec![c, h, 1, 1]);
                        push(format!("{}.fc2.bias", a.name), vec![c]);
                    }
                    AttentionKind::Eca { kernel } => {
                        push(
                            format!("{}.conv.weight", a.name),
                            vec![1, 1, kernel as usize],
                        );
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(h) = &network.head {
        if let Some(n) = &h.norm {
            norm(n, &mut push);
        }
        let (i, o) = (h.fc.in_features as usize, h.fc.out_features as usize);
        push(format!("{}.weight", h.fc.name), vec![o, i]);
        push(format!("{}.bias", h.fc.name), vec![o]);
    }
    out
}

#[cfg(test)]
mod tests;
