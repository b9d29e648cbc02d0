//! With the `torch` feature: an rpath to the libtorch `pnode` was built against
//! (`DEP_PNODE_LIBTORCH_LIB`, from pnode's build script), so `tch_spiral` and the tests run
//! without `LD_LIBRARY_PATH`. Without the feature the variable is unset: nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Ok(lib) = std::env::var("DEP_PNODE_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
