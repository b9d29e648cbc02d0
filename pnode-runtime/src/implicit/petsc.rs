//! Stage solves through PETSc (feature `petsc`): SNES Newton with a shell Jacobian whose
//! product is the model's JVP, and `KSPSolveTranspose` with a shell whose transposed product is
//! the model's VJP. Without the feature, choosing [`LinearSolver::Petsc`] is an error.
//!
//! [`LinearSolver::Petsc`]: super::LinearSolver::Petsc

use pnode_checkpoint::Stats;

use super::newton::{Newton, NewtonFailure, StageError};
#[cfg(feature = "petsc")]
use crate::model::Eval;
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
) -> Result<(), StageError> {
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
    // Both callbacks need the model and the statistics; PETSc calls them one at a time. A
    // model failure is kept (the first one) and its outputs made NaN, so PETSc stops; the
    // failure, not PETSc's divergence, is then the error.
    let shared = RefCell::new((model, &mut *stats, vec![0.0; n], None::<StageError>));
    let result = solver.solve(
        y,
        &mut |y, g| {
            let (model, stats, f, failed) = &mut *shared.borrow_mut();
            if let Err(e) = model.try_rhs(t, y, p, f) {
                failed.get_or_insert(StageError::Model(Eval::Rhs, e));
                g.fill(f64::NAN);
                return;
            }
            stats.rhs_evals += 1;
            for i in 0..y.len() {
                g[i] = y[i] - rhs_const[i] - gamma_h * f[i];
            }
        },
        &mut |at, v, out| {
            let (model, stats, _, failed) = &mut *shared.borrow_mut();
            if let Err(e) = model.try_jvp(t, at, p, v, out) {
                failed.get_or_insert(StageError::Model(Eval::Jvp, e));
                out.fill(f64::NAN);
                return;
            }
            stats.jvp_evals += 1;
            for (o, &vi) in out.iter_mut().zip(v) {
                *o = vi - gamma_h * *o;
            }
        },
    );
    let (_, _, _, failed) = shared.into_inner();
    if let Some(e) = failed {
        return Err(e);
    }
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
) -> Result<(), StageError> {
    let n = y.len();
    let config = newton.config;
    let petsc = |e: pnode_petsc::Error| {
        StageError::Newton(NewtonFailure {
            iterations: 0,
            residual: f64::NAN,
            reason: format!("PETSc: {e}"),
        })
    };
    let solver = pnode_petsc::StageSolver::new(n, config.atol, config.rtol, config.max_iters)
        .map_err(petsc)?;
    let b = x.to_vec();
    x.fill(0.0);
    let mut grad_p = vec![0.0; p.len()];
    // As in `solve`: the first model failure is kept and wins over PETSc's error.
    let mut failed = None;
    let result = solver.solve_transpose(&b, x, &mut |v, out| {
        if let Err(e) = model.try_vjp(t, y, p, v, out, &mut grad_p) {
            failed.get_or_insert(StageError::Model(Eval::Vjp, e));
            out.fill(f64::NAN);
            return;
        }
        stats.vjp_evals += 1;
        for (o, &vi) in out.iter_mut().zip(v) {
            *o = vi - gamma_h * *o;
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    let its = result.map_err(petsc)?;
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
) -> Result<(), StageError> {
    Err(StageError::Newton(NewtonFailure {
        iterations: 0,
        residual: f64::NAN,
        reason: "this build has no PETSc (enable the `petsc` feature)".into(),
    }))
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
) -> Result<(), StageError> {
    Err(StageError::Newton(NewtonFailure {
        iterations: 0,
        residual: f64::NAN,
        reason: "this build has no PETSc (enable the `petsc` feature)".into(),
    }))
}
