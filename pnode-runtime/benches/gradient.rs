//! Forward solve vs discrete-adjoint gradient, RK4, for the cheap-gradient ratio
//! (time per gradient / time per forward; the reverse-mode lower bound is about 3).
//!
//! Run with `cargo bench -p pnode-runtime --bench gradient`; results go to BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::{LotkaVolterra, Mlp};
use pnode_runtime::{Checkpointing, ErkStepper, Solver, Tableau, TimeGrid};

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn bench_problem<M: RhsVjp>(
    c: &mut Criterion,
    name: &str,
    mut model: M,
    u0: &[f64],
    p: &[f64],
    grid: TimeGrid,
) {
    let t_end = grid.t(grid.n_steps());
    let mut group = c.benchmark_group(name);
    let solver = |mode| -> Solver<ErkStepper> {
        Solver::explicit(Tableau::rk4(), &model, grid.clone(), &[t_end], mode).unwrap()
    };
    let mut fwd = solver(Checkpointing::StoreAll);
    let mut all = solver(Checkpointing::StoreAll);
    let mut sol = solver(Checkpointing::SolutionOnly);
    group.bench_function("forward", |b| {
        b.iter(|| black_box(fwd.solve(&mut model, u0, p).unwrap()[0]))
    });
    group.bench_function("gradient/store-all", |b| {
        b.iter(|| black_box(all.value_and_grad(&mut model, u0, p, sum_loss).unwrap().0))
    });
    group.bench_function("gradient/solution-only", |b| {
        b.iter(|| black_box(sol.value_and_grad(&mut model, u0, p, sum_loss).unwrap().0))
    });
    group.finish();
}

fn lotka_volterra(c: &mut Criterion) {
    let grid = TimeGrid::uniform(0.0, 10.0, 1000).unwrap();
    bench_problem(
        c,
        "lotka-volterra rk4 1000 steps",
        LotkaVolterra::new(),
        &LotkaVolterra::default_u0(),
        &LotkaVolterra::default_params(),
        grid,
    );
}

fn mlp(c: &mut Criterion) {
    let model = Mlp::new(&[2, 64, 64, 2], 64).unwrap();
    let p = model.init_params(0);
    let u0: Vec<f64> = (0..128)
        .map(|i| ((i * 37 % 101) as f64 / 50.0) - 1.0)
        .collect();
    let grid = TimeGrid::uniform(0.0, 1.0, 100).unwrap();
    bench_problem(
        c,
        "mlp 2-64-64-2 batch 64 rk4 100 steps",
        model,
        &u0,
        &p,
        grid,
    );
}

criterion_group!(benches, lotka_volterra, mlp);
criterion_main!(benches);
