//! Safe wrappers: process-wide initialization and lock, RAII objects, and the two solves pnode
//! needs — a SNES Newton solve with a matrix-free Jacobian and a KSP transposed solve.

use std::ffi::{CString, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::ffi::{self, PetscErrorCode};

/// What can go wrong in a PETSc solve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A PETSc call returned an error code.
    #[error("PETSc call {call} failed with error code {code}")]
    Call {
        /// The function.
        call: &'static str,
        /// Its `PetscErrorCode`.
        code: i32,
    },
    /// SNES stopped without converging.
    #[error("SNES did not converge (reason {reason}) after {iterations} iterations")]
    SnesDiverged {
        /// `SNESConvergedReason` (negative).
        reason: i32,
        /// Newton iterations done.
        iterations: i32,
    },
    /// KSP stopped without converging.
    #[error("KSP did not converge (reason {reason}) after {iterations} iterations")]
    KspDiverged {
        /// `KSPConvergedReason` (negative).
        reason: i32,
        /// Krylov iterations done.
        iterations: i32,
    },
    /// A callback panicked; the panic was caught at the C boundary.
    #[error("a pnode callback panicked inside PETSc")]
    CallbackPanicked,
    /// PETSc could not be initialized.
    #[error("PETSc initialization failed: {0}")]
    Init(String),
}

/// Iterations of a SNES solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnesStats {
    /// Newton iterations.
    pub iterations: u32,
    /// Krylov iterations over all Newton steps.
    pub linear_iterations: u32,
}

/// Iterations of a KSP solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KspStats {
    /// Krylov iterations.
    pub iterations: u32,
}

/// Error code returned by callbacks that failed (`PETSC_ERR_USER`).
const ERR_USER: PetscErrorCode = 83;

fn check(call: &'static str, code: PetscErrorCode) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::Call { call, code })
    }
}

static INIT: OnceLock<Result<(), String>> = OnceLock::new();
static LOCK: Mutex<()> = Mutex::new(());

/// Initialize PETSc once (with `-no_signal_handler` and the options in `PNODE_PETSC_OPTIONS`,
/// e.g. `-snes_monitor -ksp_type bcgs`) and take the process-wide lock.
fn lock() -> Result<MutexGuard<'static, ()>, Error> {
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let init = INIT.get_or_init(|| {
        if std::env::var_os("OMPI_MCA_pml").is_none() {
            // SAFETY: set once, before MPI starts and before any thread of ours reads it;
            // OpenMPI's ob1 layer starts in ~60 ms instead of ~300 ms.
            unsafe { std::env::set_var("OMPI_MCA_pml", "ob1") };
        }
        let mut args: Vec<CString> = ["pnode", "-no_signal_handler"]
            .iter()
            .map(|s| CString::new(*s).expect("no NUL"))
            .collect();
        let mut argv: Vec<*mut std::ffi::c_char> =
            args.iter_mut().map(|s| s.as_ptr() as *mut _).collect();
        argv.push(ptr::null_mut());
        let mut argc = (argv.len() - 1) as c_int;
        let mut argv_ptr = argv.as_mut_ptr();
        // The strings must outlive PETSc (it keeps argv): leak them once.
        std::mem::forget(args);
        std::mem::forget(argv);
        // SAFETY: argc/argv point to valid, leaked, NUL-terminated strings; called once.
        let code =
            unsafe { ffi::PetscInitialize(&mut argc, &mut argv_ptr, ptr::null(), ptr::null()) };
        if code != 0 {
            return Err(format!("PetscInitialize returned {code}"));
        }
        // Errors come back as codes (turned into `Error`s) instead of printed tracebacks.
        // SAFETY: PETSc is initialized; the handler is PETSc's own.
        let code = unsafe {
            ffi::PetscPushErrorHandler(Some(ffi::PetscReturnErrorHandler), ptr::null_mut())
        };
        if code != 0 {
            return Err(format!("PetscPushErrorHandler returned {code}"));
        }
        if let Ok(options) = std::env::var("PNODE_PETSC_OPTIONS") {
            let c = CString::new(options).map_err(|e| e.to_string())?;
            // SAFETY: PETSc is initialized; the default options database is NULL.
            let code = unsafe { ffi::PetscOptionsInsertString(ptr::null_mut(), c.as_ptr()) };
            if code != 0 {
                return Err(format!("PetscOptionsInsertString returned {code}"));
            }
        }
        Ok(())
    });
    init.clone().map_err(Error::Init)?;
    Ok(guard)
}

