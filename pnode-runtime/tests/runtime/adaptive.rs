//! Adaptive stepping: tolerance proportionality, gradients bitwise equal to the fixed-grid
//! solver on the accepted grid (and to finite differences on that frozen grid), online
//! checkpointing over long runs, and the failures that name their cause.

use crate::common::{Setup, quadratic_loss, same_bits};
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, EmbeddedErk, Tolerance,
};
use pnode_runtime::checkpoint::StepCost;
use pnode_runtime::checkpoint::online::OnlinePlanner;
use pnode_runtime::model::ClosureModel;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::stepper::ForwardStepper;
use pnode_runtime::{Budget, Stats};
use pnode_runtime::{Checkpointing, Error, Gradient, Tableau};
use pnode_testkit::numeric::rel_max as rel_err;

const PAIRS: [fn() -> Tableau; 4] = [
    Tableau::bosh3,
    Tableau::dopri5,
    Tableau::tsit5,
    Tableau::fehlberg45,
];

const OUTPUTS: [f64; 3] = [1.0, 2.5, 4.0];
const TARGETS: [f64; 6] = [1.2, 0.8, 0.9, 1.1, 1.0, 1.0];

fn lv_solver(
    tableau: Tableau,
    options: AdaptiveOptions,
    mode: AdaptiveCheckpointing,
) -> AdaptiveSolver<pnode_runtime::adaptive::EmbeddedErk> {
    AdaptiveSolver::explicit(tableau, &LotkaVolterra, 0.0, &OUTPUTS, options, mode).unwrap()
}

