//! [`ResNet`]: the checked network, built on libtorch.

use super::layers::{Attention, BatchNorm, Blur, Conv, Linear, Norm};
use super::{fused, RuntimeError};
use crate::ir::{HeadPool, Model, PoolKind, Shape};
use crate::lower::SpanTable;
use crate::valid::{self, Layer, Network, PoolLayer, ShortcutPlan};
use crate::Compiled;
use tch::{nn, Device, Kind, TchError, Tensor};

/// A network of any valid spec, with variables named exactly as torchvision's
/// `state_dict` (`conv1.weight`, `layer1.0.bn1.running_mean`,
/// `layer2.0.downsample.0.weight`, `fc.bias`, ...), so torchvision checkpoints load
/// without renaming (see [`super::weights`]).
///
/// Layer order follows [`crate::valid::BlockPlan`]: post-activation blocks run
/// `conv -> BN -> ReLU` with the last ReLU after the addition; pre-activation blocks run
/// `BN -> ReLU -> conv`, and their projection shortcut reads the pre-activated input.
/// Variables are initialized per the spec's `init` (torchvision's scheme or Xavier
/// uniform) and `zero_init_residual`.
///
/// [`nn::ModuleT::forward_t`] returns what the spec outputs (probabilities if the head
/// has `softmax`); [`ResNet::logits_t`] always returns the pre-softmax logits. Both
/// panic on a libtorch error, as tch's own modules do; [`ResNet::f_forward_t`] and
/// [`ResNet::f_logits_t`] return the error instead and check the input first.
#[derive(Debug)]
pub struct ResNet {
    pub(crate) model: Model,
    pub(crate) spans: SpanTable,
    pub(crate) network: Network,
    pub(crate) stem: Stem,
    pub(crate) blocks: Vec<Block>,
    /// `None` for a backbone.
    pub(crate) head: Option<Head>,
    /// Per block: the module name (`layer3`) of the feature map a backbone returns after
    /// it, if any.
    pub(crate) feature_after: Vec<Option<String>>,
    pub(crate) device: Device,
    pub(crate) kind: Kind,
    /// Training passes write ReLU and the residual addition in place
    /// ([`ResNet::set_train_in_place`]).
    pub(crate) train_in_place: bool,
    /// Training passes run batch norm, with the addition and ReLU after it, as one fused
    /// operator where it is available ([`ResNet::set_train_fused`]).
    pub(crate) train_fused: bool,
    /// Training runs in channels-last order ([`ResNet::set_train_channels_last`]).
    pub(crate) train_channels_last: bool,
}

/// How a forward pass runs: training mode (batch statistics, dropout) or not, and
/// whether ReLU and the residual addition may overwrite tensors made in the pass.
#[derive(Clone, Copy, Debug)]
struct Mode {
    train: bool,
    in_place: bool,
    /// Batch norm (+ addition) (+ ReLU) as [`fused::bn_act`] where it is available. Hooks
    /// then see no output for a batch norm fused with the addition after it.
    fused: bool,
    /// Operators that may choose their output's memory order choose channels-last.
    channels_last: bool,
}

/// One layer of the stem or a block, with its variables.
#[derive(Debug)]
pub(crate) enum RLayer {
    Conv(Conv),
    /// A norm layer, then ReLU if the flag is set.
    Norm(Norm, bool),
    Relu(String),
    Pool(PoolLayer),
    Blur(Blur),
    Attention(Attention),
    Subsample {
        name: String,
        stride: i64,
        extra_channels: i64,
    },
    DropPath {
        name: String,
        rate: f64,
    },
}

#[derive(Debug)]
pub(crate) struct Stem {
    pub layers: Vec<RLayer>,
}

#[derive(Debug)]
pub(crate) struct Block {
    pub name: String,
    pub pre: Vec<RLayer>,
    pub branch: Vec<RLayer>,
    pub shortcut: Shortcut,
    pub relu_after_add: bool,
}

#[derive(Debug)]
pub(crate) enum Shortcut {
    None,
    /// The shortcut's layers (none: the identity); `from_pre`: it reads the pre-activated
    /// input.
    Path {
        from_pre: bool,
        layers: Vec<RLayer>,
    },
}

