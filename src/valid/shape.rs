//! Output-size arithmetic of convolution and pooling, exactly as PyTorch computes it.
//!
//! Each function returns `None` when the output would be smaller than 1, which the
//! checker reports as "spatial size reaches zero".

/// `floor((size + 2*padding - kernel) / stride) + 1`, PyTorch's `Conv2d` (dilation 1).
pub fn conv_out(size: u64, kernel: u64, stride: u64, padding: u64) -> Option<u64> {
    let padded = size.checked_add(2 * padding)?;
    if stride == 0 || padded < kernel {
        return None;
    }
    Some((padded - kernel) / stride + 1)
}

/// PyTorch's pooling output size. With `ceil_mode` it rounds up (Caffe's pooling), but
/// never lets the last window start inside the right padding.
pub fn pool_out(size: u64, kernel: u64, stride: u64, padding: u64, ceil_mode: bool) -> Option<u64> {
    let padded = size.checked_add(2 * padding)?;
    if stride == 0 || padded < kernel {
        return None;
    }
    let span = padded - kernel;
    let mut out = if ceil_mode { span.div_ceil(stride) + 1 } else { span / stride + 1 };
    if ceil_mode && (out - 1) * stride >= size + padding {
        out -= 1;
    }
    (out >= 1).then_some(out)
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
}
