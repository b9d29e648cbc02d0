//! Checkpoint schedules as data, and their cost model.
//!
//! A [`Schedule`] is a list of [`Action`]s in two phases: the *forward* phase starts from `u_0`
//! and must end holding `u_N` (it computes every output on the way); the *reverse* phase starts
//! with the adjoint `λ_N` and must reverse every step `N−1, …, 0` exactly once, in that order.
//! The executor in [`crate::solver`] runs any valid schedule, so planners (store-all,
//! solution-only, and the budgeted planners built on top) never touch the integrators.
//!
//! Slots hold either a *solution* `u_n` (one state vector) or the *stage values* of step `n`
//! (`Y_1 = u_n, Y_2, …, Y_s` for the live stages: `s` vectors), which let step `n` be reversed
//! with no recomputation (stage-aware checkpointing; Zhang & Constantinescu, J. Comput. Sci.
//! 2023).
//!
//! # References
//! * A. Griewank, A. Walther, *Evaluating Derivatives*, 2nd ed., SIAM 2008, ch. 12.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::stats::Stats;

/// One instruction of a checkpoint schedule. Step indices refer to the time grid: step `n` goes
/// from `t_n` to `t_{n+1}`, and "the current solution" is the working state `u_n` the executor
/// holds.
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
    /// The adjoint of step `step`: `λ_{step+1} → λ_step`, accumulating the parameter gradient.
    /// With `stages: Some(slot)` the stage values come from that slot; with `None` they are
    /// recomputed from the current solution, which must be `u_step`.
    Reverse {
        /// The step reversed.
        step: usize,
        /// Stage slot holding that step's stage values, if any.
        stages: Option<usize>,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Store { slot, step } => write!(f, "store u{step} -> slot {slot}"),
            Action::StepKeepingStages { slot, step } => {
                write!(f, "step {step} keeping stages -> slot {slot}")
            }
            Action::Advance { from, to } => write!(f, "advance u{from} -> u{to}"),
            Action::Restore { slot, step } => write!(f, "restore u{step} <- slot {slot}"),
            Action::Free { slot } => write!(f, "free slot {slot}"),
            Action::Reverse {
                step,
                stages: Some(slot),
            } => write!(f, "reverse step {step} (stages from slot {slot})"),
            Action::Reverse { step, stages: None } => {
                write!(f, "reverse step {step} (recompute stages)")
            }
        }
    }
}

/// What one step of an integrator costs, the input of the cost model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepCost {
    /// RHS evaluations of one forward step.
    pub rhs_per_step: u64,
    /// RHS evaluations to recompute one step's stage values from its starting solution.
    pub rhs_per_stage_recompute: u64,
    /// VJPs of one adjoint step.
    pub vjp_per_reverse: u64,
    /// State vectors a stage slot holds.
    pub stage_vectors: u64,
}

/// Which phase of a schedule an action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the loss is known: from `u_0` to `u_N`.
    Forward,
    /// After: reversing steps `N−1 … 0`.
    Reverse,
}

/// A checkpoint schedule: forward actions, then reverse actions. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    name: String,
    n_steps: usize,
    forward: Vec<Action>,
    reverse: Vec<Action>,
}

/// Slot content while simulating or executing a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotContent {
    Solution(usize),
    Stages(usize),
}

/// The simulated effect of one action on the executor's symbolic state; shared by the
/// validator/cost model and the executor, so both agree on what a valid schedule is.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    n_steps: usize,
    /// Grid index of the current solution, if one is held.
    pub(crate) current: Option<usize>,
    /// Step whose adjoint comes next is `next_reverse − 1`; starts at `N`.
    pub(crate) next_reverse: usize,
    pub(crate) slots: Vec<Option<SlotContent>>,
}

impl Tracker {
    pub(crate) fn new(n_steps: usize, n_slots: usize) -> Self {
        Self {
            n_steps,
            current: Some(0),
            next_reverse: n_steps,
            slots: vec![None; n_slots],
        }
    }

