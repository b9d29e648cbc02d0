//! Gradients of the tensor backend against autograd backprop through the same fixed-step solver
//! written with tch ops (f64): every explicit tableau, every checkpoint mode, several output
//! times, with respect to `u0` and every parameter; and bitwise equality across schedules.

use crate::common::{f64_store, mlp, randn, rel_err, rk_autograd};
use pnode_torch::pnode_runtime::checkpoint::{Budget, Checkpointing};
use pnode_torch::pnode_runtime::{Tableau, TimeGrid};
use pnode_torch::tch::{Kind, Tensor};
use pnode_torch::{ModuleRhs, TensorRhs, TensorSolver};

fn modes() -> Vec<Checkpointing> {
    vec![
        Checkpointing::StoreAll,
        Checkpointing::SolutionOnly,
        Checkpointing::Revolve { slots: 2 },
        Checkpointing::Online { slots: 2 },
        Checkpointing::Budget(Budget::Vectors(9)),
    ]
}

#[test]
fn gradients_match_autograd_for_every_tableau_and_schedule() {
    let grid = TimeGrid::uniform(0.0, 1.2, 9).unwrap();
    let output_times = [grid.t(0), grid.t(4), grid.t(7), grid.t(9)];
    let output_idx = grid.output_indices(&output_times).unwrap();
    let vs = f64_store();
    let f = mlp(&vs, 3, 10);
    let u0 = randn(&[4, 3], 1);
    let weights: Vec<Tensor> = (0..4).map(|k| randn(&[4, 3], 10 + k)).collect();
    let params = vs.trainable_variables();
    let mut worst = 0.0f64;
    for tableau in Tableau::all() {
        // Oracle: autograd through the tch-ops solver.
        let u0_leaf = u0.copy().set_requires_grad(true);
        let outs = rk_autograd(&f, &tableau, &grid, &u0_leaf, &output_idx);
        let loss: Tensor = outs
            .iter()
            .zip(&weights)
            .map(|(o, w)| (o * w).sum(Kind::Double))
            .sum();
        let mut inputs = vec![&u0_leaf];
        inputs.extend(params.iter());
        let oracle = Tensor::run_backward(&[loss], &inputs, false, false);

        let mut reference: Option<(Tensor, Vec<Tensor>)> = None;
        for mode in modes() {
            let mut model = ModuleRhs::new(&vs, &f);
            let mut solver =
                TensorSolver::new(tableau.clone(), grid.clone(), &output_times, mode.clone())
                    .unwrap();
            let got = solver.forward(&mut model, &u0).unwrap();
            for (g, o) in got.iter().zip(&outs) {
                assert!(
                    rel_err(g, &o.detach()) < 1e-13,
                    "{} {mode:?}: outputs differ",
                    tableau.name()
                );
            }
            let grad = solver.backward(&mut model, &weights).unwrap();
            assert_eq!(grad.dparams.len(), params.len());
            let e = rel_err(&grad.du0, &oracle[0]);
            assert!(e <= 1e-10, "{} {mode:?}: du0 rel err {e:e}", tableau.name());
            worst = worst.max(e);
            for (i, (g, o)) in grad.dparams.iter().zip(&oracle[1..]).enumerate() {
                let e = rel_err(g, o);
                assert!(
                    e <= 1e-10,
                    "{} {mode:?}: param {i} rel err {e:e}",
                    tableau.name()
                );
                worst = worst.max(e);
            }
            // Every schedule gives the store-all gradient bit for bit.
            match &reference {
                None => {
                    reference = Some((
                        grad.du0.copy(),
                        grad.dparams.iter().map(Tensor::copy).collect(),
                    ))
                }
                Some((du0, dp)) => {
                    assert!(
                        grad.du0.equal(du0),
                        "{} {mode:?}: du0 not bitwise equal",
                        tableau.name()
                    );
                    for (a, b) in grad.dparams.iter().zip(dp) {
                        assert!(
                            a.equal(b),
                            "{} {mode:?}: dθ not bitwise equal",
                            tableau.name()
                        );
                    }
                }
            }
        }
    }
    eprintln!("worst relative error vs autograd: {worst:e}");
}

#[test]
fn statistics_count_tensor_bytes_and_match_the_cost_model() {
    let grid = TimeGrid::uniform(0.0, 1.0, 10).unwrap();
    for (kind, elt) in [(Kind::Double, 8u64), (Kind::Float, 4)] {
        let mut vs = f64_store();
        let f = mlp(&vs, 2, 6);
        vs.set_kind(kind);
        let u0 = randn(&[5, 2], 3).to_kind(kind);
        for mode in [
            Checkpointing::StoreAll,
            Checkpointing::SolutionOnly,
            Checkpointing::Revolve { slots: 3 },
        ] {
            let mut model = ModuleRhs::new(&vs, &f);
            let mut solver =
                TensorSolver::new(Tableau::rk4(), grid.clone(), &[1.0], mode.clone()).unwrap();
            let predicted = solver.predicted_stats(&u0).unwrap();
            let out = solver.forward(&mut model, &u0).unwrap()[0].ones_like();
            solver.backward(&mut model, &[out]).unwrap();
            let stats = solver.stats();
            assert_eq!(stats, predicted, "{kind:?} {mode:?}");
            assert_eq!(
                stats.peak_stored_bytes,
                stats.peak_stored_vectors * 10 * elt,
                "{kind:?} {mode:?}"
            );
            assert!(stats.peak_stored_bytes > 0);
        }
    }
}

