//! The PETSc backend (SNES/KSP) against the built-in Newton solver: solutions and gradients
//! agree to 1e-10 on stiff problems. Without the `petsc` feature, asking for it is an error.

use pnode_runtime::implicit::{LineSearch, LinearSolver};
use pnode_runtime::{DirkStepper, DirkTableau, NewtonConfig};

const BUILT_IN: NewtonConfig = NewtonConfig {
    atol: 1e-18,
    rtol: 1e-14,
    max_iters: 50,
    line_search: LineSearch::None,
    linear: LinearSolver::Dense,
};

#[cfg(not(feature = "petsc"))]
#[test]
fn petsc_without_the_feature_is_a_clear_error() {
    let config = NewtonConfig {
        linear: LinearSolver::Petsc,
        ..BUILT_IN
    };
    let err = DirkStepper::new(DirkTableau::sdirk2(), 3, 3, config).unwrap_err();
    assert!(
        matches!(err, pnode_runtime::Error::InvalidConfig(ref m) if m.contains("`petsc` feature")),
        "{err}"
    );
}

#[cfg(feature = "petsc")]
#[test]
fn petsc_and_built_in_agree_on_solutions_and_gradients() {
    use pnode_runtime::Checkpointing;
    use pnode_runtime::model::{RhsJvp, RhsVjp};
    use pnode_runtime::problems::{Robertson, VanDerPol};
    use pnode_runtime::{Solver, TimeGrid};
    use pnode_testkit::numeric::{ip, rel_max};

    let petsc = NewtonConfig {
        atol: 1e-20,
        rtol: 1e-15,
        linear: LinearSolver::Petsc,
        ..BUILT_IN
    };
    type Run = (Vec<f64>, pnode_runtime::Gradient, pnode_runtime::Stats);
    fn run<M: RhsJvp + RhsVjp + Clone>(
        tableau: &DirkTableau,
        config: NewtonConfig,
        model: &M,
        grid: &TimeGrid,
        outputs: &[f64],
        u0: &[f64],
        p: &[f64],
    ) -> Run {
        let mut m = model.clone();
        let stepper =
            DirkStepper::new(tableau.clone(), m.state_len(), m.param_len(), config).unwrap();
        let mut s = Solver::new(
            stepper,
            &m,
            grid.clone(),
            outputs,
            Checkpointing::Revolve { slots: 4 },
        )
        .unwrap();
        let mut out = Vec::new();
        let (_, g) = s
            .value_and_grad(&mut m, u0, p, |o, dl| {
                out = o.to_vec();
                dl.copy_from_slice(o);
                0.5 * ip(o, o)
            })
            .unwrap();
        (out, g, s.stats())
    }
    let n = 30;
    let mut times = vec![0.0];
    times.extend((0..=n).map(|k| 1e-6 * f64::powf(1e8, k as f64 / n as f64)));
    let rob_grid = TimeGrid::from_times(&times).unwrap();
    let vdp_grid = TimeGrid::uniform(0.0, 1.0, 40).unwrap();
    for tableau in [
        DirkTableau::theta(1.0).unwrap(),
        DirkTableau::theta(0.5).unwrap(),
        DirkTableau::sdirk2(),
        DirkTableau::trbdf2(),
        DirkTableau::esdirk3(),
    ] {
        let compare = |name: &str, built_in: Run, with_petsc: Run| {
            let ((out_a, g_a, _), (out_b, g_b, stats)) = (built_in, with_petsc);
            let e = [
                rel_max(&out_b, &out_a),
                rel_max(&g_b.du0, &g_a.du0),
                rel_max(&g_b.dp, &g_a.dp),
            ];
            eprintln!(
                "{} / {name}: PETSc vs built-in: solution {:.1e}, dL/du0 {:.1e}, dL/dθ {:.1e}",
                tableau.name(),
                e[0],
                e[1],
                e[2]
            );
            assert!(
                e.iter().all(|&x| x <= 1e-10),
                "{} / {name}: {e:?}",
                tableau.name()
            );
            assert!(stats.newton_iterations > 0 && stats.linear_iterations > 0);
        };
        let rob = |c| {
            let p = Robertson::default_params();
            run(
                &tableau,
                c,
                &Robertson::new(),
                &rob_grid,
                &[times[15], 100.0],
                &[1.0, 0.0, 0.0],
                &p,
            )
        };
        compare("Robertson", rob(BUILT_IN), rob(petsc));
        let vdp = |c| {
            run(
                &tableau,
                c,
                &VanDerPol::new(),
                &vdp_grid,
                &[0.5, 1.0],
                &[2.0, 0.0],
                &[1000.0],
            )
        };
        compare("Van der Pol μ=1000", vdp(BUILT_IN), vdp(petsc));
    }
}
