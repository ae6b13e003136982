//! Inference passes: a [`ResNet`] prepared once for fast eval-mode forward passes.
//!
//! Each pass is on by default and can be switched off ([`InferenceOptions`]):
//!
//! - **BN folding** (`fold_bn`): every BN that directly follows a convolution is folded
//!   into it, with `s = gamma / sqrt(var + eps)`: `w' = w * s`, `b' = (b - mean) * s +
//!   beta`, computed once (`s` and the bias in f64). In pre-activation blocks `bn{i+1}` follows `conv{i}`
//!   and folds into it; the leading `bn1` of each pre-activation block and `final_bn`
//!   act on a sum and stay as (eval-mode) BN.
//! - **no-grad** (`no_grad`): no autograd bookkeeping during the forward pass; ReLU and
//!   residual additions then run in place.
//! - **memory format** (`memory_format`): NCHW, channels-last, or (CPU, f32) oneDNN's
//!   blocked layout through libtorch's MKLDNN tensors (`mkldnn`). With
//!   [`MemoryFormat::Auto`] the first call measures each candidate on the actual input and
//!   keeps the fastest (`measure`); without measuring it takes the usual winner: on the
//!   CPU channels-last with fused kernels (oneDNN's blocked layout where those are
//!   missing), on CUDA NCHW for f32 and channels-last for f16/bf16. oneDNN convolution
//!   weights are reordered once, for the first input's shape.
//! - **fused kernels** (`fuse`): convolution, bias, residual addition and ReLU in one
//!   kernel. On the CPU (f32, NCHW or channels-last activations) through oneDNN's
//!   `mkldnn::_convolution_pointwise` with weights reordered once for the input shape
//!   (reached through a small in-memory TorchScript module, as tch binds only `aten::`
//!   operators); on CUDA through cuDNN's conv+bias+ReLU and conv+bias+add+ReLU. Falls
//!   back to separate operators where a kernel is missing or refuses. On CUDA the fused
//!   and unfused variants of each layout are both measured (cuDNN's fused kernel is not
//!   always its fastest); on the CPU the fused one replaces the unfused one.
//! - **CUDA**: cuDNN benchmark mode (`cudnn_benchmark`), and for `dtype` f16/bf16
//!   autocast-style mixed precision (`autocast`): convolutions and `fc` in the half type,
//!   BN parameters, logits and softmax in f32. Without `autocast` every tensor is cast to
//!   the half type.
//!
//! The one-time costs (folding in [`InferenceModel::new`]; weight reordering and
//! measurement on the first call) are reported by [`InferenceModel::report`], apart from
//! the steady-state time.

use super::layers::{BatchNorm, Conv, Norm};
use super::model::{zero_pad_shortcut, RLayer, Shortcut};
use super::onednn::FusedOps;
use super::{DType, ResNet, RuntimeError};
use crate::ir::{HeadPool, PoolKind, Shape};
use crate::valid::PoolLayer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tch::{Device, Kind, TchError, Tensor};

/// The memory layout activations use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MemoryFormat {
    /// Measure the candidates on the first call and keep the fastest (or, without
    /// measuring, take the usual winner for the device and dtype).
    #[default]
    Auto,
    /// NCHW, contiguous.
    Contiguous,
    /// NHWC strides (`torch.channels_last`).
    ChannelsLast,
    /// oneDNN's blocked layout through MKLDNN tensors (CPU, f32 only).
    Mkldnn,
}

impl MemoryFormat {
    /// The spelling used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            MemoryFormat::Auto => "auto",
            MemoryFormat::Contiguous => "contiguous",
            MemoryFormat::ChannelsLast => "channels-last",
            MemoryFormat::Mkldnn => "mkldnn",
        }
    }

    /// Parses `auto`, `contiguous` (or `nchw`), `channels-last` (or `nhwc`), `mkldnn`
    /// (or `onednn`).
    pub fn parse(s: &str) -> Result<MemoryFormat, String> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(MemoryFormat::Auto),
            "contiguous" | "nchw" => Ok(MemoryFormat::Contiguous),
            "channels-last" | "nhwc" => Ok(MemoryFormat::ChannelsLast),
            "mkldnn" | "onednn" => Ok(MemoryFormat::Mkldnn),
            _ => Err(format!(
                "unknown memory format `{s}`: use auto, contiguous, channels-last or mkldnn"
            )),
        }
    }
}

impl std::fmt::Display for MemoryFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which inference passes to apply (all on by default; see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct InferenceOptions {
    pub fold_bn: bool,
    pub no_grad: bool,
    pub memory_format: MemoryFormat,
    /// Allow oneDNN's layout as a candidate of [`MemoryFormat::Auto`].
    pub mkldnn: bool,
    /// Let [`MemoryFormat::Auto`] measure on the first call (worth it for many calls).
    pub measure: bool,
    pub cudnn_benchmark: bool,
    /// Fused convolution kernels (oneDNN post-ops on the CPU, cuDNN on CUDA).
    pub fuse: bool,
    pub dtype: DType,
    pub autocast: bool,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        InferenceOptions {
            fold_bn: true,
            no_grad: true,
            memory_format: MemoryFormat::Auto,
            mkldnn: true,
            measure: true,
            cudnn_benchmark: true,
            fuse: true,
            dtype: DType::F32,
            autocast: true,
        }
    }
}

