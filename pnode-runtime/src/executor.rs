//! The one action executor behind both solvers: checkpoint slots (RAM and disk), the working
//! buffers, the ledger, and the code that runs each [`Action`] of a schedule.
//!
//! The fixed-grid [`crate::Solver`] runs a whole schedule through it; the adaptive
//! [`crate::AdaptiveSolver`] runs the forward actions its online plan decides as each trial step
//! is accepted ([`Executor::keep_taken`]: the step is already taken) and then the same reverse
//! sweep ([`Executor::run_reverse`]). Where each step sits comes from a [`StepTimes`]: the
//! [`TimeGrid`] or the accepted times `t_0 … t_N`, so both solvers run the same arithmetic on
//! the same `(t_n, h_n)` and their gradients agree bit for bit.
//!
//! Every action is entered in the ledger ([`Tracker`]) before it runs, which refuses any the
//! executor could not run and counts steps, recomputations, peak memory and disk traffic.

use crate::checkpoint::{Action, Phase, Schedule, StageSource, StepCost, Tracker};
use crate::disk::DiskSlots;
use crate::error::{Buffer, Error, Result, first_non_finite, try_zeroed};
use crate::grid::TimeGrid;
use crate::model::{Rhs, RhsVjp};
use crate::solver::Gradient;
use crate::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_checkpoint::Stats;

/// Where each step of a sweep sits: `(t_n, h_n)` for step `n`.
pub(crate) trait StepTimes {
    /// Step `index`: its start time and size.
    fn step_at(&self, index: usize) -> StepAt;
}

impl StepTimes for TimeGrid {
    fn step_at(&self, index: usize) -> StepAt {
        StepAt {
            index,
            t: self.t(index),
            h: self.h(index),
        }
    }
}

/// The accepted times `t_0 … t_N` of an adaptive run: `h_n = t_{n+1} − t_n`.
impl StepTimes for [f64] {
    fn step_at(&self, index: usize) -> StepAt {
        let t = self[index];
        StepAt {
            index,
            t,
            h: self[index + 1] - t,
        }
    }
}

/// Bytes of one `f64` state vector of length `n`.
pub(crate) fn vector_bytes(n: usize) -> u64 {
    (n * std::mem::size_of::<f64>()) as u64
}

/// The RAM checkpoint slots in one buffer. Slot `k` is `data[start(k)..start(k) + len(k)]`.
#[derive(Debug, Clone)]
struct SlotStore {
    data: Vec<f64>,
    layout: SlotLayout,
}

/// Where each slot lives in [`SlotStore::data`].
#[derive(Debug, Clone)]
enum SlotLayout {
    /// Every slot has `len` values; disk slots, if any, are the slots from `ram_slots` on and
    /// have no room here.
    Uniform { len: usize, ram_slots: usize },
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
            let layout = SlotLayout::Uniform {
                len,
                ram_slots: usize::MAX,
            };
            return (layout, len.saturating_mul(n_slots));
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
            SlotLayout::Uniform { len, .. } => slot * len..(slot + 1) * len,
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

