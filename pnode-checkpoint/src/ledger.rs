//! The ledger: one symbolic executor that validates a schedule's actions and counts what they
//! cost.
//!
//! A [`Tracker`] holds what an executor holds — the grid index of the current solution, the
//! step on the tape, the next step to reverse, what each slot holds — and applies one
//! [`Action`] at a time, refusing any the executor could not run ([`LedgerError`]). While it
//! applies them it counts every statistic a schedule determines: steps taken and reversed,
//! stage recomputations, RHS and VJP evaluations from the [`StepCost`], disk traffic by tier,
//! and the peaks of live slots and of vectors held in RAM and on disk, in vectors and bytes.
//!
//! [`Schedule::predict`](crate::Schedule::predict) is one tracker run over the actions; the
//! executors (the runtime's `Solver`, the libtorch `TensorSolver`) drive a tracker as they
//! execute and take their statistics from it, so "statistics equal the prediction" holds by
//! construction. What only a run can measure — the RHS/JVP/VJP calls a stepper actually made,
//! Newton and Krylov iterations — the executor merges in with [`Stats::with_measured`].
//!
//! Every action costs `O(1)`: the held vectors per tier and the live slots are running totals,
//! so simulating `N` steps is linear in `N` whatever the number of slots.

use thiserror::Error;

use crate::action::{Action, StageSource};
use crate::error::Error;
use crate::schedule::{Schedule, StepCost};
use crate::stats::Stats;

/// Which phase of a schedule an action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the loss is known: from `u_0` to `u_N`.
    Forward,
    /// After: reversing steps `N−1 … 0`.
    Reverse,
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotContent {
    /// The solution `u_n`.
    Solution(usize),
    /// The stage values of step `n` (which include `u_n`).
    Stages(usize),
}

/// `solution u3`, `the stages of step 3`, or `nothing`.
fn describe(content: &Option<SlotContent>) -> String {
    match content {
        None => "nothing".into(),
        Some(SlotContent::Solution(s)) => format!("solution u{s}"),
        Some(SlotContent::Stages(s)) => format!("the stages of step {s}"),
    }
}

/// Why an action cannot run in the state a [`Tracker`] holds (or why a phase cannot end).
///
/// [`LedgerError::at`] turns it into the planner's [`Error::InvalidSchedule`], which names the
/// action and its position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The action needs the current solution to be `u_wanted`.
    #[error("the current solution is u{current}, not u{wanted}")]
    NotCurrent {
        /// Grid index of the current solution.
        current: usize,
        /// Grid index the action starts from.
        wanted: usize,
    },
    /// A step past the end of the grid.
    #[error("step {step} is past the last step {last}")]
    PastLastStep {
        /// The step asked for.
        step: usize,
        /// The last step, `N − 1`.
        last: usize,
    },
    /// An advance that goes backwards, nowhere, or past `u_N`.
    #[error("cannot advance from u{from} to u{to}")]
    BadAdvance {
        /// Grid index before.
        from: usize,
        /// Grid index after.
        to: usize,
    },
    /// A slot index beyond the slots the schedule addresses.
    #[error("slot {slot} does not exist (the schedule uses {n_slots} slots)")]
    NoSuchSlot {
        /// The slot asked for.
        slot: usize,
        /// Number of slots.
        n_slots: usize,
    },
    /// A restore from an empty slot.
    #[error("slot {slot} is empty")]
    EmptySlot {
        /// The slot.
        slot: usize,
    },
    /// A restore from a slot holding something other than `u_step`.
    #[error("slot {slot} holds {}, not u{step}", describe(&Some(*holds)))]
    WrongSolution {
        /// The slot.
        slot: usize,
        /// The solution asked for.
        step: usize,
        /// What the slot holds.
        holds: SlotContent,
    },
    /// A free of a slot holding nothing.
    #[error("slot {slot} is already empty")]
    AlreadyEmpty {
        /// The slot.
        slot: usize,
    },
    /// A `Reverse` among the forward actions.
    #[error("reverse actions belong to the reverse phase")]
    ReverseInForward,
    /// A `Reverse` after step 0 was reversed.
    #[error("every step is already reversed")]
    AllReversed,
    /// A `Reverse` out of order.
    #[error("the next step to reverse is {next}")]
    OutOfOrder {
        /// The step the action reverses.
        step: usize,
        /// The step that must be reversed next.
        next: usize,
    },
    /// A `Reverse` taking its stages from a slot that does not hold them.
    #[error(
        "slot {slot} does not hold the stages of step {step} (it holds {})",
        describe(holds)
    )]
    NoStagesInSlot {
        /// The slot.
        slot: usize,
        /// The step reversed.
        step: usize,
        /// What the slot holds.
        holds: Option<SlotContent>,
    },
    /// A `Reverse` taking its stages from the tape when the tape does not hold them.
    #[error("the tape does not hold step {step}")]
    NotOnTape {
        /// The step reversed.
        step: usize,
    },
    /// A schedule for zero steps.
    #[error("a schedule needs at least one step")]
    NoSteps,
    /// The forward phase ended elsewhere than at `u_N`.
    #[error("the forward phase must end at u{n_steps}")]
    ForwardEndsEarly {
        /// Grid index of the current solution at the end of the forward phase.
        current: usize,
        /// `N`.
        n_steps: usize,
    },
    /// The reverse phase ended before step 0 was reversed.
    #[error("steps 0..{next_reverse} were never reversed")]
    NotAllReversed {
        /// The steps `0 … next_reverse − 1` remain.
        next_reverse: usize,
    },
}

