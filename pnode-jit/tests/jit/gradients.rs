//! Whole gradients through the runtime's schedule executor: `JitModel` (JIT RHS/VJP under the
//! runtime's `ErkStepper`, θ-method and DIRK) and the fused `JitErkStepper` against the
//! interpreter-backed `IrModel`, for several tableaux and checkpoint schedules; the fused
//! stepper is bitwise identical across schedules and counts what `ErkStepper` counts.

use pnode_ir::runtime::IrModel;
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::model::RhsVjp;
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{
    Budget, Checkpointing, Gradient, NewtonConfig, Solver, Stats, Tableau, ThetaStepper, TimeGrid,
};
use pnode_testkit::prelude::*;

/// `L = ½ Σ_k ‖u(t_k)‖²` (so `∂L/∂u(t_k) = u(t_k)`).
fn loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.copy_from_slice(out);
    0.5 * out.iter().map(|x| x * x).sum::<f64>()
}

fn run<S: AdjointStepper<M>, M: RhsVjp>(
    stepper: S,
    model: &mut M,
    m: &Model,
    grid: &TimeGrid,
    outputs: &[f64],
    mode: Checkpointing,
) -> (f64, Gradient, Stats) {
    let mut s = Solver::new(stepper, &*model, grid.clone(), outputs, mode).unwrap();
    let (l, g) = s.value_and_grad(model, &m.u, &m.p, loss).unwrap();
    (l, g, s.stats())
}

fn schedules() -> Vec<Checkpointing> {
    vec![
        Checkpointing::StoreAll,
        Checkpointing::SolutionOnly,
        Checkpointing::Revolve { slots: 3 },
        Checkpointing::Budget(Budget::Vectors(9)),
        Checkpointing::Online { slots: 2 },
    ]
}

fn grad_err(a: &Gradient, b: &Gradient) -> f64 {
    rel_max(&a.du0, &b.du0).max(rel_max(&a.dp, &b.dp))
}

/// One row: a model, a tableau, a grid. Interpreter-backed `ErkStepper` is the reference;
/// `JitModel` through `ErkStepper` and the fused `JitErkStepper` must agree to ≤ 1e-12 under
/// every schedule, the fused one bitwise across schedules and with the same statistics.
fn check(m: &Model, tableau: Tableau, n_steps: usize, t1: f64) -> f64 {
    let grid = TimeGrid::uniform(0.0, t1, n_steps).unwrap();
    let outputs = [grid.t(n_steps / 2), t1];
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut jit = JitModel::new(&m.f).unwrap();
    let (n, np) = (m.u.len(), m.p.len());
    let erk = || pnode_runtime::ErkStepper::new(tableau.clone(), n, np);
    let fused = JitErkStepper::new(tableau.clone(), &m.f).unwrap();
    let (l_ref, g_ref, stats_ref) =
        run(erk(), &mut ir, m, &grid, &outputs, Checkpointing::StoreAll);
    let mut worst = 0.0f64;
    let mut first: Option<Gradient> = None;
    for mode in schedules() {
        let (l1, g1, st1) = run(erk(), &mut jit, m, &grid, &outputs, mode.clone());
        let (l2, g2, st2) = run(fused.clone(), &mut jit, m, &grid, &outputs, mode.clone());
        // The executor's counts equal the schedule's cost model for the fused stepper too.
        let predicted = Solver::new(fused.clone(), &jit, grid.clone(), &outputs, mode.clone())
            .unwrap()
            .predicted_stats()
            .unwrap();
        assert_eq!(st2, predicted, "predicted statistics {} {mode:?}", m.name);
        let (e1, e2) = (grad_err(&g1, &g_ref), grad_err(&g2, &g_ref));
        worst = worst.max(e1).max(e2);
        let what = format!("{} {} {mode:?}", m.name, tableau.name());
        assert!(e1 <= 1e-12, "JitModel {what}: {e1:e}");
        assert!(e2 <= 1e-12, "JitErkStepper {what}: {e2:e}");
        assert!(((l1 - l_ref) / l_ref).abs() <= 1e-12, "{what}");
        assert!(((l2 - l_ref) / l_ref).abs() <= 1e-12, "{what}");
        assert_eq!(st1, st2, "statistics {what}");
        // The fused step does `ErkStepper`'s arithmetic on the same RHS/VJP code: same bits.
        assert!(
            same_bits(&g1.du0, &g2.du0) && same_bits(&g1.dp, &g2.dp),
            "fused vs ErkStepper over JitModel not bitwise: {what}"
        );
        if matches!(mode, Checkpointing::StoreAll) {
            assert_eq!(st2, stats_ref, "statistics {what}");
        }
        match &first {
            None => first = Some(g2),
            Some(g0) => assert!(
                same_bits(&g0.du0, &g2.du0) && same_bits(&g0.dp, &g2.dp),
                "not bitwise across schedules: {what}"
            ),
        }
    }
    eprintln!(
        "{:<16} {:<9} worst gradient error vs interpreter {worst:.1e}",
        m.name,
        tableau.name()
    );
    worst
}

fn tableaux() -> Vec<Tableau> {
    vec![
        Tableau::rk4(),
        Tableau::dopri5(),
        Tableau::midpoint(),
        Tableau::bosh3(),
    ]
}

