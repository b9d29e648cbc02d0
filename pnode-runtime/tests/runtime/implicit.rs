//! θ-methods (backward Euler, Crank–Nicolson) and DIRKs (SDIRK2, TR-BDF2, ESDIRK3): convergence
//! order, L-stability, exact discrete adjoints on stiff problems (Robertson, Van der Pol
//! μ = 1000) against finite differences and by Taylor tests, bitwise identity across checkpoint
//! schedules, Newton failures as errors.

use crate::common::{pseudo_random, quadratic_loss, same_bits};
use pnode_runtime::implicit::{GmresConfig, LinearSolver, Preconditioner};
use pnode_runtime::model::{ClosureModel, RhsJvp, RhsVjp};
use pnode_runtime::problems::{LinearSystem, Robertson, VanDerPol};
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{
    Budget, Checkpointing, DirkStepper, DirkTableau, Error, Gradient, NewtonConfig, Solver,
    ThetaStepper, TimeGrid,
};
use pnode_testkit::numeric::{ip, rel_max};

const TIGHT: NewtonConfig = NewtonConfig {
    atol: 1e-14,
    rtol: 1e-13,
    max_iters: 50,
    line_search: pnode_runtime::implicit::LineSearch::None,
    linear: LinearSolver::Dense,
};

/// The same with matrix-free GMRES (tolerance far below the Newton tolerance).
const TIGHT_GMRES: NewtonConfig = NewtonConfig {
    linear: LinearSolver::Gmres(GmresConfig {
        restart: 10,
        rtol: 1e-10,
        atol: 1e-300,
        max_iters: 200,
    }),
    ..TIGHT
};

fn solver<M: RhsJvp + RhsVjp>(
    theta: f64,
    model: &M,
    grid: &TimeGrid,
    outputs: &[f64],
    mode: Checkpointing,
) -> Solver<ThetaStepper> {
    let stepper = ThetaStepper::new(theta, model.state_len(), model.param_len(), TIGHT).unwrap();
    Solver::new(stepper, model, grid.clone(), outputs, mode).unwrap()
}

fn dirk_solver<M: RhsJvp + RhsVjp>(
    tableau: &DirkTableau,
    model: &M,
    grid: &TimeGrid,
    outputs: &[f64],
    mode: Checkpointing,
) -> Solver<DirkStepper> {
    let stepper =
        DirkStepper::new(tableau.clone(), model.state_len(), model.param_len(), TIGHT).unwrap();
    Solver::new(stepper, model, grid.clone(), outputs, mode).unwrap()
}

#[test]
fn convergence_orders_on_the_linear_problem() {
    let a = LinearSystem::example_matrix();
    let u0 = LinearSystem::example_u0();
    let exact = LinearSystem::exact_solution(&a, 1.0, &u0).unwrap();
    for (theta, nominal) in [(1.0, 1.0), (0.5, 2.0), (0.75, 1.0)] {
        let errors: Vec<f64> = [40, 80]
            .iter()
            .map(|&n| {
                let mut model = LinearSystem::new(3);
                let grid = TimeGrid::uniform(0.0, 1.0, n).unwrap();
                let mut s = solver(theta, &model, &grid, &[1.0], Checkpointing::StoreAll);
                let u = s.solve(&mut model, &u0, &a).unwrap().to_vec();
                u.iter()
                    .zip(&exact)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
            })
            .collect();
        let observed = (errors[0] / errors[1]).log2();
        assert!(
            (observed - nominal).abs() <= 0.2,
            "θ = {theta}: order {observed:.3}"
        );
    }
}