/// An owned sequential vector.
struct PVec(ffi::Vec);

impl PVec {
    fn new(n: usize) -> Result<Self, Error> {
        let mut v = ptr::null_mut();
        // SAFETY: PETSc is initialized (the caller holds the lock).
        check("VecCreateSeq", unsafe {
            ffi::VecCreateSeq(ffi::comm_self(), n as i32, &mut v)
        })?;
        Ok(Self(v))
    }

    fn write(&self, data: &[f64]) -> Result<(), Error> {
        with_array_mut(self.0, |a| a.copy_from_slice(data))
    }

    fn read(&self, data: &mut [f64]) -> Result<(), Error> {
        with_array(self.0, |a| data.copy_from_slice(a))
    }
}

impl Drop for PVec {
    fn drop(&mut self) {
        // SAFETY: the vector was created by VecCreateSeq and is destroyed once.
        unsafe { ffi::VecDestroy(&mut self.0) };
    }
}

/// Run `f` on the read-only array of `v`, whose length is that of the solve in progress.
fn with_array<R>(v: ffi::Vec, f: impl FnOnce(&[f64]) -> R) -> Result<R, Error> {
    let n = CURRENT_LEN.with(|c| c.get());
    let mut a: *const f64 = ptr::null();
    // SAFETY: v is a valid sequential vector of length n; the array is restored below.
    check("VecGetArrayRead", unsafe {
        ffi::VecGetArrayRead(v, &mut a)
    })?;
    let r = f(unsafe { std::slice::from_raw_parts(a, n) });
    check("VecRestoreArrayRead", unsafe {
        ffi::VecRestoreArrayRead(v, &mut a)
    })?;
    Ok(r)
}

fn with_array_mut<R>(v: ffi::Vec, f: impl FnOnce(&mut [f64]) -> R) -> Result<R, Error> {
    let n = CURRENT_LEN.with(|c| c.get());
    let mut a: *mut f64 = ptr::null_mut();
    // SAFETY: as in with_array, writable.
    check("VecGetArray", unsafe { ffi::VecGetArray(v, &mut a) })?;
    let r = f(unsafe { std::slice::from_raw_parts_mut(a, n) });
    check("VecRestoreArray", unsafe {
        ffi::VecRestoreArray(v, &mut a)
    })?;
    Ok(r)
}

thread_local! {
    /// Length of the vectors of the solve in progress (all of one size).
    static CURRENT_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// An owned shell matrix.
struct PMat(ffi::Mat);

impl Drop for PMat {
    fn drop(&mut self) {
        // SAFETY: created by MatCreateShell, destroyed once.
        unsafe { ffi::MatDestroy(&mut self.0) };
    }
}

struct PKsp(ffi::Ksp);
impl Drop for PKsp {
    fn drop(&mut self) {
        // SAFETY: created by KSPCreate, destroyed once.
        unsafe { ffi::KSPDestroy(&mut self.0) };
    }
}

struct PSnes(ffi::Snes);
impl Drop for PSnes {
    fn drop(&mut self) {
        // SAFETY: created by SNESCreate, destroyed once.
        unsafe { ffi::SNESDestroy(&mut self.0) };
    }
}

/// `jvp(point, v, out)`: the Jacobian of the residual at `point` times `v`.
pub type JvpFn<'a> = dyn FnMut(&[f64], &[f64], &mut [f64]) + 'a;

/// State shared with the SNES callbacks.
struct SnesContext<'a> {
    residual: &'a mut dyn FnMut(&[f64], &mut [f64]),
    jvp: &'a mut JvpFn<'a>,
    point: Vec<f64>,
    panicked: bool,
}

