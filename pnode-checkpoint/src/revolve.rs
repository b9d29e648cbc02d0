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

/// The repetition numbers `R_c(k) = min { r : C(c + r, c) ≥ k }` for `k ≤ n_max` and
/// `c ≤ c_max`, from rows of binomials `β(c, r) = C(c + r, c)` cut where they pass `n_max`,
/// so each lookup is a binary search in a short row (`R_1(k) = k − 1` needs no row).
#[derive(Debug, Clone)]
pub(crate) struct Splitter {
    /// `rows[c][r] = β(c, r)` for `c ≥ 2`, up to the first `r` with `β(c, r) ≥ n_max`.
    rows: Vec<Vec<u64>>,
}

impl Splitter {
    /// Rows for ranges of up to `n_max` steps and up to `c_max` checkpoints.
    pub(crate) fn new(n_max: usize, c_max: usize) -> Self {
        let n_max = n_max.max(1) as u64;
        let rows = (0..=c_max)
            .map(|c| {
                if c < 2 {
                    return Vec::new();
                }
                let mut row = vec![1u64];
                let mut beta: u128 = 1;
                let mut r = 0u128;
                while beta < u128::from(n_max) {
                    r += 1;
                    // β(c, r) = β(c, r − 1)·(c + r)/r, an integer at every step.
                    beta = beta * (c as u128 + r) / r;
                    row.push(u64::try_from(beta).unwrap_or(u64::MAX));
                }
                row
            })
            .collect();
        Self { rows }
    }

    /// `R_c(k)`: the increment `t(k, c) − t(k − 1, c)` of the optimal advances (`k ≥ 1`).
    fn reps(&self, k: usize, c: usize) -> usize {
        if c == 1 {
            return k - 1;
        }
        self.rows[c].partition_point(|&beta| beta < k as u64)
    }

