//! The schedule executor: forward solves, checkpointed forward sweeps and discrete-adjoint
//! reverse sweeps, for any one-step method and any valid [`Schedule`].
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

use crate::checkpoint::{Action, Checkpointing, Phase, Schedule, StageSource, StepCost, Tracker};
use crate::disk::DiskSlots;
use crate::erk::ErkStepper;
use crate::error::{Buffer, Error, Result, check_len, first_non_finite, try_zeroed};
use crate::grid::TimeGrid;
use crate::model::{Rhs, RhsVjp};
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
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

/// Bytes of one `f64` state vector of length `n`.
fn vector_bytes(n: usize) -> u64 {
    (n * std::mem::size_of::<f64>()) as u64
}

/// The RAM checkpoint slots in one buffer, allocated by the first checkpointed sweep (a solver
/// that only solves never allocates them). Slot `k` is `data[start(k)..start(k) + len(k)]`.
#[derive(Debug, Clone)]
struct SlotStore {
    data: Vec<f64>,
    layout: SlotLayout,
}

/// Where each slot lives in [`SlotStore::data`].
#[derive(Debug, Clone)]
enum SlotLayout {
    /// Every slot has `len` values (no disk slots).
    Uniform { len: usize },
    /// Slot `k` is `starts[k]..starts[k + 1]` (disk slots are empty here).
    Listed { starts: Vec<usize> },
}

impl SlotStore {
    /// The layout for `schedule` with states of `n` values and stage slots of `stage_len`, and
    /// the values it needs (saturating).
    fn layout(schedule: &Schedule, n: usize, stage_len: usize) -> (SlotLayout, usize) {
        let n_slots = schedule.n_slots();
        let stage_slots = schedule.stage_slots();
        let any_disk = schedule.disk_slots().next().is_some();
        let len = |slot: usize| if stage_slots[slot] { stage_len } else { n };
        let uniform =
            n_slots == 0 || (!any_disk && stage_slots.iter().all(|&s| s == stage_slots[0]));
        if uniform {
            let len = if n_slots == 0 { 0 } else { len(0) };
            return (SlotLayout::Uniform { len }, len.saturating_mul(n_slots));
        }
        let mut starts = Vec::with_capacity(n_slots + 1);
        let mut total = 0usize;
        for slot in 0..n_slots {
            starts.push(total);
            if !schedule.slot_on_disk(slot) {
                total = total.saturating_add(len(slot));
            }
        }
        starts.push(total);
        (SlotLayout::Listed { starts }, total)
    }

    fn range(&self, slot: usize) -> std::ops::Range<usize> {
        match &self.layout {
            SlotLayout::Uniform { len } => slot * len..(slot + 1) * len,
            SlotLayout::Listed { starts } => starts[slot]..starts[slot + 1],
        }
    }

    fn slot(&self, slot: usize) -> &[f64] {
        &self.data[self.range(slot)]
    }

    fn slot_mut(&mut self, slot: usize) -> &mut [f64] {
        let range = self.range(slot);
        &mut self.data[range]
    }
}

