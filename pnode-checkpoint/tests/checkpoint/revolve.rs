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
        .iter()
        .filter_map(|a| match a {
            pnode_checkpoint::Action::Reverse { step, .. } => Some(*step),
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