fn lv_gradient(
    solver: &mut AdaptiveSolver<pnode_runtime::adaptive::EmbeddedErk>,
) -> (f64, Gradient) {
    solver
        .value_and_grad(
            &mut LotkaVolterra,
            &LotkaVolterra::default_u0(),
            &LotkaVolterra::default_params(),
            |out, dl| quadratic_loss(out, &TARGETS, dl),
        )
        .unwrap()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// For every pair and every adaptive checkpointing mode (the disk tier included), the gradient
/// is bitwise the fixed-grid solver's on the accepted grid (with the matching fixed-grid mode and with
/// store-all), and central differences on that frozen grid agree to 1e-7.
#[test]
fn gradient_is_the_fixed_grid_gradient_on_the_accepted_grid() {
    let modes = [
        (AdaptiveCheckpointing::StoreAll, Checkpointing::StoreAll),
        (
            AdaptiveCheckpointing::SolutionOnly,
            Checkpointing::SolutionOnly,
        ),
        (
            AdaptiveCheckpointing::Online { slots: 1 },
            Checkpointing::Online { slots: 1 },
        ),
        (
            AdaptiveCheckpointing::Online { slots: 3 },
            Checkpointing::Online { slots: 3 },
        ),
        (
            AdaptiveCheckpointing::TwoLevel {
                ram_slots: 1,
                disk_slots: 2,
            },
            Checkpointing::TwoLevel {
                ram_slots: 1,
                disk_slots: 2,
            },
        ),
    ];
    for pair in PAIRS {
        let name = pair().name().to_string();
        let options = AdaptiveOptions::with_tolerances(1e-5, 1e-7);
        let mut first: Option<(Vec<f64>, f64, Gradient)> = None;
        for (mode, fixed_mode) in &modes {
            let mut solver = lv_solver(pair(), options.clone(), *mode);
            let (loss, grad) = lv_gradient(&mut solver);
            let stats = solver.stats();
            let grid = solver.grid().unwrap();
            assert_eq!(stats.accepted_steps as usize, grid.n_steps());
            assert_eq!(
                stats.sweep.reversed_steps as usize,
                grid.n_steps(),
                "{name}"
            );
            // Steps land exactly on the output times.
            for (k, &i) in solver.output_indices().iter().enumerate() {
                assert_eq!(grid.t(i).to_bits(), OUTPUTS[k].to_bits(), "{name}");
            }
            let mut setup = Setup {
                model: LotkaVolterra,
                tableau: pair(),
                grid,
                output_times: OUTPUTS.to_vec(),
                u0: LotkaVolterra::default_u0(),
                p: LotkaVolterra::default_params(),
                targets: TARGETS.to_vec(),
            };
            for fixed in [fixed_mode.clone(), Checkpointing::StoreAll] {
                let (fixed_loss, fixed_grad) = setup.gradient(fixed.clone());
                assert_eq!(loss.to_bits(), fixed_loss.to_bits(), "{name} {mode:?}");
                assert!(
                    same_bits(&grad, &fixed_grad),
                    "{name} {mode:?} vs fixed {fixed:?}: {grad:?} vs {fixed_grad:?}"
                );
            }
            let fixed_out = setup
                .solver(Checkpointing::StoreAll)
                .solve(&mut LotkaVolterra, &setup.u0, &setup.p)
                .unwrap()
                .to_vec();
            assert_eq!(bits(solver.outputs()), bits(&fixed_out), "{name}");
            match &first {
                None => {
                    let fd = setup.fd_gradient(1e-6);
                    let e_u = rel_err(&grad.du0, &fd.du0);
                    let e_p = rel_err(&grad.dp, &fd.dp);
                    assert!(e_u <= 1e-7 && e_p <= 1e-7, "{name}: FD {e_u:e} {e_p:e}");
                    first = Some((solver.accepted_times().to_vec(), loss, grad));
                }
                Some((times, loss0, grad0)) => {
                    assert_eq!(bits(times), bits(solver.accepted_times()), "{name}");
                    assert_eq!(loss0.to_bits(), loss.to_bits());
                    assert!(same_bits(grad0, &grad), "{name} {mode:?}");
                }
            }
        }
    }
}

/// Least-squares slope of `ys` against `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

/// Lotka–Volterra on [0, 20] (about four periods, so the steps forced by the first step and
/// the end point are few even at rtol 1e-3): the error at t1 against a dopri5 run at rtol 1e-13 falls with the
/// tolerance, and the accepted steps grow like tol^(−1/(q+1)) within 30%, `q` the order of the
/// error estimate (the lower order of the pair: the controller keeps the estimate, which
/// behaves like h^(q+1), near the tolerance on every step).
#[test]
fn steps_and_errors_follow_the_tolerance() {
    let t1 = 20.0;
    let solver = |tableau, options| {
        AdaptiveSolver::explicit(
            tableau,
            &LotkaVolterra,
            0.0,
            &[t1],
            options,
            AdaptiveCheckpointing::StoreAll,
        )
        .unwrap()
    };
    let reference = {
        let mut options = AdaptiveOptions::with_tolerances(1e-13, 1e-13);
        options.max_steps = 1_000_000;
        let mut s = solver(Tableau::dopri5(), options);
        let u0 = LotkaVolterra::default_u0();
        let p = LotkaVolterra::default_params();
        s.solve(&mut LotkaVolterra, &u0, &p).unwrap().to_vec()
    };
    let u_ref = &reference[..];
    for pair in PAIRS {
        let tableau = pair();
        let q = tableau.order().min(tableau.embedded_order().unwrap());
        let (mut log_tol, mut log_steps, mut errors) = (vec![], vec![], vec![]);
        for k in 3..=9 {
            let tol = 10f64.powi(-k);
            let mut s = solver(pair(), AdaptiveOptions::with_tolerances(tol, tol));
            let out = s
                .solve(
                    &mut LotkaVolterra,
                    &LotkaVolterra::default_u0(),
                    &LotkaVolterra::default_params(),
                )
                .unwrap();
            let u = &out[..2];
            let err = ((u[0] - u_ref[0]).powi(2) + (u[1] - u_ref[1]).powi(2)).sqrt();
            log_tol.push(tol.ln());
            log_steps.push((s.stats().accepted_steps as f64).ln());
            errors.push(err);
        }
        let fitted = slope(&log_tol, &log_steps);
        let expected = -1.0 / f64::from(q + 1);
        assert!(
            (fitted / expected - 1.0).abs() <= 0.3,
            "{}: steps ~ tol^{fitted:.3}, expected tol^{expected:.3}",
            tableau.name()
        );
        let error_slope = slope(&log_tol, &errors.iter().map(|e| e.ln()).collect::<Vec<_>>());
        assert!(
            error_slope > 0.7,
            "{}: error ~ tol^{error_slope:.3}: {errors:?}",
            tableau.name()
        );
        assert!(
            errors[6] < 1e-3 * errors[0],
            "{}: {errors:?}",
            tableau.name()
        );
        println!(
            "{}: steps ~ tol^{fitted:.3} (expected {expected:.3}), error ~ tol^{error_slope:.3}",
            tableau.name()
        );
    }
}

/// `u' = −θ₀ u + θ₁ sin t`, `u(0) = 1`: a cheap scalar problem for long runs.
fn scalar_model() -> impl pnode_runtime::model::RhsVjp {
    ClosureModel::new(1, 2, |t, u: &[f64], p: &[f64], f: &mut [f64]| {
        f[0] = -p[0] * u[0] + p[1] * t.sin();
    })
    .with_vjp(
        |t, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]| {
            gu[0] = -p[0] * w[0];
            gp[0] = -u[0] * w[0];
            gp[1] = t.sin() * w[0];
        },
    )
}