impl LedgerError {
    /// This error as the planner's [`Error::InvalidSchedule`] for the action printed as
    /// `action` at position `index` (forward actions first, then reverse ones).
    pub fn at(self, index: usize, action: impl ToString) -> Error {
        Error::InvalidSchedule {
            index,
            action: action.to_string(),
            reason: self,
        }
    }
}

/// The ledger of a schedule run: the symbolic state of an executor and the statistics of what
/// it did so far. See the module docs.
#[derive(Debug, Clone)]
pub struct Tracker {
    n_steps: usize,
    cost: StepCost,
    vector_bytes: u64,
    /// Grid index of the current solution.
    current: usize,
    /// The step whose stage values the working stage buffer holds, if any.
    tape: Option<usize>,
    /// The next step to reverse is `next_reverse − 1`; starts at `N`.
    next_reverse: usize,
    slots: Vec<Option<SlotContent>>,
    /// Whether each slot lives on disk.
    on_disk: Vec<bool>,
    /// Vectors held now by RAM slots and by disk slots.
    held: Held,
    /// Slots holding anything now.
    live_slots: u64,
    /// Actions applied so far.
    applied: usize,
    /// Counts so far; the byte peaks are filled in by [`Tracker::stats`].
    stats: Stats,
}

/// Vectors held now, by tier.
#[derive(Debug, Clone, Copy, Default)]
struct Held {
    ram: u64,
    disk: u64,
}

impl Tracker {
    /// The state before the first action of an `n_steps`-step schedule with `n_slots` RAM
    /// slots: `u_0` current, slots empty, nothing counted. `cost` prices the actions and
    /// `vector_bytes` is one state vector's size (state length × bytes per value; the tensor
    /// executor passes a tensor's bytes).
    pub fn new(n_steps: usize, n_slots: usize, cost: &StepCost, vector_bytes: u64) -> Self {
        Self {
            n_steps,
            cost: *cost,
            vector_bytes,
            current: 0,
            tape: None,
            next_reverse: n_steps,
            slots: vec![None; n_slots],
            on_disk: vec![false; n_slots],
            held: Held::default(),
            live_slots: 0,
            applied: 0,
            stats: Stats::default(),
        }
    }

    /// The state before the first action of `schedule`, with its slots in their tiers
    /// ([`Schedule::slot_on_disk`]).
    pub fn for_schedule(schedule: &Schedule, cost: &StepCost, vector_bytes: u64) -> Self {
        let mut tracker = Self::new(0, 0, cost, vector_bytes);
        tracker.restart(schedule);
        tracker
    }