impl InferenceOptions {
    /// Every pass off: the same computation as [`ResNet::f_logits_t`] in eval mode.
    pub fn none() -> Self {
        InferenceOptions {
            fold_bn: false,
            no_grad: false,
            memory_format: MemoryFormat::Contiguous,
            mkldnn: false,
            measure: false,
            cudnn_benchmark: false,
            fuse: false,
            dtype: DType::F32,
            autocast: false,
        }
    }
}

/// One-time costs and choices of an [`InferenceModel`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrepareReport {
    /// Building the plan: folding BN into convolutions, casting.
    pub fold: Duration,
    /// Converting and reordering weights for the layouts tried (oneDNN reorders).
    pub layout_prep: Duration,
    /// Forward passes run to measure the candidate layouts.
    pub measure: Duration,
    /// The layout in use, once the first call has chosen it.
    pub layout: Option<MemoryFormat>,
    /// Whether the chosen variant uses fused convolution kernels.
    pub fused: bool,
    /// Each measured candidate (`channels-last+fused`, `mkldnn`, ...) with its best of
    /// two timed passes.
    pub candidates: Vec<(String, Duration)>,
    /// Convolutions whose BN was folded into them.
    pub folded: usize,
}

impl PrepareReport {
    /// Total one-time cost.
    pub fn total(&self) -> Duration {
        self.fold + self.layout_prep + self.measure
    }
}

/// A [`ResNet`] prepared for eval-mode inference (see the module docs). Train-mode
/// passes are not affected by any pass: use [`ResNet::f_logits_t`] for them.
///
/// ```no_run
/// # fn demo(net: &resnetc::runtime::ResNet, x: &tch::Tensor) -> Result<(), resnetc::runtime::RuntimeError> {
/// use resnetc::runtime::{InferenceModel, InferenceOptions};
/// let fast = InferenceModel::new(net, InferenceOptions::default())?;
/// let logits = fast.logits(x)?; // first call: chooses the layout, reorders weights
/// println!("one-time cost {:?}", fast.report().total());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InferenceModel<'a> {
    net: &'a ResNet,
    opts: InferenceOptions,
    plan: Plan<'a>,
    device: Device,
    /// Kind of convolution weights and activations.
    compute: Kind,
    state: Mutex<State>,
    /// oneDNN's fused CPU convolutions, when this libtorch has them.
    onednn: Option<FusedOps>,
    /// cuDNN's fused kernels may be used: false when cuDNN is off, cleared if cuDNN
    /// refuses a fused convolution (later calls use separate ops).
    fused_ok: AtomicBool,
}

/// A memory layout, with or without fused kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Variant {
    layout: MemoryFormat,
    fused: bool,
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            self.layout,
            if self.fused { "+fused" } else { "" }
        )
    }
}

#[derive(Debug, Default)]
struct State {
    variant: Option<Variant>,
    weights: Vec<(Variant, LayoutWeights)>,
    report: PrepareReport,
}

/// Convolution weights and biases converted for one layout, indexed by `PConv::id`.
#[derive(Debug)]
struct LayoutWeights {
    convs: Vec<(Tensor, Option<Tensor>)>,
}

#[derive(Debug)]
struct PConv {
    id: usize,
    w: Tensor,
    b: Option<Tensor>,
    stride: i64,
    padding: i64,
    groups: i64,
    input: Shape,
}

/// Eval-mode BN that stays unfolded.
#[derive(Debug)]
struct PBn {
    w: Tensor,
    b: Tensor,
    mean: Tensor,
    var: Tensor,
    eps: f64,
}

/// A convolution, optionally followed by an unfolded BN.
#[derive(Debug)]
struct Unit {
    conv: PConv,
    bn: Option<PBn>,
}

/// One step of a prepared block or stem.
#[derive(Debug)]
enum Step<'a> {
    /// A convolution with the BN after it (folded or not), then ReLU if set.
    Unit(Unit, bool),
    /// A norm layer on its own (a pre-activation block's first BN, GroupNorm), then
    /// ReLU if set.
    Norm(PNorm, bool),
    Relu,
    Pool(PoolLayer),
    /// A layer the passes run as the runtime does (blur, attention, subsampling; drop
    /// path is the identity in eval mode).
    Layer(&'a RLayer),
}

/// Eval-mode norm that is not folded.
#[derive(Debug)]
enum PNorm {
    Batch(PBn),
    Group { w: Tensor, b: Tensor, groups: i64, eps: f64 },
}

