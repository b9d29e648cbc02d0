//! The generated fused RK4 and Dopri5 steppers against the runtime's `ErkStepper`: the
//! coefficients, one forward step (with and without kept stages), stage recomputation and one
//! adjoint step, ≤ 1e-12 relative (in practice bitwise); and whole gradients, schedules and
//! statistics through `Solver` with the generated stepper. The generated pairs (Dopri5,
//! Fehlberg45) against the runtime's `EmbeddedErk`: trial steps and error estimates, and whole
//! adaptive runs through `AdaptiveSolver` (the same accepted grid, statistics and gradient).

use pnode_codegen::testmodels::{self, rand_vec};
use pnode_emitted_tests::generated::{self, Dopri5, Fehlberg45, Rk4};
use pnode_runtime::adaptive::{
    AdaptiveCheckpointing, AdaptiveOptions, AdaptiveSolver, EmbeddedErk, EmbeddedStepper,
};
use pnode_runtime::model::{Rhs, RhsVjp};
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_runtime::{Checkpointing, ErkStepper, Solver, Stats, Tableau, TimeGrid};
use pnode_testkit::numeric::rel_err;

#[test]
fn coefficients_equal_the_runtime_tableaux() {
    for (t, c) in [
        (Tableau::rk4(), testmodels::rk4()),
        (Tableau::dopri5(), testmodels::dopri5()),
    ] {
        let s = t.stages();
        assert_eq!(c.b, t.b(), "{}", t.name());
        assert_eq!(c.c, t.c(), "{}", t.name());
        for i in 0..s {
            for j in 0..i {
                assert_eq!(
                    c.a[i][j].to_bits(),
                    t.a(i, j).to_bits(),
                    "{} a({i},{j})",
                    t.name()
                );
            }
        }
    }
    let live = Tableau::dopri5().live_coefficients();
    assert_eq!(Dopri5::LIVE_STAGES, live.s);
    assert_eq!(
        [Dopri5::B1, Dopri5::B3, Dopri5::B6],
        [live.b[0], live.b[2], live.b[5]]
    );
    assert_eq!(Dopri5::A65, live.a[5 * live.s + 4]);
    assert_eq!(Rk4::LIVE_STAGES, 4);
}

/// One step forward (stages kept and not), recomputation and reverse of `gen_st` against the
/// runtime's stepper on `model`; returns the worst relative error and whether all bits agree.
fn one_step<S, M>(
    mut gen_st: S,
    tableau: Tableau,
    mut model: M,
    u: &[f64],
    p: &[f64],
) -> (f64, bool)
where
    S: AdjointStepper<M>,
    M: RhsVjp,
{
    let (n, np) = (model.state_len(), model.param_len());
    let mut rt = ErkStepper::new(tableau, n, np);
    assert_eq!(
        ForwardStepper::<M>::cost(&gen_st),
        ForwardStepper::<M>::cost(&rt)
    );
    let sv = ForwardStepper::<M>::stage_vectors(&rt);
    assert_eq!(ForwardStepper::<M>::stage_vectors(&gen_st), sv);
    let at = StepAt {
        index: 3,
        t: 0.3,
        h: 0.05,
    };
    let (mut sa, mut sb) = (Stats::default(), Stats::default());
    let (mut ua, mut ub) = (vec![0.0; n], vec![0.0; n]);
    let (mut sta, mut stb) = (vec![0.0; sv * n], vec![0.0; sv * n]);
    let mut pairs: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    gen_st
        .step(&mut model, at, p, u, &mut ua, Some(&mut sta), &mut sa)
        .unwrap();
    rt.step(&mut model, at, p, u, &mut ub, Some(&mut stb), &mut sb)
        .unwrap();
    pairs.push((ua.clone(), ub.clone()));
    pairs.push((sta.clone(), stb.clone()));
    gen_st
        .step(&mut model, at, p, u, &mut ua, None, &mut sa)
        .unwrap();
    rt.step(&mut model, at, p, u, &mut ub, None, &mut sb)
        .unwrap();
    pairs.push((ua.clone(), ub.clone()));
    let (mut ra, mut rb) = (vec![0.0; sv * n], vec![0.0; sv * n]);
    gen_st
        .recompute_stages(&mut model, at, p, u, &mut ra, &mut sa)
        .unwrap();
    rt.recompute_stages(&mut model, at, p, u, &mut rb, &mut sb)
        .unwrap();
    pairs.push((ra.clone(), rb));
    // Recomputed stages equal kept ones bitwise (the checkpointing invariant).
    assert!(ra.iter().zip(&sta).all(|(a, b)| a.to_bits() == b.to_bits()));
    let lambda0 = rand_vec(7, n);
    let mu0 = rand_vec(8, np);
    let (mut la, mut lb) = (lambda0.clone(), lambda0);
    let (mut ma, mut mb) = (mu0.clone(), mu0);
    gen_st
        .reverse(&mut model, at, p, &sta, &mut la, &mut ma, &mut sa)
        .unwrap();
    rt.reverse(&mut model, at, p, &stb, &mut lb, &mut mb, &mut sb)
        .unwrap();
    pairs.push((la, lb));
    pairs.push((ma, mb));
    assert_eq!(sa, sb, "statistics");
    let mut worst = 0.0f64;
    let mut bitwise = true;
    for (a, b) in &pairs {
        worst = worst.max(rel_err(a, b));
        bitwise &= a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    }
    (worst, bitwise)
}

