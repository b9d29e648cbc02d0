//! Adaptive stepping with the fused trial step (`JitErkStepper::with_error_estimate`): the same
//! accepted grid and bitwise the same gradient as the runtime's `EmbeddedErk` over the same
//! `JitModel` (whose fixed steps the fused ones equal bitwise, see `gradients`), and bitwise the
//! gradient of the fixed-grid `Solver` with the fused stepper on the accepted grid; one trial
//! step's error estimate bitwise `EmbeddedErk`'s.

use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, EmbeddedErk, EmbeddedStepper,
};
use pnode_runtime::stepper::StepAt;
use pnode_runtime::{Checkpointing, Error as RtError, Solver, Stats, Tableau};
use pnode_testkit::prelude::*;

/// `L = ½ Σ_k ‖u(t_k)‖²`.
fn loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.copy_from_slice(out);
    0.5 * out.iter().map(|x| x * x).sum::<f64>()
}

fn pairs() -> Vec<Tableau> {
    vec![
        Tableau::dopri5(),
        Tableau::bosh3(),
        Tableau::tsit5(),
        Tableau::fehlberg45(),
    ]
}

/// One adaptive run of `m` over `[0, t1]` with outputs at `t1/2` and `t1`, fused against
/// `EmbeddedErk` (both over the `JitModel`), then the fused stepper on the fixed accepted grid.
fn check(m: &Model, tableau: Tableau, t1: f64, rtol: f64, mode: AdaptiveCheckpointing) {
    let what = format!("{} {} {mode:?}", m.name, tableau.name());
    let mut jit = JitModel::new(&m.f).unwrap();
    let (n, np) = (m.u.len(), m.p.len());
    let outs = [0.5 * t1, t1];
    let options = AdaptiveOptions::with_tolerances(rtol, rtol * 1e-2);
    let fused = JitErkStepper::with_error_estimate(tableau.clone(), &m.f).unwrap();
    assert!(fused.has_error_estimate());
    let mut a = AdaptiveSolver::new(fused, &jit, 0.0, &outs, options.clone(), mode).unwrap();
    let (la, ga) = a.value_and_grad(&mut jit, &m.u, &m.p, loss).unwrap();
    let runtime = EmbeddedErk::new(tableau.clone(), n, np).unwrap();
    let mut b = AdaptiveSolver::new(runtime, &jit, 0.0, &outs, options, mode).unwrap();
    let (lb, gb) = b.value_and_grad(&mut jit, &m.u, &m.p, loss).unwrap();
    assert!(
        same_bits(a.accepted_times(), b.accepted_times()),
        "accepted grids differ: {what}"
    );
    assert_eq!(la.to_bits(), lb.to_bits(), "loss {what}");
    assert!(
        same_bits(&ga.du0, &gb.du0) && same_bits(&ga.dp, &gb.dp),
        "gradient vs EmbeddedErk not bitwise: {what}"
    );
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        (sa.accepted_steps, sa.rejected_steps),
        (sb.accepted_steps, sb.rejected_steps),
        "{what}"
    );
    assert!(
        sa.rejected_steps > 0 || sa.accepted_steps > 4,
        "{what}: {sa:?}"
    );
    // The fused stepper evaluates its own first stage instead of the model's `f(t_0, u_0)`
    // offered by the initial-step algorithm: one RHS evaluation more, all else equal.
    assert_eq!(sa.sweep.rhs_evals, sb.sweep.rhs_evals + 1, "{what}");
    assert_eq!(sa.sweep.vjp_evals, sb.sweep.vjp_evals, "{what}");
    // The fixed-grid solver with the fused step on the accepted grid: the same gradient.
    let fixed = JitErkStepper::new(tableau.clone(), &m.f).unwrap();
    let grid = a.grid().unwrap();
    let mut f = Solver::new(fixed, &jit, grid, &outs, Checkpointing::StoreAll).unwrap();
    let (lf, gf) = f.value_and_grad(&mut jit, &m.u, &m.p, loss).unwrap();
    assert_eq!(la.to_bits(), lf.to_bits(), "loss vs fixed grid {what}");
    assert!(
        same_bits(&ga.du0, &gf.du0) && same_bits(&ga.dp, &gf.dp),
        "gradient vs fixed grid not bitwise: {what}"
    );
    eprintln!(
        "{what}: {} accepted, {} rejected, bitwise",
        sa.accepted_steps, sa.rejected_steps
    );
}

