//! θ-methods: backward Euler (θ = 1), Crank–Nicolson (θ = ½) and any θ ∈ (0, 1].
//!
//! Forward (Hairer & Wanner II, §IV.3):
//!
//! ```text
//! G(y) = y − u_n − h [θ f(t_{n+1}, y) + (1 − θ) f(t_n, u_n)] = 0,   u_{n+1} = y,
//! ```
//!
//! solved by Newton ([`NewtonConfig`]) from `y = u_n`. Reverse — the exact derivative of that
//! map at the converged `y` (implicit function theorem):
//!
//! ```text
//! (I − θh f_u(t_{n+1}, u_{n+1}))ᵀ ν = λ_{n+1}
//! λ_n = ν + (1 − θ) h f_u(t_n, u_n)ᵀ ν
//! μ  += θ h f_θ(t_{n+1}, u_{n+1})ᵀ ν + (1 − θ) h f_θ(t_n, u_n)ᵀ ν
//! ```
//!
//! Each parameter term is a fresh VJP at its own point with its own cotangent (`θhν` at
//! `u_{n+1}`, `(1−θ)hν` at `u_n`): reusing one VJP for both is what makes the original PNODE's
//! implicit parameter gradients wrong. A step's stage values are `[u_n, u_{n+1}]`; recomputing
//! them repeats the Newton solve from the same guess, so it is bitwise identical.
//!
//! Newton iteration counts are not known before a run, so the step cost reported to the
//! planner counts no RHS evaluations or VJPs: predicted step counts and memory stay exact,
//! evaluation counts are only measured.

use pnode_checkpoint::{Stats, StepCost};

use super::newton::{Newton, NewtonConfig};
use crate::erk::stage_vjp;
use crate::error::{Error, Phase, Result};
use crate::model::{Eval, RhsJvp, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};

/// Reject Newton settings that cannot converge: negative or all-zero tolerances, no
/// iterations.
pub(crate) fn check_newton(newton: &NewtonConfig) -> Result<()> {
    if !(newton.atol >= 0.0 && newton.rtol >= 0.0 && newton.atol + newton.rtol > 0.0)
        || newton.max_iters == 0
    {
        return Err(Error::InvalidConfig(format!(
            "Newton needs non-negative tolerances, not both zero, and at least one iteration: \
             {newton:?}"
        )));
    }
    if newton.linear == super::LinearSolver::Petsc && !super::petsc::AVAILABLE {
        return Err(Error::InvalidConfig(
            "LinearSolver::Petsc needs pnode-runtime built with the `petsc` feature".into(),
        ));
    }
    Ok(())
}

/// A θ-method stepper with a Newton stage solver and preallocated buffers.
#[derive(Debug, Clone)]
pub struct ThetaStepper {
    theta: f64,
    n: usize,
    newton: Newton,
    rhs_const: Vec<f64>,
    f_n: Vec<f64>,
    nu: Vec<f64>,
    w: Vec<f64>,
    gu: Vec<f64>,
    gp: Vec<f64>,
}

impl ThetaStepper {
    /// A θ-method for `state_len` states and `param_len` parameters; `θ ∈ (0, 1]`.
    pub fn new(
        theta: f64,
        state_len: usize,
        param_len: usize,
        newton: NewtonConfig,
    ) -> Result<Self> {
        if !(theta > 0.0 && theta <= 1.0) {
            return Err(Error::InvalidConfig(format!(
                "θ must lie in (0, 1] for an implicit θ-method, got {theta}"
            )));
        }
        check_newton(&newton)?;
        Ok(Self {
            theta,
            n: state_len,
            newton: Newton::new(newton, state_len, param_len),
            rhs_const: vec![0.0; state_len],
            f_n: vec![0.0; state_len],
            nu: vec![0.0; state_len],
            w: vec![0.0; state_len],
            gu: vec![0.0; state_len],
            gp: vec![0.0; param_len],
        })
    }

    /// Backward Euler (θ = 1: L-stable, first order).
    pub fn backward_euler(
        state_len: usize,
        param_len: usize,
        newton: NewtonConfig,
    ) -> Result<Self> {
        Self::new(1.0, state_len, param_len, newton)
    }

