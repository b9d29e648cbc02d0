//! With the `torch` feature: an rpath to the libtorch that torch-sys linked
//! (`DEP_TCH_LIBTORCH_LIB`), so the pnodec binary runs without `LD_LIBRARY_PATH`. Without the
//! feature: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "torch")]
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
