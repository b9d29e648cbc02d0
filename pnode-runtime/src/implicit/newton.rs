//! Newton's method for one implicit stage `G(y) = 0` with `G_y = I − γ h f_u(t, y)`.
//!
//! Each iteration solves `G_y δ = G(y)` either densely — `G_y` assembled from `n` JVPs of the
//! model (column `j` is `e_j − γ h f_u e_j`) and factored ([`DenseLu`]) — or matrix-free with
//! restarted GMRES ([`GmresConfig`]) on JVPs, optionally preconditioned; then it applies the update
//! `y ← y − α G_y⁻¹ G(y)`, with `α = 1` or, with [`LineSearch::Backtracking`], the first
//! `α = 2⁻ᵏ` that decreases `‖G‖₂`. It stops when the weighted RMS norm of the update,
//! `√(1/n Σ (δ_i / (atol + rtol |y_i|))²)`, is at most 1 (Hairer & Wanner II, §IV.8).

use std::fmt;
use std::sync::Arc;

use crate::model::{Eval, ModelError, RhsJvp, RhsVjp};
use pnode_checkpoint::Stats;

use super::dense::DenseLu;
use super::gmres::{Gmres, GmresConfig, GmresResult};
use super::petsc;

/// Which linear solver Newton (and the adjoint's transposed solve) uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LinearSolver {
    /// Dense LU for states of at most [`DENSE_LIMIT`] values, GMRES above with
    /// [`GmresConfig::default`] (restart 30, `rtol = 1e-14`, 1000 iterations): accurate enough
    /// that gradients match dense LU's to round-off.
    #[default]
    Auto,
    /// Dense LU of the Jacobian assembled from `n` JVPs.
    Dense,
    /// Matrix-free restarted GMRES: JVPs forward, VJPs for the transposed adjoint systems.
    Gmres(GmresConfig),
    /// PETSc (feature `petsc`): SNES Newton with a shell Jacobian (`MatMult` = JVP) and KSP for
    /// its systems; the adjoint's transposed systems by `KSPSolveTranspose` (`MatMultTranspose`
    /// = VJP). SNES tolerances are `atol`/`rtol` on the residual norm; `-snes_*`/`-ksp_*`
    /// options come from the environment variable `PNODE_PETSC_OPTIONS`.
    Petsc,
}

/// Largest state that [`LinearSolver::Auto`] solves densely.
pub const DENSE_LIMIT: usize = 64;

/// What a preconditioner is applied for: the stage `(t, y)`, `γh`, and whether the system is
/// the transposed (adjoint) one.
#[derive(Debug, Clone, Copy)]
pub struct PreconditionerArgs<'a> {
    /// Stage time.
    pub t: f64,
    /// Stage value (the Newton iterate, or the converged stage in the adjoint).
    pub y: &'a [f64],
    /// Parameters.
    pub p: &'a [f64],
    /// `γh` of `I − γh f_u`.
    pub gamma_h: f64,
    /// Whether `Mᵀ` is wanted (the adjoint solves `(I − γh f_u)ᵀ x = b`).
    pub transpose: bool,
}

/// The preconditioner hook of GMRES: `z = M⁻¹ r` (or `M⁻ᵀ r`) for `M ≈ I − γh f_u(t, y)`.
#[derive(Clone)]
pub struct Preconditioner(pub Arc<PreconditionerFn>);

/// The function behind a [`Preconditioner`]: `(args, r, z)` writes `z = M⁻¹ r` (or `M⁻ᵀ r`).
pub type PreconditionerFn = dyn Fn(PreconditionerArgs<'_>, &[f64], &mut [f64]) + Send + Sync;

impl fmt::Debug for Preconditioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Preconditioner(..)")
    }
}

/// How a Newton update is damped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineSearch {
    /// Full Newton steps.
    #[default]
    None,
    /// Halve the step (at most this many times) until the residual norm decreases.
    Backtracking(u32),
}

