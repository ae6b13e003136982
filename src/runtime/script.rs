//! TorchScript modules built in memory, to reach libtorch operators that tch's generated
//! bindings lack (they cover `aten::` functions only, and not all of those): oneDNN's fused
//! convolutions for inference ([`super::onednn`]), the multi-tensor and fused SGD kernels
//! for training ([`crate::train::optim`]).
//!
//! A module is a class whose TorchScript source is a constant of this crate, packed with a
//! minimal `data.pkl` (the class with `training = True`, written here) into a stored zip
//! as `torch.jit.save` lays it out, and loaded with `CModule::load_data`. Each call goes
//! through the TorchScript interpreter (a few microseconds). Nothing from outside is
//! unpickled and no source comes from a spec.

use tch::{CModule, TchError};

/// Loads the TorchScript class `class` (an identifier) whose `code/__torch__.py` is
/// `source`; `Err` if libtorch rejects it, e.g. when an operator it calls is missing.
pub(crate) fn load(class: &str, source: &str) -> Result<CModule, TchError> {
    debug_assert!(class
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let data = data_pkl(class);
    let code = format!("{class}/code/__torch__.py");
    let pkl = format!("{class}/data.pkl");
    let constants = format!("{class}/constants.pkl");
    let version = format!("{class}/version");
    let byteorder = format!("{class}/byteorder");
    let archive = stored_zip(&[
        (&pkl, &data),
        (&code, source.as_bytes()),
        (&constants, b"\x80\x02)."),
        (&version, b"3\n"),
        (&byteorder, b"little"),
    ]);
    let mut module = CModule::load_data(&mut std::io::Cursor::new(archive))?;
    module.f_set_eval()?;
    Ok(module)
}

/// `class()` with `training = True`, as torch.jit.save pickles a module (protocol 2):
/// GLOBAL '__torch__ class', EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, MARK, 'training', True,
/// SETITEMS, BUILD, STOP.
fn data_pkl(class: &str) -> Vec<u8> {
    let mut out = b"\x80\x02c__torch__\n".to_vec();
    out.extend(class.as_bytes());
    out.extend(b"\nq\x00)\x81}(X\x08\x00\x00\x00trainingq\x01\x88ub.");
    out
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
