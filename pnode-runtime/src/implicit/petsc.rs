//! Stage solves through PETSc (feature `petsc`): SNES Newton with a shell Jacobian whose
//! product is the model's JVP, and `KSPSolveTranspose` with a shell whose transposed product is
//! the model's VJP. Without the feature, choosing [`LinearSolver::Petsc`] is an error.
//!
//! [`LinearSolver::Petsc`]: super::LinearSolver::Petsc

use pnode_checkpoint::Stats;

use super::newton::{Newton, NewtonFailure};
use crate::model::{RhsJvp, RhsVjp};

/// Whether this build can use PETSc.
pub(crate) const AVAILABLE: bool = cfg!(feature = "petsc");

#[cfg(feature = "petsc")]
pub(crate) fn solve<M: RhsJvp + ?Sized>(
    newton: &mut Newton,
    model: &mut M,
    t: f64,
    gamma_h: f64,
    rhs_const: &[f64],
    p: &[f64],
    y: &mut [f64],
    stats: &mut Stats,
) -> Result<(), NewtonFailure> {
    use std::cell::RefCell;
    let n = y.len();
    let config = newton.config;
    let failure = |e: pnode_petsc::Error| NewtonFailure {
        iterations: match e {
            pnode_petsc::Error::SnesDiverged { iterations, .. } => iterations.max(0) as u32,
            _ => 0,
        },
        residual: f64::NAN,
        reason: format!("PETSc: {e}"),
    };
    let solver = pnode_petsc::StageSolver::new(n, config.atol, config.rtol, config.max_iters)
        .map_err(failure)?;
    // Both callbacks need the model and the statistics; PETSc calls them one at a time.
    let shared = RefCell::new((model, &mut *stats, vec![0.0; n]));
    let result = solver.solve(
        y,
        &mut |y, g| {
            let (model, stats, f) = &mut *shared.borrow_mut();
            model.rhs(t, y, p, f);
            stats.rhs_evals += 1;
            for i in 0..y.len() {
                g[i] = y[i] - rhs_const[i] - gamma_h * f[i];
            }
        },
        &mut |at, v, out| {
            let (model, stats, _) = &mut *shared.borrow_mut();
            model.jvp(t, at, p, v, out);
            stats.jvp_evals += 1;
            for (o, &vi) in out.iter_mut().zip(v) {
                *o = vi - gamma_h * *o;
            }
        },
    );
    drop(shared);
    let its = result.map_err(failure)?;
    stats.newton_iterations += u64::from(its.iterations);
    stats.linear_iterations += u64::from(its.linear_iterations);
    Ok(())
}

#[cfg(feature = "petsc")]
pub(crate) fn solve_adjoint<M: RhsJvp + RhsVjp + ?Sized>(
    newton: &mut Newton,
    model: &mut M,
    t: f64,
    gamma_h: f64,
    y: &[f64],
    p: &[f64],
    x: &mut [f64],
    stats: &mut Stats,
) -> Result<(), String> {
    let n = y.len();
    let config = newton.config;
    let solver = pnode_petsc::StageSolver::new(n, config.atol, config.rtol, config.max_iters)
        .map_err(|e| format!("PETSc: {e}"))?;
    let b = x.to_vec();
    x.fill(0.0);
    let mut grad_p = vec![0.0; p.len()];
    let its = solver
        .solve_transpose(&b, x, &mut |v, out| {
            model.vjp(t, y, p, v, out, &mut grad_p);
            stats.vjp_evals += 1;
            for (o, &vi) in out.iter_mut().zip(v) {
                *o = vi - gamma_h * *o;
            }
        })
        .map_err(|e| format!("PETSc: {e}"))?;
    stats.linear_iterations += u64::from(its.iterations);
    Ok(())
}

#[cfg(not(feature = "petsc"))]
pub(crate) fn solve<M: RhsJvp + ?Sized>(
    _newton: &mut Newton,
    _model: &mut M,
    _t: f64,
    _gamma_h: f64,
    _rhs_const: &[f64],
    _p: &[f64],
    _y: &mut [f64],
    _stats: &mut Stats,
) -> Result<(), NewtonFailure> {
    Err(NewtonFailure {
        iterations: 0,
        residual: f64::NAN,
        reason: "this build has no PETSc (enable the `petsc` feature)".into(),
    })
}

#[cfg(not(feature = "petsc"))]
pub(crate) fn solve_adjoint<M: RhsJvp + RhsVjp + ?Sized>(
    _newton: &mut Newton,
    _model: &mut M,
    _t: f64,
    _gamma_h: f64,
    _y: &[f64],
    _p: &[f64],
    _x: &mut [f64],
    _stats: &mut Stats,
) -> Result<(), String> {
    Err("this build has no PETSc (enable the `petsc` feature)".into())
}
