//! Training through the driver: recovery of known parameters, minibatches, and failures that
//! keep the user's progress.

use crate::common::{compile, run_for, synthesize};
use pnode_driver::Error;

const TRUE: [f64; 4] = [1.5, 1.0, 3.0, 1.0];

fn lv(train: &str) -> String {
    format!(
        "model lv
state u[2] = [1.0, 1.0]
param theta[4] = [1.3, 0.85, 3.3, 1.15]
d(u[0])/dt = theta[0] * u[0] - theta[1] * u[0] * u[1]
d(u[1])/dt = -theta[2] * u[1] + theta[3] * u[0] * u[1]
solve {{
    method = rk4
    t = 0 .. 6
    steps = 300
    outputs = linspace(0.25, 6, 24)
    checkpoint = revolve(slots = 8)
}}
loss = mse(u, data(\"obs.csv\"))
train {{ {train} }}
"
    )
}

#[test]
fn adam_recovers_lotka_volterra_rates() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv("optimizer = adam(lr = 2e-2), iterations = 400, log_every = 100");
    synthesize(&compile(&src), dir.path(), Some(&TRUE), 0.0);
    let (mut run, mut model) = run_for(&src, dir.path());
    let mut calls = 0;
    let mut logged = Vec::new();
    let r = run
        .train(&mut model, |p| {
            calls += 1;
            if p.log {
                logged.push(p.iteration);
            }
            assert!(p.grad_norm.is_finite() && p.iterations == 400);
        })
        .unwrap();
    assert_eq!(calls, 400);
    assert_eq!(logged, [0, 100, 200, 300, 399]);
    let (first, last) = (r.losses[0], r.final_loss.unwrap());
    eprintln!(
        "LV fit: loss {first:.3e} → {last:.3e} ({:.1e}×), θ = {:?}",
        first / last,
        r.params
    );
    assert!(first / last >= 10.0, "{first} → {last}");
    for (p, t) in r.params.iter().zip(TRUE) {
        assert!((p - t).abs() <= 0.05 * t, "{:?} vs {TRUE:?}", r.params);
    }
}

#[test]
fn minibatches_over_output_times_train_too() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv("optimizer = adam(lr = 2e-2), iterations = 150, batch_size = 6, seed = 5");
    synthesize(&compile(&src), dir.path(), Some(&TRUE), 0.0);
    let (mut run, mut model) = run_for(&src, dir.path());
    let full0 = run.loss(&mut model, &run.setup().theta0.clone()).unwrap();
    let r = run.train(&mut model, |_| {}).unwrap();
    let again = run.train(&mut model, |_| {}).unwrap();
    assert_eq!(r, again, "the batches are drawn from the seed");
    assert!(
        r.final_loss.unwrap() < full0 / 5.0,
        "{full0} → {:?}",
        r.final_loss
    );
}

#[test]
fn sgd_with_momentum_decreases_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv("optimizer = sgd(lr = 1e-3, momentum = 0.9), iterations = 60");
    synthesize(&compile(&src), dir.path(), Some(&TRUE), 0.0);
    let (mut run, mut model) = run_for(&src, dir.path());
    let r = run.train(&mut model, |_| {}).unwrap();
    assert!(r.final_loss.unwrap() < r.losses[0] / 2.0, "{:?}", r.losses);
}

#[test]
fn a_callback_that_breaks_keeps_the_iterations_done() {
    let dir = tempfile::tempdir().unwrap();
    let src = lv("optimizer = adam(lr = 2e-2), iterations = 50");
    synthesize(&compile(&src), dir.path(), Some(&TRUE), 0.0);
    let (mut run, mut model) = run_for(&src, dir.path());
    let theta0 = run.setup().theta0.clone();
    let mut seen = Vec::new();
    let stopped = run
        .train_steps(&mut model, &theta0, |p, theta| {
            seen.push(theta.to_vec());
            if p.iteration == 2 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(stopped.losses.len(), 3);
    assert_eq!(stopped.grad_norms.len(), 3);
    assert_eq!(stopped.final_loss, None);
    // The parameters after the third step: what a three-iteration training ends with.
    let src3 = lv("optimizer = adam(lr = 2e-2), iterations = 3");
    let (mut run3, mut model3) = run_for(&src3, dir.path());
    let full = run3.train(&mut model3, |_| {}).unwrap();
    assert_eq!(stopped.params, full.params);
    assert_eq!(seen.last(), Some(&stopped.params));
    assert_ne!(stopped.params, theta0);
    assert_eq!(&stopped.losses[..], &full.losses[..]);
}

/// `du/dt = θ u²` blows up at `t = 1/θ`; SGD with a large rate on `L = −u(1)` jumps from
/// `θ = 0.1` to `θ ≈ 12`, where the solve fails in iteration 1.
fn blowup(method: &str) -> String {
    format!(
        "model blowup
state u = 1.0
param theta = 0.1
d(u)/dt = theta * u ^ 2
solve {{ method = {method}, t = 0 .. 1, steps = 50 }}
loss = -u
train {{ optimizer = sgd(lr = 10), iterations = 5 }}
"
    )
}

#[test]
fn a_solver_failure_mid_training_keeps_the_last_good_parameters() {
    for (method, runtime_error) in [
        ("rk4", "non-finite state"),
        ("backward_euler", "Newton failed"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut run, mut model) = run_for(&blowup(method), dir.path());
        let err = run.train(&mut model, |_| {}).unwrap_err();
        let msg = err.to_string();
        eprintln!("{method}: {msg}");
        assert!(
            msg.starts_with("training stopped at iteration 1: "),
            "{msg}"
        );
        assert!(
            msg.contains(runtime_error) && msg.contains("step") && msg.contains("t = "),
            "{msg}"
        );
        let Error::Training {
            iteration,
            source,
            partial,
        } = err
        else {
            panic!("{msg}")
        };
        assert_eq!(iteration, 1);
        assert!(matches!(*source, Error::Runtime(_)));
        assert_eq!(partial.params, [0.1]);
        assert_eq!(partial.losses.len(), 1);
        assert!(partial.final_loss.is_none());
    }
}