/// Tolerances and limits of the Newton stage solver.
///
/// The default: `atol = rtol = 1e-10` on the update, 25 iterations, no line search,
/// [`LinearSolver::Auto`] (dense LU up to [`DENSE_LIMIT`] states, GMRES at `rtol = 1e-14`
/// above). The linear solver also solves the adjoint's transposed stage systems, whose
/// accuracy is the gradient's: a GMRES relative residual `η` costs up to `κ η` relative error
/// per adjoint step (`κ` the condition number of `I − γh f_u`). The default's `1e-14` (or the
/// round-off floor when rounding stops GMRES above it) matches dense LU to round-off; the
/// former `1e-12` left about `3e-12` relative error on a stiff 80-state model, and a looser
/// [`GmresConfig::rtol`] trades gradient accuracy for Krylov iterations in the same way.
/// A failed transposed solve is [`crate::Error::AdjointSolveFailed`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonConfig {
    /// Absolute tolerance of the update.
    pub atol: f64,
    /// Relative tolerance of the update.
    pub rtol: f64,
    /// Iterations before giving up.
    pub max_iters: u32,
    /// Damping of the updates.
    pub line_search: LineSearch,
    /// Linear solver of each Newton step and of the adjoint's transposed systems.
    pub linear: LinearSolver,
}

impl Default for NewtonConfig {
    fn default() -> Self {
        Self {
            atol: 1e-10,
            rtol: 1e-10,
            max_iters: 25,
            line_search: LineSearch::None,
            linear: LinearSolver::Auto,
        }
    }
}

/// Why a stage solve failed: iterations done and the last residual norm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewtonFailure {
    pub iterations: u32,
    pub residual: f64,
    pub reason: String,
}

/// Why a transposed (adjoint) stage solve failed; the stepper adds the step, time and stage
/// ([`crate::Error::AdjointSolveFailed`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdjointFailure {
    /// `"GMRES"`, `"dense LU"` or `"PETSc"`.
    pub solver: &'static str,
    /// Krylov iterations done.
    pub iterations: usize,
    /// Residual norm reached (NaN when unknown).
    pub residual: f64,
    /// Residual norm to reach (NaN when none).
    pub target: f64,
    /// What the solver reported.
    pub reason: String,
}

impl AdjointFailure {
    /// The runtime error for step `step`, stage `stage` (`None`: a θ-method) at time `t`.
    pub fn at(self, step: usize, t: f64, stage: Option<usize>) -> crate::Error {
        crate::Error::AdjointSolveFailed {
            step,
            t,
            stage,
            solver: self.solver,
            iterations: self.iterations,
            residual: self.residual,
            target: self.target,
            reason: self.reason,
        }
    }
}

/// Why a stage solve (or the adjoint's transposed solve) stopped: the iteration failed, or the
/// model failed in one of its evaluations (the caller adds the step, time and phase).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StageError {
    /// Newton or the linear solver did not succeed.
    Newton(NewtonFailure),
    /// The model's evaluation `Eval` failed.
    Model(Eval, ModelError),
    /// The adjoint's transposed stage solve did not succeed.
    Adjoint(AdjointFailure),
}

impl StageError {
    /// A linear-solver failure with no iteration count yet.
    fn linear(reason: &str) -> Self {
        StageError::Newton(NewtonFailure {
            iterations: 0,
            residual: f64::NAN,
            reason: reason.into(),
        })
    }

    /// A Newton failure at iteration `iterations` with residual norm `residual`.
    fn at_iteration(self, iterations: u32, residual: f64) -> Self {
        match self {
            StageError::Newton(f) => StageError::Newton(NewtonFailure {
                iterations,
                residual,
                ..f
            }),
            e => e,
        }
    }

    /// The runtime error of a failed transposed (adjoint) stage solve in step `step`, stage
    /// `stage` (`None`: a θ-method) at stage time `t`: [`crate::Error::AdjointSolveFailed`], or
    /// the model's failure in the reverse sweep.
    pub fn into_adjoint_error(self, step: usize, t: f64, stage: Option<usize>) -> crate::Error {
        match self {
            StageError::Adjoint(f) => f.at(step, t, stage),
            e => e.into_error(
                step,
                t,
                crate::error::Phase::Reverse,
                &stage.map_or_else(
                    || "adjoint".to_string(),
                    |i| format!("adjoint of stage {i}"),
                ),
            ),
        }
    }