#[derive(Debug)]
pub(crate) struct Head {
    pub norm: Option<Norm>,
    pub pool: HeadPool,
    pub dropout: f64,
    pub fc: Linear,
    pub softmax: bool,
}

impl ResNet {
    /// Creates the variables of `compiled`'s network under `p` and initializes them.
    ///
    /// Fails only if libtorch cannot allocate them (out of memory, bad device).
    pub fn new(p: &nn::Path, compiled: &Compiled) -> Result<ResNet, RuntimeError> {
        Self::build(p, compiled).map_err(RuntimeError::torch("creating the network's variables"))
    }

    fn build(p: &nn::Path, compiled: &Compiled) -> Result<ResNet, TchError> {
        let model = &compiled.model;
        let net = &compiled.network;
        let init = model.init;
        let bn_cfg = model.batch_norm;
        let layer = |l: &Layer, zero: bool| -> Result<RLayer, TchError> {
            Ok(match l {
                Layer::Conv(c) => RLayer::Conv(Conv::new(p, c, init)?),
                Layer::Norm(n) => RLayer::Norm(Norm::new(p, n, bn_cfg, zero)?, n.relu),
                Layer::Relu { name, .. } => RLayer::Relu(name.clone()),
                Layer::Pool(pl) => RLayer::Pool(pl.clone()),
                Layer::Blur(b) => RLayer::Blur(Blur::new(p, b)?),
                Layer::Attention(a) => RLayer::Attention(Attention::new(p, a, init)?),
                Layer::Subsample {
                    name,
                    stride,
                    extra_channels,
                    ..
                } => RLayer::Subsample {
                    name: name.clone(),
                    stride: *stride as i64,
                    extra_channels: *extra_channels as i64,
                },
                Layer::DropPath { name, rate, .. } => RLayer::DropPath {
                    name: name.clone(),
                    rate: *rate,
                },
            })
        };
        let all = |ls: &[Layer]| {
            ls.iter()
                .map(|l| layer(l, false))
                .collect::<Result<Vec<_>, _>>()
        };
        let stem = Stem {
            layers: all(&net.stem.layers)?,
        };
        let mut blocks = Vec::with_capacity(net.blocks.len());
        for b in &net.blocks {
            // zero_init_residual zeroes the last norm layer of each residual block so that
            // the block starts as its shortcut; a plain block has no shortcut to fall back on.
            let residual = !matches!(b.shortcut, ShortcutPlan::None);
            let last_norm = b
                .pre
                .iter()
                .chain(&b.branch)
                .collect::<Vec<_>>()
                .iter()
                .rposition(|l| matches!(l, Layer::Norm(_)));
            let zero_at = if model.zero_init_residual && residual {
                last_norm
            } else {
                None
            };
            let mut pre = Vec::new();
            let mut branch = Vec::new();
            for (i, l) in b.pre.iter().chain(&b.branch).enumerate() {
                let r = layer(l, zero_at == Some(i))?;
                if i < b.pre.len() {
                    pre.push(r);
                } else {
                    branch.push(r);
                }
            }
            let shortcut = match &b.shortcut {
                ShortcutPlan::None => Shortcut::None,
                ShortcutPlan::Path { from_pre, layers } => Shortcut::Path {
                    from_pre: *from_pre,
                    layers: all(layers)?,
                },
            };
            blocks.push(Block {
                name: b.name.clone(),
                pre,
                branch,
                shortcut,
                relu_after_add: b.relu_after_add,
            });
        }
        let head = match &net.head {
            Some(h) => Some(Head {
                norm: h.norm.as_ref().map(|l| Norm::new(p, l, bn_cfg, false)).transpose()?,
                pool: h.pool,
                dropout: h.dropout,
                fc: Linear::new(p, &h.fc, init)?,
                softmax: h.softmax,
            }),
            None => None,
        };
        let feature_after = net
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let last_of_stage = net.blocks.get(i + 1).is_none_or(|next| next.stage != b.stage);
                net.features.iter().find(|f| f.stage == b.stage && last_of_stage).map(|f| f.module.clone())
            })
            .collect();
        Ok(ResNet {
            model: model.clone(),
            spans: compiled.spans.clone(),
            network: net.clone(),
            stem,
            blocks,
            head,
            feature_after,
            device: p.device(),
            kind: p.kind(),
            train_in_place: false,
            train_fused: false,
            train_channels_last: false,
        })
    }

    /// Lets training passes apply ReLU and the residual addition in place, to tensors
    /// made earlier in the same pass (never to the input or a block's input, which the
    /// shortcut still reads); autograd's version counters refuse any overwrite that its
    /// backward pass would need. Inference passes are unaffected.
    pub fn set_train_in_place(&mut self, on: bool) {
        self.train_in_place = on;
    }

    /// Lets training passes run batch norm, with the residual addition and ReLU that
    /// follow it, as one fused CPU operator with its own backward pass
    /// ([`super::fused`]), where it is available (float32, float64, or bfloat16 under
    /// autocast, on an x86-64 CPU with AVX2); elsewhere libtorch's operators run as before.
    /// Inference passes are unaffected.
    pub fn set_train_fused(&mut self, on: bool) {
        self.train_fused = on;
    }

    /// Says that training runs in channels-last order (the batches and the convolution
    /// weights are), so that operators free to choose their output's order choose it: the
    /// fused batch norm after a 1-channel stem convolution, whose output libtorch leaves
    /// in NCHW order.
    pub fn set_train_channels_last(&mut self, on: bool) {
        self.train_channels_last = on;
    }

    fn mode(&self, train: bool) -> Mode {
        Mode {
            train,
            in_place: train && self.train_in_place,
            fused: train && self.train_fused,
            channels_last: train && self.train_channels_last,
        }
    }

    /// The checked network this model was built from.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The input shape of the spec (one sample, `[C, H, W]`).
    pub fn input_shape(&self) -> Shape {
        self.network.input
    }

    /// Number of classes (`fc`'s outputs); `None` for a backbone.
    pub fn classes(&self) -> Option<i64> {
        self.network.classes().map(|c| c as i64)
    }

    /// Whether [`nn::ModuleT::forward_t`] applies a softmax (the spec's `head.softmax`).
    pub fn has_softmax(&self) -> bool {
        self.head.as_ref().is_some_and(|h| h.softmax)
    }

    /// Whether the network is a backbone (no head; [`ResNet::f_features_t`]).
    pub fn is_backbone(&self) -> bool {
        self.head.is_none()
    }

    /// A backbone's feature maps `[N, C, H, W]`, named by module (`layer3`, `layer4`), input
    /// checked as in [`ResNet::f_logits_t`]. For a classifier: an error.
    pub fn f_features_t(&self, xs: &Tensor, train: bool) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        if self.head.is_some() {
            return Err(RuntimeError::Unsupported(format!(
                "`{}` is a classifier: it returns logits, not feature maps (give the spec `features` for a backbone)",
                crate::diag::escape(&self.model.name)
            )));
        }
        let xs = self.prepare_input(xs)?;
        let mut features = Vec::new();
        let _last = self.body(&xs, train, &mut |_, _| {}, &mut features).map_err(RuntimeError::torch("running the forward pass"))?;
        Ok(features)
    }

    /// The device the variables were created on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Names of every BN layer (`bn1`, `layer1.0.bn1`, `layer1.0.downsample.1`, ...).
    pub fn batch_norm_names(&self) -> Vec<String> {
        self.batch_norms().map(|b| b.name.clone()).collect()
    }

    /// Every layer of the stem and the blocks.
    pub(crate) fn body_layers(&self) -> impl Iterator<Item = &RLayer> {
        self.stem
            .layers
            .iter()
            .chain(self.blocks.iter().flat_map(|b| {
                let sc: &[RLayer] = match &b.shortcut {
                    Shortcut::None => &[],
                    Shortcut::Path { layers, .. } => layers,
                };
                b.pre.iter().chain(&b.branch).chain(sc)
            }))
    }

    pub(crate) fn batch_norms(&self) -> impl Iterator<Item = &BatchNorm> {
        self.body_layers()
            .filter_map(|l| match l {
                RLayer::Norm(Norm::Batch(b), _) => Some(b),
                _ => None,
            })
            .chain(self.head.iter().flat_map(|h| h.norm.iter()).filter_map(|n| match n {
                Norm::Batch(b) => Some(b),
                Norm::Group(_) => None,
            }))
    }

    /// Pre-softmax logits `[N, classes]`. Panics on a libtorch error (see
    /// [`ResNet::f_logits_t`]).
    pub fn logits_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.f_logits_t(xs, train) {
            Ok(t) => t,
            Err(e) => panic!("resnetc: forward pass failed: {e}"),
        }
    }

    /// Pre-softmax logits `[N, classes]`, with the input checked first: it must be a
    /// floating-point `[N, C, H, W]` tensor with the spec's channels and a size the
    /// network can take (any size for pooling heads that does not shrink to zero, the
    /// spec's size for `flatten`). It is moved to the model's device and dtype.
    pub fn f_logits_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, RuntimeError> {
        if self.head.is_none() {
            return Err(self.no_logits());
        }
        let xs = self.prepare_input(xs)?;
        self.logits_unchecked(&xs, train)
            .map_err(RuntimeError::torch("running the forward pass"))
    }

    /// The spec's output (softmax applied if the head has it), input checked as in
    /// [`ResNet::f_logits_t`].
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor, RuntimeError> {
        let logits = self.f_logits_t(xs, train)?;
        self.finish(logits)
            .map_err(RuntimeError::torch("applying the softmax"))
    }

    /// The error for asking a backbone for logits.
    pub(crate) fn no_logits(&self) -> RuntimeError {
        RuntimeError::Unsupported(format!(
            "`{}` is a backbone: it returns feature maps (`features`), not logits",
            crate::diag::escape(&self.model.name)
        ))
    }

    /// Applies the head's softmax if the spec has one.
    pub(crate) fn finish(&self, logits: Tensor) -> Result<Tensor, TchError> {
        if self.has_softmax() {
            logits.f_softmax(-1, logits.kind())
        } else {
            Ok(logits)
        }
    }

    /// Checks the input's rank, dtype, channels and size; converts it to the model's
    /// device and kind.
    pub(crate) fn prepare_input(&self, xs: &Tensor) -> Result<Tensor, RuntimeError> {
        self.check_input(xs)?;
        let mut xs = xs.shallow_clone();
        if xs.device() != self.device {
            xs = xs.f_to_device(self.device).map_err(RuntimeError::torch(
                "moving the input to the model's device",
            ))?;
        }
        if xs.kind() != self.kind {
            xs = xs
                .f_to_kind(self.kind)
                .map_err(RuntimeError::torch("converting the input's dtype"))?;
        }
        Ok(xs)
    }

    /// Checks that `xs` is a floating-point `[N, C, H, W]` tensor that this network can
    /// take.
    pub fn check_input(&self, xs: &Tensor) -> Result<(), RuntimeError> {
        let spec = self.network.input;
        let expected = || format!("[N, {}, {}, {}] (N >= 1)", spec.c, spec.h, spec.w);
        let size = xs.size();
        let kind = xs
            .f_kind()
            .map_err(RuntimeError::torch("reading the input's dtype"))?;
        if !matches!(
            kind,
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(RuntimeError::InputDtype { found: kind });
        }
        let &[n, c, h, w] = size.as_slice() else {
            return Err(RuntimeError::InputShape {
                expected: expected(),
                found: size,
            });
        };
        if n < 1 || c != spec.c as i64 || h < 1 || w < 1 {
            return Err(RuntimeError::InputShape {
                expected: expected(),
                found: size,
            });
        }
        if (h as u64, w as u64) == (spec.h, spec.w) {
            return Ok(());
        }
        // Another size: check the shape flow for it, as the compiler would.
        let mut model = self.model.clone();
        model.input = Shape::new(c as u64, h as u64, w as u64);
        let why = match valid::validate(&model, &self.spans) {
            Ok((net, _)) if net.head.as_ref().map(|h| h.fc.in_features) == self.network.head.as_ref().map(|h| h.fc.in_features) => return Ok(()),
            Ok((net, _)) => format!(
                "{}: the head would give fc {} features instead of {} (a flatten head fixes the input size)",
                expected(),
                net.head.as_ref().map_or(0, |h| h.fc.in_features),
                self.network.head.as_ref().map_or(0, |h| h.fc.in_features)
            ),
            Err(diags) => {
                let first = diags.iter().find(|d| d.is_error()).map_or_else(String::new, |d| d.message.clone());
                format!("{} ({h}x{w} does not fit: {first})", expected())
            }
        };
        Err(RuntimeError::InputShape {
            expected: why,
            found: size,
        })
    }

    pub(crate) fn logits_unchecked(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        self.forward_hooked(xs, train, &mut |_, _| {})
    }

    /// Runs the forward pass in eval mode and returns every layer's output shape
    /// (without the batch dimension), named and ordered as the compiler's layer table
    /// ([`Network::layers`]): the shapes libtorch actually produces, to compare with
    /// what the checker predicts.
    pub fn layer_shapes(&self, xs: &Tensor) -> Result<Vec<(String, Vec<i64>)>, RuntimeError> {
        let xs = self.prepare_input(xs)?;
        let mut shapes = Vec::new();
        let _guard = tch::no_grad_guard();
        let mut hook = |name: &str, t: &Tensor| shapes.push((name.to_string(), t.size()[1..].to_vec()));
        let mut features = Vec::new();
        let x = self.body(&xs, false, &mut hook, &mut features).map_err(RuntimeError::torch("running the forward pass"))?;
        if self.head.is_some() {
            let _ = self.head_forward(&x, false, &mut hook).map_err(RuntimeError::torch("running the forward pass"))?;
        }
        Ok(shapes)
    }

    /// The forward pass; `hook` sees each layer's output under its layer-table name.
    fn forward_hooked(&self, xs: &Tensor, train: bool, hook: Hook) -> Result<Tensor, TchError> {
        let x = self.body(xs, train, hook, &mut Vec::new())?;
        self.head_forward(&x, train, hook)
    }

    /// The stem and the blocks; a backbone's feature maps are collected into `features`
    /// (and shown to `hook` under their module names, as the layer table lists them).
    fn body(&self, xs: &Tensor, train: bool, hook: Hook, features: &mut Vec<(String, Tensor)>) -> Result<Tensor, TchError> {
        let mut x = self.stem_forward(xs, train, hook)?;
        let mode = self.mode(train);
        for (b, feature) in self.blocks.iter().zip(&self.feature_after) {
            x = b.forward(&x, mode, hook)?;
            if let Some(module) = feature {
                features.push((module.clone(), x.shallow_clone()));
            }
        }
        for (module, t) in features.iter() {
            hook(module, t);
        }
        Ok(x)
    }

    fn stem_forward(&self, xs: &Tensor, train: bool, hook: Hook) -> Result<Tensor, TchError> {
        Ok(run_layers(&self.stem.layers, xs, self.mode(train), hook)?.0)
    }

    fn head_forward(&self, x: &Tensor, train: bool, hook: Hook) -> Result<Tensor, TchError> {
        let Some(h) = &self.head else {
            return Err(TchError::Kind("a backbone has no head".into()));
        };
        let mut x = x.shallow_clone();
        if let Some(norm) = &h.norm {
            x = norm.forward(&x, train)?.f_relu()?;
            hook(norm.name(), &x);
        }
        let x = match h.pool {
            HeadPool::Avg => {
                let y = x.f_adaptive_avg_pool2d([1, 1])?;
                hook("avgpool", &y);
                y
            }
            HeadPool::Max => {
                let y = x.f_adaptive_max_pool2d([1, 1])?.0;
                hook("maxpool_head", &y);
                y
            }
            HeadPool::Flatten => x,
        };
        let mut x = x.f_flatten(1, -1)?;
        hook("flatten", &x);
        if h.dropout > 0.0 {
            x = x.f_dropout(h.dropout, train)?;
            hook("dropout", &x);
        }
        let y = h.fc.forward(&x)?;
        hook("fc", &y);
        if h.softmax {
            hook("softmax", &y);
        }
        Ok(y)
    }
}

