//! Runs a model written by `resnetc export --format onnx` on ONNX Runtime: a batch of zeros
//! (or of pseudo-random values with `--random`) of the model's input shape, then prints the
//! logits' shape and each sample's argmax.
//!
//! ORT_DYLIB_PATH=~/.cache/resnetc/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.1.32.0 \
//!     cargo run --release -- model.onnx [--batch N] [--random] [--dump LOGITS.f32]
//!
//! `--dump` writes the logits as raw little-endian f32, to compare with another runtime.

use ndarray::{Array4, Axis};
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::TensorRef;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const USAGE: &str = "usage: ort-serve MODEL.onnx [--batch N] [--random] [--dump FILE]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or(USAGE)?;
    let flag = |name: &str| args.iter().position(|a| a == name).map(|i| args.get(i + 1));
    let batch: usize = match flag("--batch") {
        Some(v) => v.ok_or(USAGE)?.parse()?,
        None => 1,
    };
    let dump = flag("--dump").map(|v| v.ok_or(USAGE)).transpose()?;
    let random = args.iter().any(|a| a == "--random");

    // Loads the library named by ORT_DYLIB_PATH (else libonnxruntime.so on the loader's path).
    let env = ort::init().with_name("ort-serve").build()?;
    let mut session = Session::builder(&env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .commit_from_file(path)?;

    // The input is `input` [batch, C, H, W] with a symbolic batch (-1) unless exported with
    // --no-dynamic-batch.
    let input = &session.inputs()[0];
    let name = input.name().to_string();
    let shape = input
        .dtype()
        .tensor_shape()
        .ok_or("input is not a tensor")?
        .to_vec();
    let [_, c, h, w] = shape[..] else {
        return Err(format!("input `{name}` is {shape:?}, not NCHW").into());
    };
    let (c, h, w) = (c as usize, h as usize, w as usize);
    // --batch applies to a symbolic batch; a fixed one is kept.
    let n = usize::try_from(shape[0]).unwrap_or(batch);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let x = Array4::<f32>::from_shape_fn((n, c, h, w), |_| {
        if !random {
            return 0.0;
        }
        // xorshift64: values in [-1, 1), the same on every run.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    });

    let outputs = session.run(ort::inputs![name.as_str() => TensorRef::from_array_view(&x)?])?;
    let logits = outputs["logits"].try_extract_array::<f32>()?;
    println!("logits: {:?}", logits.shape());
    if let Some(file) = dump {
        let bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(file, bytes)?;
    }
    for (i, row) in logits.axis_iter(Axis(0)).enumerate() {
        let (best, value) = (row.iter().enumerate())
            .max_by(|a, b| a.1.total_cmp(b.1))
            .ok_or("no logits")?;
        println!("sample {i}: argmax {best} (logit {value:.6})");
    }
    Ok(())
}