/// State shared with the transposed-product callback.
struct KspContext<'a> {
    mult_t: &'a mut dyn FnMut(&[f64], &mut [f64]),
    panicked: bool,
}

unsafe extern "C" fn snes_function(
    _snes: ffi::Snes,
    x: ffi::Vec,
    f: ffi::Vec,
    ctx: *mut c_void,
) -> PetscErrorCode {
    // SAFETY: ctx is the SnesContext passed to SNESSetFunction, alive for the solve.
    let ctx = unsafe { &mut *(ctx as *mut SnesContext<'_>) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let input = with_array(x, |a| a.to_vec())?;
        with_array_mut(f, |out| (ctx.residual)(&input, out))
    }));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(_)) => ERR_USER,
        Err(_) => {
            ctx.panicked = true;
            ERR_USER
        }
    }
}

unsafe extern "C" fn snes_jacobian(
    _snes: ffi::Snes,
    x: ffi::Vec,
    _a: ffi::Mat,
    _p: ffi::Mat,
    ctx: *mut c_void,
) -> PetscErrorCode {
    // SAFETY: as in snes_function.
    let ctx = unsafe { &mut *(ctx as *mut SnesContext<'_>) };
    // The shell Jacobian is linearized at the current iterate.
    match with_array(x, |a| ctx.point.copy_from_slice(a)) {
        Ok(()) => 0,
        Err(_) => ERR_USER,
    }
}

unsafe extern "C" fn jacobian_mult(a: ffi::Mat, v: ffi::Vec, out: ffi::Vec) -> PetscErrorCode {
    let mut ctx: *mut c_void = ptr::null_mut();
    // SAFETY: the shell's context is the SnesContext of the solve in progress.
    if unsafe { ffi::MatShellGetContext(a, &mut ctx as *mut *mut c_void as *mut c_void) } != 0 {
        return ERR_USER;
    }
    let ctx = unsafe { &mut *(ctx as *mut SnesContext<'_>) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let input = with_array(v, |x| x.to_vec())?;
        let point = ctx.point.clone();
        with_array_mut(out, |o| (ctx.jvp)(&point, &input, o))
    }));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(_)) => ERR_USER,
        Err(_) => {
            ctx.panicked = true;
            ERR_USER
        }
    }
}

unsafe extern "C" fn transpose_mult(a: ffi::Mat, v: ffi::Vec, out: ffi::Vec) -> PetscErrorCode {
    let mut ctx: *mut c_void = ptr::null_mut();
    // SAFETY: the shell's context is the KspContext of the solve in progress.
    if unsafe { ffi::MatShellGetContext(a, &mut ctx as *mut *mut c_void as *mut c_void) } != 0 {
        return ERR_USER;
    }
    let ctx = unsafe { &mut *(ctx as *mut KspContext<'_>) };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let input = with_array(v, |x| x.to_vec())?;
        with_array_mut(out, |o| (ctx.mult_t)(&input, o))
    }));
    match result {
        Ok(Ok(())) => 0,
        Ok(Err(_)) => ERR_USER,
        Err(_) => {
            ctx.panicked = true;
            ERR_USER
        }
    }
}

