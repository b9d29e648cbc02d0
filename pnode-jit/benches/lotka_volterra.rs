//! Lotka–Volterra, RK4, 1000 steps, store-all, gradient in `u0` and the 4 parameters:
//! the hand-written closure model (`pnode_runtime::problems::LotkaVolterra`) through
//! `Solver::explicit`, the interpreter (`IrModel`) and `JitModel` through the same solver, and
//! the fused `JitErkStepper`. Prints the JIT compile times first.
//!
//! `cargo bench -j 1 -p pnode-jit --bench lotka_volterra -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode_ir::runtime::IrModel;
use pnode_ir::{Builder, Function, Layout};
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::stepper::{AdjointStepper, StepAt};
use pnode_runtime::{Checkpointing, ErkStepper, Solver, Stats, Tableau, TimeGrid};

/// `f = [α x − β x y, δ x y − γ y]` as IR.
fn lv_ir() -> Function {
    let mut b = Builder::new(Layout::new(2, 4));
    let x = b.state(0, []).unwrap();
    let y = b.state(1, []).unwrap();
    let k: Vec<_> = (0..4).map(|i| b.param(i, []).unwrap()).collect();
    let xy = b.mul(x, y).unwrap();
    let ax = b.mul(k[0], x).unwrap();
    let bxy = b.mul(k[1], xy).unwrap();
    let f0 = b.sub(ax, bxy).unwrap();
    let dxy = b.mul(k[2], xy).unwrap();
    let gy = b.mul(k[3], y).unwrap();
    let f1 = b.sub(dxy, gy).unwrap();
    let f = b.stack(&[f0, f1], 0).unwrap();
    b.finish_rhs(&[f]).unwrap()
}

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(c: &mut Criterion) {
    let f = lv_ir();
    let model_times: Vec<Duration> = (0..7)
        .map(|_| JitModel::new(&f).unwrap().compile_time())
        .collect();
    let fused_times: Vec<Duration> = (0..7)
        .map(|_| {
            JitErkStepper::new(Tableau::rk4(), &f)
                .unwrap()
                .compile_time()
        })
        .collect();
    println!(
        "compile time (median of 7): JitModel (rhs+jvp+vjp) {:.2} ms, JitErkStepper rk4 (4 fused kernels) {:.2} ms",
        median(model_times).as_secs_f64() * 1e3,
        median(fused_times).as_secs_f64() * 1e3
    );

    let grid = TimeGrid::uniform(0.0, 10.0, 1000).unwrap();
    let t_end = grid.t(grid.n_steps());
    let u0 = LotkaVolterra::default_u0();
    let p = LotkaVolterra::default_params();
    let mut group = c.benchmark_group("lotka-volterra rk4 1000 steps gradient");

    let mut hand = LotkaVolterra::new();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &hand,
        grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("hand-written", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut hand, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });

    let mut ir = IrModel::new(&f).unwrap();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &ir,
        grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("interpreter", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut ir, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });

    let mut jit = JitModel::new(&f).unwrap();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &jit,
        grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("jit-model", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut jit, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });

    let fused = JitErkStepper::new(Tableau::rk4(), &f).unwrap();
    let mut s = Solver::new(fused, &jit, grid.clone(), &[t_end], Checkpointing::StoreAll).unwrap();
    group.bench_function("jit-fused", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut jit, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });
    group.finish();

    // The same gradient without the executor: 1000 forward steps writing their stages to a
    // store-all buffer, then 1000 adjoint steps. Isolates the step code from the executor's
    // bookkeeping.
    let mut group = c.benchmark_group("lotka-volterra rk4 1000 steps step loop");
    let erk = ErkStepper::new(Tableau::rk4(), 2, 4);
    let fused = JitErkStepper::new(Tableau::rk4(), &f).unwrap();
    group.bench_function("hand-written", |b| {
        let mut st = erk.clone();
        b.iter(|| black_box(step_loop(&mut st, &mut hand, &grid, &u0, &p)))
    });
    group.bench_function("jit-model", |b| {
        let mut st = erk.clone();
        b.iter(|| black_box(step_loop(&mut st, &mut jit, &grid, &u0, &p)))
    });
    group.bench_function("jit-fused", |b| {
        let mut st = fused.clone();
        b.iter(|| black_box(step_loop(&mut st, &mut jit, &grid, &u0, &p)))
    });
    group.finish();
}

/// Forward over `grid` keeping every step's stages, then the adjoint of every step from
/// `λ_N = 1`; returns `μ[0]`.
fn step_loop<S: AdjointStepper<M>, M: RhsVjp>(
    st: &mut S,
    model: &mut M,
    grid: &TimeGrid,
    u0: &[f64],
    p: &[f64],
) -> f64 {
    let n_steps = grid.n_steps();
    let sv = st.stage_vectors() * 2;
    let mut stages = vec![0.0; n_steps * sv];
    let mut stats = Stats::default();
    let (mut u, mut next) = (u0.to_vec(), vec![0.0; 2]);
    for k in 0..n_steps {
        let at = StepAt {
            index: k,
            t: grid.t(k),
            h: grid.h(k),
        };
        let slot = &mut stages[k * sv..(k + 1) * sv];
        st.step(model, at, p, &u, &mut next, Some(slot), &mut stats)
            .unwrap();
        std::mem::swap(&mut u, &mut next);
    }
    let (mut lambda, mut mu) = (vec![1.0; 2], vec![0.0; 4]);
    for k in (0..n_steps).rev() {
        let at = StepAt {
            index: k,
            t: grid.t(k),
            h: grid.h(k),
        };
        let slot = &stages[k * sv..(k + 1) * sv];
        st.reverse(model, at, p, slot, &mut lambda, &mut mu, &mut stats)
            .unwrap();
    }
    mu[0]
}

criterion_group!(benches, bench);
criterion_main!(benches);