    /// Back to the state before the first action of `schedule` (slots and tiers from it; cost
    /// and vector size kept), reusing this tracker's memory: no allocation when it has had as
    /// many slots before, so an executor restarts its ledger for every sweep without one.
    pub fn restart(&mut self, schedule: &Schedule) {
        let n_slots = schedule.n_slots();
        self.n_steps = schedule.n_steps();
        self.current = 0;
        self.tape = None;
        self.next_reverse = self.n_steps;
        self.slots.clear();
        self.slots.resize(n_slots, None);
        self.on_disk.clear();
        self.on_disk.resize(n_slots, false);
        for slot in schedule.disk_slots().filter(|&s| s < n_slots) {
            self.on_disk[slot] = true;
        }
        self.held = Held::default();
        self.live_slots = 0;
        self.applied = 0;
        self.stats = Stats::default();
    }

    /// Let a run whose length is found as it goes (adaptive stepping, whose schedule is decided
    /// step by step) go on to `n_steps` steps with `n_slots` slots, so that its executor enters
    /// each forward action as it runs it: before each accepted step it raises the bounds to
    /// that step. Bounds never shrink; added slots are empty and live on disk when
    /// `on_disk(slot)`. Only before the reverse phase starts (ignored after).
    pub fn extend(&mut self, n_steps: usize, n_slots: usize, on_disk: impl Fn(usize) -> bool) {
        if self.next_reverse != self.n_steps {
            return;
        }
        if n_steps > self.n_steps {
            self.n_steps = n_steps;
            self.next_reverse = n_steps;
        }
        for slot in self.slots.len()..n_slots {
            self.slots.push(None);
            self.on_disk.push(on_disk(slot));
        }
    }

    /// Check `action` against the state, then apply it and count its cost; on an error the
    /// state and the counts are unchanged.
    ///
    /// A forward step (advance, stage-keeping step or tape) costs `rhs_per_step` and counts as
    /// a forward step in the forward phase and a recomputed step in the reverse phase; a
    /// reverse with recomputed stages adds `rhs_per_stage_recompute` and a stage
    /// recomputation; each reverse costs `vjp_per_reverse`. A solution slot holds one vector
    /// and a stage slot `stage_vectors`. A store into a disk slot writes one vector
    /// (`stage_vectors` for a stage-keeping step), a restore from one reads one vector, and a
    /// reverse taking its stages from one reads `stage_vectors`.
    pub fn apply(&mut self, action: &Action, phase: Phase) -> Result<(), LedgerError> {
        let cost = self.cost;
        match *action {
            Action::Store { slot, step } => {
                self.need_current(step)?;
                self.need_slot(slot)?;
                self.fill(slot, SlotContent::Solution(step), 1);
            }
            Action::StepKeepingStages { slot, step } => {
                self.need_step(step)?;
                self.need_slot(slot)?;
                self.fill(slot, SlotContent::Stages(step), cost.stage_vectors);
                self.take_steps(1, phase);
            }
            Action::Tape { step } => {
                self.need_step(step)?;
                self.tape = Some(step);
                self.take_steps(1, phase);
            }
            Action::Advance { from, to } => {
                self.need_current(from)?;
                if to <= from || to > self.n_steps {
                    return Err(LedgerError::BadAdvance { from, to });
                }
                self.take_steps((to - from) as u64, phase);
            }
            Action::Restore { slot, step } => {
                match self.need_slot(slot)? {
                    Some(SlotContent::Solution(s) | SlotContent::Stages(s)) if s == step => {}
                    Some(holds) => return Err(LedgerError::WrongSolution { slot, step, holds }),
                    None => return Err(LedgerError::EmptySlot { slot }),
                }
                self.current = step;
                if self.on_disk[slot] {
                    self.stats.disk_reads += 1;
                }
            }
            Action::Free { slot } => {
                if self.need_slot(slot)?.is_none() {
                    return Err(LedgerError::AlreadyEmpty { slot });
                }
                self.release(slot);
            }
            Action::Reverse { step, stages } => {
                if phase == Phase::Forward {
                    return Err(LedgerError::ReverseInForward);
                }
                if self.next_reverse == 0 {
                    return Err(LedgerError::AllReversed);
                }
                if step + 1 != self.next_reverse {
                    return Err(LedgerError::OutOfOrder {
                        step,
                        next: self.next_reverse - 1,
                    });
                }
                match stages {
                    StageSource::Slot(slot) => match self.need_slot(slot)? {
                        Some(SlotContent::Stages(s)) if s == step => {
                            if self.on_disk[slot] {
                                self.stats.disk_reads += cost.stage_vectors;
                            }
                        }
                        holds => return Err(LedgerError::NoStagesInSlot { slot, step, holds }),
                    },
                    StageSource::Tape => {
                        if self.tape != Some(step) {
                            return Err(LedgerError::NotOnTape { step });
                        }
                    }
                    StageSource::Recompute => {
                        self.need_current(step)?;
                        // Recomputation overwrites the working stage buffer.
                        self.tape = None;
                        self.stats.rhs_evals += cost.rhs_per_stage_recompute;
                        self.stats.stage_recomputations += 1;
                    }
                }
                self.next_reverse = step;
                self.stats.vjp_evals += cost.vjp_per_reverse;
                self.stats.reversed_steps += 1;
            }
        }
        self.applied += 1;
        Ok(())
    }

