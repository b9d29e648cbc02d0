//! Gradient timing for the implicit integrators on Robertson's kinetics, one JSON line per run,
//! for the side-by-side comparison with diffrax (`scripts/bench-implicit.sh`).
//!
//! Problem: Robertson (k = 0.04, 3e7, 1e4; u0 = [1, 0, 0]) on `0, 1e-6, …, 10` — 1000 steps,
//! log-spaced from 1e-6 — with backward Euler, Crank–Nicolson (the θ = ½ tableau as a DIRK, as
//! in diffrax) or Kværnø's ESDIRK3, and the loss `L = 1e4·y₂(10) + y₃(10)`; the gradient is
//! `dL/du0` and `dL/dk` by the discrete adjoint under store-all checkpointing. The stage solver
//! is the built-in Newton with dense LU, or PETSc SNES/KSP (`--backend petsc`, feature `petsc`).
//!
//! `cargo run --release -p robertson-gradients --features petsc --bin implicit-bench --
//!  --method cn --backend builtin --reps 20`

use std::time::Instant;

use anyhow::{Context, Result, bail};
use pnode_runtime::implicit::LinearSolver;
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::Robertson;
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{
    Checkpointing, DirkStepper, DirkTableau, NewtonConfig, Solver, ThetaStepper, TimeGrid,
};

/// Loss weights of `L = Σ w_i y_i(10)`.
const WEIGHTS: [f64; 3] = [0.0, 1e4, 1.0];

struct Args {
    method: String,
    backend: String,
    reps: usize,
    steps: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        method: "cn".into(),
        backend: "builtin".into(),
        reps: 10,
        steps: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--method" => args.method = value()?,
            "--backend" => args.backend = value()?,
            "--reps" => args.reps = value()?.parse().context("--reps")?,
            "--steps" => args.steps = value()?.parse().context("--steps")?,
            "--help" | "-h" => {
                println!(
                    "implicit-bench --method be|cn|esdirk3 --backend builtin|petsc [--reps N] [--steps N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.reps == 0 || args.steps < 2 {
        bail!("--reps must be positive and --steps at least 2");
    }
    Ok(args)
}

/// `0` followed by `steps` points log-spaced on `[1e-6, 10]`: `steps` steps.
fn log_grid(steps: usize) -> Vec<f64> {
    let mut t = vec![0.0];
    let n = (steps - 1) as f64;
    t.extend((0..steps).map(|k| 1e-6 * f64::powf(1e7, k as f64 / n)));
    t
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let linear = match args.backend.as_str() {
        "builtin" => LinearSolver::Dense,
        "petsc" => LinearSolver::Petsc,
        other => bail!("unknown backend {other} (builtin, petsc)"),
    };
    let newton = NewtonConfig {
        atol: 1e-10,
        rtol: 1e-10,
        linear,
        ..NewtonConfig::default()
    };
    let grid = TimeGrid::from_times(&log_grid(args.steps))?;
    let model = Robertson::new();
    match args.method.as_str() {
        "be" => {
            let stepper = ThetaStepper::backward_euler(3, 3, newton)?;
            let solver = Solver::new(stepper, &model, grid, &[10.0], Checkpointing::StoreAll)?;
            run(&args, solver)
        }
        "cn" | "esdirk3" => {
            let tableau = if args.method == "cn" {
                DirkTableau::theta(0.5)?
            } else {
                DirkTableau::esdirk3()
            };
            let stepper = DirkStepper::new(tableau, 3, 3, newton)?;
            let solver = Solver::new(stepper, &model, grid, &[10.0], Checkpointing::StoreAll)?;
            run(&args, solver)
        }
        other => bail!("unknown method {other} (be, cn, esdirk3)"),
    }
}

fn run<S: AdjointStepper<Robertson>>(args: &Args, mut solver: Solver<S>) -> Result<()>
where
    Robertson: RhsVjp,
{
    let mut model = Robertson::new();
    let u0 = Robertson::default_u0();
    let k = Robertson::default_params();
    let loss = |u: &[f64], dl: &mut [f64]| {
        dl.copy_from_slice(&WEIGHTS);
        u.iter().zip(&WEIGHTS).map(|(a, b)| a * b).sum::<f64>()
    };
    // Warm-up (and the values reported).
    let (value, grad) = solver.value_and_grad(&mut model, &u0, &k, loss)?;
    let y = solver.outputs().to_vec();
    let stats = solver.stats();
    let mut forward_times = Vec::with_capacity(args.reps);
    let mut gradient_times = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        let start = Instant::now();
        solver.solve(&mut model, &u0, &k)?;
        forward_times.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let (v, g) = solver.value_and_grad(&mut model, &u0, &k, loss)?;
        gradient_times.push(start.elapsed().as_secs_f64());
        if v.to_bits() != value.to_bits() || g.dp != grad.dp {
            bail!("repeated gradients differ: the run is not deterministic");
        }
    }
    let json = serde_json::json!({
        "side": "pnode",
        "method": args.method,
        "backend": args.backend,
        "steps": args.steps,
        "reps": args.reps,
        "loss": value,
        "y_final": y,
        "grad_u0": grad.du0,
        "grad_k": grad.dp,
        "forward_times": forward_times,
        "gradient_times": gradient_times,
        "stats": stats,
    });
    println!("{json}");
    Ok(())
}
