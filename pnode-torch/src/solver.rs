//! The schedule executor over tensors: forward solves, checkpointed forward sweeps and
//! discrete-adjoint reverse sweeps of an explicit Runge–Kutta method, running any RAM
//! [`Schedule`] from `pnode-checkpoint` — the tensor twin of `pnode_runtime::Solver`.
//!
//! The state is a tensor of any shape, dtype and device; checkpoints hold tensors on the
//! state's device. The schedule is planned when the state's size is first known (a
//! [`Budget::Bytes`](pnode_runtime::Budget) budget depends on it) and re-planned only when it
//! changes. The loss enters through `g_k = ∂L/∂u(t_k)`: the reverse sweep starts from
//! `λ_N = g_N`, adds `g_k` as it passes output `k`, and ends with `λ_0 = dL/du_0` and
//! `μ = dL/dθ`.
//!
//! [`TensorSolver::adaptive`] chooses the grid as it goes, with error control ([`adaptive`]);
//! the same executor then runs the reverse sweep on the accepted grid.

pub mod adaptive;

use std::sync::Arc;

use pnode_runtime::checkpoint::{
    Action, Checkpointing, Phase, Schedule, StageSource, Stats, Tracker,
};
use pnode_runtime::{AdaptiveStats, Tableau, TimeGrid};
use tch::Tensor;

use self::adaptive::{AdaptiveConfig, PendingStep};

use crate::erk::{StepAt, TensorErk};
use crate::error::{Error, Result};
use crate::model::{TensorRhs, check_like};

/// `dL/du_0` and `dL/dθ` (one tensor per parameter, in [`TensorRhs::parameters`] order).
#[derive(Debug)]
pub struct TensorGradient {
    /// `dL/du_0`, shaped like the state.
    pub du0: Tensor,
    /// `dL/dθ_i`, shaped like each parameter.
    pub dparams: Vec<Tensor>,
}

/// Bytes of one state tensor.
pub(crate) fn tensor_bytes(t: &Tensor) -> u64 {
    (t.numel() * t.kind().elt_size_in_bytes()) as u64
}

/// Fixed-step explicit Runge–Kutta solver over tensors with exact discrete-adjoint gradients,
/// executing a checkpoint schedule.
#[derive(Debug)]
pub struct TensorSolver {
    erk: TensorErk,
    grid: TimeGrid,
    output_idx: Vec<usize>,
    checkpointing: Checkpointing,
    /// The planned schedule and the state bytes it was planned for.
    plan: Option<(u64, Arc<Schedule>)>,
    slots: Vec<Vec<Tensor>>,
    tape: Vec<Tensor>,
    current: Option<Tensor>,
    outputs: Vec<Tensor>,
    /// The running schedule's ledger: validates each action before it runs and counts the
    /// statistics the cost model predicts, in bytes of the state tensor.
    ledger: Tracker,
    /// What the stepper counted: RHS and VJP evaluations.
    measured: Stats,
    forwarded: bool,
    /// Error control, for an adaptive solver.
    adaptive: Option<Arc<AdaptiveConfig>>,
    /// An accepted adaptive trial step the executor has yet to apply.
    pending: Option<PendingStep>,
    /// The step controller's counts of the last adaptive run.
    counts: Option<AdaptiveStats>,
}

impl TensorSolver {
    /// A solver for `tableau` (explicit) on `grid`, reporting the solution at `output_times`
    /// (grid points, increasing) and checkpointing as `checkpointing` says. Disk tiers are not
    /// supported for tensors (planning one is an error at the first forward sweep).
    pub fn new(
        tableau: Tableau,
        grid: TimeGrid,
        output_times: &[f64],
        checkpointing: Checkpointing,
    ) -> Result<Self> {
        let output_idx = grid.output_indices(output_times)?;
        Ok(Self::fresh(
            TensorErk::new(tableau),
            grid,
            output_idx,
            checkpointing,
        ))
    }

