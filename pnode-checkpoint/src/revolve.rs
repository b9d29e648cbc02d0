//! Binomial checkpointing (Revolve) with `c` solution slots, planned offline.
//!
//! Reversing `N` steps with `c` checkpoints (the one holding `u_0` included) needs at least
//!
//! ```text
//! p(N, c) = r·N − C(c + r, c + 1),   r = min { r : C(c + r, c) ≥ N },
//! ```
//!
//! forward step *advances* (Griewank 1992; Griewank & Walther 2000, Prop. 1), where each step's
//! own re-evaluation before its adjoint is not counted. It is the solution of
//!
//! ```text
//! t(n, c) = min_{1 ≤ m < n} [ m + t(n − m, c − 1) + t(m, c) ],  t(1, c) = 0,  t(n, 1) = n(n−1)/2,
//! ```
//!
//! (advance `m` steps, checkpoint `u_m`, reverse the right part with one slot fewer, then the
//! left part from `u_0`), which [`revolve`] follows with the optimal split at each level.
//!
//! In pnode's executor the first sweep must reach `u_N` (the loss needs it), so the last step is
//! taken once as a [`Action::Tape`] that keeps its stages for its adjoint; every other step is
//! reversed by recomputing its stages from the current solution. Counted in executor
//! statistics: `forward_steps = N`, and `forward_steps − 1 + recomputed_steps = p(N, c)`.
//!
//! # References
//! * A. Griewank, "Achieving logarithmic growth of temporal and spatial complexity in reverse
//!   automatic differentiation", Optim. Methods Softw. 1 (1992).
//! * A. Griewank, A. Walther, "Algorithm 799: Revolve", ACM TOMS 26 (2000).

use crate::action::{Action, StageSource};
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// Binomial coefficient `C(n, k)`, saturating at `u128::MAX`.
pub fn binomial(n: u64, k: u64) -> u128 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u128 = 1;
    for i in 0..k {
        // c·(n−i)/(i+1) stays an integer at every step.
        c = match c.checked_mul(u128::from(n - i)) {
            Some(v) => v / u128::from(i + 1),
            None => return u128::MAX,
        };
    }
    c
}

/// The repetition number `r = min { r : C(c + r, c) ≥ N }` (how often the worst step is
/// evaluated). Requires `c ≥ 1`.
pub fn repetition_number(n_steps: u64, slots: u64) -> u64 {
    let mut r = 0;
    while binomial(slots + r, slots) < u128::from(n_steps) {
        r += 1;
    }
    r
}