#[test]
fn rk4_step_and_adjoint_equal_erk_stepper() {
    let m = testmodels::lotka_volterra();
    let lv = generated::LotkaVolterra::new();
    let (e, bits) = one_step(Rk4::new(2, 4), Tableau::rk4(), lv, &m.u, &m.p);
    eprintln!("rk4 / Lotka–Volterra: {e:.2e}, bitwise {bits}");
    assert!(e <= 1e-12 && bits, "{e:e}");
    let m = testmodels::mlp_tanh();
    let np = m.p.len();
    let (e, bits) = one_step(
        Rk4::new(8, np),
        Tableau::rk4(),
        generated::MlpTanh::new(),
        &m.u,
        &m.p,
    );
    eprintln!("rk4 / MLP: {e:.2e}, bitwise {bits}");
    assert!(e <= 1e-12 && bits, "{e:e}");
}

#[test]
fn dopri5_step_and_adjoint_equal_erk_stepper() {
    // Dopri5 has a zero weight (b_2 = 0) and a dead FSAL stage: both handled like the runtime.
    let m = testmodels::van_der_pol();
    let vdp = generated::VanDerPol::new();
    let (e, bits) = one_step(Dopri5::new(2, 1), Tableau::dopri5(), vdp, &m.u, &m.p);
    eprintln!("dopri5 / Van der Pol: {e:.2e}, bitwise {bits}");
    assert!(e <= 1e-12 && bits, "{e:e}");
    let m = testmodels::mlp_mixed();
    let np = m.p.len();
    let mlp = generated::MlpMixed::new();
    let (e, bits) = one_step(Dopri5::new(6, np), Tableau::dopri5(), mlp, &m.u, &m.p);
    eprintln!("dopri5 / GELU MLP: {e:.2e}, bitwise {bits}");
    assert!(e <= 1e-12 && bits, "{e:e}");
}

#[test]
fn solver_with_generated_stepper_equals_erk_stepper() {
    let grid = TimeGrid::uniform(0.0, 5.0, 100).unwrap();
    let outs = [2.0, 5.0];
    let u0 = [1.0, 1.0];
    let p = [1.5, 1.0, 3.0, 1.0];
    let loss = |y: &[f64], g: &mut [f64]| {
        g.copy_from_slice(y);
        0.5 * y.iter().map(|x| x * x).sum::<f64>()
    };
    for mode in [
        Checkpointing::StoreAll,
        Checkpointing::SolutionOnly,
        Checkpointing::Revolve { slots: 3 },
    ] {
        let mut model = generated::LotkaVolterra::new();
        let mut a =
            Solver::new(Dopri5::new(2, 4), &model, grid.clone(), &outs, mode.clone()).unwrap();
        let mut b =
            Solver::explicit(Tableau::dopri5(), &model, grid.clone(), &outs, mode.clone()).unwrap();
        let (la, ga) = a.value_and_grad(&mut model, &u0, &p, loss).unwrap();
        let (lb, gb) = b.value_and_grad(&mut model, &u0, &p, loss).unwrap();
        let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
        eprintln!("{mode:?}: gradient {e:.2e}");
        assert!((la - lb).abs() <= 1e-12 * lb.abs());
        assert!(e <= 1e-12, "{mode:?}: {e:e}");
        assert_eq!(a.stats(), b.stats(), "{mode:?}");
        assert_eq!(a.stats(), a.predicted_stats().unwrap(), "{mode:?}");
    }
}

