//! The fixed-grid solver: forward solves, checkpointed forward sweeps and discrete-adjoint
//! reverse sweeps, for any one-step method and any valid [`Schedule`], run through the action
//! executor it shares with [`crate::AdaptiveSolver`] (`executor.rs`).
//!
//! A [`Solver`] is built once per (method, grid, output times, checkpointing) and reused: its
//! buffers are allocated at construction, except the checkpoint store, which the first
//! checkpointed sweep ([`Solver::forward`]) allocates in one fallible buffer
//! ([`Error::OutOfMemory`] instead of an abort; [`Solver::checkpoint_bytes`] says its size
//! beforehand) and a forward-only [`Solver::solve`] never does. The step loop never allocates;
//! a sweep of a generated schedule (store-all, Revolve, …), read action by action and never
//! listed, allocates only its generator (`O(slots)`).
//!
//! The loss `L(u(t_1), …, u(t_K))` enters only through its gradient `g_k = ∂L/∂u(t_k)`: the
//! reverse sweep starts from `λ_N = g_N` (zero if `t_N` is not an output), adds `g_k` to `λ_k`
//! as it passes output `k`, and ends with `λ_0 = dL/du_0` and `μ = dL/dθ`.
//!
//! Slots a schedule puts on disk ([`Schedule::slot_on_disk`], for example
//! [`Checkpointing::TwoLevel`]) are files in a temporary directory that exists from the start
//! of [`Solver::forward`] to the end of [`Solver::backward`] (see
//! [`Solver::set_checkpoint_dir`]); any I/O failure is [`Error::CheckpointIo`].

use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpointing, Phase, Schedule, StepCost};
use crate::erk::ErkStepper;
use crate::error::{Buffer, Error, Result, check_len, first_non_finite, try_zeroed};
use crate::executor::{Executor, vector_bytes};
use crate::grid::TimeGrid;
use crate::model::{Rhs, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper};
use crate::tableau::Tableau;
use pnode_checkpoint::Stats;

/// The gradient of a loss with respect to the initial state and the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradient {
    /// `dL/du_0`.
    pub du0: Vec<f64>,
    /// `dL/dθ`.
    pub dp: Vec<f64>,
}

/// Where the solver is between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing to reverse.
    Idle,
    /// A checkpointed forward sweep finished; `backward` may run once.
    Forwarded,
}

/// Fixed-step solver with exact discrete-adjoint gradients, executing a checkpoint schedule.
#[derive(Debug, Clone)]
pub struct Solver<S> {
    stepper: S,
    grid: TimeGrid,
    output_idx: Vec<usize>,
    schedule: Schedule,
    forward_only: Schedule,
    cost: StepCost,
    n: usize,
    n_params: usize,
    /// Slots (RAM and disk), working buffers and the ledger.
    exec: Executor,
    outputs: Vec<f64>,
    dl_du: Vec<f64>,
    state: State,
}

impl Solver<ErkStepper> {
    /// An explicit Runge–Kutta solver for `model`'s sizes on `grid`, reporting the solution at
    /// `output_times` (grid points, strictly increasing) and checkpointing as `checkpointing`
    /// says.
    pub fn explicit<M: Rhs + ?Sized>(
        tableau: Tableau,
        model: &M,
        grid: TimeGrid,
        output_times: &[f64],
        checkpointing: Checkpointing,
    ) -> Result<Self> {
        let stepper = ErkStepper::new(tableau, model.state_len(), model.param_len());
        Self::new(stepper, model, grid, output_times, checkpointing)
    }
}