/// Sees each layer's output (name as in the layer table).
type Hook<'h> = &'h mut dyn FnMut(&str, &Tensor);

/// A pooling layer (max or average; dilation 1).
pub(crate) fn pool_forward(x: &Tensor, p: &PoolLayer) -> Result<Tensor, TchError> {
    let q = p.pool;
    let (k, s, pad) = (q.kernel as i64, q.stride as i64, q.padding as i64);
    match q.kind {
        PoolKind::Max => x.f_max_pool2d([k, k], [s, s], [pad, pad], [1, 1], q.ceil_mode),
        PoolKind::Avg => x.f_avg_pool2d(
            [k, k],
            [s, s],
            [pad, pad],
            q.ceil_mode,
            q.count_include_pad,
            None::<i64>,
        ),
    }
}

/// timm's `drop_path`: in training, each sample is kept with probability `1 - rate` and
/// then scaled by `1 / (1 - rate)`.
pub(crate) fn drop_path(x: &Tensor, rate: f64, train: bool) -> Result<Tensor, TchError> {
    if !train || rate <= 0.0 {
        return Ok(x.shallow_clone());
    }
    let keep = 1.0 - rate;
    let n = x.size()[0];
    let mask = Tensor::f_empty([n, 1, 1, 1], (x.kind(), x.device()))?.f_bernoulli_float_(keep)?;
    x.f_mul(&mask.f_div_scalar(keep)?)
}

