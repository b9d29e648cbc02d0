//! Statistics snapshots: the executor's counts equal the schedule's cost model exactly.
//!
//! Store-all keeps the live stage inputs of every step: `N·s` RHS forward, `N·s` VJPs in
//! reverse, no recomputation; the last step's stages stay in the working stage buffer (the
//! "tape"), so `(N−1)·s` vectors are stored. Solution-only keeps `u_n` for `n < N−1` (`N−1`
//! vectors) and recomputes each reversed step's stage inputs from `u_n`, except the last step's,
//! which are on the tape: `s − 1` RHS evaluations per recomputed step (stages `Y_2 … Y_s` need
//! `K_1 … K_{s−1}`; `K_s` only feeds `u_{n+1}`, which the adjoint does not need), so
//! `N·s + (N−1)·(s − 1)` RHS in all. Revolve with `c` slots advances `p(N, c)` steps in all
//! (first sweep included, the taped last step not). Dead stages (the FSAL stage of
//! dopri5/tsit5/bosh3, whose weight is zero) are never evaluated at fixed steps.

use pnode_runtime::checkpoint::revolve::optimal_advances;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::{Checkpointing, Solver, Stats, Tableau, TimeGrid};

fn run(tableau: Tableau, mode: Checkpointing, n_steps: usize) -> (Stats, Stats) {
    let mut model = LotkaVolterra::new();
    let grid = TimeGrid::uniform(0.0, 1.0, n_steps).unwrap();
    let outputs = [grid.t(n_steps / 2), 1.0];
    let mut solver = Solver::explicit(tableau, &model, grid, &outputs, mode).unwrap();
    let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
    solver
        .value_and_grad(&mut model, &u0, &p, |out, dl| {
            dl.copy_from_slice(out);
            0.0
        })
        .unwrap();
    (solver.stats(), solver.predicted_stats().unwrap())
}

#[test]
fn rk4_ten_steps_store_all() {
    let (stats, predicted) = run(Tableau::rk4(), Checkpointing::StoreAll, 10);
    assert_eq!(stats, predicted);
    assert_eq!((stats.rhs_evals, stats.vjp_evals), (40, 40));
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn rk4_ten_steps_solution_only() {
    let (stats, predicted) = run(Tableau::rk4(), Checkpointing::SolutionOnly, 10);
    assert_eq!(stats, predicted);
    assert_eq!((stats.rhs_evals, stats.vjp_evals), (40 + 9 * 3, 40));
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn dopri5_ten_steps_both_modes() {
    let (all, predicted_all) = run(Tableau::dopri5(), Checkpointing::StoreAll, 10);
    let (sol, predicted_sol) = run(Tableau::dopri5(), Checkpointing::SolutionOnly, 10);
    assert_eq!((all, sol), (predicted_all, predicted_sol));
    assert_eq!(
        (all.rhs_evals, sol.rhs_evals, all.vjp_evals),
        (60, 60 + 9 * 5, 60)
    );
    insta::assert_yaml_snapshot!("dopri5_store_all", all);
    insta::assert_yaml_snapshot!("dopri5_solution_only", sol);
}

#[test]
fn every_tableau_matches_the_cost_model() {
    for tableau in Tableau::all() {
        let s = tableau.live_stages() as u64;
        for (mode, rhs, vectors) in [
            (Checkpointing::StoreAll, 7 * s, 6 * s),
            (Checkpointing::SolutionOnly, 7 * s + 6 * (s - 1), 6),
        ] {
            let (stats, predicted) = run(tableau.clone(), mode, 7);
            assert_eq!(stats, predicted, "{}", tableau.name());
            assert_eq!(stats.rhs_evals, rhs, "{}", tableau.name());
            assert_eq!(stats.vjp_evals, 7 * s, "{}", tableau.name());
            assert_eq!(stats.peak_stored_vectors, vectors, "{}", tableau.name());
            assert_eq!(
                stats.peak_stored_bytes,
                vectors * 2 * 8,
                "{}",
                tableau.name()
            );
        }
    }
}

#[test]
fn rk4_revolve_three_slots() {
    let (stats, predicted) = run(Tableau::rk4(), Checkpointing::Revolve { slots: 3 }, 10);
    assert_eq!(stats, predicted);
    // p(10, 3) = 15 advances: 9 in the first sweep, 6 recomputed; every step but the taped last
    // one recomputes its stages.
    assert_eq!(
        stats.forward_steps - 1 + stats.recomputed_steps,
        optimal_advances(10, 3)
    );
    assert_eq!(stats.recomputed_steps, 6);
    assert_eq!(stats.rhs_evals, 4 * (10 + 6) + 3 * 9);
    assert_eq!(stats.peak_stored_vectors, 3);
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn revolve_matches_the_cost_model_for_many_slot_counts() {
    for tableau in [Tableau::euler(), Tableau::dopri5()] {
        let s = tableau.live_stages() as u64;
        for slots in 1..=8 {
            let (stats, predicted) = run(tableau.clone(), Checkpointing::Revolve { slots }, 23);
            assert_eq!(stats, predicted, "{} c={slots}", tableau.name());
            let advances = optimal_advances(23, slots as u64);
            assert_eq!(stats.forward_steps - 1 + stats.recomputed_steps, advances);
            assert_eq!(stats.rhs_evals, s * (advances + 1) + (s - 1) * 22);
            assert!(stats.peak_stored_vectors <= slots as u64);
        }
    }
}

#[test]
fn rk4_multistage_twelve_vectors() {
    let mode = Checkpointing::Budget(pnode_runtime::Budget::Vectors(12));
    let (stats, predicted) = run(Tableau::rk4(), mode, 10);
    assert_eq!(stats, predicted);
    // Cheaper than Revolve with 12 solution slots (which is solution-only here: 4·10 + 3·9).
    assert!(stats.rhs_evals < 67, "{stats:?}");
    assert!(stats.peak_stored_vectors <= 12);
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn online_matches_the_cost_model() {
    for slots in [1, 2, 3, 6] {
        let (stats, predicted) = run(Tableau::rk4(), Checkpointing::Online { slots }, 23);
        assert_eq!(stats, predicted, "online({slots})");
        assert!(stats.peak_stored_vectors <= slots as u64);
    }
}

#[test]
fn the_ledger_restarts_with_every_sweep() {
    // A solve reports its forward sweep alone; the next gradient counts from zero again.
    let mut model = LotkaVolterra::new();
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    let mode = Checkpointing::Revolve { slots: 3 };
    let mut solver = Solver::explicit(Tableau::rk4(), &model, grid, &[1.0], mode).unwrap();
    let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl.copy_from_slice(out);
        0.0
    };
    solver.value_and_grad(&mut model, &u0, &p, loss).unwrap();
    let gradient = solver.stats();
    solver.solve(&mut model, &u0, &p).unwrap();
    let solve = solver.stats();
    assert_eq!((solve.forward_steps, solve.rhs_evals), (10, 40));
    assert_eq!(
        (
            solve.reversed_steps,
            solve.peak_slots,
            solve.peak_stored_bytes
        ),
        (0, 0, 0)
    );
    solver.value_and_grad(&mut model, &u0, &p, loss).unwrap();
    assert_eq!(solver.stats(), gradient);
    assert_eq!(gradient, solver.predicted_stats().unwrap());
    assert_eq!(
        (gradient.peak_slots, gradient.peak_stored_bytes),
        (3, 3 * 2 * 8)
    );
}
