//! Links PETSc (Debian's `libpetsc-real3.18-dev`, PetscInt = i32, PetscScalar = f64) and
//! OpenMPI through pkg-config when the `petsc` feature is on, with an rpath so binaries run
//! without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var_os("CARGO_FEATURE_PETSC").is_none() {
        return;
    }
    for name in ["petsc", "ompi-c"] {
        match pkg_config::Config::new().probe(name) {
            Ok(lib) => {
                for dir in &lib.link_paths {
                    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
                }
            }
            Err(e) => panic!(
                "the `petsc` feature needs PETSc and OpenMPI found by pkg-config ({name}): {e}\n\
                 install them with `apt-get install libpetsc-real3.18-dev openmpi-bin` \
                 (scripts/setup.sh does this)"
            ),
        }
    }
}
