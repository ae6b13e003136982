//! Gives the tests an rpath to libtorch's `lib/` folder so they run without
//! LD_LIBRARY_PATH (as the root crate's build script does for `resnetc`).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let dir = std::fs::canonicalize(&dir).map(|p| p.display().to_string()).unwrap_or(dir);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