/// Runs `layers` in order; `hook` sees each output under its layer-table name.
///
/// Also says whether the result may be overwritten in place: a tensor made by this list
/// (not the input, nor a view of it) whose maker's backward pass does not read it (a
/// ReLU's does). In place (`mode.in_place`), a ReLU overwrites such a tensor.
fn run_layers(layers: &[RLayer], x: &Tensor, mode: Mode, hook: Hook) -> Result<(Tensor, bool), TchError> {
    let train = mode.train;
    let mut x = x.shallow_clone();
    let mut writable = false;
    for l in layers {
        let made = match l {
            // Views of the input, or the input itself (drop-path in eval mode).
            RLayer::Subsample { .. } | RLayer::DropPath { .. } => false,
            RLayer::Relu(_) | RLayer::Norm(_, true) => false,
            _ => true,
        };
        x = match l {
            RLayer::Conv(c) => {
                let y = c.forward(&x)?;
                hook(&c.layer.name, &y);
                y
            }
            RLayer::Norm(Norm::Batch(b), relu) if mode.fused && fused::available(b, &x) => {
                let y = fused::bn_act(b, &x, None, *relu, mode.channels_last)?;
                hook(&b.name, &y);
                y
            }
            RLayer::Norm(n, relu) => {
                let mut y = n.forward(&x, train)?;
                if *relu && mode.in_place {
                    // The norm's backward pass reads its input, not its output.
                    let _ = y.f_relu_()?;
                } else if *relu {
                    y = y.f_relu()?;
                }
                hook(n.name(), &y);
                y
            }
            RLayer::Relu(name) => {
                let y = if mode.in_place && writable {
                    x.f_relu_()?
                } else {
                    x.f_relu()?
                };
                hook(name, &y);
                y
            }
            RLayer::Pool(p) => {
                let y = pool_forward(&x, p)?;
                hook(&p.name, &y);
                y
            }
            RLayer::Blur(b) => {
                let y = b.forward(&x)?;
                hook(&b.layer.name, &y);
                y
            }
            RLayer::Attention(a) => {
                let y = a.forward(&x, hook)?;
                hook(a.name(), &y);
                y
            }
            RLayer::Subsample {
                name,
                stride,
                extra_channels,
            } => {
                let y = zero_pad_shortcut(&x, *stride, *extra_channels)?;
                hook(name, &y);
                y
            }
            RLayer::DropPath { name, rate } => {
                let y = drop_path(&x, *rate, train)?;
                hook(name, &y);
                y
            }
        };
        writable = made;
    }
    Ok((x, writable))
}

