//! Per-step dot-product test: the reverse step is the exact transpose of the step's Jacobian,
//! ⟨J v, w⟩ = ⟨v, Jᵀ w⟩ to 1e-12, with J v from a tangent-linear Runge–Kutta step built on the
//! model's JVP (independent of the adjoint code).

use crate::common::pseudo_random;
use pnode_runtime::model::{RhsJvp, RhsVjp};
use pnode_runtime::problems::{LotkaVolterra, Mlp, VanDerPol};
use pnode_runtime::stepper::{AdjointStepper, ForwardStepper, StepAt};
use pnode_runtime::{ErkStepper, Stats, Tableau};
use pnode_testkit::numeric::ip;

/// Tangent-linear ERK step: δY_i = δu + h Σ_j a_ij δK_j, δK_i = f_u(Y_i) δY_i,
/// δu_{n+1} = δu + h Σ_i b_i δK_i (all stages, dead ones included: they get zero weight).
fn tangent_step<M: RhsJvp>(
    m: &mut M,
    tab: &Tableau,
    at: StepAt,
    p: &[f64],
    u: &[f64],
    du: &[f64],
) -> Vec<f64> {
    let (s, n) = (tab.stages(), u.len());
    let mut k = vec![vec![0.0; n]; s];
    let mut dk = vec![vec![0.0; n]; s];
    for i in 0..s {
        let mut y = u.to_vec();
        let mut dy = du.to_vec();
        for j in 0..i {
            for c in 0..n {
                y[c] += at.h * tab.a(i, j) * k[j][c];
                dy[c] += at.h * tab.a(i, j) * dk[j][c];
            }
        }
        let t_i = at.t + tab.c()[i] * at.h;
        m.rhs(t_i, &y, p, &mut k[i]);
        m.jvp(t_i, &y, p, &dy, &mut dk[i]);
    }
    (0..n)
        .map(|c| du[c] + at.h * (0..s).map(|i| tab.b()[i] * dk[i][c]).sum::<f64>())
        .collect()
}

fn check<M: RhsJvp + RhsVjp>(mut m: M, p: &[f64], u: &[f64], h: f64) {
    let n = u.len();
    let at = StepAt {
        index: 0,
        t: 0.3,
        h,
    };
    for tab in Tableau::all() {
        let mut stepper = ErkStepper::new(tab.clone(), n, p.len());
        let mut stats = Stats::default();
        let mut stages = vec![0.0; ForwardStepper::<M>::stage_vectors(&stepper) * n];
        let mut u_next = vec![0.0; n];
        stepper
            .step(&mut m, at, p, u, &mut u_next, Some(&mut stages), &mut stats)
            .unwrap();
        for seed in 0..3 {
            let v = pseudo_random(n, 100 + seed);
            let w = pseudo_random(n, 200 + seed);
            let jv = tangent_step(&mut m, &tab, at, p, u, &v);
            let mut jtw = w.clone();
            let mut mu = vec![0.0; p.len()];
            stepper
                .reverse(&mut m, at, p, &stages, &mut jtw, &mut mu, &mut stats)
                .unwrap();
            let (lhs, rhs) = (ip(&jv, &w), ip(&v, &jtw));
            let rel = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());
            assert!(
                rel <= 1e-12,
                "{}: ⟨Jv,w⟩ = {lhs}, ⟨v,Jᵀw⟩ = {rhs}, rel {rel:.2e}",
                tab.name()
            );
        }
    }
}

#[test]
fn reverse_step_is_the_transpose_of_the_step_jacobian() {
    check(
        LotkaVolterra::new(),
        &LotkaVolterra::default_params(),
        &[1.1, 0.7],
        0.1,
    );
    check(
        VanDerPol::new(),
        &VanDerPol::default_params(),
        &[2.0, -0.5],
        0.05,
    );
    let mlp = Mlp::new(&[2, 16, 16, 2], 4).unwrap();
    let p = mlp.init_params(3);
    check(mlp, &p, &pseudo_random(8, 5), 0.2);
}