/// Where a step's stage values go.
#[derive(Debug, Clone, Copy)]
enum Keep {
    Nothing,
    Slot(usize),
    /// The disk staging buffer, to be written to a disk slot.
    Disk,
    Tape,
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
    /// RAM slots (disk slots have no room here), allocated by the first checkpointed sweep.
    slots: SlotStore,
    /// Values the RAM slots need.
    slot_values: usize,
    /// The schedule's ledger: validates each action before it runs and counts the statistics
    /// the cost model predicts (steps, recomputations, memory, disk traffic).
    ledger: Tracker,
    /// What the stepper counted: RHS/JVP/VJP evaluations, Newton and Krylov iterations.
    measured: Stats,
    disk: DiskSlots,
    /// Stage values on their way to or from a disk slot (empty if no disk slot holds stages).
    disk_stages: Vec<f64>,
    stage_scratch: Vec<f64>,
    current: Vec<f64>,
    next: Vec<f64>,
    outputs: Vec<f64>,
    params: Vec<f64>,
    lambda: Vec<f64>,
    mu: Vec<f64>,
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
        let stage_len = stepper.stage_vectors() * n;
        let (layout, slot_values) = SlotStore::layout(&schedule, n, stage_len);
        // Only disk slots need the stage flags: scan up to the last one.
        let disk_end = schedule.disk_slots().last().map_or(0, |s| s + 1);
        let stage_slots = if disk_end > 0 {
            schedule.stage_slots()
        } else {
            Vec::new()
        };
        let slot_len = |slot: usize| {
            if stage_slots[slot] { stage_len } else { n }
        };
        let on_disk: Vec<bool> = (0..disk_end).map(|s| schedule.slot_on_disk(s)).collect();
        let disk_len = (0..disk_end)
            .filter(|&s| on_disk[s])
            .map(slot_len)
            .max()
            .unwrap_or(0);
        let disk_holds_stages = (0..disk_end).any(|s| on_disk[s] && stage_slots[s]);
        let disk_stages = vec![0.0; if disk_holds_stages { stage_len } else { 0 }];
        let outputs = try_zeroed(Buffer::Outputs, output_times.len().saturating_mul(n))?;
        let dl_du = try_zeroed(Buffer::Outputs, output_times.len().saturating_mul(n))?;
        Ok(Self {
            stepper,
            output_idx,
            forward_only: Schedule::forward_only(n_steps),
            // Sized for the schedule by the first sweep (a solve needs no slot table).
            ledger: Tracker::new(n_steps, 0, &cost, vector_bytes(n)),
            measured: Stats::default(),
            schedule,
            cost,
            n,
            n_params,
            disk: DiskSlots::new(on_disk, n, disk_len),
            disk_stages,
            slots: SlotStore {
                data: Vec::new(),
                layout,
            },
            slot_values,
            stage_scratch: vec![0.0; stage_len],
            current: vec![0.0; n],
            next: vec![0.0; n],
            outputs,
            params: vec![0.0; n_params],
            lambda: vec![0.0; n],
            mu: vec![0.0; n_params],
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
        self.disk.set_parent(parent.into())
    }

    /// The directory holding the disk checkpoints of the current forward sweep, while it
    /// exists (from [`Solver::forward`] to the end of [`Solver::backward`]).
    pub fn checkpoint_dir(&self) -> Option<&Path> {
        self.disk.dir()
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
        self.ledger.stats().with_measured(&self.measured)
    }

    /// Bytes the RAM checkpoint slots take: allocated by the first checkpointed sweep
    /// ([`Solver::forward`]), never by [`Solver::solve`]. For store-all, solution-only and
    /// Revolve this is the schedule's predicted peak (`peak_stored_bytes`).
    pub fn checkpoint_bytes(&self) -> u64 {
        (self.slot_values as u64).saturating_mul(8)
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
        self.disk.discard();
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
        if self.slots.data.len() != self.slot_values {
            self.slots.data = try_zeroed(Buffer::Checkpoints, self.slot_values)?;
        }
        if self.disk.any() {
            self.disk.open()?;
        }
        let schedule = std::mem::replace(&mut self.schedule, Schedule::forward_only(0));
        let result = self.run_forward(model, u0, p, &schedule);
        self.schedule = schedule;
        if let Err(e) = result {
            self.disk.discard();
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
        let result = self.run_reverse(model, dl_du, &schedule);
        self.schedule = schedule;
        if let Err(e) = result {
            self.disk.discard();
            return Err(e);
        }
        self.disk.close()?;
        Ok(Gradient {
            du0: self.lambda.clone(),
            dp: self.mu.clone(),
        })
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
            .map_err(|reason| reason.at(index, action))?;
        Ok(())
    }

    /// `Store`: the current solution into `slot`.
    fn store(&mut self, slot: usize) -> Result<()> {
        if self.disk.on_disk(slot) {
            self.disk.write(slot, &self.current)?;
        } else {
            self.slots.slot_mut(slot)[..self.n].copy_from_slice(&self.current);
        }
        Ok(())
    }

    /// `Restore`: the solution `slot` holds (first in a stage slot) becomes current.
    fn restore(&mut self, slot: usize) -> Result<()> {
        if self.disk.on_disk(slot) {
            self.disk.read(slot, &mut self.current)?;
        } else {
            self.current
                .copy_from_slice(&self.slots.slot(slot)[..self.n]);
        }
        Ok(())
    }

    /// `StepKeepingStages`: one step keeping its stage values in `slot`.
    fn step_keeping_stages<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        slot: usize,
        step: usize,
    ) -> Result<()>
    where
        S: ForwardStepper<M>,
    {
        if self.disk.on_disk(slot) {
            self.take_step(model, step, Keep::Disk)?;
            self.disk.write(slot, &self.disk_stages)?;
        } else {
            self.take_step(model, step, Keep::Slot(slot))?;
        }
        Ok(())
    }

    /// One step from `current` (at grid index `index`) to `current` at `index + 1`.
    fn take_step<M: Rhs + ?Sized>(&mut self, model: &mut M, index: usize, keep: Keep) -> Result<()>
    where
        S: ForwardStepper<M>,
    {
        let at = self.step_at(index);
        let stages = match keep {
            Keep::Nothing => None,
            Keep::Slot(slot) => Some(self.slots.slot_mut(slot)),
            Keep::Disk => Some(self.disk_stages.as_mut_slice()),
            Keep::Tape => Some(self.stage_scratch.as_mut_slice()),
        };
        self.stepper.step(
            model,
            at,
            &self.params,
            &self.current,
            &mut self.next,
            stages,
            &mut self.measured,
        )?;
        std::mem::swap(&mut self.current, &mut self.next);
        if let Some((component, value)) = first_non_finite(&self.current) {
            return Err(Error::NonFiniteState {
                step: index,
                t: at.t + at.h,
                component,
                value,
            });
        }
        Ok(())
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
        self.ledger.restart(schedule);
        self.measured = Stats::default();
        self.params.copy_from_slice(p);
        self.current.copy_from_slice(u0);
        let mut next_output = 0;
        let n = self.n;
        let mut record = |this: &mut Self, index: usize| {
            if next_output < this.output_idx.len() && this.output_idx[next_output] == index {
                this.outputs[next_output * n..(next_output + 1) * n].copy_from_slice(&this.current);
                next_output += 1;
            }
        };
        record(self, 0);
        for action in schedule.forward() {
            self.enter(&action, Phase::Forward)?;
            self.run_action(model, &action, &mut record)?;
        }
        Ok(self.ledger.end_forward()?)
    }

    /// Run one action other than `Reverse`, calling `after_step(self, n)` each time a step
    /// lands on grid index `n`.
    fn run_action<M: Rhs + ?Sized>(
        &mut self,
        model: &mut M,
        action: &Action,
        mut after_step: impl FnMut(&mut Self, usize),
    ) -> Result<()>
    where
        S: ForwardStepper<M>,
    {
        let steps = match *action {
            Action::Store { slot, .. } => {
                self.store(slot)?;
                0..0
            }
            Action::StepKeepingStages { slot, step } => {
                self.step_keeping_stages(model, slot, step)?;
                after_step(self, step + 1);
                return Ok(());
            }
            Action::Tape { step } => step..step + 1,
            Action::Advance { from, to } => from..to,
            Action::Restore { slot, .. } => {
                self.restore(slot)?;
                0..0
            }
            // Slot buffers are kept; the ledger records that the slot is free.
            Action::Free { .. } => 0..0,
            Action::Reverse { .. } => {
                return Err(Error::Usage("reverse action in a forward phase".into()));
            }
        };
        let keep = if matches!(action, Action::Tape { .. }) {
            Keep::Tape
        } else {
            Keep::Nothing
        };
        for step in steps {
            self.take_step(model, step, keep)?;
            after_step(self, step + 1);
        }
        Ok(())
    }

    fn run_reverse<M: RhsVjp + ?Sized>(
        &mut self,
        model: &mut M,
        dl_du: &[f64],
        schedule: &Schedule,
    ) -> Result<()>
    where
        S: AdjointStepper<M>,
    {
        let n = self.n;
        let n_steps = self.grid.n_steps();
        self.lambda.fill(0.0);
        self.mu.fill(0.0);
        // Outputs are visited from the last to the first.
        let mut next_output = self.output_idx.len();
        let mut add_output = |this: &mut Self, index: usize| {
            if next_output > 0 && this.output_idx[next_output - 1] == index {
                let g = &dl_du[(next_output - 1) * n..next_output * n];
                for (l, &gv) in this.lambda.iter_mut().zip(g) {
                    *l += gv;
                }
                next_output -= 1;
            }
        };
        add_output(self, n_steps);
        for action in schedule.reverse() {
            self.enter(&action, Phase::Reverse)?;
            match action {
                Action::Reverse { step, stages } => {
                    let at = self.step_at(step);
                    let stage_values: &[f64] = match stages {
                        StageSource::Slot(slot) if self.disk.on_disk(slot) => {
                            self.disk.read(slot, &mut self.disk_stages)?;
                            &self.disk_stages
                        }
                        StageSource::Slot(slot) => self.slots.slot(slot),
                        StageSource::Tape => &self.stage_scratch,
                        StageSource::Recompute => {
                            self.stepper.recompute_stages(
                                model,
                                at,
                                &self.params,
                                &self.current,
                                &mut self.stage_scratch,
                                &mut self.measured,
                            )?;
                            &self.stage_scratch
                        }
                    };
                    self.stepper.reverse(
                        model,
                        at,
                        &self.params,
                        stage_values,
                        &mut self.lambda,
                        &mut self.mu,
                        &mut self.measured,
                    )?;
                    if let Some((component, value)) = first_non_finite(&self.lambda) {
                        return Err(Error::NonFiniteAdjoint {
                            step,
                            t: at.t,
                            component,
                            value,
                        });
                    }
                    add_output(self, step);
                }
                _ => {
                    self.run_action(model, &action, |_, _| {})
                        .map_err(Error::recomputing)?;
                }
            }
        }
        Ok(self.ledger.end_reverse()?)
    }
}
