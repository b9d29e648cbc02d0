//! Lotka–Volterra, RK4, 1000 steps to t = 10, store-all, loss `Σ u(10)`, gradient in `u0` and
//! the four rates: the `#[neural_ode]`-generated model and fused stepper (`Ode::gradient`,
//! its compile-time schedule) against the Cranelift JIT's fused `JitErkStepper` and the
//! hand-written closures, each through the runtime's `Solver` with the same grid and schedule.
//!
//! `cargo bench -j 1 -p pnode --bench macro_vs_jit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode::runtime::problems::LotkaVolterra;
use pnode::runtime::{Checkpointing, Solver, Tableau};
use pnode_jit::{JitErkStepper, JitModel};

#[pnode::neural_ode(method = "rk4", steps = 1000, t = (0.0, 10.0), checkpoint = "all")]
mod lv {
    state! { x = 1.0, y = 1.0 }
    param! { alpha = 1.5, beta = 1.0, delta = 3.0, gamma = 1.0 }
    fn rhs(t: f64, x: f64, y: f64) -> (f64, f64) {
        (alpha * x - beta * x * y, delta * x * y - gamma * y)
    }
}

const LV_PODE: &str = "model lv\nstate x = 1.0\nstate y = 1.0\nparam alpha = 1.5\n\
    param beta = 1.0\nparam delta = 3.0\nparam gamma = 1.0\n\
    d(x)/dt = alpha * x - beta * x * y\nd(y)/dt = delta * x * y - gamma * y\n";

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn bench(c: &mut Criterion) {
    let program = pnode_ir::lower::compile_source(LV_PODE)
        .program
        .expect("the model lowers");
    let (u0, p) = (lv::Ode::U0, lv::Ode::THETA0);
    // The macro's grid (the driver's points), so all three step the same sizes.
    let grid = lv::Ode::grid().unwrap();
    let mut group = c.benchmark_group("lotka-volterra rk4 1000 steps gradient");

    let mut ode = lv::Ode::new().unwrap();
    group.bench_function("macro", |b| {
        b.iter(|| black_box(ode.value_and_grad(&u0, &p, sum_loss).unwrap().1.dp[0]))
    });

    let mut jit = JitModel::new(&program.rhs).unwrap();
    let fused = JitErkStepper::new(Tableau::rk4(), &program.rhs).unwrap();
    let mut s = Solver::new(fused, &jit, grid.clone(), &[10.0], Checkpointing::StoreAll).unwrap();
    group.bench_function("jit-fused", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut jit, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });

    let mut hand = LotkaVolterra::new();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &hand,
        grid,
        &[10.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("hand-written", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut hand, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
