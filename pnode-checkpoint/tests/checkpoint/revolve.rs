//! Revolve against its closed form and a brute-force dynamic program; every planned schedule
//! is valid and stays within its slots.

use crate::UNIT;
use pnode_checkpoint::revolve::{optimal_advances, revolve};
use pnode_checkpoint::{Budget, Checkpointing, Schedule, StepCost};
use proptest::prelude::*;

/// t(n, c) = min_{1≤m<n} [m + t(n−m, c−1) + t(m, c)], t(1, c) = 0, t(n, 1) = n(n−1)/2, by
/// exhaustive minimisation over every split.
fn brute_force(max_n: usize, max_c: usize) -> Vec<Vec<u64>> {
    let mut t = vec![vec![0u64; max_c + 1]; max_n + 1];
    for n in 1..=max_n {
        t[n][1] = (n * (n - 1) / 2) as u64;
        for c in 2..=max_c {
            t[n][c] = if n == 1 {
                0
            } else {
                (1..n)
                    .map(|m| m as u64 + t[n - m][c - 1] + t[m][c])
                    .min()
                    .unwrap()
            };
        }
    }
    t
}

#[test]
fn closed_form_equals_brute_force_dynamic_program() {
    let t = brute_force(60, 20);
    for n in 1..=60 {
        for c in 1..=20 {
            assert_eq!(
                optimal_advances(n as u64, c as u64),
                t[n][c],
                "N = {n}, c = {c}"
            );
        }
    }
}

