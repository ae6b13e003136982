//! The `cuda-graphs` speed-up's step: the training step over fixed tensors (the batch,
//! its labels, the learning rate and the running sums of loss and correct predictions),
//! so that on CUDA it can be captured once as a graph and replayed for every full-size
//! batch ([`crate::runtime::graph`]).
//!
//! Each step copies the batch and the learning rate into those tensors, then:
//! - on CUDA: the first [`EAGER_STEPS`] steps run eagerly on the graph's side stream
//!   (cuDNN and cuBLAS pick their kernels and make their workspaces, gradients and
//!   momentum buffers exist); the next one is captured and then replayed, and every later
//!   one is a replay;
//! - on the CPU: the step runs eagerly every time. The same tensors and operations as the
//!   captured step, which is how the tests check that the graph computes what the plain
//!   step does.
//!
//! Gradients are zeroed in place (they keep their storage), so the eager steps of the
//! epochs' smaller last batches and the replays update the same tensors.

use super::optim::Sgd;
use super::TrainError;
use crate::runtime::graph::CudaGraph;
use tch::{Device, Kind, Tensor};

/// The forward pass and the mean loss of a batch and its labels: `(logits, loss)`.
pub type ForwardLoss<'a> = dyn Fn(&Tensor, &Tensor) -> Result<(Tensor, Tensor), TrainError> + 'a;

/// Eager steps before the capture.
pub const EAGER_STEPS: usize = 3;

/// The fixed tensors of the step, and its graph once captured.
pub struct FixedStep {
    /// Batch, labels and learning rate, refilled before every step; made from the first
    /// batch (its shape and memory order).
    inputs: Option<(Tensor, Tensor)>,
    lr: Tensor,
    /// Loss times batch size (float64) and correct predictions (int64), summed on the
    /// device since the last [`FixedStep::drain`].
    loss_sum: Tensor,
    correct: Tensor,
    graph: Option<CudaGraph>,
    /// Steps taken: the first [`EAGER_STEPS`] run eagerly, the next is captured.
    steps: usize,
    /// Whether autocast's weight cache was switched off (and is switched on again on drop).
    autocast_cache_off: bool,
}

impl FixedStep {
    /// The step's tensors on `device`; on CUDA also its (empty) graph. `bf16`: the step
    /// runs under autocast, whose weight cache is then switched off (a copy cached outside
    /// the capture would be read from memory the graph does not own).
    pub fn new(device: Device, bf16: bool) -> Result<FixedStep, TrainError> {
        let torch = TrainError::torch;
        let graph = if device.is_cuda() {
            Some(CudaGraph::new(device).map_err(torch("preparing a CUDA graph"))?)
        } else {
            None
        };
        if bf16 {
            crate::runtime::autocast::set_cache(false);
        }
        let zeros = |kind| Tensor::f_zeros([], (kind, device));
        Ok(FixedStep {
            inputs: None,
            // CUDA's fused SGD reads a float32 rate (which is how float32 weights use it
            // anyway); the CPU's reads it as a double.
            lr: zeros(if device.is_cuda() {
                Kind::Float
            } else {
                Kind::Double
            })
            .map_err(torch("allocating the step's tensors"))?,
            loss_sum: zeros(Kind::Double).map_err(torch("allocating the step's tensors"))?,
            correct: zeros(Kind::Int64).map_err(torch("allocating the step's tensors"))?,
            graph,
            steps: 0,
            autocast_cache_off: bf16,
        })
    }

    /// Whether a batch of `images` can go through the fixed step: the first batch fixes
    /// the shape, and later ones of another shape (an epoch's smaller last batch) cannot.
    pub fn fits(&self, images: &Tensor) -> bool {
        match &self.inputs {
            None => true,
            Some((x, _)) => x.size() == images.size(),
        }
    }

    /// One training step on `images` and `labels` with learning rate `lr`.
    /// `forward_loss(images, labels)` gives the logits and the mean loss.
    pub fn step(
        &mut self,
        images: &Tensor,
        labels: &Tensor,
        lr: f64,
        opt: &mut Sgd,
        forward_loss: &ForwardLoss,
    ) -> Result<(), TrainError> {
        let torch = TrainError::torch;
        let (mut x, mut y) = match &self.inputs {
            Some((x, y)) => (x.shallow_clone(), y.shallow_clone()),
            None => {
                let x = images
                    .f_empty_like()
                    .map_err(torch("allocating the step's batch"))?;
                let y = labels
                    .f_empty_like()
                    .map_err(torch("allocating the step's labels"))?;
                self.inputs = Some((x.shallow_clone(), y.shallow_clone()));
                (x, y)
            }
        };
        x.f_copy_(images).map_err(torch("copying a batch"))?;
        y.f_copy_(labels).map_err(torch("copying the labels"))?;
        let mut lr_t = self.lr.shallow_clone();
        let _ = lr_t
            .f_fill_(lr)
            .map_err(torch("setting the learning rate"))?;
        let (mut loss_sum, mut correct) =
            (self.loss_sum.shallow_clone(), self.correct.shallow_clone());
        let n = labels.size()[0] as usize;
        let mut body = || -> Result<(), TrainError> {
            let (logits, loss) = forward_loss(&x, &y)?;
            opt.zero_grad();
            loss.f_backward().map_err(torch("the backward pass"))?;
            opt.step_lr_tensor(&lr_t)
                .map_err(torch("the optimizer step"))?;
            let (l, c) =
                super::step_sums(&loss, &logits, &y, n).map_err(torch("summing the loss"))?;
            let _ = loss_sum.f_add_(&l).map_err(torch("summing the loss"))?;
            let _ = correct.f_add_(&c).map_err(torch("summing the accuracy"))?;
            Ok(())
        };
        let Some(graph) = self.graph.as_mut() else {
            self.steps += 1;
            return body();
        };
        if self.steps < EAGER_STEPS {
            graph
                .on_side_stream(body)
                .map_err(torch("switching to the CUDA graph's stream"))??;
        } else {
            if self.steps == EAGER_STEPS {
                // A failed capture ends the run, so this step is captured only once.
                graph
                    .capture(body)
                    .map_err(torch("capturing the step as a CUDA graph"))??;
            }
            graph.replay().map_err(torch("replaying the CUDA graph"))?;
        }
        self.steps += 1;
        Ok(())
    }

    /// Adds the sums held on the device to the host's and zeroes them.
    pub fn drain(&mut self, loss_sum: &mut f64, correct: &mut i64) -> Result<(), TrainError> {
        let torch = TrainError::torch;
        super::add_sums(&self.loss_sum, &self.correct, loss_sum, correct)?;
        let _ = self
            .loss_sum
            .f_zero_()
            .map_err(torch("resetting the sums"))?;
        let _ = self
            .correct
            .f_zero_()
            .map_err(torch("resetting the sums"))?;
        Ok(())
    }
}

impl Drop for FixedStep {
    fn drop(&mut self) {
        if self.autocast_cache_off {
            crate::runtime::autocast::set_cache(true);
        }
    }
}
