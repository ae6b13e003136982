//! Speed-ups of the training step, each switchable (`resnetc train --speedups LIST`) so that
//! its gain can be measured alone (`scripts/bench_train.py --config`) and a run can be
//! checked against one without it: they change how the step is computed, not what.
//!
//! - `channels-last`: convolution weights (and so their gradients and momentum buffers)
//!   and every batch in NHWC memory order, oneDNN's native order on the CPU, so
//!   convolutions skip reordering to and from NCHW in both passes. Checkpoints and
//!   weights are written in the usual NCHW order.
//! - `fused-sgd` / `foreach-sgd`: the update as libtorch's fused or multi-tensor kernel
//!   ([`super::optim::SgdKernel`]) instead of separate operations per tensor.
//! - `fused-bn`: batch norm with the residual addition and ReLU after it as one CPU
//!   operator with its own backward pass ([`crate::runtime::ResNet::set_train_fused`]),
//!   two passes over the activations each way instead of up to seven; libtorch's
//!   operators where it is not available (CUDA, half precision, a CPU without AVX2).
//! - `in-place`: ReLU and the residual addition overwrite tensors of the same pass where
//!   autograd allows ([`crate::runtime::ResNet::set_train_in_place`]).
//! - `keep-memory`: glibc's malloc keeps freed blocks of up to 32 MiB (activations and
//!   gradients) for the next step instead of handing them back to the kernel, whose fresh
//!   pages would each fault in again ([`keep_freed_memory`]). Process-wide; the resident
//!   size stays at the step's peak.
//! - `device-metrics`: the loss and the count of correct predictions are summed on the
//!   device and read at progress updates (every few steps), not after every step; on a
//!   GPU this removes a host synchronization per step.
//! - `cuda-graphs`: the step (forward, loss, backward, update, metric sums) captured once as a
//!   CUDA graph after three eager steps, then replayed for every full-size batch from
//!   fixed input tensors ([`crate::runtime::graph`]); a smaller batch (the epoch's last)
//!   runs eagerly. It needs `fused-sgd` (the learning rate is read from a tensor) and
//!   `device-metrics` (the sums stay on the device). On the CPU the same fixed-tensor
//!   step runs without capture: that is how the tests check it computes what the plain
//!   step does. Named only: not part of `all` until it is measured on a GPU.

use super::optim::SgdKernel;
use tch::{Device, TchError};

/// Which speed-ups a training run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speedups {
    /// Convolution weights and batches in channels-last order.
    pub channels_last: bool,
    /// The SGD kernel.
    pub sgd: SgdKernel,
    /// Batch norm (+ addition) (+ ReLU) as one fused operator.
    pub fused_bn: bool,
    /// ReLU and the residual addition written in place.
    pub in_place: bool,
    /// Freed memory kept by malloc for reuse (glibc only).
    pub keep_memory: bool,
    /// Loss and accuracy summed on the device, read at progress updates.
    pub device_metrics: bool,
    /// The fixed-shape step captured as a CUDA graph and replayed.
    pub cuda_graphs: bool,
}

/// The names `--speedups` takes, in the order [`Speedups`]'s `Display` writes them.
pub const NAMES: [&str; 8] = [
    "channels-last",
    "fused-sgd",
    "foreach-sgd",
    "fused-bn",
    "in-place",
    "keep-memory",
    "device-metrics",
    "cuda-graphs",
];

impl Speedups {
    /// Nothing switched on: the plain step.
    pub const NONE: Speedups = Speedups {
        channels_last: false,
        sgd: SgdKernel::Loop,
        fused_bn: false,
        in_place: false,
        keep_memory: false,
        device_metrics: false,
        cuda_graphs: false,
    };

    /// Everything that helps on `device`. On CUDA channels-last is left out: it has not
    /// been measured there (name it to use it); `fused-bn` is CPU-only.
    pub fn all(device: Device) -> Speedups {
        Speedups {
            channels_last: device == Device::Cpu,
            sgd: SgdKernel::Fused,
            fused_bn: device == Device::Cpu,
            in_place: true,
            keep_memory: true,
            device_metrics: true,
            cuda_graphs: false,
        }
    }

