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
//! runtime uses unfused operators.

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

/// `FusedOps()` with `training = True`, as torch.jit.save pickles a module (protocol 2):
/// GLOBAL '__torch__ FusedOps', EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, 'training', True,
/// SETITEMS, BUILD, STOP.
const DATA_PKL: &[u8] =
    b"\x80\x02c__torch__\nFusedOps\nq\x00)\x81}(X\x08\x00\x00\x00trainingq\x01\x88ub.";

/// The fused convolutions, loaded once per [`crate::runtime::InferenceModel`].
#[derive(Debug)]
pub(crate) struct FusedOps {
    module: CModule,
}

impl FusedOps {
    /// Builds and loads the TorchScript module; `Err` if libtorch lacks the operators.
    pub fn load() -> Result<FusedOps, TchError> {
        let archive = stored_zip(&[
            ("resnetc_fused/data.pkl", DATA_PKL),
            ("resnetc_fused/code/__torch__.py", SOURCE.as_bytes()),
            ("resnetc_fused/constants.pkl", b"\x80\x02)."),
            ("resnetc_fused/version", b"3\n"),
            ("resnetc_fused/byteorder", b"little"),
        ]);
        let mut module = CModule::load_data(&mut std::io::Cursor::new(archive))?;
        module.f_set_eval()?;
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

/// A zip archive with every file stored (no compression), as TorchScript's reader
/// accepts.
fn stored_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    const DOS_DATE: u16 = 0x21; // 1980-01-01
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let (crc, size, name_len) = (crc.sum(), data.len() as u32, name.len() as u16);
        let mut common = Vec::new();
        for v in [20u16, 0, 0, 0, DOS_DATE] {
            common.extend(v.to_le_bytes()); // version needed, flags, method, time, date
        }
        common.extend(crc.to_le_bytes());
        common.extend(size.to_le_bytes());
        common.extend(size.to_le_bytes());
        common.extend(name_len.to_le_bytes());
        common.extend(0u16.to_le_bytes()); // extra length
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(&common);
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes()); // version made by
        central.extend(&common);
        central.extend(0u16.to_le_bytes()); // comment length
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let (cd_offset, cd_size, n) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, n, n] {
        out.extend(v.to_le_bytes());
    }
    out.extend(cd_size.to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
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
