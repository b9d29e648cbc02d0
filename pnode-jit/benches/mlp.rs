//! A 2-64-64-2 tanh MLP on a batch of 64 (state of 128 values, 4610 parameters), RK4, 20
//! steps, store-all, gradient in `u0` and all parameters: the hand-written allocation-free
//! `pnode_runtime::problems::Mlp` (eight-accumulator dot products) against `JitModel` and the
//! fused `JitErkStepper`, whose looped kernels use one accumulator per output element.
//!
//! `cargo bench -j 1 -p pnode-jit --bench mlp -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode_ir::layers::{Activation, mlp};
use pnode_ir::{Builder, Function, Layout};
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::problems::Mlp;
use pnode_runtime::{Checkpointing, Rhs, Solver, Tableau, TimeGrid};

fn mlp_ir(widths: &[usize], batch: usize, np: usize) -> Function {
    let mut b = Builder::new(Layout::new(batch * widths[0], np));
    let u = b.state(0, [batch, widths[0]]).unwrap();
    let (y, _) = mlp(&mut b, u, widths, 0, Activation::Tanh).unwrap();
    let y = b.flatten(y).unwrap();
    b.finish_rhs(&[y]).unwrap()
}

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn bench(c: &mut Criterion) {
    let (widths, batch) = ([2, 64, 64, 2], 64);
    let mut hand = Mlp::new(&widths, batch).unwrap();
    let p = hand.init_params(0);
    let f = mlp_ir(&widths, batch, hand.param_len());
    let u0: Vec<f64> = (0..hand.state_len())
        .map(|i| ((i * 37 % 19) as f64 - 9.0) / 9.0)
        .collect();
    let grid = TimeGrid::uniform(0.0, 1.0, 20).unwrap();
    let mut group = c.benchmark_group("mlp 2-64-64-2 batch 64 rk4 20 steps gradient");
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &hand,
        grid.clone(),
        &[1.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("hand-written", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut hand, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });
    let mut jit = JitModel::new(&f).unwrap();
    println!(
        "JitModel compile time {:.2} ms",
        jit.compile_time().as_secs_f64() * 1e3
    );
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &jit,
        grid.clone(),
        &[1.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    group.bench_function("jit-model", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut jit, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });
    let fused = JitErkStepper::new(Tableau::rk4(), &f).unwrap();
    println!(
        "JitErkStepper rk4 compile time {:.2} ms",
        fused.compile_time().as_secs_f64() * 1e3
    );
    let mut s = Solver::new(fused, &jit, grid, &[1.0], Checkpointing::StoreAll).unwrap();
    group.bench_function("jit-fused", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut jit, &u0, &p, sum_loss).unwrap().1.dp[0]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
