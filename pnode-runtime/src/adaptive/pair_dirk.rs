//! ESDIRK pairs: a trial step that is bitwise [`DirkStepper`]'s step, plus its error estimate.
//!
//! [`EmbeddedDirk`] runs the stages through [`DirkStepper`]'s own `step` (one code path for the
//! fixed-grid and the adaptive solver) and forms
//!
//! ```text
//! e = h Σ_i (b_i − b̂_i) K_i,     K_i = f(t_n + c_i h, Y_i),
//! ```
//!
//! from the converged stage derivatives; no stage is evaluated for the estimate alone. For the
//! built-in pairs (esdirk3's 3(2), kvaerno5's 5(4), Kværnø 2004) both `b` and `b̂` are rows of
//! `A`, so `e = Y_s − Y_{s−1}` is the difference of two stiffly accurate, L-stable solutions:
//! it stays bounded on stiff components as `h‖f_u‖ → ∞` and needs no `(I − γh J)⁻¹` filter
//! (Hairer & Wanner II, §IV.8).
//!
//! **Predictor.** Newton starts each implicit stage from the previous stage's converged value
//! (`u_n` for the first implicit stage after the explicit one) — the same predictor the
//! fixed-grid [`DirkStepper`] uses, because it *is* that stepper. It is a function of
//! `(t_n, h_n, u_n)` only, so the reverse sweep's `recompute_stages` from `u_n` and every
//! retry after a rejection start Newton from bitwise the same guess. Newton's last iterate of an
//! earlier, rejected attempt (or of the previous step) is deliberately *not* reused: a
//! recomputation could not reproduce it, and the stages (hence the gradient) would then differ
//! in the last bits from the fixed-grid solver's on the accepted grid.
//!
//! **Newton failures.** A trial step whose stage solve does not converge fails with
//! [`crate::Error::NewtonFailed`]; the adaptive driver rejects it and retries with a smaller
//! step (see [`super`]), and reports the error if the failure persists.

use crate::checkpoint::StepCost;
use crate::error::{Error, Result};
use crate::implicit::{DirkStepper, DirkTableau, NewtonConfig};
use crate::model::{RhsJvp, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_checkpoint::Stats;

use super::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, EmbeddedStepper};

/// A diagonally implicit Runge–Kutta pair: [`DirkStepper`] plus the embedded error estimate
/// (see the module docs).
#[derive(Debug, Clone)]
pub struct EmbeddedDirk {
    dirk: DirkStepper,
    n: usize,
    /// `b − b̂`.
    d: Vec<f64>,
    q: u32,
}

impl EmbeddedDirk {
    /// The pair of `tableau` (which must have embedded weights: [`DirkTableau::esdirk3`],
    /// [`DirkTableau::kvaerno5`], or [`DirkTableau::with_embedded`]) for `state_len` states and
    /// `param_len` parameters, with Newton configured by `newton`.
    pub fn new(
        tableau: DirkTableau,
        state_len: usize,
        param_len: usize,
        newton: NewtonConfig,
    ) -> Result<Self> {
        Self::from_stepper(DirkStepper::new(tableau, state_len, param_len, newton)?)
    }

    /// The pair around an existing stepper (for instance one with a preconditioner).
    pub fn from_stepper(dirk: DirkStepper) -> Result<Self> {
        let tableau = dirk.tableau();
        let (Some(b_hat), Some(q)) = (tableau.b_embedded(), tableau.embedded_order()) else {
            return Err(Error::NoErrorEstimate {
                method: tableau.name().to_string(),
            });
        };
        let d = tableau
            .b()
            .iter()
            .zip(b_hat)
            .map(|(b, bh)| b - bh)
            .collect();
        let q = q.min(tableau.order());
        let n = dirk.state_len();
        Ok(Self { dirk, n, d, q })
    }

    /// The underlying fixed-step stepper (a clone of it replays the accepted grid with
    /// [`crate::Solver`] bit for bit).
    pub fn dirk(&self) -> &DirkStepper {
        &self.dirk
    }

    /// The tableau.
    pub fn tableau(&self) -> &DirkTableau {
        self.dirk.tableau()
    }
}

impl AdaptiveSolver<EmbeddedDirk> {
    /// An adaptive ESDIRK solver with the pair `tableau` (esdirk3, kvaerno5, or any DIRK
    /// tableau with embedded weights) and Newton configured by `newton`, for `model`'s sizes,
    /// from `t0` to the last of `output_times`. See [`AdaptiveSolver::explicit`].
    pub fn dirk<M: RhsJvp + ?Sized>(
        tableau: DirkTableau,
        newton: NewtonConfig,
        model: &M,
        t0: f64,
        output_times: &[f64],
        options: AdaptiveOptions,
        checkpointing: AdaptiveCheckpointing,
    ) -> Result<Self> {
        let stepper = EmbeddedDirk::new(tableau, model.state_len(), model.param_len(), newton)?;
        Self::new(stepper, model, t0, output_times, options, checkpointing)
    }
}

impl<M: RhsJvp + ?Sized> ForwardStepper<M> for EmbeddedDirk {
    fn cost(&self) -> StepCost {
        ForwardStepper::<M>::cost(&self.dirk)
    }

    fn stage_vectors(&self) -> usize {
        ForwardStepper::<M>::stage_vectors(&self.dirk)
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
        self.dirk.step(model, at, p, u, u_next, stages, stats)
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
        self.dirk.recompute_stages(model, at, p, u, stages, stats)
    }
}

impl<M: RhsJvp + RhsVjp + ?Sized> AdjointStepper<M> for EmbeddedDirk {
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
        self.dirk.reverse(model, at, p, stages, lambda, mu, stats)
    }
}

impl<M: RhsJvp + ?Sized> EmbeddedStepper<M> for EmbeddedDirk {
    fn error_order(&self) -> u32 {
        self.q
    }

    fn try_step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: &mut [f64],
        err: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()> {
        self.dirk
            .step(model, at, p, u, u_next, Some(stages), stats)?;
        // e = h Σ_i (b_i − b̂_i) K_i
        let (n, k) = (self.n, self.dirk.stage_derivatives());
        err.fill(0.0);
        for (i, &d_i) in self.d.iter().enumerate() {
            if d_i != 0.0 {
                for (e, &k_i) in err.iter_mut().zip(&k[i * n..(i + 1) * n]) {
                    *e += d_i * k_i;
                }
            }
        }
        for e in err.iter_mut() {
            *e *= at.h;
        }
        Ok(())
    }
}
