//! pnode side of the JIT benchmark against diffrax and torchdiffeq (`scripts/bench-jit.sh`).
//!
//! Two problems, classic RK4 (`Tableau::rk4()`), uniform steps, store-all, exact discrete
//! gradient `dL/du0` and `dL/dθ`, f64, one thread:
//!
//! * `lv`: Lotka–Volterra `f = [α x − β x y, δ x y − γ y]`, `[α, β, δ, γ] = [1.5, 1, 3, 1]`,
//!   `u0 = [1, 1]`, 1000 steps to t = 10, loss `L = Σ_i u_i(10)`;
//! * `mlp`: `f(u) = W3 tanh(W2 tanh(W1 u + b1) + b2) + b3` (widths 2-64-64-2) on a batch of 64
//!   (state `u` = 64 × 2 row-major, 4610 parameters, layer by layer `W` (out × in, row-major)
//!   then `b`), Glorot weights from seed 0 and small fixed biases, 100 steps to t = 1, loss
//!   `L = ½ Σ_i u_i(1)²`.
//!
//! Contestants: the hand-written closure models (`pnode_runtime::problems::{LotkaVolterra, Mlp}`)
//! through `Solver::explicit`, the IR compiled by Cranelift (`JitModel`) through the same
//! solver, and the fused RK4 step (`JitErkStepper`) through `Solver::new`. The IR of the MLP is
//! `pnode_ir::layers::mlp`, the network of `benches/mlp.rs`. Each contestant runs a few warm-up
//! gradients, then `--reps` timed ones (one `Instant` per gradient, and the thread's CPU time
//! over all of them from `CLOCK_THREAD_CPUTIME_ID`, which on a shared machine leaves out
//! the time spent waiting for the core). The JIT compile times are
//! the median of 7 fresh compilations.
//!
//! Prints one JSON line per problem with the inputs (`u0`, `p`: the Python scripts read them),
//! the loss and gradient of the fused JIT path, every contestant's times and the largest relative
//! gradient difference of each contestant to the fused path.
//!
//! `cargo run --release -p pnode-jit --example side_by_side -- [--problem lv|mlp|all]
//! [--reps-lv N] [--reps-mlp N]`

use pnode_testkit::cpu::thread_cpu_time;
use std::error::Error;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use pnode_ir::layers::{Activation, mlp, mlp_param_len};
use pnode_ir::{Builder, Function, Layout};
use pnode_jit::{JitErkStepper, JitModel};
use pnode_runtime::model::RhsVjp;
use pnode_runtime::problems::{LotkaVolterra, Mlp};
use pnode_runtime::stepper::AdjointStepper;
use pnode_runtime::{Checkpointing, Gradient, Solver, Tableau, TimeGrid};

type Res<T> = Result<T, Box<dyn Error>>;

/// `f = [α x − β x y, δ x y − γ y]` as IR (the IR of `benches/lotka_volterra.rs`).
fn lv_ir() -> Res<Function> {
    let mut b = Builder::new(Layout::new(2, 4));
    let x = b.state(0, [])?;
    let y = b.state(1, [])?;
    let mut k = Vec::with_capacity(4);
    for i in 0..4 {
        k.push(b.param(i, [])?);
    }
    let xy = b.mul(x, y)?;
    let ax = b.mul(k[0], x)?;
    let bxy = b.mul(k[1], xy)?;
    let f0 = b.sub(ax, bxy)?;
    let dxy = b.mul(k[2], xy)?;
    let gy = b.mul(k[3], y)?;
    let f1 = b.sub(dxy, gy)?;
    let f = b.stack(&[f0, f1], 0)?;
    Ok(b.finish_rhs(&[f])?)
}

/// The tanh MLP with `widths` on `batch` samples as IR (the IR of `benches/mlp.rs`).
fn mlp_ir(widths: &[usize], batch: usize) -> Res<Function> {
    let mut b = Builder::new(Layout::new(batch * widths[0], mlp_param_len(widths)));
    let u = b.state(0, [batch, widths[0]])?;
    let (y, _) = mlp(&mut b, u, widths, 0, Activation::Tanh)?;
    let y = b.flatten(y)?;
    Ok(b.finish_rhs(&[y])?)
}

/// `L = Σ_i u_i`, `∂L/∂u_i = 1`.
fn sum_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.fill(1.0);
    out.iter().sum()
}

/// `L = ½ Σ_i u_i²`, `∂L/∂u_i = u_i`.
fn half_square_loss(out: &[f64], dl: &mut [f64]) -> f64 {
    dl.copy_from_slice(out);
    0.5 * out.iter().map(|v| v * v).sum::<f64>()
}

