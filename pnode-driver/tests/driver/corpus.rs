//! Every model of the shared corpus (`tests/corpus/ok`) through the driver, with its data
//! files synthesized from the model itself: it sets up, solves to finite outputs (or fails as
//! it must), and its loss gradient matches central differences in θ and in `u0`; models with
//! a known answer are checked against it, models with a train block train a few iterations.

use std::path::{Path, PathBuf};

use crate::common::{compile, fd_directional, run_for_program, synthesize};
use pnode_driver::{Error, Setup, Trajectory};
use pnode_testkit::corpus::{self, Kind};

fn corpus() -> Vec<PathBuf> {
    corpus::paths(Kind::Ok)
}

/// What a model's solve must give: `(trajectory, loss)` checked by the closure.
type Check = fn(&Trajectory, Option<f64>, &Setup);

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

/// Known answers.
fn expected(name: &str) -> Option<Check> {
    let e1 = (-1.0f64).exp();
    Some(match name {
        "minimal" => |t, _, _| assert!(close(t.states[0], (-1.0f64).exp(), 1e-9)),
        "comments" => |t, _, _| assert!(close(t.states[0], 0.9f64.powi(10), 1e-14)),
        "no_solve" => |t, _, s| {
            assert!(s.notes[0].starts_with("no `solve` block"));
            assert_eq!(t.times, [1.0]);
            assert!(close(t.states[0], (-0.1f64).exp(), 1e-9));
            assert!(close(t.states[1], 2.0 * (-0.2f64).exp(), 1e-9));
        },
        // Heun written out: amplification 1 + z + z²/2 at z = −2/8 = 0.78125, 8 steps.
        "user_tableau" => |t, _, _| assert!(close(t.states[0], 0.78125f64.powi(8), 1e-14)),
        "esdirk3" => |t, l, _| {
            assert!((t.states[0] - (-1.0f64).exp()).abs() < 1e-4);
            assert_eq!(l, Some(t.states[0]));
        },
        // A = −0.1 I + 2 J: ‖u(5)‖ = e^{−0.5}, twice.
        "linear_system" => |t, l, _| {
            assert!(close(l.unwrap(), 2.0 * (-1.0f64).exp(), 1e-8));
            assert_eq!(t.states[..2], t.states[2..4]);
        },
        // Free fall: x(t) = t, z(t) = 1 − g t²/2; Σ_k x(t_k)² over t_k = k/10 is 3.85 (RK4 is
        // exact on cubic polynomials).
        "several_states" => |t, l, _| {
            assert!(close(l.unwrap(), 3.85, 1e-12), "{l:?}");
            let end = t.state(10).unwrap();
            assert!(close(end[0], 1.0, 1e-12) && close(end[2], 1.0 - 9.81 / 2.0, 1e-12));
        },
        "literals" => |t, _, _| {
            assert_eq!(t.times, [0.5, 1.0]);
            let u0 = [1.0, 1.5, 1e-3, 2.5e7];
            for (a, b) in t.state(1).unwrap().iter().zip(u0) {
                assert!(close(*a, b, 1e-14), "{a} vs {b}");
            }
        },
        // Robertson at t = 100: y₃ ≈ 0.38276 (Hairer–Wanner II reference values).
        "robertson" => |t, l, _| {
            let y = t.state(0).unwrap();
            assert!((y[2] - 0.382_76).abs() < 2e-3, "{y:?}");
            assert!(
                (y.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "mass conservation {y:?}"
            );
            assert_eq!(l, Some(y[2] * y[2]));
        },
        // u₂ stays 0, u₁ = e^{−1000 t}.
        "trbdf2" => |t, _, _| {
            assert_eq!(t.states[1], 0.0);
            assert!(t.states[0].abs() < 1e-8);
        },
        "indexing" => |t, l, _| {
            assert!(t.states.iter().all(|x| *x == 0.0));
            assert_eq!(l, Some(0.0));
        },
        // x' = −x over 0 .. 1 from the synthesized x0: the loss is a closed form in e^{−1}.
        "sum_axis" => |t, l, s| {
            let x: Vec<f64> = s.u0.iter().map(|v| v * (-1.0f64).exp()).collect();
            for (a, b) in t.states.iter().zip(&x) {
                assert!(close(*a, *b, 1e-6));
            }
            let means: Vec<f64> = (0..3)
                .map(|j| (0..8).map(|i| x[i * 3 + j]).sum::<f64>() / 8.0)
                .collect();
            let want = means.iter().map(|m| m * m).sum::<f64>() + x[0] + x[1] + x[2];
            assert!(close(l.unwrap(), want, 1e-6), "{l:?} vs {want}");
        },
        _ => {
            let _ = e1;
            return None;
        }
    })
}

#[test]
fn every_corpus_model_runs_with_exact_gradients() {
    let mut checked = 0;
    let mut worst: (f64, String) = (0.0, String::new());
    for path in corpus() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let src = std::fs::read_to_string(&path).unwrap();
        let mut program = compile(&src);
        if let Some(t) = &mut program.train {
            t.iterations = Some(3);
        }
        let dir = tempfile::tempdir().unwrap();
        synthesize(&program, dir.path(), None, 0.1);
        let setup = Setup::new(&program, dir.path(), None);
        if name == "theta_method" {
            // `linear_solver = petsc` without the runtime's feature.
            if let Err(e) = setup {
                assert!(e.to_string().contains("petsc"), "{e}");
                continue;
            }
        }
        setup.unwrap_or_else(|e| panic!("{name}: {e}"));
        let (mut run, mut model) = run_for_program(&program, dir.path());
        let theta = run.setup().theta0.clone();
        let traj = match run.solve(&mut model, &theta) {
            Ok(t) => t,
            Err(Error::Runtime(pnode_runtime::Error::NonFiniteState { step, t, .. }))
                if name == "precedence" || name == "pinwheel" =>
            {
                // precedence: x' = x⁸ + x⁶ + 3x + 2/x from x = 1 blows up before t = 1/7;
                // pinwheel: x' = x² from x = 8 blows up at t = 1/8 (default grid h = 0.01).
                assert!(step >= 1 && t <= 1.0, "{name}: {step} {t}");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        assert!(traj.states.iter().all(|x| x.is_finite()), "{name}");
        assert_eq!(traj.states.len(), traj.times.len() * program.state_len());
        let loss = if program.loss.is_some() {
            let l = run.loss(&mut model, &theta).unwrap();
            let (l2, g) = run.loss_and_grad(&mut model, &theta).unwrap();
            assert_eq!(
                l, l2,
                "{name}: the checkpointed forward gives the same loss"
            );
            assert!(g.dp.iter().chain(&g.du0).all(|x| x.is_finite()), "{name}");
            // Off θ0 and u0 by 1 %: zero-initialized states and biases put ReLUs exactly at
            // their kinks (odenet_image: relu(norm(0) + 0)), where no derivative exists.
            let shift = |v: &[f64]| -> Vec<f64> {
                v.iter()
                    .enumerate()
                    .map(|(i, x)| x + 0.01 * (1.3 * i as f64 + 0.5).sin() * x.abs().max(1.0))
                    .collect()
            };
            let theta = shift(&theta);
            let u0 = shift(&run.setup().u0);
            run.set_initial_state(&u0).unwrap();
            // Central differences straddle a ReLU kink with a probability proportional to the
            // step: smaller steps for models with ReLUs (thousands of them in odenet_image).
            let eps = if src.contains("relu") { 1e-8 } else { 1e-6 };
            let mut errs = vec![];
            if !theta.is_empty() && g.dp.iter().any(|x| *x != 0.0) {
                errs.push((
                    "θ",
                    fd_directional(&mut run, &mut model, &theta, false, eps),
                ));
            }
            if g.du0.iter().any(|x| *x != 0.0) {
                errs.push((
                    "u0",
                    fd_directional(&mut run, &mut model, &theta, true, eps),
                ));
            }
            for (what, e) in errs {
                eprintln!("{name:>18} {what:>2}: relative FD error {e:.2e}");
                assert!(e <= 1e-6, "{name} {what}: FD error {e:e}");
                if e > worst.0 {
                    worst = (e, format!("{name} {what}"));
                }
            }
            Some(l)
        } else {
            None
        };
        if let Some(check) = expected(&name) {
            check(
                &traj,
                loss,
                &Setup::new(&program, dir.path(), None).unwrap(),
            );
        }
        if program.train.is_some() {
            let r = run
                .train(&mut model, |_| {})
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.losses.len(), 3, "{name}");
            assert!(r.final_loss.unwrap().is_finite());
            assert!(r.losses.iter().all(|l| l.is_finite()), "{name}");
            // (Not every model descends in 3 steps: the spiral's first Adam steps over 25 time
            // units overshoot from a random start.)
            if name == "lotka_volterra" || name == "hybrid_physics" {
                assert!(
                    r.final_loss.unwrap() < r.losses[0],
                    "{name}: {:?}",
                    r.losses
                );
            }
        }
        checked += 1;
    }
    eprintln!("worst corpus FD error: {:.2e} ({})", worst.0, worst.1);
    // All but precedence and pinwheel (which blow up) and theta_method (PETSc, when the
    // runtime is built without it).
    assert!(checked >= 28, "{checked} models checked");
}

#[test]
fn the_same_seed_gives_the_same_initial_values() {
    let src = corpus::file(Kind::Ok, "initializers").source;
    let p = compile(&src);
    let dir = Path::new(".");
    let a = Setup::new(&p, dir, None).unwrap();
    let b = Setup::new(&p, dir, Some(0)).unwrap();
    let c = Setup::new(&p, dir, Some(1)).unwrap();
    assert_eq!(a.theta0, b.theta0);
    assert_ne!(a.theta0, c.theta0);
    // W[2,2] = normal(0.1), b = zeros, V = xavier (a = √(6/4)), c, k literal.
    assert_eq!(
        p.params.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
        ["W", "b", "V", "c", "k"]
    );
    let th = &a.theta0;
    assert!(th[..4].iter().all(|x| x.abs() < 0.6 && *x != 0.0));
    assert_eq!(th[4..6], [0.0, 0.0]);
    assert!(th[6..10].iter().all(|x| x.abs() <= 1.5f64.sqrt()));
    assert_eq!(th[10..], [0.5, 0.25, 0.5]);
}