/// Option A: `x[:, :, ::stride, ::stride]` with `extra` zero channels appended.
pub(crate) fn zero_pad_shortcut(x: &Tensor, stride: i64, extra: i64) -> Result<Tensor, TchError> {
    let mut x = x.shallow_clone();
    if stride > 1 {
        x = x.f_slice(2, None::<i64>, None::<i64>, stride)?.f_slice(
            3,
            None::<i64>,
            None::<i64>,
            stride,
        )?;
    }
    if extra > 0 {
        x = x.f_constant_pad_nd([0, 0, 0, 0, 0, extra])?;
    }
    Ok(x)
}

impl Block {
    /// `pre`, then the branch; the shortcut from the input (or the pre-activated input);
    /// their sum, then ReLU if the block has one after the addition.
    fn forward(&self, x: &Tensor, mode: Mode, hook: Hook) -> Result<Tensor, TchError> {
        let (pre, _) = run_layers(&self.pre, x, mode, hook)?;
        if let Some(out) = self.forward_fused(x, &pre, mode, hook)? {
            hook(&self.name, &out);
            return Ok(out);
        }
        let (out, writable) = run_layers(&self.branch, &pre, mode, hook)?;
        let (mut out, writable) = match &self.shortcut {
            Shortcut::None => (out, writable),
            Shortcut::Path { from_pre, layers } => {
                let (s, _) = run_layers(layers, if *from_pre { &pre } else { x }, mode, hook)?;
                if mode.in_place && writable {
                    let mut out = out;
                    let _ = out.f_add_(&s)?;
                    (out, true)
                } else {
                    (out.f_add(&s)?, true)
                }
            }
        };
        if self.relu_after_add {
            out = if mode.in_place && writable {
                out.f_relu_()?
            } else {
                out.f_relu()?
            };
        }
        hook(&self.name, &out);
        Ok(out)
    }

