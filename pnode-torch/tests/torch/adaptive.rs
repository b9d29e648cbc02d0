//! Adaptive `TensorSolver` and `OdeBlock`: the gradient is bitwise the fixed-grid gradient on
//! the accepted grid in every checkpointing mode; the accepted grid is the runtime
//! `AdaptiveSolver`'s for the same closure (as a `FlatTorchModel`) up to round-off amplified by
//! the estimate's cancellation (same step counts; step sizes within 1e-7 relative and times
//! within 1e-8, observed ≤ 4e-9 and ≤ 1.1e-9 over random weights); the block's gradient
//! through tch autograd matches central finite differences on the frozen grid; failures name
//! t and h.

use crate::common::{Mlp, f64_store, randn, rel_err};
use pnode_torch::pnode_runtime::adaptive::{AdaptiveCheckpointing, AdaptiveOptions};
use pnode_torch::pnode_runtime::checkpoint::Checkpointing;
use pnode_torch::pnode_runtime::{AdaptiveSolver, Tableau, TimeGrid};
use pnode_torch::tch::{Kind, Tensor};
use pnode_torch::{Error, FlatTorchModel, ModuleRhs, OdeBlock, TensorSolver};

const OUTPUTS: [f64; 2] = [0.7, 1.5];

fn bits_equal(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn gradient_is_the_fixed_grid_gradient_on_the_accepted_grid_bitwise() {
    let vs = f64_store();
    let net = Mlp::new(&vs, 3, 8);
    let u0 = randn(&[4, 3], 5);
    // An output at t0 too: its cotangent enters after the last reversed step.
    let outputs_at = [0.0, 0.7, 1.5];
    let w: Vec<Tensor> = (0..3).map(|k| randn(&[4, 3], 30 + k)).collect();
    for tableau in [
        Tableau::dopri5(),
        Tableau::tsit5(),
        Tableau::bosh3(),
        Tableau::fehlberg45(),
    ] {
        let name = tableau.name().to_string();
        let mut reference: Option<(Vec<f64>, Tensor, Vec<Tensor>)> = None;
        for mode in [
            AdaptiveCheckpointing::StoreAll,
            AdaptiveCheckpointing::SolutionOnly,
            AdaptiveCheckpointing::Online { slots: 2 },
        ] {
            let mut model = ModuleRhs::new(&vs, net.f());
            let options = AdaptiveOptions::with_tolerances(1e-5, 1e-7);
            let mut solver =
                TensorSolver::adaptive(tableau.clone(), 0.0, &outputs_at, options, mode).unwrap();
            let outputs: Vec<Tensor> = solver
                .forward(&mut model, &u0)
                .unwrap()
                .iter()
                .map(Tensor::shallow_clone)
                .collect();
            let grad = solver.backward(&mut model, &w).unwrap();
            let times = solver.accepted_times();
            let counts = solver.adaptive_stats().unwrap();
            let n = times.len() - 1;
            assert!(n >= 4, "{name}: {n} steps");
            assert_eq!(counts.accepted_steps as usize, n, "{name}");
            assert_eq!(counts.sweep.reversed_steps as usize, n, "{name} {mode:?}");
            if let AdaptiveCheckpointing::Online { slots } = mode {
                assert!(counts.sweep.peak_slots <= slots as u64, "{name} {counts:?}");
            }
            assert!(
                outputs_at.iter().all(|t| times.contains(t)),
                "{name}: {times:?}"
            );

            // The fixed-grid solver on the accepted grid.
            let grid = TimeGrid::from_times(&times).unwrap();
            let mut fixed =
                TensorSolver::new(tableau.clone(), grid, &outputs_at, Checkpointing::StoreAll)
                    .unwrap();
            let fixed_out: Vec<Tensor> = fixed
                .forward(&mut model, &u0)
                .unwrap()
                .iter()
                .map(Tensor::shallow_clone)
                .collect();
            let fixed_grad = fixed.backward(&mut model, &w).unwrap();
            for (a, b) in outputs.iter().zip(&fixed_out) {
                assert!(bits_equal(a, b), "{name} {mode:?}: outputs differ");
            }
            assert!(
                bits_equal(&grad.du0, &fixed_grad.du0),
                "{name} {mode:?}: du0"
            );
            for (a, b) in grad.dparams.iter().zip(&fixed_grad.dparams) {
                assert!(bits_equal(a, b), "{name} {mode:?}: dθ");
            }
            match &reference {
                None => reference = Some((times, grad.du0, grad.dparams)),
                Some((t, du0, dp)) => {
                    assert_eq!(t, &times, "{name} {mode:?}: grid");
                    assert!(
                        bits_equal(du0, &grad.du0),
                        "{name} {mode:?}: du0 vs store-all"
                    );
                    for (a, b) in dp.iter().zip(&grad.dparams) {
                        assert!(bits_equal(a, b), "{name} {mode:?}: dθ vs store-all");
                    }
                }
            }
        }
    }
}

#[test]
fn accepted_grid_is_the_runtime_grid() {
    let vs = f64_store();
    let net = Mlp::new(&vs, 3, 8);
    let u0 = randn(&[4, 3], 7);
    let u0_flat: Vec<f64> = Vec::try_from(&u0.flatten(0, -1)).unwrap();
    for tableau in [Tableau::dopri5(), Tableau::bosh3(), Tableau::fehlberg45()] {
        let name = tableau.name().to_string();
        let options = AdaptiveOptions::with_tolerances(1e-6, 1e-6);
        let mut model = ModuleRhs::new(&vs, net.f());
        let mut solver = TensorSolver::adaptive(
            tableau.clone(),
            0.0,
            &OUTPUTS,
            options.clone(),
            AdaptiveCheckpointing::StoreAll,
        )
        .unwrap();
        let last = solver.solve(&mut model, &u0).unwrap()[1].shallow_clone();
        let ours = solver.accepted_times();
        let counts = solver.adaptive_stats().unwrap();
        let (rejected, rhs_evals) = (counts.rejected_steps, counts.sweep.rhs_evals);

        let mut flat = FlatTorchModel::new(&vs, &[4, 3], net.f()).unwrap();
        let p = flat.parameters().to_vec();
        let mut runtime = AdaptiveSolver::explicit(
            tableau,
            &flat,
            0.0,
            &OUTPUTS,
            options,
            AdaptiveCheckpointing::StoreAll,
        )
        .unwrap();
        runtime.solve(&mut flat, &u0_flat, &p).unwrap();
        let theirs = runtime.accepted_times();
        assert_eq!(ours.len(), theirs.len(), "{name}: {ours:?} vs {theirs:?}");
        assert_eq!(rejected, runtime.stats().rejected_steps, "{name}");
        // K_1 evaluated once per point (FSAL, retries, the initial step's f(t0, u0)), as the
        // runtime does.
        assert_eq!(
            rhs_evals,
            runtime.stats().sweep.rhs_evals,
            "{name}: RHS evaluations"
        );
        // Not bitwise: the runtime forms stage inputs with its own f64 loops and sums the
        // norm sequentially, libtorch with vectorised kernels, so the states differ in the
        // last bits. The estimate e = h Σ (b_i − b̂_i) K_i cancels down to ~atol where a
        // component is near 0, which turns that round-off (ε h|K|) into a relative ~ε/atol
        // in err and so in the next step size; the first step (HNW's, from the norms alone)
        // agrees to ε. A different norm or controller would change the steps by O(1e-2).
        assert!(
            (ours[1] - theirs[1]).abs() <= 1e-14 * theirs[1],
            "{name}: first step"
        );
        // Steps clipped to an output time are remainders (their relative difference is the
        // absolute one over a possibly tiny step): compared by the times instead.
        let dh = ours
            .windows(2)
            .zip(theirs.windows(2))
            .filter(|(a, _)| !OUTPUTS.contains(&a[1]))
            .fold(0.0f64, |m, (a, b)| {
                m.max(((a[1] - a[0]) / (b[1] - b[0]) - 1.0).abs())
            });
        let dt = ours
            .iter()
            .zip(theirs)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(dh <= 1e-7, "{name}: step sizes differ by {dh:e} (relative)");
        assert!(dt <= 1e-8, "{name}: times differ by {dt:e}");
        let theirs_last = Tensor::from_slice(runtime.output(1).unwrap()).view([4, 3]);
        let e = rel_err(&last, &theirs_last);
        assert!(e <= 1e-10, "{name}: u(t1) rel err {e:e}");
    }
}

#[test]
fn adaptive_block_gradient_matches_finite_differences_on_its_grid() {
    let vs = f64_store();
    let net = Mlp::new(&vs, 2, 5);
    let tableau = Tableau::dopri5();
    let options = AdaptiveOptions::with_tolerances(1e-6, 1e-8);
    let block = OdeBlock::adaptive(
        ModuleRhs::new(&vs, net.f()),
        tableau.clone(),
        0.0,
        &[1.2],
        options,
        AdaptiveCheckpointing::Online { slots: 2 },
    )
    .unwrap();
    let x = randn(&[3, 2], 11).set_requires_grad(true);
    let target = randn(&[3, 2], 12);
    let loss_of = |y: &Tensor| (y - &target).square().sum(Kind::Double);
    let loss = loss_of(&block.forward(&x).unwrap());
    loss.backward();
    let times = block.accepted_times().unwrap().unwrap();
    assert!(times.len() > 3, "{times:?}");
    assert_eq!(
        block.stats().unwrap().reversed_steps as usize,
        times.len() - 1
    );
    let dx = x.grad();
    let weight = vs.variables()["l1.weight"].shallow_clone();
    let dw = weight.grad();

    // Central differences of the same loss on the frozen accepted grid.
    let grid = TimeGrid::from_times(&times).unwrap();
    let mut fixed = TensorSolver::new(tableau, grid, &[1.2], Checkpointing::StoreAll).unwrap();
    let mut model = ModuleRhs::new(&vs, net.f());
    let eps = 1e-6;
    let mut solve = |u: &Tensor| -> f64 {
        let y = fixed.solve(&mut model, u).unwrap()[0].shallow_clone();
        loss_of(&y).double_value(&[])
    };
    let x0 = x.detach();
    for i in 0..6 {
        let bump = |s: f64| {
            let u = x0.copy().flatten(0, -1);
            let _ = u.get(i).fill_(x0.flatten(0, -1).double_value(&[i]) + s);
            u.view([3, 2])
        };
        let fd = (solve(&bump(eps)) - solve(&bump(-eps))) / (2.0 * eps);
        let ad = dx.flatten(0, -1).double_value(&[i]);
        assert!(
            (fd - ad).abs() <= 1e-7 * ad.abs().max(1.0),
            "dx[{i}]: {ad} vs fd {fd}"
        );
    }
    for i in [0, 3, 7] {
        let old = weight.flatten(0, -1).double_value(&[i]);
        let set = |v: f64| {
            pnode_torch::tch::no_grad(|| {
                let _ = weight.flatten(0, -1).get(i).fill_(v);
            })
        };
        set(old + eps);
        let up = solve(&x0);
        set(old - eps);
        let down = solve(&x0);
        set(old);
        let fd = (up - down) / (2.0 * eps);
        let ad = dw.flatten(0, -1).double_value(&[i]);
        assert!(
            (fd - ad).abs() <= 1e-7 * ad.abs().max(1.0),
            "dW1[{i}]: {ad} vs fd {fd}"
        );
    }
}

#[test]
fn max_steps_and_non_finite_failures_name_t_and_h() {
    let vs = f64_store();
    let net = Mlp::new(&vs, 3, 8);
    let u0 = randn(&[4, 3], 9);
    let options = AdaptiveOptions {
        max_steps: 3,
        ..AdaptiveOptions::with_tolerances(1e-10, 1e-12)
    };
    let mut solver = TensorSolver::adaptive(
        Tableau::dopri5(),
        0.0,
        &OUTPUTS,
        options,
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap();
    let mut model = ModuleRhs::new(&vs, net.f());
    let err = solver.forward(&mut model, &u0).unwrap_err();
    let message = err.to_string();
    let Error::Runtime(pnode_torch::pnode_runtime::Error::MaxStepsReached {
        accepted,
        rejected,
        t,
        h,
        component,
        weighted_error,
        ..
    }) = err
    else {
        panic!("{message}");
    };
    assert_eq!(accepted + rejected, 3, "{message}");
    assert!((0.0..0.7).contains(&t) && h > 0.0, "{message}");
    assert!(component < 12 && weighted_error >= 0.0, "{message}");
    assert!(
        message.contains(&format!("at t = {t}")) && message.contains(&format!("h = {h:e}")),
        "{message}"
    );
    // Backward after a failed forward is refused, not a panic.
    assert!(solver.backward(&mut model, &[]).is_err());

    // A right-hand side that is NaN at every point: rejected, retried with smaller steps,
    // then named.
    let mut nan = ModuleRhs::with_parameters(Vec::new(), |_t: f64, u: &Tensor| u * f64::NAN);
    let mut solver = TensorSolver::adaptive(
        Tableau::bosh3(),
        0.0,
        &OUTPUTS,
        AdaptiveOptions::default(),
        AdaptiveCheckpointing::Online { slots: 3 },
    )
    .unwrap();
    let message = solver.solve(&mut nan, &u0).unwrap_err().to_string();
    assert!(
        message.contains("non-finite value in step 0 at t = 0") && message.contains("10 retries"),
        "{message}"
    );
    // Per-element tolerances are refused by the tensor backend with a message.
    let per = AdaptiveOptions {
        rtol: vec![1e-6; 12].into(),
        ..AdaptiveOptions::default()
    };
    let e = TensorSolver::adaptive(
        Tableau::dopri5(),
        0.0,
        &OUTPUTS,
        per,
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap_err();
    assert!(e.to_string().contains("scalar `rtol`"), "{e}");
    // A pair without an embedded estimate is the runtime's error.
    let e = TensorSolver::adaptive(
        Tableau::rk4(),
        0.0,
        &OUTPUTS,
        AdaptiveOptions::default(),
        AdaptiveCheckpointing::StoreAll,
    )
    .unwrap_err();
    assert!(e.to_string().contains("rk4"), "{e}");
}
