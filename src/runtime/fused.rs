//! Training-mode batch norm fused with the residual addition and the ReLU after it, on the
//! CPU: `y = relu?(batch_norm(x) (+ r))` as one libtorch autograd function with its own
//! backward pass (`csrc/bn_act.cpp`, compiled by build.rs against libtorch's headers).
//!
//! libtorch runs the same as separate operators, each a pass over the activations: batch
//! statistics, normalization, the addition and ReLU forward; ReLU's mask and batch norm's
//! two passes backward. The fused function reads the input twice forward (statistics,
//! then everything else) and the gradient, output and input twice backward, writing only
//! its results. It is what `torch.compile` generates for the same pattern, and the
//! `fused-bn` training speed-up ([`crate::train::Speedups`]).
//!
//! Only where [`available`]: a float32 or float64 CPU tensor, or a bfloat16 one with float32
//! parameters (bfloat16 autocast's mix, computed in float32), on an x86-64 CPU with AVX2 and
//! FMA (the loops are compiled for them). Elsewhere the model uses libtorch's operators.

use super::layers::BatchNorm;
#[cfg(resnetc_fused_bn)]
use std::ffi::{c_char, c_int, CStr};
use tch::{Device, Kind, TchError, Tensor};

#[cfg(resnetc_fused_bn)]
extern "C" {
    fn resnetc_bn_act(
        x: *const torch_sys::C_tensor,
        res: *const torch_sys::C_tensor,
        weight: *const torch_sys::C_tensor,
        bias: *const torch_sys::C_tensor,
        running_mean: *const torch_sys::C_tensor,
        running_var: *const torch_sys::C_tensor,
        momentum: f64,
        eps: f64,
        relu: c_int,
        channels_last: c_int,
        out: *mut *mut torch_sys::C_tensor,
    ) -> *const c_char;
}

/// Whether [`bn_act`] can run `bn` on `x`: compiled in, a CPU with AVX2 and FMA, a 4-d
/// CPU tensor of float32 or float64 with parameters of the same kind, or of bfloat16 with
/// float32 parameters.
pub(crate) fn available(bn: &BatchNorm, x: &Tensor) -> bool {
    let params = match x.kind() {
        Kind::Float | Kind::Double => x.kind(),
        Kind::BFloat16 => Kind::Float,
        _ => return false,
    };
    cpu_supported() && x.device() == Device::Cpu && x.dim() == 4 && bn.weight.kind() == params
}

fn cpu_supported() -> bool {
    #[cfg(all(resnetc_fused_bn, target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(all(resnetc_fused_bn, target_arch = "x86_64")))]
    {
        false
    }
}

/// `relu?(bn(x) + residual?)` in training mode, updating `bn`'s running statistics and
/// its batch counter as [`BatchNorm::forward`] does; with `channels_last`, the output is
/// in channels-last order whatever `x`'s. Call only where [`available`].
pub(crate) fn bn_act(
    bn: &BatchNorm,
    x: &Tensor,
    residual: Option<&Tensor>,
    relu: bool,
    channels_last: bool,
) -> Result<Tensor, TchError> {
    bn.count_batch()?;
    call(bn, x, residual, relu, channels_last)
}

#[cfg(resnetc_fused_bn)]
fn call(
    bn: &BatchNorm,
    x: &Tensor,
    residual: Option<&Tensor>,
    relu: bool,
    channels_last: bool,
) -> Result<Tensor, TchError> {
    let mut out: *mut torch_sys::C_tensor = std::ptr::null_mut();
    // SAFETY: every pointer is a live tch tensor borrowed for the call (or null where the
    // C side allows it); on success `out` is a new `at::Tensor*` whose ownership passes to
    // the returned Tensor, as for tch's own functions. The error string stays valid until
    // the next call on this thread and is copied at once.
    unsafe {
        let err = resnetc_bn_act(
            x.as_ptr(),
            residual.map_or(std::ptr::null(), |r| r.as_ptr()),
            bn.weight.as_ptr(),
            bn.bias.as_ptr(),
            bn.running_mean.as_ptr(),
            bn.running_var.as_ptr(),
            bn.momentum,
            bn.eps,
            c_int::from(relu),
            c_int::from(channels_last),
            &mut out,
        );
        if !err.is_null() {
            return Err(TchError::Torch(
                CStr::from_ptr(err).to_string_lossy().into_owned(),
            ));
        }
        Ok(Tensor::from_ptr(out))
    }
}

