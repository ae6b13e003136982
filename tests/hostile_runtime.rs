//! Hostile files given to the runtime commands (`run`, `predict`, `bench`, `eval`,
//! `train`): weights, inputs, images, data sets, checkpoints and class names that are
//! truncated, oversized, of the wrong dtype or shape, or not what their extension says.
//! Each must give a clear error naming the file (exit status 3), never a panic, a hang
//! or an allocation the size the file claims. Every file lives in a temporary folder.
#![cfg(feature = "torch")]

mod common;

use common::{assert_refused, resnetc, resnetc_env, Outcome};
use std::path::Path;
use std::process::Command;

/// A network of 435 parameters on 3x8x8 inputs.
const TINY: &str = "model tiny\ninput 3x8x8\nstem conv 3x3/1 pad 1 -> 4, bn, relu\ndefaults basic\ns1: basic [4, 4] x1 /1\nhead avgpool, fc 3\n";
/// The same on 1x28x28 grey images with 10 classes (Fashion-MNIST's shape).
const TINY_GREY: &str = "model tiny_grey\ninput 1x28x28\nstem conv 3x3/1 pad 1 -> 4, bn, relu\ndefaults basic\ns1: basic [4, 4] x1 /2\nhead avgpool, fc 10\n";

/// A fresh, empty folder for one test, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("hostile", name)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}




/// A safetensors file from (name, dtype, shape, data) entries, offsets in order.
fn safetensors(entries: &[(&str, &str, &[u64], &[u8])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in entries {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(name.to_string(), serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}));
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

/// A safetensors header alone, for a file whose data is supplied by extending it sparsely.
fn header_only(name: &str, dtype: &str, shape: &[u64], bytes: u64) -> Vec<u8> {
    let header = serde_json::to_vec(
        &serde_json::json!({name: {"dtype": dtype, "shape": shape, "data_offsets": [0, bytes]}}),
    )
    .unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out
}

/// Writes `header` then extends the file to `header.len() + data` bytes without
/// writing them (a sparse file: it takes no disk space).
fn sparse(dir: &Path, name: &str, header: &[u8], data: u64) -> String {
    let p = write(dir, name, header);
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(header.len() as u64 + data).unwrap();
    p
}

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect()
}

/// The tiny spec and valid weights for it, written by the library.
fn tiny_model(dir: &Path, spec: &str) -> (String, String) {
    let spec_path = write(dir, "tiny.resnet", spec);
    let file =
        resnetc::span::SourceFile::new("tiny.resnet", spec.to_string(), resnetc::span::Syntax::Dsl);
    let compiled = resnetc::compile(&file).expect("the tiny spec is valid");
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = resnetc::runtime::ResNet::new(&vs.root(), &compiled).unwrap();
    let weights = dir.join("w.safetensors").display().to_string();
    resnetc::runtime::weights::save(&vs, &weights).unwrap();
    (spec_path, weights)
}

fn valid_input(dir: &Path) -> String {
    write(
        dir,
        "x.safetensors",
        safetensors(&[("x", "F32", &[2, 3, 8, 8], &f32_bytes(2 * 3 * 8 * 8))]),
    )
}

/// `resnetc run` on the tiny network with these weights and input files.
fn run(spec: &str, weights: &str, input: &str, dir: &Path) -> Outcome {
    let out = dir.join("y.safetensors").display().to_string();
    resnetc(&[
        "run",
        spec,
        "--weights",
        weights,
        "--input",
        input,
        "-o",
        &out,
        "--device",
        "cpu",
    ])
}