impl<S> Solver<S> {
    /// A solver for any stepper. See [`Solver::explicit`].
    pub fn new<M: Rhs + ?Sized>(
        stepper: S,
        model: &M,
        grid: TimeGrid,
        output_times: &[f64],
        checkpointing: Checkpointing,
    ) -> Result<Self>
    where
        S: ForwardStepper<M>,
    {
        let n = model.state_len();
        let n_params = model.param_len();
        let output_idx = grid.output_indices(output_times)?;
        let n_steps = grid.n_steps();
        let cost = stepper.cost();
        let schedule = checkpointing.plan(n_steps, &cost, vector_bytes(n))?;
        // Validates a listed schedule (errors name the offending action); generated ones are
        // valid by construction, and the ledger checks every action as it runs anyway.
        if !schedule.is_generated() {
            schedule.predict(&cost, vector_bytes(n))?;
        }
        let exec = Executor::for_schedule(&schedule, n, n_params, stepper.stage_vectors(), &cost);
        let outputs = try_zeroed(Buffer::Outputs, output_times.len().saturating_mul(n))?;
        let dl_du = try_zeroed(Buffer::Outputs, output_times.len().saturating_mul(n))?;
        Ok(Self {
            stepper,
            output_idx,
            forward_only: Schedule::forward_only(n_steps),
            schedule,
            cost,
            n,
            n_params,
            exec,
            outputs,
            dl_du,
            state: State::Idle,
            grid,
        })
    }

    /// Keep disk checkpoints in fresh directories under `parent` instead of the system's
    /// temporary directory ([`std::env::temp_dir`]).
    ///
    /// Each checkpointed forward sweep whose schedule has disk slots creates a directory
    /// `pnode-checkpoints-XXXXXX` in `parent`, one file per disk slot; the directory is removed
    /// when the reverse sweep ends (or fails), when a new sweep starts and when the solver is
    /// dropped. A directory is created and removed here at once, so a missing or unwritable
    /// `parent` is reported now as [`Error::CheckpointIo`] naming it.
    pub fn set_checkpoint_dir(&mut self, parent: impl Into<PathBuf>) -> Result<()> {
        self.exec.set_checkpoint_dir(parent.into())
    }

    /// The directory holding the disk checkpoints of the current forward sweep, while it
    /// exists (from [`Solver::forward`] to the end of [`Solver::backward`]).
    pub fn checkpoint_dir(&self) -> Option<&Path> {
        self.exec.checkpoint_dir()
    }

    /// The time grid.
    pub fn grid(&self) -> &TimeGrid {
        &self.grid
    }

    /// The checkpoint schedule a gradient runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The stepper.
    pub fn stepper(&self) -> &S {
        &self.stepper
    }

    /// Number of output times `K`.
    pub fn n_outputs(&self) -> usize {
        self.output_idx.len()
    }

    /// Grid indices of the output times.
    pub fn output_indices(&self) -> &[usize] {
        &self.output_idx
    }

    /// Outputs of the last forward run, `K × n` row-major (`u(t_k)` is row `k`).
    pub fn outputs(&self) -> &[f64] {
        &self.outputs
    }

    /// `u(t_k)` from the last forward run; `None` when `k` is not an output index.
    pub fn output(&self, k: usize) -> Option<&[f64]> {
        self.outputs.get(k * self.n..(k + 1) * self.n)
    }

    /// Statistics of the last run (forward, plus reverse if one followed): the ledger's counts
    /// with the evaluations and iterations the stepper measured ([`Stats::with_measured`]).
    pub fn stats(&self) -> Stats {
        self.exec.ledger.stats().with_measured(&self.exec.measured)
    }

    /// Bytes the RAM checkpoint slots take: allocated by the first checkpointed sweep
    /// ([`Solver::forward`]), never by [`Solver::solve`]. For store-all, solution-only and
    /// Revolve this is the schedule's predicted peak (`peak_stored_bytes`).
    pub fn checkpoint_bytes(&self) -> u64 {
        self.exec.slot_bytes()
    }

    /// The statistics the cost model predicts for a forward + reverse run of this schedule.
    pub fn predicted_stats(&self) -> Result<Stats> {
        Ok(self.schedule.predict(&self.cost, vector_bytes(self.n))?)
    }

    /// Solve forward without keeping checkpoints; returns the outputs (`K × n`).
    pub fn solve<M: Rhs + ?Sized>(&mut self, model: &mut M, u0: &[f64], p: &[f64]) -> Result<&[f64]>
    where
        S: ForwardStepper<M>,
    {
        let schedule = std::mem::replace(&mut self.forward_only, Schedule::forward_only(0));
        let result = self.run_forward(model, u0, p, &schedule);
        self.forward_only = schedule;
        // Checkpoints of an earlier forward sweep can no longer be reversed.
        self.state = State::Idle;
        self.exec.discard();
        result?;
        Ok(&self.outputs)
    }

