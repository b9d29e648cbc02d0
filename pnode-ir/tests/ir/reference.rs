//! The interpreter, the JVP and the VJP of IR models against the hand-written models of
//! `pnode_runtime::problems` (≤ 1e-14 relative), and an `IrModel` inside the runtime's solver.

#![cfg(feature = "runtime")]

use pnode_ir::runtime::IrModel;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_runtime::problems::{LotkaVolterra, Mlp, Robertson, VanDerPol};
use pnode_testkit::prelude::*;

/// Compare `IrModel(m)` with a hand-written model at `m`'s point and at `extra` points; return
/// the worst relative error over rhs, jvp, gu and gp.
fn against<H: RhsJvp + RhsVjp>(m: &Model, hand: &mut H, points: &[Vec<f64>]) -> f64 {
    let mut ir = IrModel::new(&m.f).expect("model");
    assert_eq!(
        (ir.state_len(), ir.param_len()),
        (hand.state_len(), hand.param_len())
    );
    let (n, np) = (ir.state_len(), ir.param_len());
    let mut worst = 0.0f64;
    let mut all = vec![m.u.clone()];
    all.extend_from_slice(points);
    for (k, u) in all.iter().enumerate() {
        let v = rand_vec(100 + k as u64, n);
        let w = rand_vec(200 + k as u64, n);
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        ir.rhs(m.t, u, &m.p, &mut a);
        hand.rhs(m.t, u, &m.p, &mut b);
        worst = worst.max(rel_err(&a, &b));
        ir.jvp(m.t, u, &m.p, &v, &mut a);
        hand.jvp(m.t, u, &m.p, &v, &mut b);
        worst = worst.max(rel_err(&a, &b));
        let (mut gpa, mut gpb) = (vec![0.0; np], vec![0.0; np]);
        ir.vjp(m.t, u, &m.p, &w, &mut a, &mut gpa);
        hand.vjp(m.t, u, &m.p, &w, &mut b, &mut gpb);
        worst = worst.max(rel_err(&a, &b)).max(rel_err(&gpa, &gpb));
    }
    worst
}

#[test]
fn lotka_volterra_equals_hand_written() {
    let e = against(
        &lotka_volterra(),
        &mut LotkaVolterra::new(),
        &[vec![1.0, 1.0], vec![0.3, 2.5]],
    );
    eprintln!("lotka_volterra vs hand-written: {e:.2e}");
    assert!(e <= 1e-14, "{e:e}");
}

#[test]
fn robertson_equals_hand_written() {
    let e = against(
        &robertson(),
        &mut Robertson::new(),
        &[vec![1.0, 0.0, 0.0], vec![0.5, 1e-6, 0.5]],
    );
    eprintln!("robertson vs hand-written: {e:.2e}");
    assert!(e <= 1e-14, "{e:e}");
}

#[test]
fn van_der_pol_equals_hand_written() {
    let e = against(
        &van_der_pol(),
        &mut VanDerPol::new(),
        &[vec![2.0, 0.0], vec![-0.5, 1.5]],
    );
    eprintln!("van_der_pol vs hand-written: {e:.2e}");
    assert!(e <= 1e-14, "{e:e}");
}

#[test]
fn mlp_equals_hand_written() {
    // `problems::Mlp` uses its own vectorized tanh (a few ulps) and a blocked GEMM, so this
    // comparison is to round-off of those, not bitwise.
    let m = mlp_tanh();
    let mut hand = Mlp::new(&[2, 16, 16, 2], 4).unwrap();
    let e = against(&m, &mut hand, &[rand_vec(77, 8)]);
    eprintln!("mlp vs hand-written: {e:.2e}");
    assert!(e <= 1e-13, "{e:e}");
}