#[test]
fn backward_euler_is_l_stable_and_crank_nicolson_is_not() {
    // y' = −1e6 y with h = 0.1: the stability functions R(z) = 1/(1−z) and (1+z/2)/(1−z/2)
    // at z = −1e5 give 1e-5 (damped) and −0.99996 (undamped).
    let mut model = ClosureModel::new(1, 1, |_t, u: &[f64], p: &[f64], f: &mut [f64]| {
        f[0] = -p[0] * u[0]
    })
    .with_jvp(|_t, _u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]| out[0] = -p[0] * v[0]);
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    for (theta, expected) in [(1.0, 1.0 / (1.0 + 1e5)), (0.5, (1.0 - 5e4) / (1.0 + 5e4))] {
        let stepper = ThetaStepper::new(theta, 1, 1, TIGHT).unwrap();
        let mut s = Solver::new(
            stepper,
            &model,
            grid.clone(),
            &[0.1, 1.0],
            Checkpointing::StoreAll,
        )
        .unwrap();
        let out = s.solve(&mut model, &[1.0], &[1e6]).unwrap().to_vec();
        assert!(
            (out[0] - expected).abs() <= 1e-12 * expected.abs(),
            "θ={theta}: {}",
            out[0]
        );
        assert!((out[1] - expected.powi(10)).abs() <= 1e-10 * expected.abs().powi(10));
    }
}

/// Loss and gradient of a θ-method solve, with central finite differences of the same solve.
fn check_fd<M: RhsJvp + RhsVjp + Clone>(
    theta: f64,
    model: &M,
    grid: &TimeGrid,
    outputs: &[f64],
    u0: &[f64],
    p: &[f64],
) -> Gradient {
    let make = |m: &M| solver(theta, m, grid, outputs, Checkpointing::StoreAll);
    check_fd_with(&format!("θ = {theta}"), &make, model, outputs, u0, p)
}

/// The same for any stepper, built by `make`.
fn check_fd_with<M: RhsJvp + RhsVjp + Clone, S: AdjointStepper<M>>(
    name: &str,
    make: &dyn Fn(&M) -> Solver<S>,
    model: &M,
    outputs: &[f64],
    u0: &[f64],
    p: &[f64],
) -> Gradient {
    let targets = pseudo_random(outputs.len() * u0.len(), 9)
        .iter()
        .map(|x| 0.5 + 0.1 * x)
        .collect::<Vec<_>>();
    let loss = |u0: &[f64], p: &[f64]| {
        let mut m = model.clone();
        let mut s = make(&m);
        let out = s.solve(&mut m, u0, p).unwrap().to_vec();
        let mut dl = vec![0.0; out.len()];
        quadratic_loss(&out, &targets, &mut dl)
    };
    let mut m = model.clone();
    let mut s = make(&m);
    let (l0, g) = s
        .value_and_grad(&mut m, u0, p, |out, dl| quadratic_loss(out, &targets, dl))
        .unwrap();
    assert_eq!(l0.to_bits(), loss(u0, p).to_bits());
    // Fourth-order central differences: the stiff losses curve strongly, and the O(e²) error of
    // the two-point formula would dominate the comparison.
    let fd = |x: &[f64], i: usize, f: &dyn Fn(&[f64]) -> f64| {
        let e = 1e-5 * x[i].abs().max(1e-3);
        let at = |k: f64| {
            let mut y = x.to_vec();
            y[i] += k * e;
            f(&y)
        };
        (-at(2.0) + 8.0 * at(1.0) - 8.0 * at(-1.0) + at(-2.0)) / (12.0 * e)
    };
    let fd_u0: Vec<f64> = (0..u0.len()).map(|i| fd(u0, i, &|x| loss(x, p))).collect();
    let fd_p: Vec<f64> = (0..p.len()).map(|i| fd(p, i, &|x| loss(u0, x))).collect();
    let (e_u0, e_p) = (rel_max(&g.du0, &fd_u0), rel_max(&g.dp, &fd_p));
    eprintln!("{name}: relative error vs FD: dL/du0 {e_u0:.1e}, dL/dθ {e_p:.1e}");
    assert!(e_u0 <= 1e-6 && e_p <= 1e-6, "{name}: {e_u0:.2e} {e_p:.2e}");
    // Taylor test in a random direction of (u0, θ) scaled to each component.
    let du: Vec<f64> = pseudo_random(u0.len(), 1)
        .iter()
        .zip(u0)
        .map(|(d, x)| d * x.abs().max(1e-3))
        .collect();
    let dp: Vec<f64> = pseudo_random(p.len(), 2)
        .iter()
        .zip(p)
        .map(|(d, x)| d * x.abs())
        .collect();
    let slope = ip(&g.du0, &du) + ip(&g.dp, &dp);
    let r: Vec<f64> = (0..4)
        .map(|k| {
            let eps = 1e-3 / f64::powi(2.0, k);
            let u: Vec<f64> = u0.iter().zip(&du).map(|(x, d)| x + eps * d).collect();
            let q: Vec<f64> = p.iter().zip(&dp).map(|(x, d)| x + eps * d).collect();
            (loss(&u, &q) - l0 - eps * slope).abs()
        })
        .collect();
    let rates: Vec<f64> = r.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    assert!(
        rates.iter().all(|x| (1.9..=2.1).contains(x)),
        "{name}: Taylor rates {rates:?}"
    );
    g
}