fn mkfifo(path: &Path) -> bool {
    Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

// ---------------------------------------------------------------- weights (run) ----

#[test]
fn valid_files_run() {
    let dir = scratch("valid");
    let (spec, w) = tiny_model(&dir, TINY);
    let out = run(&spec, &w, &valid_input(&dir), &dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("wrote logits [2, 3]"), "{}", out.stderr);
}

#[test]
fn weights_truncated() {
    let dir = scratch("w-trunc");
    let (spec, w) = tiny_model(&dir, TINY);
    let bytes = std::fs::read(&w).unwrap();
    let cut = write(&dir, "cut.safetensors", &bytes[..bytes.len() / 2]);
    assert_refused(
        &run(&spec, &cut, &valid_input(&dir), &dir),
        &cut,
        &["truncated"],
    );
    let tiny = write(&dir, "tiny.safetensors", &bytes[..5]);
    assert_refused(
        &run(&spec, &tiny, &valid_input(&dir), &dir),
        &tiny,
        &["fewer than the 8"],
    );
}

#[test]
fn weights_header_length_of_2_pow_63() {
    let dir = scratch("w-2p63");
    let (spec, w) = tiny_model(&dir, TINY);
    let mut bytes = std::fs::read(&w).unwrap();
    bytes[..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    let bad = write(&dir, "huge-header.safetensors", bytes);
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["header length", "9223372036854775808"],
    );
}

#[test]
fn weights_header_longer_than_the_file() {
    let dir = scratch("w-hdr-long");
    let (spec, _) = tiny_model(&dir, TINY);
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend(b"{\"a\":");
    let bad = write(&dir, "short.safetensors", bytes);
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["truncated", "1000 bytes"],
    );
}

#[test]
fn weights_claiming_more_data_than_the_file_holds() {
    let dir = scratch("w-claims");
    let (spec, _) = tiny_model(&dir, TINY);
    let mut bytes = header_only("conv1.weight", "F32", &[1 << 20, 1 << 20], 4 << 40);
    bytes.extend([0u8; 64]);
    let bad = write(&dir, "claims.safetensors", bytes);
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["truncated", "conv1.weight"],
    );
}

#[test]
fn weights_with_a_huge_tensor_in_a_sparse_file_are_refused_before_reading() {
    let dir = scratch("w-sparse");
    let (spec, _) = tiny_model(&dir, TINY);
    // 16 GiB that a reader of the whole file would allocate; the header alone refuses it.
    let bad = sparse(
        &dir,
        "sparse.safetensors",
        &header_only("conv1.weight", "F32", &[1 << 32], 16 << 30),
        16 << 30,
    );
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["conv1.weight", "[4294967296] f32"],
    );
}

#[test]
fn weights_zero_bytes_and_text_named_safetensors() {
    let dir = scratch("w-text");
    let (spec, _) = tiny_model(&dir, TINY);
    let empty = write(&dir, "empty.safetensors", b"");
    assert_refused(
        &run(&spec, &empty, &valid_input(&dir), &dir),
        &empty,
        &["0 bytes"],
    );
    let text = write(
        &dir,
        "text.safetensors",
        b"these are not the weights you are looking for\n",
    );
    assert_refused(
        &run(&spec, &text, &valid_input(&dir), &dir),
        &text,
        &["not a valid safetensors file"],
    );
    let json = write(&dir, "json.safetensors", {
        let mut b = 7u64.to_le_bytes().to_vec();
        b.extend(b"[1,2,3]");
        b
    });
    assert_refused(
        &run(&spec, &json, &valid_input(&dir), &dir),
        &json,
        &["not a JSON object"],
    );
}

#[test]
fn weights_cut_pytorch_checkpoint() {
    let dir = scratch("w-pickle");
    let (spec, _) = tiny_model(&dir, TINY);
    let zip = write(
        &dir,
        "model.safetensors",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl",
    );
    assert_refused(
        &run(&spec, &zip, &valid_input(&dir), &dir),
        &zip,
        &["cannot import", "not a readable zip archive"],
    );
}

