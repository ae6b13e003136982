//! With the `torch` feature, give the binaries an rpath to libtorch's `lib/` folder so
//! they run without LD_LIBRARY_PATH. torch-sys (`links = "tch"`) hands its lib dir to
//! direct dependents as `DEP_TCH_LIBTORCH_LIB`.
//!
//! With a CUDA build of libtorch, also link `libtorch_cuda.so` explicitly: nothing in the
//! binary refers to its symbols (CUDA kernels register themselves when it loads), so the
//! linker's `--as-needed` drops it and libtorch then reports no CUDA device.
//!
//! With the `torch` feature, also compile `csrc/` (the fused batch norm + add + ReLU
//! training op, [`crate::runtime::fused`]) against libtorch's headers, with the ABI flag
//! torch-sys uses. Its loops (`bn_act_kernels.cpp`, no libtorch header) are built with
//! AVX2 and FMA at -O3 in every profile; the Rust side calls them only on a CPU that has
//! both.
//!
//! With a CUDA build of libtorch whose CUDA runtime headers can be found (the pip wheels'
//! `nvidia/cu*/include`, `$CUDA_HOME/include`, `/usr/local/cuda/include`), also compile
//! `csrc/cuda_graph.cpp` (CUDA graphs for the training step, [`crate::runtime::graph`]) and
//! set the cfg `resnetc_cuda_graphs`; without them the speed-up reports that it is missing.
//!
//! Always: compile the vendored ONNX schema (`proto/onnx/onnx.proto`) into Rust types for
//! `resnetc export --format onnx`, with protox (no system `protoc`) and prost-build.
fn main() {
    onnx_schema();
    println!("cargo::rustc-check-cfg=cfg(resnetc_fused_bn)");
    println!("cargo::rustc-check-cfg=cfg(resnetc_cuda_graphs)");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve symlinks (.libtorch -> the venv) so the rpath stays valid from any checkout.
        let dir = std::fs::canonicalize(&dir)
            .map(|p| p.display().to_string())
            .unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        let cuda = std::path::Path::new(&dir).join("libtorch_cuda.so").exists();
        if cuda {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
        fused_ops(std::path::Path::new(&dir), cuda);
    }
}

/// `csrc/autocast.cpp` (bfloat16 autocast) and, on x86-64, `csrc/bn_act.cpp` (the fused
/// batch norm's autograd function) with `csrc/bn_act_kernels.cpp` (its loops); the first
/// two against libtorch's headers.
fn fused_ops(lib_dir: &std::path::Path, cuda: bool) {
    for f in [
        "bn_act.cpp",
        "bn_act_kernels.cpp",
        "bn_act_kernels.h",
        "autocast.cpp",
        "cuda_graph.cpp",
        "error.h",
    ] {
        println!("cargo:rerun-if-changed=csrc/{f}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib_dir.join("../include");
    // torch-sys's default for a LIBTORCH install; PyTorch 2.11's wheels use the new ABI.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let x86_64 = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    // The glue first: static libraries are searched in the order given.
    let mut glue = cc::Build::new();
    glue.cpp(true)
        .file("csrc/autocast.cpp")
        .opt_level(2)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        // at::parallel_for is inline OpenMP in libtorch's headers: without this it runs on
        // one thread. torch-sys links libtorch's libgomp.
        .flag("-fopenmp")
        .flag_if_supported("-Wno-unused-parameter");
    if x86_64 {
        glue.file("csrc/bn_act.cpp");
    }
    if let Some(cuda_include) = cuda.then(|| cuda_headers(lib_dir)).flatten() {
        glue.file("csrc/cuda_graph.cpp").include(cuda_include);
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
        println!("cargo:rustc-cfg=resnetc_cuda_graphs");
    }
    glue.compile("resnetc_torch_ops");
    if !x86_64 {
        return; // the unfused operators are used
    }
    cc::Build::new()
        .cpp(true)
        .file("csrc/bn_act_kernels.cpp")
        .opt_level(3)
        .flag("-std=c++17")
        .flag("-mavx2")
        .flag("-mfma")
        .compile("resnetc_bn_act_kernels");
    println!("cargo:rustc-cfg=resnetc_fused_bn");
}

/// The folder holding the CUDA runtime's headers (`cuda_runtime.h` and the `crt/` headers
/// it includes) for libtorch in `lib_dir`: the pip wheels' own
/// (`site-packages/nvidia/cu*/include`, where scripts/setup.sh adds `crt/`), else the
/// toolkit's.
fn cuda_headers(lib_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let nvidia = lib_dir.join("../../nvidia");
    let mut candidates: Vec<std::path::PathBuf> = std::fs::read_dir(&nvidia)
        .map(|dir| dir.flatten().map(|e| e.path().join("include")).collect())
        .unwrap_or_default();
    candidates.sort();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(std::path::Path::new(&home).join("include"));
    }
    candidates.push("/usr/local/cuda/include".into());
    candidates
        .into_iter()
        .find(|dir| dir.join("cuda_runtime.h").exists() && dir.join("crt/host_config.h").exists())
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
