//! One Lotka–Volterra gradient (RK4, 1000 steps, store-all) with the generated model against
//! the hand-written `pnode_runtime::problems::LotkaVolterra`, both through `Solver::explicit`,
//! the interpreter (`pnode_ir::runtime::IrModel`), and the generated model with the generated
//! fused RK4 stepper; and the same for the corpus' 2-16-16-2 tanh MLP over a `[4, 2]` batch
//! (100 steps) against the hand-written `problems::Mlp`.
//!
//! Run with `cargo bench -p pnode-emitted-tests --bench lotka_volterra`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pnode_codegen::testmodels;
use pnode_emitted_tests::generated::{LotkaVolterra as Generated, MlpTanh, Rk4};
use pnode_ir::runtime::IrModel;
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::{LotkaVolterra, Mlp};
use pnode_runtime::{Checkpointing, Solver, Tableau, TimeGrid};

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

fn grid() -> TimeGrid {
    TimeGrid::uniform(0.0, 10.0, 1000).unwrap()
}

fn bench_erk<M: RhsVjp>(c: &mut Criterion, name: &str, model: M) {
    let u0 = LotkaVolterra::default_u0();
    let p = LotkaVolterra::default_params();
    bench_at(c, name, model, grid(), &u0, &p);
}

fn bench_at<M: RhsVjp>(
    c: &mut Criterion,
    name: &str,
    mut model: M,
    g: TimeGrid,
    u0: &[f64],
    p: &[f64],
) {
    let t_end = g.t(g.n_steps());
    let mode = Checkpointing::StoreAll;
    let mut s = Solver::explicit(Tableau::rk4(), &model, g, &[t_end], mode).unwrap();
    c.bench_function(name, |b| {
        b.iter(|| black_box(s.value_and_grad(&mut model, u0, p, sum_loss).unwrap().0))
    });
}

fn mlp(c: &mut Criterion) {
    let m = testmodels::mlp_tanh();
    let g = TimeGrid::uniform(0.0, 1.0, 100).unwrap();
    let hand = Mlp::new(&[2, 16, 16, 2], 4).unwrap();
    bench_at(
        c,
        "mlp rk4 100 gradient/hand-written",
        hand,
        g.clone(),
        &m.u,
        &m.p,
    );
    bench_at(
        c,
        "mlp rk4 100 gradient/generated",
        MlpTanh::new(),
        g.clone(),
        &m.u,
        &m.p,
    );
    let ir = IrModel::new(&m.f).unwrap();
    bench_at(c, "mlp rk4 100 gradient/interpreter", ir, g, &m.u, &m.p);
}

fn gradient(c: &mut Criterion) {
    bench_erk(c, "lv rk4 1000 gradient/hand-written", LotkaVolterra::new());
    bench_erk(c, "lv rk4 1000 gradient/generated", Generated::new());
    let ir = IrModel::new(&testmodels::lotka_volterra().f).unwrap();
    bench_erk(c, "lv rk4 1000 gradient/interpreter", ir);
    let u0 = LotkaVolterra::default_u0();
    let p = LotkaVolterra::default_params();
    let mut model = Generated::new();
    let stepper = Rk4::new(2, 4);
    let mut s = Solver::new(stepper, &model, grid(), &[10.0], Checkpointing::StoreAll).unwrap();
    c.bench_function("lv rk4 1000 gradient/generated + fused rk4", |b| {
        b.iter(|| black_box(s.value_and_grad(&mut model, &u0, &p, sum_loss).unwrap().0))
    });
}

criterion_group!(benches, gradient, mlp);
criterion_main!(benches);