/// An `n × n` shell matrix with context `ctx` whose operation `op` is `f`.
fn shell(n: i32, ctx: *mut c_void, op: c_int, f: ffi::MatMultFn) -> Result<PMat, Error> {
    let mut mat = ptr::null_mut();
    // SAFETY: PETSc is initialized (the caller holds the lock); the matrix is owned by PMat;
    // the caller keeps `ctx` alive while the matrix is used.
    unsafe {
        check(
            "MatCreateShell",
            ffi::MatCreateShell(ffi::comm_self(), n, n, n, n, ctx, &mut mat),
        )?;
        let mat = PMat(mat);
        check(
            "MatShellSetOperation",
            ffi::MatShellSetOperation(mat.0, op, Some(f)),
        )?;
        Ok(mat)
    }
}

/// No preconditioner (shell matrices have no entries) and relative tolerance `rtol`.
fn unpreconditioned(ksp: ffi::Ksp, rtol: f64) -> Result<(), Error> {
    let pc_none = CString::new("none").expect("no NUL");
    let mut pc = ptr::null_mut();
    // SAFETY: `ksp` is a live KSP of the solve in progress.
    unsafe {
        check("KSPGetPC", ffi::KSPGetPC(ksp, &mut pc))?;
        check("PCSetType", ffi::PCSetType(pc, pc_none.as_ptr()))?;
        check(
            "KSPSetTolerances",
            ffi::KSPSetTolerances(ksp, rtol, 1e-300, 1e10, 10_000),
        )
    }
}

/// Solves implicit stage systems of one size with PETSc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSolver {
    n: usize,
    /// SNES absolute tolerance on `‖G‖₂`.
    pub atol: f64,
    /// SNES relative tolerance on `‖G‖₂`.
    pub rtol: f64,
    /// SNES step tolerance.
    pub stol: f64,
    /// Newton iteration limit.
    pub max_iters: u32,
    /// KSP relative tolerance (inner solves and transposed solves).
    pub ksp_rtol: f64,
}

impl StageSolver {
    /// A solver for systems of `n` unknowns; initializes PETSc on first use.
    pub fn new(n: usize, atol: f64, rtol: f64, max_iters: u32) -> Result<Self, Error> {
        drop(lock()?);
        Ok(Self {
            n,
            atol,
            rtol,
            stol: 1e-15,
            max_iters,
            ksp_rtol: 1e-15,
        })
    }

    /// Solve `G(y) = 0` by SNES Newton (line search `bt` by default, `-snes_*` options apply)
    /// from the guess in `y`; `residual(y, g)` writes `G(y)`, `jvp(point, v, out)` writes
    /// `G_y(point) v`. PETSc's KSP (GMRES, no preconditioner, `-ksp_*` options apply) solves
    /// each Newton system with the shell Jacobian.
    pub fn solve(
        &self,
        y: &mut [f64],
        residual: &mut dyn FnMut(&[f64], &mut [f64]),
        jvp: &mut JvpFn<'_>,
    ) -> Result<SnesStats, Error> {
        let _guard = lock()?;
        CURRENT_LEN.with(|c| c.set(self.n));
        let n = self.n as i32;
        let x = PVec::new(self.n)?;
        let r = PVec::new(self.n)?;
        x.write(y)?;
        let mut ctx = SnesContext {
            residual,
            jvp,
            point: y.to_vec(),
            panicked: false,
        };
        let ctx_ptr = &mut ctx as *mut SnesContext<'_> as *mut c_void;
        let mat = shell(n, ctx_ptr, ffi::MATOP_MULT, jacobian_mult)?;
        let mut snes = ptr::null_mut();
        // SAFETY: all handles are created here and destroyed by their RAII owners; ctx
        // outlives the solve.
        unsafe {
            check("SNESCreate", ffi::SNESCreate(ffi::comm_self(), &mut snes))?;
        }
        let snes = PSnes(snes);
        unsafe {
            check(
                "SNESSetFunction",
                ffi::SNESSetFunction(snes.0, r.0, Some(snes_function), ctx_ptr),
            )?;
            check(
                "SNESSetJacobian",
                ffi::SNESSetJacobian(snes.0, mat.0, mat.0, Some(snes_jacobian), ctx_ptr),
            )?;
            check(
                "SNESSetTolerances",
                ffi::SNESSetTolerances(
                    snes.0,
                    self.atol,
                    self.rtol,
                    self.stol,
                    self.max_iters as i32,
                    -1,
                ),
            )?;
            let mut ksp = ptr::null_mut();
            check("SNESGetKSP", ffi::SNESGetKSP(snes.0, &mut ksp))?;
            unpreconditioned(ksp, self.ksp_rtol)?;
            check("SNESSetFromOptions", ffi::SNESSetFromOptions(snes.0))?;
            let solved = ffi::SNESSolve(snes.0, ptr::null_mut(), x.0);
            if ctx.panicked {
                return Err(Error::CallbackPanicked);
            }
            check("SNESSolve", solved)?;
            let (mut reason, mut its, mut lits) = (0, 0, 0);
            check(
                "SNESGetConvergedReason",
                ffi::SNESGetConvergedReason(snes.0, &mut reason),
            )?;
            check(
                "SNESGetIterationNumber",
                ffi::SNESGetIterationNumber(snes.0, &mut its),
            )?;
            check(
                "SNESGetLinearSolveIterations",
                ffi::SNESGetLinearSolveIterations(snes.0, &mut lits),
            )?;
            if reason <= 0 {
                return Err(Error::SnesDiverged {
                    reason,
                    iterations: its,
                });
            }
            x.read(y)?;
            Ok(SnesStats {
                iterations: its.max(0) as u32,
                linear_iterations: lits.max(0) as u32,
            })
        }
    }

