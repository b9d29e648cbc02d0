//! With the `torch` feature: an rpath to the libtorch that torch-sys linked
//! (`DEP_TCH_LIBTORCH_LIB`), so this crate's tests run without `LD_LIBRARY_PATH`, and the same
//! directory passed on to crates that depend on `pnode` as `DEP_PNODE_LIBTORCH_LIB` (an rpath
//! set here does not reach their binaries; their build script adds it, see
//! `examples/neural-ode-macro/build.rs`). Without the feature: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "torch")]
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:libtorch_lib={lib}");
    }
}
