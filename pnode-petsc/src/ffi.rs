//! The raw C interface (PETSc 3.18, real scalars, 32-bit indices; OpenMPI).

use std::ffi::{c_char, c_int, c_void};

pub type PetscErrorCode = c_int;
pub type PetscInt = i32;
pub type PetscReal = f64;
pub type PetscScalar = f64;
pub type MpiComm = *mut c_void;

#[repr(C)]
pub struct OpaqueVec {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OpaqueMat {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OpaqueKsp {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OpaqueSnes {
    _private: [u8; 0],
}
#[repr(C)]
pub struct OpaquePc {
    _private: [u8; 0],
}
pub type Vec = *mut OpaqueVec;
pub type Mat = *mut OpaqueMat;
pub type Ksp = *mut OpaqueKsp;
pub type Snes = *mut OpaqueSnes;
pub type Pc = *mut OpaquePc;

/// `MatOperation` values from petscmat.h.
pub const MATOP_MULT: c_int = 3;
pub const MATOP_MULT_TRANSPOSE: c_int = 5;

pub type ErrorHandlerFn = unsafe extern "C" fn(
    MpiComm,
    c_int,
    *const c_char,
    *const c_char,
    PetscErrorCode,
    c_int,
    *const c_char,
    *mut c_void,
) -> PetscErrorCode;
pub type MatMultFn = unsafe extern "C" fn(Mat, Vec, Vec) -> PetscErrorCode;
pub type SnesFunctionFn = unsafe extern "C" fn(Snes, Vec, Vec, *mut c_void) -> PetscErrorCode;
pub type SnesJacobianFn = unsafe extern "C" fn(Snes, Vec, Mat, Mat, *mut c_void) -> PetscErrorCode;

unsafe extern "C" {
    /// OpenMPI's `MPI_COMM_SELF` is the address of this object.
    pub static mut ompi_mpi_comm_self: [u8; 0];

    pub fn PetscInitialize(
        argc: *mut c_int,
        args: *mut *mut *mut c_char,
        file: *const c_char,
        help: *const c_char,
    ) -> PetscErrorCode;
    /// Returns the error code without printing (errors become Rust `Result`s).
    pub fn PetscReturnErrorHandler(
        comm: MpiComm,
        line: c_int,
        func: *const c_char,
        file: *const c_char,
        code: PetscErrorCode,
        kind: c_int,
        message: *const c_char,
        ctx: *mut c_void,
    ) -> PetscErrorCode;
    pub fn PetscPushErrorHandler(
        handler: Option<ErrorHandlerFn>,
        ctx: *mut c_void,
    ) -> PetscErrorCode;
    pub fn PetscOptionsInsertString(options: *mut c_void, s: *const c_char) -> PetscErrorCode;

    pub fn VecCreateSeq(comm: MpiComm, n: PetscInt, v: *mut Vec) -> PetscErrorCode;
    pub fn VecDestroy(v: *mut Vec) -> PetscErrorCode;
    pub fn VecGetArray(v: Vec, a: *mut *mut PetscScalar) -> PetscErrorCode;
    pub fn VecRestoreArray(v: Vec, a: *mut *mut PetscScalar) -> PetscErrorCode;
    pub fn VecGetArrayRead(v: Vec, a: *mut *const PetscScalar) -> PetscErrorCode;
    pub fn VecRestoreArrayRead(v: Vec, a: *mut *const PetscScalar) -> PetscErrorCode;

    pub fn MatCreateShell(
        comm: MpiComm,
        m: PetscInt,
        n: PetscInt,
        big_m: PetscInt,
        big_n: PetscInt,
        ctx: *mut c_void,
        a: *mut Mat,
    ) -> PetscErrorCode;
    pub fn MatShellSetOperation(a: Mat, op: c_int, f: Option<MatMultFn>) -> PetscErrorCode;
    pub fn MatShellGetContext(a: Mat, ctx: *mut c_void) -> PetscErrorCode;
    pub fn MatDestroy(a: *mut Mat) -> PetscErrorCode;

    pub fn KSPCreate(comm: MpiComm, ksp: *mut Ksp) -> PetscErrorCode;
    pub fn KSPSetOperators(ksp: Ksp, a: Mat, p: Mat) -> PetscErrorCode;
    pub fn KSPGetPC(ksp: Ksp, pc: *mut Pc) -> PetscErrorCode;
    pub fn PCSetType(pc: Pc, t: *const c_char) -> PetscErrorCode;
    pub fn KSPSetTolerances(
        ksp: Ksp,
        rtol: PetscReal,
        abstol: PetscReal,
        dtol: PetscReal,
        maxits: PetscInt,
    ) -> PetscErrorCode;
    pub fn KSPSetFromOptions(ksp: Ksp) -> PetscErrorCode;
    pub fn KSPSolveTranspose(ksp: Ksp, b: Vec, x: Vec) -> PetscErrorCode;
    pub fn KSPGetConvergedReason(ksp: Ksp, reason: *mut c_int) -> PetscErrorCode;
    pub fn KSPGetIterationNumber(ksp: Ksp, its: *mut PetscInt) -> PetscErrorCode;
    pub fn KSPDestroy(ksp: *mut Ksp) -> PetscErrorCode;

    pub fn SNESCreate(comm: MpiComm, snes: *mut Snes) -> PetscErrorCode;
    pub fn SNESSetFunction(
        snes: Snes,
        r: Vec,
        f: Option<SnesFunctionFn>,
        ctx: *mut c_void,
    ) -> PetscErrorCode;
    pub fn SNESSetJacobian(
        snes: Snes,
        a: Mat,
        p: Mat,
        j: Option<SnesJacobianFn>,
        ctx: *mut c_void,
    ) -> PetscErrorCode;
    pub fn SNESSetTolerances(
        snes: Snes,
        abstol: PetscReal,
        rtol: PetscReal,
        stol: PetscReal,
        maxit: PetscInt,
        maxf: PetscInt,
    ) -> PetscErrorCode;
    pub fn SNESGetKSP(snes: Snes, ksp: *mut Ksp) -> PetscErrorCode;
    pub fn SNESSetFromOptions(snes: Snes) -> PetscErrorCode;
    pub fn SNESSolve(snes: Snes, b: Vec, x: Vec) -> PetscErrorCode;
    pub fn SNESGetConvergedReason(snes: Snes, reason: *mut c_int) -> PetscErrorCode;
    pub fn SNESGetIterationNumber(snes: Snes, its: *mut PetscInt) -> PetscErrorCode;
    pub fn SNESGetLinearSolveIterations(snes: Snes, its: *mut PetscInt) -> PetscErrorCode;
    pub fn SNESDestroy(snes: *mut Snes) -> PetscErrorCode;
}

/// `PETSC_COMM_SELF` (= OpenMPI's `MPI_COMM_SELF`).
pub fn comm_self() -> MpiComm {
    // Only the address of the extern static is taken, never its contents.
    std::ptr::addr_of_mut!(ompi_mpi_comm_self) as MpiComm
}
