//! The instructions a schedule is made of.

use std::fmt;

use serde::Serialize;

/// Where a reversed step's stage values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSource {
    /// A stage slot holding that step's stage values.
    Slot(usize),
    /// The working stage buffer, filled by an [`Action::Tape`] of that step.
    Tape,
    /// Recomputed from the current solution, which must be the step's starting solution.
    Recompute,
}

/// One instruction of a checkpoint schedule.
///
/// Step indices refer to the time grid: step `n` goes from `t_n` to `t_{n+1}`, and "the current
/// solution" is the working state `u_n` the executor holds. Besides slots, the executor has a
/// fixed *working memory* — the current solution and one stage buffer — that is not a
/// checkpoint and is not counted in a schedule's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Copy the current solution `u_step` into solution slot `slot`.
    Store {
        /// Slot to fill (anything it held is released).
        slot: usize,
        /// Grid index of the current solution.
        step: usize,
    },
    /// Take step `step` from the current solution `u_step`, keeping its stage values (which
    /// include `u_step`) in `slot`; the current solution becomes `u_{step+1}`.
    StepKeepingStages {
        /// Slot to fill (anything it held is released).
        slot: usize,
        /// The step taken.
        step: usize,
    },
    /// Take step `step` keeping its stage values in the working stage buffer, for a following
    /// `Reverse { stages: Tape }` of the same step; the current solution becomes `u_{step+1}`.
    Tape {
        /// The step taken.
        step: usize,
    },
    /// Take steps `from, …, to − 1` without storing anything; the current solution goes from
    /// `u_from` to `u_to`.
    Advance {
        /// Grid index of the current solution before.
        from: usize,
        /// Grid index after (`to > from`).
        to: usize,
    },
    /// Make `u_step`, held by `slot` (a solution slot or the stage slot of step `step`), the
    /// current solution.
    Restore {
        /// Slot to read.
        slot: usize,
        /// Grid index of the solution it holds.
        step: usize,
    },
    /// Release `slot`.
    Free {
        /// Slot to release.
        slot: usize,
    },
    /// The adjoint of step `step`: `λ_{step+1} → λ_step`, accumulating the parameter gradient;
    /// the current solution is left as it was.
    Reverse {
        /// The step reversed.
        step: usize,
        /// Where its stage values come from.
        stages: StageSource,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Store { slot, step } => write!(f, "store u{step} -> slot {slot}"),
            Action::StepKeepingStages { slot, step } => {
                write!(f, "step {step} keeping stages -> slot {slot}")
            }
            Action::Tape { step } => write!(f, "step {step} keeping stages -> tape"),
            Action::Advance { from, to } => write!(f, "advance u{from} -> u{to}"),
            Action::Restore { slot, step } => write!(f, "restore u{step} <- slot {slot}"),
            Action::Free { slot } => write!(f, "free slot {slot}"),
            Action::Reverse { step, stages } => match stages {
                StageSource::Slot(slot) => {
                    write!(f, "reverse step {step} (stages from slot {slot})")
                }
                StageSource::Tape => write!(f, "reverse step {step} (stages from tape)"),
                StageSource::Recompute => write!(f, "reverse step {step} (recompute stages)"),
            },
        }
    }
}