/// An online budget of 8 slots holds over more than 10⁵ accepted steps (`h_max` forces the
/// count), the reverse sweep recomputes at most `N(d−1)/2` steps, and the gradient is bitwise
/// the solution-only one (which holds every solution).
#[test]
fn online_budget_holds_over_a_hundred_thousand_steps() {
    let mut options = AdaptiveOptions::with_tolerances(1e-6, 1e-9);
    options.h_max = Some(1e-3);
    options.max_steps = 200_000;
    let (u0, p) = ([1.0], [0.5, 1.0]);
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl[0] = out[0];
        0.5 * out[0] * out[0]
    };
    let mut grads = Vec::new();
    for mode in [
        AdaptiveCheckpointing::Online { slots: 8 },
        AdaptiveCheckpointing::SolutionOnly,
    ] {
        let mut model = scalar_model();
        let mut solver = AdaptiveSolver::explicit(
            Tableau::dopri5(),
            &model,
            0.0,
            &[100.0],
            options.clone(),
            mode,
        )
        .unwrap();
        let (_, grad) = solver.value_and_grad(&mut model, &u0, &p, loss).unwrap();
        let stats = solver.stats();
        let n = stats.accepted_steps;
        assert!(n >= 100_000, "{n} steps");
        assert_eq!(stats.sweep.reversed_steps, n);
        assert_eq!(stats.sweep.forward_steps, n);
        if let AdaptiveCheckpointing::Online { slots } = mode {
            assert!(stats.sweep.peak_slots <= slots as u64, "{stats:?}");
            assert!(stats.sweep.peak_stored_vectors <= slots as u64, "{stats:?}");
            assert_eq!(solver.checkpoint_bytes(), slots as u64 * 8);
            let d = solver.online_spacing().unwrap() as u64;
            assert!(d > 1, "spacing {d}");
            // The planner's own prediction for N steps: rejected trials change nothing.
            let predicted = OnlinePlanner::plan(n as usize, slots)
                .unwrap()
                .predict(&dopri5_cost(), 8)
                .unwrap();
            assert_eq!(stats.sweep.recomputed_steps, predicted.recomputed_steps);
            assert_eq!(stats.sweep.peak_slots, predicted.peak_slots);
            assert!(
                stats.sweep.recomputed_steps <= n * (d - 1) / 2,
                "{} recomputed steps, bound {}",
                stats.sweep.recomputed_steps,
                n * (d - 1) / 2
            );
            println!(
                "online(8): N = {n}, d = {d}, recomputed {} (bound {}), peak slots {}",
                stats.sweep.recomputed_steps,
                n * (d - 1) / 2,
                stats.sweep.peak_slots
            );
        } else {
            assert_eq!(stats.sweep.peak_slots, n - 1);
        }
        grads.push(grad);
    }
    assert!(same_bits(&grads[0], &grads[1]));
}