    /// Parses `none` or a comma-separated list of [`NAMES`] and `all` (`all,cuda-graphs`
    /// adds to all); `fused-sgd` wins over `foreach-sgd` when both are named.
    pub fn parse(list: &str, device: Device) -> Result<Speedups, String> {
        if matches!(list.trim(), "none" | "") {
            return Ok(Speedups::NONE);
        }
        let mut s = Speedups::NONE;
        for name in list.split(',').map(str::trim) {
            match name {
                "all" => {
                    let all = Speedups::all(device);
                    s = Speedups {
                        channels_last: s.channels_last || all.channels_last,
                        sgd: all.sgd,
                        fused_bn: s.fused_bn || all.fused_bn,
                        in_place: s.in_place || all.in_place,
                        keep_memory: s.keep_memory || all.keep_memory,
                        device_metrics: s.device_metrics || all.device_metrics,
                        cuda_graphs: s.cuda_graphs || all.cuda_graphs,
                    };
                }
                "channels-last" => s.channels_last = true,
                "fused-sgd" => s.sgd = SgdKernel::Fused,
                "foreach-sgd" if s.sgd == SgdKernel::Loop => s.sgd = SgdKernel::Foreach,
                "foreach-sgd" => {}
                "fused-bn" => s.fused_bn = true,
                "in-place" => s.in_place = true,
                "keep-memory" => s.keep_memory = true,
                "device-metrics" => s.device_metrics = true,
                "cuda-graphs" => s.cuda_graphs = true,
                other => {
                    return Err(format!(
                        "unknown speed-up `{other}`: expected none, or a comma-separated list of all, {}",
                        NAMES.join(", ")
                    ))
                }
            }
        }
        Ok(s)
    }

    /// Why this combination cannot run, if it cannot: `cuda-graphs` needs `fused-sgd`
    /// and `device-metrics`.
    pub fn conflict(&self) -> Option<String> {
        if self.cuda_graphs && (self.sgd != SgdKernel::Fused || !self.device_metrics) {
            return Some(
                "the cuda-graphs speed-up needs fused-sgd and device-metrics as well \
                 (e.g. --speedups fused-sgd,device-metrics,in-place,cuda-graphs)"
                    .to_owned(),
            );
        }
        None
    }
}

impl std::fmt::Display for Speedups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = [
            self.channels_last,
            self.sgd == SgdKernel::Fused,
            self.sgd == SgdKernel::Foreach,
            self.fused_bn,
            self.in_place,
            self.keep_memory,
            self.device_metrics,
            self.cuda_graphs,
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .zip(on)
            .filter_map(|(n, on)| on.then_some(*n))
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

pub(crate) use crate::runtime::infer::channels_last;

/// The `keep-memory` speed-up: glibc's malloc stops returning freed memory to the kernel
/// (blocks of up to 32 MiB come from the heap, which is not trimmed), so that a training
/// step reuses the previous step's activation buffers rather than faulting in and zeroing
/// fresh pages. No effect with another C library.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}

/// Puts every 4-D variable of `vs` (the convolution weights) in channels-last order, in
/// place: the model and the optimizer keep referring to the same variables.
pub fn variables_channels_last(vs: &tch::nn::VarStore) -> Result<(), TchError> {
    for (_, mut v) in vs.variables() {
        if v.dim() == 4 {
            let cl = tch::no_grad(|| channels_last(&v.f_detach()?))?;
            v.f_set_data(&cl)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn lists_parse_and_print() {
        let cpu = Device::Cpu;
        assert_eq!(Speedups::parse("none", cpu).unwrap(), Speedups::NONE);
        assert_eq!(
            Speedups::parse("all", cpu).unwrap().to_string(),
            "channels-last,fused-sgd,fused-bn,in-place,keep-memory,device-metrics"
        );
        let s = Speedups::parse("in-place, foreach-sgd", cpu).unwrap();
        assert_eq!(s.to_string(), "foreach-sgd,in-place");
        assert_eq!(
            Speedups::parse("foreach-sgd,fused-sgd", cpu).unwrap().sgd,
            SgdKernel::Fused
        );
        assert_eq!(
            Speedups::parse("fused-sgd,foreach-sgd", cpu).unwrap().sgd,
            SgdKernel::Fused
        );
        let e = Speedups::parse("channels_last", cpu).unwrap_err();
        assert!(
            e.contains("unknown speed-up `channels_last`") && e.contains("channels-last"),
            "{e}"
        );
        assert_eq!(
            Speedups::parse("all,cuda-graphs", Device::Cuda(0))
                .unwrap()
                .to_string(),
            "fused-sgd,in-place,keep-memory,device-metrics,cuda-graphs"
        );
        assert_eq!(Speedups::parse("all", cpu).unwrap().conflict(), None);
        let e = Speedups::parse("cuda-graphs,device-metrics", cpu)
            .unwrap()
            .conflict();
        assert!(e.unwrap().contains("needs fused-sgd and device-metrics"));
        assert!(!Speedups::all(Device::Cuda(0)).channels_last);
        assert!(!Speedups::all(Device::Cuda(0)).fused_bn);
    }

    #[test]
    fn channels_last_keeps_values() {
        let x = Tensor::randn([2, 3, 4, 5], (tch::Kind::Float, Device::Cpu));
        let y = channels_last(&x).unwrap();
        assert_eq!(y.size(), x.size());
        assert_eq!(y.stride(), vec![60, 1, 15, 3]);
        assert_eq!(f64::try_from((&y - &x).abs().max()).unwrap(), 0.0);
    }
}
