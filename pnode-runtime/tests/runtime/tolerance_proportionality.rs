//! Issue 16's tolerance-proportionality acceptance test on Van der Pol (μ = 10) and a small tanh
//! MLP, with dopri5 and bosh3 (Lotka–Volterra, with every explicit pair, is
//! `adaptive::steps_and_errors_follow_the_tolerance`).
//!
//! For `tol = rtol = atol = 10^-3 … 10^-9`:
//!
//! * the global error at `t1` against a reference solve (dopri5 at `rtol = atol = 1e-13`) falls
//!   with the tolerance (least-squares slope of `log err` against `log tol` ≥ 0.7, and at least
//!   three decades lost over the six decades of tolerance);
//! * the accepted steps grow like `tol^(−1/(q+1))` within 30 % (least-squares slope of
//!   `log N` against `log tol`), `q` the order of the error estimate, the lower order of the
//!   pair: the controller keeps the estimate `≈ C h^(q+1)` near the tolerance on every step
//!   (Hairer–Nørsett–Wanner I, §II.4), so `h ∝ tol^(1/(q+1))`.

use pnode_runtime::Tableau;
use pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver};
use pnode_runtime::model::Rhs;
use pnode_runtime::problems::{Mlp, VanDerPol};

/// Least-squares slope of `ys` against `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

/// `u(t1)` with the pair `tableau` at `rtol = atol = tol`, and the accepted steps.
fn solve<M: Rhs>(
    model: &mut M,
    tableau: Tableau,
    u0: &[f64],
    p: &[f64],
    t1: f64,
    tol: f64,
) -> (Vec<f64>, u64) {
    let mut options = AdaptiveOptions::with_tolerances(tol, tol);
    options.max_steps = 1_000_000;
    let mut s = AdaptiveSolver::explicit(
        tableau,
        model,
        0.0,
        &[t1],
        options,
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap();
    let u = s.solve(model, u0, p).unwrap().to_vec();
    (u, s.stats().accepted_steps)
}

/// Euclidean distance.
fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Sweeps the tolerances for `model` with dopri5 and bosh3 and asserts the two slopes.
fn assert_proportional<M: Rhs>(name: &str, model: &mut M, u0: &[f64], p: &[f64], t1: f64) {
    let (u_ref, _) = solve(model, Tableau::dopri5(), u0, p, t1, 1e-13);
    for pair in [Tableau::dopri5, Tableau::bosh3] {
        let tableau = pair();
        let q = tableau.order().min(tableau.embedded_order().unwrap());
        let (mut log_tol, mut log_steps, mut errors) = (vec![], vec![], vec![]);
        for k in 3..=9 {
            let tol = 10f64.powi(-k);
            let (u, steps) = solve(model, pair(), u0, p, t1, tol);
            log_tol.push(tol.ln());
            log_steps.push((steps as f64).ln());
            errors.push(distance(&u, &u_ref));
        }
        let fitted = slope(&log_tol, &log_steps);
        let expected = -1.0 / f64::from(q + 1);
        let error_slope = slope(&log_tol, &errors.iter().map(|e| e.ln()).collect::<Vec<_>>());
        let steps: Vec<u64> = log_steps.iter().map(|l| l.exp().round() as u64).collect();
        let errs: Vec<String> = errors.iter().map(|e| format!("{e:.1e}")).collect();
        println!(
            "{name} {}: steps ~ tol^{fitted:.3} (expected {expected:.3}), error ~ \
             tol^{error_slope:.3}; steps {steps:?}; errors {errs:?}",
            tableau.name()
        );
        assert!(
            (fitted / expected - 1.0).abs() <= 0.3,
            "{name} {}: steps ~ tol^{fitted:.3}, expected tol^{expected:.3}: {steps:?}",
            tableau.name()
        );
        assert!(
            error_slope >= 0.7,
            "{name} {}: error ~ tol^{error_slope:.3}: {errors:?}",
            tableau.name()
        );
        assert!(
            errors[6] < 1e-3 * errors[0],
            "{name} {}: {errors:?}",
            tableau.name()
        );
    }
}

/// Van der Pol at μ = 10 over one relaxation period (the slow branch, a fast jump and back).
#[test]
fn van_der_pol_steps_and_errors_follow_the_tolerance() {
    let (u0, p) = (VanDerPol::default_u0(), VanDerPol::relaxation_params());
    assert_proportional("Van der Pol μ = 10", &mut VanDerPol::new(), &u0, &p, 20.0);
}

/// A 2-16-2 tanh MLP (Glorot weights ×3 from seed 1) on a batch of 4 points.
#[test]
fn mlp_steps_and_errors_follow_the_tolerance() {
    let mut mlp = Mlp::new(&[2, 16, 2], 4).unwrap();
    let p: Vec<f64> = mlp.init_params(1).iter().map(|w| 3.0 * w).collect();
    let u0 = [1.0, 0.0, -0.5, 0.8, 0.3, -1.2, -0.9, -0.4];
    assert_proportional("MLP 2-16-2", &mut mlp, &u0, &p, 5.0);
}
