//! Two-level checkpointing: a few solution checkpoints on disk, binomial checkpointing in RAM
//! between them, for horizons too long for RAM alone.
//!
//! With `c_d` disk slots the grid is cut into intervals of `d = ⌈N / c_d⌉` steps (the last one
//! may be shorter), `n_0, …, n_{k−1}` steps long, `k = ⌈N / d⌉ ≤ c_d`. The forward sweep writes
//! each interval's starting solution `u_{i·d}` to its own disk slot (a last interval of a single
//! step needs none: that step is taped) and, inside the last interval, follows Revolve's first
//! sweep. The reverse sweep handles the intervals from the last to the first: it restores the
//! interval's start from disk and reverses the interval with Revolve, whose base checkpoint is
//! the disk slot and whose working checkpoints are the `c_r` RAM slots. The number of forward
//! step advances (each step's own re-evaluation before its adjoint not counted, as for
//! [`crate::revolve`]) is
//!
//! ```text
//! A(N, c_r, c_d) = (N − n_{k−1}) + Σ_{i<k} p(n_i, c_r + 1),   p(n, c) = r·n − C(c + r, c + 1),
//! ```
//!
//! the first sweep up to the last interval plus one binomial reversal per interval with
//! `c_r + 1` checkpoints ([`two_level_advances`]). Disk traffic: `k` (or `k − 1`) solution
//! vectors written, all in the first sweep, and one read per restore of an interval's start —
//! one per level of the binomial recursion along the interval's left edge (about the repetition
//! number `r`), or `n − 1` when an interval has no RAM slot to work with. Peak RAM: `c_r`
//! vectors; peak disk: the number of disk slots used. Counted in executor statistics:
//! `forward_steps = N`, `forward_steps − 1 + recomputed_steps = A(N, c_r, c_d)`.
//!
//! Equal intervals and the disk costs left out of the objective make this the simple
//! "disk-revolve" member of the multistage family, not its optimum; the optimal two-level
//! schedules with costed reads and writes are derived by Aupy et al.
//!
//! # References
//! * P. Stumm, A. Walther, "MultiStage approaches for optimal offline checkpointing", SIAM J.
//!   Sci. Comput. 31 (2009).
//! * G. Aupy, J. Herrmann, P. Hovland, Y. Robert, "Optimal multistage algorithm for adjoint
//!   computation", SIAM J. Sci. Comput. 38 (2016).
//! * A. Griewank, A. Walther, "Algorithm 799: Revolve", ACM TOMS 26 (2000).

use std::collections::BTreeSet;

use crate::action::Action;
use crate::error::{Error, Result};
use crate::revolve::{Binomial, optimal_advances};
use crate::schedule::Schedule;

/// Interval length `d = ⌈N / c_d⌉` and the RAM slots worth using, `min(c_r, d − 1)`, after
/// checking the request.
fn layout(n_steps: usize, ram_slots: usize, disk_slots: usize) -> Result<(usize, usize)> {
    if n_steps == 0 {
        return Err(Error::InvalidRequest(
            "a schedule needs at least one step".into(),
        ));
    }
    if disk_slots == 0 {
        return Err(Error::BudgetTooSmall {
            given: format!("{ram_slots} RAM slots and 0 disk slots"),
            minimum: "1 disk slot".into(),
        });
    }
    let d = n_steps.div_ceil(disk_slots);
    if ram_slots == 0 && d > 1 {
        return Err(Error::BudgetTooSmall {
            given: format!("0 RAM slots and {disk_slots} disk slots for {n_steps} steps"),
            minimum: format!("1 RAM slot (or {n_steps} disk slots)"),
        });
    }
    Ok((d, ram_slots.min(d - 1)))
}

/// `A(N, c_r, c_d)`: the forward step advances of [`two_level`]`(N, c_r, c_d)` (see the module
/// docs). Zero for a request [`two_level`] rejects.
pub fn two_level_advances(n_steps: usize, ram_slots: usize, disk_slots: usize) -> u64 {
    let Ok((d, ram)) = layout(n_steps, ram_slots, disk_slots) else {
        return 0;
    };
    let last = (n_steps - 1) / d * d;
    let reversals: u64 = (0..n_steps)
        .step_by(d)
        .map(|a| optimal_advances(d.min(n_steps - a) as u64, ram as u64 + 1))
        .sum();
    last as u64 + reversals
}