fn robertson_grid() -> (TimeGrid, Vec<f64>) {
    // Log-spaced from 1e-6 to 100 (a coarse uniform first step gives Crank–Nicolson several
    // Newton roots).
    let n = 40;
    let mut times = vec![0.0];
    times.extend((0..=n).map(|k| 1e-6 * f64::powf(1e8, k as f64 / n as f64)));
    let grid = TimeGrid::from_times(&times).unwrap();
    let outputs = vec![times[10], times[20], times[30], times[40]];
    (grid, outputs)
}

#[test]
fn robertson_gradients_match_finite_differences() {
    let (grid, outputs) = robertson_grid();
    for theta in [1.0, 0.5, 0.75] {
        check_fd(
            theta,
            &Robertson::new(),
            &grid,
            &outputs,
            &[1.0, 1e-8, 1e-8],
            &Robertson::default_params(),
        );
    }
}

#[test]
fn stiff_van_der_pol_gradients_match_finite_differences() {
    let grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    for theta in [1.0, 0.5, 0.75] {
        check_fd(
            theta,
            &VanDerPol::new(),
            &grid,
            &[0.5, 1.0],
            &[2.0, 0.0],
            &[1000.0],
        );
    }
}

#[test]
fn every_schedule_gives_the_same_bits() {
    let (grid, outputs) = robertson_grid();
    let u0 = [1.0, 0.0, 0.0];
    let p = Robertson::default_params();
    for theta in [1.0, 0.5] {
        let run = |mode: Checkpointing| {
            let mut m = Robertson::new();
            let mut s = solver(theta, &m, &grid, &outputs, mode);
            s.value_and_grad(&mut m, &u0, &p, |out, dl| {
                dl.copy_from_slice(out);
                0.5 * ip(out, out)
            })
            .unwrap()
            .1
        };
        let reference = run(Checkpointing::StoreAll);
        for mode in [
            Checkpointing::SolutionOnly,
            Checkpointing::Revolve { slots: 3 },
            Checkpointing::Budget(Budget::Vectors(9)),
            Checkpointing::Online { slots: 4 },
        ] {
            assert!(
                same_bits(&reference, &run(mode.clone())),
                "θ={theta} {mode:?}"
            );
        }
    }
}