/// The stage reuse (FSAL and K₁ of retries) leaves dopri5 at six new RHS evaluations per
/// attempt plus two for the initial step, and rejected steps are counted apart.
#[test]
fn statistics_count_accepted_and_rejected_steps() {
    let mut solver = lv_solver(
        Tableau::dopri5(),
        AdaptiveOptions::with_tolerances(1e-8, 1e-8),
        AdaptiveCheckpointing::StoreAll,
    );
    let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
    solver.forward(&mut LotkaVolterra, &u0, &p).unwrap();
    let stats = solver.stats();
    let attempts = stats.accepted_steps + stats.rejected_steps;
    assert_eq!(stats.sweep.forward_steps, stats.accepted_steps);
    assert!(
        stats.sweep.rhs_evals <= 2 + 6 * attempts + attempts / 10,
        "{stats:?}"
    );
    assert!(stats.sweep.rhs_evals >= 2 + 6 * attempts, "{stats:?}");
    // Store-all holds the stages of every accepted step but the last (on the tape).
    assert_eq!(
        stats.sweep.peak_stored_vectors,
        (stats.accepted_steps - 1) * 6
    );
    // A user h0 far too large is rejected and shrunk; rejected steps hold no memory and are
    // never reversed.
    let mut options = AdaptiveOptions::with_tolerances(1e-8, 1e-8);
    options.h0 = Some(2.0);
    let mut solver = lv_solver(Tableau::dopri5(), options, AdaptiveCheckpointing::StoreAll);
    lv_gradient(&mut solver);
    let stats = solver.stats();
    assert!(stats.rejected_steps >= 1);
    assert_eq!(stats.sweep.reversed_steps, stats.accepted_steps);
    assert_eq!(stats.sweep.recomputed_steps, 0);
    assert_eq!(
        stats.sweep.peak_stored_vectors,
        (stats.accepted_steps - 1) * 6
    );
    // Per-component tolerances equal to the scalar ones choose the same grid; a looser one on
    // one component takes fewer steps.
    let times = |rtol: Tolerance| {
        let options = AdaptiveOptions {
            rtol,
            atol: Tolerance::Scalar(1e-8),
            ..AdaptiveOptions::default()
        };
        let mut s = lv_solver(Tableau::tsit5(), options, AdaptiveCheckpointing::StoreAll);
        s.solve(&mut LotkaVolterra, &u0, &p).unwrap();
        s.accepted_times().to_vec()
    };
    let scalar = times(Tolerance::Scalar(1e-7));
    assert_eq!(bits(&scalar), bits(&times(vec![1e-7, 1e-7].into())));
    assert!(times(vec![1e-7, 1e-3].into()).len() < scalar.len());
}

/// dopri5's cost per step (the same for every model).
fn dopri5_cost() -> StepCost {
    let stepper = EmbeddedErk::new(Tableau::dopri5(), 2, 4).unwrap();
    <EmbeddedErk as ForwardStepper<LotkaVolterra>>::cost(&stepper)
}

/// The statistics a schedule determines (the measured evaluation counts left out).
fn scheduled(stats: Stats) -> Stats {
    stats.with_measured(&Stats::default())
}

