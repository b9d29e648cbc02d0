//! Hand-written FFI to PETSc 3.18 (Debian's `libpetsc-real3.18-dev`: `PetscInt = i32`,
//! `PetscScalar = f64`) for pnode's implicit stages: a SNES Newton solve with a shell Jacobian
//! whose product is a caller's JVP, and a KSP transposed solve whose product is a caller's VJP.
//!
//! Facts this crate enforces (learned on this machine type): PETSc is initialized once per
//! process and never finalized (it cannot be re-initialized); it is not thread-safe, so every
//! call goes through one process-wide lock; `-no_signal_handler` keeps Rust's signal handling;
//! `OMPI_MCA_pml=ob1` makes OpenMPI start fast; a panic inside a callback is caught and turned
//! into a PETSc error code (unwinding through C aborts).
//!
//! Without the `petsc` feature the crate is empty, so default builds need no PETSc.
#![allow(unsafe_code)]

#[cfg(feature = "petsc")]
mod ffi;
#[cfg(feature = "petsc")]
mod solver;

#[cfg(feature = "petsc")]
pub use solver::{Error, JvpFn, KspStats, SnesStats, StageSolver};
