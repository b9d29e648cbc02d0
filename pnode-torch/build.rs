//! With the `torch` feature: compiles the C++ autograd shim (`csrc/shim.cpp`) against the same
//! libtorch that torch-sys found (`DEP_TCH_LIBTORCH_LIB`, from the PyTorch in the active
//! Python, `LIBTORCH_USE_PYTORCH=1`), and adds an rpath to that libtorch to this package's
//! binaries, tests and examples so they run without `LD_LIBRARY_PATH`. Without the feature:
//! nothing.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "torch")]
    torch::build();
}

#[cfg(feature = "torch")]
mod torch {
    use std::path::PathBuf;
    use std::process::Command;

    /// `torch._C._GLIBCXX_USE_CXX11_ABI` of the Python torch-sys used (it runs `python` in a
    /// virtual environment, else `python3`); `LIBTORCH_CXX11_ABI` overrides, default 1.
    fn cxx11_abi() -> String {
        println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
        if let Ok(abi) = std::env::var("LIBTORCH_CXX11_ABI") {
            return abi;
        }
        let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        Command::new(python)
            .args([
                "-c",
                "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))",
            ])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| "1".to_owned())
    }

    pub fn build() {
        let lib = PathBuf::from(
            std::env::var("DEP_TCH_LIBTORCH_LIB")
                .expect("torch-sys did not report its libtorch directory (DEP_TCH_LIBTORCH_LIB)"),
        );
        let root = lib
            .parent()
            .expect("libtorch lib directory has a parent")
            .to_path_buf();
        println!("cargo:rerun-if-changed=csrc/shim.cpp");
        cc::Build::new()
            .cpp(true)
            .pic(true)
            .warnings(false)
            .include(root.join("include"))
            .include(root.join("include/torch/csrc/api/include"))
            .flag("-std=c++17")
            .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={}", cxx11_abi()))
            .flag("-DGLOG_USE_GLOG_EXPORT")
            .file("csrc/shim.cpp")
            .compile("pnode_torch_shim");
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-lib=dylib=torch_cpu");
        println!("cargo:rustc-link-lib=dylib=c10");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