    /// A solver with this one's configuration and plan but no run state (checkpoints), for a
    /// concurrent forward/backward pair.
    pub fn spawn(&self) -> Self {
        Self {
            plan: self.plan.clone(),
            adaptive: self.adaptive.clone(),
            ..Self::fresh(
                self.erk.clone(),
                self.grid.clone(),
                self.output_idx.clone(),
                self.checkpointing.clone(),
            )
        }
    }

    fn fresh(
        erk: TensorErk,
        grid: TimeGrid,
        output_idx: Vec<usize>,
        checkpointing: Checkpointing,
    ) -> Self {
        Self {
            ledger: Tracker::new(grid.n_steps(), 0, &erk.cost(), 0),
            erk,
            grid,
            output_idx,
            checkpointing,
            plan: None,
            slots: Vec::new(),
            tape: Vec::new(),
            current: None,
            outputs: Vec::new(),
            measured: Stats::default(),
            forwarded: false,
            adaptive: None,
            pending: None,
            counts: None,
        }
    }

    /// The tableau.
    pub fn tableau(&self) -> &Tableau {
        self.erk.tableau()
    }

    /// The time grid: for an adaptive solver the last run's accepted grid (`[t0, t_end]`
    /// before the first run).
    pub fn grid(&self) -> &TimeGrid {
        &self.grid
    }

    /// Whether the grid is chosen by error control ([`TensorSolver::adaptive`]).
    pub fn is_adaptive(&self) -> bool {
        self.adaptive.is_some()
    }

    /// The accepted grid `t_0 … t_N` of the last adaptive run (empty before the first; the
    /// fixed grid's times for a fixed-grid solver).
    pub fn accepted_times(&self) -> Vec<f64> {
        match (&self.adaptive, &self.counts) {
            (Some(_), None) => Vec::new(),
            _ => self.grid.to_times(),
        }
    }

    /// The step controller's counts of the last adaptive run (accepted and rejected steps)
    /// with the sweep statistics; `None` for a fixed-grid solver or before the first run.
    pub fn adaptive_stats(&self) -> Option<AdaptiveStats> {
        self.counts.map(|counts| AdaptiveStats {
            sweep: self.stats(),
            ..counts
        })
    }

    /// Number of output times.
    pub fn n_outputs(&self) -> usize {
        match &self.adaptive {
            Some(config) => config.output_times.len(),
            None => self.output_idx.len(),
        }
    }

    /// The schedule planned for the last state size (after the first forward sweep).
    pub fn schedule(&self) -> Option<&Schedule> {
        self.plan.as_ref().map(|(_, s)| s.as_ref())
    }

    /// Statistics of the last run (forward, plus reverse if one followed): the ledger's counts
    /// with the evaluations the stepper measured ([`Stats::with_measured`]); byte counts are
    /// tensor bytes held by checkpoints.
    pub fn stats(&self) -> Stats {
        self.ledger.stats().with_measured(&self.measured)
    }

    /// The statistics the cost model predicts for a forward + reverse run with a state like
    /// `u0`.
    pub fn predicted_stats(&mut self, u0: &Tensor) -> Result<Stats> {
        if self.adaptive.is_some() {
            return Err(Error::Usage(
                "an adaptive run's steps are known only after its forward sweep: no \
                 prediction (see stats() after the run)"
                    .into(),
            ));
        }
        let bytes = tensor_bytes(u0);
        let schedule = self.schedule_for(bytes)?;
        Ok(schedule
            .predict(&self.erk.cost(), bytes)
            .map_err(pnode_runtime::Error::from)?)
    }

    /// Outputs of the last forward run, `u(t_k)` for each output time.
    pub fn outputs(&self) -> &[Tensor] {
        &self.outputs
    }

