//! The driver's loss gradients against central finite differences of the same discrete solve.

use crate::common::{compile, fd_check, fd_directional, run_for, synthesize};

const LV: &str = "model lv
state u[2] = [1.0, 1.0]
param theta[4] = [1.5, 1.0, 3.0, 1.0]
d(u[0])/dt = theta[0] * u[0] - theta[1] * u[0] * u[1]
d(u[1])/dt = -theta[2] * u[1] + theta[3] * u[0] * u[1]
solve {
    method = rk4
    t = 0 .. 5
    steps = 200
    outputs = linspace(0, 5, 11)
    checkpoint = revolve(slots = 6)
}
";

/// Worst relative errors are printed (run with `--nocapture`) for the report.
fn check(name: &str, err: f64, tol: f64) {
    eprintln!("{name}: relative FD error {err:.2e}");
    assert!(err <= tol, "{name}: FD error {err:e} > {tol:e}");
}

#[test]
fn lotka_volterra_mse_fit_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{LV}loss = mse(u, data(\"obs.csv\"))\n");
    synthesize(&compile(&src), dir.path(), Some(&[1.5, 1.0, 3.0, 1.0]), 0.0);
    let (mut run, mut model) = run_for(&src, dir.path());
    let theta = [1.3, 0.9, 3.2, 1.1];
    check(
        "LV mse θ",
        fd_check(&mut run, &mut model, &theta, &[], 1e-6),
        1e-6,
    );
    check(
        "LV mse u0",
        fd_directional(&mut run, &mut model, &theta, true, 1e-6),
        1e-6,
    );
    // At the parameters that generated the data the fit is exact.
    let (l, g) = run
        .loss_and_grad(&mut model, &[1.5, 1.0, 3.0, 1.0])
        .unwrap();
    assert!(l < 1e-28, "{l}");
    assert!(g.dp.iter().all(|x| x.abs() < 1e-12), "{:?}", g.dp);
}

#[test]
fn theta_dependent_loss_terms_add_their_explicit_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!(
        "{LV}loss = 2 * mse(u, data(\"obs.npy\")) + 1e-2 * sum(theta ^ 2) \
         - 0.1 * sum(theta[0:2] * u) + mae(u[1], data(\"u1.csv\"))\n"
    );
    synthesize(
        &compile(&src),
        dir.path(),
        Some(&[1.5, 1.0, 3.0, 1.0]),
        0.05,
    );
    let (mut run, mut model) = run_for(&src, dir.path());
    let theta = [1.4, 1.1, 2.9, 0.95];
    check(
        "LV regularized θ",
        fd_check(&mut run, &mut model, &theta, &[], 1e-6),
        1e-6,
    );
    // The regularizer alone: Σ_k 1e-2 ‖θ‖² over K = 11 outputs has gradient 0.22 θ.
    let src2 = format!("{LV}loss = 1e-2 * sum(theta ^ 2)\n");
    let (mut run2, mut model2) = run_for(&src2, dir.path());
    let (l, g) = run2.loss_and_grad(&mut model2, &theta).unwrap();
    let sq: f64 = theta.iter().map(|x| x * x).sum();
    assert!((l - 0.11 * sq).abs() < 1e-14);
    for (gi, ti) in g.dp.iter().zip(theta) {
        assert!((gi - 0.22 * ti).abs() < 1e-14, "{gi} vs {}", 0.22 * ti);
    }
}