#[test]
fn lotka_volterra_gradients() {
    for t in tableaux() {
        check(&lotka_volterra(), t, 40, 2.0);
    }
}

#[test]
fn van_der_pol_gradients() {
    for t in tableaux() {
        check(&van_der_pol(), t, 40, 1.0);
    }
}

#[test]
fn mlp_tanh_gradients() {
    for t in tableaux() {
        check(&mlp_tanh(), t, 20, 1.0);
    }
}

#[test]
fn spiral_gradients() {
    for t in [Tableau::rk4(), Tableau::dopri5()] {
        check(&spiral(), t, 30, 1.0);
    }
}

#[test]
fn mlp_mixed_and_structure_gradients() {
    for m in [mlp_mixed(), structure(), overlapping_reads()] {
        check(&m, Tableau::rk4(), 12, 0.5);
    }
    // Grows like exp(exp(u)): a short horizon.
    check(&broadcast_pow(), Tableau::rk4(), 6, 0.05);
    check(&mlp_mixed_large(), Tableau::bosh3(), 12, 0.5);
    check(&structure_large(), Tableau::bosh3(), 12, 0.1);
}

#[test]
fn wide_mlp_gradients() {
    // State of 128 values: the fused steps keep their vectors in scratch, with loops.
    for t in [Tableau::rk4(), Tableau::dopri5()] {
        check(&mlp_wide(), t, 8, 0.5);
    }
}

#[test]
fn every_explicit_tableau_on_lotka_volterra() {
    for t in Tableau::all() {
        check(&lotka_volterra(), t, 16, 1.0);
    }
}

fn robertson_grid() -> (TimeGrid, Vec<f64>) {
    // Log-spaced from 1e-6 (a coarse first step gives Crank–Nicolson several Newton roots).
    let n = 40;
    let mut times = vec![0.0];
    times.extend((0..=n).map(|k| 1e-6 * f64::powf(1e8, k as f64 / n as f64)));
    let grid = TimeGrid::from_times(&times).unwrap();
    let outputs = vec![times[10], times[20], times[30], times[40]];
    (grid, outputs)
}

const TIGHT: NewtonConfig = NewtonConfig {
    atol: 1e-14,
    rtol: 1e-13,
    max_iters: 50,
    line_search: pnode_runtime::implicit::LineSearch::None,
    linear: pnode_runtime::implicit::LinearSolver::Dense,
};

#[test]
fn crank_nicolson_on_robertson_with_jit_model() {
    let (grid, outputs) = robertson_grid();
    let mut m = robertson();
    m.u = vec![1.0, 0.0, 0.0];
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut jit = JitModel::new(&m.f).unwrap();
    let (n, np) = (3, 3);
    let reference = run(
        ThetaStepper::crank_nicolson(n, np, TIGHT).unwrap(),
        &mut ir,
        &m,
        &grid,
        &outputs,
        Checkpointing::StoreAll,
    );
    for mode in [Checkpointing::StoreAll, Checkpointing::Revolve { slots: 4 }] {
        let (l, g, st) = run(
            ThetaStepper::crank_nicolson(n, np, TIGHT).unwrap(),
            &mut jit,
            &m,
            &grid,
            &outputs,
            mode.clone(),
        );
        let e = grad_err(&g, &reference.1);
        eprintln!("robertson CN {mode:?}: gradient error vs interpreter {e:.1e}");
        assert!(e <= 1e-12, "{mode:?}: {e:e}");
        assert!(((l - reference.0) / reference.0).abs() <= 1e-12);
        if matches!(mode, Checkpointing::StoreAll) {
            assert_eq!(st.newton_iterations, reference.2.newton_iterations);
        }
    }
}

#[test]
fn esdirk3_on_van_der_pol_with_jit_model() {
    let grid = TimeGrid::uniform(0.0, 1.0, 30).unwrap();
    let m = van_der_pol();
    let mut ir = IrModel::new(&m.f).unwrap();
    let mut jit = JitModel::new(&m.f).unwrap();
    let dirk = || {
        pnode_runtime::DirkStepper::new(pnode_runtime::DirkTableau::esdirk3(), 2, 1, TIGHT).unwrap()
    };
    let (_, g_ref, _) = run(dirk(), &mut ir, &m, &grid, &[1.0], Checkpointing::StoreAll);
    let (_, g, _) = run(
        dirk(),
        &mut jit,
        &m,
        &grid,
        &[1.0],
        Checkpointing::SolutionOnly,
    );
    let e = grad_err(&g, &g_ref);
    assert!(e <= 1e-12, "{e:e}");
}

#[test]
fn fused_stepper_checks_the_model_sizes() {
    let m = lotka_volterra();
    let fused = JitErkStepper::new(Tableau::rk4(), &m.f).unwrap();
    assert_eq!(fused.live_stages(), 4);
    let other = IrModel::new(&van_der_pol().f).unwrap();
    let grid = TimeGrid::uniform(0.0, 1.0, 4).unwrap();
    // Sizes differ from the stepper's: the solver's own checks or the stepper's report it.
    let mut s = Solver::new(fused, &other, grid, &[1.0], Checkpointing::StoreAll).unwrap();
    let mut other = other;
    assert!(s.solve(&mut other, &[1.0, 1.0], &[1.0]).is_err());
}
