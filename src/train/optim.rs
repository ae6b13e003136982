//! Stochastic gradient descent with momentum and weight decay, PyTorch's `torch.optim.SGD`
//! (dampening 0, not Nesterov), over a VarStore's trainable variables.
//!
//! The momentum buffers are plain named tensors held here rather than inside libtorch's
//! optimizer, so a checkpoint stores them exactly and a resumed run continues with the
//! very same state.
//!
//! ```text
//! g   = grad + weight_decay * p
//! buf = momentum * buf + g        (buf starts at 0, so the first step has buf = g)
//! p   = p - lr * buf              (p - lr * g without momentum)
//! ```
//!
//! Three kernels compute it ([`SgdKernel`]): a loop of separate operations per tensor,
//! libtorch's multi-tensor `_foreach_*` operations (one call per operation for all
//! tensors, what `torch.optim.SGD(foreach=True)` runs), or its fused `_fused_sgd_` (one
//! pass over each tensor, `torch.optim.SGD(fused=True)`). tch has no bindings for the last
//! two; they are called through a TorchScript module ([`crate::runtime::script`]). They
//! agree to rounding (the fused kernel may contract `a * b + c`).

use super::checkpoint::StoredTensors;
use tch::nn::VarStore;
use tch::{CModule, IValue, TchError, Tensor};

/// How the update is computed; the same rule in each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SgdKernel {
    /// Separate operations per tensor.
    Loop,
    /// `_foreach_*`: each operation once over every tensor.
    Foreach,
    /// `_fused_sgd_`: one pass per tensor.
    #[default]
    Fused,
}

/// The TorchScript source of the multi-tensor kernels (`code/__torch__.py`).
const SOURCE: &str = r#"class SgdOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.SgdOps,
    x: Tensor) -> Tensor:
    return x
  def foreach_sgd(self: __torch__.SgdOps,
    params: List[Tensor],
    grads: List[Tensor],
    bufs: List[Tensor],
    weight_decay: float,
    momentum: float,
    lr: float) -> NoneType:
    if torch.ne(weight_decay, 0.):
      torch._foreach_add_(grads, params, alpha=weight_decay)
    else:
      pass
    if torch.ne(momentum, 0.):
      torch._foreach_mul_(bufs, momentum)
      torch._foreach_add_(bufs, grads)
      torch._foreach_add_(params, bufs, alpha=torch.neg(lr))
    else:
      torch._foreach_add_(params, grads, alpha=torch.neg(lr))
    return None
  def fused_sgd(self: __torch__.SgdOps,
    params: List[Tensor],
    grads: List[Tensor],
    bufs: List[Tensor],
    weight_decay: float,
    momentum: float,
    lr: float) -> NoneType:
    torch._fused_sgd_(params, grads, bufs, weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=0., nesterov=False, maximize=False, is_first_step=False)
    return None
  def fused_sgd_tensor_lr(self: __torch__.SgdOps,
    params: List[Tensor],
    grads: List[Tensor],
    bufs: List[Tensor],
    weight_decay: float,
    momentum: float,
    lr: Tensor) -> NoneType:
    torch._fused_sgd_(params, grads, bufs, weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=0., nesterov=False, maximize=False, is_first_step=False)
    return None
"#;

/// Prefix of the momentum buffers' names in a checkpoint.
pub const MOMENTUM_PREFIX: &str = "momentum.";

/// SGD over the trainable variables of a VarStore.
pub struct Sgd {
    /// Momentum factor (0: plain SGD, no buffers).
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Trainable variables in name order, each with its momentum buffer.
    params: Vec<(String, Tensor, Option<Tensor>)>,
    /// The kernel in use, and the TorchScript module for the multi-tensor ones.
    kernel: SgdKernel,
    ops: Option<CModule>,
}

impl Sgd {
    /// An optimizer for every variable of `vs` that requires a gradient, with the
    /// per-tensor kernel ([`Sgd::with_kernel`] picks another).
    pub fn new(vs: &VarStore, momentum: f64, weight_decay: f64) -> Result<Sgd, TchError> {
        Sgd::with_kernel(vs, momentum, weight_decay, SgdKernel::Loop)
    }

    /// As [`Sgd::new`], updating with `kernel`; `Err` if libtorch lacks its operators.
    pub fn with_kernel(
        vs: &VarStore,
        momentum: f64,
        weight_decay: f64,
        kernel: SgdKernel,
    ) -> Result<Sgd, TchError> {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let params = vars
            .into_iter()
            .map(|(name, t)| {
                let buf = if momentum != 0.0 {
                    Some(t.f_zeros_like()?.f_detach()?)
                } else {
                    None
                };
                Ok((name, t, buf))
            })
            .collect::<Result<_, TchError>>()?;
        let ops = match kernel {
            SgdKernel::Loop => None,
            SgdKernel::Foreach | SgdKernel::Fused => {
                Some(crate::runtime::script::load("SgdOps", SOURCE)?)
            }
        };
        Ok(Sgd {
            momentum,
            weight_decay,
            params,
            kernel,
            ops,
        })
    }

