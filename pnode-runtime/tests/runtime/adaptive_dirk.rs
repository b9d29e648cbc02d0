//! Adaptive ESDIRK pairs (esdirk3's 3(2), kvaerno5's 5(4)): gradients bitwise the fixed-grid
//! DIRK solver's on the accepted grid, Robertson to `t = 1e5` with finite differences on the
//! frozen grid, convergence with the tolerance, and Newton failures that reject, retry and,
//! when they persist, name their cause.

use crate::common::same_bits;
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, EmbeddedDirk, Tolerance,
};
use pnode_runtime::implicit::LinearSolver;
use pnode_runtime::problems::{LinearSystem, Robertson};
use pnode_runtime::{Checkpointing, DirkTableau, Error, Gradient, NewtonConfig, Solver, TimeGrid};

const PAIRS: [fn() -> DirkTableau; 2] = [DirkTableau::esdirk3, DirkTableau::kvaerno5];

/// Newton tight enough that the stages are converged to round-off (finite differences see a
/// smooth map).
const NEWTON: NewtonConfig = NewtonConfig {
    atol: 1e-12,
    rtol: 1e-12,
    max_iters: 30,
    line_search: pnode_runtime::implicit::LineSearch::None,
    linear: LinearSolver::Dense,
};

/// `L = Σ_k Σ_i w_ki u_i(t_k)` with fixed weights (the weight of `y2` is large: it is ~1e-5).
fn robertson_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    let mut loss = 0.0;
    for (k, (u, d)) in out.chunks(3).zip(dl.chunks_mut(3)).enumerate() {
        let w = [1.0 + k as f64, 1e4 * (1.0 + 0.5 * k as f64), 0.5];
        for i in 0..3 {
            loss += w[i] * u[i];
            d[i] = w[i];
        }
    }
    loss
}

