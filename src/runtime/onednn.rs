//! oneDNN's fused CPU convolutions (conv + bias + ReLU, conv + bias + add (+ ReLU)).
//!
//! libtorch registers them as `mkldnn::_convolution_pointwise` and
//! `mkldnn::_convolution_pointwise_.binary` (what `torch.compile` and PyTorch's frozen
//! graphs call on x86), but tch's generated bindings cover only `aten::` operators. They
//! are reached here through TorchScript: a two-method module whose source is below is
//! packed into a TorchScript archive in memory (a stored zip: the code, a minimal
//! `data.pkl` written here, `constants.pkl`, `version`) and loaded with
//! `CModule::load_data`; each call then goes through the TorchScript interpreter (a few
//! microseconds). Nothing from outside is unpickled: the one pickle is the constant
//! below. If this libtorch lacks the operators (a non-x86 build), loading fails and the
//! runtime uses unfused operators. The archive is built by [`super::script::load`].

use tch::{CModule, IValue, TchError, Tensor};

/// The TorchScript source (`code/__torch__.py` of the archive).
const SOURCE: &str = r#"class FusedOps(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  def forward(self: __torch__.FusedOps,
    x: Tensor) -> Tensor:
    return x
  def conv(self: __torch__.FusedOps,
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor],
    padding: List[int],
    stride: List[int],
    groups: int,
    attr: str) -> Tensor:
    _0 = annotate(List[Optional[number]], [])
    return ops.mkldnn._convolution_pointwise(x, w, b, padding, stride, [1, 1], groups, attr, _0, "")
  def conv_add(self: __torch__.FusedOps,
    other: Tensor,
    x: Tensor,
    w: Tensor,
    b: Optional[Tensor],
    padding: List[int],
    stride: List[int],
    groups: int,
    relu: bool) -> Tensor:
    _0 = annotate(List[Optional[number]], [])
    if relu:
      _1 = ops.mkldnn._convolution_pointwise_(other, x, w, b, padding, stride, [1, 1], groups, "add", 1., "relu", _0, "")
    else:
      _1 = ops.mkldnn._convolution_pointwise_(other, x, w, b, padding, stride, [1, 1], groups, "add", 1., None, _0, "")
    return _1
"#;

/// The fused convolutions, loaded once per [`crate::runtime::InferenceModel`].
#[derive(Debug)]
pub(crate) struct FusedOps {
    module: CModule,
}

impl FusedOps {
    /// Builds and loads the TorchScript module; `Err` if libtorch lacks the operators.
    pub fn load() -> Result<FusedOps, TchError> {
        let module = super::script::load("FusedOps", SOURCE)?;
        Ok(FusedOps { module })
    }

    /// `attr(conv(x) + b)` with `attr` `"relu"` or `"none"`; `w` reordered by
    /// `mkldnn_reorder_conv2d_weight`, `b` dense.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        padding: i64,
        stride: i64,
        groups: i64,
        relu: bool,
    ) -> Result<Tensor, TchError> {
        let args = [
            IValue::Tensor(x.shallow_clone()),
            IValue::Tensor(w.shallow_clone()),
            b.map_or(IValue::None, |b| IValue::Tensor(b.shallow_clone())),
            IValue::IntList(vec![padding, padding]),
            IValue::IntList(vec![stride, stride]),
            IValue::Int(groups),
            IValue::String(if relu { "relu" } else { "none" }.into()),
        ];
        tensor(self.module.method_is("conv", &args)?)
    }

    /// `other += conv(x) + b`, then ReLU if `relu`; returns `other` (written in place).
    #[allow(clippy::too_many_arguments)]
    pub fn conv_add(
        &self,
        other: &Tensor,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        padding: i64,
        stride: i64,
        groups: i64,
        relu: bool,
    ) -> Result<Tensor, TchError> {
        let args = [
            IValue::Tensor(other.shallow_clone()),
            IValue::Tensor(x.shallow_clone()),
            IValue::Tensor(w.shallow_clone()),
            b.map_or(IValue::None, |b| IValue::Tensor(b.shallow_clone())),
            IValue::IntList(vec![padding, padding]),
            IValue::IntList(vec![stride, stride]),
            IValue::Int(groups),
            IValue::Bool(relu),
        ];
        tensor(self.module.method_is("conv_add", &args)?)
    }
}

fn tensor(v: IValue) -> Result<Tensor, TchError> {
    match v {
        IValue::Tensor(t) => Ok(t),
        _ => Err(TchError::Kind(
            "fused convolution returned something other than a tensor".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn fused_convolutions_match_separate_ops() {
        if !tch::utils::has_mkldnn() {
            return;
        }
        let ops = FusedOps::load().expect("the TorchScript shim loads");
        let opts = (Kind::Float, Device::Cpu);
        let x = Tensor::randn([2, 8, 9, 9], opts);
        let w = Tensor::randn([16, 4, 3, 3], opts);
        let b = Tensor::randn([16], opts);
        let wr = w.g_to_mkldnn(Kind::Float).mkldnn_reorder_conv2d_weight(
            [1, 1],
            [2, 2],
            [1, 1],
            2,
            Some([2i64, 8, 9, 9].as_slice()),
        );
        let reference = x.conv2d(&w, Some(&b), [2, 2], [1, 1], [1, 1], 2);
        let y = ops.conv(&x, &wr, Some(&b), 1, 2, 2, true).unwrap();
        let d = (y - reference.relu()).abs().max().double_value(&[]);
        assert!(d < 1e-4, "{d}");
        let other = Tensor::randn([2, 16, 5, 5], opts);
        let expected = (&reference + &other).relu();
        let z = ops
            .conv_add(&other, &x, &wr, Some(&b), 1, 2, 2, true)
            .unwrap();
        let d = (z - expected).abs().max().double_value(&[]);
        assert!(d < 1e-4, "{d}");
    }
}