#[cfg(not(resnetc_fused_bn))]
fn call(
    _: &BatchNorm,
    _: &Tensor,
    _: Option<&Tensor>,
    _: bool,
    _: bool,
) -> Result<Tensor, TchError> {
    Err(TchError::Torch(
        "the fused batch norm is not compiled into this build".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir;
    use crate::valid::NormLayer;
    use tch::nn;

    /// A batch norm of `c` channels with weight and bias away from 1 and 0.
    fn batch_norm(vs: &nn::VarStore, name: &str, c: usize) -> BatchNorm {
        let layer = NormLayer {
            name: name.to_owned(),
            norm: ir::Norm::Batch,
            channels: c as u64,
            shape: ir::Shape {
                c: c as u64,
                h: 1,
                w: 1,
            },
            relu: false,
        };
        let cfg = ir::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        };
        let bn = BatchNorm::new(&vs.root(), &layer, cfg, false).unwrap();
        tch::no_grad(|| {
            let w = Tensor::randn([c as i64], (bn.weight.kind(), Device::Cpu));
            bn.weight.shallow_clone().copy_(&(w * 0.5 + 1.0));
            let b = Tensor::randn([c as i64], (bn.weight.kind(), Device::Cpu));
            bn.bias.shallow_clone().copy_(&(b * 0.3));
        });
        bn
    }

    /// (residual, relu, NCHW shape) of the comparisons with libtorch.
    const CASES: [(bool, bool, [i64; 4]); 7] = [
        (false, true, [6, 24, 9, 7]),
        (true, true, [6, 24, 9, 7]),
        (true, false, [6, 24, 9, 7]),
        (false, false, [6, 24, 9, 7]),
        (true, true, [8, 64, 4, 4]),
        // Shapes whose two memory orders coincide.
        (true, true, [4, 5, 1, 1]),
        (true, true, [3, 1, 5, 5]),
    ];

    /// Whether this machine cannot run the operator (said on stderr).
    fn skipped() -> bool {
        if !cpu_supported() {
            eprintln!("skipped: the fused batch norm needs an x86-64 CPU with AVX2 and FMA");
        }
        !cpu_supported()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let d = f64::try_from((a - b).abs().max()).unwrap();
        d / f64::try_from(b.abs().max()).unwrap().max(1e-30)
    }

    /// Forward output, running statistics and every gradient against libtorch's
    /// `batch_norm` (+ add) (+ relu), for both layouts, both kinds, with and without the
    /// residual and the ReLU.
    #[test]
    fn matches_libtorch_operators() {
        if skipped() {
            return;
        }
        tch::manual_seed(7);
        for kind in [Kind::Float, Kind::Double] {
            let tol = if kind == Kind::Float { 4e-6 } else { 2e-14 };
            for channels_last in [false, true] {
                for (residual, relu, [n, c, h, w]) in CASES {
                    let case = format!(
                        "{kind:?} {n}x{c}x{h}x{w} channels_last={channels_last} residual={residual} relu={relu}"
                    );
                    let mut x = Tensor::randn([n, c, h, w], (kind, Device::Cpu)) * 2.0 + 3.0;
                    let mut r = Tensor::randn([n, c, h, w], (kind, Device::Cpu));
                    if channels_last {
                        x = crate::runtime::infer::channels_last(&x).unwrap();
                        r = crate::runtime::infer::channels_last(&r).unwrap();
                    }
                    let x = x.set_requires_grad(true);
                    let r = r.set_requires_grad(true);
                    let mut vs_a = nn::VarStore::new(Device::Cpu);
                    let mut vs_b = nn::VarStore::new(Device::Cpu);
                    let a = batch_norm(&vs_a, "bn", c as usize);
                    let b = batch_norm(&vs_b, "bn", c as usize);
                    vs_a.set_kind(kind);
                    vs_b.set_kind(kind);
                    vs_b.copy(&vs_a).unwrap();
                    let grad = Tensor::randn([n, c, h, w], (kind, Device::Cpu));

                    let y_fused = bn_act(&a, &x, residual.then_some(&r), relu, false).unwrap();
                    assert_eq!(y_fused.size(), x.size());
                    assert_eq!(y_fused.stride(), x.stride(), "{case}: layout kept");
                    // Gradients of sum(y * grad) for x, (r,) weight and bias.
                    let grads_of = |y: &Tensor, bn: &BatchNorm| {
                        let mut wrt = vec![&x];
                        if residual {
                            wrt.push(&r);
                        }
                        wrt.extend([&bn.weight, &bn.bias]);
                        Tensor::f_run_backward(&[(y * &grad).sum(kind)], &wrt, false, false)
                            .unwrap()
                    };
                    let fused_grads = grads_of(&y_fused, &a);
                    let mut y = b.forward(&x, true).unwrap();
                    if residual {
                        y += &r;
                    }
                    if relu {
                        y = y.relu();
                    }
                    let grads = grads_of(&y, &b);

                    assert!(
                        max_rel(&y_fused, &y) < tol,
                        "{case}: output {}",
                        max_rel(&y_fused, &y)
                    );
                    for (i, (f, g)) in fused_grads.iter().zip(&grads).enumerate() {
                        let e = max_rel(f, g);
                        assert!(e < tol, "{case}: gradient {i} differs by {e}");
                    }
                    assert!(
                        max_rel(&a.running_mean, &b.running_mean) < tol,
                        "{case}: running mean"
                    );
                    assert!(
                        max_rel(&a.running_var, &b.running_var) < tol,
                        "{case}: running var"
                    );
                    assert_eq!(i64::try_from(&a.num_batches_tracked).unwrap(), 1);
                }
            }
        }
    }

    /// ‖a - b‖ / ‖b‖, in float64.
    fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
        let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
        f64::try_from((&a - &b).norm()).unwrap() / f64::try_from(b.norm()).unwrap().max(1e-300)
    }

    /// bfloat16 activations with float32 parameters, as autocast leaves them: the output,
    /// every gradient and the running statistics against a float64 computation from the
    /// same bfloat16 values, at least as close to it as libtorch's own bfloat16 operators
    /// (batch_norm, add, relu), and within bfloat16's rounding.
    #[test]
    fn bf16_is_as_exact_as_libtorchs() {
        if skipped() {
            return;
        }
        tch::manual_seed(11);
        let bf = Kind::BFloat16;
        for channels_last in [false, true] {
            for (residual, relu, [n, c, h, w]) in CASES {
                let case = format!(
                    "{n}x{c}x{h}x{w} channels_last={channels_last} residual={residual} relu={relu}"
                );
                let layout = |t: Tensor| {
                    if channels_last {
                        crate::runtime::infer::channels_last(&t).unwrap()
                    } else {
                        t
                    }
                };
                let x16 = layout(
                    (Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)) * 2.0 + 3.0)
                        .to_kind(bf),
                );
                let r16 =
                    layout(Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)).to_kind(bf));
                let grad16 = Tensor::randn([n, c, h, w], (Kind::Float, Device::Cpu)).to_kind(bf);
                let (vs0, mut vs1, mut vs2) = (
                    nn::VarStore::new(Device::Cpu),
                    nn::VarStore::new(Device::Cpu),
                    nn::VarStore::new(Device::Cpu),
                );
                let bns = [&vs0, &vs1, &vs2].map(|v| batch_norm(v, "bn", c as usize));
                vs1.copy(&vs0).unwrap();
                vs2.set_kind(Kind::Double);
                vs2.copy(&vs0).unwrap();

                // One run: the output and the gradients of sum(y * grad) for x, (r,)
                // weight and bias, with inputs of `kind` holding the same values.
                let run = |bn: &BatchNorm, kind: Kind, fused: bool| {
                    let x = x16.to_kind(kind).set_requires_grad(true);
                    let r = r16.to_kind(kind).set_requires_grad(true);
                    let y = if fused {
                        bn_act(bn, &x, residual.then_some(&r), relu, false).unwrap()
                    } else {
                        let mut y = bn.forward(&x, true).unwrap();
                        if residual {
                            y += &r;
                        }
                        if relu {
                            y = y.relu();
                        }
                        y
                    };
                    let mut wrt = vec![&x];
                    if residual {
                        wrt.push(&r);
                    }
                    wrt.extend([&bn.weight, &bn.bias]);
                    let loss =
                        (&y.to_kind(Kind::Double) * grad16.to_kind(Kind::Double)).sum(Kind::Double);
                    let grads = Tensor::f_run_backward(&[loss], &wrt, false, false).unwrap();
                    (y, grads)
                };
                let (y_fused, g_fused) = run(&bns[0], bf, true);
                let (y_torch, g_torch) = run(&bns[1], bf, false);
                let (y_ref, g_ref) = run(&bns[2], Kind::Double, false);
                assert_eq!(y_fused.kind(), bf, "{case}");
                assert_eq!(y_fused.stride(), x16.stride(), "{case}: layout kept");
                // Within 1.25 times libtorch's error (plus float32's rounding), and within
                // bfloat16's (2^-8).
                let check = |what: &str, fused: &Tensor, torch: &Tensor, reference: &Tensor| {
                    let (e_fused, e_torch) = (rel_l2(fused, reference), rel_l2(torch, reference));
                    assert!(
                        e_fused <= 1.25 * e_torch + 1e-6 && e_fused < 4e-3,
                        "{case}: {what} off by {e_fused:.2e} (libtorch's bfloat16: {e_torch:.2e})"
                    );
                };
                check("output", &y_fused, &y_torch, &y_ref);
                for (i, ((f, t), r)) in g_fused.iter().zip(&g_torch).zip(&g_ref).enumerate() {
                    assert_eq!(f.kind(), t.kind(), "{case}: gradient {i}'s kind");
                    check(&format!("gradient {i}"), f, t, r);
                }
                check(
                    "running mean",
                    &bns[0].running_mean,
                    &bns[1].running_mean,
                    &bns[2].running_mean,
                );
                check(
                    "running var",
                    &bns[0].running_var,
                    &bns[1].running_var,
                    &bns[2].running_var,
                );
            }
        }
    }

    /// With `channels_last`, an NCHW input (a 1-channel stem's convolution output) gives
    /// a channels-last output of the same values.
    #[test]
    fn channels_last_output_on_request() {
        if skipped() {
            return;
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = batch_norm(&vs, "bn", 8);
        let x = Tensor::randn([4, 8, 6, 6], (Kind::Float, Device::Cpu));
        let a = bn_act(&bn, &x, None, true, false).unwrap();
        let b = bn_act(&bn, &x, None, true, true).unwrap();
        assert_eq!(a.stride(), x.stride());
        assert_eq!(b.stride(), vec![288, 1, 48, 8]);
        assert!(max_rel(&a, &b) < 1e-6, "{}", max_rel(&a, &b));
    }

    #[test]
    fn bad_inputs_are_errors_not_crashes() {
        if skipped() {
            return;
        }
        let vs = nn::VarStore::new(Device::Cpu);
        let bn = batch_norm(&vs, "bn", 4);
        // Wrong channel count, one value per channel, a residual of another shape.
        let error = |x: &[i64], r: Option<&[i64]>| {
            let randn = |shape: &[i64]| Tensor::randn(shape, (Kind::Float, Device::Cpu));
            let r = r.map(randn);
            bn_act(&bn, &randn(x), r.as_ref(), true, false)
                .unwrap_err()
                .to_string()
        };
        let e = error(&[2, 3, 4, 4], None);
        assert!(e.contains("contiguous vector of 3"), "{e}");
        let e = error(&[1, 4, 1, 1], None);
        assert!(e.contains("more than 1 value per channel"), "{e}");
        let e = error(&[2, 4, 4, 4], Some(&[2, 4, 2, 2]));
        assert!(e.contains("does not match the input"), "{e}");
    }
}