#[test]
fn pair_coefficients_equal_the_runtime_tableaux() {
    for (t, c, w) in [
        (
            Tableau::dopri5(),
            testmodels::dopri5(),
            testmodels::dopri5_embedded(),
        ),
        (
            Tableau::fehlberg45(),
            testmodels::fehlberg45(),
            testmodels::fehlberg45_embedded(),
        ),
    ] {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&c.b), bits(t.b()), "{}", t.name());
        assert_eq!(bits(&c.c), bits(t.c()), "{}", t.name());
        for i in 0..t.stages() {
            for j in 0..i {
                assert_eq!(c.a[i][j].to_bits(), t.a(i, j).to_bits(), "{}", t.name());
            }
        }
        assert_eq!(
            bits(&w.b_hat),
            bits(t.b_embedded().unwrap()),
            "{}",
            t.name()
        );
        let q = t.order().min(t.embedded_order().unwrap());
        assert_eq!((w.error_order, w.fsal), (q, t.is_fsal()), "{}", t.name());
    }
    assert_eq!((Dopri5::ERROR_ORDER, Fehlberg45::ERROR_ORDER), (4, 4));
    // The stages only the estimate needs continue the live numbering: dopri5's FSAL stage 7
    // (b_7 − b̂_7 = −1/40), fehlberg45's stage 6 (0 − 2/55).
    assert_eq!(Dopri5::E7, -1.0 / 40.0);
    assert_eq!((Fehlberg45::E6, Fehlberg45::C6), (-2.0 / 55.0, 0.5));
}

/// What one trial step wrote: `u_next`, the stage values, the error estimate, the counts.
type Trial = (Vec<f64>, Vec<f64>, Vec<f64>, Stats);

/// One trial step of `s` at `at` from `u`.
fn attempt<S: EmbeddedStepper<M>, M: Rhs>(
    s: &mut S,
    model: &mut M,
    at: StepAt,
    p: &[f64],
    u: &[f64],
) -> Trial {
    let n = u.len();
    let sv = s.stage_vectors();
    let (mut next, mut st, mut err) = (vec![0.0; n], vec![0.0; sv * n], vec![0.0; n]);
    let mut stats = Stats::default();
    s.try_step(model, at, p, u, &mut next, &mut st, &mut err, &mut stats)
        .unwrap();
    (next, st, err, stats)
}

/// Two trial steps from one point of the generated pair `gen_st` and of `EmbeddedErk`: the
/// worst relative difference of `u_{n+1}`, stages and error estimate, and whether they are
/// equal (`==`: bitwise up to the sign of zeros); the statistics must match.
fn trial_steps<S, M>(
    mut gen_st: S,
    tableau: Tableau,
    mut model: M,
    u: &[f64],
    p: &[f64],
) -> (f64, bool)
where
    S: EmbeddedStepper<M>,
    M: Rhs,
{
    let (n, np) = (model.state_len(), model.param_len());
    let mut rt = EmbeddedErk::new(tableau, n, np).unwrap();
    assert_eq!(
        EmbeddedStepper::<M>::error_order(&gen_st),
        EmbeddedStepper::<M>::error_order(&rt)
    );
    let at = StepAt {
        index: 2,
        t: 0.3,
        h: 0.07,
    };
    let (mut worst, mut equal) = (0.0f64, true);
    let mut evals = Vec::new();
    for k in 0..2 {
        let a = attempt(&mut gen_st, &mut model, at, p, u);
        let b = attempt(&mut rt, &mut model, at, p, u);
        assert_eq!(a.3, b.3, "statistics, attempt {k}");
        evals.push(a.3.rhs_evals);
        for (x, y) in [(&a.0, &b.0), (&a.1, &b.1), (&a.2, &b.2)] {
            worst = worst.max(rel_err(x, y));
            equal &= x == y;
        }
        assert!(a.2.iter().any(|&e| e != 0.0));
    }
    // The retry from the same point reuses K_1: one RHS evaluation less.
    assert_eq!(evals[1] + 1, evals[0]);
    (worst, equal)
}

