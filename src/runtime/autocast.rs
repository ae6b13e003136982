//! bfloat16 autocast (`resnetc train --precision bf16`): libtorch's automatic mixed
//! precision, switched on for the CPU or CUDA around a training step's forward pass
//! (`csrc/autocast.cpp`; tch reaches autocast only for CUDA and only in float16).
//! Convolutions and the classifier run in bfloat16; the weights, their gradients, the
//! optimizer and the operators autocast keeps in float32 stay in float32.

use std::ffi::{c_char, c_int, CStr};
use tch::{Device, TchError};

extern "C" {
    fn resnetc_autocast_enter(cuda: c_int) -> *const c_char;
    fn resnetc_autocast_exit(cuda: c_int);
    fn resnetc_autocast_cache(enabled: c_int);
}

/// Whether autocast keeps the bfloat16 copies of weights within a region (libtorch's
/// default: yes). Off for CUDA graphs, whose captured step must make its own copies.
pub fn set_cache(enabled: bool) {
    // SAFETY: a plain call that sets a flag.
    unsafe { resnetc_autocast_cache(c_int::from(enabled)) }
}

/// bfloat16 autocast on `device` for as long as the guard lives (on this thread).
#[derive(Debug)]
pub struct Bf16Autocast {
    cuda: c_int,
}

impl Bf16Autocast {
    /// Switches autocast on for `device`'s type.
    pub fn enter(device: Device) -> Result<Bf16Autocast, TchError> {
        let cuda = c_int::from(device != Device::Cpu);
        // SAFETY: a plain call; the error string stays valid until the next call on this
        // thread and is copied at once.
        let err = unsafe { resnetc_autocast_enter(cuda) };
        if !err.is_null() {
            let msg = unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned();
            return Err(TchError::Torch(msg));
        }
        Ok(Bf16Autocast { cuda })
    }
}

impl Drop for Bf16Autocast {
    fn drop(&mut self) {
        // SAFETY: a plain call that catches its own exceptions.
        unsafe { resnetc_autocast_exit(self.cuda) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// Inside the guard a convolution computes in bfloat16 from float32 operands; outside
    /// it, in float32 again.
    #[test]
    fn convolutions_run_in_bf16_inside_only() {
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu));
        let conv = |x: &Tensor| x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1);
        let y32 = conv(&x);
        let y16 = {
            let _a = Bf16Autocast::enter(Device::Cpu).unwrap();
            conv(&x)
        };
        assert_eq!(y16.kind(), Kind::BFloat16);
        assert_eq!(conv(&x).kind(), Kind::Float);
        let rel = f64::try_from((y16.to_kind(Kind::Float) - &y32).abs().max()).unwrap()
            / f64::try_from(y32.abs().max()).unwrap();
        assert!(rel > 0.0 && rel < 0.05, "bfloat16 result off by {rel}");
    }
}
