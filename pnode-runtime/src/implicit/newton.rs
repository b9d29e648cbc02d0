//! Newton's method for one implicit stage `G(y) = 0` with `G_y = I − γ h f_u(t, y)`.
//!
//! Each iteration assembles `G_y` from `n` JVPs of the model (column `j` is
//! `e_j − γ h f_u e_j`), factors it ([`DenseLu`]) and applies the update
//! `y ← y − α G_y⁻¹ G(y)`, with `α = 1` or, with [`LineSearch::Backtracking`], the first
//! `α = 2⁻ᵏ` that decreases `‖G‖₂`. It stops when the weighted RMS norm of the update,
//! `√(1/n Σ (δ_i / (atol + rtol |y_i|))²)`, is at most 1 (Hairer & Wanner II, §IV.8).

use crate::model::RhsJvp;
use pnode_checkpoint::Stats;

use super::dense::DenseLu;

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
}

impl Default for NewtonConfig {
    fn default() -> Self {
        Self {
            atol: 1e-10,
            rtol: 1e-10,
            max_iters: 25,
            line_search: LineSearch::None,
        }
    }
}

/// Why a stage solve failed: iterations done and the last residual norm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewtonFailure {
    pub iterations: u32,
    pub residual: f64,
    pub reason: &'static str,
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
}

impl Newton {
    pub fn new(config: NewtonConfig, n: usize) -> Self {
        Self {
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
    pub fn factor_jacobian<M: RhsJvp + ?Sized>(
        &mut self,
        model: &mut M,
        t: f64,
        gamma_h: f64,
        y: &[f64],
        p: &[f64],
        stats: &mut Stats,
    ) -> bool {
        let n = y.len();
        self.unit.fill(0.0);
        for j in 0..n {
            self.unit[j] = 1.0;
            model.jvp(t, y, p, &self.unit, &mut self.column);
            stats.jvp_evals += 1;
            self.unit[j] = 0.0;
            let a = self.lu.matrix_mut();
            for i in 0..n {
                a[i * n + j] = f64::from(u8::from(i == j)) - gamma_h * self.column[i];
            }
        }
        self.lu.factor()
    }

    /// `f(t, y)` at the solution of the last successful [`Newton::solve`] (its final residual
    /// evaluation, so bitwise the value at the returned `y`).
    pub fn last_f(&self) -> &[f64] {
        &self.column
    }

    /// Solve `Aᵀ x = b` with the last factorization (in place).
    pub fn solve_transpose(&mut self, x: &mut [f64]) {
        self.lu.solve_transpose(x, &mut self.scratch);
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
    ) -> Result<(), NewtonFailure> {
        let n = y.len();
        let mut norm = self.residual_into(model, t, gamma_h, rhs_const, p, y, stats);
        for iter in 1..=self.config.max_iters {
            stats.newton_iterations += 1;
            if !self.factor_jacobian(model, t, gamma_h, y, p, stats) {
                return Err(NewtonFailure {
                    iterations: iter,
                    residual: norm,
                    reason: "the stage Jacobian is singular",
                });
            }
            // δ = −G_y⁻¹ G(y)
            self.delta.copy_from_slice(&self.residual);
            self.lu.solve(&mut self.delta, &mut self.scratch);
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
                    r
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
                return Err(NewtonFailure {
                    iterations: iter,
                    residual: norm,
                    reason: "the residual is not finite",
                });
            }
            if (wrms / n.max(1) as f64).sqrt() <= 1.0 {
                return Ok(());
            }
        }
        Err(NewtonFailure {
            iterations: self.config.max_iters,
            residual: norm,
            reason: "no convergence within the iteration limit",
        })
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
    ) -> f64 {
        model.rhs(t, y, p, &mut self.column);
        stats.rhs_evals += 1;
        let mut sq = 0.0;
        for i in 0..y.len() {
            let g = y[i] - rhs_const[i] - gamma_h * self.column[i];
            self.residual[i] = g;
            sq += g * g;
        }
        sq.sqrt()
    }
}