#[derive(Debug)]
struct PBlock<'a> {
    pre: Vec<Step<'a>>,
    branch: Vec<Step<'a>>,
    /// `(from_pre, steps)`; `None` for plain blocks.
    shortcut: Option<(bool, Vec<Step<'a>>)>,
    relu_after_add: bool,
}

#[derive(Debug)]
struct Plan<'a> {
    stem: Vec<Step<'a>>,
    blocks: Vec<PBlock<'a>>,
    head_norm: Option<PNorm>,
    head_pool: HeadPool,
    fc_w: Tensor,
    fc_b: Tensor,
    convs: usize,
    folded: usize,
}

struct PlanBuilder<'o> {
    opts: &'o InferenceOptions,
    compute: Kind,
    bn_kind: Kind,
    detach: bool,
    next_id: usize,
    folded: usize,
}

impl PlanBuilder<'_> {
    fn param(&self, t: &Tensor, kind: Kind) -> Result<Tensor, TchError> {
        let t = if self.detach {
            t.f_detach()?
        } else {
            t.shallow_clone()
        };
        if t.kind() == kind {
            Ok(t)
        } else {
            t.f_to_kind(kind)
        }
    }

    fn bn(&self, bn: &BatchNorm) -> Result<PBn, TchError> {
        Ok(PBn {
            w: self.param(&bn.weight, self.bn_kind)?,
            b: self.param(&bn.bias, self.bn_kind)?,
            mean: self.param(&bn.running_mean, self.bn_kind)?,
            var: self.param(&bn.running_var, self.bn_kind)?,
            eps: bn.eps,
        })
    }

    fn norm(&self, n: &Norm) -> Result<PNorm, TchError> {
        Ok(match n {
            Norm::Batch(bn) => PNorm::Batch(self.bn(bn)?),
            Norm::Group(g) => PNorm::Group {
                w: self.param(&g.weight, self.bn_kind)?,
                b: self.param(&g.bias, self.bn_kind)?,
                groups: g.groups,
                eps: g.eps,
            },
        })
    }

    /// `conv` followed by `bn`: folded when the pass is on.
    fn unit(&mut self, conv: &Conv, bn: Option<&BatchNorm>) -> Result<Unit, TchError> {
        let id = self.next_id;
        self.next_id += 1;
        let mk = |w, b| PConv {
            id,
            w,
            b,
            stride: conv.stride(),
            padding: conv.padding(),
            groups: conv.groups(),
            input: conv.layer.input,
        };
        match bn {
            Some(bn) if self.opts.fold_bn => {
                let (scale, shift) = bn.scale_shift()?;
                // The per-channel factors come from f64; the product with the weights is
                // one rounding in the weights' own precision (as PyTorch's fuse_conv_bn).
                let w = conv.weight.f_detach()?;
                let w = w.f_mul(&scale.f_to_kind(w.kind())?.f_reshape([-1, 1, 1, 1])?)?;
                let b = match &conv.bias {
                    Some(b) => b
                        .f_detach()?
                        .f_to_kind(Kind::Double)?
                        .f_mul(&scale)?
                        .f_add(&shift)?,
                    None => shift,
                };
                self.folded += 1;
                Ok(Unit {
                    conv: mk(w.f_to_kind(self.compute)?, Some(b.f_to_kind(self.compute)?)),
                    bn: None,
                })
            }
            _ => {
                let w = self.param(&conv.weight, self.compute)?;
                let b = conv
                    .bias
                    .as_ref()
                    .map(|b| self.param(b, self.compute))
                    .transpose()?;
                Ok(Unit {
                    conv: mk(w, b),
                    bn: bn.map(|bn| self.bn(bn)).transpose()?,
                })
            }
        }
    }
}