    /// Check `action` against the state, then apply it. Errors carry the reason only.
    pub(crate) fn apply(
        &mut self,
        action: &Action,
        phase: Phase,
    ) -> std::result::Result<(), String> {
        let need_current = |cur: Option<usize>, step: usize| match cur {
            Some(c) if c == step => Ok(()),
            Some(c) => Err(format!("the current solution is u{c}, not u{step}")),
            None => Err("no current solution is held".to_string()),
        };
        match *action {
            Action::Store { slot, step } => {
                need_current(self.current, step)?;
                *self.slot_mut(slot)? = Some(SlotContent::Solution(step));
            }
            Action::StepKeepingStages { slot, step } => {
                need_current(self.current, step)?;
                if step >= self.n_steps {
                    return Err(format!(
                        "step {step} is past the last step {}",
                        self.n_steps - 1
                    ));
                }
                *self.slot_mut(slot)? = Some(SlotContent::Stages(step));
                self.current = Some(step + 1);
            }
            Action::Advance { from, to } => {
                need_current(self.current, from)?;
                if to <= from || to > self.n_steps {
                    return Err(format!("cannot advance from u{from} to u{to}"));
                }
                self.current = Some(to);
            }
            Action::Restore { slot, step } => match *self.slot_mut(slot)? {
                Some(SlotContent::Solution(s)) | Some(SlotContent::Stages(s)) if s == step => {
                    self.current = Some(step);
                }
                Some(SlotContent::Solution(s)) | Some(SlotContent::Stages(s)) => {
                    return Err(format!("slot {slot} holds u{s}, not u{step}"));
                }
                None => return Err(format!("slot {slot} is empty")),
            },
            Action::Free { slot } => {
                if self.slot_mut(slot)?.take().is_none() {
                    return Err(format!("slot {slot} is already empty"));
                }
            }
            Action::Reverse { step, stages } => {
                if phase == Phase::Forward {
                    return Err("reverse actions belong to the reverse phase".into());
                }
                if self.next_reverse == 0 || step + 1 != self.next_reverse {
                    return Err(match self.next_reverse {
                        0 => "every step is already reversed".to_string(),
                        r => format!("the next step to reverse is {}", r - 1),
                    });
                }
                match stages {
                    Some(slot) => match *self.slot_mut(slot)? {
                        Some(SlotContent::Stages(s)) if s == step => {}
                        other => {
                            return Err(format!(
                                "slot {slot} does not hold the stages of step {step} (it holds {})",
                                describe(other)
                            ));
                        }
                    },
                    None => need_current(self.current, step)?,
                }
                self.next_reverse = step;
            }
        }
        Ok(())
    }

    fn slot_mut(&mut self, slot: usize) -> std::result::Result<&mut Option<SlotContent>, String> {
        let n = self.slots.len();
        self.slots
            .get_mut(slot)
            .ok_or_else(|| format!("slot {slot} does not exist (the schedule uses {n} slots)"))
    }
}

fn describe(content: Option<SlotContent>) -> String {
    match content {
        None => "nothing".into(),
        Some(SlotContent::Solution(s)) => format!("solution u{s}"),
        Some(SlotContent::Stages(s)) => format!("stages of step {s}"),
    }
}

impl Schedule {
    /// A schedule from explicit action lists, validated (see [`Schedule::predict`]).
    pub fn new(
        name: impl Into<String>,
        n_steps: usize,
        forward: Vec<Action>,
        reverse: Vec<Action>,
    ) -> Result<Self> {
        let schedule = Self {
            name: name.into(),
            n_steps,
            forward,
            reverse,
        };
        schedule.simulate(&StepCost {
            rhs_per_step: 0,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 0,
            stage_vectors: 1,
        })?;
        Ok(schedule)
    }

    /// Store-all with stage values: every step keeps its stages, so the reverse sweep does no
    /// recomputation. Holds `N·s` vectors at the end of the forward sweep.
    pub fn store_all(n_steps: usize) -> Self {
        let forward = (0..n_steps)
            .map(|n| Action::StepKeepingStages { slot: n, step: n })
            .collect();
        let reverse = (0..n_steps)
            .rev()
            .flat_map(|n| {
                [
                    Action::Reverse {
                        step: n,
                        stages: Some(n),
                    },
                    Action::Free { slot: n },
                ]
            })
            .collect();
        Self {
            name: "store-all".into(),
            n_steps,
            forward,
            reverse,
        }
    }