#[test]
fn weights_of_integer_dtype_or_wrong_shape() {
    let dir = scratch("w-dtype");
    let (spec, w) = tiny_model(&dir, TINY);
    // Every tensor as i64: refused (f32 variables take only floating-point tensors).
    let tensors = resnetc::runtime::weights::read_tensors(&w).unwrap();
    let ints: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_kind(tch::Kind::Int64)))
        .collect();
    let int_path = dir.join("ints.safetensors").display().to_string();
    resnetc::runtime::weights::write_tensors(&int_path, &ints).unwrap();
    assert_refused(
        &run(&spec, &int_path, &valid_input(&dir), &dir),
        &int_path,
        &["fc.weight: network [3, 4] f32, file [3, 4] i64"],
    );
    // fc.weight transposed.
    let shaped: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                if n == "fc.weight" {
                    t.tr().contiguous()
                } else {
                    t.shallow_clone()
                },
            )
        })
        .collect();
    let shape_path = dir.join("shape.safetensors").display().to_string();
    resnetc::runtime::weights::write_tensors(&shape_path, &shaped).unwrap();
    assert_refused(
        &run(&spec, &shape_path, &valid_input(&dir), &dir),
        &shape_path,
        &["fc.weight: network [3, 4] f32, file [4, 3] f32"],
    );
    // f64 weights convert, as PyTorch's load_state_dict does.
    let doubles: Vec<(String, tch::Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                if t.is_floating_point() {
                    t.to_kind(tch::Kind::Double)
                } else {
                    t.shallow_clone()
                },
            )
        })
        .collect();
    let f64_path = dir.join("f64.safetensors").display().to_string();
    resnetc::runtime::weights::write_tensors(&f64_path, &doubles).unwrap();
    let out = run(&spec, &f64_path, &valid_input(&dir), &dir);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn weights_of_a_dtype_libtorch_lacks() {
    let dir = scratch("w-f8");
    let (spec, _) = tiny_model(&dir, TINY);
    let bad = write(
        &dir,
        "f8.safetensors",
        safetensors(&[("fc.bias", "F8_E4M3", &[3], &[0, 0, 0])]),
    );
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["fc.bias", "F8_E4M3"],
    );
}

#[test]
fn weights_with_overlapping_or_trailing_data() {
    let dir = scratch("w-overlap");
    let (spec, _) = tiny_model(&dir, TINY);
    let header = serde_json::to_vec(&serde_json::json!({
        "fc.bias": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
        "bn1.bias": {"dtype": "F32", "shape": [3], "data_offsets": [4, 16]},
    }))
    .unwrap();
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header);
    bytes.extend([0u8; 16]);
    let bad = write(&dir, "overlap.safetensors", bytes);
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["gap or overlap"],
    );
    let mut trailing = safetensors(&[("fc.bias", "F32", &[3], &f32_bytes(3))]);
    trailing.extend(b"junk");
    let bad = write(&dir, "trailing.safetensors", trailing);
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["4 bytes follow"],
    );
    let bad = write(
        &dir,
        "bad-count.safetensors",
        safetensors(&[("fc.bias", "F32", &[4], &f32_bytes(3))]),
    );
    assert_refused(
        &run(&spec, &bad, &valid_input(&dir), &dir),
        &bad,
        &["needs 16 bytes", "span 12 bytes"],
    );
}

#[test]
fn weights_that_are_a_fifo_a_device_or_a_directory() {
    let dir = scratch("w-fifo");
    let (spec, _) = tiny_model(&dir, TINY);
    let fifo = dir.join("fifo.safetensors");
    if mkfifo(&fifo) {
        let fifo = fifo.display().to_string();
        assert_refused(
            &run(&spec, &fifo, &valid_input(&dir), &dir),
            &fifo,
            &["FIFO"],
        );
    }
    #[cfg(unix)]
    assert_refused(
        &run(&spec, "/dev/zero", &valid_input(&dir), &dir),
        "/dev/zero",
        &["a device"],
    );
    let sub = dir.join("folder.safetensors");
    std::fs::create_dir_all(&sub).unwrap();
    let sub = sub.display().to_string();
    assert_refused(
        &run(&spec, &sub, &valid_input(&dir), &dir),
        &sub,
        &["a directory"],
    );
}

