//! One Lotka–Volterra gradient (RK4, 1000 steps, store-all) with the generated model against
//! the hand-written `pnode_runtime::problems::LotkaVolterra`, both through `Solver::explicit`,
//! and the generated model with the generated fused RK4 stepper.
//!
//! Run with `cargo bench -p pnode-emitted-tests --bench lotka_volterra`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode_emitted_tests::generated::{LotkaVolterra as Generated, Rk4};
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::LotkaVolterra;
use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn grid() -> TimeGrid {
    TimeGrid::uniform(0.0, 10.0, 1000).unwrap()
}

fn bench_erk<M: RhsVjp>(c: &mut Criterion, name: &str, mut model: M) {
    let u0 = LotkaVolterra::default_u0();
    let p = LotkaVolterra::default_params();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &model,
        grid(),
        &[10.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    c.bench_function(name, |b| {
        b.iter(|| black_box(s.value_and_grad(&mut model, &u0, &p, sum_loss).unwrap().0))
    });
}

fn gradient(c: &mut Criterion) {
    bench_erk(c, "lv rk4 1000 gradient/hand-written", LotkaVolterra::new());
    bench_erk(c, "lv rk4 1000 gradient/generated", Generated::new());
    let u0 = LotkaVolterra::default_u0();
    let p = LotkaVolterra::default_params();
    let mut model = Generated::new();
    let stepper = Rk4::new(2, 4);
    let mut s = Solver::new(stepper, &model, grid(), &[10.0], Checkpointing::StoreAll).unwrap();
    c.bench_function("lv rk4 1000 gradient/generated + fused rk4", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut model, &u0, &p, sum_loss).unwrap().0))
    });
}

criterion_group!(benches, gradient);
criterion_main!(benches);