fn robertson_options(rtol: f64) -> AdaptiveOptions {
    AdaptiveOptions {
        rtol: Tolerance::Scalar(rtol),
        atol: Tolerance::PerComponent(vec![1e-10, 1e-14, 1e-10]),
        ..AdaptiveOptions::default()
    }
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The fixed-grid DIRK solver on `grid` with the pair's own stepper.
fn fixed(
    solver: &AdaptiveSolver<EmbeddedDirk>,
    grid: TimeGrid,
    outputs: &[f64],
    mode: Checkpointing,
) -> Solver<pnode_runtime::DirkStepper> {
    let stepper = solver.stepper().dirk().clone();
    Solver::new(stepper, &Robertson, grid, outputs, mode).unwrap()
}

/// For both pairs and the three adaptive modes, the loss, outputs and gradient are bitwise
/// the fixed-grid DIRK solver's on the accepted grid, and identical across the modes.
#[test]
fn dirk_gradient_is_the_fixed_grid_gradient_on_the_accepted_grid() {
    let outputs = [1e-3, 1.0, 30.0];
    let (u0, p) = (Robertson::default_u0(), Robertson::default_params());
    let modes = [
        (AdaptiveCheckpointing::StoreAll, Checkpointing::StoreAll),
        (
            AdaptiveCheckpointing::SolutionOnly,
            Checkpointing::SolutionOnly,
        ),
        (
            AdaptiveCheckpointing::Online { slots: 3 },
            Checkpointing::Online { slots: 3 },
        ),
    ];
    for pair in PAIRS {
        let name = pair().name().to_string();
        let mut first: Option<(Vec<f64>, Gradient)> = None;
        for (mode, fixed_mode) in &modes {
            let mut solver = AdaptiveSolver::dirk(
                pair(),
                NewtonConfig::default(),
                &Robertson,
                0.0,
                &outputs,
                robertson_options(1e-5),
                *mode,
            )
            .unwrap();
            let (loss, grad) = solver
                .value_and_grad(&mut Robertson, &u0, &p, robertson_loss)
                .unwrap();
            let stats = solver.stats();
            let grid = solver.grid().unwrap();
            assert_eq!(stats.accepted_steps as usize, grid.n_steps(), "{name}");
            assert_eq!(stats.sweep.reversed_steps as usize, grid.n_steps());
            let adaptive_out = solver.outputs().to_vec();
            for fm in [fixed_mode.clone(), Checkpointing::StoreAll] {
                let mut f = fixed(&solver, grid.clone(), &outputs, fm.clone());
                let (fixed_loss, fixed_grad) = f
                    .value_and_grad(&mut Robertson, &u0, &p, robertson_loss)
                    .unwrap();
                assert_eq!(bits(f.outputs()), bits(&adaptive_out), "{name} {mode:?}");
                assert_eq!(loss.to_bits(), fixed_loss.to_bits(), "{name} {mode:?}");
                assert!(
                    same_bits(&grad, &fixed_grad),
                    "{name} {mode:?} vs fixed {fm:?}: {grad:?} vs {fixed_grad:?}"
                );
            }
            match &first {
                None => first = Some((solver.accepted_times().to_vec(), grad)),
                Some((times, grad0)) => {
                    assert_eq!(bits(times), bits(solver.accepted_times()), "{name}");
                    assert!(same_bits(grad0, &grad), "{name} {mode:?}");
                }
            }
        }
    }
}

/// Robertson to `t = 1e5` at `rtol = 1e-6`: few steps (the stiff pairs take steps of order
/// `t` late in the run), mass conserved, and `dL/dk` equal to central differences of the
/// fixed-grid solve on the frozen accepted grid.
#[test]
fn robertson_to_1e5_with_rate_gradients() {
    let outputs = [1.0, 1e3, 1e5];
    let (u0, p) = (Robertson::default_u0(), Robertson::default_params());
    for pair in PAIRS {
        let name = pair().name().to_string();
        let mut solver = AdaptiveSolver::dirk(
            pair(),
            NEWTON,
            &Robertson,
            0.0,
            &outputs,
            robertson_options(1e-6),
            AdaptiveCheckpointing::Online { slots: 8 },
        )
        .unwrap();
        let (_, grad) = solver
            .value_and_grad(&mut Robertson, &u0, &p, robertson_loss)
            .unwrap();
        let stats = solver.stats();
        eprintln!(
            "{name}: {} accepted, {} rejected, {} newton rejections, {} Newton iterations",
            stats.accepted_steps,
            stats.rejected_steps,
            stats.newton_rejections,
            stats.sweep.newton_iterations
        );
        assert!(stats.accepted_steps < 1000, "{name}: {stats:?}");
        for k in 0..outputs.len() {
            let u = solver.output(k).unwrap();
            let mass = u.iter().sum::<f64>();
            assert!((mass - 1.0).abs() <= 1e-12, "{name}: mass {mass} at t{k}");
            assert!(u.iter().all(|&x| x >= -1e-12), "{name}: {u:?}");
        }
        // The classic values at t = 1e5 (Hairer & Wanner II, §IV.10): y1 ≈ 0.01786.
        let y1 = solver.output(2).unwrap()[0];
        assert!((y1 - 1.786e-2).abs() <= 2e-5, "{name}: y1(1e5) = {y1}");
        // Central differences in log k on the frozen grid: dL/dk_j · k_j.
        let grid = solver.grid().unwrap();
        let mut f = fixed(&solver, grid, &outputs, Checkpointing::StoreAll);
        let mut loss_at = |p: &[f64]| {
            let out = f.solve(&mut Robertson, &u0, p).unwrap().to_vec();
            robertson_loss(&out, &mut vec![0.0; out.len()])
        };
        // Measured (rel. error, esdirk3 / kvaerno5): ≤ 7e-9 / 7e-8 at eps = 1e-4, ≤ 1.4e-7 /
        // 4.7e-7 at 1e-5, ≤ 1e-6 / 2.9e-6 at 1e-6: the differences' noise (Newton stopping at
        // its tolerance, ~1e-12/eps), not the adjoint, sets the floor.
        let eps = 1e-4;
        for j in 0..3 {
            let (mut pp, mut pm) = (p.clone(), p.clone());
            pp[j] *= 1.0 + eps;
            pm[j] *= 1.0 - eps;
            let fd = (loss_at(&pp) - loss_at(&pm)) / (2.0 * eps);
            let adj = grad.dp[j] * p[j];
            let rel = (adj - fd).abs() / fd.abs();
            eprintln!("{name}: k{j}: adjoint {adj:e}, FD {fd:e}, rel {rel:e}");
            assert!(
                rel <= 1e-6,
                "{name}: dL/dlog k{j}: {adj:e} vs FD {fd:e} ({rel:e})"
            );
        }
    }
}

/// The global error of kvaerno5 (and esdirk3) at `t1` on the linear test problem falls with
/// the tolerance, roughly in proportion to it.
#[test]
fn dirk_error_falls_with_the_tolerance() {
    let a = LinearSystem::example_matrix();
    let u0 = LinearSystem::example_u0();
    let t1 = 5.0;
    let exact = LinearSystem::exact_solution(&a, t1, &u0).unwrap();
    for pair in PAIRS {
        let mut errors = Vec::new();
        for rtol in [1e-4, 1e-6, 1e-8] {
            let mut model = LinearSystem::new(3);
            let mut solver = AdaptiveSolver::dirk(
                pair(),
                NEWTON,
                &model,
                0.0,
                &[t1],
                AdaptiveOptions::with_tolerances(rtol, rtol),
                AdaptiveCheckpointing::StoreAll,
            )
            .unwrap();
            let out = solver.solve(&mut model, &u0, &a).unwrap();
            let err = out
                .iter()
                .zip(&exact)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            eprintln!(
                "{}: rtol {rtol:e}: error {err:e}, {} steps",
                pair().name(),
                solver.stats().accepted_steps
            );
            errors.push(err);
        }
        for w in errors.windows(2) {
            let ratio = w[0] / w[1];
            assert!(ratio >= 10.0, "{}: errors {errors:?}", pair().name());
        }
        assert!(errors[2] <= 1e-6, "{}: errors {errors:?}", pair().name());
    }
}

/// A stage solve that fails in a trial step rejects it and retries with a smaller step: with
/// at most four Newton iterations a first step of `h = 1` on Robertson fails (and a few large
/// later ones), the shrunk ones converge; the run recovers and its gradient is still bitwise the fixed-grid one. A failure
/// that persists (a Newton tolerance no update meets) stops the run with Newton's error naming
/// the step, the stage time, the last step size and the cause — no panic.
#[test]
fn newton_failures_are_retried_then_reported() {
    let (u0, p) = (Robertson::default_u0(), Robertson::default_params());
    let outputs = [10.0];
    let options = AdaptiveOptions {
        h0: Some(1.0),
        ..robertson_options(1e-5)
    };
    let newton = NewtonConfig {
        max_iters: 4,
        ..NEWTON
    };
    let mut solver = AdaptiveSolver::dirk(
        DirkTableau::kvaerno5(),
        newton,
        &Robertson,
        0.0,
        &outputs,
        options.clone(),
        AdaptiveCheckpointing::SolutionOnly,
    )
    .unwrap();
    let (_, grad) = solver
        .value_and_grad(&mut Robertson, &u0, &p, robertson_loss)
        .unwrap();
    let stats = solver.stats();
    eprintln!("recovering run: {stats:?}");
    assert!(stats.newton_rejections >= 1, "{stats:?}");
    assert!(stats.accepted_steps < 100, "{stats:?}");
    assert!(stats.rejected_steps >= stats.newton_rejections);
    let grid = solver.grid().unwrap();
    let mut f = fixed(&solver, grid, &outputs, Checkpointing::StoreAll);
    let (_, fixed_grad) = f
        .value_and_grad(&mut Robertson, &u0, &p, robertson_loss)
        .unwrap();
    assert!(same_bits(&grad, &fixed_grad));

    let hopeless = NewtonConfig {
        atol: 1e-300,
        rtol: 0.0,
        max_iters: 1,
        ..NEWTON
    };
    let mut solver = AdaptiveSolver::dirk(
        DirkTableau::esdirk3(),
        hopeless,
        &Robertson,
        0.0,
        &outputs,
        options,
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap();
    let err = solver.forward(&mut Robertson, &u0, &p).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NewtonFailed { step: 0, .. }), "{msg}");
    for part in [
        "step 0",
        "stage at t = ",
        "no convergence within the iteration limit",
        "after 10 retries with smaller steps (last h = 1.0",
    ] {
        assert!(msg.contains(part), "`{part}` missing: {msg}");
    }
    assert_eq!(solver.stats().newton_rejections, 11);
}