#[test]
fn trial_steps_and_error_estimates_equal_embedded_erk() {
    let m = testmodels::van_der_pol();
    let vdp = generated::VanDerPol::new();
    let (e, eq) = trial_steps(Dopri5::new(2, 1), Tableau::dopri5(), vdp, &m.u, &m.p);
    eprintln!("dopri5 / Van der Pol trial steps: {e:.2e}, equal {eq}");
    assert!(e <= 1e-12 && eq, "{e:e}");
    let m = testmodels::mlp_mixed();
    let np = m.p.len();
    let mlp = generated::MlpMixed::new();
    let (e, eq) = trial_steps(Dopri5::new(6, np), Tableau::dopri5(), mlp, &m.u, &m.p);
    eprintln!("dopri5 / GELU MLP trial steps: {e:.2e}, equal {eq}");
    assert!(e <= 1e-12 && eq, "{e:e}");
    let m = testmodels::mlp_tanh();
    let np = m.p.len();
    let mlp = generated::MlpTanh::new();
    let (e, eq) = trial_steps(
        Fehlberg45::new(8, np),
        Tableau::fehlberg45(),
        mlp,
        &m.u,
        &m.p,
    );
    eprintln!("fehlberg45 / MLP trial steps: {e:.2e}, equal {eq}");
    assert!(e <= 1e-12 && eq, "{e:e}");
}

/// An adaptive Lotka–Volterra run with the generated pair `gen_st` and with `EmbeddedErk`:
/// the same accepted grid, statistics, loss and gradient, which is also the fixed-grid
/// gradient of the generated stepper on that grid.
fn adaptive_run<S>(gen_st: S, fixed: S, tableau: Tableau, mode: AdaptiveCheckpointing)
where
    S: EmbeddedStepper<generated::LotkaVolterra> + AdjointStepper<generated::LotkaVolterra>,
{
    let outs = [2.0, 5.0];
    let (u0, p) = ([1.0, 1.0], [1.5, 1.0, 3.0, 1.0]);
    let loss = |y: &[f64], g: &mut [f64]| {
        g.copy_from_slice(y);
        0.5 * y.iter().map(|x| x * x).sum::<f64>()
    };
    let opts = AdaptiveOptions::with_tolerances(1e-6, 1e-8);
    let mut model = generated::LotkaVolterra::new();
    let mut a = AdaptiveSolver::new(gen_st, &model, 0.0, &outs, opts.clone(), mode).unwrap();
    let mut b = AdaptiveSolver::explicit(tableau.clone(), &model, 0.0, &outs, opts, mode).unwrap();
    let (la, ga) = a.value_and_grad(&mut model, &u0, &p, loss).unwrap();
    let (lb, gb) = b.value_and_grad(&mut model, &u0, &p, loss).unwrap();
    let what = format!("{} {mode:?}", tableau.name());
    assert_eq!(a.accepted_times(), b.accepted_times(), "{what}");
    assert_eq!(a.stats(), b.stats(), "{what}");
    assert!(a.stats().accepted_steps > 10, "{what}: {:?}", a.stats());
    assert_eq!(la, lb, "{what}");
    assert_eq!((&ga.du0, &ga.dp), (&gb.du0, &gb.dp), "{what}");
    let grid = a.grid().unwrap();
    let mut f = Solver::new(fixed, &model, grid, &outs, Checkpointing::StoreAll).unwrap();
    let (lf, gf) = f.value_and_grad(&mut model, &u0, &p, loss).unwrap();
    assert_eq!(la, lf, "{what}");
    assert_eq!((&ga.du0, &ga.dp), (&gf.du0, &gf.dp), "{what}");
    eprintln!(
        "{what}: {} accepted, {} rejected, equal to EmbeddedErk and the fixed grid",
        a.stats().accepted_steps,
        a.stats().rejected_steps
    );
}

#[test]
fn adaptive_solver_with_generated_pairs_equals_embedded_erk() {
    adaptive_run(
        Dopri5::new(2, 4),
        Dopri5::new(2, 4),
        Tableau::dopri5(),
        AdaptiveCheckpointing::StoreAll,
    );
    adaptive_run(
        Fehlberg45::new(2, 4),
        Fehlberg45::new(2, 4),
        Tableau::fehlberg45(),
        AdaptiveCheckpointing::Online { slots: 3 },
    );
}