/// One problem: IR, grid, inputs, loss.
struct Problem {
    name: &'static str,
    f: Function,
    grid: TimeGrid,
    u0: Vec<f64>,
    p: Vec<f64>,
    loss: fn(&[f64], &mut [f64]) -> f64,
    reps: usize,
}

/// Loss, gradient and the times of the timed gradients of one contestant.
struct Run {
    name: &'static str,
    loss: f64,
    grad: Gradient,
    /// Wall-clock time of each timed gradient.
    times: Vec<Duration>,
    /// CPU time of this thread over all timed gradients, divided by their number (`None`
    /// where the thread CPU clock is unavailable).
    cpu_per_rep: Option<Duration>,
}

/// Runs `WARMUP` untimed and `reps` timed gradients of `model` through `solver`.
fn time_gradient<S: AdjointStepper<M>, M: RhsVjp>(
    name: &'static str,
    solver: &mut Solver<S>,
    model: &mut M,
    pb: &Problem,
) -> Res<Run> {
    const WARMUP: usize = 3;
    let mut last = None;
    for _ in 0..WARMUP {
        last = Some(solver.value_and_grad(model, &pb.u0, &pb.p, pb.loss)?);
    }
    let mut times = Vec::with_capacity(pb.reps);
    let cpu_start = thread_cpu_time();
    for _ in 0..pb.reps {
        let start = Instant::now();
        let r = solver.value_and_grad(model, &pb.u0, &pb.p, pb.loss)?;
        times.push(start.elapsed());
        last = Some(r);
    }
    let cpu_per_rep = match (cpu_start, thread_cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).div_f64(pb.reps as f64)),
        _ => None,
    };
    let (loss, grad) = last.ok_or("no gradient computed")?;
    Ok(Run {
        name,
        loss,
        grad,
        times,
        cpu_per_rep,
    })
}

/// Median of 7 values of `f`, in milliseconds.
fn median_ms(mut f: impl FnMut() -> Res<Duration>) -> Res<f64> {
    let mut v = Vec::with_capacity(7);
    for _ in 0..7 {
        v.push(f()?);
    }
    v.sort();
    Ok(v[3].as_secs_f64() * 1e3)
}

/// Largest `|a_i − b_i|` over the largest `|b_i|` (both gradients concatenated).
fn rel_diff(a: &Gradient, b: &Gradient) -> f64 {
    let xs = a.du0.iter().chain(&a.dp);
    let ys: Vec<f64> = b.du0.iter().chain(&b.dp).copied().collect();
    let num = xs.zip(&ys).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let den = ys.iter().map(|y| y.abs()).fold(0.0, f64::max);
    num / den
}

fn json_array(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(","))
}

fn secs(v: &[Duration]) -> Vec<f64> {
    v.iter().map(Duration::as_secs_f64).collect()
}