    /// Check that the forward phase may end here: the current solution is `u_N`. A failure is
    /// reported at the position after the last action applied, as `end of forward phase`.
    pub fn end_forward(&self) -> Result<(), Error> {
        if self.current == self.n_steps {
            return Ok(());
        }
        let reason = LedgerError::ForwardEndsEarly {
            current: self.current,
            n_steps: self.n_steps,
        };
        Err(reason.at(self.applied, "end of forward phase"))
    }

    /// Check that the reverse phase may end here: every step is reversed. A failure is
    /// reported at the position after the last action applied, as `end of reverse phase`.
    pub fn end_reverse(&self) -> Result<(), Error> {
        match self.next_reverse {
            0 => Ok(()),
            next_reverse => Err(LedgerError::NotAllReversed { next_reverse }
                .at(self.applied, "end of reverse phase")),
        }
    }

    /// What the actions applied so far cost: every field but the measured ones (JVPs, Newton
    /// and Krylov iterations, always 0 here), with `peak_stored_bytes = peak_stored_vectors ×
    /// vector_bytes` and `peak_disk_bytes = peak_disk_vectors × vector_bytes`.
    pub fn stats(&self) -> Stats {
        Stats {
            peak_stored_bytes: self.stats.peak_stored_vectors * self.vector_bytes,
            peak_disk_bytes: self.stats.peak_disk_vectors * self.vector_bytes,
            ..self.stats
        }
    }

    /// Number of actions applied so far (the position of the next one).
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// Grid index of the current solution.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The step whose stage values the working stage buffer holds, if any.
    pub fn tape(&self) -> Option<usize> {
        self.tape
    }

    /// The next step to reverse is `next_reverse() − 1`; `N` before the reverse phase, 0 when
    /// every step is reversed.
    pub fn next_reverse(&self) -> usize {
        self.next_reverse
    }

    /// What slot `slot` holds (`None` when it is empty or does not exist).
    pub fn slot(&self, slot: usize) -> Option<SlotContent> {
        self.slots.get(slot).copied().flatten()
    }

    /// Number of slots.
    pub fn n_slots(&self) -> usize {
        self.slots.len()
    }

    /// Slots holding anything now.
    pub fn live_slots(&self) -> u64 {
        self.live_slots
    }

    /// State vectors the RAM slots hold now.
    pub fn ram_vectors(&self) -> u64 {
        self.held.ram
    }

    /// State vectors the disk slots hold now.
    pub fn disk_vectors(&self) -> u64 {
        self.held.disk
    }

    fn need_current(&self, step: usize) -> Result<(), LedgerError> {
        if self.current == step {
            Ok(())
        } else {
            Err(LedgerError::NotCurrent {
                current: self.current,
                wanted: step,
            })
        }
    }

    fn need_step(&self, step: usize) -> Result<(), LedgerError> {
        self.need_current(step)?;
        if step >= self.n_steps {
            return Err(LedgerError::PastLastStep {
                step,
                last: self.n_steps.saturating_sub(1),
            });
        }
        Ok(())
    }