    /// Number of trainable tensors.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there is nothing to train.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for (_, p, _) in &mut self.params {
            p.zero_grad();
        }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> SgdKernel {
        self.kernel
    }

    /// One update with learning rate `lr`, from the gradients of the last backward pass.
    /// Tensors without a gradient (not reached by the backward pass) are left alone.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
        if self.ops.is_none() {
            return self.step_loop(lr);
        }
        let method = match self.kernel {
            SgdKernel::Fused => "fused_sgd",
            _ => "foreach_sgd",
        };
        self.step_ops(method, IValue::Double(lr))
    }

    /// As [`Sgd::step`] with the fused kernel, the learning rate read from the 0-d float
    /// tensor `lr` on the parameters' device when the kernel runs: the form a captured
    /// CUDA graph replays with a new rate. `Err` with another kernel.
    pub fn step_lr_tensor(&mut self, lr: &Tensor) -> Result<(), TchError> {
        if self.kernel != SgdKernel::Fused {
            return Err(TchError::Torch(
                "a learning rate held in a tensor needs the fused SGD kernel (fused-sgd)"
                    .to_owned(),
            ));
        }
        self.step_ops("fused_sgd_tensor_lr", IValue::Tensor(lr.shallow_clone()))
    }

    /// One update through the TorchScript method `method`, whose last argument is `lr`.
    fn step_ops(&mut self, method: &str, lr: IValue) -> Result<(), TchError> {
        let Some(ops) = &self.ops else {
            return Err(TchError::Torch(format!(
                "`{method}` needs a multi-tensor SGD kernel"
            )));
        };
        let (mut params, mut grads, mut bufs) = (Vec::new(), Vec::new(), Vec::new());
        for (_, p, buf) in &self.params {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            params.push(p.shallow_clone());
            grads.push(g);
            if let Some(b) = buf {
                bufs.push(b.shallow_clone());
            }
        }
        if params.is_empty() {
            return Ok(());
        }
        let args = [
            IValue::TensorList(params),
            IValue::TensorList(grads),
            IValue::TensorList(bufs),
            IValue::Double(self.weight_decay),
            IValue::Double(self.momentum),
            lr,
        ];
        tch::no_grad(|| ops.method_is(method, &args).map(|_| ()))
    }

    fn step_loop(&mut self, lr: f64) -> Result<(), TchError> {
        let (momentum, weight_decay) = (self.momentum, self.weight_decay);
        tch::no_grad(|| {
            for (_, p, buf) in &mut self.params {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if weight_decay != 0.0 {
                    // The gradient is ours to change: it is zeroed before the next backward pass.
                    let _ = g.f_add_(&p.f_mul_scalar(weight_decay)?)?;
                }
                let d = match buf {
                    Some(buf) => {
                        let _ = buf.f_mul_scalar_(momentum)?;
                        let _ = buf.f_add_(&g)?;
                        buf.shallow_clone()
                    }
                    None => g,
                };
                let _ = p.f_sub_(&d.f_mul_scalar(lr)?)?;
            }
            Ok(())
        })
    }

    /// The momentum buffers, named `momentum.<variable>` (none without momentum).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .filter_map(|(name, _, buf)| {
                buf.as_ref()
                    .map(|b| (format!("{MOMENTUM_PREFIX}{name}"), b.shallow_clone()))
            })
            .collect()
    }

    /// Restores the buffers saved by [`Sgd::state`] from a checkpoint's tensors, each
    /// checked against its buffer's shape and dtype before it is read; names the first
    /// one missing or unfit.
    pub fn load_state(&mut self, saved: &StoredTensors) -> Result<(), String> {
        for (name, _, buf) in &mut self.params {
            let Some(buf) = buf else { continue };
            let key = format!("{MOMENTUM_PREFIX}{name}");
            let src = saved
                .read_like(&key, buf)
                .map_err(|m| format!("momentum buffer: {m}"))?;
            tch::no_grad(|| buf.f_copy_(&src))
                .map_err(|e| format!("momentum buffer `{key}`: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    /// The update rule against PyTorch's documented formula on one scalar.
    #[test]
    fn matches_torch_sgd() {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[1], nn::Init::Const(1.0));
        let mut opt = Sgd::new(&vs, 0.9, 0.1).unwrap();
        let (mut p, mut buf) = (1.0f64, 0.0f64);
        for _ in 0..3 {
            opt.zero_grad();
            // d/dw (3 w^2) = 6 w
            (&w * &w * 3.0).sum(Kind::Float).backward();
            opt.step(0.01).unwrap();
            let g = 6.0 * p + 0.1 * p;
            buf = 0.9 * buf + g;
            p -= 0.01 * buf;
            assert!(
                (w.double_value(&[0]) - p).abs() < 1e-6,
                "{} vs {p}",
                w.double_value(&[0])
            );
        }
        let state = opt.state();
        assert_eq!(state.len(), 1);
        assert_eq!(state[0].0, "momentum.w");
        assert!((state[0].1.double_value(&[0]) - buf).abs() < 1e-5);
    }
}