#[test]
fn newton_failures_name_the_step_and_time() {
    // f(u) = u / h makes backward Euler's stage Jacobian I − h·(1/h) = 0 singular.
    let mut model = ClosureModel::new(1, 0, |_t, u: &[f64], _p: &[f64], f: &mut [f64]| {
        f[0] = 10.0 * u[0]
    })
    .with_jvp(|_t, _u: &[f64], _p: &[f64], v: &[f64], out: &mut [f64]| out[0] = 10.0 * v[0]);
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    let stepper = ThetaStepper::backward_euler(1, 0, TIGHT).unwrap();
    let mut s = Solver::new(stepper, &model, grid, &[1.0], Checkpointing::StoreAll).unwrap();
    let err = s.solve(&mut model, &[1.0], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewtonFailed {
                step: 0,
                iterations: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("step 0 (stage at t = 0.1)"),
        "{err}"
    );
    // Too few iterations on a stiff problem.
    let (grid, outputs) = robertson_grid();
    let few = NewtonConfig {
        max_iters: 1,
        ..TIGHT
    };
    let stepper = ThetaStepper::crank_nicolson(3, 3, few).unwrap();
    let mut m = Robertson::new();
    let mut s = Solver::new(stepper, &m, grid, &outputs, Checkpointing::StoreAll).unwrap();
    let err = s
        .solve(&mut m, &[1.0, 0.0, 0.0], &Robertson::default_params())
        .unwrap_err();
    assert!(
        matches!(err, Error::NewtonFailed { iterations: 1, .. }),
        "{err}"
    );
    assert!(ThetaStepper::new(0.0, 1, 0, TIGHT).is_err());
    assert!(
        ThetaStepper::new(
            0.5,
            1,
            0,
            NewtonConfig {
                max_iters: 0,
                ..TIGHT
            }
        )
        .is_err()
    );
}

#[test]
fn statistics_of_a_stiff_gradient() {
    let (grid, outputs) = robertson_grid();
    let mut m = Robertson::new();
    let mut s = solver(
        1.0,
        &m,
        &grid,
        &outputs,
        Checkpointing::Revolve { slots: 4 },
    );
    let (u0, p) = ([1.0, 0.0, 0.0], Robertson::default_params());
    s.value_and_grad(&mut m, &u0, &p, |out, dl| {
        dl.copy_from_slice(out);
        0.0
    })
    .unwrap();
    let (stats, predicted) = (s.stats(), s.predicted_stats().unwrap());
    // Steps, recomputation and memory are planned exactly; evaluation counts depend on Newton.
    assert_eq!(
        (
            stats.forward_steps,
            stats.recomputed_steps,
            stats.stage_recomputations
        ),
        (
            predicted.forward_steps,
            predicted.recomputed_steps,
            predicted.stage_recomputations
        )
    );
    assert_eq!(stats.peak_stored_vectors, predicted.peak_stored_vectors);
    // Backward Euler: one VJP per reversed step (θ = 1 has no explicit part); the Jacobian is
    // assembled from 3 JVPs per Newton iteration and once more per adjoint step.
    assert_eq!(stats.vjp_evals, 41);
    assert_eq!(stats.jvp_evals, 3 * (stats.newton_iterations + 41));
    insta::assert_yaml_snapshot!(stats);
}

#[test]
fn dirk_orders_and_l_stability() {
    let a = LinearSystem::example_matrix();
    let u0 = LinearSystem::example_u0();
    let exact = LinearSystem::exact_solution(&a, 1.0, &u0).unwrap();
    for tableau in DirkTableau::all() {
        let errors: Vec<f64> = [20, 40]
            .iter()
            .map(|&n| {
                let mut model = LinearSystem::new(3);
                let grid = TimeGrid::uniform(0.0, 1.0, n).unwrap();
                let mut s = dirk_solver(&tableau, &model, &grid, &[1.0], Checkpointing::StoreAll);
                let u = s.solve(&mut model, &u0, &a).unwrap().to_vec();
                u.iter()
                    .zip(&exact)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max)
            })
            .collect();
        let observed = (errors[0] / errors[1]).log2();
        let nominal = f64::from(tableau.order());
        assert!(
            (observed - nominal).abs() <= 0.2,
            "{}: order {observed:.3}",
            tableau.name()
        );
        // L-stability: y' = −1e6 y, one step of h = 0.1 (z = −1e5) nearly annihilates y.
        let mut stiff = ClosureModel::new(1, 1, |_t, u: &[f64], p: &[f64], f: &mut [f64]| {
            f[0] = -p[0] * u[0]
        })
        .with_jvp(|_t, _u: &[f64], p: &[f64], v: &[f64], out: &mut [f64]| out[0] = -p[0] * v[0]);
        let grid = TimeGrid::uniform(0.0, 0.1, 1).unwrap();
        let stepper = DirkStepper::new(tableau.clone(), 1, 1, TIGHT).unwrap();
        let mut s = Solver::new(stepper, &stiff, grid, &[0.1], Checkpointing::StoreAll).unwrap();
        let y = s.solve(&mut stiff, &[1.0], &[1e6]).unwrap()[0];
        assert!(y.abs() <= 1e-4, "{}: R(−1e5) = {y}", tableau.name());
    }
}