    /// The smallest minimiser `m ∈ [1, n)` of `m + t(n − m, c − 1) + t(m, c)` for `c ≥ 2`,
    /// `n ≥ 2`: the optimal first checkpoint position. `t(·, c)` is convex with increments
    /// `R_c` (see [`optimal_advances`]), so the objective's increment from `m` to `m + 1`,
    /// `1 + R_c(m + 1) − R_{c−1}(n − m)`, grows with `m`, and the first `m` where it is not
    /// negative is found by bisection in `O(log n)` lookups.
    pub(crate) fn best_split(&self, n: usize, c: usize) -> usize {
        debug_assert!(n >= 2 && c >= 2);
        let rising = |m: usize| 1 + self.reps(m + 1, c) >= self.reps(n - m, c - 1);
        // The first m in [1, n − 1) where the objective stops falling, else n − 1.
        let (mut lo, mut hi) = (1, n - 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if rising(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }
}

/// One pending piece of the binomial recursion (see [`Binomial`]).
#[derive(Debug, Clone, Copy)]
enum Task {
    /// Yield this action.
    Emit(Action),
    /// Yield `Free { slot }` and put the slot back on the free list.
    Release(usize),
    /// Reverse the interior range `[a, a+n)` from `u_a` (current, and held by `base`) with
    /// `free` working slots (`None`: as many as the free list holds when the task starts).
    Left {
        a: usize,
        n: usize,
        base: usize,
        free: Option<usize>,
    },
    /// A range with no working slot: step `a + k` is reversed next (after re-advancing from
    /// the base), then `a + k − 1`, … down to `a`.
    Chain {
        a: usize,
        n: usize,
        base: usize,
        k: usize,
    },
}

/// The binomial recursion as a lazy generator of reverse-phase actions: an explicit stack of
/// pending [`Task`]s (`O(c)` deep: a range's left part replaces it, its right part has one slot
/// fewer) and the free list of working slots. Each call of `next` does `O(1)` work besides one
/// split search (`O(log n)`), so reversing `N` steps never holds the `O(N)` actions.
///
/// Ranges start from a *base* slot (any slot, of any tier); working slots are taken from the
/// end of the free list and given back when freed. [`revolve`] runs it on the whole grid, the
/// online planner ([`crate::online`]) between its kept checkpoints and the two-level planner
/// ([`crate::two_level`]) on each disk interval.
#[derive(Debug, Clone)]
pub(crate) struct Binomial {
    splitter: Splitter,
    free: Vec<usize>,
    tasks: Vec<Task>,
}

impl Binomial {
    /// A generator with nothing to do yet that may use `free_slots` (taken from the end first)
    /// on ranges of up to `n_max` steps, never holding more than `max_slots` working slots.
    pub(crate) fn new(n_max: usize, max_slots: usize, free_slots: Vec<usize>) -> Self {
        Self {
            splitter: Splitter::new(n_max, max_slots.max(free_slots.len()) + 1),
            free: free_slots,
            tasks: Vec::new(),
        }
    }

    fn take_slot(&mut self) -> usize {
        self.free
            .pop()
            .expect("the recursion never uses more slots than it was given")
    }

    /// Queue `action`: it is yielded before anything queued earlier.
    pub(crate) fn then_emit(&mut self, action: Action) {
        self.tasks.push(Task::Emit(action));
    }

    /// Queue `Free { slot }`, giving the slot back when it is yielded.
    pub(crate) fn then_release(&mut self, slot: usize) {
        self.tasks.push(Task::Release(slot));
    }

    /// Queue the reversal of the interior range `[a, a+n)` from `base` with the working slots
    /// free when it starts (`free = None`) or `free` of them.
    pub(crate) fn then_left(&mut self, a: usize, n: usize, base: usize, free: Option<usize>) {
        self.tasks.push(Task::Left { a, n, base, free });
    }

    /// The first sweep's chain of the range `[a, a+n)` that ends at the grid's last step: its
    /// forward actions go to `forward` now (advances and stores, then the last step as a tape;
    /// `O(free)` of them) and its reverse actions are queued, to be yielded before anything
    /// queued earlier. Current solution `u_a`, also held by `base` unless `n = 1`; `free`
    /// working slots give `p(n, free + 1)` advances.
    pub(crate) fn right_chain(
        &mut self,
        mut a: usize,
        mut n: usize,
        mut base: usize,
        mut free: usize,
        mut forward: impl FnMut(Action),
    ) {
        // (start, split, base, slot, free) of each level, outermost first.
        let mut levels = Vec::new();
        loop {
            if n == 1 {
                forward(Action::Tape { step: a });
                break;
            }
            if free == 0 {
                forward(Action::Advance {
                    from: a,
                    to: a + n - 1,
                });
                forward(Action::Tape { step: a + n - 1 });
                break;
            }
            let m = self.splitter.best_split(n, free + 1);
            let slot = self.take_slot();
            forward(Action::Advance { from: a, to: a + m });
            forward(Action::Store { slot, step: a + m });
            levels.push((a, m, base, slot, free));
            (a, n, base, free) = (a + m, n - m, slot, free - 1);
        }
        // Queued last-first: the innermost level runs first, the outermost last.
        for &(start, m, level_base, slot, level_free) in &levels {
            self.then_left(start, m, level_base, Some(level_free));
            self.then_emit(Action::Restore {
                slot: level_base,
                step: start,
            });
            self.then_release(slot);
        }
        if n > 1 {
            self.then_left(a, n - 1, base, Some(0));
            self.then_emit(Action::Restore {
                slot: base,
                step: a,
            });
        }
        self.then_emit(Action::Reverse {
            step: a + n - 1,
            stages: StageSource::Tape,
        });
    }
}

impl Iterator for Binomial {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        loop {
            match self.tasks.pop()? {
                Task::Emit(action) => return Some(action),
                Task::Release(slot) => {
                    self.free.push(slot);
                    return Some(Action::Free { slot });
                }
                Task::Left { a, n: 1, .. } => {
                    return Some(Action::Reverse {
                        step: a,
                        stages: StageSource::Recompute,
                    });
                }
                Task::Left { a, n, base, free } => {
                    let free = free.unwrap_or(self.free.len());
                    if free == 0 {
                        self.tasks.push(Task::Chain {
                            a,
                            n,
                            base,
                            k: n - 1,
                        });
                        continue;
                    }
                    // Advance m steps, checkpoint u_{a+m}, reverse the right part with one
                    // slot fewer, then the left part from the base.
                    let m = self.splitter.best_split(n, free + 1);
                    let slot = self.take_slot();
                    self.then_left(a, m, base, Some(free));
                    self.then_emit(Action::Restore {
                        slot: base,
                        step: a,
                    });
                    self.then_release(slot);
                    self.then_left(a + m, n - m, slot, Some(free - 1));
                    self.then_emit(Action::Store { slot, step: a + m });
                    return Some(Action::Advance { from: a, to: a + m });
                }
                Task::Chain { a, n, base, k } => {
                    if k > 0 {
                        self.tasks.push(Task::Chain {
                            a,
                            n,
                            base,
                            k: k - 1,
                        });
                    }
                    self.then_emit(Action::Reverse {
                        step: a + k,
                        stages: StageSource::Recompute,
                    });
                    if k > 0 {
                        self.then_emit(Action::Advance { from: a, to: a + k });
                    }
                    if k + 1 < n {
                        return Some(Action::Restore {
                            slot: base,
                            step: a,
                        });
                    }
                }
            }
        }
    }
}

/// The number of slots Revolve uses for `n_steps` steps given `slots`: more than `N − 1`
/// cannot help (they already avoid all recomputation), and one step needs none.
pub(crate) fn revolve_slots(n_steps: usize, slots: usize) -> usize {
    if n_steps <= 1 {
        0
    } else {
        slots.min(n_steps - 1)
    }
}

/// Revolve's two phases for `n_steps ≥ 1` steps and `slots ≥ 1`: the forward actions
/// (`O(slots)` of them) and the generator of the reverse ones.
pub(crate) fn revolve_phases(n_steps: usize, slots: usize) -> (Vec<Action>, Binomial) {
    let slots = revolve_slots(n_steps, slots);
    let mut forward = Vec::with_capacity(2 * slots + 2);
    let mut planner = Binomial::new(n_steps, slots, (1..slots).rev().collect());
    if n_steps == 1 {
        planner.right_chain(0, 1, 0, 0, |a| forward.push(a));
    } else {
        forward.push(Action::Store { slot: 0, step: 0 });
        planner.then_emit(Action::Free { slot: 0 });
        planner.right_chain(0, n_steps, 0, slots - 1, |a| forward.push(a));
    }
    (forward, planner)
}

/// The binomial (Revolve) schedule for `n_steps` steps with `slots ≥ 1` solution checkpoints:
/// the least recomputation, `p(N, c)`, of any schedule that keeps at most `slots` solutions.
///
/// Planning is `O(1)`: the schedule's actions are generated as an executor or
/// [`Schedule::predict`] reads them, in `O(slots)` memory.
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
    Ok(Schedule::revolve_generated(n_steps, slots))
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
