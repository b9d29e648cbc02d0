//! Lowered `.pode` models against the hand-written models of `pnode_runtime::problems`: the
//! RHS, JVP and VJP through `IrModel` agree to ≤ 1e-14 relative, so the lowering's state and
//! parameter layouts (an MLP's included) are the runtime's.

#![cfg(feature = "runtime")]

use pnode_ir::lower::compile_source;
use pnode_ir::runtime::IrModel;
use pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_runtime::problems::{LotkaVolterra, Mlp, Robertson, VanDerPol};
use pnode_testkit::prelude::*;

/// The worst relative error of rhs, JVP, `f_uᵀ w` and `f_θᵀ w` between the lowered `source`
/// and `hand` at random points.
fn against<H: RhsJvp + RhsVjp>(source: &str, hand: &mut H, scale: f64) -> f64 {
    let l = compile_source(source);
    let program = l.program.unwrap_or_else(|| panic!("{:?}", l.diagnostics));
    let mut ir = IrModel::new(&program.rhs).expect("model");
    assert_eq!(
        (ir.state_len(), ir.param_len()),
        (hand.state_len(), hand.param_len())
    );
    let (n, np) = (ir.state_len(), ir.param_len());
    let mut worst = 0.0f64;
    for k in 0..4u64 {
        let u: Vec<f64> = rand_vec(10 + k, n).iter().map(|x| 0.5 + 0.4 * x).collect();
        let p: Vec<f64> = rand_vec(20 + k, np).iter().map(|x| scale * x).collect();
        let (v, w) = (rand_vec(30 + k, n), rand_vec(40 + k, n));
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        ir.rhs(0.1, &u, &p, &mut a);
        hand.rhs(0.1, &u, &p, &mut b);
        worst = worst.max(rel_err(&a, &b));
        ir.jvp(0.1, &u, &p, &v, &mut a);
        hand.jvp(0.1, &u, &p, &v, &mut b);
        worst = worst.max(rel_err(&a, &b));
        let (mut ga, mut gb) = (vec![0.0; np], vec![0.0; np]);
        ir.vjp(0.1, &u, &p, &w, &mut a, &mut ga);
        hand.vjp(0.1, &u, &p, &w, &mut b, &mut gb);
        worst = worst.max(rel_err(&a, &b)).max(rel_err(&ga, &gb));
    }
    worst
}

#[track_caller]
fn check<H: RhsJvp + RhsVjp>(name: &str, source: &str, hand: &mut H, scale: f64) {
    let e = against(source, hand, scale);
    eprintln!("{name} vs hand-written: {e:.2e}");
    assert!(e <= 1e-14, "{name}: {e:e}");
}

#[test]
fn lotka_volterra() {
    let src = "model lv\nstate u[2] = [1.0, 1.0]\nparam p[4] = [1.5, 1.0, 3.0, 1.0]\n\
               d(u[0])/dt = p[0] * u[0] - p[1] * u[0] * u[1]\n\
               d(u[1])/dt = p[2] * u[0] * u[1] - p[3] * u[1]\n";
    check("lotka_volterra", src, &mut LotkaVolterra::new(), 1.0);
}

#[test]
fn robertson() {
    let src = "model rob\nstate y[3] = [1.0, 0.0, 0.0]\nparam k[3] = [0.04, 3e7, 1e4]\n\
               d(y[0])/dt = -k[0] * y[0] + k[2] * y[1] * y[2]\n\
               d(y[1])/dt = k[0] * y[0] - k[2] * y[1] * y[2] - k[1] * y[1] ^ 2\n\
               d(y[2])/dt = k[1] * y[1] ^ 2\n";
    check("robertson", src, &mut Robertson::new(), 1.0);
}

#[test]
fn van_der_pol() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/corpus/ok/van_der_pol.pode"
    ))
    .expect("corpus file");
    check("van_der_pol", &src, &mut VanDerPol::new(), 2.0);
}

#[test]
fn mlp_layout_is_the_runtime_mlp() {
    let src = "model mlp\nstate u[4, 2] = zeros\nlayer net = mlp([2, 16, 16, 2], activation = tanh)\n\
               d(u)/dt = net(u)\n";
    check(
        "mlp",
        src,
        &mut Mlp::new(&[2, 16, 16, 2], 4).expect("mlp"),
        0.5,
    );
}
