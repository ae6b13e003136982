//! With the `torch` feature, give the binaries an rpath to libtorch's `lib/` folder so
//! they run without LD_LIBRARY_PATH. torch-sys (`links = "tch"`) hands its lib dir to
//! direct dependents as `DEP_TCH_LIBTORCH_LIB`.
//!
//! With a CUDA build of libtorch, also link `libtorch_cuda.so` explicitly: nothing in the
//! binary refers to its symbols (CUDA kernels register themselves when it loads), so the
//! linker's `--as-needed` drops it and libtorch then reports no CUDA device.
//!
//! Always: compile the vendored ONNX schema (`proto/onnx/onnx.proto`) into Rust types for
//! `resnetc export --format onnx`, with protox (no system `protoc`) and prost-build.
fn main() {
    onnx_schema();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve symlinks (.libtorch -> the venv) so the rpath stays valid from any checkout.
        let dir = std::fs::canonicalize(&dir)
            .map(|p| p.display().to_string())
            .unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        if std::path::Path::new(&dir).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}

fn onnx_schema() {
    println!("cargo:rerun-if-changed=proto/onnx/onnx.proto");
    let fds = protox::compile(["onnx/onnx.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("cannot compile proto/onnx/onnx.proto: {e}"));
    // The schema's comments are not Rust documentation (indented text would become doc tests).
    prost_build::Config::new()
        .disable_comments(["."])
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("cannot generate the ONNX types: {e}"));
}
