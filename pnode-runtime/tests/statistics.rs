//! Statistics snapshots: the executor's counts equal the schedule's cost model exactly.
//!
//! Store-all keeps every step's live stage inputs: `N·s` RHS forward, `N·s` VJPs in reverse, no
//! recomputation, `N·s` stored vectors. Solution-only keeps `u_n` for `n < N` (`N` vectors) and
//! recomputes each reversed step's stage inputs from `u_n`: `s − 1` RHS evaluations per step
//! (stages `Y_2 … Y_s` need `K_1 … K_{s−1}`; `K_s` only feeds `u_{n+1}`, which is not needed),
//! so `N·s + N·(s − 1)` RHS in all. Dead stages (the FSAL stage of dopri5/tsit5/bosh3, whose
//! weight is zero) are never evaluated at fixed steps.

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
    assert_eq!((stats.rhs_evals, stats.vjp_evals), (40 + 10 * 3, 40));
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn dopri5_ten_steps_both_modes() {
    let (all, predicted_all) = run(Tableau::dopri5(), Checkpointing::StoreAll, 10);
    let (sol, predicted_sol) = run(Tableau::dopri5(), Checkpointing::SolutionOnly, 10);
    assert_eq!((all, sol), (predicted_all, predicted_sol));
    assert_eq!(
        (all.rhs_evals, sol.rhs_evals, all.vjp_evals),
        (60, 60 + 50, 60)
    );
    insta::assert_yaml_snapshot!("dopri5_store_all", all);
    insta::assert_yaml_snapshot!("dopri5_solution_only", sol);
}

#[test]
fn every_tableau_matches_the_cost_model() {
    for tableau in Tableau::all() {
        let s = tableau.live_stages() as u64;
        for (mode, rhs, vectors) in [
            (Checkpointing::StoreAll, 7 * s, 7 * s),
            (Checkpointing::SolutionOnly, 7 * s + 7 * (s - 1), 7),
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