    /// Room for slots `0 … n_slots − 1` (their RAM part) in a uniform layout. The buffer
    /// grows geometrically (amortized `O(1)` per slot) but never beyond the `ram_slots` slots
    /// the layout allows, so a bounded mode allocates at most what its budget holds;
    /// [`Error::OutOfMemory`] when growing fails.
    fn grow(&mut self, n_slots: usize) -> Result<()> {
        let SlotLayout::Uniform { len, ram_slots } = self.layout else {
            return Ok(());
        };
        let need = n_slots.min(ram_slots).saturating_mul(len);
        if need > self.data.capacity() {
            let limit = ram_slots.saturating_mul(len);
            let capacity = self.data.capacity().saturating_mul(2).min(limit).max(need);
            let bytes = (capacity as u64).saturating_mul(8);
            self.data
                .try_reserve_exact(capacity - self.data.len())
                .map_err(|_| Error::OutOfMemory {
                    what: Buffer::Checkpoints,
                    bytes,
                })?;
        }
        if need > self.data.len() {
            self.data.resize(need, 0.0);
        }
        Ok(())
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

/// Slot storage, working buffers and the ledger of a schedule run (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Executor {
    n: usize,
    /// RAM slots (disk slots have no room here).
    slots: SlotStore,
    /// Values the RAM slots need (fixed size; 0 for a store that grows).
    slot_values: usize,
    /// The schedule's ledger: validates each action before it runs and counts the statistics
    /// the cost model predicts (steps, recomputations, memory, disk traffic).
    pub(crate) ledger: Tracker,
    /// What the stepper counted: RHS/JVP/VJP evaluations, Newton and Krylov iterations.
    pub(crate) measured: Stats,
    disk: DiskSlots,
    /// Stage values on their way to or from a disk slot (empty if no disk slot holds stages).
    disk_stages: Vec<f64>,
    /// The working stage buffer: stage values of the taped (or last trial) step, and of
    /// recomputed steps in reverse.
    pub(crate) tape: Vec<f64>,
    pub(crate) current: Vec<f64>,
    pub(crate) next: Vec<f64>,
    pub(crate) params: Vec<f64>,
    pub(crate) lambda: Vec<f64>,
    pub(crate) mu: Vec<f64>,
}

impl Executor {
    /// An executor for `schedule`, states of `n` values, `n_params` parameters and steps of
    /// `stage_vectors` stage vectors costing `cost`. Its RAM slots are allocated by
    /// [`Executor::begin_sweep`].
    pub(crate) fn for_schedule(
        schedule: &Schedule,
        n: usize,
        n_params: usize,
        stage_vectors: usize,
        cost: &StepCost,
    ) -> Self {
        let stage_len = stage_vectors * n;
        let (layout, slot_values) = SlotStore::layout(schedule, n, stage_len);
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
        let mut exec = Self::with_slots(layout, n, n_params, stage_len, cost);
        exec.slot_values = slot_values;
        exec.disk = DiskSlots::new(on_disk, n, disk_len);
        exec.disk_stages = disk_stages;
        exec
    }

    /// An executor whose slots all hold `slot_len` values and grow as a run of unknown length
    /// asks for them ([`Executor::extend`]), at most `ram_slots` of them in RAM; slots
    /// `ram_slots … ram_slots + disk_slots − 1` live on disk (solutions only). See [`Executor::for_schedule`] for the other arguments.
    pub(crate) fn growing(
        slot_len: usize,
        (ram_slots, disk_slots): (usize, usize),
        n: usize,
        n_params: usize,
        stage_vectors: usize,
        cost: &StepCost,
    ) -> Self {
        let layout = SlotLayout::Uniform {
            len: slot_len,
            ram_slots,
        };
        let mut exec = Self::with_slots(layout, n, n_params, stage_vectors * n, cost);
        if disk_slots > 0 {
            let on_disk = (0..ram_slots + disk_slots)
                .map(|s| s >= ram_slots)
                .collect();
            exec.disk = DiskSlots::new(on_disk, n, n);
        }
        exec
    }

    fn with_slots(
        layout: SlotLayout,
        n: usize,
        n_params: usize,
        stage_len: usize,
        cost: &StepCost,
    ) -> Self {
        Self {
            n,
            slots: SlotStore {
                data: Vec::new(),
                layout,
            },
            slot_values: 0,
            // Sized for the schedule by the first sweep (a solve needs no slot table).
            ledger: Tracker::new(0, 0, cost, vector_bytes(n)),
            measured: Stats::default(),
            disk: DiskSlots::new(Vec::new(), n, 0),
            disk_stages: Vec::new(),
            tape: vec![0.0; stage_len],
            current: vec![0.0; n],
            next: vec![0.0; n],
            params: vec![0.0; n_params],
            lambda: vec![0.0; n],
            mu: vec![0.0; n_params],
        }
    }

