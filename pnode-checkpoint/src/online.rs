//! Online checkpointing: the number of steps is not known while the forward run grows.
//!
//! Adaptive stepping decides step by step whether the run goes on, so the forward sweep cannot
//! follow a plan made for a known `N`. [`OnlinePlanner`] decides before each step what to keep,
//! never holding more than `c` solution slots, and plans the reverse sweep once the run ends:
//!
//! * it keeps `u_n` at multiples of a spacing `d` (starting at `d = 1`); when all `c` slots are
//!   full at the next multiple, it doubles `d` and frees every checkpoint that is not a multiple
//!   of the new spacing (about half of them);
//! * the last step is taken as a [`Action::Tape`], so it needs no checkpoint;
//! * the reverse sweep handles the intervals between kept checkpoints from last to first, each
//!   with Revolve using its start as base and every slot free at that moment (slots of
//!   intervals already reversed are reused).
//!
//! **Recomputation bound.** Doubling happens only when `c` checkpoints span `c·d ≤ N − 1`
//! steps, so the final spacing is `d ≤ max(1, 2(N−1)/c)` for `c ≥ 2`. An interval of `ℓ ≤ d`
//! steps reversed with at least its base slot costs at most `ℓ(ℓ−1)/2 ≤ ℓ(d−1)/2` advances, so
//! the reverse sweep re-advances at most `N(d − 1)/2` steps in all (`(N−1)(N−2)/2` for `c = 1`,
//! where only `u_0` is kept). The forward sweep takes each step once. Tests check the bound and
//! compare with offline Revolve.
//!
//! # References
//! * P. Stumm, A. Walther, "New algorithms for optimal online checkpointing", SIAM J. Sci.
//!   Comput. 32 (2010) — online checkpointing with a fixed number of slots.
//! * Q. Wang, P. Moin, G. Iaccarino, "Minimal repetition dynamic checkpointing algorithm for
//!   unsteady adjoint calculation", SIAM J. Sci. Comput. 31 (2009).

use crate::action::{Action, StageSource};
use crate::error::{Error, Result};
use crate::revolve::Binomial;
use crate::schedule::Schedule;

/// The forward decisions: spacing, kept checkpoints and free slots (`O(c)` memory).
#[derive(Debug, Clone)]
struct Decider {
    slots: usize,
    spacing: usize,
    /// Kept checkpoints `(step, slot)`, steps increasing.
    kept: Vec<(usize, usize)>,
    free: Vec<usize>,
    steps_taken: usize,
    finished: bool,
}

impl Decider {
    fn new(slots: usize) -> Self {
        Self {
            slots,
            spacing: 1,
            kept: Vec::with_capacity(slots),
            free: (0..slots).rev().collect(),
            steps_taken: 0,
            finished: false,
        }
    }

    /// Decide step `n = steps_taken` (the last one when `last`), passing its actions to `out`
    /// in order: frees and a store, then the step.
    fn step(&mut self, last: bool, mut out: impl FnMut(Action)) {
        let n = self.steps_taken;
        if !last && n.is_multiple_of(self.spacing) {
            if self.free.is_empty() && self.slots > 1 {
                // Thin out: keep multiples of 2d only.
                self.spacing *= 2;
                let spacing = self.spacing;
                let free = &mut self.free;
                self.kept.retain(|&(step, slot)| {
                    let keep = step.is_multiple_of(spacing);
                    if !keep {
                        out(Action::Free { slot });
                        free.push(slot);
                    }
                    keep
                });
            }
            if n.is_multiple_of(self.spacing)
                && let Some(slot) = self.free.pop()
            {
                out(Action::Store { slot, step: n });
                self.kept.push((n, slot));
            }
        }
        if last {
            out(Action::Tape { step: n });
            self.finished = true;
        } else {
            out(Action::Advance { from: n, to: n + 1 });
        }
        self.steps_taken += 1;
    }

    /// The reverse sweep once the run ended: the intervals between kept checkpoints from last
    /// to first, each reversed by the binomial recursion from its start with every slot free
    /// at that moment.
    fn reverse(self) -> Binomial {
        let n_steps = self.steps_taken;
        let mut planner = Binomial::new(n_steps, self.slots, self.free);
        // Queued so that the first kept interval runs last.
        let mut end = n_steps - 1;
        let mut intervals = Vec::with_capacity(self.kept.len());
        for &(start, slot) in self.kept.iter().rev() {
            intervals.push((start, end, slot));
            end = start;
        }
        for &(start, end, slot) in intervals.iter().rev() {
            planner.then_release(slot);
            if end > start {
                planner.then_left(start, end - start, slot, None);
                planner.then_emit(Action::Restore { slot, step: start });
            }
        }
        planner.then_emit(Action::Reverse {
            step: n_steps - 1,
            stages: StageSource::Tape,
        });
        planner
    }
}

/// The decisions of a run of `n_steps ≥ 1` steps with `slots ≥ 1`, made without yielding any.
fn decided(n_steps: usize, slots: usize) -> Decider {
    let mut decider = Decider::new(slots);
    for n in 0..n_steps {
        decider.step(n + 1 == n_steps, |_| {});
    }
    decider
}