    /// Crank–Nicolson (θ = ½: A-stable, second order).
    pub fn crank_nicolson(
        state_len: usize,
        param_len: usize,
        newton: NewtonConfig,
    ) -> Result<Self> {
        Self::new(0.5, state_len, param_len, newton)
    }

    /// Precondition the GMRES solves of this stepper (forward and adjoint).
    pub fn with_preconditioner(mut self, preconditioner: super::Preconditioner) -> Self {
        self.newton.preconditioner = Some(preconditioner);
        self
    }

    /// θ.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// `u_next = Φ_h(u)`: the Newton solve shared by stepping and recomputation (`phase`
    /// says which, for a model failure).
    #[allow(clippy::too_many_arguments)]
    fn solve<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        y: &mut [f64],
        phase: Phase,
        stats: &mut Stats,
    ) -> Result<()> {
        let explicit_part = 1.0 - self.theta;
        if explicit_part != 0.0 {
            model
                .try_rhs(at.t, u, p, &mut self.f_n)
                .map_err(|e| Error::model(at.index, at.t, phase, Eval::Rhs, e))?;
            stats.rhs_evals += 1;
        }
        for i in 0..self.n {
            let f = if explicit_part != 0.0 {
                self.f_n[i]
            } else {
                0.0
            };
            self.rhs_const[i] = u[i] + at.h * explicit_part * f;
        }
        y.copy_from_slice(u);
        self.newton
            .solve(
                model,
                at.t + at.h,
                self.theta * at.h,
                &self.rhs_const,
                p,
                y,
                stats,
            )
            .map_err(|e| e.into_error(at.index, at.t + at.h, phase, ""))
    }
}

impl<M: RhsJvp + ?Sized> ForwardStepper<M> for ThetaStepper {
    fn cost(&self) -> StepCost {
        StepCost {
            rhs_per_step: 0,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 0,
            stage_vectors: 2,
        }
    }

    fn stage_vectors(&self) -> usize {
        2
    }

    fn step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        stats: &mut Stats,
    ) -> Result<()> {
        self.solve(model, at, p, u, u_next, Phase::Forward, stats)?;
        if let Some(st) = stages {
            st[..self.n].copy_from_slice(u);
            st[self.n..2 * self.n].copy_from_slice(u_next);
        }
        Ok(())
    }

    fn recompute_stages(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let (first, second) = stages.split_at_mut(self.n);
        first.copy_from_slice(u);
        self.solve(
            model,
            at,
            p,
            u,
            &mut second[..self.n],
            Phase::Recompute,
            stats,
        )
    }
}

impl<M: RhsJvp + RhsVjp + ?Sized> AdjointStepper<M> for ThetaStepper {
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        let n = self.n;
        let (u_n, u_next) = (&stages[..n], &stages[n..2 * n]);
        let t_next = at.t + at.h;
        // (I − θh f_u(u_{n+1}))ᵀ ν = λ_{n+1}
        self.nu.copy_from_slice(lambda);
        self.newton
            .solve_adjoint(
                model,
                t_next,
                self.theta * at.h,
                u_next,
                p,
                &mut self.nu,
                stats,
            )
            .map_err(|e| e.into_adjoint_error(at.index, t_next, None))?;
        // μ += f_θ(u_{n+1})ᵀ (θhν)
        for (w, &v) in self.w.iter_mut().zip(&self.nu) {
            *w = self.theta * at.h * v;
        }
        stage_vjp(
            model,
            at.index,
            t_next,
            u_next,
            p,
            &self.w,
            &mut self.gu,
            &mut self.gp,
            mu,
            stats,
        )?;
        // λ_n = ν + f_u(u_n)ᵀ ((1−θ)hν),  μ += f_θ(u_n)ᵀ ((1−θ)hν)
        lambda.copy_from_slice(&self.nu);
        let explicit_part = 1.0 - self.theta;
        if explicit_part != 0.0 {
            for (w, &v) in self.w.iter_mut().zip(&self.nu) {
                *w = explicit_part * at.h * v;
            }
            stage_vjp(
                model,
                at.index,
                at.t,
                u_n,
                p,
                &self.w,
                &mut self.gu,
                &mut self.gp,
                mu,
                stats,
            )?;
            for (l, &g) in lambda.iter_mut().zip(&self.gu) {
                *l += g;
            }
        }
        Ok(())
    }
}
