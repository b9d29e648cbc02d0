//! `OdeBlock` inside a larger tch model: `loss.backward()` through the block's discrete adjoint
//! gives every layer the gradient full autograd gives (f64), and the block's edge cases
//! (several outputs, frozen parameters, no-grad inputs, a second backward) behave.

use crate::common::{Mlp, f64_store, mlp, randn, rel_err, rk_autograd};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;
use pnode_torch::pnode_runtime::{Tableau, TimeGrid};
use pnode_torch::tch::{Kind, Tensor, nn, nn::Module};
use pnode_torch::{Error, ModuleRhs, OdeBlock};

struct Outer {
    stem: nn::Linear,
    head: nn::Linear,
}

fn outer(vs: &nn::VarStore) -> Outer {
    let root = vs.root();
    Outer {
        stem: nn::linear(&root / "stem", 3, 4, Default::default()),
        head: nn::linear(&root / "head", 4, 2, Default::default()),
    }
}

fn grads(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            let g = t.grad();
            (name, if g.defined() { g.copy() } else { Tensor::new() })
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn zero_grads(vs: &nn::VarStore) {
    for (_, mut t) in vs.variables() {
        t.zero_grad();
    }
}

#[test]
fn layers_around_the_block_get_full_autograd_gradients() {
    let grid = TimeGrid::uniform(0.0, 1.0, 12).unwrap();
    let outer_vs = f64_store();
    let ode_vs = f64_store();
    let net = outer(&outer_vs);
    let net_f = Mlp::new(&ode_vs, 4, 8);
    let f = net_f.f();
    let x = randn(&[5, 3], 1);
    let target = randn(&[5, 2], 2);
    for tableau in [Tableau::rk4(), Tableau::dopri5(), Tableau::midpoint()] {
        for mode in [
            Checkpointing::StoreAll,
            Checkpointing::SolutionOnly,
            Checkpointing::Revolve { slots: 3 },
        ] {
            let block = OdeBlock::final_state(
                ModuleRhs::new(&ode_vs, net_f.f()),
                tableau.clone(),
                grid.clone(),
                mode.clone(),
            )
            .unwrap();
            // pnode: the block's backward is the discrete adjoint.
            zero_grads(&outer_vs);
            zero_grads(&ode_vs);
            let h = net.stem.forward(&x).tanh();
            let y = net.head.forward(&block.forward(&h).unwrap());
            let loss = (y - &target).square().mean(Kind::Double);
            loss.backward();
            let (ours_outer, ours_ode) = (grads(&outer_vs), grads(&ode_vs));
            let stats = block.stats().unwrap();
            assert_eq!(stats.reversed_steps, 12, "{} {mode:?}", tableau.name());

            // Oracle: the same solver in tch ops, all recorded by autograd.
            zero_grads(&outer_vs);
            zero_grads(&ode_vs);
            let h = net.stem.forward(&x).tanh();
            let u = rk_autograd(&f, &tableau, &grid, &h, &[12]).pop().unwrap();
            let loss = (net.head.forward(&u) - &target).square().mean(Kind::Double);
            loss.backward();
            for ((name, a), (_, b)) in ours_outer
                .iter()
                .zip(grads(&outer_vs))
                .chain(ours_ode.iter().zip(grads(&ode_vs)))
            {
                let e = rel_err(a, &b);
                assert!(
                    e <= 1e-10,
                    "{} {mode:?}: {name} rel err {e:e}",
                    tableau.name()
                );
            }
        }
    }
}

#[test]
fn several_outputs_frozen_parameters_and_no_grad_inputs() {
    let grid = TimeGrid::uniform(0.0, 2.0, 8).unwrap();
    let ode_vs = f64_store();
    let net_f = Mlp::new(&ode_vs, 3, 6);
    let f = net_f.f();
    // Freeze one parameter: it must be skipped (no gradient), the rest unaffected.
    let frozen = ode_vs.variables()["l2.bias"].shallow_clone();
    let _ = frozen.shallow_clone().set_requires_grad(false);
    let model = ModuleRhs::new(&ode_vs, net_f.f());
    let block = OdeBlock::new(
        model,
        Tableau::rk4(),
        grid.clone(),
        &[0.5, 1.5, 2.0],
        Checkpointing::Revolve { slots: 2 },
    )
    .unwrap();
    // x is data (no grad): only the parameters receive gradients.
    let x = randn(&[2, 3], 3);
    let w: Vec<Tensor> = (0..3).map(|k| randn(&[2, 3], 20 + k)).collect();
    let outs = block.forward_outputs(&x).unwrap();
    assert_eq!(outs.len(), 3);
    let loss: Tensor = outs
        .iter()
        .zip(&w)
        .map(|(o, w)| (o * w).sum(Kind::Double))
        .sum();
    loss.backward();
    let ours = grads(&ode_vs);
    assert!(
        !frozen.grad().defined(),
        "a frozen parameter got a gradient"
    );

    zero_grads(&ode_vs);
    let idx = grid.output_indices(&[0.5, 1.5, 2.0]).unwrap();
    let outs = rk_autograd(&f, &Tableau::rk4(), &grid, &x, &idx);
    let loss: Tensor = outs
        .iter()
        .zip(&w)
        .map(|(o, w)| (o * w).sum(Kind::Double))
        .sum();
    loss.backward();
    for ((name, a), (_, b)) in ours.iter().zip(grads(&ode_vs)) {
        if name == "l2.bias" {
            continue;
        }
        let e = rel_err(a, &b);
        assert!(e <= 1e-10, "{name}: rel err {e:e}");
    }

    // Under no_grad the block is a plain solve: outputs do not require grad.
    let y = pnode_torch::tch::no_grad(|| block.forward(&x).unwrap());
    assert!(!y.requires_grad());
}

#[test]
fn a_second_backward_through_the_same_graph_is_an_error() {
    let grid = TimeGrid::uniform(0.0, 1.0, 4).unwrap();
    let vs = f64_store();
    let f = mlp(&vs, 2, 4);
    let block = OdeBlock::final_state(
        ModuleRhs::new(&vs, f),
        Tableau::rk4(),
        grid,
        Checkpointing::StoreAll,
    )
    .unwrap();
    let x = randn(&[1, 2], 4).set_requires_grad(true);
    let loss = block.forward(&x).unwrap().sum(Kind::Double);
    let first = Tensor::f_run_backward(&[&loss], &[&x], true, false);
    assert!(first.is_ok());
    let second = Tensor::f_run_backward(&[&loss], &[&x], true, false)
        .unwrap_err()
        .to_string();
    assert!(second.contains("reversed once"), "{second}");
}

#[test]
fn a_model_error_names_the_step_and_time() {
    let grid = TimeGrid::uniform(0.0, 1.0, 4).unwrap();
    let vs = f64_store();
    // Wrong output shape: a 2-state model fed a 3-state input.
    let f = mlp(&vs, 2, 4);
    let block = OdeBlock::final_state(
        ModuleRhs::new(&vs, f),
        Tableau::rk4(),
        grid,
        Checkpointing::StoreAll,
    )
    .unwrap();
    let err = block.forward(&randn(&[1, 3], 5)).unwrap_err();
    assert!(matches!(err, Error::Model { step: 0, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("step 0") && text.contains("t = 0"), "{text}");

    // Blow-up: du/dt = u² from u0 = 10 leaves the floats within a few steps.
    let grid = TimeGrid::uniform(0.0, 1.0, 50).unwrap();
    let block = OdeBlock::final_state(
        ModuleRhs::with_parameters(vec![], |_t, u: &Tensor| u * u * 1e30),
        Tableau::rk4(),
        grid,
        Checkpointing::StoreAll,
    )
    .unwrap();
    let err = block.forward(&Tensor::from_slice(&[10.0f64])).unwrap_err();
    assert!(matches!(err, Error::NonFiniteState { .. }), "{err}");
    assert!(err.to_string().contains("after step"), "{err}");
}

#[test]
fn graphs_and_checkpoints_are_freed_with_the_outputs() {
    let grid = TimeGrid::uniform(0.0, 1.0, 6).unwrap();
    let vs = f64_store();
    let block = OdeBlock::final_state(
        ModuleRhs::new(&vs, mlp(&vs, 2, 4)),
        Tableau::rk4(),
        grid,
        Checkpointing::StoreAll,
    )
    .unwrap();
    let x = randn(&[3, 2], 7).set_requires_grad(true);
    for _ in 0..3 {
        let y = block.forward(&x).unwrap();
        let loss = y.square().sum(Kind::Double);
        assert_eq!(block.live_calls(), 1);
        loss.backward();
        drop((y, loss));
        assert_eq!(block.live_calls(), 0, "a forward call outlived its graph");
    }
    // Without backward, dropping the outputs frees the call too.
    let y = block.forward(&x).unwrap();
    assert_eq!(block.live_calls(), 1);
    drop(y);
    assert_eq!(block.live_calls(), 0);
}