/// The forward actions of an online run of `n_steps ≥ 1` steps with `slots ≥ 1`, generated
/// one step at a time, consecutive one-step advances merged.
pub(crate) fn online_forward(n_steps: usize, slots: usize) -> impl Iterator<Item = Action> {
    let mut decider = Decider::new(slots);
    let mut queue: std::collections::VecDeque<Action> = std::collections::VecDeque::new();
    // An advance being extended by the following steps.
    let mut open: Option<(usize, usize)> = None;
    std::iter::from_fn(move || {
        loop {
            if let Some(action) = queue.pop_front() {
                return Some(action);
            }
            if decider.steps_taken == n_steps {
                return open.take().map(|(from, to)| Action::Advance { from, to });
            }
            let last = decider.steps_taken + 1 == n_steps;
            decider.step(last, |action| match (action, &mut open) {
                (Action::Advance { from, to }, Some((_, open_to))) if *open_to == from => {
                    *open_to = to;
                }
                (Action::Advance { from, to }, open @ None) => *open = Some((from, to)),
                (action, open) => {
                    if let Some((from, to)) = open.take() {
                        queue.push_back(Action::Advance { from, to });
                    }
                    queue.push_back(action);
                }
            });
        }
    })
}

/// The reverse actions of an online run of `n_steps ≥ 1` steps with `slots ≥ 1`, generated
/// lazily (the forward decisions are replayed first, in `O(N)` time and `O(c)` memory).
pub(crate) fn online_reverse(n_steps: usize, slots: usize) -> Binomial {
    decided(n_steps, slots).reverse()
}

/// Decides checkpoints step by step for a run of unknown length (see the module docs).
#[derive(Debug, Clone)]
pub struct OnlinePlanner {
    decider: Decider,
    /// Slots `ram_slots..` live on disk.
    ram_slots: usize,
    /// The actions of the last step decided.
    last_step: Vec<Action>,
}

impl OnlinePlanner {
    /// A planner that never holds more than `slots ≥ 1` solution checkpoints.
    pub fn new(slots: usize) -> Result<Self> {
        if slots == 0 {
            return Err(Error::BudgetTooSmall {
                given: "0 slots".into(),
                minimum: "1 slot (for u0)".into(),
            });
        }
        Ok(Self {
            decider: Decider::new(slots),
            ram_slots: slots,
            last_step: Vec::new(),
        })
    }

    /// A planner with `ram_slots` slots in RAM and `disk_slots` on disk, which never holds more
    /// than `ram_slots + disk_slots` solution checkpoints: slots `0 … ram_slots − 1` live in RAM
    /// and are filled first, slots `ram_slots …` live on disk
    /// ([`Schedule::slot_on_disk`]); the decisions are those of [`OnlinePlanner::new`] with
    /// `ram_slots + disk_slots` slots. At least one slot in all.
    pub fn two_level(ram_slots: usize, disk_slots: usize) -> Result<Self> {
        let mut planner = Self::new(ram_slots.saturating_add(disk_slots))?;
        planner.ram_slots = ram_slots;
        Ok(planner)
    }

    /// Whether slot `slot` lives on disk.
    pub fn slot_on_disk(&self, slot: usize) -> bool {
        slot >= self.ram_slots && slot < self.decider.slots
    }

    /// The current checkpoint spacing `d`.
    pub fn spacing(&self) -> usize {
        self.decider.spacing
    }

    /// Steps taken so far.
    pub fn steps_taken(&self) -> usize {
        self.decider.steps_taken
    }

    /// Plan the next step `n` (from the current solution `u_n`); `last` says whether it ends the
    /// run. Returns the actions to execute for it, in order (frees and a store, then the step).
    pub fn step(&mut self, last: bool) -> Result<&[Action]> {
        if self.decider.finished {
            return Err(Error::InvalidRequest(
                "the run already ended with its last step".into(),
            ));
        }
        self.last_step.clear();
        let actions = &mut self.last_step;
        self.decider.step(last, |a| actions.push(a));
        Ok(&self.last_step)
    }

    /// The whole schedule once the last step is taken: the forward actions as decided (they
    /// depend only on the number of steps, so the schedule regenerates them), and the reverse
    /// sweep over the kept checkpoints.
    pub fn finish(self) -> Result<Schedule> {
        if !self.decider.finished {
            return Err(Error::InvalidRequest(
                "the run has not ended: mark its last step".into(),
            ));
        }
        let schedule = Schedule::online_generated(self.decider.steps_taken, self.decider.slots);
        let disk_slots = (self.ram_slots..schedule.n_slots()).collect();
        Ok(schedule.with_disk_slots(disk_slots))
    }

    /// The online schedule for a run that turns out to have `n_steps` steps (what an adaptive
    /// run of that length would decide), for fixed grids and tests. Planning is `O(1)`: the
    /// actions are generated as they are read.
    pub fn plan(n_steps: usize, slots: usize) -> Result<Schedule> {
        if n_steps == 0 {
            return Err(Error::InvalidRequest(
                "a schedule needs at least one step".into(),
            ));
        }
        Self::new(slots)?;
        Ok(Schedule::online_generated(n_steps, slots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_doubles_and_slots_are_reused() {
        let mut p = OnlinePlanner::new(3).unwrap();
        for _ in 0..3 {
            p.step(false).unwrap();
        }
        assert_eq!(p.spacing(), 1);
        // Step 3: slots hold u0, u1, u2 → spacing 2, u1 freed, u3 not a multiple of 2.
        let actions = p.step(false).unwrap().to_vec();
        assert_eq!(p.spacing(), 2);
        assert_eq!(
            actions,
            vec![Action::Free { slot: 1 }, Action::Advance { from: 3, to: 4 }]
        );
        let actions = p.step(false).unwrap().to_vec();
        assert_eq!(actions[0], Action::Store { slot: 1, step: 4 });
        p.step(true).unwrap();
        assert!(p.step(true).is_err());
        let s = p.finish().unwrap();
        assert_eq!(s.n_steps(), 6);
        s.validate().unwrap();
    }

    #[test]
    fn unfinished_runs_and_zero_slots_are_errors() {
        let mut p = OnlinePlanner::new(2).unwrap();
        p.step(false).unwrap();
        assert!(matches!(p.finish(), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            OnlinePlanner::new(0),
            Err(Error::BudgetTooSmall { .. })
        ));
    }
}