/// Stores of the forward and reverse phase never exceed `slots` live slots, and the schedule's
/// advances equal p(N, c).
fn check_revolve(n: usize, c: usize) {
    let schedule = revolve(n, c).unwrap();
    let p = schedule.predict(&UNIT, 8).unwrap();
    assert_eq!(p.reversed_steps, n as u64);
    assert_eq!(p.forward_steps, n as u64);
    assert!(p.peak_stored_vectors <= c as u64, "N={n} c={c}: {p:?}");
    assert_eq!(
        p.forward_steps - 1 + p.recomputed_steps,
        optimal_advances(n as u64, c as u64),
        "N={n} c={c}"
    );
    // Each step reversed exactly once, in order (also enforced by validation).
    let reversed: Vec<usize> = schedule
        .reverse()
        .filter_map(|a| match a {
            pnode_checkpoint::Action::Reverse { step, .. } => Some(step),
            _ => None,
        })
        .collect();
    assert_eq!(reversed, (0..n).rev().collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn revolve_is_valid_bounded_and_optimal(n in 1usize..=300, c in 1usize..=20) {
        check_revolve(n, c);
    }

    #[test]
    fn budgeted_plans_fit_their_budget(n in 1usize..=300, vectors in 1u64..=400, s in 1u64..=7) {
        let cost = StepCost { rhs_per_step: s, rhs_per_stage_recompute: s - 1, vjp_per_reverse: s, stage_vectors: s };
        let schedule = Checkpointing::Budget(Budget::Vectors(vectors)).plan(n, &cost, 24).unwrap();
        let p = schedule.predict(&cost, 24).unwrap();
        prop_assert!(p.peak_stored_vectors <= vectors);
        // Never worse than Revolve with as many slots as vectors.
        let revolve_cost = revolve(n, vectors as usize).unwrap().predict(&cost, 24).unwrap();
        prop_assert!(p.rhs_evals <= revolve_cost.rhs_evals);
    }
}

#[test]
fn corner_cases() {
    for n in 1..=12 {
        for c in 1..=14 {
            check_revolve(n, c);
        }
    }
    check_revolve(2000, 10);
    // Plenty of slots: no recomputation at all, like solution-only.
    let p = revolve(50, 49).unwrap().predict(&UNIT, 8).unwrap();
    let q = Schedule::solution_only(50).predict(&UNIT, 8).unwrap();
    assert_eq!((p.rhs_evals, p.recomputed_steps), (q.rhs_evals, 0));
}

/// The planners as they were before their actions were generated lazily: the binomial
/// recursion materialised into two lists with a brute-force split search. The lazy planners
/// must yield exactly these actions.
pub(crate) mod materialised {
    use pnode_checkpoint::revolve::optimal_advances;
    use pnode_checkpoint::{Action, StageSource};

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

    pub(crate) struct Planner {
        pub(crate) forward: Vec<Action>,
        pub(crate) reverse: Vec<Action>,
        pub(crate) free_slots: Vec<usize>,
    }

    impl Planner {
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
            let slot = self.free_slots.pop().unwrap();
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
            let slot = self.free_slots.pop().unwrap();
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

    /// `revolve(n, slots)` as it was materialised.
    pub(crate) fn revolve(n_steps: usize, slots: usize) -> (Vec<Action>, Vec<Action>) {
        let slots = slots.min(n_steps.max(2) - 1);
        let mut planner = Planner {
            forward: Vec::new(),
            reverse: Vec::new(),
            free_slots: (1..slots).rev().collect(),
        };
        if n_steps == 1 {
            planner.right_chain(0, 1, 0, 0);
        } else {
            planner.forward.push(Action::Store { slot: 0, step: 0 });
            planner.right_chain(0, n_steps, 0, slots - 1);
            planner.reverse.push(Action::Free { slot: 0 });
        }
        (planner.forward, planner.reverse)
    }

    /// `OnlinePlanner::plan(n, slots)` as it was materialised.
    pub(crate) fn online(n_steps: usize, slots: usize) -> (Vec<Action>, Vec<Action>) {
        let (mut spacing, mut kept, mut free) = (1usize, Vec::<(usize, usize)>::new(), Vec::new());
        free.extend((0..slots).rev());
        let mut forward: Vec<Action> = Vec::new();
        for n in 0..n_steps {
            let last = n + 1 == n_steps;
            if !last && n % spacing == 0 {
                if free.is_empty() && slots > 1 {
                    spacing *= 2;
                    let (keep, drop): (Vec<_>, Vec<_>) =
                        kept.iter().partition(|(step, _)| step % spacing == 0);
                    for &(_, slot) in &drop {
                        forward.push(Action::Free { slot });
                        free.push(slot);
                    }
                    kept = keep;
                }
                if n % spacing == 0
                    && let Some(slot) = free.pop()
                {
                    forward.push(Action::Store { slot, step: n });
                    kept.push((n, slot));
                }
            }
            forward.push(if last {
                Action::Tape { step: n }
            } else {
                Action::Advance { from: n, to: n + 1 }
            });
        }
        let mut merged: Vec<Action> = Vec::new();
        for action in forward {
            if let (Some(Action::Advance { to: prev_to, .. }), Action::Advance { from, to }) =
                (merged.last_mut(), action)
                && *prev_to == from
            {
                *prev_to = to;
                continue;
            }
            merged.push(action);
        }
        let mut planner = Planner {
            forward: Vec::new(),
            reverse: vec![Action::Reverse {
                step: n_steps - 1,
                stages: StageSource::Tape,
            }],
            free_slots: free,
        };
        let mut end = n_steps - 1;
        for &(start, slot) in kept.iter().rev() {
            if end > start {
                planner.reverse.push(Action::Restore { slot, step: start });
                let free = planner.free_slots.len();
                planner.left(start, end - start, slot, free);
            }
            planner.reverse.push(Action::Free { slot });
            planner.free_slots.push(slot);
            end = start;
        }
        (merged, planner.reverse)
    }

    /// Largest slot index + 1 over both lists.
    pub(crate) fn n_slots(forward: &[Action], reverse: &[Action]) -> usize {
        forward
            .iter()
            .chain(reverse)
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
}

/// The lazily generated Revolve schedule yields exactly the actions the materialised planner
/// listed, addresses as many slots, and predicts the same statistics.
#[test]
fn lazy_revolve_equals_the_materialised_planner() {
    let cost = StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };
    let sizes = (1..=80).chain([97, 128, 200, 257, 500, 1000, 2049]);
    for n in sizes {
        for c in (1..=12).chain([20, 40]) {
            let (forward, reverse) = materialised::revolve(n, c);
            let lazy = revolve(n, c).unwrap();
            assert_eq!(lazy.forward().collect::<Vec<_>>(), forward, "N={n} c={c}");
            assert_eq!(lazy.reverse().collect::<Vec<_>>(), reverse, "N={n} c={c}");
            assert_eq!(lazy.n_slots(), materialised::n_slots(&forward, &reverse));
            let listed = Schedule::new(lazy.name(), n, forward, reverse).unwrap();
            assert_eq!(lazy, listed);
            assert_eq!(
                lazy.predict(&cost, 24).unwrap(),
                listed.predict(&cost, 24).unwrap()
            );
        }
    }
}

/// Revolve over 10⁷ steps is planned without listing its actions: the forward phase has
/// `O(slots)` actions, and the reverse phase starts at once.
#[test]
fn revolve_over_ten_million_steps_is_generated_on_demand() {
    let n = 10_000_000;
    let s = revolve(n, 10).unwrap();
    assert!(s.is_generated());
    assert_eq!(s.n_slots(), 10);
    let forward: Vec<_> = s.forward().collect();
    assert!(forward.len() <= 2 * 10 + 2, "{}", forward.len());
    assert_eq!(
        forward.last(),
        Some(&pnode_checkpoint::Action::Tape { step: n - 1 })
    );
    let first: Vec<_> = s.reverse().take(3).collect();
    assert_eq!(
        first[0],
        pnode_checkpoint::Action::Reverse {
            step: n - 1,
            stages: pnode_checkpoint::StageSource::Tape
        }
    );
}