fn robertson(method: &str) -> String {
    format!(
        "model robertson
state y[3] = [1.0, 0.0, 0.0]
param k[3] = [0.04, 3e7, 1e4]
d(y[0])/dt = -k[0] * y[0] + k[2] * y[1] * y[2]
d(y[1])/dt = k[0] * y[0] - k[2] * y[1] * y[2] - k[1] * y[1] ^ 2
d(y[2])/dt = k[1] * y[1] ^ 2
solve {{
    method = {method}
    t = 0 .. 40
    steps = logspace(1e-5, 40, 60)
    outputs = [0.01, 0.5, 4, 40]
    newton_tol = 1e-13
    max_iters = 30
    checkpoint = revolve(slots = 5)
}}
loss = 1e4 * mse(y, data(\"obs.csv\"))
"
    )
}

#[test]
fn robertson_implicit_gradients_match_finite_differences() {
    for method in ["crank_nicolson", "esdirk3"] {
        let dir = tempfile::tempdir().unwrap();
        let src = robertson(method);
        synthesize(&compile(&src), dir.path(), None, 0.0);
        let (mut run, mut model) = run_for(&src, dir.path());
        // The four output times that are not grid points were inserted.
        assert!(run.setup().notes.iter().any(|n| n.contains("inserted")));
        assert_eq!(run.setup().grid.n_steps(), Some(63));
        let theta = [0.045, 2.7e7, 1.1e4];
        check(
            &format!("Robertson {method} θ"),
            fd_check(&mut run, &mut model, &theta, &[], 1e-6),
            1e-6,
        );
        check(
            &format!("Robertson {method} u0"),
            fd_directional(&mut run, &mut model, &theta, true, 1e-7),
            1e-6,
        );
    }
}

#[test]
fn spiral_mlp_mae_gradient_matches_finite_differences() {
    let dir = tempfile::tempdir().unwrap();
    let src = "model spiral
state u[2] = [2.0, 0.0]
layer net = mlp([2, 16, 2], activation = tanh)
d(u)/dt = net(u ^ 3)
solve {
    method = dopri5
    t = 0 .. 2
    steps = 100
    outputs = linspace(0, 2, 21)
    checkpoint = budget(vectors = 40)
}
loss = mae(u, data(\"spiral.csv\"))
train { optimizer = adam(lr = 1e-3), seed = 3 }
";
    synthesize(&compile(src), dir.path(), None, 0.1);
    let (mut run, mut model) = run_for(src, dir.path());
    let theta = run.setup().theta0.clone();
    assert_eq!(theta.len(), 2 * 16 + 16 + 16 * 2 + 2);
    let idx: Vec<usize> = (0..theta.len()).step_by(5).collect();
    check(
        "spiral mae θ",
        fd_check(&mut run, &mut model, &theta, &idx, 1e-6),
        1e-6,
    );
    check(
        "spiral mae θ·δ",
        fd_directional(&mut run, &mut model, &theta, false, 1e-6),
        1e-6,
    );
}

#[test]
fn minibatch_losses_restrict_the_sums_to_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("{LV}loss = mse(u, data(\"obs.csv\")) + 0.5 * sum(theta * theta) * u[0]\n");
    synthesize(&compile(&src), dir.path(), Some(&[1.5, 1.0, 3.0, 1.0]), 0.1);
    let (mut run, mut model) = run_for(&src, dir.path());
    let theta = [1.4, 1.1, 2.9, 0.95];
    let all: Vec<usize> = (0..11).collect();
    let full = run.loss_and_grad(&mut model, &theta).unwrap();
    assert_eq!(
        run.loss_and_grad_batch(&mut model, &theta, Some(&all))
            .unwrap(),
        full
    );
    assert_eq!(run.loss(&mut model, &theta).unwrap(), full.0);
    // Batch {k}: the fit is the mean over that time only, the other term is scaled by K.
    let traj = run.solve(&mut model, &theta).unwrap();
    let data = &run.setup().fits[0].data;
    let k = 4;
    let u = traj.state(k).unwrap();
    let fit = ((u[0] - data[2 * k]).powi(2) + (u[1] - data[2 * k + 1]).powi(2)) / 2.0;
    let sq: f64 = theta.iter().map(|x| x * x).sum();
    let (l, _) = run
        .loss_and_grad_batch(&mut model, &theta, Some(&[k]))
        .unwrap();
    assert!(
        (l - (fit + 11.0 * 0.5 * sq * u[0])).abs() < 1e-12 * l.abs(),
        "{l}"
    );
    assert!(
        run.loss_and_grad_batch(&mut model, &theta, Some(&[11]))
            .is_err()
    );
}

#[test]
fn errors_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<pnode_driver::Error>();
    send_sync::<pnode_driver::Run>();
}