#[test]
fn robertson_constants_equal_parameters() {
    // The constant-rate model folds k1, k2, k3 into its nodes; it must agree with the
    // parametrized one.
    let (a, b) = (robertson_const(), robertson());
    let u = [0.8, 2e-5, 0.2];
    let fa = eval(&a.f, 0.0, &u, &[], &[]);
    let fb = eval(&b.f, 0.0, &u, &b.p, &[]);
    assert!(rel_err(&fa, &fb) <= 1e-15);
}

#[test]
fn ir_model_gradient_in_solver_equals_hand_written() {
    use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};

    let m = lotka_volterra();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut hand = LotkaVolterra::new();
    let p = LotkaVolterra::default_params();
    let u0 = LotkaVolterra::default_u0();
    let grid = TimeGrid::uniform(0.0, 5.0, 200).unwrap();
    let outs = [1.0, 2.5, 5.0];
    let loss = |y: &[f64], g: &mut [f64]| {
        let mut l = 0.0;
        for (i, (yi, gi)) in y.iter().zip(g.iter_mut()).enumerate() {
            let c = 1.0 + i as f64;
            l += 0.5 * c * yi * yi;
            *gi = c * yi;
        }
        l
    };
    let solver = || {
        Solver::explicit(
            Tableau::rk4(),
            &LotkaVolterra::new(),
            grid.clone(),
            &outs,
            Checkpointing::Revolve { slots: 4 },
        )
        .unwrap()
    };
    let (la, ga) = solver().value_and_grad(&mut ir, &u0, &p, loss).unwrap();
    let (lb, gb) = solver().value_and_grad(&mut hand, &u0, &p, loss).unwrap();
    let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
    eprintln!("solver gradient IrModel vs hand-written: {e:.2e} (loss {la} vs {lb})");
    assert!((la - lb).abs() <= 1e-12 * lb.abs());
    assert!(e <= 1e-12, "{e:e}");
}

#[test]
fn ir_model_in_crank_nicolson_equals_hand_written() {
    // Newton uses the IR JVP, the transposed stage solves the IR VJP. Rounding differs from the
    // hand-written formulas (other operation order), so agreement is to round-off amplified by
    // the Newton and linear solves, not bitwise.
    use pnode_runtime::implicit::{LineSearch, LinearSolver};
    use pnode_runtime::{Checkpointing, NewtonConfig, Solver, ThetaStepper, TimeGrid};
    let cfg = NewtonConfig {
        atol: 1e-14,
        rtol: 1e-13,
        max_iters: 50,
        line_search: LineSearch::None,
        linear: LinearSolver::Dense,
    };
    let mut times = vec![0.0];
    times.extend((0..=30).map(|k| 1e-6 * f64::powf(1e8, k as f64 / 30.0)));
    let grid = TimeGrid::from_times(&times).unwrap();
    let outs = [times[15], times[30]];
    let m = robertson();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut hand = Robertson::new();
    let p = Robertson::default_params();
    let u0 = [1.0, 0.0, 0.0];
    let solver = || {
        let st = ThetaStepper::crank_nicolson(3, 3, cfg).unwrap();
        Solver::new(
            st,
            &Robertson::new(),
            grid.clone(),
            &outs,
            Checkpointing::Revolve { slots: 3 },
        )
        .unwrap()
    };
    let loss = |y: &[f64], g: &mut [f64]| {
        g.copy_from_slice(&[1.0, 1e4, 1.0, 0.5, 2e4, 0.5]);
        y.iter().zip(g.iter()).map(|(a, b)| a * b).sum()
    };
    let (la, ga) = solver().value_and_grad(&mut ir, &u0, &p, loss).unwrap();
    let (lb, gb) = solver().value_and_grad(&mut hand, &u0, &p, loss).unwrap();
    let e = rel_err(&ga.du0, &gb.du0).max(rel_err(&ga.dp, &gb.dp));
    eprintln!("Crank–Nicolson gradient IrModel vs hand-written: {e:.2e}");
    assert!((la - lb).abs() <= 1e-12 * lb.abs());
    assert!(e <= 1e-12, "{e:e}");
}
