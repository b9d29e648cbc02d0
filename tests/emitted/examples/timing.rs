//! Interleaved timing of the Lotka–Volterra and MLP gradients (RK4, store-all): each variant
//! runs in turn, many rounds, and the minimum and median per gradient are printed — robust to a
//! busy machine where criterion's means drift. `cargo run --release -p pnode-emitted-tests
//! --example timing`.

use std::hint::black_box;
use std::time::Instant;

use pnode_codegen::testmodels;
use pnode_emitted_tests::generated::{LotkaVolterra as Generated, MlpTanh, Rk4};
use pnode_ir::runtime::IrModel;
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::{LotkaVolterra, Mlp};
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{Checkpointing, ErkStepper, Solver, Tableau, TimeGrid};

fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

/// A boxed "one gradient" closure.
type Run = Box<dyn FnMut() -> f64>;

fn variant<M, S>(mut model: M, mut solver: Solver<S>, u0: Vec<f64>, p: Vec<f64>) -> Run
where
    M: RhsVjp + 'static,
    S: AdjointStepper<M> + 'static,
{
    Box::new(move || {
        solver
            .value_and_grad(&mut model, &u0, &p, sum_loss)
            .unwrap()
            .0
    })
}

fn erk<M: RhsVjp + 'static>(model: M, g: &TimeGrid, u0: &[f64], p: &[f64]) -> Run {
    let t_end = g.t(g.n_steps());
    let s = Solver::explicit(
        Tableau::rk4(),
        &model,
        g.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    );
    variant::<M, ErkStepper>(model, s.unwrap(), u0.to_vec(), p.to_vec())
}

fn time(name: &str, runs: &mut [(&str, Run)], rounds: usize) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for (k, (_, run)) in runs.iter_mut().enumerate() {
            let t0 = Instant::now();
            black_box(run());
            samples[k].push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!("{name}");
    let base = samples[0].iter().cloned().fold(f64::INFINITY, f64::min);
    for (k, (label, _)) in runs.iter().enumerate() {
        let s = &mut samples[k];
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (min, med) = (s[0], s[s.len() / 2]);
        println!(
            "  {label:<28} min {min:8.1} µs  median {med:8.1} µs  min ratio {:.2}",
            min / base
        );
    }
}

fn main() {
    let g = TimeGrid::uniform(0.0, 10.0, 1000).unwrap();
    let (u0, p) = (LotkaVolterra::default_u0(), LotkaVolterra::default_params());
    let ir = IrModel::new(&testmodels::lotka_volterra().f).unwrap();
    let fused = {
        let m = Generated::new();
        let s = Solver::new(
            Rk4::new(2, 4),
            &m,
            g.clone(),
            &[10.0],
            Checkpointing::StoreAll,
        );
        variant(m, s.unwrap(), u0.clone(), p.clone())
    };
    let mut lv: Vec<(&str, Run)> = vec![
        ("hand-written", erk(LotkaVolterra::new(), &g, &u0, &p)),
        ("generated", erk(Generated::new(), &g, &u0, &p)),
        ("generated + fused rk4", fused),
        ("interpreter", erk(ir, &g, &u0, &p)),
    ];
    time("Lotka–Volterra, RK4, 1000 steps, gradient", &mut lv, 400);
    let m = testmodels::mlp_tanh();
    let g = TimeGrid::uniform(0.0, 1.0, 100).unwrap();
    let hand = Mlp::new(&[2, 16, 16, 2], 4).unwrap();
    let ir = IrModel::new(&m.f).unwrap();
    let mut mlp: Vec<(&str, Run)> = vec![
        ("hand-written", erk(hand, &g, &m.u, &m.p)),
        ("generated", erk(MlpTanh::new(), &g, &m.u, &m.p)),
        ("interpreter", erk(ir, &g, &m.u, &m.p)),
    ];
    time(
        "MLP 2-16-16-2 on [4, 2], RK4, 100 steps, gradient",
        &mut mlp,
        200,
    );
}