#[test]
fn dirk_gradients_match_finite_differences_on_stiff_problems() {
    let (grid, outputs) = robertson_grid();
    let vdp_grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    for tableau in DirkTableau::all() {
        let make =
            |m: &Robertson| dirk_solver(&tableau, m, &grid, &outputs, Checkpointing::StoreAll);
        check_fd_with(
            tableau.name(),
            &make,
            &Robertson::new(),
            &outputs,
            &[1.0, 1e-8, 1e-8],
            &Robertson::default_params(),
        );
        let make = |m: &VanDerPol| {
            dirk_solver(&tableau, m, &vdp_grid, &[0.5, 1.0], Checkpointing::StoreAll)
        };
        check_fd_with(
            tableau.name(),
            &make,
            &VanDerPol::new(),
            &[0.5, 1.0],
            &[2.0, 0.0],
            &[1000.0],
        );
    }
}

#[test]
fn dirk_theta_tableau_reproduces_the_theta_method() {
    let (grid, outputs) = robertson_grid();
    let (u0, p) = ([1.0, 0.0, 0.0], Robertson::default_params());
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl.copy_from_slice(out);
        0.5 * ip(out, out)
    };
    for theta in [1.0, 0.5] {
        let mut m = Robertson::new();
        let mut a = solver(theta, &m, &grid, &outputs, Checkpointing::StoreAll);
        let (_, ga) = a.value_and_grad(&mut m, &u0, &p, loss).unwrap();
        let tableau = DirkTableau::theta(theta).unwrap();
        let mut b = dirk_solver(&tableau, &m, &grid, &outputs, Checkpointing::StoreAll);
        let (_, gb) = b.value_and_grad(&mut m, &u0, &p, loss).unwrap();
        assert!(
            rel_max(&gb.dp, &ga.dp) <= 1e-9,
            "θ={theta}: {:e}",
            rel_max(&gb.dp, &ga.dp)
        );
        assert!(rel_max(&gb.du0, &ga.du0) <= 1e-9);
    }
}

#[test]
fn dirk_schedules_give_the_same_bits() {
    let (grid, outputs) = robertson_grid();
    let (u0, p) = ([1.0, 0.0, 0.0], Robertson::default_params());
    for tableau in DirkTableau::all() {
        let run = |mode: Checkpointing| {
            let mut m = Robertson::new();
            let mut s = dirk_solver(&tableau, &m, &grid, &outputs, mode);
            s.value_and_grad(&mut m, &u0, &p, |out, dl| {
                dl.copy_from_slice(out);
                0.5 * ip(out, out)
            })
            .unwrap()
            .1
        };
        let reference = run(Checkpointing::StoreAll);
        for mode in [
            Checkpointing::SolutionOnly,
            Checkpointing::Revolve { slots: 3 },
            Checkpointing::Budget(Budget::Vectors(12)),
        ] {
            assert!(
                same_bits(&reference, &run(mode.clone())),
                "{} {mode:?}",
                tableau.name()
            );
        }
    }
}