    /// Bytes the RAM checkpoint slots take: a fixed store's size (known before its first
    /// sweep), or what a growing store has allocated so far.
    pub(crate) fn slot_bytes(&self) -> u64 {
        (self.slot_values.max(self.slots.data.capacity()) as u64).saturating_mul(8)
    }

    /// See [`crate::Solver::set_checkpoint_dir`].
    pub(crate) fn set_checkpoint_dir(&mut self, parent: std::path::PathBuf) -> Result<()> {
        self.disk.set_parent(parent)
    }

    /// The directory of the current sweep's disk checkpoints, while it exists.
    pub(crate) fn checkpoint_dir(&self) -> Option<&std::path::Path> {
        self.disk.dir()
    }

    /// Before a checkpointed forward sweep: the fixed RAM slots allocated (once), a fresh
    /// directory for the disk slots.
    pub(crate) fn begin_sweep(&mut self) -> Result<()> {
        if self.slots.data.len() != self.slot_values && self.slot_values > 0 {
            self.slots.data = try_zeroed(Buffer::Checkpoints, self.slot_values)?;
        }
        if self.disk.any() {
            self.disk.open()?;
        }
        Ok(())
    }

    /// The disk checkpoints can no longer be reversed: remove them.
    pub(crate) fn discard(&mut self) {
        self.disk.discard();
    }