    /// The runtime error of this failure in step `step` at stage time `t` during `phase`;
    /// `context` prefixes a Newton failure's reason (for example `"stage 2"`).
    pub fn into_error(
        self,
        step: usize,
        t: f64,
        phase: crate::error::Phase,
        context: &str,
    ) -> crate::Error {
        match self {
            StageError::Newton(f) => crate::Error::NewtonFailed {
                step,
                t,
                iterations: f.iterations,
                residual: f.residual,
                reason: if context.is_empty() {
                    f.reason
                } else {
                    format!("{context}: {}", f.reason)
                },
            },
            StageError::Model(eval, cause) => crate::Error::model(step, t, phase, eval, cause),
            StageError::Adjoint(f) => f.at(step, t, None),
        }
    }
}

impl From<NewtonFailure> for StageError {
    fn from(f: NewtonFailure) -> Self {
        StageError::Newton(f)
    }
}

/// The matrix-free operator `v ↦ v − γh f_u(t, y) v` (or its transpose through VJPs).
struct StageOperator<'a, M: ?Sized> {
    model: &'a mut M,
    t: f64,
    y: &'a [f64],
    p: &'a [f64],
    gamma_h: f64,
    stats: &'a mut Stats,
    grad_p: &'a mut [f64],
}

/// Work buffers of one stage solve.
#[derive(Debug, Clone)]
pub(crate) struct Newton {
    pub config: NewtonConfig,
    pub lu: DenseLu,
    residual: Vec<f64>,
    trial: Vec<f64>,
    delta: Vec<f64>,
    unit: Vec<f64>,
    column: Vec<f64>,
    scratch: Vec<f64>,
    gmres: Option<Gmres>,
    grad_p: Vec<f64>,
    pub preconditioner: Option<Preconditioner>,
}

impl Newton {
    pub fn new(config: NewtonConfig, n: usize, param_len: usize) -> Self {
        let gmres = match config.linear {
            LinearSolver::Gmres(g) => Some(Gmres::new(g, n)),
            LinearSolver::Auto if n > DENSE_LIMIT => Some(Gmres::new(GmresConfig::default(), n)),
            _ => None,
        };
        Self {
            gmres,
            grad_p: vec![0.0; param_len],
            preconditioner: None,
            config,
            lu: DenseLu::new(n),
            residual: vec![0.0; n],
            trial: vec![0.0; n],
            delta: vec![0.0; n],
            unit: vec![0.0; n],
            column: vec![0.0; n],
            scratch: vec![0.0; n],
        }
    }