/// The two-level schedule for `n_steps` steps with `ram_slots` solution slots in RAM and
/// `disk_slots` on disk: intervals of `d = ⌈N / c_d⌉` steps start from disk checkpoints and are
/// reversed by Revolve in RAM, with `A(N, c_r, c_d)` advances ([`two_level_advances`]; the
/// formula is in the module docs).
///
/// RAM slots come first (`0 … c_r − 1`, only `min(c_r, d − 1)` of them are used), disk slots
/// after them. Needs at least one disk slot, and one RAM slot unless every interval is a single
/// step (`c_d ≥ N`); anything less is [`Error::BudgetTooSmall`].
pub fn two_level(n_steps: usize, ram_slots: usize, disk_slots: usize) -> Result<Schedule> {
    let (d, ram) = layout(n_steps, ram_slots, disk_slots)?;
    let stored = stored_disk_slots(n_steps, d);
    let disk: BTreeSet<usize> = (ram..ram + stored).collect();
    Ok(Schedule::two_level_generated(
        format!("two-level(ram {ram}, disk {stored})"),
        n_steps,
        (ram_slots, disk_slots),
        ram + stored,
    )
    .with_disk_slots(disk))
}

/// Disk slots the schedule fills: one per interval, but a last interval of a single step is
/// taped and needs none.
fn stored_disk_slots(n_steps: usize, d: usize) -> usize {
    let k = (n_steps - 1) / d; // index of the last interval
    let n_last = n_steps - k * d;
    if n_last > 1 { k + 1 } else { k }
}