    /// Store-all solutions only: every `u_n` (`n < N`) is kept; each reversed step first
    /// recomputes its stage values from `u_n` (all live stages but the last: the adjoint needs
    /// the stage inputs `Y_i`, and only `Y_1 … Y_s` enter it, so `f(Y_s)` is never needed).
    /// Holds `N` vectors.
    pub fn solution_only(n_steps: usize) -> Self {
        let forward = (0..n_steps)
            .flat_map(|n| {
                [
                    Action::Store { slot: n, step: n },
                    Action::Advance { from: n, to: n + 1 },
                ]
            })
            .collect();
        let reverse = (0..n_steps)
            .rev()
            .flat_map(|n| {
                [
                    Action::Restore { slot: n, step: n },
                    Action::Free { slot: n },
                    Action::Reverse {
                        step: n,
                        stages: None,
                    },
                ]
            })
            .collect();
        Self {
            name: "solution-only".into(),
            n_steps,
            forward,
            reverse,
        }
    }

    /// A forward-only schedule (no checkpoints); it cannot be reversed.
    pub fn forward_only(n_steps: usize) -> Self {
        Self {
            name: "forward-only".into(),
            n_steps,
            forward: vec![Action::Advance {
                from: 0,
                to: n_steps,
            }],
            reverse: Vec::new(),
        }
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of steps `N` it is planned for.
    pub fn n_steps(&self) -> usize {
        self.n_steps
    }

    /// Forward-phase actions.
    pub fn forward(&self) -> &[Action] {
        &self.forward
    }

    /// Reverse-phase actions.
    pub fn reverse(&self) -> &[Action] {
        &self.reverse
    }

    /// Number of slots the schedule addresses (largest slot index + 1).
    pub fn n_slots(&self) -> usize {
        self.forward
            .iter()
            .chain(&self.reverse)
            .filter_map(|a| match *a {
                Action::Store { slot, .. }
                | Action::StepKeepingStages { slot, .. }
                | Action::Restore { slot, .. }
                | Action::Free { slot } => Some(slot + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether slot `slot` is ever filled with stage values (so it needs room for them).
    pub fn slot_holds_stages(&self, slot: usize) -> bool {
        self.forward
            .iter()
            .chain(&self.reverse)
            .any(|a| matches!(*a, Action::StepKeepingStages { slot: s, .. } if s == slot))
    }

    /// Predict the statistics of a full forward + reverse run, validating the schedule.
    ///
    /// Counts follow from the actions: a forward step costs `rhs_per_step`; a reverse with
    /// recomputed stages adds `rhs_per_stage_recompute`; each reverse costs `vjp_per_reverse`;
    /// a solution slot holds one vector and a stage slot `stage_vectors`. `state_len` turns the
    /// peak vector count into bytes (`f64`).
    pub fn predict(&self, cost: &StepCost, state_len: usize) -> Result<Stats> {
        let mut stats = self.simulate(cost)?;
        stats.peak_stored_bytes = stats.peak_stored_vectors * state_len as u64 * 8;
        Ok(stats)
    }

    fn simulate(&self, cost: &StepCost) -> Result<Stats> {
        let mut tracker = Tracker::new(self.n_steps, self.n_slots());
        let mut stats = Stats::default();
        if self.n_steps == 0 {
            return Err(Error::InvalidSchedule {
                index: 0,
                action: "-".into(),
                reason: "a schedule needs at least one step".into(),
            });
        }
        let phases = [
            (Phase::Forward, &self.forward),
            (Phase::Reverse, &self.reverse),
        ];
        let mut index = 0;
        for (phase, actions) in phases {
            if phase == Phase::Reverse && tracker.current != Some(self.n_steps) {
                return Err(Error::InvalidSchedule {
                    index,
                    action: "end of forward phase".into(),
                    reason: format!("the forward phase must end at u{}", self.n_steps),
                });
            }
            for action in actions.iter() {
                tracker
                    .apply(action, phase)
                    .map_err(|reason| Error::InvalidSchedule {
                        index,
                        action: action.to_string(),
                        reason,
                    })?;
                let steps = match *action {
                    Action::StepKeepingStages { .. } => 1,
                    Action::Advance { from, to } => (to - from) as u64,
                    _ => 0,
                };
                stats.rhs_evals += steps * cost.rhs_per_step;
                match phase {
                    Phase::Forward => stats.forward_steps += steps,
                    Phase::Reverse => stats.recomputed_steps += steps,
                }
                if let Action::Reverse { stages, .. } = *action {
                    stats.vjp_evals += cost.vjp_per_reverse;
                    stats.reversed_steps += 1;
                    if stages.is_none() {
                        stats.rhs_evals += cost.rhs_per_stage_recompute;
                        stats.stage_recomputations += 1;
                    }
                }
                let stored: u64 = tracker
                    .slots
                    .iter()
                    .map(|s| match s {
                        None => 0,
                        Some(SlotContent::Solution(_)) => 1,
                        Some(SlotContent::Stages(_)) => cost.stage_vectors,
                    })
                    .sum();
                stats.peak_stored_vectors = stats.peak_stored_vectors.max(stored);
                index += 1;
            }
        }
        if !self.reverse.is_empty() && tracker.next_reverse != 0 {
            return Err(Error::InvalidSchedule {
                index,
                action: "end of reverse phase".into(),
                reason: format!("steps 0..{} were never reversed", tracker.next_reverse),
            });
        }
        Ok(stats)
    }

    /// Whether the schedule has a reverse phase (it can produce a gradient).
    pub fn is_reversible(&self) -> bool {
        !self.reverse.is_empty()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule `{}` for {} steps", self.name, self.n_steps)?;
        writeln!(f, "forward:")?;
        for a in &self.forward {
            writeln!(f, "  {a}")?;
        }
        writeln!(f, "reverse:")?;
        for a in &self.reverse {
            writeln!(f, "  {a}")?;
        }
        Ok(())
    }
}

/// How checkpoints are kept during a gradient computation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Checkpointing {
    /// Keep every step's stage values: no recomputation, `N·s` vectors.
    #[default]
    StoreAll,
    /// Keep every solution `u_n`: each reversed step recomputes its stages, `N` vectors.
    SolutionOnly,
    /// A schedule planned elsewhere (it must be planned for the grid's number of steps).
    Custom(Schedule),
}

impl Checkpointing {
    /// The schedule for `n_steps` steps.
    pub fn schedule(&self, n_steps: usize) -> Result<Schedule> {
        match self {
            Checkpointing::StoreAll => Ok(Schedule::store_all(n_steps)),
            Checkpointing::SolutionOnly => Ok(Schedule::solution_only(n_steps)),
            Checkpointing::Custom(s) if s.n_steps() == n_steps => Ok(s.clone()),
            Checkpointing::Custom(s) => Err(Error::Usage(format!(
                "schedule `{}` is planned for {} steps but the grid has {}",
                s.name(),
                s.n_steps(),
                n_steps
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RK4: StepCost = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };

    #[test]
    fn store_all_and_solution_only_costs() {
        let s = Schedule::store_all(10).predict(&RK4, 2).unwrap();
        assert_eq!(
            (
                s.rhs_evals,
                s.vjp_evals,
                s.recomputed_steps,
                s.stage_recomputations
            ),
            (40, 40, 0, 0)
        );
        assert_eq!((s.peak_stored_vectors, s.peak_stored_bytes), (40, 640));
        let s = Schedule::solution_only(10).predict(&RK4, 2).unwrap();
        assert_eq!(
            (
                s.rhs_evals,
                s.vjp_evals,
                s.recomputed_steps,
                s.stage_recomputations
            ),
            (70, 40, 0, 10)
        );
        assert_eq!(s.peak_stored_vectors, 10);
    }

    #[test]
    fn invalid_schedules_name_the_action() {
        let err = Schedule::new(
            "bad",
            2,
            vec![Action::Advance { from: 0, to: 2 }],
            vec![Action::Reverse {
                step: 0,
                stages: None,
            }],
        )
        .unwrap_err();
        assert_eq!(
            err,
            Error::InvalidSchedule {
                index: 1,
                action: "reverse step 0 (recompute stages)".into(),
                reason: "the next step to reverse is 1".into()
            }
        );
        let err = Schedule::new(
            "bad",
            2,
            vec![Action::Advance { from: 0, to: 2 }],
            vec![
                Action::Restore { slot: 0, step: 1 },
                Action::Reverse {
                    step: 1,
                    stages: None,
                },
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("slot 0 is empty"), "{err}");
        let err = Schedule::new("short", 3, vec![Action::Advance { from: 0, to: 2 }], vec![])
            .unwrap_err();
        assert!(err.to_string().contains("must end at u3"), "{err}");
    }

    #[test]
    fn custom_schedule_must_match_the_grid() {
        let c = Checkpointing::Custom(Schedule::store_all(5));
        assert!(c.schedule(5).is_ok());
        assert!(matches!(c.schedule(6), Err(Error::Usage(_))));
    }
}
