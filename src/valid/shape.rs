//! Output-size arithmetic of convolution and pooling, exactly as PyTorch computes it.
//!
//! Every function is total over `u64`: no input makes it overflow or panic.

/// `floor((size + 2*padding - kernel) / stride) + 1`, PyTorch's `Conv2d` (dilation 1).
///
/// `None` when the output would be smaller than 1 (PyTorch: "Kernel size can't be
/// greater than actual input size"), or for a zero stride.
pub fn conv_out(size: u64, kernel: u64, stride: u64, padding: u64) -> Option<u64> {
    let padded = padding.checked_mul(2).and_then(|p| size.checked_add(p))?;
    if stride == 0 || padded < kernel {
        return None;
    }
    ((padded - kernel) / stride).checked_add(1)
}

/// Why PyTorch refuses a `MaxPool2d` or `AvgPool2d` (both run the same checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolError {
    /// "kernel size should be greater than zero" / "stride should be greater than zero".
    ZeroKernelOrStride,
    /// "pad should be at most half of effective kernel size": `padding > kernel / 2`.
    PaddingOverHalfKernel,
    /// "Output size is too small": fewer than one window fits.
    OutputTooSmall,
}

/// PyTorch's pooling output size, `pooling_output_shape` in ATen's `Pool.h` (dilation 1):
///
/// ```text
/// out = floor((size + 2*padding - kernel + (ceil_mode ? stride - 1 : 0)) / stride) + 1
/// if ceil_mode and (out - 1) * stride >= size + padding: out -= 1
/// ```
///
/// With `ceil_mode` a last, partial window counts as long as it starts inside the input
/// or the left padding (never in the right padding). The numerator may be negative: a
/// 3x3/2 ceil-mode window on a 2x2 map gives 1, as in PyTorch.
///
/// Returns the size whatever the padding (so the checker can follow the shape past a
/// padding error); `None` when it is below 1 or for a zero kernel or stride. For
/// PyTorch's full verdict use [`pool_output_size`].
pub fn pool_out(size: u64, kernel: u64, stride: u64, padding: u64, ceil_mode: bool) -> Option<u64> {
    if kernel == 0 || stride == 0 {
        return None;
    }
    // i128 holds every intermediate: operands are below 2^64, so the numerator is within
    // (-2^64, 2^66) and (out - 1) * stride stays within a stride of it.
    let (size, kernel, stride, padding) = (
        i128::from(size),
        i128::from(kernel),
        i128::from(stride),
        i128::from(padding),
    );
    let rounding = if ceil_mode { stride - 1 } else { 0 };
    // div_euclid by a positive divisor rounds toward negative infinity (ATen's div_rtn).
    let mut out = (size + 2 * padding - (kernel - 1) - 1 + rounding).div_euclid(stride) + 1;
    if ceil_mode && (out - 1) * stride >= size + padding {
        out -= 1;
    }
    u64::try_from(out).ok().filter(|&o| o >= 1)
}

