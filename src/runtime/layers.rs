//! The layers with variables (convolution, batch and group norm, channel attention, fully
//! connected) and the blur filter.
//!
//! Each creates its variables under the torchvision name the checker gave it
//! (`layer1.0.conv1` -> `layer1.0.conv1.weight`) and initializes them as torchvision
//! (or Keras/d2l, for `init: xavier_uniform`) would.

use crate::ir::{self, Init};
use crate::valid::{
    AttentionKind, AttentionLayer, BlurLayer, BnLayer, ConvLayer, LinearLayer, NormLayer,
};
use tch::nn::{self, Init as TInit};
use tch::{Kind, TchError, Tensor};

/// `root / "layer1" / "0" / "conv1"` for the dotted name `layer1.0.conv1`.
pub(crate) fn sub_path<'a>(root: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    dotted.split('.').fold(root.clone(), |p, part| p.sub(part))
}

/// A 2-D convolution (square kernel, symmetric padding).
#[derive(Debug)]
pub(crate) struct Conv {
    pub layer: ConvLayer,
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Conv {
    pub fn new(root: &nn::Path, layer: &ConvLayer, init: Init) -> Result<Conv, TchError> {
        let p = sub_path(root, &layer.name);
        let (out, k) = (layer.out_channels as i64, layer.kernel as i64);
        let in_per_group = (layer.in_channels / layer.groups) as i64;
        // PyTorch's fans for a conv weight [out, in/groups, k, k].
        let fan_in = (in_per_group * k * k) as f64;
        let fan_out = (out * k * k) as f64;
        let (w_init, b_init) = match init {
            // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"); a bias keeps
            // nn.Conv2d's default U(+-1/sqrt(fan_in)).
            Init::KaimingNormal => {
                let bound = 1.0 / fan_in.sqrt();
                (
                    TInit::Randn {
                        mean: 0.0,
                        stdev: (2.0 / fan_out).sqrt(),
                    },
                    TInit::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                )
            }
            Init::XavierUniform => {
                let a = (6.0 / (fan_in + fan_out)).sqrt();
                (TInit::Uniform { lo: -a, up: a }, TInit::Const(0.0))
            }
        };
        let weight = p.f_var("weight", &[out, in_per_group, k, k], w_init)?;
        let bias = if layer.bias {
            Some(p.f_var("bias", &[out], b_init)?)
        } else {
            None
        };
        Ok(Conv {
            layer: layer.clone(),
            weight,
            bias,
        })
    }

    pub fn stride(&self) -> i64 {
        self.layer.stride as i64
    }

    pub fn padding(&self) -> i64 {
        self.layer.padding as i64
    }

    pub fn groups(&self) -> i64 {
        self.layer.groups as i64
    }

    pub fn dilation(&self) -> i64 {
        self.layer.dilation as i64
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let (s, p, d) = (self.stride(), self.padding(), self.dilation());
        xs.f_conv2d(
            &self.weight,
            self.bias.as_ref(),
            [s, s],
            [p, p],
            [d, d],
            self.groups(),
        )
    }
}

/// `BatchNorm2d` with running statistics and `num_batches_tracked`.
#[derive(Debug)]
pub(crate) struct BatchNorm {
    pub name: String,
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
    pub eps: f64,
    pub momentum: f64,
}

impl BatchNorm {
    pub fn new(
        root: &nn::Path,
        layer: &BnLayer,
        cfg: ir::BatchNorm,
        zero_weight: bool,
    ) -> Result<BatchNorm, TchError> {
        let p = sub_path(root, &layer.name);
        let c = layer.channels as i64;
        let weight = p.f_var(
            "weight",
            &[c],
            TInit::Const(if zero_weight { 0.0 } else { 1.0 }),
        )?;
        let bias = p.f_var("bias", &[c], TInit::Const(0.0))?;
        let opts = (p.kind(), p.device());
        let running_mean = p.add("running_mean", Tensor::f_zeros([c], opts)?, false);
        let running_var = p.add("running_var", Tensor::f_ones([c], opts)?, false);
        // A 0-d int64 counter, as torchvision stores it; only written, never read here
        // (it matters to PyTorch only when momentum is None).
        let nbt = Tensor::f_zeros([], (Kind::Int64, p.device()))?;
        let num_batches_tracked = p.add("num_batches_tracked", nbt, false);
        Ok(BatchNorm {
            name: layer.name.clone(),
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            eps: cfg.eps,
            momentum: cfg.momentum,
        })
    }