    /// The end of a reverse sweep that returned `result`: the disk checkpoints removed
    /// whether it succeeded or failed (a failure to remove them reported), then the gradient
    /// `(λ_0, μ)` it computed.
    pub(crate) fn gradient(&mut self, result: Result<()>) -> Result<Gradient> {
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

    /// Let a run of unknown length go on to `n_steps` steps using `n_slots` slots: the ledger's
    /// bounds raised ([`Tracker::extend`]) and room made for the RAM slots.
    pub(crate) fn extend(&mut self, n_steps: usize, n_slots: usize) -> Result<()> {
        self.slots.grow(n_slots)?;
        let disk = &self.disk;
        self.ledger.extend(n_steps, n_slots, |s| disk.on_disk(s));
        Ok(())
    }

    /// Enter `action` in the ledger, which refuses it if it cannot run here and counts its
    /// cost; every action is entered before it runs.
    pub(crate) fn enter(&mut self, action: &Action, phase: Phase) -> Result<()> {
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

    /// Run a forward action for a step already taken, from `current`, its stage values on the
    /// tape and its end in `next` (an accepted adaptive trial step): stores and stage-keeping
    /// keep what they keep, the step itself is not taken again.
    pub(crate) fn keep_taken(&mut self, action: &Action) -> Result<()> {
        match *action {
            Action::Store { slot, .. } => self.store(slot),
            Action::StepKeepingStages { slot, .. } => {
                if self.disk.on_disk(slot) {
                    self.disk.write(slot, &self.tape)
                } else {
                    self.slots.slot_mut(slot).copy_from_slice(&self.tape);
                    Ok(())
                }
            }
            // The step is taken already; its stages stay on the tape for a `Tape`.
            Action::Advance { .. } | Action::Tape { .. } | Action::Free { .. } => Ok(()),
            Action::Restore { .. } | Action::Reverse { .. } => Err(Error::Usage(format!(
                "`{action}` cannot run for a step already taken"
            ))),
        }
    }

    /// `StepKeepingStages`: one step keeping its stage values in `slot`.
    fn step_keeping_stages<S, M, T>(
        &mut self,
        stepper: &mut S,
        times: &T,
        model: &mut M,
        slot: usize,
        step: usize,
    ) -> Result<()>
    where
        M: Rhs + ?Sized,
        S: ForwardStepper<M>,
        T: StepTimes + ?Sized,
    {
        if self.disk.on_disk(slot) {
            self.take_step(stepper, times, model, step, Keep::Disk)?;
            self.disk.write(slot, &self.disk_stages)?;
        } else {
            self.take_step(stepper, times, model, step, Keep::Slot(slot))?;
        }
        Ok(())
    }

    /// One step from `current` (at index `index`) to `current` at `index + 1`.
    fn take_step<S, M, T>(
        &mut self,
        stepper: &mut S,
        times: &T,
        model: &mut M,
        index: usize,
        keep: Keep,
    ) -> Result<()>
    where
        M: Rhs + ?Sized,
        S: ForwardStepper<M>,
        T: StepTimes + ?Sized,
    {
        let at = times.step_at(index);
        let stages = match keep {
            Keep::Nothing => None,
            Keep::Slot(slot) => Some(self.slots.slot_mut(slot)),
            Keep::Disk => Some(self.disk_stages.as_mut_slice()),
            Keep::Tape => Some(self.tape.as_mut_slice()),
        };
        stepper.step(
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

    /// Run one action other than `Reverse`, calling `after_step(current, n)` each time a step
    /// lands on index `n`.
    pub(crate) fn run_action<S, M, T>(
        &mut self,
        stepper: &mut S,
        times: &T,
        model: &mut M,
        action: &Action,
        mut after_step: impl FnMut(&[f64], usize),
    ) -> Result<()>
    where
        M: Rhs + ?Sized,
        S: ForwardStepper<M>,
        T: StepTimes + ?Sized,
    {
        let steps = match *action {
            Action::Store { slot, .. } => {
                self.store(slot)?;
                0..0
            }
            Action::StepKeepingStages { slot, step } => {
                self.step_keeping_stages(stepper, times, model, slot, step)?;
                after_step(&self.current, step + 1);
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
            self.take_step(stepper, times, model, step, keep)?;
            after_step(&self.current, step + 1);
        }
        Ok(())
    }

    /// The reverse phase of `schedule` (its forward phase ran, through this executor, with the
    /// parameters in `params`): `λ_N = g_N`, each step's adjoint in turn, `g_k` added to `λ` at
    /// the output indices `output_idx` (increasing; `dl_du` holds `g_k` as row `k`). Leaves
    /// `λ_0 = dL/du_0` in `lambda` and `dL/dθ` in `mu`.
    pub(crate) fn run_reverse<S, M, T>(
        &mut self,
        stepper: &mut S,
        times: &T,
        model: &mut M,
        dl_du: &[f64],
        output_idx: &[usize],
        schedule: &Schedule,
    ) -> Result<()>
    where
        M: RhsVjp + ?Sized,
        S: AdjointStepper<M>,
        T: StepTimes + ?Sized,
    {
        let n = self.n;
        self.lambda.fill(0.0);
        self.mu.fill(0.0);
        // Outputs are visited from the last to the first.
        let mut next_output = output_idx.len();
        let mut add_output = |lambda: &mut [f64], index: usize| {
            if next_output > 0 && output_idx[next_output - 1] == index {
                let g = &dl_du[(next_output - 1) * n..next_output * n];
                for (l, &gv) in lambda.iter_mut().zip(g) {
                    *l += gv;
                }
                next_output -= 1;
            }
        };
        add_output(&mut self.lambda, schedule.n_steps());
        for action in schedule.reverse() {
            self.enter(&action, Phase::Reverse)?;
            match action {
                Action::Reverse { step, stages } => {
                    let at = times.step_at(step);
                    let stage_values: &[f64] = match stages {
                        StageSource::Slot(slot) if self.disk.on_disk(slot) => {
                            self.disk.read(slot, &mut self.disk_stages)?;
                            &self.disk_stages
                        }
                        StageSource::Slot(slot) => self.slots.slot(slot),
                        StageSource::Tape => &self.tape,
                        StageSource::Recompute => {
                            stepper.recompute_stages(
                                model,
                                at,
                                &self.params,
                                &self.current,
                                &mut self.tape,
                                &mut self.measured,
                            )?;
                            &self.tape
                        }
                    };
                    stepper.reverse(
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
                    add_output(&mut self.lambda, step);
                }
                _ => {
                    self.run_action(stepper, times, model, &action, |_, _| {})
                        .map_err(Error::recomputing)?;
                }
            }
        }
        Ok(self.ledger.end_reverse()?)
    }
}