/// `p(N, c) = r·N − C(c + r, c + 1)`: the least number of forward advances that reverses `N`
/// steps with `c ≥ 1` checkpoints (see the module docs).
pub fn optimal_advances(n_steps: u64, slots: u64) -> u64 {
    if n_steps <= 1 {
        return 0;
    }
    if slots == 1 {
        return n_steps * (n_steps - 1) / 2;
    }
    let r = repetition_number(n_steps, slots);
    let value = u128::from(r) * u128::from(n_steps) - binomial(slots + r, slots + 1);
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Optimal first checkpoint position `m` for reversing `n` steps with `c ≥ 2` checkpoints:
/// the minimiser of `m + t(n − m, c − 1) + t(m, c)` (the smallest one, for determinism).
fn best_split(n: u64, c: u64) -> u64 {
    (1..n)
        .map(|m| {
            (
                m + optimal_advances(n - m, c - 1) + optimal_advances(m, c),
                m,
            )
        })
        .min()
        .map(|(_, m)| m)
        .unwrap_or(1)
}

/// Builds the action lists of the binomial recursion on a sub-range `[a, a+n)` of the grid whose
/// starting solution `u_a` lives in a *base* slot (any slot, of any tier); the working slots
/// are handed out from a free list. [`revolve`] runs it on the whole grid, the two-level
/// planner ([`crate::two_level`]) on each disk interval.
pub(crate) struct Planner {
    pub(crate) forward: Vec<Action>,
    pub(crate) reverse: Vec<Action>,
    free_slots: Vec<usize>,
}

impl Planner {
    /// A planner with no actions yet that may use `free_slots` (taken from the end first).
    pub(crate) fn new(free_slots: Vec<usize>) -> Self {
        Self {
            forward: Vec::new(),
            reverse: Vec::new(),
            free_slots,
        }
    }

    /// Number of working slots on the free list.
    pub(crate) fn free_count(&self) -> usize {
        self.free_slots.len()
    }

    /// Put `slot` on the free list (a caller's slot that is no longer needed).
    pub(crate) fn give_slot(&mut self, slot: usize) {
        self.free_slots.push(slot);
    }

    fn take_slot(&mut self) -> usize {
        self.free_slots
            .pop()
            .expect("planner never exceeds its slots")
    }

    /// The first sweep's chain: current solution `u_a` (also in `base`, unless `n = 1`), reverse
    /// `[a, a+n)` where the last step of the range is the last step of the grid (taken as a
    /// tape). Forward actions go to the forward phase, the rest to the reverse phase; `free`
    /// working slots (at most as many as the free list holds) give `p(n, free + 1)` advances.
    pub(crate) fn right_chain(&mut self, a: usize, n: usize, base: usize, free: usize) {
        if n == 1 {
            self.forward.push(Action::Tape { step: a });
            self.reverse.push(Action::Reverse {
                step: a,
                stages: StageSource::Tape,
            });
            return;
        }
        if free == 0 {
            self.forward.push(Action::Advance {
                from: a,
                to: a + n - 1,
            });
            self.forward.push(Action::Tape { step: a + n - 1 });
            self.reverse.push(Action::Reverse {
                step: a + n - 1,
                stages: StageSource::Tape,
            });
            self.reverse.push(Action::Restore {
                slot: base,
                step: a,
            });
            self.left(a, n - 1, base, 0);
            return;
        }
        let m = best_split(n as u64, free as u64 + 1) as usize;
        let slot = self.take_slot();
        self.forward.push(Action::Advance { from: a, to: a + m });
        self.forward.push(Action::Store { slot, step: a + m });
        self.right_chain(a + m, n - m, slot, free - 1);
        self.reverse.push(Action::Free { slot });
        self.free_slots.push(slot);
        self.reverse.push(Action::Restore {
            slot: base,
            step: a,
        });
        self.left(a, m, base, free);
    }

    /// A reverse-phase range: current solution `u_a` (also in `base`), reverse `[a, a+n)`, an
    /// interior range whose end `u_{a+n}` is not needed; `p(n, free + 1)` advances. On return
    /// the working slots it took are free again and `base` still holds `u_a`.
    pub(crate) fn left(&mut self, a: usize, n: usize, base: usize, free: usize) {
        if n == 1 {
            self.reverse.push(Action::Reverse {
                step: a,
                stages: StageSource::Recompute,
            });
            return;
        }
        if free == 0 {
            for k in (0..n).rev() {
                if k + 1 < n {
                    self.reverse.push(Action::Restore {
                        slot: base,
                        step: a,
                    });
                }
                if k > 0 {
                    self.reverse.push(Action::Advance { from: a, to: a + k });
                }
                self.reverse.push(Action::Reverse {
                    step: a + k,
                    stages: StageSource::Recompute,
                });
            }
            return;
        }
        let m = best_split(n as u64, free as u64 + 1) as usize;
        let slot = self.take_slot();
        self.reverse.push(Action::Advance { from: a, to: a + m });
        self.reverse.push(Action::Store { slot, step: a + m });
        self.left(a + m, n - m, slot, free - 1);
        self.reverse.push(Action::Free { slot });
        self.free_slots.push(slot);
        self.reverse.push(Action::Restore {
            slot: base,
            step: a,
        });
        self.left(a, m, base, free);
    }
}

/// The binomial (Revolve) schedule for `n_steps` steps with `slots ≥ 1` solution checkpoints:
/// the least recomputation, `p(N, c)`, of any schedule that keeps at most `slots` solutions.
pub fn revolve(n_steps: usize, slots: usize) -> Result<Schedule> {
    if n_steps == 0 {
        return Err(Error::InvalidRequest(
            "a schedule needs at least one step".into(),
        ));
    }
    if slots == 0 {
        return Err(Error::BudgetTooSmall {
            given: "0 slots".into(),
            minimum: "1 slot (for u0)".into(),
        });
    }
    // More slots than steps cannot help: N − 1 slots already avoid all recomputation.
    let slots = slots.min(n_steps.max(2) - 1);
    let mut planner = Planner::new((1..slots).rev().collect());
    if n_steps == 1 {
        planner.right_chain(0, 1, 0, 0);
    } else {
        planner.forward.push(Action::Store { slot: 0, step: 0 });
        planner.right_chain(0, n_steps, 0, slots - 1);
        planner.reverse.push(Action::Free { slot: 0 });
    }
    Ok(Schedule::new_unchecked(
        format!("revolve({slots})"),
        n_steps,
        planner.forward,
        planner.reverse,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::StepCost;

    #[test]
    fn closed_form_examples() {
        assert_eq!(optimal_advances(10, 3), 15);
        assert_eq!(repetition_number(10, 3), 2);
        assert_eq!(optimal_advances(1, 5), 0);
        assert_eq!(optimal_advances(5, 1), 10);
        assert_eq!(optimal_advances(8, 7), 7);
        assert_eq!(binomial(60, 30), 118_264_581_564_861_424);
    }

    #[test]
    fn small_revolve_schedule_reads_as_expected() {
        let s = revolve(4, 2).unwrap();
        let cost = StepCost {
            rhs_per_step: 1,
            rhs_per_stage_recompute: 0,
            vjp_per_reverse: 1,
            stage_vectors: 1,
        };
        let p = s.predict(&cost, 8).unwrap();
        assert_eq!(
            p.forward_steps - 1 + p.recomputed_steps,
            optimal_advances(4, 2)
        );
        assert_eq!(p.peak_stored_vectors, 2);
        insta::assert_snapshot!(s.to_string());
    }

    #[test]
    fn zero_slots_is_a_budget_error() {
        assert!(matches!(revolve(5, 0), Err(Error::BudgetTooSmall { .. })));
        assert!(matches!(revolve(0, 3), Err(Error::InvalidRequest(_))));
    }
}
