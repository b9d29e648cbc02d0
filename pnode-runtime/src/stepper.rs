//! The interface between the schedule executor and a one-step method.
//!
//! The executor ([`crate::solver::Solver`]) knows nothing of tableaux or Newton solves: it asks
//! a stepper to take a step (optionally keeping its stage values), to recompute a step's stage
//! values from its starting solution, and to run a step's adjoint from those stage values.
//! Explicit Runge–Kutta ([`crate::erk::ErkStepper`]) is the first implementation; implicit
//! methods plug in the same way.

use crate::checkpoint::StepCost;
use crate::error::Result;
use crate::model::{Rhs, RhsVjp};
use pnode_checkpoint::Stats;

/// Where a step sits on the grid: its index `n`, start time `t_n` and size `h_n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepAt {
    /// Step index `n` (from `t_n` to `t_{n+1}`).
    pub index: usize,
    /// Start time `t_n`.
    pub t: f64,
    /// Step size `h_n`.
    pub h: f64,
}

/// A one-step method's forward half.
pub trait ForwardStepper<M: Rhs + ?Sized> {
    /// What one step costs, for the schedule's cost model.
    fn cost(&self) -> StepCost;

    /// Number of state vectors in one step's stage values (including `u_n`).
    fn stage_vectors(&self) -> usize;

    /// `u_next = Φ_h(t_n, u)`. When `stages` is given (length `stage_vectors() × state_len`),
    /// the step's stage values are written there; they must be bitwise identical to what
    /// [`ForwardStepper::recompute_stages`] produces from the same `u`.
    fn step(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        u_next: &mut [f64],
        stages: Option<&mut [f64]>,
        stats: &mut Stats,
    ) -> Result<()>;

    /// Recompute the stage values of the step starting at `u` (same layout as in `step`).
    fn recompute_stages(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        u: &[f64],
        stages: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()>;
}

/// A one-step method's discrete adjoint.
pub trait AdjointStepper<M: RhsVjp + ?Sized>: ForwardStepper<M> {
    /// The adjoint of one step: on entry `lambda = λ_{n+1} = ∂L/∂u_{n+1}`, on exit
    /// `lambda = λ_n`; `mu += ∂L/∂θ` contributions of this step. `stages` are the step's stage
    /// values as written by [`ForwardStepper::step`].
    fn reverse(
        &mut self,
        model: &mut M,
        at: StepAt,
        p: &[f64],
        stages: &[f64],
        lambda: &mut [f64],
        mu: &mut [f64],
        stats: &mut Stats,
    ) -> Result<()>;
}