    /// Assemble and factor `I − γh f_u(t, y)`; `false` if singular.
    fn factor_jacobian<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        y: &[f64],
        p: &[f64],
        stats: &mut Stats,
    ) -> Result<bool, StageError> {
        let n = y.len();
        self.unit.fill(0.0);
        for j in 0..n {
            self.unit[j] = 1.0;
            model
                .try_jvp(t, y, p, &self.unit, &mut self.column)
                .map_err(|e| StageError::Model(Eval::Jvp, e))?;
            stats.jvp_evals += 1;
            self.unit[j] = 0.0;
            let a = self.lu.matrix_mut();
            for i in 0..n {
                a[i * n + j] = f64::from(u8::from(i == j)) - gamma_h * self.column[i];
            }
        }
        Ok(self.lu.factor())
    }

    /// `f(t, y)` at the solution of the last successful [`Newton::solve`] (its final residual
    /// evaluation, so bitwise the value at the returned `y`).
    pub fn last_f(&self) -> &[f64] {
        &self.column
    }

    /// Solve `y − rhs_const − γh f(t, y) = 0` for `y` (initial guess in `y`), where
    /// `rhs_const` collects every term that does not depend on `y`.
    pub fn solve<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        rhs_const: &[f64],
        p: &[f64],
        y: &mut [f64],
        stats: &mut Stats,
    ) -> Result<(), StageError> {
        let n = y.len();
        if self.config.linear == LinearSolver::Petsc {
            return self.solve_petsc(model, t, gamma_h, rhs_const, p, y, stats);
        }
        let mut norm = self.residual_into(model, t, gamma_h, rhs_const, p, y, stats)?;
        for iter in 1..=self.config.max_iters {
            stats.newton_iterations += 1;
            // δ = G_y⁻¹ G(y)
            self.linear_solve(model, t, gamma_h, p, y, stats)
                .map_err(|e| e.at_iteration(iter, norm))?;
            let mut alpha = 1.0;
            let halvings = match self.config.line_search {
                LineSearch::None => 0,
                LineSearch::Backtracking(k) => k,
            };
            let mut accepted = false;
            for attempt in 0..=halvings {
                for i in 0..n {
                    self.trial[i] = y[i] - alpha * self.delta[i];
                }
                let trial_norm = {
                    let trial = std::mem::take(&mut self.trial);
                    let r = self.residual_into(model, t, gamma_h, rhs_const, p, &trial, stats);
                    self.trial = trial;
                    r?
                };
                if halvings == 0 || trial_norm < norm || attempt == halvings {
                    norm = trial_norm;
                    accepted = true;
                    break;
                }
                alpha *= 0.5;
            }
            debug_assert!(accepted);
            let mut wrms = 0.0;
            for i in 0..n {
                let scale = self.config.atol + self.config.rtol * self.trial[i].abs();
                let d = alpha * self.delta[i] / scale;
                wrms += d * d;
            }
            y.copy_from_slice(&self.trial);
            if !norm.is_finite() {
                return Err(StageError::Newton(NewtonFailure {
                    iterations: iter,
                    residual: norm,
                    reason: "the residual is not finite".into(),
                }));
            }
            if (wrms / n.max(1) as f64).sqrt() <= 1.0 {
                return Ok(());
            }
        }
        Err(StageError::Newton(NewtonFailure {
            iterations: self.config.max_iters,
            residual: norm,
            reason: "no convergence within the iteration limit".into(),
        }))
    }

    /// `δ = G_y⁻¹ G(y)` into `self.delta` (the residual is in `self.residual`).
    fn linear_solve<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        p: &[f64],
        y: &[f64],
        stats: &mut Stats,
    ) -> Result<(), StageError> {
        self.delta.copy_from_slice(&self.residual);
        let Some(mut gmres) = self.gmres.take() else {
            if !self.factor_jacobian(model, t, gamma_h, y, p, stats)? {
                return Err(StageError::linear("the stage Jacobian is singular"));
            }
            self.lu.solve(&mut self.delta, &mut self.scratch);
            return Ok(());
        };
        let op = StageOperator {
            model,
            t,
            y,
            p,
            gamma_h,
            stats,
            grad_p: &mut self.grad_p,
        };
        let result = run_gmres(
            &mut gmres,
            &self.preconditioner,
            op,
            false,
            |op, v, out| op.apply(v, out),
            &self.residual,
            &mut self.delta,
        );
        self.gmres = Some(gmres);
        let result = result?;
        if result.converged {
            Ok(())
        } else {
            Err(StageError::linear(&format!(
                "GMRES {} after {} Krylov iterations, residual norm {:e} (target {:e}) in a \
                 Newton step; loosen `krylov_tol`, raise `krylov_restart` or use \
                 `linear_solver = dense`",
                result.why(),
                result.iterations,
                result.residual,
                result.target
            )))
        }
    }

    /// Solve the adjoint's `(I − γh f_u(t, y))ᵀ x = b` in place (`x` holds `b` on entry).
    pub fn solve_adjoint<M: RhsJvp + RhsVjp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        y: &[f64],
        p: &[f64],
        x: &mut [f64],
        stats: &mut Stats,
    ) -> Result<(), StageError> {
        if self.config.linear == LinearSolver::Petsc {
            return petsc::solve_adjoint(self, model, t, gamma_h, y, p, x, stats).map_err(|e| {
                match e {
                    StageError::Newton(f) => StageError::Adjoint(AdjointFailure {
                        solver: "PETSc",
                        iterations: 0,
                        residual: f64::NAN,
                        target: f64::NAN,
                        // The message names the solver itself.
                        reason: f
                            .reason
                            .strip_prefix("PETSc: ")
                            .map_or_else(|| f.reason.clone(), str::to_string),
                    }),
                    e => e,
                }
            });
        }
        let Some(mut gmres) = self.gmres.take() else {
            if !self.factor_jacobian(model, t, gamma_h, y, p, stats)? {
                return Err(StageError::Adjoint(AdjointFailure {
                    solver: "dense LU",
                    iterations: 0,
                    residual: f64::NAN,
                    target: f64::NAN,
                    reason: "the transposed stage matrix is singular".into(),
                }));
            }
            self.lu.solve_transpose(x, &mut self.scratch);
            return Ok(());
        };
        self.residual.copy_from_slice(x);
        let op = StageOperator {
            model,
            t,
            y,
            p,
            gamma_h,
            stats,
            grad_p: &mut self.grad_p,
        };
        let result = run_gmres(
            &mut gmres,
            &self.preconditioner,
            op,
            true,
            |op, v, out| op.apply_transpose(v, out),
            &self.residual,
            x,
        );
        self.gmres = Some(gmres);
        let result = result?;
        if result.converged {
            Ok(())
        } else {
            Err(StageError::Adjoint(AdjointFailure {
                solver: "GMRES",
                iterations: result.iterations,
                residual: result.residual,
                target: result.target,
                reason: result.why().into(),
            }))
        }
    }

    /// The stage solve by PETSc SNES; afterwards `last_f` holds `f(t, y)` at the solution.
    fn solve_petsc<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        rhs_const: &[f64],
        p: &[f64],
        y: &mut [f64],
        stats: &mut Stats,
    ) -> Result<(), StageError> {
        petsc::solve(self, model, t, gamma_h, rhs_const, p, y, stats)?;
        model
            .try_rhs(t, y, p, &mut self.column)
            .map_err(|e| StageError::Model(Eval::Rhs, e))?;
        stats.rhs_evals += 1;
        Ok(())
    }

    /// `G(y) = y − rhs_const − γh f(t, y)` into `self.residual`; returns `‖G‖₂`.
    fn residual_into<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        rhs_const: &[f64],
        p: &[f64],
        y: &[f64],
        stats: &mut Stats,
    ) -> Result<f64, StageError> {
        model
            .try_rhs(t, y, p, &mut self.column)
            .map_err(|e| StageError::Model(Eval::Rhs, e))?;
        stats.rhs_evals += 1;
        let mut sq = 0.0;
        for i in 0..y.len() {
            let g = y[i] - rhs_const[i] - gamma_h * self.column[i];
            self.residual[i] = g;
            sq += g * g;
        }
        Ok(sq.sqrt())
    }
}

