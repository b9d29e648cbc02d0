//! Online checkpointing: within its slots at every moment, every step reversed once in order,
//! and the stated recomputation bound holds.

use crate::UNIT;
use pnode_checkpoint::Action;
use pnode_checkpoint::online::OnlinePlanner;
use pnode_checkpoint::revolve::revolve;
use proptest::prelude::*;

/// Runs the planner step by step (as an adaptive run would), checking that it never holds
/// more than `c` checkpoints, and returns the final spacing and the reverse-phase advances.
fn run(n: usize, c: usize) -> (usize, u64) {
    let mut planner = OnlinePlanner::new(c).unwrap();
    let mut live = 0usize;
    for k in 0..n {
        for action in planner.step(k + 1 == n).unwrap() {
            match action {
                Action::Store { .. } => live += 1,
                Action::Free { .. } => live -= 1,
                _ => {}
            }
            assert!(live <= c, "N={n} c={c}: {live} live slots at step {k}");
        }
    }
    let d = planner.spacing();
    let schedule = planner.finish().unwrap();
    let p = schedule.predict(&UNIT, 8).unwrap();
    assert_eq!(p.forward_steps, n as u64);
    assert_eq!(p.reversed_steps, n as u64);
    assert!(p.peak_stored_vectors <= c as u64);
    assert_eq!(schedule, OnlinePlanner::plan(n, c).unwrap());
    (d, p.recomputed_steps)
}

/// The bound of the module docs: `d ≤ max(1, 2(N−1)/c)` and `R ≤ N(d−1)/2`
/// (`(N−1)(N−2)/2` with one slot).
fn check_bound(n: usize, c: usize) {
    let (d, recomputed) = run(n, c);
    if c == 1 {
        assert!(recomputed <= ((n - 1) * n.saturating_sub(2) / 2) as u64);
        return;
    }
    assert!(d <= (2 * (n - 1) / c).max(1), "N={n} c={c}: spacing {d}");
    assert!(
        recomputed <= (n * (d - 1) / 2) as u64,
        "N={n} c={c}: {recomputed} recomputed steps with spacing {d}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn online_stays_within_its_slots_and_its_bound(n in 1usize..=300, c in 1usize..=20) {
        check_bound(n, c);
    }
}

#[test]
fn online_costs_compared_with_offline_revolve() {
    for (n, c) in [(100, 5), (1000, 10), (1000, 45), (2000, 20)] {
        check_bound(n, c);
        let (_, online) = run(n, c);
        let offline = revolve(n, c)
            .unwrap()
            .predict(&UNIT, 8)
            .unwrap()
            .recomputed_steps;
        // Not knowing N costs recomputation: here 10–20 % over the offline optimum.
        assert!(online >= offline, "N={n} c={c}");
        assert!(
            10 * online <= 13 * offline,
            "N={n} c={c}: online {online}, offline {offline}"
        );
        eprintln!("N={n} c={c}: online {online} recomputed steps, offline Revolve {offline}");
    }
}

/// The lazily generated online schedule yields exactly the actions the materialised planner
/// listed (forward advances merged), and predicts the same statistics; the slot count is the
/// planner's capacity, never below the slots addressed.
#[test]
fn lazy_online_equals_the_materialised_planner() {
    use crate::revolve::materialised;
    let cost = pnode_checkpoint::StepCost {
        rhs_per_step: 4,
        rhs_per_stage_recompute: 3,
        vjp_per_reverse: 4,
        stage_vectors: 4,
    };
    for n in (1..=70).chain([100, 129, 300, 1000]) {
        for c in (1..=10).chain([16, 33]) {
            let (forward, reverse) = materialised::online(n, c);
            let lazy = OnlinePlanner::plan(n, c).unwrap();
            assert_eq!(lazy.forward().collect::<Vec<_>>(), forward, "N={n} c={c}");
            assert_eq!(lazy.reverse().collect::<Vec<_>>(), reverse, "N={n} c={c}");
            assert!(lazy.n_slots() >= materialised::n_slots(&forward, &reverse));
            assert!(lazy.n_slots() <= c);
            let listed = pnode_checkpoint::Schedule::new(lazy.name(), n, forward, reverse).unwrap();
            assert_eq!(
                lazy.predict(&cost, 24).unwrap(),
                listed.predict(&cost, 24).unwrap()
            );
        }
    }
}