    /// Training mode normalizes with batch statistics and updates the running ones.
    pub fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        if train {
            self.count_batch()?;
        }
        xs.f_batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            self.eps,
            true,
        )
    }

    /// Counts a training batch in `num_batches_tracked`, as PyTorch does.
    pub fn count_batch(&self) -> Result<(), TchError> {
        let mut n = self.num_batches_tracked.shallow_clone();
        tch::no_grad(|| n.f_add_scalar_(1)).map(|_| ())
    }

    /// Eval-mode BN as `x * scale + shift`: `scale = weight / sqrt(var + eps)`,
    /// `shift = bias - mean * scale`, computed in f64 for folding.
    pub fn scale_shift(&self) -> Result<(Tensor, Tensor), TchError> {
        let d = |t: &Tensor| t.f_detach()?.f_to_kind(Kind::Double);
        let scale =
            d(&self.weight)?.f_div(&d(&self.running_var)?.f_add_scalar(self.eps)?.f_sqrt()?)?;
        let shift = d(&self.bias)?.f_sub(&d(&self.running_mean)?.f_mul(&scale)?)?;
        Ok((scale, shift))
    }
}

/// The fully connected layer (always with bias, like `nn.Linear`).
#[derive(Debug)]
pub(crate) struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(root: &nn::Path, layer: &LinearLayer, init: Init) -> Result<Linear, TchError> {
        let p = sub_path(root, &layer.name);
        let (i, o) = (layer.in_features as i64, layer.out_features as i64);
        let (w_init, b_init) = match init {
            // nn.Linear's default: kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)), same bound for the bias.
            Init::KaimingNormal => {
                let bound = 1.0 / (i as f64).sqrt();
                (
                    TInit::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                    TInit::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                )
            }
            Init::XavierUniform => {
                let a = (6.0 / (i + o) as f64).sqrt();
                (TInit::Uniform { lo: -a, up: a }, TInit::Const(0.0))
            }
        };
        let weight = p.f_var("weight", &[o, i], w_init)?;
        let bias = p.f_var("bias", &[o], b_init)?;
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_linear(&self.weight, Some(&self.bias))
    }
}

/// `GroupNorm`: weight and bias, no running statistics.
#[derive(Debug)]
pub(crate) struct GroupNorm {
    pub name: String,
    pub weight: Tensor,
    pub bias: Tensor,
    pub groups: i64,
    pub eps: f64,
}

impl GroupNorm {
    pub fn new(
        root: &nn::Path,
        layer: &NormLayer,
        groups: u64,
        cfg: ir::BatchNorm,
        zero_weight: bool,
    ) -> Result<GroupNorm, TchError> {
        let p = sub_path(root, &layer.name);
        let c = layer.channels as i64;
        let weight = p.f_var(
            "weight",
            &[c],
            TInit::Const(if zero_weight { 0.0 } else { 1.0 }),
        )?;
        let bias = p.f_var("bias", &[c], TInit::Const(0.0))?;
        Ok(GroupNorm {
            name: layer.name.clone(),
            weight,
            bias,
            groups: groups as i64,
            eps: cfg.eps,
        })
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        xs.f_group_norm(
            self.groups,
            Some(&self.weight),
            Some(&self.bias),
            self.eps,
            true,
        )
    }
}

/// A norm layer of either kind.
#[derive(Debug)]
pub(crate) enum Norm {
    Batch(BatchNorm),
    Group(GroupNorm),
}