/// With a first step far too large (so several trials are rejected), every mode's ledger
/// counts exactly what its schedule predicts for the `N` accepted steps and what the
/// fixed-grid solver counts on the accepted grid: rejected steps cost no memory, no
/// recomputation and no reverse work.
#[test]
fn rejected_steps_cost_no_memory_and_no_reverse_work() {
    let mut options = AdaptiveOptions::with_tolerances(1e-6, 1e-8);
    options.h0 = Some(2.0);
    let modes = [
        AdaptiveCheckpointing::StoreAll,
        AdaptiveCheckpointing::SolutionOnly,
        AdaptiveCheckpointing::Online { slots: 3 },
        AdaptiveCheckpointing::TwoLevel {
            ram_slots: 1,
            disk_slots: 2,
        },
    ];
    let cost = dopri5_cost();
    for mode in modes {
        let mut solver = lv_solver(Tableau::dopri5(), options.clone(), mode);
        let (_, grad) = lv_gradient(&mut solver);
        let stats = solver.stats();
        let n = stats.accepted_steps;
        assert!(stats.rejected_steps >= 2, "{mode:?}: {stats:?}");
        assert_eq!(stats.sweep.forward_steps, n);
        assert_eq!(stats.sweep.reversed_steps, n);
        let predicted = solver.schedule().unwrap().predict(&cost, 16).unwrap();
        assert_eq!(solver.schedule().unwrap().n_steps() as u64, n);
        assert_eq!(scheduled(stats.sweep), scheduled(predicted), "{mode:?}");
        // The fixed-grid solver running the same schedule on the accepted grid.
        let mut setup = crate::common::lotka_volterra(Tableau::dopri5());
        setup.grid = solver.grid().unwrap();
        setup.output_times = OUTPUTS.to_vec();
        setup.targets = TARGETS.to_vec();
        let custom = Checkpointing::Custom(solver.schedule().unwrap().clone());
        let mut fixed = setup.solver(custom);
        let (_, fixed_grad) = fixed
            .value_and_grad(&mut LotkaVolterra, &setup.u0, &setup.p, |out, dl| {
                quadratic_loss(out, &TARGETS, dl)
            })
            .unwrap();
        assert!(same_bits(&grad, &fixed_grad), "{mode:?}");
        assert_eq!(scheduled(fixed.stats()), scheduled(stats.sweep), "{mode:?}");
        match mode {
            AdaptiveCheckpointing::StoreAll => {
                assert_eq!(stats.sweep.recomputed_steps, 0);
                assert_eq!(stats.sweep.stage_recomputations, 0);
                assert_eq!(stats.sweep.peak_slots, n - 1);
            }
            AdaptiveCheckpointing::SolutionOnly => {
                assert_eq!(stats.sweep.recomputed_steps, 0);
                assert_eq!(stats.sweep.stage_recomputations, n - 1);
                assert_eq!(stats.sweep.peak_stored_vectors, n - 1);
            }
            _ => {
                assert!(stats.sweep.peak_slots <= 3, "{stats:?}");
                assert!(stats.sweep.recomputed_steps > 0, "{stats:?}");
            }
        }
    }
}

/// A budget in slots, vectors or bytes becomes online checkpointing that holds it at every
/// step (the ledger's peaks are running maxima over the whole run) and allocates no more; a
/// budget holding no state vector is an error.
#[test]
fn a_memory_budget_holds_at_every_step() {
    let options = AdaptiveOptions::with_tolerances(1e-7, 1e-9);
    let vector_bytes = 16;
    for budget in [Budget::Slots(2), Budget::Vectors(3), Budget::Bytes(70)] {
        let mode =
            AdaptiveCheckpointing::from_checkpointing(&Checkpointing::Budget(budget), vector_bytes)
                .unwrap();
        let mut solver = lv_solver(Tableau::bosh3(), options.clone(), mode);
        lv_gradient(&mut solver);
        let sweep = solver.stats().sweep;
        assert!(solver.stats().accepted_steps > 20);
        match budget {
            Budget::Slots(c) => assert_eq!(sweep.peak_slots, c as u64, "{sweep:?}"),
            Budget::Vectors(v) => assert_eq!(sweep.peak_stored_vectors, v, "{sweep:?}"),
            // 70 bytes hold 4 vectors of 16 bytes.
            Budget::Bytes(b) => {
                assert!(sweep.peak_stored_bytes <= b, "{sweep:?}");
                assert_eq!(sweep.peak_stored_bytes, 64, "{sweep:?}");
            }
        }
        // The slots allocated hold no more than the budget either.
        assert_eq!(solver.checkpoint_bytes(), sweep.peak_stored_bytes);
    }
    for budget in [Budget::Slots(0), Budget::Vectors(0), Budget::Bytes(15)] {
        let err =
            AdaptiveCheckpointing::from_checkpointing(&Checkpointing::Budget(budget), vector_bytes)
                .unwrap_err();
        assert!(err.to_string().contains("1 state vector"), "{err}");
    }
}