#[test]
fn weights_for_predict_and_bench() {
    let dir = scratch("w-predict");
    let (spec, w) = tiny_model(&dir, TINY);
    let bytes = std::fs::read(&w).unwrap();
    let cut = write(&dir, "cut.safetensors", &bytes[..bytes.len() - 7]);
    let img = dir.join("ok.png");
    tch::vision::image::save(
        &tch::Tensor::zeros([3, 8, 8], (tch::Kind::Uint8, tch::Device::Cpu)),
        &img,
    )
    .unwrap();
    let out = resnetc(&[
        "predict",
        &spec,
        "--weights",
        &cut,
        img.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_refused(&out, &cut, &["truncated"]);
    let out = resnetc(&[
        "bench",
        &spec,
        "--weights",
        &cut,
        "--device",
        "cpu",
        "--iters",
        "1",
    ]);
    assert_refused(&out, &cut, &["truncated"]);
}

// ------------------------------------------------------------------ run input ----

#[test]
fn input_of_integer_dtype() {
    let dir = scratch("x-i64");
    let (spec, w) = tiny_model(&dir, TINY);
    let x = write(
        &dir,
        "x.safetensors",
        safetensors(&[("x", "I64", &[1, 3, 8, 8], &[0u8; 8 * 192])]),
    );
    assert_refused(
        &run(&spec, &w, &x, &dir),
        &x,
        &["dtype i64", "floating-point"],
    );
}

#[test]
fn input_of_wrong_rank_channels_or_empty_batch() {
    let dir = scratch("x-shape");
    let (spec, w) = tiny_model(&dir, TINY);
    let x = write(
        &dir,
        "rank3.safetensors",
        safetensors(&[("x", "F32", &[3, 8, 8], &f32_bytes(192))]),
    );
    assert_refused(
        &run(&spec, &w, &x, &dir),
        &x,
        &["shape [3, 8, 8]", "[N, 3, H, W]"],
    );
    let x = write(
        &dir,
        "c5.safetensors",
        safetensors(&[("x", "F32", &[1, 5, 8, 8], &f32_bytes(320))]),
    );
    assert_refused(&run(&spec, &w, &x, &dir), &x, &["shape [1, 5, 8, 8]"]);
    let x = write(
        &dir,
        "n0.safetensors",
        safetensors(&[("x", "F32", &[0, 3, 8, 8], &[])]),
    );
    assert_refused(&run(&spec, &w, &x, &dir), &x, &["shape [0, 3, 8, 8]"]);
    let x = write(
        &dir,
        "two.safetensors",
        safetensors(&[
            ("a", "F32", &[1], &f32_bytes(1)),
            ("b", "F32", &[1], &f32_bytes(1)),
        ]),
    );
    assert_refused(
        &run(&spec, &w, &x, &dir),
        &x,
        &["exactly one tensor, found 2"],
    );
}

#[test]
fn input_truncated() {
    let dir = scratch("x-trunc");
    let (spec, w) = tiny_model(&dir, TINY);
    let bytes = std::fs::read(valid_input(&dir)).unwrap();
    let x = write(&dir, "cut.safetensors", &bytes[..bytes.len() - 100]);
    assert_refused(&run(&spec, &w, &x, &dir), &x, &["truncated", "`x`"]);
}

#[test]
fn input_over_the_size_limit_is_refused_before_reading() {
    let dir = scratch("x-huge");
    let (spec, w) = tiny_model(&dir, TINY);
    // 2^22 images of 3x8x8 f32: 3 GiB, in a sparse file.
    let bytes = (1u64 << 22) * 192 * 4;
    let x = sparse(
        &dir,
        "huge.safetensors",
        &header_only("x", "F32", &[1 << 22, 3, 8, 8], bytes),
        bytes,
    );
    assert_refused(
        &run(&spec, &w, &x, &dir),
        &x,
        &["more than the 1 GiB", "split the batch"],
    );
}

// -------------------------------------------------------------- predict images ----

fn predict(spec: &str, w: &str, image: &str) -> Outcome {
    resnetc(&[
        "predict",
        spec,
        "--weights",
        w,
        image,
        "--device",
        "cpu",
        "--top",
        "1",
    ])
}

/// A PNG file whose IHDR declares `w` x `h` pixels, with a little compressed data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        c.extend(crc32(&[kind.as_slice(), data].concat()).to_be_bytes());
        c
    }
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    // zlib stream of 1000 zero bytes, stored (not compressed).
    let mut z = vec![0x78, 0x01, 0x01, 0xe8, 0x03, 0x17, 0xfc];
    z.extend([0u8; 1000]);
    z.extend([0x03, 0xe8, 0x00, 0x01]); // Adler-32 of 1000 zeros.
    png.extend(chunk(b"IDAT", &z));
    png.extend(chunk(b"IEND", &[]));
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn save_image(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    let t = tch::Tensor::arange(3 * 16 * 16, (tch::Kind::Int64, tch::Device::Cpu))
        .remainder(251)
        .to_kind(tch::Kind::Uint8)
        .view([3, 16, 16]);
    tch::vision::image::save(&t, &p).unwrap();
    p.display().to_string()
}

#[test]
fn images_that_decode() {
    let dir = scratch("img-ok");
    let (spec, w) = tiny_model(&dir, TINY);
    for name in ["ok.png", "ok.jpg", "ok.bmp", "ok.tga"] {
        let p = save_image(&dir, name);
        let out = predict(&spec, &w, &p);
        assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
        assert!(out.stdout.contains(&p), "{}", out.stdout);
    }
}

#[test]
fn image_text_file_named_png() {
    let dir = scratch("img-text");
    let (spec, w) = tiny_model(&dir, TINY);
    let p = write(&dir, "cat.png", "this is a cat, honestly\n");
    assert_refused(
        &predict(&spec, &w, &p),
        &p,
        &["not a PNG image", "`this is "],
    );
    let p = write(&dir, "cat.webp", "RIFF....WEBPVP8 ");
    assert_refused(
        &predict(&spec, &w, &p),
        &p,
        &["not an image in a format resnetc reads"],
    );
}

#[test]
fn image_zero_bytes() {
    let dir = scratch("img-empty");
    let (spec, w) = tiny_model(&dir, TINY);
    let p = write(&dir, "empty.jpg", b"");
    assert_refused(&predict(&spec, &w, &p), &p, &["empty (0 bytes)"]);
}

#[test]
fn image_truncated_png_and_jpeg() {
    let dir = scratch("img-trunc");
    let (spec, w) = tiny_model(&dir, TINY);
    for (name, cut_name) in [("ok.png", "cut.png"), ("ok.jpg", "cut.jpg")] {
        let bytes = std::fs::read(save_image(&dir, name)).unwrap();
        let p = write(&dir, cut_name, &bytes[..bytes.len() / 2]);
        assert_refused(
            &predict(&spec, &w, &p),
            &p,
            &["cannot decode", "stb_image", "truncated or corrupt"],
        );
        let p = write(&dir, &format!("header-{cut_name}"), &bytes[..10]);
        assert_refused(&predict(&spec, &w, &p), &p, &["header is truncated"]);
    }
}

#[test]
fn image_declaring_huge_dimensions_is_refused_before_decoding() {
    let dir = scratch("img-huge");
    let (spec, w) = tiny_model(&dir, TINY);
    let p = write(&dir, "huge.png", png_header(100_000, 100_000));
    assert_refused(
        &predict(&spec, &w, &p),
        &p,
        &["declares 100000x100000 pixels", "scale the image down"],
    );
    // Under stb_image's own limit, over resnetc's.
    let p = write(&dir, "big.png", png_header(9000, 9000));
    assert_refused(&predict(&spec, &w, &p), &p, &["declares 9000x9000 pixels"]);
    let p = write(&dir, "flat.png", png_header(0, 10));
    assert_refused(&predict(&spec, &w, &p), &p, &["empty image (0x10)"]);
}

#[test]
fn image_whose_content_differs_from_its_extension() {
    let dir = scratch("img-ext");
    let (spec, w) = tiny_model(&dir, TINY);
    let jpeg = std::fs::read(save_image(&dir, "ok.jpg")).unwrap();
    let p = write(&dir, "photo.png", jpeg);
    assert_refused(
        &predict(&spec, &w, &p),
        &p,
        &["holds a JPEG image, not PNG", "rename it to .jpg"],
    );
}

#[test]
fn image_that_is_a_fifo_or_a_directory() {
    let dir = scratch("img-fifo");
    let (spec, w) = tiny_model(&dir, TINY);
    let fifo = dir.join("pipe.png");
    if mkfifo(&fifo) {
        let fifo = fifo.display().to_string();
        assert_refused(&predict(&spec, &w, &fifo), &fifo, &["FIFO"]);
    }
    let sub = dir.join("folder.png");
    std::fs::create_dir_all(&sub).unwrap();
    let sub = sub.display().to_string();
    assert_refused(&predict(&spec, &w, &sub), &sub, &["a directory"]);
}

#[test]
fn class_names_file_hostile() {
    let dir = scratch("labels");
    let (spec, w) = tiny_model(&dir, TINY);
    let img = save_image(&dir, "ok.png");
    #[cfg(unix)]
    {
        let out = resnetc(&[
            "predict",
            &spec,
            "--weights",
            &w,
            &img,
            "--device",
            "cpu",
            "--labels",
            "/dev/zero",
        ]);
        assert_refused(&out, "/dev/zero", &["a device"]);
    }
    let bad = write(&dir, "labels.txt", b"cat\n\xff\xfe\ndog\n");
    let out = resnetc(&[
        "predict",
        &spec,
        "--weights",
        &w,
        &img,
        "--device",
        "cpu",
        "--labels",
        &bad,
    ]);
    assert_refused(&out, &bad, &["not UTF-8"]);
    // Terminal escapes in names are shown escaped.
    let esc = write(&dir, "escapes.txt", "a\x1b[2Jb\nc\nd\n");
    let out = resnetc(&[
        "predict",
        &spec,
        "--weights",
        &w,
        &img,
        "--device",
        "cpu",
        "--labels",
        &esc,
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
}

// ------------------------------------------------------------ IDX data, folders ----

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(data);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `resnetc eval` on Fashion-MNIST under `home` (only the test files are read).
fn eval_fmnist(home: &Path, spec: &str, w: &str) -> Outcome {
    resnetc_env(
        &[
            "eval",
            spec,
            "--weights",
            w,
            "--data",
            "fashion-mnist",
            "--device",
            "cpu",
        ],
        &[("RESNETC_HOME", home)],
    )
}

/// A Fashion-MNIST folder under `home` with the given test files.
fn fmnist_dir(home: &Path, images: &[u8], labels: &[u8], gz: bool) -> (String, String) {
    let dir = home.join("data/fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let suffix = if gz { ".gz" } else { "" };
    let i = write(&dir, &format!("t10k-images-idx3-ubyte{suffix}"), images);
    let l = write(&dir, &format!("t10k-labels-idx1-ubyte{suffix}"), labels);
    (i, l)
}

#[test]
fn idx_header_claiming_a_huge_count() {
    let home = scratch("idx-huge");
    let (spec, w) = tiny_model(&home, TINY_GREY);
    let (images, _) = fmnist_dir(
        &home,
        &idx(0x803, &[u32::MAX, 28, 28], &[0; 784]),
        &idx(0x801, &[1], &[0]),
        false,
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &w),
        &images,
        &["unusable IDX header", "more than the 4 GiB"],
    );
}

#[test]
fn idx_gzipped_header_claiming_more_than_the_stream_holds() {
    let home = scratch("idx-gz");
    let (spec, w) = tiny_model(&home, TINY_GREY);
    // 3 GiB declared, 784 bytes present: read as a stream, nothing reserved up front.
    let (images, _) = fmnist_dir(
        &home,
        &gzip(&idx(0x803, &[4_000_000, 28, 28], &[0; 784])),
        &gzip(&idx(0x801, &[1], &[0])),
        true,
    );
    assert_refused(&eval_fmnist(&home, &spec, &w), &images, &["truncated"]);
}

#[test]
fn idx_truncated_or_of_empty_images() {
    let home = scratch("idx-trunc");
    let (spec, w) = tiny_model(&home, TINY_GREY);
    let (images, _) = fmnist_dir(
        &home,
        &idx(0x803, &[3, 28, 28], &[0; 784]),
        &idx(0x801, &[3], &[0, 1, 2]),
        false,
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &w),
        &images,
        &["truncated", &(16 + 3 * 784).to_string()],
    );
    let (images, _) = fmnist_dir(
        &home,
        &idx(0x803, &[3, 0, 28], &[]),
        &idx(0x801, &[3], &[0, 1, 2]),
        false,
    );
    assert_refused(&eval_fmnist(&home, &spec, &w), &images, &["0x28"]);
}

#[test]
fn idx_that_is_text_or_a_fifo() {
    let home = scratch("idx-text");
    let (spec, w) = tiny_model(&home, TINY_GREY);
    let (images, _) = fmnist_dir(
        &home,
        b"<html>404 Not Found</html>",
        &idx(0x801, &[1], &[0]),
        false,
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &w),
        &images,
        &["not an IDX images file"],
    );
    std::fs::remove_file(&images).unwrap();
    if mkfifo(Path::new(&images)) {
        assert_refused(&eval_fmnist(&home, &spec, &w), &images, &["FIFO"]);
    }
}

#[test]
fn image_folder_with_a_text_file_named_png() {
    let home = scratch("folder");
    let (spec, w) = tiny_model(&home, TINY);
    let data = home.join("pets");
    // Three classes, as the tiny model has: the weights fit, and the images are read as
    // the evaluation streams them.
    for class in ["bird", "cat", "dog"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..10 {
            save_image(&data.join(class), &format!("{i}.png"));
        }
    }
    // The tenth image of each class is held out for testing.
    let bad = write(&data.join("dog"), "9.png", "not a dog");
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            &spec,
            "--weights",
            &w,
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        resnetc(&args)
    };
    assert_refused(&eval(&[]), &bad, &["not a PNG image", "--on-bad-image skip"]);
    // Skipped on request, and counted.
    let out = eval(&["--on-bad-image", "skip"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("of 2 ") && out.stdout.contains("1 unreadable images skipped"),
        "{}",
        out.stdout
    );
}

// -------------------------------------------------------- checkpoints, eval weights ----

#[test]
fn eval_weights_truncated_garbage_or_of_wrong_dtype() {
    let home = scratch("eval-w");
    let (spec, w) = tiny_model(&home, TINY_GREY);
    fmnist_dir(
        &home,
        &idx(0x803, &[2, 28, 28], &[0; 2 * 784]),
        &idx(0x801, &[2], &[0, 1]),
        false,
    );
    let ok = eval_fmnist(&home, &spec, &w);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    let bytes = std::fs::read(&w).unwrap();
    let cut = write(&home, "cut.safetensors", &bytes[..bytes.len() / 3]);
    assert_refused(&eval_fmnist(&home, &spec, &cut), &cut, &["truncated"]);
    let text = write(&home, "text.safetensors", "garbage");
    assert_refused(
        &eval_fmnist(&home, &spec, &text),
        &text,
        &["fewer than the 8"],
    );
    let huge = sparse(
        &home,
        "sparse.safetensors",
        &header_only("conv1.weight", "F32", &[1 << 32], 16 << 30),
        16 << 30,
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &huge),
        &huge,
        &[
            "conv1.weight",
            "[4294967296] f32, expected [4, 1, 3, 3] f32",
        ],
    );
    let zip = write(
        &home,
        "model.pth",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl",
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &zip),
        &zip,
        &["cannot import", "not a readable zip archive"],
    );
    let ints = write(
        &home,
        "ints.safetensors",
        safetensors(&[("conv1.weight", "I32", &[4, 1, 3, 3], &[0u8; 144])]),
    );
    assert_refused(
        &eval_fmnist(&home, &spec, &ints),
        &ints,
        &["i32, expected [4, 1, 3, 3] f32"],
    );
}

