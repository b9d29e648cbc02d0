//! Fixed-step convergence order of every tableau on a linear system with the exact solution
//! `exp(A t) u0`: the observed order must be within 0.2 of the nominal one.

use pnode_runtime::problems::LinearSystem;
use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};

fn error(tableau: &Tableau, n_steps: usize) -> f64 {
    let a = LinearSystem::example_matrix();
    let u0 = LinearSystem::example_u0();
    let mut model = LinearSystem::new(u0.len());
    let t_end = 1.0;
    let grid = TimeGrid::uniform(0.0, t_end, n_steps).unwrap();
    let mut solver = Solver::explicit(
        tableau.clone(),
        &model,
        grid,
        &[t_end],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let u = solver.solve(&mut model, &u0, &a).unwrap();
    let exact = LinearSystem::exact_solution(&a, t_end, &u0).unwrap();
    u.iter()
        .zip(&exact)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn every_tableau_converges_at_its_nominal_order() {
    for tableau in Tableau::all() {
        // Coarse enough that round-off stays far below the error, fine enough to be asymptotic.
        let base = match tableau.order() {
            1 => 200,
            2 => 50,
            3 | 4 => 16,
            _ => 8,
        };
        let errors: Vec<f64> = [base, 2 * base, 4 * base]
            .iter()
            .map(|&n| error(&tableau, n))
            .collect();
        let observed = (errors[1] / errors[2]).log2();
        let nominal = f64::from(tableau.order());
        assert!(
            (observed - nominal).abs() <= 0.2,
            "{}: observed order {observed:.3} (errors {errors:?}), nominal {nominal}",
            tableau.name()
        );
        assert!(
            errors[2] > 1e-13,
            "{}: error {:.3e} is at round-off",
            tableau.name(),
            errors[2]
        );
    }
}