    /// What `slot` holds, if it exists.
    fn need_slot(&self, slot: usize) -> Result<Option<SlotContent>, LedgerError> {
        self.slots
            .get(slot)
            .copied()
            .ok_or(LedgerError::NoSuchSlot {
                slot,
                n_slots: self.slots.len(),
            })
    }

    /// Count `steps` steps from the current solution.
    fn take_steps(&mut self, steps: u64, phase: Phase) {
        self.current += steps as usize;
        self.stats.rhs_evals += steps * self.cost.rhs_per_step;
        match phase {
            Phase::Forward => self.stats.forward_steps += steps,
            Phase::Reverse => self.stats.recomputed_steps += steps,
        }
    }

    /// Vectors a slot holding `content` holds.
    fn vectors(&self, content: Option<SlotContent>) -> u64 {
        match content {
            None => 0,
            Some(SlotContent::Solution(_)) => 1,
            Some(SlotContent::Stages(_)) => self.cost.stage_vectors,
        }
    }

    /// Empty `slot` (which exists), updating the running totals.
    fn release(&mut self, slot: usize) {
        let old = self.slots[slot].take();
        let vectors = self.vectors(old);
        let held = if self.on_disk[slot] {
            &mut self.held.disk
        } else {
            &mut self.held.ram
        };
        *held -= vectors;
        self.live_slots -= u64::from(old.is_some());
    }

    /// Put `content` (`vectors` vectors) into `slot` (which exists), releasing what it held;
    /// counts the disk write and updates the peaks.
    fn fill(&mut self, slot: usize, content: SlotContent, vectors: u64) {
        self.release(slot);
        self.slots[slot] = Some(content);
        self.live_slots += 1;
        if self.on_disk[slot] {
            self.held.disk += vectors;
            self.stats.disk_writes += vectors;
            self.stats.peak_disk_vectors = self.stats.peak_disk_vectors.max(self.held.disk);
        } else {
            self.held.ram += vectors;
            self.stats.peak_stored_vectors = self.stats.peak_stored_vectors.max(self.held.ram);
        }
        self.stats.peak_slots = self.stats.peak_slots.max(self.live_slots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::OnlinePlanner;

    fn unit_cost() -> StepCost {
        StepCost {
            rhs_per_step: 1,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 1,
            stage_vectors: 2,
        }
    }

    /// A tracker raised step by step as an online run of unknown length decides its actions
    /// ends in the state and with the counts of one made for the finished schedule, refuses a
    /// step past its bounds, and no longer grows once the reverse phase started.
    #[test]
    fn an_extended_tracker_matches_one_made_for_the_finished_schedule() {
        let (n_steps, slots) = (23, 3);
        let mut planner = OnlinePlanner::two_level(2, 1).unwrap();
        let mut grown = Tracker::new(0, 0, &unit_cost(), 8);
        assert_eq!(
            grown.apply(&Action::Tape { step: 0 }, Phase::Forward),
            Err(LedgerError::PastLastStep { step: 0, last: 0 })
        );
        for step in 0..n_steps {
            let actions = planner.step(step + 1 == n_steps).unwrap().to_vec();
            grown.extend(step + 1, slots, |s| planner.slot_on_disk(s));
            for action in &actions {
                grown.apply(action, Phase::Forward).unwrap();
            }
        }
        grown.end_forward().unwrap();
        let schedule = planner.finish().unwrap();
        assert_eq!(schedule.disk_slots().collect::<Vec<_>>(), vec![2]);
        let mut made = Tracker::for_schedule(&schedule, &unit_cost(), 8);
        for action in schedule.forward() {
            made.apply(&action, Phase::Forward).unwrap();
        }
        assert_eq!(grown.stats(), made.stats());
        for action in schedule.reverse() {
            grown.apply(&action, Phase::Reverse).unwrap();
            made.apply(&action, Phase::Reverse).unwrap();
        }
        grown.end_reverse().unwrap();
        assert_eq!(grown.stats(), made.stats());
        assert!(grown.stats().disk_writes > 0 && grown.stats().peak_slots == 3);
        grown.extend(n_steps + 5, slots + 2, |_| false);
        assert_eq!(grown.n_slots(), slots);
        assert_eq!(grown.next_reverse(), 0);
    }
}
