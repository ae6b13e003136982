//! `resnetc import` on files built here, byte by byte (no Python, no libtorch): PyTorch
//! checkpoints in torch.save's zip format, written as PyTorch 2.11 writes them (a
//! protocol-2 `data.pkl` of an OrderedDict of `_rebuild_tensor_v2` calls, one stored
//! entry per storage), and hostile ones: a pickle whose `__reduce__` calls `os.system`,
//! a truncated archive, storages whose size disagrees with their tensors, a
//! 10^12-element shape, a legacy raw pickle, a whole pickled module. Each hostile file
//! must give exit status 3 with a message naming it, never a panic, an allocation the
//! size the file claims, or executed code.
//!
//! The libtorch parts (`--weights` of `run`, `train --init-from`) are at the end, behind
//! the `torch` feature; `tests/import_parity.rs` checks real torchvision, timm and Keras
//! files against PyTorch and Keras.

mod common;

use common::{assert_refused, resnetc, Outcome};

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A network of 435 parameters on 3x8x8 inputs (with 2 BN layers).
const TINY: &str = "model tiny\ninput 3x8x8\nstem conv 3x3/1 pad 1 -> 4, bn, relu\ndefaults basic\ns1: basic [4, 4] x1 /1\nhead avgpool, fc 3\n";

/// A fresh, empty folder for one test, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("import", name)
}



// ---------------------------------------------------------------- torch.save ----

/// One tensor of a hand-made checkpoint: name, storage class, storage key, declared
/// storage elements, offset, shape, stride, and the bytes of the storage's entry.
#[derive(Clone)]
struct Saved {
    name: String,
    storage: &'static str,
    key: String,
    numel: i64,
    offset: i64,
    shape: Vec<i64>,
    stride: Vec<i64>,
    bytes: Vec<u8>,
}

impl Saved {
    /// A contiguous f32 tensor whose storage is exactly its data.
    fn f32(name: &str, key: usize, shape: &[u64], seed: u32) -> Saved {
        let numel: u64 = shape.iter().product();
        let mut stride = vec![1i64; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1] as i64;
        }
        // Deterministic, non-trivial values (no NaN): every bit pattern differs.
        let bytes = (0..numel as u32)
            .flat_map(|i| ((i.wrapping_mul(2654435761) ^ seed) as f32 * 1e-9 - 0.5).to_le_bytes())
            .collect();
        Saved {
            name: name.into(),
            storage: "FloatStorage",
            key: key.to_string(),
            numel: numel as i64,
            offset: 0,
            shape: shape.iter().map(|&d| d as i64).collect(),
            stride,
            bytes,
        }
    }
}

/// Pickle opcodes, protocol 2, as PyTorch's pickler writes them.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Pickle {
        Pickle(vec![0x80, 2])
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    fn int(&mut self, v: i64) -> &mut Self {
        match i32::try_from(v) {
            Ok(v) => {
                self.0.push(b'J');
                self.0.extend(v.to_le_bytes());
            }
            Err(_) => {
                self.0.extend([0x8a, 8]);
                self.0.extend(v.to_le_bytes());
            }
        }
        self
    }
    fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend(bytes);
        self
    }
    fn tuple_of(&mut self, items: &[i64]) -> &mut Self {
        self.op(b"(");
        for &i in items {
            self.int(i);
        }
        self.op(b"t")
    }
    /// `OrderedDict()`.
    fn ordered_dict(&mut self) -> &mut Self {
        self.global("collections", "OrderedDict").op(b")R")
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    fn tensor(&mut self, t: &Saved) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"((");
        self.str("storage")
            .global("torch", t.storage)
            .str(&t.key)
            .str("cpu")
            .int(t.numel);
        self.op(b"tQ")
            .int(t.offset)
            .tuple_of(&t.shape)
            .tuple_of(&t.stride);
        self.op(&[0x89]).ordered_dict().op(b"tR")
    }
    /// An OrderedDict of the tensors (keys `prefix + name`), with torch's `_metadata`.
    fn state_dict(&mut self, tensors: &[Saved], prefix: &str) -> &mut Self {
        self.ordered_dict().op(b"(");
        for t in tensors {
            self.str(&format!("{prefix}{}", t.name)).tensor(t);
        }
        self.op(b"u")
            .op(b"}")
            .str("_metadata")
            .ordered_dict()
            .op(b"sb")
    }
    fn stop(&mut self) -> Vec<u8> {
        self.0.push(b'.');
        std::mem::take(&mut self.0)
    }
}

