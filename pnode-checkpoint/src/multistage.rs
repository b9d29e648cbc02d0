//! Stage-aware multistage checkpointing: optimal schedules over two slot kinds for a budget
//! counted in state vectors.
//!
//! A *solution* slot holds `u_n` (1 vector); a *stage* slot holds the stage values of step `n`
//! (`s` vectors, `u_n` among them), which lets step `n` be reversed with no recomputation. With
//! `A` the RHS cost of a step, `R` the cost of recomputing a step's stages from `u_n` (`s − 1`
//! for explicit RK) and `S` the vectors of a stage slot, the cheapest schedule that never holds
//! more than `B` vectors is found by dynamic programming over four sub-problems of a range
//! `[a, a+n)` with `b` free vectors and the adjoint `λ_{a+n}` known:
//!
//! ```text
//! F(n,b)  current u_a, u_a in a checkpoint          (reverse phase)
//! H(n,b)  current u_a, u_a re-obtainable for A      (from the stage slot of step a−1)
//! F*, H*  the same when the range ends at u_N and must first be swept forward
//! G(n,b) = H(n−1,b) (G(1,b) = 0): u_a in a stage slot, current u_{a+1}
//!
//! F(1,b) = H(1,b) = R,   F*(1,b) = H*(1,b) = A (the last step, taped)
//! F(n,b)  = min{ chain_F(n),  A + G(n, b+1−S),  min_m [ m·A + Right(n−m, b) + F(m, b) ] }
//! H(n,b)  = min{ chain_H(n),  F(n, b−1),  A + G(n, b−S),  min_m [ m·A + Right(n−m, b) + A + H(m, b) ] }
//! Right(k,b) = min{ F(k, b−1),  A + G(k, b−S) }                 (checkpoint u_{a+m} either way)
//! ```
//!
//! (in `F` the base's vector is reclaimed when step `a`'s stages replace it: a range owns its
//! base from its last restore on, since the left part of a split is its base's last user), and
//! the starred versions use `F*`, `G*`, `Right*` on the right and the unstarred ones on the
//! left (the left part is reversed after the right one, in the reverse phase). The whole run
//! costs `T(N,B) = min{ F*(N, B−1), A + G*(N, B−S) }`, the first sweep's `N·A` included.
//! Restricted to solution slots this is Revolve's recursion, so the result never costs more than
//! Revolve with `B` slots; tests check it against an exhaustive search of all schedules.
//!
//! Cost: `O(N²·B)` time and `O(N·B)` memory for the tables, both bounded
//! ([`MAX_TABLE_WORK`], [`MAX_TABLE_ENTRIES`]): a larger request is [`Error::PlanTooLarge`].
//!
//! # References
//! * H. Zhang, E. M. Constantinescu, "Optimal checkpointing for adjoint multistage time-stepping
//!   schemes", J. Comput. Sci. 66 (2023) — the two slot kinds (CAMS).
//! * A. Griewank, A. Walther, "Algorithm 799: Revolve", ACM TOMS 26 (2000).

use crate::action::{Action, StageSource};
use crate::error::{Error, Result};
use crate::schedule::{Schedule, StepCost};

/// The four tabulated sub-problems (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sub {
    F,
    H,
    FStar,
    HStar,
}

/// How the right part of a split keeps its starting solution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Solution,
    Stages,
}

/// The optimal first decision of a sub-problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// One step: recompute (F, H) or tape (F*, H*).
    Leaf,
    /// No checkpoints: sweep to the end of the range, then back from the base each time.
    Chain,
    /// Take step a keeping its stages in a new stage slot, then G.
    StageHere,
    /// (H, H*) put the current solution in a new solution slot, then F (F*).
    StoreHere,
    /// Advance m steps, checkpoint u_{a+m}, reverse the right part, then the left part.
    Split(usize, Keep),
}

const INF: u64 = u64::MAX / 4;

struct Tables {
    cost: StepCost,
    n_max: usize,
    b_max: usize,
    /// `t[sub][b * (n_max + 1) + n]`.
    t: [Vec<u64>; 4],
}

impl Tables {
    fn get(&self, sub: Sub, n: usize, b: usize) -> u64 {
        self.t[sub as usize][b * (self.n_max + 1) + n]
    }