/// The two phases of [`two_level`] for a request it accepted: the forward actions (`O(c_d)` of
/// them plus Revolve's first sweep of the last interval) and the generator of the reverse
/// ones, which never lists them.
pub(crate) fn two_level_phases(
    n_steps: usize,
    ram_slots: usize,
    disk_slots: usize,
) -> (Vec<Action>, Binomial) {
    let Ok((d, ram)) = layout(n_steps, ram_slots, disk_slots) else {
        return (Vec::new(), Binomial::new(1, 0, Vec::new()));
    };
    let k = (n_steps - 1) / d; // index of the last interval
    let last = k * d;
    let n_last = n_steps - last;
    let disk = |i: usize| ram + i;
    let mut planner = Binomial::new(d, ram, (0..ram).rev().collect());
    let mut forward = Vec::with_capacity(2 * k + 2 * ram + 3);
    for i in 0..k {
        let a = i * d;
        forward.push(Action::Store {
            slot: disk(i),
            step: a,
        });
        forward.push(Action::Advance { from: a, to: a + d });
    }
    // A last interval of one step is taped and needs no base checkpoint.
    if n_last > 1 {
        forward.push(Action::Store {
            slot: disk(k),
            step: last,
        });
    }
    // The generator yields what is queued last first: queue the first interval's reversal
    // first and the last interval's chain last.
    for i in 0..k {
        let a = i * d;
        planner.then_emit(Action::Free { slot: disk(i) });
        planner.then_left(a, d, disk(i), Some(ram));
        planner.then_emit(Action::Restore {
            slot: disk(i),
            step: a,
        });
    }
    if n_last > 1 {
        planner.then_emit(Action::Free { slot: disk(k) });
    }
    planner.right_chain(last, n_last, disk(k), ram, |a| forward.push(a));
    (forward, planner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::StepCost;

    const UNIT: StepCost = StepCost {
        rhs_per_step: 1,
        rhs_per_stage_recompute: 0,
        vjp_per_reverse: 1,
        stage_vectors: 1,
    };

    #[test]
    fn small_schedule_reads_as_expected() {
        let s = two_level(7, 1, 3).unwrap();
        // d = 3: intervals [0, 3), [3, 6), [6, 7); u0 and u3 on disk, the last step taped.
        assert_eq!(
            s.to_string(),
            "schedule `two-level(ram 1, disk 2)` for 7 steps
disk slots: 1, 2
forward:
  store u0 -> slot 1
  advance u0 -> u3
  store u3 -> slot 2
  advance u3 -> u6
  step 6 keeping stages -> tape
reverse:
  reverse step 6 (stages from tape)
  restore u3 <- slot 2
  advance u3 -> u4
  store u4 -> slot 0
  advance u4 -> u5
  reverse step 5 (recompute stages)
  restore u4 <- slot 0
  reverse step 4 (recompute stages)
  free slot 0
  restore u3 <- slot 2
  reverse step 3 (recompute stages)
  free slot 2
  restore u0 <- slot 1
  advance u0 -> u1
  store u1 -> slot 0
  advance u1 -> u2
  reverse step 2 (recompute stages)
  restore u1 <- slot 0
  reverse step 1 (recompute stages)
  free slot 0
  restore u0 <- slot 1
  reverse step 0 (recompute stages)
  free slot 1
"
        );
        let p = s.predict(&UNIT, 16).unwrap();
        // 6 first-sweep advances, 2 recomputed in each full interval: A = 6 + 2·p(3, 2) = 10.
        assert_eq!(p.forward_steps - 1 + p.recomputed_steps, 10);
        assert_eq!(two_level_advances(7, 1, 3), 10);
        assert_eq!(
            (p.peak_stored_vectors, p.peak_stored_bytes),
            (1, 16),
            "{p:?}"
        );
        assert_eq!((p.peak_disk_vectors, p.peak_disk_bytes), (2, 32));
        assert_eq!((p.disk_writes, p.disk_reads), (2, 4));
        assert!(s.slot_on_disk(1) && s.slot_on_disk(2) && !s.slot_on_disk(0));
    }

    #[test]
    fn last_interval_follows_revolve_first_sweep() {
        // One disk slot: the whole grid is one interval, reversed like Revolve with c_r + 1
        // checkpoints whose base lives on disk.
        let s = two_level(10, 2, 1).unwrap();
        let p = s.predict(&UNIT, 8).unwrap();
        assert_eq!(
            p.forward_steps - 1 + p.recomputed_steps,
            optimal_advances(10, 3)
        );
        assert_eq!(p.forward_steps - 1 + p.recomputed_steps, 15);
        assert_eq!((p.peak_stored_vectors, p.peak_disk_vectors), (2, 1));
        assert_eq!(p.disk_writes, 1);
        // Same advances as revolve(10, 3), which keeps u0 in RAM.
        let r = crate::revolve::revolve(10, 3)
            .unwrap()
            .predict(&UNIT, 8)
            .unwrap();
        assert_eq!(p.recomputed_steps, r.recomputed_steps);
        // Every restore of u0 reads the disk.
        let restores_of_u0 = crate::revolve::revolve(10, 3)
            .unwrap()
            .reverse()
            .filter(|a| matches!(a, Action::Restore { step: 0, .. }))
            .count();
        assert_eq!(p.disk_reads, restores_of_u0 as u64);
    }

    #[test]
    fn one_step_intervals_are_solution_only_on_disk() {
        let s = two_level(5, 0, 5).unwrap();
        let p = s.predict(&UNIT, 8).unwrap();
        assert_eq!(p.recomputed_steps, 0);
        assert_eq!((p.peak_stored_vectors, p.peak_disk_vectors), (0, 4));
        assert_eq!((p.disk_writes, p.disk_reads), (4, 4));
        let s = two_level(1, 3, 1).unwrap();
        assert_eq!(s.disk_slots().count(), 0);
        assert_eq!(s.predict(&UNIT, 8).unwrap().reversed_steps, 1);
    }

    #[test]
    fn too_small_a_budget_states_the_minimum() {
        assert_eq!(
            two_level(100, 0, 3).unwrap_err().to_string(),
            "checkpoint budget of 0 RAM slots and 3 disk slots for 100 steps is too small: at \
             least 1 RAM slot (or 100 disk slots) is needed"
        );
        assert_eq!(
            two_level(100, 4, 0).unwrap_err().to_string(),
            "checkpoint budget of 4 RAM slots and 0 disk slots is too small: at least 1 disk \
             slot is needed"
        );
        assert!(matches!(two_level(0, 1, 1), Err(Error::InvalidRequest(_))));
        assert_eq!(two_level_advances(100, 0, 3), 0);
    }
}