/// A torch.save archive `<stem>/data.pkl` + one entry per distinct storage key.
fn archive(path: &Path, pickle: &[u8], tensors: &[Saved]) {
    let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(format!("{stem}/data.pkl"), stored).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file(format!("{stem}/byteorder"), stored).unwrap();
    zip.write_all(b"little").unwrap();
    let mut keys = std::collections::HashSet::new();
    for t in tensors {
        if keys.insert(t.key.clone()) {
            zip.start_file(format!("{stem}/data/{}", t.key), stored)
                .unwrap();
            zip.write_all(&t.bytes).unwrap();
        }
    }
    zip.start_file(format!("{stem}/version"), stored).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap();
}

/// `torch.save(state_dict)` of `tensors`, their keys prefixed with `prefix`.
fn save_state_dict(path: &Path, tensors: &[Saved], prefix: &str) {
    archive(
        path,
        &Pickle::new().state_dict(tensors, prefix).stop(),
        tensors,
    );
}

/// The tiny spec's state_dict with deterministic values (num_batches_tracked as i64 0-d).
fn tiny_state_dict() -> Vec<Saved> {
    let file =
        resnetc::span::SourceFile::new("tiny.resnet", TINY.to_string(), resnetc::span::Syntax::Dsl);
    let compiled = resnetc::compile(&file).unwrap();
    resnetc::import::expected(&compiled.network)
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if e.float {
                Saved::f32(&e.name, i, &e.shape, i as u32 * 7919)
            } else {
                Saved {
                    name: e.name,
                    storage: "LongStorage",
                    key: i.to_string(),
                    numel: 1,
                    offset: 0,
                    shape: vec![],
                    stride: vec![],
                    bytes: 42i64.to_le_bytes().to_vec(),
                }
            }
        })
        .collect()
}

fn tiny(dir: &Path) -> String {
    let p = dir.join("tiny.resnet");
    std::fs::write(&p, TINY).unwrap();
    p.display().to_string()
}

fn import(file: &str, spec: &str, out: &Path, extra: &[&str]) -> Outcome {
    let out = out.display().to_string();
    let mut args = vec!["import", file, "--spec", spec, "-o", &out];
    args.extend(extra);
    resnetc(&args)
}