    /// G(n, b) (or G* when `star`): stage slot of step a held, current u_{a+1}.
    fn g(&self, star: bool, n: usize, b: usize) -> u64 {
        if n == 1 {
            0
        } else {
            self.get(if star { Sub::HStar } else { Sub::H }, n - 1, b)
        }
    }

    /// Right(k, b): the cheaper way to checkpoint the right part's start, with its kind.
    fn right(&self, star: bool, k: usize, b: usize) -> (u64, Keep) {
        let (a, s) = (self.cost.rhs_per_step, self.cost.stage_vectors as usize);
        let f = if star { Sub::FStar } else { Sub::F };
        let sol = if b >= 1 { self.get(f, k, b - 1) } else { INF };
        let stg = if b >= s {
            a + self.g(star, k, b - s)
        } else {
            INF
        };
        if stg < sol {
            (stg, Keep::Stages)
        } else {
            (sol, Keep::Solution)
        }
    }

    /// The optimal cost and first choice of `sub` on `n` steps with `b` free vectors, from the
    /// already-filled entries for smaller `n` (and, for `StoreHere`, smaller `b`).
    fn best(&self, sub: Sub, n: usize, b: usize) -> (u64, Choice) {
        self.best_impl(sub, n, b, true)
    }

    /// The optimum over the non-split choices only.
    fn best_without_splits(&self, sub: Sub, n: usize, b: usize) -> u64 {
        self.best_impl(sub, n, b, false).0
    }

    fn best_impl(&self, sub: Sub, n: usize, b: usize, splits: bool) -> (u64, Choice) {
        let (a, r) = (self.cost.rhs_per_step, self.cost.rhs_per_stage_recompute);
        let s = self.cost.stage_vectors as usize;
        let star = matches!(sub, Sub::FStar | Sub::HStar);
        let soft = matches!(sub, Sub::H | Sub::HStar);
        if n == 1 {
            return (if star { a } else { r }, Choice::Leaf);
        }
        let nn = n as u64;
        // Chain: sweep to the end, then back from the base for every step.
        let tri = |k: u64| a * k * k.saturating_sub(1) / 2;
        let chain = match (star, soft) {
            (false, false) => tri(nn) + nn * r,
            (false, true) => tri(nn) + nn * r + (nn - 1) * a,
            (true, false) => a * nn + tri(nn - 1) + (nn - 1) * r,
            (true, true) => a * nn + (nn - 1) * a + tri(nn - 1) + (nn - 1) * r,
        };
        let mut best = (chain, Choice::Chain);
        let mut consider = |c: u64, choice: Choice| {
            if c < best.0 {
                best = (c, choice);
            }
        };
        // Keeping step a's stages makes a hard base redundant: it is released first (it is
        // this range's to release: the left part of a split is the last user of its base).
        let reclaim = usize::from(!soft);
        if b + reclaim >= s {
            consider(a + self.g(star, n, b + reclaim - s), Choice::StageHere);
        }
        if soft && b >= 1 {
            let f = if star { Sub::FStar } else { Sub::F };
            consider(self.get(f, n, b - 1), Choice::StoreHere);
        }
        let left_sub = if soft { Sub::H } else { Sub::F };
        let recover = if soft { a } else { 0 };
        for m in (1..n).filter(|_| splits) {
            let (right, keep) = self.right(star, n - m, b);
            if right >= INF {
                continue;
            }
            let c = m as u64 * a + right + recover + self.get(left_sub, m, b);
            consider(c, Choice::Split(m, keep));
        }
        best
    }