/// GMRES from a zero guess on the stage operator `op` (or its transpose, through `apply`), with
/// the preconditioner hook told which; Krylov iterations go to the statistics.
fn run_gmres<'a, M: ?Sized>(
    gmres: &mut Gmres,
    pc: &Option<Preconditioner>,
    mut op: StageOperator<'a, M>,
    transpose: bool,
    mut apply: impl FnMut(&mut StageOperator<'a, M>, &[f64], &mut [f64]) -> Result<(), StageError>,
    b: &[f64],
    x: &mut [f64],
) -> Result<GmresResult, StageError> {
    x.fill(0.0);
    let args = PreconditionerArgs {
        t: op.t,
        y: op.y,
        p: op.p,
        gamma_h: op.gamma_h,
        transpose,
    };
    let result = gmres.solve(b, x, &mut |v, out| apply(&mut op, v, out), &mut |r, z| {
        precondition(pc, args, r, z)
    });
    // Krylov iterations of a solve a model failure cut short are not counted.
    let result = result?;
    op.stats.linear_iterations += result.iterations as u64;
    Ok(result)
}

fn precondition(
    pc: &Option<Preconditioner>,
    args: PreconditionerArgs<'_>,
    r: &[f64],
    z: &mut [f64],
) {
    match pc {
        Some(Preconditioner(f)) => f(args, r, z),
        None => z.copy_from_slice(r),
    }
}

impl<M: RhsJvp + ?Sized> StageOperator<'_, M> {
    /// `out = v − γh f_u v` (one JVP).
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<(), StageError> {
        self.model
            .try_jvp(self.t, self.y, self.p, v, out)
            .map_err(|e| StageError::Model(Eval::Jvp, e))?;
        self.stats.jvp_evals += 1;
        for (o, &vi) in out.iter_mut().zip(v) {
            *o = vi - self.gamma_h * *o;
        }
        Ok(())
    }
}

impl<M: RhsVjp + ?Sized> StageOperator<'_, M> {
    /// `out = v − γh f_uᵀ v` (one VJP; its parameter part is discarded).
    fn apply_transpose(&mut self, v: &[f64], out: &mut [f64]) -> Result<(), StageError> {
        self.model
            .try_vjp(self.t, self.y, self.p, v, out, self.grad_p)
            .map_err(|e| StageError::Model(Eval::Vjp, e))?;
        self.stats.vjp_evals += 1;
        for (o, &vi) in out.iter_mut().zip(v) {
            *o = vi - self.gamma_h * *o;
        }
        Ok(())
    }
}