#[test]
fn every_pair_on_van_der_pol_equals_embedded_erk() {
    for t in pairs() {
        check(
            &van_der_pol(),
            t,
            2.0,
            1e-6,
            AdaptiveCheckpointing::StoreAll,
        );
    }
    check(
        &lotka_volterra(),
        Tableau::dopri5(),
        3.0,
        1e-5,
        AdaptiveCheckpointing::Online { slots: 3 },
    );
}

#[test]
fn a_wide_state_in_scratch_equals_embedded_erk() {
    // 128 states: the trial kernel keeps its vectors in scratch, with loops.
    check(
        &mlp_wide(),
        Tableau::dopri5(),
        0.5,
        1e-10,
        AdaptiveCheckpointing::SolutionOnly,
    );
    check(
        &mlp_wide(),
        Tableau::fehlberg45(),
        0.5,
        1e-10,
        AdaptiveCheckpointing::StoreAll,
    );
}

/// What one trial step wrote: `(u_next, stages, err, stats)`.
type Trial = (Vec<f64>, Vec<f64>, Vec<f64>, Stats);

/// One trial step from `(t, u)` of `s`, twice.
fn trial<S: EmbeddedStepper<JitModel>>(
    s: &mut S,
    model: &mut JitModel,
    at: StepAt,
    m: &Model,
) -> Vec<Trial> {
    let n = m.u.len();
    let sv = s.stage_vectors();
    (0..2)
        .map(|_| {
            let (mut next, mut st, mut err) = (vec![0.0; n], vec![0.0; sv * n], vec![0.0; n]);
            let mut stats = Stats::default();
            s.try_step(
                model, at, &m.p, &m.u, &mut next, &mut st, &mut err, &mut stats,
            )
            .unwrap();
            (next, st, err, stats)
        })
        .collect()
}

#[test]
fn trial_step_and_error_estimate_equal_embedded_erk() {
    let at = StepAt {
        index: 0,
        t: 0.25,
        h: 0.1,
    };
    for m in [van_der_pol(), mlp_tanh(), mlp_wide()] {
        let mut jit = JitModel::new(&m.f).unwrap();
        for t in pairs() {
            let what = format!("{} {}", m.name, t.name());
            let (n, np) = (m.u.len(), m.p.len());
            let mut fused = JitErkStepper::with_error_estimate(t.clone(), &m.f).unwrap();
            let mut runtime = EmbeddedErk::new(t.clone(), n, np).unwrap();
            let a = trial(&mut fused, &mut jit, at, &m);
            let b = trial(&mut runtime, &mut jit, at, &m);
            // The second attempt from the same point reuses K_1: the same bits, one RHS less.
            for ((xa, sa, ea, ca), (xb, sb, eb, cb)) in a.iter().zip(&b) {
                assert!(same_bits(xa, xb) && same_bits(sa, sb), "{what}");
                assert!(same_bits(ea, eb), "err {what}: {:e}", rel_max(ea, eb));
                assert_eq!(ca, cb, "{what}");
                assert!(max_abs(ea) > 0.0, "{what}");
            }
            assert_eq!(a[1].3.rhs_evals + 1, a[0].3.rhs_evals, "{what}");
            // And u_{n+1} and the stages are the fused fixed step's.
            let mut next = vec![0.0; n];
            let mut st = vec![0.0; a[0].1.len()];
            let mut stats = Stats::default();
            pnode_runtime::stepper::ForwardStepper::step(
                &mut fused,
                &mut jit,
                at,
                &m.p,
                &m.u,
                &mut next,
                Some(&mut st),
                &mut stats,
            )
            .unwrap();
            assert!(
                same_bits(&next, &a[0].0) && same_bits(&st, &a[0].1),
                "{what}"
            );
        }
    }
}

#[test]
fn a_tableau_without_a_pair_is_a_clear_error() {
    let m = van_der_pol();
    let e = JitErkStepper::with_error_estimate(Tableau::rk4(), &m.f).unwrap_err();
    assert!(
        matches!(&e, pnode_jit::Error::NoErrorEstimate { method } if method == "rk4"),
        "{e}"
    );
    // A stepper compiled without the trial kernels refuses a trial step.
    let mut jit = JitModel::new(&m.f).unwrap();
    let plain = JitErkStepper::new(Tableau::dopri5(), &m.f).unwrap();
    assert!(!plain.has_error_estimate());
    let opts = AdaptiveOptions::default();
    let mode = AdaptiveCheckpointing::StoreAll;
    let mut s = AdaptiveSolver::new(plain, &jit, 0.0, &[1.0], opts, mode).unwrap();
    let e = s.solve(&mut jit, &m.u, &m.p).unwrap_err();
    assert!(matches!(e, RtError::NoErrorEstimate { .. }), "{e}");
    assert!(e.to_string().contains("with_error_estimate"), "{e}");
}