    /// Fill the tables row by row (`b` ascending, `n` ascending). Same recurrences as
    /// [`Tables::best`], which reconstruction uses; the split minimisations share one pass per
    /// left sub-problem and read precomputed `Right` rows, which keeps `O(N²B)` fast.
    fn fill(cost: StepCost, n_max: usize, b_max: usize) -> Self {
        let len = (n_max + 1) * (b_max + 1);
        let mut tables = Tables {
            cost,
            n_max,
            b_max,
            t: [
                vec![INF; len],
                vec![INF; len],
                vec![INF; len],
                vec![INF; len],
            ],
        };
        let a = cost.rhs_per_step;
        let mut right = vec![INF; n_max + 1];
        let mut right_star = vec![INF; n_max + 1];
        for b in 0..=b_max {
            for k in 1..=n_max {
                right[k] = tables.right(false, k, b).0;
                right_star[k] = tables.right(true, k, b).0;
            }
            let row = b * (n_max + 1);
            for n in 1..=n_max {
                // Everything but the splits, from `best` with the split loop skipped.
                let mut v = [0u64; 4];
                for sub in [Sub::F, Sub::H, Sub::FStar, Sub::HStar] {
                    v[sub as usize] = tables.best_without_splits(sub, n, b);
                }
                if n > 1 {
                    let f = &tables.t[Sub::F as usize][row..row + n];
                    let h = &tables.t[Sub::H as usize][row..row + n];
                    let (mut sf, mut sfs, mut sh, mut shs) = (INF, INF, INF, INF);
                    for m in 1..n {
                        let adv = m as u64 * a;
                        let (r, rs) = (right[n - m], right_star[n - m]);
                        sf = sf.min(adv + r + f[m]);
                        sfs = sfs.min(adv + rs + f[m]);
                        sh = sh.min(adv + r + a + h[m]);
                        shs = shs.min(adv + rs + a + h[m]);
                    }
                    v[Sub::F as usize] = v[Sub::F as usize].min(sf);
                    v[Sub::FStar as usize] = v[Sub::FStar as usize].min(sfs);
                    v[Sub::H as usize] = v[Sub::H as usize].min(sh);
                    v[Sub::HStar as usize] = v[Sub::HStar as usize].min(shs);
                }
                for (table, value) in tables.t.iter_mut().zip(v) {
                    table[row + n] = value.min(INF);
                }
            }
        }
        tables
    }
}

/// Emits the actions of an optimal schedule by replaying the tables' choices.
struct Emitter<'t> {
    tables: &'t Tables,
    forward: Vec<Action>,
    reverse: Vec<Action>,
    next_slot: usize,
    free_solution: Vec<usize>,
    free_stages: Vec<usize>,
}

/// Where the base of a range lives.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// `u_a` in this slot.
    Hard(usize),
    /// `u_a` re-obtained by restoring `u_{a−1}` from this stage slot and stepping once.
    Soft(usize),
}

