//! `FlatTorchModel` (a tch closure as a runtime model) against the hand-written Robertson
//! model: RHS, JVP (double backward) and VJP agree to round-off at random points, and the
//! Crank–Nicolson and ESDIRK3 discrete-adjoint gradients through Newton stage solves agree to
//! ≤ 1e-10; a failure inside the closure becomes a non-finite-state error plus its cause.

use pnode_torch::FlatTorchModel;
use pnode_torch::pnode_runtime::model::{Rhs, RhsJvp, RhsVjp};
use pnode_torch::pnode_runtime::problems::Robertson;
use pnode_torch::pnode_runtime::{
    Checkpointing, DirkStepper, DirkTableau, NewtonConfig, Solver, TimeGrid,
};
use pnode_torch::tch::{Kind, Tensor};

/// Outputs, `dL/du0`, `dL/dk`.
type Run = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Robertson's kinetics in tch ops, k = [k1, k2, k3] a trainable tensor.
fn torch_robertson() -> FlatTorchModel<impl FnMut(f64, &Tensor) -> Tensor> {
    let k = Tensor::from_slice(&[0.04f64, 3e7, 1e4]).set_requires_grad(true);
    let kk = k.shallow_clone();
    FlatTorchModel::with_parameters(vec![k], &[3], move |_t, u: &Tensor| {
        let (y1, y2, y3) = (u.get(0), u.get(1), u.get(2));
        let (k1, k2, k3) = (kk.get(0), kk.get(1), kk.get(2));
        let r1 = &k1 * &y1;
        let r2 = &k2 * &y2 * &y2;
        let r3 = &k3 * &y2 * &y3;
        Tensor::stack(&[-&r1 + &r3, &r1 - &r3 - &r2, r2], 0)
    })
    .unwrap()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn derivatives_match_the_hand_written_model() {
    let mut torch = torch_robertson();
    let mut native = Robertson::new();
    let p = [0.05, 2e7, 2e4];
    for (i, u) in [[1.0, 2e-5, 0.1], [0.7, 3.6e-5, 0.3], [0.2, 1e-6, 0.8]]
        .iter()
        .enumerate()
    {
        let v = [0.3, -1.2, 0.7 + i as f64];
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        torch.try_rhs(0.0, u, &p, &mut a).unwrap();
        native.rhs(0.0, u, &p, &mut b);
        assert!(max_rel(&a, &b) < 1e-14, "rhs {a:?} vs {b:?}");
        torch.try_jvp(0.0, u, &p, &v, &mut a).unwrap();
        native.jvp(0.0, u, &p, &v, &mut b);
        assert!(max_rel(&a, &b) < 1e-14, "jvp {a:?} vs {b:?}");
        let (mut gp_a, mut gp_b) = ([0.0; 3], [0.0; 3]);
        torch.try_vjp(0.0, u, &p, &v, &mut a, &mut gp_a).unwrap();
        native.vjp(0.0, u, &p, &v, &mut b, &mut gp_b);
        assert!(max_rel(&a, &b) < 1e-14, "vjp u {a:?} vs {b:?}");
        assert!(max_rel(&gp_a, &gp_b) < 1e-14, "vjp θ {gp_a:?} vs {gp_b:?}");
    }
    assert_eq!(torch.parameters(), &[0.05, 2e7, 2e4]);
}

#[test]
fn implicit_gradients_match_the_hand_written_model() {
    let n = 30;
    let mut times = vec![0.0];
    times.extend((0..=n).map(|k| 1e-6 * f64::powf(1e8, f64::from(k) / f64::from(n))));
    let grid = TimeGrid::from_times(&times).unwrap();
    let newton = NewtonConfig {
        atol: 1e-16,
        rtol: 1e-12,
        ..NewtonConfig::default()
    };
    let (u0, k) = (Robertson::default_u0(), Robertson::default_params());
    for tableau in [DirkTableau::theta(0.5).unwrap(), DirkTableau::esdirk3()] {
        let run = |model: &mut dyn FnMut(&mut Solver<DirkStepper>) -> Run| {
            let stepper = DirkStepper::new(tableau.clone(), 3, 3, newton).unwrap();
            let mut solver = Solver::new(
                stepper,
                &Robertson::new(),
                grid.clone(),
                &[times[20], times[n as usize + 1]],
                Checkpointing::Revolve { slots: 4 },
            )
            .unwrap();
            model(&mut solver)
        };
        let weights = [0.3, 1e4, -0.5, 1.0, -2e3, 0.25];
        let native = run(&mut |solver| {
            let mut m = Robertson::new();
            let out = solver.forward(&mut m, &u0, &k).unwrap().to_vec();
            let g = solver.backward(&mut m, &weights).unwrap();
            (out, g.du0, g.dp)
        });
        let torch = run(&mut |solver| {
            let mut m = torch_robertson();
            let out = solver.forward(&mut m, &u0, &k).unwrap().to_vec();
            let g = solver.backward(&mut m, &weights).unwrap();
            (out, g.du0, g.dp)
        });
        assert!(
            max_rel(&torch.0, &native.0) < 1e-10,
            "{}: solutions",
            tableau.name()
        );
        assert!(
            max_rel(&torch.1, &native.1) < 1e-10,
            "{}: du0 {:?} vs {:?}",
            tableau.name(),
            torch.1,
            native.1
        );
        assert!(
            max_rel(&torch.2, &native.2) < 1e-10,
            "{}: dk {:?} vs {:?}",
            tableau.name(),
            torch.2,
            native.2
        );
    }
}

#[test]
fn a_failing_closure_stops_the_solve_with_its_cause() {
    let w =
        Tensor::ones([2, 2], (Kind::Double, pnode_torch::tch::Device::Cpu)).set_requires_grad(true);
    let ww = w.shallow_clone();
    // Expects 2 states but the solver is told the state has shape [3].
    let mut model =
        FlatTorchModel::with_parameters(vec![w], &[3], move |_t, u: &Tensor| u.matmul(&ww))
            .unwrap();
    let grid = TimeGrid::uniform(0.0, 1.0, 4).unwrap();
    let mut solver = Solver::explicit(
        pnode_torch::pnode_runtime::Tableau::rk4(),
        &model,
        grid,
        &[1.0],
        Checkpointing::StoreAll,
    )
    .unwrap();
    let p = model.parameters().to_vec();
    let err = solver.solve(&mut model, &[1.0, 2.0, 3.0], &p).unwrap_err();
    let text = err.to_string();
    // The first RHS evaluation fails: step 0 at t = 0, in the forward sweep, with
    // libtorch's own message about the product's shapes.
    match &err {
        pnode_torch::pnode_runtime::Error::Model {
            step,
            t,
            phase,
            eval,
            cause,
        } => {
            assert_eq!((*step, *t), (0, 0.0), "{text}");
            assert_eq!(*phase, pnode_torch::pnode_runtime::Phase::Forward);
            assert_eq!(*eval, pnode_torch::pnode_runtime::Eval::Rhs);
            let cause = cause.to_string();
            // tch panics on libtorch's error; the panic is caught with libtorch's message.
            assert!(
                cause.starts_with("panicked: ")
                    && cause.contains("mat1 and mat2 shapes cannot be multiplied (1x3 and 2x2)"),
                "{cause}"
            );
        }
        other => panic!("expected a model error, got {other}"),
    }
    assert!(text.contains("step 0 at t = 0 (forward sweep)"), "{text}");
}
