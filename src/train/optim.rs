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

use super::checkpoint::StoredTensors;
use tch::nn::VarStore;
use tch::{TchError, Tensor};

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
}

impl Sgd {
    /// An optimizer for every variable of `vs` that requires a gradient.
    pub fn new(vs: &VarStore, momentum: f64, weight_decay: f64) -> Result<Sgd, TchError> {
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
        Ok(Sgd {
            momentum,
            weight_decay,
            params,
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

    /// One update with learning rate `lr`, from the gradients of the last backward pass.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
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