impl Emitter<'_> {
    fn slot(&mut self, keep: Keep) -> usize {
        let pool = match keep {
            Keep::Solution => &mut self.free_solution,
            Keep::Stages => &mut self.free_stages,
        };
        pool.pop().unwrap_or_else(|| {
            self.next_slot += 1;
            self.next_slot - 1
        })
    }

    /// Free `slot` in the reverse phase.
    fn release(&mut self, slot: usize, keep: Keep) {
        self.release_to(slot, keep, false);
    }

    /// Free `slot` in the first sweep (`sweeping`) or the reverse phase, and reuse its id.
    fn release_to(&mut self, slot: usize, keep: Keep, sweeping: bool) {
        self.out(sweeping).push(Action::Free { slot });
        match keep {
            Keep::Solution => self.free_solution.push(slot),
            Keep::Stages => self.free_stages.push(slot),
        }
    }

    /// Forward actions go to the first sweep only while emitting a starred range's sweep.
    fn out(&mut self, sweeping: bool) -> &mut Vec<Action> {
        if sweeping {
            &mut self.forward
        } else {
            &mut self.reverse
        }
    }

    /// Make `u_a` current again from the base.
    fn recover(&mut self, a: usize, base: Base) {
        match base {
            Base::Hard(slot) => self.reverse.push(Action::Restore { slot, step: a }),
            Base::Soft(slot) => {
                self.reverse.push(Action::Restore { slot, step: a - 1 });
                self.reverse.push(Action::Advance { from: a - 1, to: a });
            }
        }
    }

    /// Reverse `[a, a+n)` with `b` free vectors; `sub` says which sub-problem (and so whether
    /// the range is swept forward first). Current solution on entry: `u_a`.
    /// Returns whether it released `base` (a hard base replaced by a stage slot): the caller
    /// must then not free it again.
    fn emit(&mut self, sub: Sub, a: usize, n: usize, b: usize, base: Base) -> bool {
        let star = matches!(sub, Sub::FStar | Sub::HStar);
        let (_, choice) = self.tables.best(sub, n, b);
        match choice {
            Choice::Leaf if star => {
                self.forward.push(Action::Tape { step: a });
                self.reverse.push(Action::Reverse {
                    step: a,
                    stages: StageSource::Tape,
                });
                false
            }
            Choice::Leaf => {
                self.reverse.push(Action::Reverse {
                    step: a,
                    stages: StageSource::Recompute,
                });
                false
            }
            Choice::Chain => {
                let mut first = true;
                if star {
                    if n > 1 {
                        self.forward.push(Action::Advance {
                            from: a,
                            to: a + n - 1,
                        });
                    }
                    self.forward.push(Action::Tape { step: a + n - 1 });
                    self.reverse.push(Action::Reverse {
                        step: a + n - 1,
                        stages: StageSource::Tape,
                    });
                    first = false;
                }
                let top = if star { n - 1 } else { n };
                for k in (0..top).rev() {
                    if !first {
                        self.recover(a, base);
                    }
                    first = false;
                    if k > 0 {
                        self.reverse.push(Action::Advance { from: a, to: a + k });
                    }
                    self.reverse.push(Action::Reverse {
                        step: a + k,
                        stages: StageSource::Recompute,
                    });
                }
                false
            }
            Choice::StageHere => {
                let mut free = b;
                let released = if let Base::Hard(base_slot) = base {
                    self.release_to(base_slot, Keep::Solution, star);
                    free += 1;
                    true
                } else {
                    false
                };
                let slot = self.slot(Keep::Stages);
                self.out(star)
                    .push(Action::StepKeepingStages { slot, step: a });
                self.emit_g(
                    star,
                    a,
                    n,
                    free - self.tables.cost.stage_vectors as usize,
                    slot,
                );
                self.release(slot, Keep::Stages);
                released
            }
            Choice::StoreHere => {
                let slot = self.slot(Keep::Solution);
                self.out(star).push(Action::Store { slot, step: a });
                let f = if star { Sub::FStar } else { Sub::F };
                if !self.emit(f, a, n, b - 1, Base::Hard(slot)) {
                    self.release(slot, Keep::Solution);
                }
                false
            }
            Choice::Split(m, keep) => {
                self.out(star).push(Action::Advance { from: a, to: a + m });
                let slot = self.slot(keep);
                match keep {
                    Keep::Solution => {
                        self.out(star).push(Action::Store { slot, step: a + m });
                        let f = if star { Sub::FStar } else { Sub::F };
                        if !self.emit(f, a + m, n - m, b - 1, Base::Hard(slot)) {
                            self.release(slot, keep);
                        }
                    }
                    Keep::Stages => {
                        self.out(star)
                            .push(Action::StepKeepingStages { slot, step: a + m });
                        let rest = b - self.tables.cost.stage_vectors as usize;
                        self.emit_g(star, a + m, n - m, rest, slot);
                        self.release(slot, keep);
                    }
                }
                self.recover(a, base);
                let left = if matches!(sub, Sub::H | Sub::HStar) {
                    Sub::H
                } else {
                    Sub::F
                };
                self.emit(left, a, m, b, base)
            }
        }
    }

    /// G: the stages of step `a` are in `slot`, current `u_{a+1}`; reverse `[a, a+n)`.
    fn emit_g(&mut self, star: bool, a: usize, n: usize, b: usize, slot: usize) {
        if n > 1 {
            let h = if star { Sub::HStar } else { Sub::H };
            self.emit(h, a + 1, n - 1, b, Base::Soft(slot));
        }
        self.reverse.push(Action::Reverse {
            step: a,
            stages: StageSource::Slot(slot),
        });
    }
}

/// The most table entries ([`multistage`]'s four tables together) the planner fills: 2²³
/// (64 MiB).
pub const MAX_TABLE_ENTRIES: u128 = 1 << 23;

/// The most split evaluations (`N²·B / 2`) the planner does: 2³⁰ (about a second).
pub const MAX_TABLE_WORK: u128 = 1 << 30;

/// Check the dynamic program's size for `n_steps` steps and `b_max` vectors against
/// [`MAX_TABLE_ENTRIES`] and [`MAX_TABLE_WORK`] before anything is allocated.
fn check_size(n_steps: usize, b_max: usize) -> Result<()> {
    let (n, b) = (n_steps as u128, b_max as u128);
    let entries = 4 * (n + 1) * (b + 1);
    let work = n * n * (b + 1) / 2;
    if entries > MAX_TABLE_ENTRIES || work > MAX_TABLE_WORK {
        return Err(Error::PlanTooLarge {
            n_steps,
            budget_vectors: b_max as u64,
            entries,
            work,
            max_entries: MAX_TABLE_ENTRIES,
            max_work: MAX_TABLE_WORK,
        });
    }
    Ok(())
}