    fn schedule_for(&mut self, bytes: u64) -> Result<Arc<Schedule>> {
        if let Some((planned, schedule)) = &self.plan
            && *planned == bytes
        {
            return Ok(schedule.clone());
        }
        let cost = self.erk.cost();
        let schedule = self
            .checkpointing
            .plan(self.grid.n_steps(), &cost, bytes)
            .map_err(pnode_runtime::Error::from)?;
        // Listed schedules are validated here; generated ones are valid by construction (and the
        // ledger checks every action as it runs).
        if !schedule.is_generated() {
            schedule
                .predict(&cost, bytes)
                .map_err(pnode_runtime::Error::from)?;
        }
        if schedule.disk_slots().next().is_some() {
            return Err(Error::Usage(format!(
                "checkpoint schedule {} keeps slots on disk; the tensor backend keeps checkpoints \
                 in memory (use store-all, solution-only, Revolve, online or a RAM budget)",
                schedule.name()
            )));
        }
        let schedule = Arc::new(schedule);
        self.plan = Some((bytes, schedule.clone()));
        Ok(schedule)
    }

    /// Solve forward without keeping checkpoints; returns `u(t_k)` for each output time.
    pub fn solve(&mut self, model: &mut dyn TensorRhs, u0: &Tensor) -> Result<&[Tensor]> {
        self.forwarded = false;
        if self.adaptive.is_some() {
            let result = self.run_adaptive(model, u0, false);
            self.release();
            result?;
            return Ok(&self.outputs);
        }
        let schedule = Schedule::forward_only(self.grid.n_steps());
        self.run_forward(model, u0, &schedule)?;
        self.release();
        Ok(&self.outputs)
    }

    /// Solve forward keeping the schedule's checkpoints; follow with
    /// [`TensorSolver::backward`]. Runs without gradient tracking.
    pub fn forward(&mut self, model: &mut dyn TensorRhs, u0: &Tensor) -> Result<&[Tensor]> {
        self.forwarded = false;
        let result = if self.adaptive.is_some() {
            self.run_adaptive(model, u0, true)
        } else {
            self.schedule_for(tensor_bytes(u0))
                .and_then(|schedule| self.run_forward(model, u0, &schedule))
        };
        if let Err(e) = result {
            self.release();
            return Err(e);
        }
        self.forwarded = true;
        Ok(&self.outputs)
    }

    /// The discrete adjoint of the last [`TensorSolver::forward`], given `∂L/∂u(t_k)` for each
    /// output. Runs once per forward sweep with the same model; frees the checkpoints.
    pub fn backward(
        &mut self,
        model: &mut dyn TensorRhs,
        dl_du: &[Tensor],
    ) -> Result<TensorGradient> {
        if !self.forwarded {
            return Err(Error::Usage(
                "backward needs a checkpointed forward sweep first (call forward, not solve; \
                 each forward sweep can be reversed once)"
                    .into(),
            ));
        }
        self.forwarded = false;
        if dl_du.len() != self.outputs.len() {
            return Err(Error::Mismatch {
                what: "dL/du at the outputs".into(),
                expected: format!("{} tensors", self.outputs.len()),
                found: format!("{} tensors", dl_du.len()),
            });
        }
        for (k, (g, u)) in dl_du.iter().zip(&self.outputs).enumerate() {
            check_like(&format!("dL/du(t_{k})"), u, g)?;
        }
        let schedule = self.plan.as_ref().expect("forward planned").1.clone();
        let result = tch::no_grad(|| self.run_reverse(model, dl_du, &schedule));
        self.release();
        result
    }

    /// Replaces the kept outputs by detached aliases (same storage, no autograd history), so
    /// the solver holds no reference to a graph its outputs are later attached to.
    pub(crate) fn detach_outputs(&mut self) {
        for o in &mut self.outputs {
            *o = o.detach();
        }
        // The working state is the last output's tensor when the last output is at t_N.
        if let Some(current) = &mut self.current {
            *current = current.detach();
        }
        for t in self.slots.iter_mut().flatten().chain(self.tape.iter_mut()) {
            *t = t.detach();
        }
    }

    /// Plans the schedule for a state like `x` (fixed grids; an adaptive run plans as it goes).
    pub(crate) fn prepare(&mut self, x: &Tensor) -> Result<()> {
        if self.adaptive.is_none() {
            self.schedule_for(tensor_bytes(x))?;
        }
        Ok(())
    }