/// Times every contestant on `pb` with the hand-written model `hand` and prints the JSON line.
fn bench<H: RhsVjp + Clone>(pb: &Problem, hand: &H, extra: &str) -> Res<()> {
    let t_end = pb.grid.t(pb.grid.n_steps());
    let model_ms = median_ms(|| Ok(JitModel::new(&pb.f)?.compile_time()))?;
    let fused_ms = median_ms(|| Ok(JitErkStepper::new(Tableau::rk4(), &pb.f)?.compile_time()))?;

    let mut hand = hand.clone();
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &hand,
        pb.grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )?;
    let hand_run = time_gradient("hand-written", &mut s, &mut hand, pb)?;

    let mut jit = JitModel::new(&pb.f)?;
    let mut s = Solver::explicit(
        Tableau::rk4(),
        &jit,
        pb.grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )?;
    let model_run = time_gradient("jit-model", &mut s, &mut jit, pb)?;

    let fused = JitErkStepper::new(Tableau::rk4(), &pb.f)?;
    let mut s = Solver::new(
        fused,
        &jit,
        pb.grid.clone(),
        &[t_end],
        Checkpointing::StoreAll,
    )?;
    let fused_run = time_gradient("jit-fused", &mut s, &mut jit, pb)?;

    let runs = [&hand_run, &model_run, &fused_run];
    let mut contestants = String::new();
    for (i, r) in runs.iter().enumerate() {
        if i > 0 {
            contestants.push(',');
        }
        write!(
            contestants,
            "\"{}\":{{\"loss\":{:?},\"times\":{},\"cpu_s_per_rep\":{},\
             \"grad_rel_diff_to_fused\":{:?}}}",
            r.name,
            r.loss,
            json_array(&secs(&r.times)),
            r.cpu_per_rep
                .map_or("null".to_string(), |c| format!("{:?}", c.as_secs_f64())),
            rel_diff(&r.grad, &fused_run.grad)
        )?;
    }
    println!(
        "{{\"side\":\"pnode\",\"problem\":\"{}\",\"steps\":{},\"t1\":{:?},\"reps\":{},{extra}\
         \"u0\":{},\"p\":{},\"loss\":{:?},\"grad_u0\":{},\"grad_p\":{},\
         \"compile_ms\":{{\"jit-model\":{model_ms:?},\"jit-fused\":{fused_ms:?}}},\
         \"contestants\":{{{contestants}}}}}",
        pb.name,
        pb.grid.n_steps(),
        t_end,
        pb.reps,
        json_array(&pb.u0),
        json_array(&pb.p),
        fused_run.loss,
        json_array(&fused_run.grad.du0),
        json_array(&fused_run.grad.dp),
    );
    for r in runs {
        let mut t = r.times.clone();
        t.sort();
        eprintln!(
            "{} {:<12} median {:>10.1} µs  min {:>10.1} µs  CPU {:>10.1} µs  rel. diff. to fused {:.1e}",
            pb.name,
            r.name,
            t[t.len() / 2].as_secs_f64() * 1e6,
            t[0].as_secs_f64() * 1e6,
            r.cpu_per_rep.map_or(f64::NAN, |c| c.as_secs_f64() * 1e6),
            rel_diff(&r.grad, &fused_run.grad)
        );
    }
    eprintln!(
        "{} compile: JitModel {model_ms:.2} ms, JitErkStepper rk4 {fused_ms:.2} ms",
        pb.name
    );
    Ok(())
}

fn parse_count(args: &mut impl Iterator<Item = String>, flag: &str) -> Res<usize> {
    let v = args.next().ok_or(format!("{flag} needs a value"))?;
    let n: usize = v
        .parse()
        .map_err(|_| format!("{flag}: expected a positive integer, got {v:?}"))?;
    if n == 0 {
        return Err(format!("{flag} must be positive").into());
    }
    Ok(n)
}

fn main() -> Res<()> {
    let (mut problem, mut reps_lv, mut reps_mlp) = ("all".to_string(), 200, 20);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--problem" => problem = args.next().ok_or("--problem needs a value")?,
            "--reps-lv" => reps_lv = parse_count(&mut args, "--reps-lv")?,
            "--reps-mlp" => reps_mlp = parse_count(&mut args, "--reps-mlp")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: side_by_side [--problem lv|mlp|all] \
                     [--reps-lv N] [--reps-mlp N]"
                )
                .into());
            }
        }
    }
    if !matches!(problem.as_str(), "lv" | "mlp" | "all") {
        return Err(format!("--problem must be lv, mlp or all, got {problem:?}").into());
    }
    if problem != "mlp" {
        let pb = Problem {
            name: "lv",
            f: lv_ir()?,
            grid: TimeGrid::uniform(0.0, 10.0, 1000)?,
            u0: LotkaVolterra::default_u0(),
            p: LotkaVolterra::default_params(),
            loss: sum_loss,
            reps: reps_lv,
        };
        bench(&pb, &LotkaVolterra::new(), "")?;
    }
    if problem != "lv" {
        let (widths, batch) = ([2, 64, 64, 2], 64);
        let hand = Mlp::new(&widths, batch)?;
        let mut p = hand.init_params(0);
        // Small fixed biases (init_params leaves them zero), so their gradients are tested too.
        let mut off = 0;
        for w in widths.windows(2) {
            off += w[1] * w[0];
            for (j, b) in p[off..off + w[1]].iter_mut().enumerate() {
                *b = 0.02 * ((j * 7 % 11) as f64 - 5.0);
            }
            off += w[1];
        }
        let u0: Vec<f64> = (0..batch * widths[0])
            .map(|i| ((i * 37 % 19) as f64 - 9.0) / 9.0)
            .collect();
        let pb = Problem {
            name: "mlp",
            f: mlp_ir(&widths, batch)?,
            grid: TimeGrid::uniform(0.0, 1.0, 100)?,
            u0,
            p,
            loss: half_square_loss,
            reps: reps_mlp,
        };
        let extra = format!("\"widths\":[2,64,64,2],\"batch\":{batch},");
        bench(&pb, &hand, &extra)?;
    }
    Ok(())
}