#[test]
fn resume_from_a_truncated_or_garbage_checkpoint() {
    let home = scratch("resume");
    let (spec, _) = tiny_model(&home, TINY_GREY);
    let dir = home.join("data/fashion-mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let pixels: Vec<u8> = (0..4 * 784).map(|i| (i % 251) as u8).collect();
    write(
        &dir,
        "train-images-idx3-ubyte",
        idx(0x803, &[4, 28, 28], &pixels),
    );
    write(
        &dir,
        "train-labels-idx1-ubyte",
        idx(0x801, &[4], &[0, 1, 2, 3]),
    );
    write(
        &dir,
        "t10k-images-idx3-ubyte",
        idx(0x803, &[2, 28, 28], &pixels[..2 * 784]),
    );
    write(&dir, "t10k-labels-idx1-ubyte", idx(0x801, &[2], &[0, 1]));
    let run_dir = home.join("run");
    let train = |epochs: &str| {
        resnetc_env(
            &[
                "train",
                &spec,
                "--data",
                "fashion-mnist",
                "--out",
                run_dir.to_str().unwrap(),
                "--epochs",
                epochs,
                "--batch-size",
                "2",
                "--device",
                "cpu",
                "--resume",
            ],
            &[("RESNETC_HOME", &home)],
        )
    };
    let first = train("1");
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let ckpt = run_dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    let ckpt_name = ckpt.display().to_string();
    std::fs::write(&ckpt, &bytes[..bytes.len() - 40]).unwrap();
    assert_refused(&train("2"), &ckpt_name, &["truncated"]);
    std::fs::write(&ckpt, b"\x00\x01garbage").unwrap();
    assert_refused(&train("2"), &ckpt_name, &["header length"]);
    // A checkpoint whose run.history claims more epochs than run.epoch says.
    let mut entries: Vec<(String, tch::Tensor)> = Vec::new();
    {
        let ok = resnetc::runtime::tensor_file::TensorFile::open(Path::new(&write(
            &home,
            "ok-ckpt.safetensors",
            &bytes,
        )))
        .unwrap();
        for (n, t) in ok.read_all().unwrap() {
            let t = if n == "run.history" {
                tch::Tensor::zeros([1000, 6], (tch::Kind::Double, tch::Device::Cpu))
            } else {
                t
            };
            entries.push((n, t));
        }
    }
    tch::Tensor::write_safetensors(&entries, &ckpt).unwrap();
    assert_refused(
        &train("2"),
        &ckpt_name,
        &["run.history", "[1000, 6] f64, expected [1, 6] f64"],
    );
}

// ------------------------------------------------------------------ bench peak ----

#[test]
fn bench_never_reports_more_than_the_peak() {
    let dir = scratch("bench");
    let (spec, _) = tiny_model(&dir, TINY);
    let out = resnetc(&[
        "bench",
        &spec,
        "--device",
        "cpu",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let peak = v["peak_gflops"].as_f64().expect("a CPU peak");
    let fraction = v["peak_fraction"].as_f64().expect("a fraction");
    assert!(peak.is_finite() && peak > 0.0, "{v}");
    assert!((0.0..=1.0).contains(&fraction), "{v}");
    let assumption = v["peak_assumption"].as_str().unwrap();
    assert!(
        assumption.contains("measured") || assumption.contains("max clock"),
        "{assumption}"
    );
    assert!(!assumption.contains("cpu MHz"), "{assumption}");
}