/// Two-level online checkpointing: at most `ram_slots` checkpoints in RAM and `disk_slots`
/// files in the directory set for them, which exists from the forward sweep to the end of the
/// reverse one; the gradient is the store-all one bit for bit; a checkpoint file removed
/// between the sweeps is `Error::CheckpointIo`, not a gradient.
#[test]
fn two_level_keeps_checkpoints_on_disk() {
    let options = AdaptiveOptions::with_tolerances(1e-6, 1e-8);
    let (_, reference) = lv_gradient(&mut lv_solver(
        Tableau::dopri5(),
        options.clone(),
        AdaptiveCheckpointing::StoreAll,
    ));
    let mode = AdaptiveCheckpointing::TwoLevel {
        ram_slots: 2,
        disk_slots: 3,
    };
    let parent = tempfile::tempdir().unwrap();
    let mut solver = lv_solver(Tableau::dopri5(), options, mode);
    solver.set_checkpoint_dir(parent.path()).unwrap();
    let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
    let out = solver
        .forward(&mut LotkaVolterra, &u0, &p)
        .unwrap()
        .to_vec();
    let mut dl = vec![0.0; out.len()];
    quadratic_loss(&out, &TARGETS, &mut dl);
    let dir = solver.checkpoint_dir().unwrap().to_path_buf();
    assert!(dir.starts_with(parent.path()));
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!((1..=3).contains(&files), "{files} files");
    let grad = solver.backward(&mut LotkaVolterra, &dl).unwrap();
    assert!(same_bits(&grad, &reference));
    assert!(!dir.exists() && solver.checkpoint_dir().is_none());
    let sweep = solver.stats().sweep;
    assert!(sweep.peak_stored_vectors <= 2, "{sweep:?}");
    assert!((1..=3).contains(&sweep.peak_disk_vectors), "{sweep:?}");
    assert!(sweep.disk_writes >= 3 && sweep.disk_reads >= 1, "{sweep:?}");
    assert_eq!(sweep.peak_slots, 5, "{sweep:?}");
    assert_eq!(solver.checkpoint_bytes(), 2 * 16);
    // A vanished checkpoint file.
    solver.forward(&mut LotkaVolterra, &u0, &p).unwrap();
    let dir = solver.checkpoint_dir().unwrap().to_path_buf();
    for file in std::fs::read_dir(&dir).unwrap() {
        std::fs::remove_file(file.unwrap().path()).unwrap();
    }
    let err = solver.backward(&mut LotkaVolterra, &dl).unwrap_err();
    assert!(matches!(err, Error::CheckpointIo { .. }), "{err}");
    assert!(!dir.exists());
}