#[test]
fn f32_gradients_are_close_to_f64() {
    let grid = TimeGrid::uniform(0.0, 1.0, 20).unwrap();
    let vs = f64_store();
    let f = mlp(&vs, 2, 8);
    let u0 = randn(&[3, 2], 5);
    let mut model = ModuleRhs::new(&vs, &f);
    let mut solver = TensorSolver::new(
        Tableau::rk4(),
        grid.clone(),
        &[1.0],
        Checkpointing::SolutionOnly,
    )
    .unwrap();
    let w = randn(&[3, 2], 6);
    solver.forward(&mut model, &u0).unwrap();
    let g64 = solver.backward(&mut model, &[w.copy()]).unwrap();

    let mut vs32 = f64_store();
    let f32m = mlp(&vs32, 2, 8);
    vs32.copy(&vs).unwrap();
    vs32.set_kind(Kind::Float);
    let mut model32 = ModuleRhs::new(&vs32, &f32m);
    solver
        .forward(&mut model32, &u0.to_kind(Kind::Float))
        .unwrap();
    let g32 = solver
        .backward(&mut model32, &[w.to_kind(Kind::Float)])
        .unwrap();
    assert_eq!(g32.du0.kind(), Kind::Float);
    let e = rel_err(&g32.du0.to_kind(Kind::Double), &g64.du0);
    assert!(e < 1e-4, "f32 vs f64 du0: {e:e}");
    assert!(model32.parameters().iter().all(|p| p.kind() == Kind::Float));
}

#[test]
fn the_hand_written_mlp_vjp_matches_autograd() {
    use pnode_torch::{Activation, MlpRhs};
    let grid = TimeGrid::uniform(0.0, 1.0, 8).unwrap();
    for activation in [Activation::Tanh, Activation::Relu, Activation::Gelu] {
        let mut vs = f64_store();
        let mut mlp_rhs = MlpRhs::new(&vs.root(), &[3, 7, 5, 3], activation).unwrap();
        vs.set_kind(Kind::Double);
        // The same network through autograd.
        let params = mlp_rhs
            .parameters()
            .iter()
            .map(Tensor::shallow_clone)
            .collect::<Vec<_>>();
        let p = params.iter().map(Tensor::shallow_clone).collect::<Vec<_>>();
        let mut auto = ModuleRhs::with_parameters(params, move |_t, u: &Tensor| {
            let mut h = u.shallow_clone();
            for k in 0..3 {
                h = h.linear(&p[2 * k], Some(&p[2 * k + 1]));
                if k < 2 {
                    h = match activation {
                        Activation::Tanh => h.tanh(),
                        Activation::Relu => h.relu(),
                        Activation::Gelu => h.gelu("none"),
                    };
                }
            }
            h
        });
        let u = randn(&[4, 3], 30);
        let w = randn(&[4, 3], 31);
        let (gu_a, gp_a) = auto.vjp(0.3, &u, &w).unwrap();
        let (gu_m, gp_m) = mlp_rhs.vjp(0.3, &u, &w).unwrap();
        assert!(rel_err(&gu_m, &gu_a) < 1e-13, "{activation:?} f_uᵀw");
        for (k, (a, b)) in gp_m.iter().zip(&gp_a).enumerate() {
            assert!(rel_err(a, b) < 1e-13, "{activation:?} param {k}");
        }
        assert!(rel_err(&mlp_rhs.rhs(0.0, &u).unwrap(), &auto.rhs(0.0, &u).unwrap()) < 1e-15);
        // Whole gradients agree too, and the fused accumulation equals the plain one.
        let mut solver = TensorSolver::new(
            Tableau::rk4(),
            grid.clone(),
            &[1.0],
            Checkpointing::SolutionOnly,
        )
        .unwrap();
        solver.forward(&mut mlp_rhs, &u).unwrap();
        let g_m = solver.backward(&mut mlp_rhs, &[w.copy()]).unwrap();
        solver.forward(&mut auto, &u).unwrap();
        let g_a = solver.backward(&mut auto, &[w.copy()]).unwrap();
        assert!(rel_err(&g_m.du0, &g_a.du0) < 1e-12, "{activation:?} du0");
        for (a, b) in g_m.dparams.iter().zip(&g_a.dparams) {
            assert!(rel_err(a, b) < 1e-12, "{activation:?} dθ");
        }
    }
}