impl<'a> InferenceModel<'a> {
    /// Prepares `net` for inference: checks the device/dtype combination and folds BN.
    /// Later changes to `net`'s variables are not seen (build a new one after training).
    pub fn new(
        net: &'a ResNet,
        opts: InferenceOptions,
    ) -> Result<InferenceModel<'a>, RuntimeError> {
        if net.is_backbone() {
            return Err(RuntimeError::Unsupported(format!(
                "the inference passes run classifiers; `{}` is a backbone (run it with `resnetc run`)",
                crate::diag::escape(&net.model.name)
            )));
        }
        let device = net.device();
        opts.dtype.check_device(device)?;
        if opts.memory_format == MemoryFormat::Mkldnn
            && !(device == Device::Cpu && opts.dtype == DType::F32)
        {
            return Err(RuntimeError::Unsupported(format!(
                "the mkldnn memory format needs the CPU and f32 (device {}, dtype {})",
                super::device::device_name(device),
                opts.dtype
            )));
        }
        if opts.memory_format == MemoryFormat::Mkldnn && !tch::utils::has_mkldnn() {
            return Err(RuntimeError::Unsupported(
                "this libtorch was built without oneDNN (MKLDNN)".into(),
            ));
        }
        if let Device::Cuda(_) = device {
            tch::Cuda::cudnn_set_benchmark(opts.cudnn_benchmark);
        }
        let start = Instant::now();
        let compute = opts.dtype.kind();
        let half = opts.dtype != DType::F32;
        let bn_kind = if half && opts.autocast {
            Kind::Float
        } else {
            compute
        };
        let mut b = PlanBuilder {
            opts: &opts,
            compute,
            bn_kind,
            detach: opts.no_grad || opts.fold_bn || half,
            next_id: 0,
            folded: 0,
        };
        let plan = Self::plan(net, &mut b).map_err(RuntimeError::torch("folding BN into the convolutions"))?;
        // oneDNN's fused kernels write residual sums in place: only without autograd.
        let onednn = (device == Device::Cpu
            && opts.dtype == DType::F32
            && opts.fuse
            && opts.no_grad
            && tch::utils::has_mkldnn())
        .then(FusedOps::load)
        .and_then(Result::ok);
        let report = PrepareReport {
            fold: start.elapsed(),
            folded: plan.folded,
            ..Default::default()
        };
        Ok(InferenceModel {
            net,
            opts,
            plan,
            device,
            compute,
            state: Mutex::new(State {
                report,
                ..Default::default()
            }),
            onednn,
            // cuDNN's fused kernels are called directly: not when the user turned cuDNN off.
            fused_ok: AtomicBool::new(tch::Cuda::user_enabled_cudnn()),
        })
    }

    /// The steps of a layer list: each convolution with the BN that follows it.
    fn plan_steps<'n>(layers: &'n [RLayer], b: &mut PlanBuilder) -> Result<Vec<Step<'n>>, TchError> {
        let mut out = Vec::new();
        let mut it = layers.iter().peekable();
        while let Some(l) = it.next() {
            out.push(match l {
                RLayer::Conv(conv) => match it.peek() {
                    Some(RLayer::Norm(Norm::Batch(bn), relu)) => {
                        it.next();
                        Step::Unit(b.unit(conv, Some(bn))?, *relu)
                    }
                    _ => Step::Unit(b.unit(conv, None)?, false),
                },
                RLayer::Norm(n, relu) => Step::Norm(b.norm(n)?, *relu),
                RLayer::Relu(_) => Step::Relu,
                RLayer::Pool(p) => Step::Pool(p.clone()),
                other => Step::Layer(other),
            });
        }
        Ok(out)
    }

    fn plan<'n>(net: &'n ResNet, b: &mut PlanBuilder) -> Result<Plan<'n>, TchError> {
        let stem = Self::plan_steps(&net.stem.layers, b)?;
        let mut blocks = Vec::with_capacity(net.blocks.len());
        for blk in &net.blocks {
            let shortcut = match &blk.shortcut {
                Shortcut::None => None,
                Shortcut::Path { from_pre, layers } => Some((*from_pre, Self::plan_steps(layers, b)?)),
            };
            blocks.push(PBlock {
                pre: Self::plan_steps(&blk.pre, b)?,
                branch: Self::plan_steps(&blk.branch, b)?,
                shortcut,
                relu_after_add: blk.relu_after_add,
            });
        }
        let Some(head) = &net.head else {
            return Err(TchError::Kind("a backbone has no head".into()));
        };
        Ok(Plan {
            stem,
            blocks,
            head_norm: head.norm.as_ref().map(|n| b.norm(n)).transpose()?,
            head_pool: head.pool,
            fc_w: b.param(&head.fc.weight, b.compute)?,
            fc_b: b.param(&head.fc.bias, b.compute)?,
            convs: b.next_id,
            folded: b.folded,
        })
    }

    /// The options this model was prepared with.
    pub fn options(&self) -> &InferenceOptions {
        &self.opts
    }

    /// One-time costs so far and the chosen layout.
    pub fn report(&self) -> PrepareReport {
        self.state
            .lock()
            .map(|s| s.report.clone())
            .unwrap_or_default()
    }

    /// The spec's output (softmax applied if the head has it) for `xs` (checked as in
    /// [`ResNet::f_logits_t`]), in eval mode.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, RuntimeError> {
        let logits = self.logits(xs)?;
        self.net
            .finish(logits)
            .map_err(RuntimeError::torch("applying the softmax"))
    }

    /// Pre-softmax logits in eval mode (f32 under autocast).
    pub fn logits(&self, xs: &Tensor) -> Result<Tensor, RuntimeError> {
        let xs = self.net.prepare_input(xs)?;
        let _guard = self.opts.no_grad.then(tch::no_grad_guard);
        let xs = if xs.kind() == self.compute {
            xs
        } else {
            xs.f_to_kind(self.compute)
                .map_err(RuntimeError::torch("casting the input"))?
        };
        let mut state = self.state.lock().map_err(|_| {
            RuntimeError::Unsupported("the inference model was poisoned by an earlier panic".into())
        })?;
        if state.variant.is_none() {
            self.choose_variant(&mut state, &xs)?;
        }
        let Some((v, lw)) = state.weights.first() else {
            return Err(RuntimeError::Unsupported(
                "no weights prepared for the chosen layout".into(),
            ));
        };
        let out = self
            .run(*v, lw, &xs)
            .map_err(RuntimeError::torch("running the inference pass"))?;
        if out.kind() != Kind::Float && self.opts.autocast {
            return out
                .f_to_kind(Kind::Float)
                .map_err(RuntimeError::torch("casting the logits to f32"));
        }
        Ok(out)
    }

    /// The variants worth trying, the usual winner first.
    fn candidates(&self) -> Vec<Variant> {
        let cpu = self.device == Device::Cpu;
        let mkldnn_ok = cpu && self.opts.dtype == DType::F32 && tch::utils::has_mkldnn();
        // Fused kernels: oneDNN's on the CPU (if the shim loaded), cuDNN's on CUDA.
        let fused = self.opts.fuse
            && (if cpu {
                self.onednn.is_some()
            } else {
                self.opts.no_grad
            });
        let v = |layout, fused| Variant { layout, fused };
        let layouts = match self.opts.memory_format {
            MemoryFormat::Auto if cpu => {
                let mut c = vec![MemoryFormat::ChannelsLast];
                if mkldnn_ok && self.opts.mkldnn {
                    c.insert(usize::from(fused), MemoryFormat::Mkldnn);
                }
                c.push(MemoryFormat::Contiguous);
                c
            }
            MemoryFormat::Auto if self.opts.dtype != DType::F32 => {
                vec![MemoryFormat::ChannelsLast, MemoryFormat::Contiguous]
            }
            MemoryFormat::Auto => vec![MemoryFormat::Contiguous, MemoryFormat::ChannelsLast],
            fixed => vec![fixed],
        };
        let mut out = Vec::new();
        for l in layouts {
            // MKLDNN tensors have no fused kernels here.
            if fused && l != MemoryFormat::Mkldnn {
                out.push(v(l, true));
                // On the CPU the fused variant replaces the unfused one (same kernels minus
                // extra passes over memory); on CUDA cuDNN's fused kernel may be slower
                // than its best unfused algorithm, so both are measured.
                if cpu {
                    continue;
                }
            }
            out.push(v(l, false));
        }
        out
    }

    fn choose_variant(&self, state: &mut State, xs: &Tensor) -> Result<(), RuntimeError> {
        let candidates = self.candidates();
        let measure = self.opts.measure && candidates.len() > 1;
        let tried: &[Variant] = if measure {
            &candidates
        } else {
            &candidates[..1]
        };
        let mut best: Option<(Variant, Duration)> = None;
        for &variant in tried {
            let start = Instant::now();
            let lw = self
                .prepare_weights(variant, xs.size()[0])
                .map_err(RuntimeError::torch(format!(
                    "preparing weights for {variant}"
                )))?;
            self.sync();
            state.report.layout_prep += start.elapsed();
            if measure {
                let start = Instant::now();
                let mut best_run = Duration::MAX;
                let leader = best.map_or(Duration::MAX, |(_, d)| d);
                for i in 0..3 {
                    let t = Instant::now();
                    let _ = self
                        .run(variant, &lw, xs)
                        .map_err(RuntimeError::torch(format!("measuring {variant}")))?;
                    self.sync();
                    let took = t.elapsed();
                    // The first pass warms caches and cuDNN's algorithm search.
                    if i > 0 {
                        best_run = best_run.min(took);
                    }
                    // Behind the leader in a timed pass: no need for another.
                    if i > 0 && took.as_secs_f64() > 1.1 * leader.as_secs_f64() {
                        break;
                    }
                }
                state.report.measure += start.elapsed();
                state
                    .report
                    .candidates
                    .push((variant.to_string(), best_run));
                if best.is_none_or(|(_, d)| best_run < d) {
                    best = Some((variant, best_run));
                }
            } else {
                best = Some((variant, Duration::ZERO));
            }
            state.weights.push((variant, lw));
        }
        let Some((chosen, _)) = best else {
            return Err(RuntimeError::Unsupported(
                "no memory format candidate for this device".into(),
            ));
        };
        // Keep only the chosen variant's weights.
        state.weights.retain(|(v, _)| *v == chosen);
        state.variant = Some(chosen);
        state.report.layout = Some(chosen.layout);
        state.report.fused = chosen.fused;
        Ok(())
    }

    fn sync(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }

    fn prepare_weights(&self, v: Variant, batch: i64) -> Result<LayoutWeights, TchError> {
        let layout = v.layout;
        // oneDNN weights: blocked for the MKLDNN layout and for the CPU's fused kernels.
        let onednn_weights =
            layout == MemoryFormat::Mkldnn || (v.fused && self.device == Device::Cpu);
        let mut convs: Vec<Option<(Tensor, Option<Tensor>)>> =
            (0..self.plan.convs).map(|_| None).collect();
        let mut add = |c: &PConv| -> Result<(), TchError> {
            let w = match layout {
                _ if onednn_weights => {
                    let i = c.input;
                    c.w.f_contiguous()?
                        .f_to_mkldnn(Kind::Float)?
                        .f_mkldnn_reorder_conv2d_weight(
                            [c.padding, c.padding],
                            [c.stride, c.stride],
                            [1, 1],
                            c.groups,
                            Some([batch, i.c as i64, i.h as i64, i.w as i64].as_slice()),
                        )?
                }
                MemoryFormat::ChannelsLast => channels_last(&c.w)?,
                _ => c.w.shallow_clone(),
            };
            let b = match (&c.b, layout) {
                (Some(b), MemoryFormat::Mkldnn) => {
                    Some(b.f_contiguous()?.f_to_mkldnn(Kind::Float)?)
                }
                (Some(b), _) => Some(b.shallow_clone()),
                (None, _) => None,
            };
            convs[c.id] = Some((w, b));
            Ok(())
        };
        let p = &self.plan;
        let mut all: Vec<&Step> = p.stem.iter().collect();
        for blk in &p.blocks {
            all.extend(blk.pre.iter().chain(&blk.branch));
            if let Some((_, steps)) = &blk.shortcut {
                all.extend(steps.iter());
            }
        }
        for step in all {
            if let Step::Unit(u, _) = step {
                add(&u.conv)?;
            }
        }
        let convs = convs
            .into_iter()
            .map(|c| {
                c.ok_or_else(|| {
                    TchError::Kind("internal: a convolution of the plan has no weights".into())
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LayoutWeights { convs })
    }

    fn run(&self, v: Variant, lw: &LayoutWeights, xs: &Tensor) -> Result<Tensor, TchError> {
        let p = &self.plan;
        let layout = v.layout;
        let mut x = match layout {
            MemoryFormat::Mkldnn => xs.f_contiguous()?.f_to_mkldnn(Kind::Float)?,
            MemoryFormat::ChannelsLast => channels_last(xs)?,
            _ => xs.shallow_clone(),
        };
        x = self.steps(v, lw, &p.stem, &x)?;
        for blk in &p.blocks {
            x = self.block(v, lw, blk, &x)?;
        }
        if let Some(n) = &p.head_norm {
            x = relu_(self.norm_eval(v, &x, n)?, self.opts.no_grad)?;
        }
        let dense = |t: Tensor| {
            if t.is_mkldnn() {
                t.f_to_dense(None::<Kind>, false)
            } else {
                Ok(t)
            }
        };
        let pooled = match p.head_pool {
            HeadPool::Avg if x.is_mkldnn() => dense(x.f_mkldnn_adaptive_avg_pool2d([1, 1])?)?,
            HeadPool::Avg => x.f_adaptive_avg_pool2d([1, 1])?,
            HeadPool::Max => dense(x)?.f_adaptive_max_pool2d([1, 1])?.0,
            HeadPool::Flatten => dense(x)?,
        };
        pooled.f_flatten(1, -1)?.f_linear(&p.fc_w, Some(&p.fc_b))
    }

    /// Runs `steps` in order.
    fn steps(&self, v: Variant, lw: &LayoutWeights, steps: &[Step], x: &Tensor) -> Result<Tensor, TchError> {
        let mut x = x.shallow_clone();
        for step in steps {
            x = self.step(v, lw, step, &x)?;
        }
        Ok(x)
    }

    fn step(&self, v: Variant, lw: &LayoutWeights, step: &Step, x: &Tensor) -> Result<Tensor, TchError> {
        let in_place = self.opts.no_grad;
        match step {
            Step::Unit(u, relu) => self.unit(v, lw, u, x, *relu, None),
            Step::Norm(n, relu) => {
                let y = self.norm_eval(v, x, n)?;
                if *relu {
                    relu_(y, in_place)
                } else {
                    Ok(y)
                }
            }
            Step::Relu => relu_(x.f_relu()?, false),
            Step::Pool(p) => pool2d(v.layout, x, p),
            Step::Layer(l) => dense_op(x, |d| {
                // Eval mode: drop path is the identity; the others as the runtime runs them.
                let weights_kind = match l {
                    RLayer::Attention(_) => Kind::Float,
                    _ => d.kind(),
                };
                let d = if d.kind() == weights_kind || matches!(l, RLayer::Blur(_) | RLayer::Subsample { .. }) {
                    d.shallow_clone()
                } else {
                    d.f_to_kind(weights_kind)?
                };
                let y = match l {
                    RLayer::Blur(b) => b.forward(&d)?,
                    RLayer::Attention(a) => a.forward(&d, &mut |_, _| {})?,
                    RLayer::Subsample { stride, extra_channels, .. } => zero_pad_shortcut(&d, *stride, *extra_channels)?,
                    RLayer::DropPath { .. } => d.shallow_clone(),
                    RLayer::Conv(_) | RLayer::Norm(..) | RLayer::Relu(_) | RLayer::Pool(_) => {
                        return Err(TchError::Kind("internal: a planned layer reached the generic step".into()))
                    }
                };
                if y.kind() == x.kind() {
                    Ok(y)
                } else {
                    y.f_to_kind(x.kind())
                }
            }),
        }
    }

    /// An eval-mode norm layer (dense for GroupNorm under the MKLDNN layout).
    fn norm_eval(&self, _v: Variant, x: &Tensor, n: &PNorm) -> Result<Tensor, TchError> {
        match n {
            PNorm::Batch(bn) => bn_eval(x, bn),
            PNorm::Group { w, b, groups, eps } => dense_op(x, |d| {
                let y = d.f_group_norm(*groups, Some(&w.f_to_kind(d.kind())?), Some(&b.f_to_kind(d.kind())?), *eps, true)?;
                Ok(y)
            }),
        }
    }

    /// One block. The last convolution of the branch takes the shortcut's sum (and the
    /// ReLU after it) when it ends the branch: with fused kernels the sum may be written
    /// into the shortcut tensor (the block's input for an identity shortcut), which
    /// nothing reads afterwards.
    fn block(&self, v: Variant, lw: &LayoutWeights, blk: &PBlock, x: &Tensor) -> Result<Tensor, TchError> {
        let in_place = self.opts.no_grad;
        let pre = self.steps(v, lw, &blk.pre, x)?;
        let shortcut = match &blk.shortcut {
            None => None,
            Some((from_pre, steps)) => Some(self.steps(v, lw, steps, if *from_pre { &pre } else { x })?),
        };
        let n = blk.branch.len();
        if let Some(Step::Unit(last, false)) = blk.branch.last() {
            let out = self.steps(v, lw, &blk.branch[..n - 1], &pre)?;
            return self.unit(v, lw, last, &out, blk.relu_after_add, shortcut.as_ref());
        }
        let mut out = self.steps(v, lw, &blk.branch, &pre)?;
        if let Some(s) = &shortcut {
            out = add_(out, s, in_place)?;
        }
        if blk.relu_after_add {
            out = relu_(out, in_place)?;
        }
        Ok(out)
    }

    /// conv (+ unfolded BN) (+ `add`) (+ ReLU), with fused kernels where they apply.
    /// With oneDNN's fused kernel the sum is written into `add`'s tensor.
    fn unit(
        &self,
        v: Variant,
        lw: &LayoutWeights,
        u: &Unit,
        x: &Tensor,
        relu: bool,
        add: Option<&Tensor>,
    ) -> Result<Tensor, TchError> {
        let c = &u.conv;
        let (w, b) = &lw.convs[c.id];
        let (s, p) = ([c.stride, c.stride], [c.padding, c.padding]);
        let in_place = self.opts.no_grad;
        let cuda = matches!(self.device, Device::Cuda(_));
        if v.fused && !cuda {
            if let Some(ops) = &self.onednn {
                let Some(bn) = &u.bn else {
                    return match add {
                        Some(z) => {
                            ops.conv_add(z, x, w, b.as_ref(), c.padding, c.stride, c.groups, relu)
                        }
                        None => ops.conv(x, w, b.as_ref(), c.padding, c.stride, c.groups, relu),
                    };
                };
                // An unfolded BN sits between the convolution and the rest.
                let mut y = bn_eval(
                    &ops.conv(x, w, b.as_ref(), c.padding, c.stride, c.groups, false)?,
                    bn,
                )?;
                if let Some(z) = add {
                    y = add_(y, z, in_place)?;
                }
                return if relu { relu_(y, in_place) } else { Ok(y) };
            }
        }
        if v.fused && cuda && u.bn.is_none() && relu && self.fused_ok.load(Ordering::Relaxed) {
            let fused = match add {
                Some(z) => {
                    x.f_cudnn_convolution_add_relu(w, z, 1.0, b.as_ref(), s, p, [1, 1], c.groups)
                }
                None => x.f_cudnn_convolution_relu(w, b.as_ref(), s, p, [1, 1], c.groups),
            };
            match fused {
                Ok(y) => return Ok(y),
                // cuDNN's fused kernels do not take every dtype/shape: use separate ops from now on.
                Err(_) => self.fused_ok.store(false, Ordering::Relaxed),
            }
        }
        let mut y = if v.layout == MemoryFormat::Mkldnn {
            x.f_mkldnn_convolution(w, b.as_ref(), p, s, [1, 1], c.groups)?
        } else {
            x.f_conv2d(w, b.as_ref(), s, p, [1, 1], c.groups)?
        };
        if let Some(bn) = &u.bn {
            y = bn_eval(&y, bn)?;
        }
        if let Some(z) = add {
            y = add_(y, z, in_place)?;
        }
        if relu {
            y = relu_(y, in_place)?;
        }
        Ok(y)
    }
}

fn bn_eval(x: &Tensor, bn: &PBn) -> Result<Tensor, TchError> {
    x.f_batch_norm(
        Some(&bn.w),
        Some(&bn.b),
        Some(&bn.mean),
        Some(&bn.var),
        false,
        0.0,
        bn.eps,
        true,
    )
}

/// ReLU, in place when autograd is off (the input is always a fresh intermediate).
fn relu_(mut x: Tensor, in_place: bool) -> Result<Tensor, TchError> {
    if in_place {
        let _ = x.f_relu_()?;
        Ok(x)
    } else {
        x.f_relu()
    }
}

fn add_(mut x: Tensor, y: &Tensor, in_place: bool) -> Result<Tensor, TchError> {
    if in_place {
        let _ = x.f_add_(y)?;
        Ok(x)
    } else {
        x.f_add(y)
    }
}

/// `f` on a dense tensor: an MKLDNN tensor is converted for it and back.
fn dense_op(x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor, TchError>) -> Result<Tensor, TchError> {
    if x.is_mkldnn() {
        f(&x.f_to_dense(None::<Kind>, false)?)?.f_contiguous()?.f_to_mkldnn(Kind::Float)
    } else {
        f(x)
    }
}

/// The same values with NHWC strides (`x.contiguous(memory_format=torch.channels_last)`).
/// `x` with NHWC strides (the same shape), or `x` itself unless it is 4-D.
pub(crate) fn channels_last(x: &Tensor) -> Result<Tensor, TchError> {
    if x.dim() != 4 {
        return Ok(x.shallow_clone());
    }
    x.f_permute([0, 2, 3, 1])?
        .f_contiguous()?
        .f_permute([0, 3, 1, 2])
}

fn pool2d(layout: MemoryFormat, x: &Tensor, pool: &PoolLayer) -> Result<Tensor, TchError> {
    let q = pool.pool;
    let (k, s, p) = (q.kernel as i64, q.stride as i64, q.padding as i64);
    match (q.kind, layout) {
        (PoolKind::Max, MemoryFormat::Mkldnn) => {
            x.f_mkldnn_max_pool2d([k, k], [s, s], [p, p], [1, 1], q.ceil_mode)
        }
        // oneDNN divides a ceil-mode window that hangs over the edge by the whole kernel
        // area, PyTorch by the part inside: pool densely (a stem average pool is rare).
        (PoolKind::Avg, MemoryFormat::Mkldnn) => {
            let dense = x.f_to_dense(None::<Kind>, false)?;
            super::model::pool_forward(&dense, pool)?
                .f_contiguous()?
                .f_to_mkldnn(Kind::Float)
        }
        _ => super::model::pool_forward(x, pool),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{SourceFile, Syntax};
    use tch::nn;

    fn resnet(spec: &str) -> (nn::VarStore, ResNet) {
        let path = format!("{}/specs/{spec}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("shipped spec");
        let c = crate::compile(&SourceFile::new(&path, text, Syntax::Yaml)).expect("compiles");
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), &c).expect("network");
        (vs, net)
    }

    fn diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// Weights reordered for the first call's shape still serve other batch sizes and
    /// image sizes; every variant agrees with the plain forward pass.
    #[test]
    fn variants_agree_across_shapes() {
        let (_vs, net) = resnet("resnet18.yaml");
        let opts = (Kind::Float, Device::Cpu);
        let auto = InferenceModel::new(&net, InferenceOptions::default()).unwrap();
        let formats = [
            MemoryFormat::Contiguous,
            MemoryFormat::ChannelsLast,
            MemoryFormat::Mkldnn,
        ];
        let fixed: Vec<InferenceModel> = formats
            .iter()
            .map(|&f| {
                InferenceModel::new(
                    &net,
                    InferenceOptions {
                        memory_format: f,
                        ..Default::default()
                    },
                )
                .unwrap()
            })
            .collect();
        for (n, side) in [(2, 40), (3, 32), (1, 40)] {
            let x = Tensor::randn([n, 3, side, side], opts);
            let plain = net.f_logits_t(&x, false).unwrap();
            assert!(diff(&auto.logits(&x).unwrap(), &plain) < 1e-4);
            for (f, m) in formats.iter().zip(&fixed) {
                let d = diff(&m.logits(&x).unwrap(), &plain);
                assert!(d < 1e-4, "{f} batch {n} side {side}: {d}");
            }
        }
        let report = auto.report();
        assert!(report.layout.is_some());
        assert_eq!(report.folded, 20);
        assert_eq!(report.candidates.len(), 3, "{report:?}");
    }

    #[test]
    fn half_types_need_cuda() {
        let (_vs, net) = resnet("resnet18.yaml");
        let e = InferenceModel::new(
            &net,
            InferenceOptions {
                dtype: DType::BF16,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, RuntimeError::DtypeOnDevice { .. }), "{e}");
    }
}