/// `u' = −θ u` for `u ≥ 0`, NaN below: a first step of h0 = 1 overshoots into NaN and is
/// retried; the run recovers, and the gradient is still the fixed-grid one.
#[test]
fn a_transient_nan_is_rejected_and_retried() {
    let model = || {
        ClosureModel::new(1, 1, |_t, u: &[f64], p: &[f64], f: &mut [f64]| {
            f[0] = if u[0] >= 0.0 { -p[0] * u[0] } else { f64::NAN };
        })
        .with_vjp(
            |_t, u: &[f64], p: &[f64], w: &[f64], gu: &mut [f64], gp: &mut [f64]| {
                gu[0] = -p[0] * w[0];
                gp[0] = -u[0] * w[0];
            },
        )
    };
    let mut options = AdaptiveOptions::with_tolerances(1e-8, 1e-10);
    options.h0 = Some(1.0);
    let mut m = model();
    let mut solver = AdaptiveSolver::explicit(
        Tableau::dopri5(),
        &m,
        0.0,
        &[1.0],
        options,
        AdaptiveCheckpointing::SolutionOnly,
    )
    .unwrap();
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl[0] = 1.0;
        out[0]
    };
    let (value, grad) = solver
        .value_and_grad(&mut m, &[1.0], &[10.0], loss)
        .unwrap();
    assert!(solver.stats().nonfinite_rejections >= 1);
    assert!((value - (-10.0f64).exp()).abs() < 1e-9, "{value}");
    let mut fixed = pnode_runtime::Solver::explicit(
        Tableau::dopri5(),
        &m,
        solver.grid().unwrap(),
        &[1.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let (_, fixed_grad) = fixed.value_and_grad(&mut m, &[1.0], &[10.0], loss).unwrap();
    assert!(same_bits(&grad, &fixed_grad));
}

/// A blow-up (`u' = u²`, `u(0) = 1`, singular at t = 1) stops at h_min, naming t, h and the
/// component.
#[test]
fn step_size_below_h_min_is_an_error_naming_where() {
    let mut m = ClosureModel::new(1, 0, |_t, u: &[f64], _p: &[f64], f: &mut [f64]| {
        f[0] = u[0] * u[0];
    });
    let mut options = AdaptiveOptions::with_tolerances(1e-6, 1e-6);
    options.h_min = 1e-6;
    let mut solver = AdaptiveSolver::explicit(
        Tableau::dopri5(),
        &m,
        0.0,
        &[2.0],
        options,
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap();
    let err = solver.solve(&mut m, &[1.0], &[]).unwrap_err();
    let Error::StepSizeTooSmall {
        t,
        h,
        h_min,
        component,
        weighted_error,
        ..
    } = err
    else {
        panic!("expected StepSizeTooSmall, got {err}");
    };
    assert!(t > 0.99 && t < 1.0, "t = {t}");
    assert!(h <= h_min && h_min == 1e-6, "h = {h}");
    assert_eq!(component, 0);
    assert!(weighted_error > 1.0);
    let msg = err.to_string();
    assert!(
        msg.contains("h_min = 1e-6") && msg.contains("component 0"),
        "{msg}"
    );
}

#[test]
fn max_steps_is_an_error_naming_where() {
    let mut options = AdaptiveOptions::with_tolerances(1e-8, 1e-8);
    options.max_steps = 7;
    let mut solver = lv_solver(Tableau::tsit5(), options, AdaptiveCheckpointing::StoreAll);
    let err = solver
        .solve(
            &mut LotkaVolterra,
            &LotkaVolterra::default_u0(),
            &LotkaVolterra::default_params(),
        )
        .unwrap_err();
    let Error::MaxStepsReached {
        max_steps,
        accepted,
        rejected,
        t,
        t1,
        h,
        component,
        ..
    } = err
    else {
        panic!("expected MaxStepsReached, got {err}");
    };
    assert_eq!((max_steps, accepted + rejected), (7, 7));
    assert!(t > 0.0 && t < t1 && t1 == 4.0 && h > 0.0);
    assert!(component < 2);
    assert!(err.to_string().contains("raise max_steps"), "{err}");
}

/// NaN for every t > 0.5: every step from t = 0.5 (an output time, landed on exactly) has a
/// stage past it, so the retries cannot help.
#[test]
fn a_persistent_nan_is_an_error_naming_step_time_and_component() {
    for pair in PAIRS {
        let mut m = ClosureModel::new(2, 0, |t, u: &[f64], _p: &[f64], f: &mut [f64]| {
            f[0] = -u[0];
            f[1] = if t > 0.5 { f64::NAN } else { u[0] };
        });
        let mut solver = AdaptiveSolver::explicit(
            pair(),
            &m,
            0.0,
            &[0.5, 1.0],
            AdaptiveOptions::default(),
            AdaptiveCheckpointing::Online { slots: 2 },
        )
        .unwrap();
        let err = solver.forward(&mut m, &[1.0, 0.0], &[]).unwrap_err();
        let Error::NonFiniteRhs {
            step,
            t,
            component,
            retries,
            ..
        } = err
        else {
            panic!("expected NonFiniteRhs, got {err}");
        };
        assert_eq!((t, component, retries), (0.5, 1, 10), "{err}");
        assert_eq!(step + 1, solver.accepted_times().len());
        assert!(err.to_string().contains("component 1"), "{err}");
    }
}

#[test]
fn bad_set_ups_are_typed_errors() {
    let lv = LotkaVolterra;
    let make = |tableau, t0, outputs: &[f64], options, mode| {
        AdaptiveSolver::explicit(tableau, &lv, t0, outputs, options, mode).map(|_| ())
    };
    let ok = AdaptiveOptions::default;
    let store = AdaptiveCheckpointing::StoreAll;
    assert!(matches!(
        make(Tableau::rk4(), 0.0, &[1.0], ok(), store),
        Err(Error::NoErrorEstimate { .. })
    ));
    assert!(matches!(
        make(Tableau::dopri5(), 1.0, &[0.5, 2.0], ok(), store),
        Err(Error::InvalidTimeGrid { .. })
    ));
    assert!(matches!(
        make(Tableau::dopri5(), 0.0, &[1.0, 1.0], ok(), store),
        Err(Error::InvalidTimeGrid { .. })
    ));
    let mut bad = ok();
    bad.rtol = vec![1e-6, f64::NAN].into();
    assert!(matches!(
        make(Tableau::dopri5(), 0.0, &[1.0], bad, store),
        Err(Error::InvalidAdaptiveOption {
            option: "rtol",
            component: Some(1),
            ..
        })
    ));
    let mut bad = ok();
    bad.h0 = Some(-1.0);
    assert!(make(Tableau::dopri5(), 0.0, &[1.0], bad, store).is_err());
    assert!(
        make(
            Tableau::dopri5(),
            0.0,
            &[1.0],
            ok(),
            AdaptiveCheckpointing::Online { slots: 0 }
        )
        .is_err()
    );
    let err = AdaptiveCheckpointing::from_checkpointing(&Checkpointing::Revolve { slots: 3 }, 16)
        .unwrap_err();
    assert!(matches!(err, Error::AdaptiveCheckpointing { .. }));
    assert!(err.to_string().contains("online(c)"), "{err}");
    assert_eq!(
        AdaptiveCheckpointing::from_checkpointing(
            &Checkpointing::Budget(pnode_runtime::Budget::Bytes(80)),
            16
        )
        .unwrap(),
        AdaptiveCheckpointing::Online { slots: 5 }
    );
    let mut solver = lv_solver(Tableau::dopri5(), ok(), store);
    assert!(matches!(
        solver.backward(&mut LotkaVolterra, &[0.0; 6]),
        Err(Error::Usage(_))
    ));
}

/// A time-dependent RHS (stage times matter bit for bit, FSAL reuse included): every pair's
/// gradient is still bitwise the fixed-grid one on the accepted grid.
#[test]
fn time_dependent_rhs_matches_the_fixed_grid_bitwise() {
    let outputs = [0.3, 2.0, 7.5];
    let loss = |out: &[f64], dl: &mut [f64]| {
        dl.copy_from_slice(out);
        0.5 * out.iter().map(|x| x * x).sum::<f64>()
    };
    for pair in PAIRS {
        let mut m = scalar_model();
        let mut solver = AdaptiveSolver::explicit(
            pair(),
            &m,
            0.1,
            &outputs,
            AdaptiveOptions::with_tolerances(1e-7, 1e-9),
            AdaptiveCheckpointing::Online { slots: 4 },
        )
        .unwrap();
        let (value, grad) = solver
            .value_and_grad(&mut m, &[1.0], &[0.3, 2.0], loss)
            .unwrap();
        let mut fixed = pnode_runtime::Solver::explicit(
            pair(),
            &m,
            solver.grid().unwrap(),
            &outputs,
            Checkpointing::StoreAll,
        )
        .unwrap();
        let (fixed_value, fixed_grad) = fixed
            .value_and_grad(&mut m, &[1.0], &[0.3, 2.0], loss)
            .unwrap();
        assert_eq!(value.to_bits(), fixed_value.to_bits(), "{}", pair().name());
        assert!(same_bits(&grad, &fixed_grad), "{}", pair().name());
    }
}

/// A model failure stops the run with the model's error, in the forward sweep.
#[test]
fn a_model_failure_stops_the_run() {
    struct Failing;
    impl pnode_runtime::Rhs for Failing {
        fn state_len(&self) -> usize {
            1
        }
        fn param_len(&self) -> usize {
            0
        }
        fn rhs(&mut self, _t: f64, u: &[f64], _p: &[f64], f: &mut [f64]) {
            f[0] = -u[0];
        }
        fn try_rhs(
            &mut self,
            t: f64,
            u: &[f64],
            p: &[f64],
            f: &mut [f64],
        ) -> Result<(), pnode_runtime::ModelError> {
            if t > 0.5 {
                return Err(pnode_runtime::ModelError::Other("past t = 0.5".into()));
            }
            self.rhs(t, u, p, f);
            Ok(())
        }
    }
    let mut solver = AdaptiveSolver::explicit(
        Tableau::bosh3(),
        &Failing,
        0.0,
        &[1.0],
        AdaptiveOptions::default(),
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap();
    let err = solver.solve(&mut Failing, &[1.0], &[]).unwrap_err();
    assert!(
        matches!(err, Error::Model { phase: pnode_runtime::Phase::Forward, t, .. } if t > 0.5),
        "{err}"
    );
}
