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
use crate::revolve::Planner;
use crate::schedule::Schedule;

/// Decides checkpoints step by step for a run of unknown length (see the module docs).
#[derive(Debug, Clone)]
pub struct OnlinePlanner {
    slots: usize,
    spacing: usize,
    /// Kept checkpoints `(step, slot)`, steps increasing.
    kept: Vec<(usize, usize)>,
    free: Vec<usize>,
    forward: Vec<Action>,
    steps_taken: usize,
    finished: bool,
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
            slots,
            spacing: 1,
            kept: Vec::with_capacity(slots),
            free: (0..slots).rev().collect(),
            forward: Vec::new(),
            steps_taken: 0,
            finished: false,
        })
    }

    /// The current checkpoint spacing `d`.
    pub fn spacing(&self) -> usize {
        self.spacing
    }

    /// Steps taken so far.
    pub fn steps_taken(&self) -> usize {
        self.steps_taken
    }

    /// Plan the next step `n` (from the current solution `u_n`); `last` says whether it ends the
    /// run. Returns the actions to execute for it, in order (frees and a store, then the step).
    pub fn step(&mut self, last: bool) -> Result<&[Action]> {
        if self.finished {
            return Err(Error::InvalidRequest(
                "the run already ended with its last step".into(),
            ));
        }
        let n = self.steps_taken;
        let begin = self.forward.len();
        if !last && n.is_multiple_of(self.spacing) {
            if self.free.is_empty() && self.slots > 1 {
                // Thin out: keep multiples of 2d only.
                self.spacing *= 2;
                let spacing = self.spacing;
                let (keep, drop): (Vec<_>, Vec<_>) = self
                    .kept
                    .iter()
                    .partition(|(step, _)| step.is_multiple_of(spacing));
                for &(_, slot) in &drop {
                    self.forward.push(Action::Free { slot });
                    self.free.push(slot);
                }
                self.kept = keep;
            }
            if n.is_multiple_of(self.spacing)
                && let Some(slot) = self.free.pop()
            {
                self.forward.push(Action::Store { slot, step: n });
                self.kept.push((n, slot));
            }
        }
        if last {
            self.forward.push(Action::Tape { step: n });
            self.finished = true;
        } else {
            self.forward.push(Action::Advance { from: n, to: n + 1 });
        }
        self.steps_taken += 1;
        Ok(&self.forward[begin..])
    }

    /// The whole schedule once the last step is taken: the forward actions as decided, and the
    /// reverse sweep over the kept checkpoints.
    pub fn finish(self) -> Result<Schedule> {
        if !self.finished {
            return Err(Error::InvalidRequest(
                "the run has not ended: mark its last step".into(),
            ));
        }
        let n_steps = self.steps_taken;
        let mut planner = Planner::new(self.free.clone());
        planner.reverse.push(Action::Reverse {
            step: n_steps - 1,
            stages: StageSource::Tape,
        });
        let mut end = n_steps - 1;
        for &(start, slot) in self.kept.iter().rev() {
            if end > start {
                planner.reverse.push(Action::Restore { slot, step: start });
                let free = planner.free_count();
                planner.left(start, end - start, slot, free);
            }
            planner.reverse.push(Action::Free { slot });
            planner.give_slot(slot);
            end = start;
        }
        let mut forward = self.forward;
        merge_advances(&mut forward);
        Ok(Schedule::new_unchecked(
            format!("online({})", self.slots),
            n_steps,
            forward,
            planner.reverse,
        ))
    }

    /// The online schedule for a run that turns out to have `n_steps` steps (what an adaptive
    /// run of that length would decide), for fixed grids and tests.
    pub fn plan(n_steps: usize, slots: usize) -> Result<Schedule> {
        if n_steps == 0 {
            return Err(Error::InvalidRequest(
                "a schedule needs at least one step".into(),
            ));
        }
        let mut planner = Self::new(slots)?;
        for n in 0..n_steps {
            planner.step(n + 1 == n_steps)?;
        }
        planner.finish()
    }
}

/// Merge consecutive one-step advances (`u_a → u_b`, `u_b → u_c` becomes `u_a → u_c`).
fn merge_advances(actions: &mut Vec<Action>) {
    let mut merged: Vec<Action> = Vec::with_capacity(actions.len());
    for &action in actions.iter() {
        if let (Some(Action::Advance { to: prev_to, .. }), Action::Advance { from, to }) =
            (merged.last_mut(), action)
            && *prev_to == from
        {
            *prev_to = to;
            continue;
        }
        merged.push(action);
    }
    *actions = merged;
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