/// The cheapest schedule (fewest RHS evaluations) for `n_steps` steps of a method costing
/// `cost` that never holds more than `budget_vectors` state vectors in checkpoint slots.
///
/// The budget is capped at store-all's `N·s` vectors (more never helps); a plan whose tables
/// would pass [`MAX_TABLE_ENTRIES`] or [`MAX_TABLE_WORK`] is [`Error::PlanTooLarge`].
pub fn multistage(n_steps: usize, budget_vectors: u64, cost: &StepCost) -> Result<Schedule> {
    if n_steps == 0 {
        return Err(Error::InvalidRequest(
            "a schedule needs at least one step".into(),
        ));
    }
    if cost.stage_vectors == 0 {
        return Err(Error::InvalidRequest(
            "a stage slot holds at least one vector".into(),
        ));
    }
    if n_steps > 1 && budget_vectors == 0 {
        return Err(Error::BudgetTooSmall {
            given: "0 vectors".into(),
            minimum: "1 vector (for u0)".into(),
        });
    }
    // Budget beyond store-all's (N−1)·S + S never helps.
    let cap = (n_steps as u64) * cost.stage_vectors;
    let b_max = usize::try_from(budget_vectors.min(cap)).unwrap_or(usize::MAX);
    check_size(n_steps, b_max)?;
    let tables = Tables::fill(*cost, n_steps, b_max);
    let mut emitter = Emitter {
        tables: &tables,
        forward: Vec::new(),
        reverse: Vec::new(),
        next_slot: 0,
        free_solution: Vec::new(),
        free_stages: Vec::new(),
    };
    if n_steps == 1 {
        emitter.emit(Sub::FStar, 0, 1, b_max, Base::Hard(usize::MAX));
    } else {
        let s = cost.stage_vectors as usize;
        let a = cost.rhs_per_step;
        let via_solution = if b_max >= 1 {
            tables.get(Sub::FStar, n_steps, b_max - 1)
        } else {
            INF
        };
        let via_stages = if b_max >= s {
            a + tables.g(true, n_steps, b_max - s)
        } else {
            INF
        };
        if via_stages < via_solution {
            let slot = emitter.slot(Keep::Stages);
            emitter
                .forward
                .push(Action::StepKeepingStages { slot, step: 0 });
            emitter.emit_g(true, 0, n_steps, b_max - s, slot);
            emitter.release(slot, Keep::Stages);
        } else {
            let slot = emitter.slot(Keep::Solution);
            emitter.forward.push(Action::Store { slot, step: 0 });
            if !emitter.emit(Sub::FStar, 0, n_steps, b_max - 1, Base::Hard(slot)) {
                emitter.release(slot, Keep::Solution);
            }
        }
    }
    debug_assert!(tables.b_max == b_max);
    Ok(Schedule::new_unchecked(
        format!("multistage({budget_vectors} vectors)"),
        n_steps,
        emitter.forward,
        emitter.reverse,
    ))
}

/// The dynamic program's optimum `T(N, B)`: total RHS evaluations, first sweep included
/// (the schedule [`multistage`] returns is predicted to cost exactly this).
pub fn optimal_cost(n_steps: usize, budget_vectors: u64, cost: &StepCost) -> Result<u64> {
    if n_steps == 0 || cost.stage_vectors == 0 {
        return Err(Error::InvalidRequest(
            "need at least one step and one stage vector".into(),
        ));
    }
    if n_steps == 1 {
        return Ok(cost.rhs_per_step);
    }
    let cap = (n_steps as u64) * cost.stage_vectors;
    let b_max = usize::try_from(budget_vectors.min(cap)).unwrap_or(usize::MAX);
    check_size(n_steps, b_max)?;
    let tables = Tables::fill(*cost, n_steps, b_max);
    let s = cost.stage_vectors as usize;
    let via_solution = if b_max >= 1 {
        tables.get(Sub::FStar, n_steps, b_max - 1)
    } else {
        INF
    };
    let via_stages = if b_max >= s {
        cost.rhs_per_step + tables.g(true, n_steps, b_max - s)
    } else {
        INF
    };
    let best = via_solution.min(via_stages);
    if best >= INF {
        return Err(Error::BudgetTooSmall {
            given: format!("{budget_vectors} vectors"),
            minimum: "1 vector (for u0)".into(),
        });
    }
    Ok(best)
}