#[test]
fn state_dicts_import_bit_identical_with_wrappers_prefixes_and_views() {
    let dir = scratch("ok");
    let spec = tiny(&dir);
    let tensors = tiny_state_dict();
    let plain = dir.join("plain.pth");
    save_state_dict(&plain, &tensors, "");
    // {"state_dict": {"module." + key: ...}, "epoch": 3}, as a DataParallel training script saves it.
    let mut p = Pickle::new();
    p.op(b"}(")
        .str("epoch")
        .int(3)
        .str("state_dict")
        .state_dict(&tensors, "module.")
        .op(b"u");
    let wrapped = dir.join("wrapped.pth");
    archive(&wrapped, &p.stop(), &tensors);
    for file in [&plain, &wrapped] {
        let out = dir.join("w.safetensors");
        let o = import(&file.display().to_string(), &spec, &out, &[]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        let got = common::safetensors_entries(&out);
        assert_eq!(got.len(), tensors.len());
        for t in &tensors {
            let (dtype, shape, bytes) = &got[&t.name];
            assert_eq!(
                dtype,
                if t.storage == "LongStorage" {
                    "I64"
                } else {
                    "F32"
                }
            );
            assert_eq!(
                shape,
                &t.shape.iter().map(|&d| d as u64).collect::<Vec<_>>()
            );
            assert_eq!(bytes, &t.bytes, "{} is not bit-identical", t.name);
        }
        if file == &wrapped {
            assert!(
                o.stderr
                    .contains("took the state_dict under `state_dict` (left out: epoch)"),
                "{}",
                o.stderr
            );
            assert!(o.stderr.contains("`module.` prefix"), "{}", o.stderr);
        }
    }

    // A transposed view (stride (1, 3)) of fc.weight's storage reads as PyTorch would.
    let mut viewed = tensors.clone();
    let fc = viewed.iter_mut().find(|t| t.name == "fc.weight").unwrap();
    assert_eq!(fc.shape, [3, 4]);
    fc.stride = vec![1, 3];
    let fc_bytes = fc.bytes.clone();
    let v = dir.join("view.pth");
    save_state_dict(&v, &viewed, "");
    let out = dir.join("v.safetensors");
    assert_eq!(
        import(&v.display().to_string(), &spec, &out, &[]).code,
        Some(0)
    );
    let got = &common::safetensors_entries(&out)["fc.weight"].2;
    let f = |b: &[u8], i: usize| f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap());
    for r in 0..3 {
        for c in 0..4 {
            assert_eq!(f(got, r * 4 + c), f(&fc_bytes, c * 3 + r));
        }
    }

    // --dtype f16 converts the floats, not the counters.
    let out = dir.join("h.safetensors");
    let o = import(
        &plain.display().to_string(),
        &spec,
        &out,
        &["--dtype", "f16"],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let got = common::safetensors_entries(&out);
    assert_eq!(got["conv1.weight"].0, "F16");
    assert_eq!(got["conv1.weight"].2.len(), 4 * 3 * 3 * 3 * 2);
    assert_eq!(got["bn1.num_batches_tracked"].0, "I64");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn strict_import_lists_every_problem_and_partial_writes_what_fits() {
    let dir = scratch("strict");
    let spec = tiny(&dir);
    let mut tensors = tiny_state_dict();
    tensors.retain(|t| t.name != "bn1.running_var");
    let fc = tensors.iter().position(|t| t.name == "fc.weight").unwrap();
    let n = tensors.len();
    tensors[fc] = Saved::f32("fc.weight", 900, &[10, 4], 1);
    tensors.push(Saved::f32("head.extra", 901, &[2], 2));
    let file = dir.join("other.pth");
    save_state_dict(&file, &tensors, "");
    let shown = file.display().to_string();
    let out = dir.join("w.safetensors");
    let o = import(&shown, &spec, &out, &[]);
    assert_refused(
        &o,
        &shown,
        &[
            "1 missing, 1 unexpected, 1 mismatched",
            "bn1.running_var",
            "head.extra",
            "fc.weight: network [3, 4] f32, file [10, 4] f32",
            "--partial",
        ],
    );
    assert!(!out.exists(), "nothing is written on failure");
    let o = import(&shown, &spec, &out, &["--partial"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stderr.contains("warning: importing"), "{}", o.stderr);
    assert_eq!(
        common::safetensors_entries(&out).len(),
        n - 1,
        "all but the mis-shaped fc.weight"
    );

    // --map: rename a code base's keys; keys no rule matches are reported.
    let renamed: Vec<Saved> = tiny_state_dict()
        .into_iter()
        .map(|mut t| {
            t.name = t.name.replace("fc.", "classifier.");
            t
        })
        .collect();
    let file = dir.join("renamed.pth");
    save_state_dict(&file, &renamed, "backbone.");
    let map = dir.join("map.txt");
    std::fs::write(
        &map,
        "# ours\nbackbone\\.classifier\\.(.*) => fc.$1\nbackbone\\.(conv1|bn1)\\.(.*) => $1.$2\n",
    )
    .unwrap();
    let o = import(
        &file.display().to_string(),
        &spec,
        &out,
        &["--map", &map.display().to_string()],
    );
    assert_refused(
        &o,
        &file.display().to_string(),
        &[
            "matched no rule",
            "backbone.layer1.0.conv1.weight",
            "unexpected",
        ],
    );
    std::fs::write(
        &map,
        "backbone\\.classifier\\.(.*) => fc.$1\nbackbone\\.(.*) => $1\n",
    )
    .unwrap();
    let o = import(
        &file.display().to_string(),
        &spec,
        &out,
        &["--map", &map.display().to_string()],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert_eq!(
        common::safetensors_entries(&out)["fc.bias"].2,
        renamed
            .iter()
            .find(|t| t.name == "classifier.bias")
            .unwrap()
            .bytes
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_pickle_that_would_call_os_system_is_refused_and_nothing_runs() {
    let dir = scratch("evil");
    let spec = tiny(&dir);
    let marker = dir.join("marker");
    // What pickle writes for an object whose __reduce__ returns
    // (os.system, ("touch <marker>",)), inside a state_dict.
    let mut p = Pickle::new();
    p.ordered_dict().op(b"(").str("conv1.weight");
    p.global("posix", "system")
        .str(&format!("touch {}", marker.display()))
        .op(&[0x85])
        .op(b"R");
    p.op(b"u");
    let evil = dir.join("evil.pth");
    archive(&evil, &p.stop(), &[]);
    let shown = evil.display().to_string();
    let o = import(&shown, &spec, &dir.join("w.safetensors"), &[]);
    assert_refused(
        &o,
        &shown,
        &["`posix.system`", "refused before anything was run"],
    );
    assert!(!marker.exists(), "the payload ran");
    // Protocol 4's STACK_GLOBAL (builtins.exec) is refused the same way.
    let mut p = Pickle(vec![0x80, 4]);
    p.op(b"\x8c\x08builtins\x8c\x04exec\x93");
    let evil4 = dir.join("evil4.pth");
    archive(&evil4, &p.stop(), &[]);
    let o = import(
        &evil4.display().to_string(),
        &spec,
        &dir.join("w.safetensors"),
        &[],
    );
    assert_refused(&o, &evil4.display().to_string(), &["`builtins.exec`"]);
    // A whole pickled module, as `torch.save(model)` writes it.
    let mut p = Pickle::new();
    p.global("torchvision.models.resnet", "ResNet").op(b")\x81");
    let model = dir.join("model.pth");
    archive(&model, &p.stop(), &[]);
    let o = import(
        &model.display().to_string(),
        &spec,
        &dir.join("w.safetensors"),
        &[],
    );
    assert_refused(
        &o,
        &model.display().to_string(),
        &["torchvision.models.resnet.ResNet", "model.state_dict()"],
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hostile_archives_are_refused_before_their_data_is_read() {
    let dir = scratch("hostile");
    let spec = tiny(&dir);
    let tensors = tiny_state_dict();
    let good = dir.join("good.pth");
    save_state_dict(&good, &tensors, "");
    let out = dir.join("w.safetensors");
    let check = |name: &str, words: &[&str]| {
        let p = dir.join(name).display().to_string();
        let start = Instant::now();
        let o = import(&p, &spec, &out, &[]);
        assert_refused(&o, &p, words);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            start.elapsed()
        );
        assert!(!out.exists());
    };

    // Truncated: the central directory is gone.
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("cut.pth"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    check("cut.pth", &["not a readable zip archive", "cut short"]);

    // A storage whose entry is shorter than its declared elements.
    let mut short = tensors.clone();
    short[0].bytes.truncate(100);
    save_state_dict(&dir.join("short.pth"), &short, "");
    check(
        "short.pth",
        &[
            "storage `0` declares 108 elements of f32 (432 bytes)",
            "holds 100 bytes",
        ],
    );

    // A tensor whose shape reaches beyond its storage.
    let mut beyond = tensors.clone();
    beyond[0].shape = vec![4, 3, 3, 4];
    beyond[0].stride = vec![36, 12, 4, 1];
    save_state_dict(&dir.join("beyond.pth"), &beyond, "");
    check(
        "beyond.pth",
        &[
            "tensor `conv1.weight`",
            "reaches beyond its storage `0`, which holds 108 elements",
        ],
    );

    // 10^12 elements: a shape on a small storage, and a storage that declares them.
    let mut huge = tensors.clone();
    huge[0].shape = vec![1_000_000, 1_000_000];
    huge[0].stride = vec![1_000_000, 1];
    save_state_dict(&dir.join("huge-shape.pth"), &huge, "");
    check(
        "huge-shape.pth",
        &["1000000000000 elements", "reaches beyond its storage"],
    );
    huge[0].numel = 1_000_000_000_000;
    save_state_dict(&dir.join("huge-storage.pth"), &huge, "");
    check(
        "huge-storage.pth",
        &[
            "declares 1000000000000 elements of f32 (4000000000000 bytes)",
            "holds 432 bytes",
        ],
    );

    // Storages named in the pickle but absent from the archive.
    archive(
        &dir.join("nodata.pth"),
        &Pickle::new().state_dict(&tensors, "").stop(),
        &[],
    );
    check("nodata.pth", &["has no entry `nodata/data/0`"]);

    // Legacy format (a raw pickle), an empty file, random bytes.
    std::fs::write(
        dir.join("legacy.pth"),
        b"\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19.",
    )
    .unwrap();
    check("legacy.pth", &["legacy format", "re-save it"]);
    std::fs::write(dir.join("empty.pth"), b"").unwrap();
    check("empty.pth", &["neither a PyTorch checkpoint"]);
    std::fs::write(dir.join("zeros.h5"), [0u8; 4096]).unwrap();
    check("zeros.h5", &["neither a PyTorch checkpoint"]);
    // An HDF5 signature followed by garbage.
    let mut h5 = b"\x89HDF\r\n\x1a\n".to_vec();
    h5.extend([0xffu8; 200]);
    std::fs::write(dir.join("garbage.weights.h5"), h5).unwrap();
    check("garbage.weights.h5", &["not a readable HDF5 file"]);
    // A state_dict that is not a dict, an int key, a dict without tensors.
    let mut p = Pickle::new();
    p.op(b"]").op(b".");
    archive(&dir.join("list.pth"), &p.0, &[]);
    check("list.pth", &["holds a list, not a state_dict"]);
    let mut p = Pickle::new();
    p.op(b"}(").str("epoch").int(3).op(b"u");
    archive(&dir.join("noweights.pth"), &p.stop(), &[]);
    check(
        "noweights.pth",
        &["a dict without tensors", "epoch (an int)"],
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every truncation, and every byte of a small archive set to 0x00, 0x01, 0x7f and 0xff,
/// is imported or refused, never a panic (the zip reader, the unpickler, the checks).
#[test]
fn mutated_archives_never_panic() {
    use resnetc::import::{self, LoadMode, TensorSource};
    let dir = scratch("mutants");
    let tensors: Vec<Saved> = tiny_state_dict().into_iter().take(3).collect();
    let good = dir.join("good.pth");
    save_state_dict(&good, &tensors, "");
    let bytes = std::fs::read(&good).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let file =
        resnetc::span::SourceFile::new("tiny.resnet", TINY.to_string(), resnetc::span::Syntax::Dsl);
    let compiled = resnetc::compile(&file).unwrap();
    let expected = import::expected(&compiled.network);
    let try_one = |m: &[u8]| {
        let result = std::panic::catch_unwind(|| {
            let cursor = std::io::Cursor::new(m.to_vec());
            let Ok(mut source) = import::torch::TorchCheckpoint::open(cursor, m.len() as u64)
            else {
                return 0;
            };
            if import::normalize(&mut source, None).is_err() {
                return 0;
            }
            let Ok((_, take)) = import::plan(&source, &expected, LoadMode::Partial) else {
                return 0;
            };
            take.iter().filter(|&&i| source.read(i).is_ok()).count()
        });
        result.unwrap_or_else(|_| panic!("panic on a mutant of {} bytes", m.len()))
    };
    assert_eq!(try_one(&bytes), 3);
    let started = Instant::now();
    let mut runs = 0;
    for cut in 0..bytes.len() {
        try_one(&bytes[..cut]);
        runs += 1;
    }
    for i in 0..bytes.len() {
        for b in [0x00, 0x01, 0x7f, 0xff] {
            let mut m = bytes.clone();
            m[i] = b;
            try_one(&m);
            runs += 1;
        }
    }
    eprintln!(
        "{runs} mutants of a {}-byte archive in {:.1} s",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The runtime takes a checkpoint as `--weights` directly, and `train --init-from`
/// starts from one.
#[cfg(feature = "torch")]
mod runtime {
    use super::*;

    #[test]
    fn run_takes_a_checkpoint_as_its_weights() {
        let dir = scratch("run");
        let spec = tiny(&dir);
        let tensors = tiny_state_dict();
        let pth = dir.join("w.pth");
        save_state_dict(&pth, &tensors, "module.");
        let sf = dir.join("w.safetensors");
        assert_eq!(
            import(&pth.display().to_string(), &spec, &sf, &[]).code,
            Some(0)
        );
        let x = tch::Tensor::randn([2, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
        let xp = dir.join("x.safetensors");
        tch::Tensor::write_safetensors(&[("x", &x)], &xp).unwrap();
        let mut logits = Vec::new();
        for w in [&pth, &sf] {
            let y = dir.join("y.safetensors");
            let o = resnetc(&[
                "run",
                &spec,
                "--weights",
                &w.display().to_string(),
                "--input",
                &xp.display().to_string(),
                "-o",
                &y.display().to_string(),
                "--device",
                "cpu",
            ]);
            assert_eq!(o.code, Some(0), "{}", o.stderr);
            logits.push(tch::Tensor::read_safetensors(&y).unwrap().remove(0).1);
        }
        assert!(
            logits[0].equal(&logits[1]),
            "a .pth and its import give the same logits"
        );
        // A hostile checkpoint is refused by `run` as by `import`.
        let mut p = Pickle::new();
        p.global("posix", "system")
            .str("true")
            .op(&[0x85])
            .op(b"R.");
        let evil = dir.join("evil.pth");
        archive(&evil, &p.0, &[]);
        let o = resnetc(&[
            "run",
            &spec,
            "--weights",
            &evil.display().to_string(),
            "--input",
            &xp.display().to_string(),
            "-o",
            &dir.join("y.safetensors").display().to_string(),
            "--device",
            "cpu",
        ]);
        assert_refused(&o, &evil.display().to_string(), &["`posix.system`"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// What `import` checks a file against is what the runtime builds: the same names,
    /// shapes and dtypes, for specs of every layer kind (option A shortcuts, pre-activation,
    /// groups, SE, ECA, GroupNorm, blur, deep stems, Keras V1 and V2, a flatten head).
    #[test]
    fn import_expects_exactly_the_runtime_variables() {
        for spec in [
            "resnet18.yaml",
            "cifar-resnet20.yaml",
            "preact-resnet18.yaml",
            "resnext50-32x4d.yaml",
            "article-pytorch.yaml",
            "article-keras.yaml",
            "plain34.yaml",
            "resnet50-os8.yaml",
            "timm/ecaresnet50d.yaml",
            "timm/seresnet50.yaml",
            "timm/resnet50_gn.yaml",
            "timm/resnetblur50.yaml",
            "timm/resnetrs50.yaml",
            "keras/ResNet50V2.yaml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("specs")
                .join(spec);
            let text = std::fs::read_to_string(&path).unwrap();
            let file = resnetc::span::SourceFile::new(spec, text, resnetc::span::Syntax::Yaml);
            let compiled = resnetc::compile(&file).unwrap();
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let _net = resnetc::runtime::ResNet::new(&vs.root(), &compiled).unwrap();
            let mut runtime: Vec<(String, Vec<u64>, bool)> = vs
                .variables()
                .into_iter()
                .map(|(n, t)| {
                    let float = matches!(t.kind(), tch::Kind::Float | tch::Kind::Double);
                    (n, t.size().iter().map(|&d| d as u64).collect(), float)
                })
                .collect();
            runtime.sort();
            let mut expected: Vec<(String, Vec<u64>, bool)> =
                resnetc::import::expected(&compiled.network)
                    .into_iter()
                    .map(|e| (e.name, e.shape, e.float))
                    .collect();
            expected.sort();
            assert_eq!(expected, runtime, "{spec}");
        }
    }

    /// `train --init-from` with a learning rate of 0 keeps the convolutions it started
    /// from; a new head needs `--partial`.
    #[test]
    fn train_starts_from_a_checkpoint() {
        let dir = scratch("train");
        // The tiny network on Fashion-MNIST's 1x28x28: a checkpoint for it, with a
        // 3-class head where the data has 10 classes.
        let grey = TINY.replace("3x8x8", "1x28x28");
        let spec = dir.join("grey.resnet");
        std::fs::write(&spec, &grey).unwrap();
        let file =
            resnetc::span::SourceFile::new("grey.resnet", grey.clone(), resnetc::span::Syntax::Dsl);
        let compiled = resnetc::compile(&file).unwrap();
        let tensors: Vec<Saved> = resnetc::import::expected(&compiled.network)
            .into_iter()
            .enumerate()
            .filter(|(_, e)| e.float)
            .map(|(i, e)| Saved::f32(&e.name, i, &e.shape, i as u32))
            .collect();
        let pth = dir.join("init.pth");
        save_state_dict(&pth, &tensors, "");
        let train = |out: &str, extra: &[&str]| {
            let out = dir.join(out).display().to_string();
            let mut args = vec![
                "train",
                spec.to_str().unwrap(),
                "--data",
                "fashion-mnist",
                "--out",
                &out,
                "--epochs",
                "1",
                "--limit-train",
                "64",
                "--limit-test",
                "32",
                "--batch-size",
                "32",
                "--lr",
                "0",
                "--device",
                "cpu",
                "--init-from",
                pth.to_str().unwrap(),
            ];
            args.extend(extra);
            (resnetc(&args), out)
        };
        let (o, _) = train("strict", &[]);
        assert_refused(
            &o,
            pth.to_str().unwrap(),
            &[
                "fc.weight: network [10, 4] f32, file [3, 4] f32",
                "--partial",
            ],
        );
        let (o, out) = train("partial", &["--partial"]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        assert!(o.stderr.contains("warning: loaded"), "{}", o.stderr);
        let w = common::safetensors_entries(&Path::new(&out).join("weights.safetensors"));
        for name in ["conv1.weight", "layer1.0.conv2.weight"] {
            let t = tensors.iter().find(|t| t.name == name).unwrap();
            assert_eq!(w[name].2, t.bytes, "{name} moved with lr 0");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