    /// Solve `Aᵀ x = b` with KSP's transposed solve (GMRES, no preconditioner, `-ksp_*`
    /// options apply), where `mult_t(v, out)` writes `Aᵀ v`; `x` holds the initial guess.
    pub fn solve_transpose(
        &self,
        b: &[f64],
        x: &mut [f64],
        mult_t: &mut dyn FnMut(&[f64], &mut [f64]),
    ) -> Result<KspStats, Error> {
        let _guard = lock()?;
        CURRENT_LEN.with(|c| c.set(self.n));
        let n = self.n as i32;
        let vb = PVec::new(self.n)?;
        let vx = PVec::new(self.n)?;
        vb.write(b)?;
        vx.write(x)?;
        let mut ctx = KspContext {
            mult_t,
            panicked: false,
        };
        let ctx_ptr = &mut ctx as *mut KspContext<'_> as *mut c_void;
        let mat = shell(n, ctx_ptr, ffi::MATOP_MULT_TRANSPOSE, transpose_mult)?;
        // SAFETY: handles are created here and owned by RAII wrappers; ctx outlives the solve.
        unsafe {
            let mut ksp = ptr::null_mut();
            check("KSPCreate", ffi::KSPCreate(ffi::comm_self(), &mut ksp))?;
            let ksp = PKsp(ksp);
            check("KSPSetOperators", ffi::KSPSetOperators(ksp.0, mat.0, mat.0))?;
            unpreconditioned(ksp.0, self.ksp_rtol)?;
            check("KSPSetFromOptions", ffi::KSPSetFromOptions(ksp.0))?;
            let solved = ffi::KSPSolveTranspose(ksp.0, vb.0, vx.0);
            if ctx.panicked {
                return Err(Error::CallbackPanicked);
            }
            check("KSPSolveTranspose", solved)?;
            let (mut reason, mut its) = (0, 0);
            check(
                "KSPGetConvergedReason",
                ffi::KSPGetConvergedReason(ksp.0, &mut reason),
            )?;
            check(
                "KSPGetIterationNumber",
                ffi::KSPGetIterationNumber(ksp.0, &mut its),
            )?;
            if reason <= 0 {
                return Err(Error::KspDiverged {
                    reason,
                    iterations: its,
                });
            }
            vx.read(x)?;
            Ok(KspStats {
                iterations: its.max(0) as u32,
            })
        }
    }
}