#[test]
fn gmres_stage_solves_match_dense_ones_and_finite_differences() {
    let (grid, outputs) = robertson_grid();
    let (u0, p) = ([1.0, 1e-8, 1e-8], Robertson::default_params());
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl.copy_from_slice(out);
        0.5 * ip(out, out)
    };
    // Jacobi preconditioner: the diagonal of I − γh f_u for Robertson (the same for the
    // transpose); it counts its calls so the test sees the hook used.
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let jacobi = Preconditioner(std::sync::Arc::new(
        move |a: pnode_runtime::implicit::PreconditionerArgs<'_>, r: &[f64], z: &mut [f64]| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (k1, k2, k3) = (a.p[0], a.p[1], a.p[2]);
            let diag = [
                1.0 + a.gamma_h * k1,
                1.0 + a.gamma_h * (k3 * a.y[2] + 2.0 * k2 * a.y[1]),
                1.0,
            ];
            for i in 0..3 {
                z[i] = r[i] / diag[i];
            }
        },
    ));
    for tableau in [DirkTableau::theta(0.5).unwrap(), DirkTableau::esdirk3()] {
        let mut results = Vec::new();
        for (config, pc) in [
            (TIGHT, None),
            (TIGHT_GMRES, None),
            (TIGHT_GMRES, Some(jacobi.clone())),
        ] {
            let mut m = Robertson::new();
            let mut stepper = DirkStepper::new(tableau.clone(), 3, 3, config).unwrap();
            if let Some(pc) = pc {
                stepper = stepper.with_preconditioner(pc);
            }
            let mut s =
                Solver::new(stepper, &m, grid.clone(), &outputs, Checkpointing::StoreAll).unwrap();
            let (_, g) = s.value_and_grad(&mut m, &u0, &p, loss).unwrap();
            results.push((g, s.stats()));
        }
        let (dense, gmres, jacobi_run) = (&results[0], &results[1], &results[2]);
        assert_eq!(dense.1.linear_iterations, 0);
        assert!(gmres.1.linear_iterations > 0);
        assert!(jacobi_run.1.linear_iterations > 0);
        assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 0);
        for other in [gmres, jacobi_run] {
            // GMRES stops at rtol 1e-10 on systems with condition numbers near 1e9; the
            // gradients still agree to about 1e-11.
            let e_p = rel_max(&other.0.dp, &dense.0.dp);
            let e_u = rel_max(&other.0.du0, &dense.0.du0);
            eprintln!(
                "{}: GMRES vs dense gradients: {e_p:.1e} {e_u:.1e}",
                tableau.name()
            );
            assert!(
                e_p <= 1e-9 && e_u <= 1e-9,
                "{}: {e_p:e} {e_u:e}",
                tableau.name()
            );
        }
    }
    // And against finite differences on the stiff Van der Pol, GMRES throughout.
    let vdp_grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    let make = |m: &VanDerPol| {
        let stepper = DirkStepper::new(DirkTableau::sdirk2(), 2, 1, TIGHT_GMRES).unwrap();
        Solver::new(
            stepper,
            m,
            vdp_grid.clone(),
            &[0.5, 1.0],
            Checkpointing::Revolve { slots: 5 },
        )
        .unwrap()
    };
    check_fd_with(
        "sdirk2 + GMRES",
        &make,
        &VanDerPol::new(),
        &[0.5, 1.0],
        &[2.0, 0.0],
        &[1000.0],
    );
}

/// `du/dt = A u` with `A` the 1-D Laplacian `c·tridiag(1, −2, 1)` of size `n` (row-major, as
/// [`LinearSystem`]'s parameters): stiff for large `c`, at rest at `u = 0`.
fn laplacian(n: usize, c: f64) -> Vec<f64> {
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = -2.0 * c;
        if i > 0 {
            a[i * n + i - 1] = c;
        }
        if i + 1 < n {
            a[i * n + i + 1] = c;
        }
    }
    a
}

