//! Adaptive stepping: tolerance proportionality, gradients bitwise equal to the fixed-grid
//! solver on the accepted grid (and to finite differences on that frozen grid), online
//! checkpointing over long runs, and the failures that name their cause.

mod common;

use common::{Setup, quadratic_loss, rel_err, same_bits};
use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver};
use pnode_runtime::model::ClosureModel;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::{Checkpointing, Error, Gradient, Tableau};

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

/// For every pair and every adaptive checkpointing mode, the gradient is bitwise the
/// fixed-grid solver's on the accepted grid (with the matching fixed-grid mode and with
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