    /// Solve forward keeping the checkpoints of the schedule; returns the outputs (`K × n`).
    /// Follow with [`Solver::backward`].
    pub fn forward<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
    ) -> Result<&[f64]>
    where
        S: ForwardStepper<M>,
    {
        self.state = State::Idle;
        self.exec.begin_sweep()?;
        let schedule = std::mem::replace(&mut self.schedule, Schedule::forward_only(0));
        let result = self.run_forward(model, u0, p, &schedule);
        self.schedule = schedule;
        if let Err(e) = result {
            self.exec.discard();
            return Err(e);
        }
        self.state = State::Forwarded;
        Ok(&self.outputs)
    }

    /// The discrete adjoint of the last [`Solver::forward`]: given `dl_du = ∂L/∂u(t_k)` for all
    /// outputs (`K × n`), returns `dL/du_0` and `dL/dθ`. Runs once per forward sweep, with the
    /// same model and the parameters that sweep used. Disk checkpoints are removed when it
    /// ends, whether it succeeds or fails.
    pub fn backward<M: RhsVjp + ?Sized>(&mut self, model: &mut M, dl_du: &[f64]) -> Result<Gradient>
    where
        S: AdjointStepper<M>,
    {
        check_len("dL/du at the outputs", self.outputs.len(), dl_du.len())?;
        self.check_model(model)?;
        if self.state != State::Forwarded {
            return Err(Error::Usage(
                "backward needs a checkpointed forward sweep first (call forward, not solve; \
                 each forward sweep can be reversed once)"
                    .into(),
            ));
        }
        self.state = State::Idle;
        let schedule = std::mem::replace(&mut self.schedule, Schedule::forward_only(0));
        let result = self.exec.run_reverse(
            &mut self.stepper,
            &self.grid,
            model,
            dl_du,
            &self.output_idx,
            &schedule,
        );
        self.schedule = schedule;
        self.exec.gradient(result)
    }

    /// Loss and gradient in one call: `loss(outputs, dl_du)` returns `L` and writes
    /// `∂L/∂u(t_k)` into `dl_du` (`K × n`, zeroed before the call).
    pub fn value_and_grad<M, L>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
        loss: L,
    ) -> Result<(f64, Gradient)>
    where
        M: RhsVjp + ?Sized,
        S: AdjointStepper<M>,
        L: FnOnce(&[f64], &mut [f64]) -> f64,
    {
        self.forward(model, u0, p)?;
        let mut dl_du = std::mem::take(&mut self.dl_du);
        dl_du.fill(0.0);
        let value = loss(&self.outputs, &mut dl_du);
        let grad = self.backward(model, &dl_du);
        self.dl_du = dl_du;
        Ok((value, grad?))
    }

    fn check_model<M: Rhs + ?Sized>(&self, model: &M) -> Result<()> {
        check_len("model state", self.n, model.state_len())?;
        check_len("model parameters", self.n_params, model.param_len())
    }

    fn run_forward<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        u0: &[f64],
        p: &[f64],
        schedule: &Schedule,
    ) -> Result<()>
    where
        S: ForwardStepper<M>,
    {
        self.check_model(model)?;
        check_len("u0", self.n, u0.len())?;
        check_len("parameters", self.n_params, p.len())?;
        if let Some((component, value)) = first_non_finite(u0) {
            return Err(Error::NonFiniteState {
                step: 0,
                t: self.grid.t(0),
                component,
                value,
            });
        }
        let exec = &mut self.exec;
        exec.ledger.restart(schedule);
        exec.measured = Stats::default();
        exec.params.copy_from_slice(p);
        exec.current.copy_from_slice(u0);
        let mut next_output = 0;
        let (n, output_idx, outputs) = (self.n, &self.output_idx, &mut self.outputs);
        let mut record = |current: &[f64], index: usize| {
            if next_output < output_idx.len() && output_idx[next_output] == index {
                outputs[next_output * n..(next_output + 1) * n].copy_from_slice(current);
                next_output += 1;
            }
        };
        record(&exec.current, 0);
        for action in schedule.forward() {
            exec.enter(&action, Phase::Forward)?;
            exec.run_action(&mut self.stepper, &self.grid, model, &action, &mut record)?;
        }
        Ok(exec.ledger.end_forward()?)
    }
}