#[test]
fn a_failed_transposed_gmres_solve_names_the_reverse_sweep_and_the_options() {
    // At rest (u0 = 0, f(0) = 0) every forward stage system has a zero right-hand side, which
    // GMRES solves in no iteration; the adjoint's transposed systems have λ ≠ 0, and GMRES(1)
    // with 3 iterations cannot solve them on a stiff Laplacian.
    let n = 20;
    let a = laplacian(n, 400.0);
    let starved = NewtonConfig {
        linear: LinearSolver::Gmres(GmresConfig {
            restart: 1,
            rtol: 1e-14,
            atol: 1e-300,
            max_iters: 3,
        }),
        ..TIGHT
    };
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    let targets = vec![1.0; n];
    let loss = |out: &[f64], dl: &mut [f64]| quadratic_loss(out, &targets, dl);
    let u0 = vec![0.0; n];
    let model = LinearSystem::new(n);

    let mut m = model;
    let stepper = ThetaStepper::backward_euler(n, n * n, starved).unwrap();
    let mut s = Solver::new(stepper, &m, grid.clone(), &[1.0], Checkpointing::StoreAll).unwrap();
    let err = s.value_and_grad(&mut m, &u0, &a, loss).unwrap_err();
    let Error::AdjointSolveFailed {
        step,
        t,
        stage,
        solver,
        iterations,
        residual,
        target,
        ..
    } = &err
    else {
        panic!("not an adjoint failure: {err}");
    };
    assert_eq!((*step, *stage, *solver, *iterations), (9, None, "GMRES", 3));
    assert_eq!(*t, 1.0);
    assert!(residual.is_finite() && residual > target, "{err}");
    let msg = err.to_string();
    for needle in [
        "transposed stage linear solve",
        "adjoint (reverse) sweep",
        "step 9 (stage at t = 1)",
        "GMRES reached its iteration cap after 3 Krylov iterations",
        "`krylov_tol`",
        "`krylov_restart`",
        "`linear_solver = dense`",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
    }
    assert!(
        !msg.contains("NaN") && !msg.contains("Newton failed"),
        "{msg}"
    );

    // A DIRK names the stage; dense LU on the same problem succeeds.
    let mut m = model;
    let stepper = DirkStepper::new(DirkTableau::sdirk2(), n, n * n, starved).unwrap();
    let mut s = Solver::new(stepper, &m, grid.clone(), &[1.0], Checkpointing::StoreAll).unwrap();
    let err = s.value_and_grad(&mut m, &u0, &a, loss).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AdjointSolveFailed {
                step: 9,
                stage: Some(1),
                iterations: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("step 9 (stage 1 at t = "), "{err}");
    let mut m = model;
    let stepper = ThetaStepper::backward_euler(n, n * n, TIGHT).unwrap();
    let mut s = Solver::new(stepper, &m, grid, &[1.0], Checkpointing::StoreAll).unwrap();
    assert!(s.value_and_grad(&mut m, &u0, &a, loss).is_ok());
}

#[test]
fn default_gmres_gradients_match_dense_lu_to_round_off() {
    // 80 states (above DENSE_LIMIT, so `LinearSolver::Auto` runs GMRES) of a stiff linear
    // diffusion (stage matrices with condition numbers near 300), ESDIRK3. The former default
    // tolerance 1e-12 left about 3e-12 relative error in dL/dA; the default now matches dense
    // LU to round-off.
    let n = 80;
    let a = laplacian(n, 6561.0);
    let u0: Vec<f64> = (0..n)
        .map(|i| 0.5 + 0.3 * (0.37 * i as f64).sin())
        .collect();
    let targets = vec![0.2; 2 * n];
    let grid = TimeGrid::uniform(0.0, 0.5, 20).unwrap();
    let gradient = |config: NewtonConfig| {
        let mut m = LinearSystem::new(n);
        let stepper = DirkStepper::new(DirkTableau::esdirk3(), n, n * n, config).unwrap();
        let mut s = Solver::new(
            stepper,
            &m,
            grid.clone(),
            &[0.1, 0.5],
            Checkpointing::StoreAll,
        )
        .unwrap();
        let (_, g) = s
            .value_and_grad(&mut m, &u0, &a, |out, dl| quadratic_loss(out, &targets, dl))
            .unwrap();
        (g, s.stats().linear_iterations)
    };
    let (dense, dense_its) = gradient(NewtonConfig {
        linear: LinearSolver::Dense,
        ..NewtonConfig::default()
    });
    let (auto, auto_its) = gradient(NewtonConfig::default());
    let (old, _) = gradient(NewtonConfig {
        linear: LinearSolver::Gmres(GmresConfig {
            rtol: 1e-12,
            ..GmresConfig::default()
        }),
        ..NewtonConfig::default()
    });
    assert_eq!(dense_its, 0);
    assert!(auto_its > 0, "the default ran GMRES");
    let e_auto = rel_max(&auto.dp, &dense.dp);
    let e_old = rel_max(&old.dp, &dense.dp);
    eprintln!(
        "80-state ESDIRK3, dL/dA against dense LU: default {e_auto:.1e}, rtol 1e-12 {e_old:.1e}"
    );
    assert!(e_auto <= 1e-13, "default GMRES vs dense: {e_auto:e}");
}
