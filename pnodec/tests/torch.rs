//! The libtorch backend of the `pnodec` binary (feature `torch`): `pnodec grad` on the
//! convolution corpus model runs on libtorch when no `--backend` is given (with a note, since
//! the JIT does not lower convolutions), and its gradient agrees with the interpreter's
//! (`--backend interp`) to ≤ 1e-12 and with central differences of the interpreter-backed loss
//! through `pnode-driver` to ≤ 1e-6 relative to ‖g‖∞ (every u0 component and 16 of θ).
#![allow(missing_docs)]

use pnode_driver::{Run, Setup};
use pnode_ir::lower::{Program, compile_source};
use pnode_ir::runtime::IrModel;
use pnode_testkit::corpus::{self, Kind};
use pnode_testkit::numeric::{max_abs, rel_max};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    corpus::workspace_root()
}

fn pnodec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pnodec"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn grad_json(args: &[&str]) -> (Value, String) {
    let out = pnodec(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        text(&out.stderr),
    )
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn flat_grad(report: &Value, program: &Program) -> Vec<f64> {
    let mut g = vec![0.0; program.param_len()];
    for p in &program.params {
        let v = floats(&report["grad_params"][&p.name]);
        assert_eq!(v.len(), p.shape.len(), "{}", p.name);
        g[p.offset..p.offset + v.len()].copy_from_slice(&v);
    }
    g
}

#[test]
fn grad_of_a_convolution_model_runs_on_libtorch_and_matches_finite_differences() {
    let file = corpus::path(Kind::Ok, "conv_block");
    let path = file.to_str().unwrap();
    let (torch, stderr) = grad_json(&["grad", path]);
    assert_eq!(torch["backend"], "torch");
    assert!(
        stderr.contains("note: the JIT does not lower `") && stderr.contains("with libtorch"),
        "{stderr}"
    );
    let (explicit, _) = grad_json(&["grad", path, "--backend", "torch"]);
    let (interp, _) = grad_json(&["grad", path, "--backend", "interp"]);

    let program = compile_source(&std::fs::read_to_string(&file).unwrap())
        .program
        .unwrap();
    let (g, gu) = (flat_grad(&torch, &program), floats(&torch["grad_u0"]));
    assert_eq!(g, flat_grad(&explicit, &program));
    let e_interp =
        rel_max(&g, &flat_grad(&interp, &program)).max(rel_max(&gu, &floats(&interp["grad_u0"])));
    assert!(e_interp <= 1e-12, "torch vs interp {e_interp:e}");

    // Central differences of the interpreter-backed loss (same seed, same θ0 and u0).
    let setup = Setup::new(&program, &corpus::dir(Kind::Ok), None).unwrap();
    let (theta, u0) = (setup.theta0.clone(), setup.u0.clone());
    let mut model = IrModel::new(&program.rhs).unwrap();
    let mut run = Run::new(setup, &model).unwrap();
    let mut fd_err: f64 = 0.0;
    let n = theta.len();
    for i in (0..16).map(|k| k * (n - 1) / 15) {
        let h = 1e-6 * theta[i].abs().max(1.0);
        let mut t = theta.clone();
        t[i] = theta[i] + h;
        let lp = run.loss(&mut model, &t).unwrap();
        t[i] = theta[i] - h;
        let lm = run.loss(&mut model, &t).unwrap();
        fd_err = fd_err.max(((lp - lm) / (2.0 * h) - g[i]).abs() / max_abs(&g));
    }
    for i in 0..u0.len() {
        let h = 1e-6 * u0[i].abs().max(1.0);
        let mut u = u0.clone();
        u[i] = u0[i] + h;
        run.set_initial_state(&u).unwrap();
        let lp = run.loss(&mut model, &theta).unwrap();
        u[i] = u0[i] - h;
        run.set_initial_state(&u).unwrap();
        let lm = run.loss(&mut model, &theta).unwrap();
        fd_err = fd_err.max(((lp - lm) / (2.0 * h) - gu[i]).abs() / max_abs(&gu));
    }
    assert!(
        fd_err <= 1e-6,
        "torch gradient vs central differences {fd_err:e}"
    );
    eprintln!(
        "conv_block: torch vs interp {e_interp:.1e}, vs FD {fd_err:.1e}; grad_ms torch {} \
         interp {}",
        torch["grad_ms"], interp["grad_ms"]
    );
}

/// A libtorch exception during a solve reaches the user with libtorch's own message, the step,
/// the time and the phase (the fault is injected through `PNODE_TORCH_FAIL_RHS`: that RHS
/// evaluation runs a matrix product libtorch rejects).
#[test]
fn a_libtorch_exception_reaches_the_user_with_its_step_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("decay.pode");
    std::fs::write(
        &file,
        "model decay\n\nstate u[2] = [1.0, 0.5]\nparam k = 0.3\n\nd(u)/dt = -k * u\n\n\
         solve {\n    method = rk4\n    t = 0 .. 2\n    steps = 8\n}\n\nloss = sum(u ^ 2)\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    // Without the fault the model runs on libtorch.
    grad_json(&["grad", path, "--backend", "torch"]);
    // RK4 makes 4 RHS evaluations a step: evaluation 13 is stage 2 (c = ½) of step 3, at
    // t = 0.75 + 0.125.
    for command in ["grad", "solve"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pnodec"))
            .args([command, path, "--backend", "torch"])
            .current_dir(dir.path())
            .env(pnodec::torch::FAULT_VAR, "13")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(
                "the model's RHS failed in step 3 at t = 0.875 (forward sweep): libtorch: mat1 \
                 and mat2 shapes cannot be multiplied (1x2 and 3x3)"
            ),
            "{command}: {stderr}"
        );
        // libtorch's C++ stack trace is not shown.
        assert!(!stderr.contains("Exception raised from"), "{stderr}");
    }
}