    /// Frees every checkpoint.
    fn release(&mut self) {
        self.slots.iter_mut().for_each(Vec::clear);
        self.tape.clear();
        self.current = None;
        self.pending = None;
    }

    /// Slot `slot`, created when an adaptive run's plan first names it.
    fn slot_mut(&mut self, slot: usize) -> &mut Vec<Tensor> {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Vec::new);
        }
        &mut self.slots[slot]
    }

    fn step_at(&self, index: usize) -> StepAt {
        StepAt {
            index,
            t: self.grid.t(index),
            h: self.grid.h(index),
        }
    }

    /// Enter `action` in the ledger, which refuses it if it cannot run here and counts its
    /// cost; every action is entered before it runs.
    fn enter(&mut self, action: &Action, phase: Phase) -> Result<()> {
        let index = self.ledger.applied();
        self.ledger
            .apply(action, phase)
            .map_err(|reason| pnode_runtime::Error::from(reason.at(index, action)))?;
        Ok(())
    }

    fn current(&self) -> &Tensor {
        self.current
            .as_ref()
            .expect("the executor holds a current state")
    }

    /// One step from the current state; returns the stage inputs when `keep`. An accepted
    /// adaptive trial step of this index, if pending, is applied instead of recomputed.
    fn take_step(
        &mut self,
        model: &mut dyn TensorRhs,
        index: usize,
        keep: bool,
    ) -> Result<Vec<Tensor>> {
        if let Some(pending) = self.pending.take() {
            if pending.index != index {
                return Err(Error::Usage(format!(
                    "the adaptive plan asked for step {index} while step {} was pending",
                    pending.index
                )));
            }
            self.current = Some(pending.next);
            return Ok(if keep { pending.stages } else { Vec::new() });
        }
        let at = self.step_at(index);
        let (next, stages) = self.erk.step(
            model,
            at,
            self.current.as_ref().expect("a current state"),
            keep,
            &mut self.measured,
        )?;
        if let Some((count, index_nf, value)) = non_finite(&next) {
            return Err(Error::NonFiniteState {
                step: index,
                t: at.t + at.h,
                count,
                numel: next.numel() as i64,
                index: index_nf,
                value,
            });
        }
        self.current = Some(next);
        Ok(stages)
    }

    fn run_forward(
        &mut self,
        model: &mut dyn TensorRhs,
        u0: &Tensor,
        schedule: &Schedule,
    ) -> Result<()> {
        if let Some((count, index, value)) = non_finite(u0) {
            return Err(Error::NonFiniteState {
                step: 0,
                t: self.grid.t(0),
                count,
                numel: u0.numel() as i64,
                index,
                value,
            });
        }
        self.ledger = Tracker::for_schedule(schedule, &self.erk.cost(), tensor_bytes(u0));
        self.measured = Stats::default();
        self.slots = (0..schedule.n_slots()).map(|_| Vec::new()).collect();
        self.tape.clear();
        self.outputs.clear();
        // A copy: outputs never alias the caller's tensor.
        self.current = Some(tch::no_grad(|| u0.detach().copy()));
        let mut next_output = 0;
        let mut record = |this: &mut Self, index: usize| {
            if next_output < this.output_idx.len() && this.output_idx[next_output] == index {
                let u = this.current().shallow_clone();
                this.outputs.push(u);
                next_output += 1;
            }
        };
        record(self, 0);
        tch::no_grad(|| {
            for action in schedule.forward() {
                self.enter(&action, Phase::Forward)?;
                self.run_action(model, &action, &mut record)?;
            }
            Ok(self
                .ledger
                .end_forward()
                .map_err(pnode_runtime::Error::from)?)
        })
    }

    /// Runs one action other than `Reverse`, calling `after_step(self, n)` when a step lands
    /// on grid index `n`.
    fn run_action(
        &mut self,
        model: &mut dyn TensorRhs,
        action: &Action,
        mut after_step: impl FnMut(&mut Self, usize),
    ) -> Result<()> {
        let (steps, tape) = match *action {
            Action::Store { slot, .. } => {
                let current = self.current().shallow_clone();
                *self.slot_mut(slot) = vec![current];
                return Ok(());
            }
            Action::StepKeepingStages { slot, step } => {
                let stages = self.take_step(model, step, true)?;
                *self.slot_mut(slot) = stages;
                after_step(self, step + 1);
                return Ok(());
            }
            Action::Restore { slot, .. } => {
                self.current = Some(self.slots[slot][0].shallow_clone());
                return Ok(());
            }
            Action::Free { slot } => {
                self.slot_mut(slot).clear();
                return Ok(());
            }
            Action::Reverse { .. } => {
                return Err(Error::Usage("reverse action in a forward phase".into()));
            }
            Action::Tape { step } => (step..step + 1, true),
            Action::Advance { from, to } => (from..to, false),
        };
        for step in steps {
            let stages = self.take_step(model, step, tape)?;
            if tape {
                self.tape = stages;
            }
            after_step(self, step + 1);
        }
        Ok(())
    }

    fn run_reverse(
        &mut self,
        model: &mut dyn TensorRhs,
        dl_du: &[Tensor],
        schedule: &Schedule,
    ) -> Result<TensorGradient> {
        let n_steps = self.grid.n_steps();
        let mut lambda = self.outputs[0].zeros_like();
        let mut mu: Vec<Tensor> = model
            .parameters()
            .iter()
            .map(|p| p.detach().zeros_like())
            .collect();
        let mut next_output = self.output_idx.len();
        let mut add_output = |this: &Self, lambda: &Tensor, index: usize| -> Result<()> {
            if next_output > 0 && this.output_idx[next_output - 1] == index {
                crate::ffi::add_scaled_(lambda, &dl_du[next_output - 1], 1.0)?;
                next_output -= 1;
            }
            Ok(())
        };
        add_output(self, &lambda, n_steps)?;
        for action in schedule.reverse() {
            self.enter(&action, Phase::Reverse)?;
            let Action::Reverse { step, stages } = action else {
                self.run_action(model, &action, |_, _| {})?;
                continue;
            };
            let at = self.step_at(step);
            let recomputed;
            let stage_values: &[Tensor] = match stages {
                StageSource::Slot(slot) => &self.slots[slot],
                StageSource::Tape => &self.tape,
                StageSource::Recompute => {
                    recomputed = self.erk.recompute_stages(
                        model,
                        at,
                        self.current.as_ref().expect("a current state"),
                        &mut self.measured,
                    )?;
                    &recomputed
                }
            };
            self.erk.reverse(
                model,
                at,
                stage_values,
                &mut lambda,
                &mut mu,
                &mut self.measured,
            )?;
            if let Some((count, index, value)) = non_finite(&lambda) {
                return Err(Error::NonFiniteAdjoint {
                    step,
                    t: at.t,
                    count,
                    numel: lambda.numel() as i64,
                    index,
                    value,
                });
            }
            add_output(self, &lambda, step)?;
        }
        self.ledger
            .end_reverse()
            .map_err(pnode_runtime::Error::from)?;
        Ok(TensorGradient {
            du0: lambda,
            dparams: mu,
        })
    }
}

/// `(count, first flat index, its value)` of the non-finite entries of `t`, if any. One
/// reduction and one host read when all is finite.
pub(crate) fn non_finite(t: &Tensor) -> Option<(i64, i64, f64)> {
    let sum = t.sum(t.kind()).double_value(&[]);
    if sum.is_finite() {
        return None;
    }
    let bad = t.isfinite().logical_not().flatten(0, -1);
    let count = bad.sum(tch::Kind::Int64).int64_value(&[]);
    if count == 0 {
        // Finite entries whose sum overflowed.
        return None;
    }
    let index = bad
        .to_kind(tch::Kind::Int64)
        .argmax(0, false)
        .int64_value(&[]);
    let value = t.flatten(0, -1).double_value(&[index]);
    Some((count, index, value))
}
