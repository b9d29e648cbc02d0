//! Helpers shared by the driver's tests: compiling sources, synthesizing data files from the
//! model itself, finite-difference checks.
#![allow(dead_code, missing_docs)]

use std::path::Path;

use pnode_driver::data::{write_csv, write_npy};
use pnode_driver::{Run, Setup};
use pnode_ir::Interpreter;
use pnode_ir::lower::{Initializer, Outputs, Program};
use pnode_ir::runtime::IrModel;

/// Lower `src`, panicking with the diagnostics on error.
pub fn compile(src: &str) -> Program {
    let l = pnode_ir::lower::compile_source(src);
    match l.program {
        Some(p) => p,
        None => panic!("lowering failed: {:#?}", l.diagnostics),
    }
}

/// Setup, model and run for `src` with data under `dir`.
pub fn run_for(src: &str, dir: &Path) -> (Run, IrModel) {
    let p = compile(src);
    run_for_program(&p, dir)
}

pub fn run_for_program(p: &Program, dir: &Path) -> (Run, IrModel) {
    let setup = Setup::new(p, dir, None).expect("setup");
    let model = IrModel::new(&p.rhs).expect("model");
    let run = Run::new(setup, &model).expect("run");
    (run, model)
}

fn write_values(path: &Path, column: Option<u64>, rows: usize, cols: usize, v: &[f64]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let is_npy = path.extension().is_some_and(|e| e == "npy");
    match (column, is_npy) {
        (None, true) => write_npy(path, &[rows, cols], v).unwrap(),
        (None, false) => write_csv(path, cols, v).unwrap(),
        (Some(c), _) => {
            // Column `c` holds the values (one per row), the other columns are filler.
            let c = c as usize;
            let width = c + 1;
            let mut t = Vec::with_capacity(v.len() * width);
            for (i, x) in v.iter().enumerate() {
                for j in 0..width {
                    t.push(if j == c { *x } else { -(i as f64) - 0.5 });
                }
            }
            if is_npy {
                write_npy(path, &[v.len(), width], &t).unwrap();
            } else {
                write_csv(path, width, &t).unwrap();
            }
        }
    }
}

/// Write every data file `p` reads under `dir`: initial values `0.3 + 0.1 sin(i)`, output
/// times evenly inside the span, and loss data = the prediction at `theta` (default θ0) plus
/// `offset · cos(k + i)` (so that residuals are not zero).
pub fn synthesize(p: &Program, dir: &Path, theta: Option<&[f64]>, offset: f64) {
    for s in &p.states {
        if let Initializer::Data(src) = &s.init {
            let n = s.shape.len();
            let v: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * (i as f64).sin()).collect();
            write_values(&dir.join(&src.path), src.column, n, 1, &v);
        }
    }
    if let Some(solve) = &p.solve
        && let Some(Outputs::Data(src)) = &solve.outputs
    {
        let k = 7;
        let v: Vec<f64> = (1..=k)
            .map(|i| solve.t0 + (solve.t1 - solve.t0) * i as f64 / k as f64)
            .collect();
        write_values(&dir.join(&src.path), src.column, k, 1, &v);
    }
    let Some(loss) = &p.loss else { return };
    if loss.fits.is_empty() {
        return;
    }
    let mut bare = p.clone();
    bare.loss = None;
    bare.train = None;
    let (mut run, mut model) = run_for_program(&bare, dir);
    let theta = theta.map_or_else(|| run.setup().theta0.clone(), <[f64]>::to_vec);
    let traj = run
        .solve(&mut model, &theta)
        .expect("solve for synthetic data");
    for fit in &loss.fits {
        let mut it = Interpreter::new(&fit.prediction);
        let n = fit.prediction.output_len();
        let mut all = Vec::new();
        let mut out = vec![0.0; n];
        for (k, &t) in traj.times.iter().enumerate() {
            it.eval(t, traj.state(k).unwrap(), &theta, &[], &mut out)
                .unwrap();
            all.extend(
                out.iter()
                    .enumerate()
                    .map(|(i, x)| x + offset * ((k + i) as f64).cos()),
            );
        }
        let (rows, cols) = if fit.data.column.is_some() {
            (all.len(), 1)
        } else {
            (traj.times.len(), n)
        };
        write_values(&dir.join(&fit.data.path), fit.data.column, rows, cols, &all);
    }
}

/// Central differences of the loss along coordinate `i` with step `eps · max(1, |θ_i|)`.
pub fn fd_component(run: &mut Run, model: &mut IrModel, theta: &[f64], i: usize, eps: f64) -> f64 {
    let h = eps * theta[i].abs().max(1.0);
    let mut tp = theta.to_vec();
    tp[i] += h;
    let lp = run.loss(model, &tp).unwrap();
    tp[i] = theta[i] - h;
    let lm = run.loss(model, &tp).unwrap();
    (lp - lm) / (2.0 * h)
}

/// `max_i |g_i − fd_i| / ‖g‖_∞` over the components `idx` (all when empty).
pub fn fd_check(run: &mut Run, model: &mut IrModel, theta: &[f64], idx: &[usize], eps: f64) -> f64 {
    let (_, g) = run.loss_and_grad(model, theta).unwrap();
    let all: Vec<usize> = (0..theta.len()).collect();
    let idx = if idx.is_empty() { &all[..] } else { idx };
    let scale = idx.iter().map(|&i| g.dp[i].abs()).fold(0.0, f64::max);
    assert!(scale > 0.0, "zero gradient");
    let mut worst: f64 = 0.0;
    for &i in idx {
        let fd = fd_component(run, model, theta, i, eps);
        worst = worst.max((g.dp[i] - fd).abs() / scale);
    }
    worst
}

/// Directional check of `∇L · δ` against central differences along `δ` (in θ, or in u0 when
/// `in_u0`); returns the relative error.
pub fn fd_directional(
    run: &mut Run,
    model: &mut IrModel,
    theta: &[f64],
    in_u0: bool,
    eps: f64,
) -> f64 {
    let u0 = run.setup().u0.clone();
    let (_, g) = run.loss_and_grad(model, theta).unwrap();
    let (base, grad) = if in_u0 {
        (&u0, &g.du0)
    } else {
        (&theta.to_vec(), &g.dp)
    };
    let delta: Vec<f64> = (0..base.len())
        .map(|i| ((i as f64 + 1.0) * 0.754_877).sin() * base[i].abs().max(0.1))
        .collect();
    let exact: f64 = grad.iter().zip(&delta).map(|(a, b)| a * b).sum();
    let shifted =
        |s: f64| -> Vec<f64> { base.iter().zip(&delta).map(|(x, d)| x + s * d).collect() };
    let (lp, lm) = if in_u0 {
        run.set_initial_state(&shifted(eps)).unwrap();
        let lp = run.loss(model, theta).unwrap();
        run.set_initial_state(&shifted(-eps)).unwrap();
        let lm = run.loss(model, theta).unwrap();
        run.set_initial_state(&u0).unwrap();
        (lp, lm)
    } else {
        (
            run.loss(model, &shifted(eps)).unwrap(),
            run.loss(model, &shifted(-eps)).unwrap(),
        )
    };
    let fd = (lp - lm) / (2.0 * eps);
    (exact - fd).abs() / exact.abs().max(1e-300)
}