impl Norm {
    pub fn new(
        root: &nn::Path,
        layer: &NormLayer,
        cfg: ir::BatchNorm,
        zero_weight: bool,
    ) -> Result<Norm, TchError> {
        Ok(match layer.norm {
            ir::Norm::Batch => Norm::Batch(BatchNorm::new(root, layer, cfg, zero_weight)?),
            ir::Norm::Group { groups } => {
                Norm::Group(GroupNorm::new(root, layer, groups, cfg, zero_weight)?)
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Norm::Batch(b) => &b.name,
            Norm::Group(g) => &g.name,
        }
    }

    pub fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor, TchError> {
        match self {
            Norm::Batch(b) => b.forward(xs, train),
            Norm::Group(g) => g.forward(xs),
        }
    }
}

/// timm's `BlurPool2d`: reflect padding, then the fixed binomial filter per channel.
#[derive(Debug)]
pub(crate) struct Blur {
    pub layer: BlurLayer,
    /// `[C, 1, 3, 3]`, not a variable (timm registers it as a non-persistent buffer).
    pub filter: Tensor,
}

impl Blur {
    pub fn new(root: &nn::Path, layer: &BlurLayer) -> Result<Blur, TchError> {
        let opts = (root.kind(), root.device());
        let taps = Tensor::f_from_slice(&[1.0f64, 2.0, 1.0])?
            .f_to_kind(root.kind())?
            .f_to_device(root.device())?;
        let k2 = taps.f_outer(&taps)?.f_div_scalar(16.0)?;
        let _ = opts;
        let filter = k2
            .f_reshape([1, 1, 3, 3])?
            .f_repeat([layer.channels as i64, 1, 1, 1])?;
        Ok(Blur {
            layer: layer.clone(),
            filter,
        })
    }

    pub fn forward(&self, xs: &Tensor) -> Result<Tensor, TchError> {
        let p = self.layer.padding as i64;
        let s = self.layer.stride as i64;
        let padded = xs.f_reflection_pad2d([p, p, p, p])?;
        let filter = if self.filter.kind() == xs.kind() {
            self.filter.shallow_clone()
        } else {
            self.filter.f_to_kind(xs.kind())?
        };
        padded.f_conv2d(
            &filter,
            None::<Tensor>,
            [s, s],
            [0, 0],
            [1, 1],
            self.layer.channels as i64,
        )
    }
}

/// Channel attention: SE (`fc1`, `fc2`) or ECA (`conv`).
#[derive(Debug)]
pub(crate) enum Attention {
    Se {
        name: String,
        fc1: Box<Conv>,
        fc2: Box<Conv>,
    },
    Eca {
        name: String,
        weight: Tensor,
        kernel: i64,
    },
}

impl Attention {
    pub fn new(root: &nn::Path, layer: &AttentionLayer, init: Init) -> Result<Attention, TchError> {
        let c = layer.channels;
        let one = |name: String, i: u64, o: u64| ConvLayer {
            name,
            in_channels: i,
            out_channels: o,
            kernel: 1,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
            input: crate::ir::Shape::new(i, 1, 1),
            output: crate::ir::Shape::new(o, 1, 1),
        };
        Ok(match layer.kind {
            AttentionKind::Se { hidden } => Attention::Se {
                name: layer.name.clone(),
                fc1: Box::new(Conv::new(
                    root,
                    &one(format!("{}.fc1", layer.name), c, hidden),
                    init,
                )?),
                fc2: Box::new(Conv::new(
                    root,
                    &one(format!("{}.fc2", layer.name), hidden, c),
                    init,
                )?),
            },
            AttentionKind::Eca { kernel } => {
                let p = sub_path(root, &format!("{}.conv", layer.name));
                // nn.Conv1d's default: U(+-1/sqrt(fan_in)), fan_in = kernel.
                let bound = 1.0 / (kernel as f64).sqrt();
                let weight = p.f_var(
                    "weight",
                    &[1, 1, kernel as i64],
                    TInit::Uniform {
                        lo: -bound,
                        up: bound,
                    },
                )?;
                Attention::Eca {
                    name: layer.name.clone(),
                    weight,
                    kernel: kernel as i64,
                }
            }
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Attention::Se { name, .. } | Attention::Eca { name, .. } => name,
        }
    }

    /// `x * sigmoid(gate(x))`; `hook` sees the inner layers.
    pub fn forward(
        &self,
        x: &Tensor,
        hook: &mut dyn FnMut(&str, &Tensor),
    ) -> Result<Tensor, TchError> {
        let gate = match self {
            Attention::Se { fc1, fc2, .. } => {
                let s = x.f_mean_dim(&[2i64, 3][..], true, None::<Kind>)?;
                let s = fc1.forward(&s)?;
                hook(&fc1.layer.name, &s);
                let s = fc2.forward(&s.f_relu()?)?;
                hook(&fc2.layer.name, &s);
                s.f_sigmoid()?
            }
            Attention::Eca {
                name,
                weight,
                kernel,
            } => {
                let size = x.size();
                let (n, c) = (size[0], size[1]);
                let s = x
                    .f_mean_dim(&[2i64, 3][..], false, None::<Kind>)?
                    .f_view([n, 1, c])?;
                let s = s.f_conv1d(weight, None::<Tensor>, [1], [(kernel - 1) / 2], [1], 1)?;
                hook(&format!("{name}.conv"), &s.f_view([n, 1, c])?);
                s.f_sigmoid()?.f_view([n, c, 1, 1])?
            }
        };
        x.f_mul(&gate)
    }
}