    /// The block with its last batch norm, the addition and the ReLU after it as one
    /// fused operator, if the branch ends in a batch norm, the block has a shortcut and
    /// the operator is available; `None` otherwise.
    fn forward_fused(&self, x: &Tensor, pre: &Tensor, mode: Mode, hook: Hook) -> Result<Option<Tensor>, TchError> {
        let (Some((RLayer::Norm(Norm::Batch(bn), false), rest)), Shortcut::Path { from_pre, layers }) =
            (self.branch.split_last(), &self.shortcut)
        else {
            return Ok(None);
        };
        // The branch's tensors have the input's device and kind (bfloat16 under autocast:
        // every stem has a convolution); the operator refuses other kinds with an error.
        if !mode.fused || !fused::available(bn, x) {
            return Ok(None);
        }
        let (h, _) = run_layers(rest, pre, mode, hook)?;
        let (s, _) = run_layers(layers, if *from_pre { pre } else { x }, mode, hook)?;
        fused::bn_act(bn, &h, Some(&s), self.relu_after_add, mode.channels_last).map(Some)
    }
}

impl nn::ModuleT for ResNet {
    /// The spec's output: logits, or probabilities if the head has `softmax`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.f_forward_t(xs, train) {
            Ok(t) => t,
            Err(e) => panic!("resnetc: forward pass failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{SourceFile, Syntax};

    pub(crate) fn compile_spec(name: &str) -> Compiled {
        let path = format!("{}/specs/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("shipped spec");
        crate::compile(&SourceFile::new(&path, text, Syntax::Yaml)).expect("shipped spec compiles")
    }

    #[test]
    fn resnet18_variables_match_torchvision() {
        let c = compile_spec("resnet18.yaml");
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &c).unwrap();
        let vars = vs.variables();
        assert_eq!(vars.len(), 122);
        let trainable: usize = vs.trainable_variables().iter().map(|t| t.numel()).sum();
        assert_eq!(trainable, 11_689_512);
        assert_eq!(vars["layer2.0.downsample.1.running_var"].size(), vec![128]);
        assert_eq!(vars["layer1.0.bn1.num_batches_tracked"].kind(), Kind::Int64);
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let y = net.f_logits_t(&x, false).unwrap();
        assert_eq!(y.size(), vec![2, 1000]);
        // Training mode updates the running statistics and counts batches.
        let _ = net.f_logits_t(&x, true).unwrap();
        assert_eq!(vars["bn1.num_batches_tracked"].int64_value(&[]), 1);
    }

    #[test]
    fn initialization_follows_the_spec() {
        let std = |t: &Tensor| t.std(true).double_value(&[]);
        let bound = |t: &Tensor| t.abs().max().double_value(&[]);
        // torchvision: Kaiming-normal fan-out, BN 1/0, fc U(+-1/sqrt(fan_in)).
        let mut c = compile_spec("resnet50.yaml");
        c.model.zero_init_residual = true;
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ResNet::new(&vs.root(), &c).unwrap();
        let v = vs.variables();
        let w = &v["layer3.0.conv2.weight"]; // [256, 256, 3, 3]: fan_out 2304
        assert!(
            (std(w) / (2.0f64 / 2304.0).sqrt() - 1.0).abs() < 0.02,
            "{}",
            std(w)
        );
        assert!(bound(&v["fc.weight"]) <= 1.0 / 2048f64.sqrt() + 1e-7);
        assert!(bound(&v["fc.bias"]) <= 1.0 / 2048f64.sqrt() + 1e-7);
        assert_eq!(bound(&v["layer1.0.bn3.weight"]), 0.0, "zero_init_residual");
        assert_eq!(v["layer1.0.bn2.weight"].min().double_value(&[]), 1.0);
        assert_eq!(bound(&v["layer1.0.downsample.1.bias"]), 0.0);
        // Xavier uniform: U(+-sqrt(6 / (fan_in + fan_out))), biases 0.
        let c = compile_spec("article-pytorch.yaml");
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ResNet::new(&vs.root(), &c).unwrap();
        let v = vs.variables();
        let a = (6.0f64 / (49.0 + 64.0 * 49.0)).sqrt(); // conv1: [64, 1, 7, 7]
        let w = &v["conv1.weight"];
        assert!(bound(w) <= a + 1e-7 && bound(w) > 0.9 * a);
        assert_eq!(bound(&v["conv1.bias"]), 0.0);
        assert_eq!(bound(&v["fc.bias"]), 0.0);
        assert!(bound(&v["fc.weight"]) <= (6.0f64 / 522.0).sqrt() + 1e-7);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let c = compile_spec("resnet18.yaml");
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &c).unwrap();
        let wrong_c = Tensor::zeros([1, 1, 64, 64], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.f_logits_t(&wrong_c, false),
            Err(RuntimeError::InputShape { .. })
        ));
        let rank3 = Tensor::zeros([3, 64, 64], (Kind::Float, Device::Cpu));
        assert!(matches!(
            net.f_logits_t(&rank3, false),
            Err(RuntimeError::InputShape { .. })
        ));
        // Any size works for a pooling head (even 1x1 for resnet18), not for a flatten head.
        let tiny = Tensor::zeros([1, 3, 1, 1], (Kind::Float, Device::Cpu));
        assert_eq!(net.f_logits_t(&tiny, false).unwrap().size(), vec![1, 1000]);
        let keras = compile_spec("article-keras.yaml");
        let vs = nn::VarStore::new(Device::Cpu);
        let knet = ResNet::new(&vs.root(), &keras).unwrap();
        let ok = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(knet.f_forward_t(&ok, false).unwrap().size(), vec![2, 10]);
        let big = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let e = knet.f_logits_t(&big, false).unwrap_err();
        assert!(matches!(e, RuntimeError::InputShape { .. }), "{e}");
        let small = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let e = knet.f_logits_t(&small, false).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let ints = Tensor::zeros([1, 3, 64, 64], (Kind::Int64, Device::Cpu));
        assert!(matches!(
            net.f_logits_t(&ints, false),
            Err(RuntimeError::InputDtype { .. })
        ));
    }
}