/// What PyTorch does with one spatial dimension of a pooling layer: the output size, or
/// the error it raises, checked in PyTorch's order (kernel and stride, padding, output).
///
/// ```
/// use resnetc::valid::shape::{pool_output_size, PoolError};
/// // torchvision's stem pooling on a 112x112 map.
/// assert_eq!(pool_output_size(112, 3, 2, 1, false), Ok(56));
/// // ceil_mode keeps a partial window that starts inside the input.
/// assert_eq!(pool_output_size(2, 3, 2, 0, true), Ok(1));
/// assert_eq!(pool_output_size(2, 3, 2, 0, false), Err(PoolError::OutputTooSmall));
/// assert_eq!(pool_output_size(8, 3, 2, 2, false), Err(PoolError::PaddingOverHalfKernel));
/// ```
pub fn pool_output_size(
    size: u64,
    kernel: u64,
    stride: u64,
    padding: u64,
    ceil_mode: bool,
) -> Result<u64, PoolError> {
    if kernel == 0 || stride == 0 {
        return Err(PoolError::ZeroKernelOrStride);
    }
    if padding > kernel / 2 {
        return Err(PoolError::PaddingOverHalfKernel);
    }
    pool_out(size, kernel, stride, padding, ceil_mode).ok_or(PoolError::OutputTooSmall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_sizes_match_pytorch() {
        assert_eq!(conv_out(224, 7, 2, 3), Some(112));
        assert_eq!(conv_out(56, 3, 2, 1), Some(28));
        assert_eq!(conv_out(56, 1, 2, 0), Some(28));
        assert_eq!(conv_out(7, 1, 2, 0), Some(4));
        assert_eq!(conv_out(32, 7, 2, 0), Some(13)); // Keras 'valid' stem
        assert_eq!(conv_out(2, 3, 1, 0), None);
        assert_eq!(conv_out(1, 3, 1, 1), Some(1));
        assert_eq!(conv_out(3, 1, 2, 0), Some(2));
    }

    #[test]
    fn pool_sizes_match_pytorch() {
        assert_eq!(pool_out(112, 3, 2, 1, false), Some(56));
        assert_eq!(pool_out(13, 3, 2, 0, false), Some(6));
        // Caffe rounds up: 112 -> 56 with ceil and no padding (floor would give 55).
        assert_eq!(pool_out(112, 3, 2, 0, false), Some(55));
        assert_eq!(pool_out(112, 3, 2, 0, true), Some(56));
        // ceil_mode may not start a window in the padding: 5 + pad 1, k2 s2 -> 3 not 4.
        assert_eq!(pool_out(5, 2, 2, 1, true), Some(3));
        assert_eq!(pool_out(1, 3, 2, 0, false), None);
    }

    /// `MaxPool2d(3, 2, 0, ceil_mode=True)` on a 2x2 map is 1x1 in PyTorch 2.11: the
    /// window starts at 0, inside the input, although it overhangs by one.
    #[test]
    fn ceil_mode_keeps_a_window_larger_than_the_input() {
        assert_eq!(pool_output_size(2, 3, 2, 0, true), Ok(1));
        assert_eq!(pool_output_size(1, 2, 2, 0, true), Ok(1));
        assert_eq!(
            pool_output_size(1, 2, 2, 0, false),
            Err(PoolError::OutputTooSmall)
        );
        // The rounding is at most stride - 1: a 3x3/2 window still needs 2 pixels.
        assert_eq!(
            pool_output_size(1, 3, 2, 0, true),
            Err(PoolError::OutputTooSmall)
        );
        assert_eq!(
            pool_output_size(2, 3, 2, 0, false),
            Err(PoolError::OutputTooSmall)
        );
        // The window may not start in the right padding: 2 + pad 1, k2 s3 -> 1 not 2.
        assert_eq!(pool_output_size(2, 2, 3, 1, true), Ok(1));
    }

    #[test]
    fn pool_rejects_what_pytorch_rejects() {
        assert_eq!(
            pool_output_size(9, 0, 1, 0, false),
            Err(PoolError::ZeroKernelOrStride)
        );
        assert_eq!(
            pool_output_size(9, 2, 0, 0, true),
            Err(PoolError::ZeroKernelOrStride)
        );
        assert_eq!(
            pool_output_size(9, 1, 1, 1, false),
            Err(PoolError::PaddingOverHalfKernel)
        );
        assert_eq!(pool_output_size(9, 4, 1, 2, false), Ok(10));
        assert_eq!(
            pool_output_size(9, 4, 1, 3, false),
            Err(PoolError::PaddingOverHalfKernel)
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let big = [
            0,
            1,
            2,
            3,
            63,
            64,
            65,
            u64::from(u32::MAX),
            u64::MAX / 2,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &size in &big {
            for &k in &big {
                for &s in &big {
                    for &p in &big {
                        let _ = conv_out(size, k, s, p);
                        for ceil in [false, true] {
                            if let Some(out) = pool_out(size, k, s, p, ceil) {
                                // One output per stride of the padded input, at most.
                                assert!(
                                    u128::from(out) <= u128::from(size) + 2 * u128::from(p) + 1
                                );
                            }
                            let _ = pool_output_size(size, k, s, p, ceil);
                        }
                    }
                }
            }
        }
    }
}
